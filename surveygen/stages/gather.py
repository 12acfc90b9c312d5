"""Gather: the library a survey is written from.

1. the user's library (``--papers``: folders of PDF/TXT/MD, .bib, papers.jsonl, V2's JSON)
   and ``--arxiv-ids`` files;
2. arXiv search: the topic plus 3–8 queries the LLM proposes, politely paced and cached per
   user (see :mod:`surveygen.library.arxiv_source`);
3. one library: duplicates merged (arXiv id, DOI, title), the user's data preferred;
4. ranking: TF-IDF relevance, then the LLM's screening of the best candidates; the user's
   papers are never dropped, only flagged when they look off-topic;
5. stable citation keys (kept from the run directory's earlier ``papers.jsonl``);
6. full text of the papers kept: attached PDFs, arXiv PDFs (cached by id and version),
   falling back to the abstract with a warning.

Every bad input costs one warning line, never the run; only an empty library is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surveygen.aio import in_thread
from surveygen.errors import BudgetExceeded, InputError, LLMError, LLMRejectedError
from surveygen.library.local import check_path, load_path, read_arxiv_ids
from surveygen.library.merge import Merged, assign_keys, merge_candidates, previous_keys
from surveygen.library.records import Candidate, DocumentError, LoadResult, printable
from surveygen.models import Paper

__all__ = ["GatherOptions", "GatherReport", "check_inputs", "gather", "load_local"]

# Text from the start of a document stands in for a missing abstract when ranking.
_RANK_TEXT_CHARS = 2000


@dataclass(frozen=True)
class GatherOptions:
    papers: tuple[Path, ...] = ()
    arxiv_ids: tuple[Path, ...] = ()
    search: bool = True
    max_papers: int = 60
    search_results: int = 50
    full_text: bool = True
    refresh: bool = False
    screen: bool = True
    screen_threshold: float = 4.0
    max_file_bytes: int = 50_000_000
    arxiv_url: str = "https://export.arxiv.org/api/query"
    arxiv_delay: float = 3.0
    cache_dir: Path = Path(".")

    def fingerprint(self) -> dict[str, Any]:
        """What decides the library: a resumed run reuses it only if this is unchanged (the
        inputs' paths, sizes and modification times included, so an edited .bib counts)."""
        return {
            "papers": [_stamp(p) for p in self.papers],
            "arxiv_ids": [_stamp(p) for p in self.arxiv_ids],
            "search": self.search,
            "max_papers": self.max_papers,
            "search_results": self.search_results,
            "full_text": self.full_text,
            "screen": self.screen,
            "screen_threshold": self.screen_threshold,
        }


def _stamp(path: Path) -> list[Any]:
    """A path with the size and mtime of every file under it (cheap: no file is read)."""
    try:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        return [printable(str(path.resolve()))] + [
            [printable(str(f)), f.stat().st_size, f.stat().st_mtime_ns]
            for f in files
            if f.is_file()
        ]
    except OSError:
        return [printable(str(path))]


@dataclass
class GatherReport:
    """Counts for report.json: what was found, folded, kept and dropped, and from where."""

    read: int = 0  # entries looked at in the user's inputs (lines, entries, files, ids)
    skipped_input: int = 0  # of those, unusable
    found: int = 0  # candidates from every source, before de-duplication
    duplicates: int = 0
    kept: int = 0
    dropped: int = 0  # search results left out by ranking or screening
    queries: list[str] = field(default_factory=list)
    searches_failed: int = 0
    screened: int = 0
    off_topic: list[str] = field(default_factory=list)
    by_source: dict[str, int] = field(default_factory=dict)
    full_text: dict[str, int] = field(default_factory=lambda: {"full_text": 0, "abstract_only": 0})

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "skipped_input": self.skipped_input,
            "found": self.found,
            "duplicates": self.duplicates,
            "kept": self.kept,
            "dropped": self.dropped,
            "queries": list(self.queries),
            "searches_failed": self.searches_failed,
            "screened": self.screened,
            "off_topic": list(self.off_topic),
            "by_source": dict(self.by_source),
            "full_text": dict(self.full_text),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GatherReport:
        return cls(**{k: data[k] for k in cls().to_json() if k in data})


def check_inputs(options: GatherOptions) -> None:
    """Usage errors found before any work: missing paths, unknown file types, no source."""
    for path in options.papers:
        check_path(path)
    for path in options.arxiv_ids:
        check_path(path, "--arxiv-ids")
    if not options.search and not options.papers and not options.arxiv_ids:
        raise InputError(
            "--no-search leaves no papers to write from",
            hint="add --papers PATH (a folder, .bib, .jsonl, ...) or --arxiv-ids FILE",
        )


def load_local(options: GatherOptions) -> LoadResult:
    """Everything in ``--papers``, in order (no network)."""
    result = LoadResult()
    for path in options.papers:
        result.extend(load_path(path, max_bytes=options.max_file_bytes))
    return result


def _kind(source: str) -> str:
    return source.split(":", 1)[0] if ":" in source else source or "unknown"


class _Gatherer:
    def __init__(
        self,
        topic: str,
        options: GatherOptions,
        llm: Any,
        ui: Any,
        arxiv: Any,
        warn: Callable[[str], None],
    ) -> None:
        self.topic = topic
        self.options = options
        self.llm = llm
        self.ui = ui
        self.arxiv = arxiv
        # Warnings name the user's files, whose names need not be UTF-8.
        self.warn: Callable[[str], None] = lambda message: warn(printable(message))
        self.report = GatherReport()
        self.tried: list[str] = []
        self.no_text: dict[str, list[str]] = {}
        self._own_arxiv = arxiv is None

    def source(self) -> Any:
        """The ArxivSource, made on first use (a run without arXiv never opens its cache)."""
        if self.arxiv is None:
            from surveygen.library.arxiv_source import ArxivSource

            self.arxiv = ArxivSource(
                api_url=self.options.arxiv_url,
                cache_dir=self.options.cache_dir,
                delay=self.options.arxiv_delay,
                refresh=self.options.refresh,
            )
        return self.arxiv

    def close(self) -> None:
        if self._own_arxiv and self.arxiv is not None:
            self.arxiv.close()

    # ------------------------------------------------------------------ sources

    async def user_library(self) -> list[Candidate]:
        if not self.options.papers:
            return []
        with self.ui.stage("gather:library", len(self.options.papers)) as progress:
            result = LoadResult()
            for path in self.options.papers:
                part = await in_thread(load_path, path, max_bytes=self.options.max_file_bytes)
                result.extend(part)
                counts = f"{part.read} entries read, {part.skipped} unusable"
                self.tried.append(printable(f"--papers {path} ({counts})"))
                progress.advance()
        self._absorb(result)
        return result.candidates

    async def listed_ids(self) -> list[Candidate]:
        ids: list[str] = []
        for path in self.options.arxiv_ids:
            found, result = read_arxiv_ids(path, max_bytes=self.options.max_file_bytes)
            self._absorb(result)
            ids += [i for i in found if i not in ids]
            self.tried.append(printable(f"--arxiv-ids {path} ({len(found)} ids)"))
        if not ids:
            return []
        from surveygen.library.arxiv_source import ArxivUnavailable

        with self.ui.stage("gather:arxiv-ids", 1) as progress:
            try:
                candidates, missing = await in_thread(self.source().fetch_ids, ids)
            except ArxivUnavailable as exc:
                self.warn(f"could not fetch the --arxiv-ids papers from arXiv: {exc}")
                self.tried[-1] += " (arXiv unreachable)"
                return []
            finally:
                progress.advance()
        for ident in missing:
            self.warn(f"arXiv id {ident}: not found on arXiv, skipped")
        self.report.skipped_input += len(missing)
        return candidates

    async def search(self) -> list[Candidate]:
        if not self.options.search:
            return []
        from surveygen.library.arxiv_source import ArxivRejected, ArxivUnavailable
        from surveygen.library.rank import propose_queries

        try:
            queries = await propose_queries(self.llm, self.topic)
        except (BudgetExceeded, LLMRejectedError):
            raise
        except LLMError as exc:
            self.warn(f"the LLM proposed no search queries ({exc}); searching the topic only")
            queries = []
        self.report.queries = [self.topic, *queries]
        found: list[Candidate] = []
        failed, last_error = 0, ""
        total = len(self.report.queries)
        with self.ui.stage("gather:search", total) as progress:
            for n, query in enumerate(self.report.queries):
                try:
                    found += await in_thread(
                        self.source().search, query, max_results=self.options.search_results
                    )
                except (ValueError, ArxivRejected) as exc:  # this query only
                    failed, last_error = failed + 1, str(exc)
                    self.warn(f"arXiv search for {query!r} skipped: {exc}")
                except ArxivUnavailable as exc:
                    # Retries are spent: arXiv is down or unreachable, so the other queries
                    # would only wait out the same retries.
                    left = total - n - 1
                    failed, last_error = failed + left + 1, str(exc)
                    self.warn(
                        f"arXiv search for {query!r} failed: {exc}"
                        + (f"; the other {left} queries are not tried" if left else "")
                    )
                    progress.advance(left + 1)
                    break
                progress.advance()
        self.report.searches_failed = failed
        outcome = f"failed: {last_error}" if failed == total else f"{len(found)} results"
        self.tried.append(f"arXiv search for {total} queries ({outcome})")
        return found

    def _absorb(self, result: LoadResult) -> None:
        for warning in result.warnings:
            self.warn(warning)
        self.report.read += result.read
        self.report.skipped_input += result.skipped

    # ------------------------------------------------------------------ ranking

    async def choose(self, merged: list[Merged]) -> list[tuple[Merged, float, float | None, bool]]:
        """The papers kept, each with its TF-IDF score, screening score and off-topic flag."""
        from surveygen.library.rank import choose, relevance, screen, screen_calls, shares_terms

        options = self.options
        texts = [
            (m.paper.title, m.paper.abstract or m.paper.text[:_RANK_TEXT_CHARS]) for m in merged
        ]
        scores = relevance(self.topic, self.report.queries[1:], texts)
        is_user = [m.is_user for m in merged]
        screen_scores: list[float | None] = [None] * len(merged)
        found = [i for i, user in enumerate(is_user) if not user]
        if options.screen and found:
            room = max(0, options.max_papers - sum(is_user))
            pool = sorted(found, key=lambda i: (-scores[i], i))[: 2 * room]
            pool = sorted([i for i, user in enumerate(is_user) if user] + pool)
            batches = screen_calls(len(pool))
            with self.ui.stage("gather:screen", batches) as progress:
                rated, warnings = await screen(
                    self.llm, self.topic, [texts[i] for i in pool], on_batch=progress.advance
                )
            for warning in warnings:
                self.warn(warning)
            for i, value in zip(pool, rated, strict=True):
                screen_scores[i] = value
            self.report.screened = sum(v is not None for v in rated)
        choice = choose(
            is_user,
            scores,
            screen_scores,
            shares_terms(self.topic, self.report.queries[1:], texts),
            max_papers=options.max_papers,
            threshold=options.screen_threshold,
        )
        self.report.dropped = len(choice.dropped)
        off = set(choice.off_topic)
        return [(merged[i], scores[i], screen_scores[i], i in off) for i in choice.kept]

    # ------------------------------------------------------------------ full text

    async def full_text(self, merged: Merged) -> str:
        """The paper's full text: its own, an attached PDF's, or arXiv's; "" if none.

        arXiv is asked for any paper with an arXiv id, the user's included (a .bib entry with
        an eprint), so a reading list of preprints gets full texts too.
        """
        paper = merged.paper
        if paper.text:
            return paper.text
        from surveygen.library.pdf import extract_pdf, strip_references
        from surveygen.library.records import read_capped

        if paper.pdf_path is not None:
            try:
                data = read_capped(paper.pdf_path, self.options.max_file_bytes)
                pdf = await in_thread(extract_pdf, data)
                return strip_references(pdf.text)
            except DocumentError as exc:
                self.warn(f"{paper.where}: attached PDF {paper.pdf_path} unusable ({exc})")
        if paper.pdf_url or paper.arxiv_id:
            from surveygen.library.arxiv_source import ArxivUnavailable

            try:
                return await in_thread(
                    self.source().full_text, paper, max_bytes=self.options.max_file_bytes
                )
            except (ArxivUnavailable, DocumentError) as exc:
                self.no_text.setdefault(str(exc), []).append(merged.key)
        return ""

    def report_missing_texts(self) -> None:
        """One warning per distinct reason (arXiv unreachable would otherwise repeat)."""
        for reason, keys in self.no_text.items():
            shown = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
            self.warn(f"no full text from arXiv for {shown} ({reason}); using the abstract")


async def gather(
    topic: str,
    options: GatherOptions,
    *,
    llm: Any,
    ui: Any,
    warn: Callable[[str], None],
    previous: Sequence[Mapping[str, Any]] = (),
    arxiv: Any = None,
) -> tuple[list[Paper], GatherReport]:
    """Build the library for ``topic``; see the module docstring for the steps.

    ``previous`` holds an earlier run's papers.jsonl lines, whose keys are kept for the same
    papers. ``arxiv`` is an ArxivSource (made from ``options`` when None and needed).
    Raises InputError when no paper is left, saying what was tried.
    """
    check_inputs(options)
    g = _Gatherer(topic, options, llm, ui, arxiv, warn)
    warn = g.warn
    try:
        candidates = await g.user_library()
        candidates += await g.listed_ids()
        candidates += await g.search()
        g.report.found = len(candidates)
        merged, g.report.duplicates = merge_candidates(candidates)
        if not merged:
            raise InputError(
                "no papers to write from: tried " + ("; ".join(g.tried) or "nothing"),
                hint="see the warnings above for what was skipped and why; check the connection "
                "to arXiv, or give your own papers with --papers PATH or --arxiv-ids FILE",
            )
        chosen = await g.choose(merged)
        if not chosen:
            raise InputError(
                f"no papers to write from: all {len(merged)} search results were rated below "
                f"screen_threshold ({options.screen_threshold:g}) as off-topic; tried "
                + "; ".join(g.tried),
                hint="rephrase the topic, lower screen_threshold in surveygen.toml, pass "
                "--no-screen, or give your own papers with --papers",
            )
        kept = [m for m, _, _, _ in chosen]
        for warning in assign_keys(kept, previous_keys(previous)):
            warn(warning)
        texts: list[str] = [""] * len(kept)
        if options.full_text:
            with ui.stage("gather:fulltext", len(kept)) as progress:
                for i, item in enumerate(kept):
                    texts[i] = await g.full_text(item)
                    progress.advance()
            g.report_missing_texts()
            g.report.full_text = {
                "full_text": sum(1 for t in texts if t),
                "abstract_only": sum(1 for t in texts if not t),
            }
        papers = []
        for (item, score, rated, off_topic), text in zip(chosen, texts, strict=True):
            p = item.paper
            sources = item.sources
            papers.append(
                Paper(
                    key=item.key,
                    title=p.title,
                    authors=p.authors,
                    year=p.year,
                    abstract=p.abstract,
                    text=text,
                    arxiv_id=p.arxiv_id,
                    doi=p.doi,
                    url=p.url,
                    venue=p.venue,
                    source=sources[0] if sources else "",
                    also_in=tuple(sources[1:]),
                    query=p.query,
                    score=score,
                    screen_score=rated,
                    off_topic=off_topic,
                )
            )
        flagged = [p for p in papers if p.off_topic]
        if flagged:
            g.report.off_topic = [p.key for p in flagged]
            warn(
                f"{len(flagged)} of your papers look off-topic (kept all the same): "
                + ", ".join(p.key for p in flagged)
            )
        bare = [p.key for p in papers if not p.abstract and not p.text]
        if bare:
            warn(
                f"{len(bare)} paper(s) have only a title, no abstract or text, so they can give "
                f"little evidence: {', '.join(bare[:10])}{' ...' if len(bare) > 10 else ''}"
            )
        g.report.kept = len(papers)
        by_source: dict[str, int] = {}
        for p in papers:
            by_source[_kind(p.source)] = by_source.get(_kind(p.source), 0) + 1
        g.report.by_source = by_source
        return papers, g.report
    finally:
        g.close()
