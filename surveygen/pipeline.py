"""The ``write`` pipeline: gather → skeleton → digest → refine → map → write → render.

Each stage is a module in ``surveygen.stages``; this module only wires them together, keeps
per-item state in ``state/`` (written atomically as each item finishes), times the stages and
writes the report. Item failures (one paper whose digest keeps failing, say) are reported and
skipped; failures that make the survey impossible (budget, a refused key, a full disk) stop
the run with everything already paid for kept in the cache and the run directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from surveygen import __version__
from surveygen.config import Settings
from surveygen.errors import (
    BudgetExceeded,
    InputError,
    LLMError,
    LLMRejectedError,
    NoEndpointError,
    OutputError,
    RunError,
)
from surveygen.models import Digest, Outline, Paper, Section
from surveygen.rundir import RunDir, default_out_dir
from surveygen.ui import UI, StageProgress

MAX_TOPIC_CHARS = 2000
T = TypeVar("T")


@dataclass(frozen=True)
class WriteRequest:
    topic: str
    papers: tuple[Path, ...] = ()
    out: Path | None = None
    resume: bool = False
    force: bool = False
    dry_run: bool = False
    full_text: bool = True
    no_search: bool = False
    arxiv_ids: tuple[Path, ...] = ()
    refresh: bool = False
    outline: Path | None = None


@dataclass
class RunResult:
    out_dir: Path
    outputs: list[Path] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def _model_stage(stage: str) -> str:
    """The configured stage whose model a pipeline step uses (map re-digests papers)."""
    return "digest" if stage == "map" else stage


def validate_topic(topic: str) -> str:
    cleaned = " ".join(topic.split())
    if not cleaned:
        raise InputError("the topic is empty", hint='give it as: surveygen write "your topic"')
    if len(cleaned) > MAX_TOPIC_CHARS:
        raise InputError(
            f"the topic is {len(cleaned)} characters long; the limit is {MAX_TOPIC_CHARS}",
            hint="state the topic in a sentence or two",
        )
    return cleaned


def require_endpoint(settings: Settings) -> None:
    if settings.base_url is None and settings.api_key is None:
        raise NoEndpointError(
            "no LLM endpoint configured: set OPENAI_API_KEY to use OpenAI, or pass --base-url "
            "http://host:port/v1 for another OpenAI-compatible server (vLLM, Ollama, ...). "
            "An offline mode, --engine extractive, is coming and will need neither."
        )


def _fingerprint(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _state_name(key: str) -> str:
    """A file name for an item key: ':' (refused by some file systems) is replaced, with a
    hash of the key appended so that ``a:b`` and ``a_b`` never share a file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    return safe if safe == key else f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def digest_calls(tokens: int, context_tokens: int, output_tokens: int) -> int:
    """Upper bound on the calls digesting a paper of about ``tokens`` takes: 1 when it fits
    the context, else map/collapse/reduce over its chunks (c maps, at most c - 1 collapses,
    1 reduce)."""
    from surveygen.mapreduce import input_budget

    budget = input_budget(context_tokens, output_tokens)
    # Instructions and the outline take room too; a generous share, as this is a bound.
    room = max(200, budget - 3_000)
    if tokens + 3_000 <= budget:
        return 1
    chunks = -(-tokens // room)
    return 2 * chunks


async def run_items(
    items: Iterable[tuple[str, Callable[[], Awaitable[T]]]],
    progress: StageProgress,
) -> tuple[dict[str, T], dict[str, str]]:
    """Run item jobs concurrently (the LLM client bounds the concurrency).

    An item whose calls keep failing is recorded in the failures and skipped. A fatal error
    (budget, refused key, unwritable output) cancels the other items and propagates.
    """
    results: dict[str, T] = {}
    failures: dict[str, str] = {}

    async def one(key: str, job: Callable[[], Awaitable[T]]) -> None:
        try:
            results[key] = await job()
        except (BudgetExceeded, LLMRejectedError):
            raise
        except LLMError as exc:
            failures[key] = exc.message
        finally:
            progress.advance()

    tasks = [asyncio.ensure_future(one(key, job)) for key, job in items]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results, failures


class Pipeline:
    """One ``surveygen write`` run."""

    def __init__(self, settings: Settings, request: WriteRequest, ui: UI) -> None:
        self.settings = settings
        self.request = request
        self.ui = ui
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self.gather_report: Any = None
        self.digest_failures: list[str] = []
        self.pruned: list[str] = []
        self.reuse = request.resume  # may saved state be reused (set once the run dir is open)
        self.refine_report: dict[str, Any] | None = None
        self.outline_source = "user" if request.outline is not None else "refined"
        self.redigested = 0

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.ui.warn(message)

    def _timed(self, stage: str, started: float) -> None:
        self.timings[stage] = round(self.timings.get(stage, 0.0) + time.monotonic() - started, 3)

    # ---------------------------------------------------------------- gather

    def gather_options(self) -> Any:
        from surveygen.stages.gather import GatherOptions

        s, r = self.settings, self.request
        return GatherOptions(
            papers=tuple(r.papers),
            arxiv_ids=tuple(r.arxiv_ids),
            search=not r.no_search,
            max_papers=s.max_papers,
            search_results=s.search_results,
            full_text=r.full_text,
            refresh=r.refresh,
            screen=s.screen,
            screen_threshold=s.screen_threshold,
            max_file_bytes=int(s.max_file_mb * 1_000_000),
            arxiv_url=s.arxiv_url,
            arxiv_delay=s.arxiv_delay,
            cache_dir=s.cache_dir,
        )

    async def gather(self, llm: Any, rd: RunDir, topic: str) -> list[Paper]:
        """The library: reused on --resume when the gather options are unchanged, else built
        (keeping the citation keys of an earlier papers.jsonl in the run directory)."""
        from surveygen.stages.gather import GatherReport, gather

        options = self.gather_options()
        fingerprint = _fingerprint({"topic": topic, **options.fingerprint()})
        saved = rd.read_json("state/gather.json") if self.reuse else None
        if saved is not None and saved.get("fingerprint") == fingerprint:
            lines = rd.read_jsonl("papers.jsonl")
            if lines:
                self.gather_report = GatherReport.from_json(saved.get("report") or {})
                return [Paper.from_json(line) for line in lines]
        # Keys of the same papers in this folder's last run stay (not across --force: that
        # replaces another topic's run).
        previous = [] if self.request.force else rd.read_jsonl("papers.jsonl")
        started = time.monotonic()
        papers, report = await gather(
            topic, options, llm=llm, ui=self.ui, warn=self._warn, previous=previous
        )
        self._timed("gather", started)
        self.gather_report = report
        rd.write_jsonl("papers.jsonl", (p.to_json() for p in papers))
        rd.write_json("state/gather.json", {"fingerprint": fingerprint, "report": report.to_json()})
        return papers

    # ---------------------------------------------------------------- main

    async def run(self) -> RunResult:
        from surveygen.llm.cache import AnswerCache
        from surveygen.llm.client import LLMClient
        from surveygen.llm.ledger import Ledger, lookup_price, price_table

        topic = validate_topic(self.request.topic)
        settings = self.settings
        if not self.request.dry_run:
            require_endpoint(settings)
        if settings.templates_dir is not None:
            from surveygen.stages.render import make_env

            make_env("md", settings.templates_dir)  # a wrong folder fails now, not after the calls
        from surveygen.stages.gather import check_inputs

        user_outline = self.read_user_outline()
        self.refine_options()  # a bad weight fails now, not after the calls
        check_inputs(self.gather_options())
        if self.request.dry_run:
            return self.dry_run(topic, user_outline)

        out = self.request.out or default_out_dir(topic)
        rd = RunDir.open(
            out,
            topic,
            resume=self.request.resume,
            force=self.request.force,
            keep_state=user_outline is not None,
        )
        self.reuse = rd.kept
        if user_outline is not None and rd.kept:
            # New headings must not take the id of a section an earlier run made and the
            # user deleted: its saved evidence would land on the new heading.
            user_outline = self.read_user_outline(id_floor=self.used_id_floor(rd))

        cache = AnswerCache(settings.cache_dir) if settings.cache else None
        ledger = Ledger(price_table(settings.prices), settings.budget)
        llm = LLMClient(
            settings,
            ledger=ledger,
            cache=cache,
            log=lambda entry: rd.append_jsonl("logs/calls.jsonl", entry),
        )
        if settings.budget is not None:
            unpriced = {
                m for m in settings.models.values() if lookup_price(ledger.prices, m) is None
            }
            if unpriced:
                self._warn(
                    f"no price known for {', '.join(sorted(unpriced))}: --budget cannot limit "
                    'their cost (add [prices."MODEL"] to surveygen.toml)'
                )
        try:
            try:
                papers = await self.gather(llm, rd, topic)
                library = {p.key: p for p in papers}
                if user_outline is None:
                    skeleton = await self.skeleton(llm, rd, topic, papers)
                    first = await self.digest(
                        llm, rd, topic, skeleton, papers, folder="digests", stage="digest"
                    )
                    if not first:
                        raise RunError(
                            "no paper could be digested; see the warnings above and "
                            "logs/calls.jsonl",
                            hint="check the endpoint and --model, then rerun with --resume",
                        )
                    leaves = [leaf.id for leaf in skeleton.leaves()]
                    made_for = {key: leaves for key in first}
                    outline = await self.refine(llm, rd, topic, skeleton, first, library)
                else:
                    outline = user_outline
                    first, made_for = self.earlier_digests(rd, papers)
                digests = await self.map(llm, rd, topic, outline, papers, first, made_for)
                final, sections = await self.write(llm, rd, outline, digests, library)
            finally:
                await llm.aclose()
            return self.render(rd, topic, final, sections, digests, library, ledger)
        finally:
            if cache is not None:
                cache.close()

    def dry_run(self, topic: str, user_outline: Outline | None) -> RunResult:
        """Plan without calls or network: the user's library is read, arXiv is not searched,
        so with search on the paper count is an upper bound (--max-papers), and search results
        are assumed to fit the context."""
        from surveygen.library.local import read_arxiv_ids
        from surveygen.library.rank import screen_calls
        from surveygen.stages.gather import load_local
        from surveygen.stages.refine import refine_plan
        from surveygen.stages.skeleton import skeleton_calls
        from surveygen.text import approx_tokens

        settings = self.settings
        options = self.gather_options()
        local = load_local(options)
        ids: set[str] = set()
        for path in options.arxiv_ids:
            found, result = read_arxiv_ids(path, max_bytes=options.max_file_bytes)
            ids.update(found)
            local.extend(result)
        for warning in local.warnings:
            self._warn(warning)
        user = len(local.candidates) + len(ids)  # before de-duplication: an upper bound
        searching = options.search
        papers = max(user, options.max_papers) if searching else user
        gather_calls = 0
        if searching:
            gather_calls = 1  # the query proposals
            if options.screen:  # the user's papers and twice the free places, in batches
                gather_calls += screen_calls(user + 2 * max(0, options.max_papers - user))
        per_paper = [
            digest_calls(
                approx_tokens(c.text or c.abstract or c.title),
                settings.context_tokens,
                settings.max_output_tokens,
            )
            for c in local.candidates
        ]
        per_paper += [1] * (papers - len(per_paper))
        digest_total = sum(sorted(per_paper, reverse=True)[:papers])
        refine_layers: list[dict[str, int]] = []
        if user_outline is None:
            refine_layers = refine_plan(papers, self.refine_options())
            bounds = {
                "gather": gather_calls,
                "skeleton": skeleton_calls(papers),
                "digest": digest_total,
                "refine": sum(
                    layer.get("merge", 0) + layer.get("apply", 0) + layer.get("judge", 0)
                    for layer in refine_layers
                ),
                # every paper digested again, at worst, for the refined outline
                "map": digest_total,
                "write": settings.max_sections,
            }
        else:
            bounds = {
                "gather": gather_calls,
                "skeleton": 0,
                "digest": 0,
                "refine": 0,
                "map": digest_total,
                "write": len(user_outline.leaves()),
            }
        report = {
            "topic": topic,
            "papers": papers,
            "user_papers": user,
            "arxiv_search": searching,
            "outline": "user" if user_outline is not None else "skeleton + refinement",
            "planned_calls_upper_bound": bounds,
            "refine_layers": refine_layers,
            "total_upper_bound": sum(bounds.values()),
            "models": {stage: settings.model_for(_model_stage(stage)) for stage in bounds},
        }
        return RunResult(out_dir=self.request.out or default_out_dir(topic), report=report)

    # ---------------------------------------------------------------- options

    def read_user_outline(self, id_floor: int = 1) -> Outline | None:
        """``--outline FILE`` parsed and checked before anything is paid for."""
        from surveygen.outline_md import parse_outline_md

        path = self.request.outline
        if path is None:
            return None
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(
                f"--outline {path}: cannot read it ({exc.strerror or exc})",
                hint="give the outline.md of an earlier run, edited as you like",
            ) from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"--outline {path}: not UTF-8 text") from None
        outline = parse_outline_md(text, source=str(path), id_floor=id_floor)
        leaves = len(outline.leaves())
        if leaves > self.settings.max_sections and id_floor == 1:
            self._warn(
                f"--outline {path} has {leaves} leaf sections, more than --max-sections "
                f"({self.settings.max_sections}); all of them are written"
            )
        return outline

    @staticmethod
    def used_id_floor(rd: RunDir) -> int:
        """The next node id number no outline or digest saved in ``rd`` has used."""
        from surveygen.outline_tree import IdAllocator

        allocator = IdAllocator()
        for rel in ("state/outline.json", "state/refine/result.json"):
            try:
                saved = rd.read_json(rel)
            except OutputError:
                continue
            if isinstance(saved, dict) and isinstance(saved.get("outline"), dict):
                try:
                    outline = Outline.from_json(saved["outline"])
                except (KeyError, TypeError, AttributeError):
                    continue
                allocator.observe(node.id for node, _ in outline.walk())
        for folder in ("digests", "mapped"):
            directory = rd.resolve(f"state/{folder}")
            for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
                try:
                    saved = json.loads(path.read_text(encoding="utf-8"))
                    allocator.observe(str(i) for i in saved.get("leaves") or ())
                    allocator.observe(n["node_id"] for n in saved["item"].get("nodes") or ())
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    continue
        return allocator.floor

    def refine_options(self) -> Any:
        from surveygen.scoring import validate_weights
        from surveygen.stages.refine import RefineOptions

        s = self.settings
        try:
            weights = validate_weights(
                {
                    "judge": s.weight_judge,
                    "entropy": s.weight_entropy,
                    "coverage": s.weight_coverage,
                    "redundancy": s.weight_redundancy,
                }
            )
        except ValueError as exc:
            raise InputError(f"outline score weights: {exc}") from None
        try:
            return RefineOptions(
                layers=s.layers,
                kernel=s.kernel,
                top_k=s.top_k,
                max_candidates=s.refine_candidates,
                weights=weights,
                max_sections=s.max_sections,
            )
        except ValueError as exc:
            raise InputError(f"refinement options: {exc}") from None

    # ---------------------------------------------------------------- stages

    async def _saved_or_made(
        self,
        rd: RunDir,
        path: str,
        version: str,
        load: Callable[[dict[str, Any]], T],
        make: Callable[[], Awaitable[Any]],
    ) -> T:
        """One item's result: reused from ``path`` on ``--resume`` when it was made for the
        same outline ``version``, else made and saved there at once (atomically)."""
        saved = rd.read_json(path) if self.reuse else None
        if saved is not None and saved.get("outline") == version:
            return load(saved["item"])
        item = await make()
        rd.write_json(path, {"outline": version, "item": item.to_json()})
        return item

    async def skeleton(self, llm: Any, rd: RunDir, topic: str, papers: list[Paper]) -> Outline:
        from surveygen.stages.skeleton import build_skeleton

        library = _fingerprint([p.to_json() for p in papers])
        saved = rd.read_json("state/outline.json") if self.reuse else None
        if saved is not None and saved.get("library") != library:
            self._warn("the library changed since the interrupted run: the outline is made anew")
            saved = None
        started = time.monotonic()
        with self.ui.stage("skeleton", 1) as progress:
            if saved is not None:
                outline = Outline.from_json(saved["outline"])
            else:
                outline = await build_skeleton(
                    llm, topic, papers, max_sections=self.settings.max_sections, warn=self._warn
                )
                rd.write_json(
                    "state/outline.json", {"library": library, "outline": outline.to_json()}
                )
            progress.advance()
        self._timed("skeleton", started)
        return outline

    async def digest(
        self,
        llm: Any,
        rd: RunDir,
        topic: str,
        outline: Outline,
        papers: list[Paper],
        *,
        folder: str,
        stage: str,
    ) -> dict[str, Digest]:
        """Every paper digested against ``outline``; each digest saved in ``state/<folder>/``
        as it finishes, with the outline and paper data it was made for."""
        from surveygen.stages.digest import digest_paper

        version = _fingerprint(outline.to_json())
        leaves = [leaf.id for leaf in outline.leaves()]
        # Suggestions are only asked for while the outline may still change.
        suggest = folder == "digests" and self.settings.layers > 0

        async def make(paper: Paper) -> Digest:
            path = f"state/{folder}/{_state_name(paper.key)}.json"
            paper_fp = _fingerprint(paper.to_json())
            saved = rd.read_json(path) if self.reuse else None
            if (
                isinstance(saved, dict)
                and saved.get("outline") == version
                and saved.get("paper") == paper_fp
            ):
                return Digest.from_json(saved["item"])
            digest = await digest_paper(
                llm,
                topic,
                outline,
                paper,
                context_tokens=self.settings.context_tokens,
                output_tokens=self.settings.max_output_tokens,
                suggest=suggest,
            )
            record = {"outline": version, "paper": paper_fp, "leaves": leaves}
            rd.write_json(path, {**record, "item": digest.to_json()})
            return digest

        def job(paper: Paper) -> Callable[[], Awaitable[Digest]]:
            return lambda: make(paper)

        started = time.monotonic()
        with self.ui.stage(stage, len(papers)) as progress:
            digests, failures = await run_items(((p.key, job(p)) for p in papers), progress)
        for key, reason in sorted(failures.items()):
            self._warn(f"digest of {key} skipped: {reason}")
        self.digest_failures = sorted(set(self.digest_failures) | set(failures))
        self._timed(stage, started)
        return digests

    def earlier_digests(
        self, rd: RunDir, papers: list[Paper]
    ) -> tuple[dict[str, Digest], dict[str, list[str]]]:
        """With --outline: the digests an earlier run in this folder made for the same paper
        data (against its final outline first, else its skeleton), with the leaves of the
        outline each was made against."""
        digests: dict[str, Digest] = {}
        made_for: dict[str, list[str]] = {}
        if not self.reuse:
            return digests, made_for
        for paper in papers:
            paper_fp = _fingerprint(paper.to_json())
            for folder in ("mapped", "digests"):
                try:
                    saved = rd.read_json(f"state/{folder}/{_state_name(paper.key)}.json")
                except OutputError:
                    saved = None  # a damaged file: digest that paper again
                if (
                    isinstance(saved, dict)
                    and saved.get("paper") == paper_fp
                    and isinstance(saved.get("leaves"), list)
                ):
                    digests[paper.key] = Digest.from_json(saved["item"])
                    made_for[paper.key] = saved["leaves"]
                    break
        return digests, made_for

    async def refine(
        self,
        llm: Any,
        rd: RunDir,
        topic: str,
        outline: Outline,
        digests: Mapping[str, Digest],
        library: Mapping[str, Paper],
    ) -> Outline:
        """The convolution layers; every candidate is kept in ``state/refine/``. Reused on
        --resume when the skeleton, the digests and the options are unchanged."""
        from surveygen.outline_tree import IdAllocator
        from surveygen.stages.refine import refine, refine_plan

        options = self.refine_options()
        version = _fingerprint(
            {
                "outline": outline.to_json(),
                "digests": {key: digests[key].to_json() for key in sorted(digests)},
                "options": [options.layers, options.kernel, options.top_k, options.max_candidates],
                "weights": dict(options.weights),
                "max_sections": options.max_sections,
            }
        )
        saved = rd.read_json("state/refine/result.json") if self.reuse else None
        if isinstance(saved, dict) and saved.get("version") == version:
            self.refine_report = saved.get("report")
            return Outline.from_json(saved["outline"])
        plan = refine_plan(len(digests), options)
        total = sum(
            layer.get("merge", 0) + layer.get("apply", 0) + layer.get("judge", 0) for layer in plan
        )
        started = time.monotonic()
        with self.ui.stage("refine", total) as progress:
            result = await refine(
                llm,
                topic,
                outline,
                digests,
                library,
                options,
                allocator=IdAllocator(outline),
                save=lambda rel, obj: rd.write_json(f"state/refine/{rel}", obj),
                warn=self._warn,
                progress=progress.advance,
            )
        self._timed("refine", started)
        self.refine_report = result.to_json()
        rd.write_json(
            "state/refine/result.json",
            {"version": version, "outline": result.outline.to_json(), "report": self.refine_report},
        )
        return result.outline

    async def map(
        self,
        llm: Any,
        rd: RunDir,
        topic: str,
        outline: Outline,
        papers: list[Paper],
        digests: Mapping[str, Digest],
        made_for: Mapping[str, list[str]],
    ) -> dict[str, Digest]:
        """The digests attached to the final outline by node id; only papers whose digest no
        longer fits it (see stages/mapping.py) are digested again. With --outline, papers
        no earlier run digested are digested here too."""
        from surveygen.stages.mapping import needs_redigest

        user = self.request.outline is not None
        redo = [
            p
            for p in papers
            if (p.key in digests and needs_redigest(digests[p.key], made_for[p.key], outline))
            or (user and p.key not in digests)
        ]
        kept = {key: d for key, d in digests.items() if key not in {p.key for p in redo}}
        self.redigested = len(redo)
        fresh = await self.digest(llm, rd, topic, outline, redo, folder="mapped", stage="map")
        mapped = {**kept, **fresh}
        if not mapped:
            raise RunError(
                "no paper could be digested; see the warnings above and logs/calls.jsonl",
                hint="check the endpoint and --model, then rerun with --resume",
            )
        return mapped

    async def write(
        self,
        llm: Any,
        rd: RunDir,
        outline: Outline,
        digests: Mapping[str, Digest],
        library: Mapping[str, Paper],
    ) -> tuple[Outline, dict[str, Section]]:
        from surveygen.stages.write import evidence_by_node, parent_titles, prune, write_section

        evidence = evidence_by_node(digests, library)
        final, pruned = prune(outline, set(evidence))
        self.pruned = pruned
        if not final.leaves():
            raise RunError(
                "no section of the outline received evidence from any paper",
                hint="check that --papers matches the topic; logs/calls.jsonl has the answers",
            )
        parents = parent_titles(final)
        version = _fingerprint(final.to_json())

        def job(node_id: str) -> Callable[[], Awaitable[Section]]:
            node = final.find(node_id)
            assert node is not None
            return lambda: self._saved_or_made(
                rd,
                f"state/sections/{_state_name(node_id)}.json",
                version,
                Section.from_json,
                lambda: write_section(
                    llm,
                    final,
                    node,
                    evidence[node_id],
                    library_keys=library.keys(),
                    parent_title=parents.get(node_id),
                ),
            )

        leaves = [leaf.id for leaf in final.leaves()]
        started = time.monotonic()
        with self.ui.stage("write", len(leaves)) as progress:
            sections, failures = await run_items(((i, job(i)) for i in leaves), progress)
        for node_id, reason in sorted(failures.items()):
            self._warn(f"section {node_id} ({final.find(node_id).title}) left out: {reason}")  # type: ignore[union-attr]
        self._timed("write", started)
        if failures:
            final, more = prune(final, set(sections))
            self.pruned += more
        if not sections:
            raise RunError("no section could be written; see the warnings above")
        return final, sections

    def render(
        self,
        rd: RunDir,
        topic: str,
        outline: Outline,
        sections: dict[str, Section],
        digests: Mapping[str, Digest],
        library: Mapping[str, Paper],
        ledger: Any,
    ) -> RunResult:
        from surveygen.stages.render import render_markdown, render_outline_md

        started = time.monotonic()
        with self.ui.stage("render", 1) as progress:
            survey = render_markdown(
                outline, sections, library, user_dir=self.settings.templates_dir
            )
            rd.write_text("survey.md", survey.text)
            rd.write_text(
                "outline.md", render_outline_md(outline, user_dir=self.settings.templates_dir)
            )
            progress.advance()
        self._timed("render", started)
        report = self.build_report(topic, outline, sections, digests, library, survey, ledger)
        rd.write_json("report.json", report)
        outputs = [rd.path / "survey.md", rd.path / "outline.md", rd.path / "report.json"]
        return RunResult(out_dir=rd.path, outputs=outputs, report=report)

    def build_report(
        self,
        topic: str,
        outline: Outline,
        sections: Mapping[str, Section],
        digests: Mapping[str, Digest],
        library: Mapping[str, Paper],
        survey: Any,
        ledger: Any,
    ) -> dict[str, Any]:
        body = survey.text.split("\n## References", 1)[0]
        with_evidence = sum(1 for d in digests.values() if d.nodes)
        removed = sum(len(s.removed_citations) for s in sections.values()) + len(survey.removed)
        return {
            "topic": topic,
            "surveygen_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "words": len(re.findall(r"\b\w+\b", body)),
            "sections": sum(1 for _ in outline.walk()),
            "leaf_sections": len(outline.leaves()),
            "depth": outline.depth,
            "papers": {
                **(self.gather_report.to_json() if self.gather_report is not None else {}),
                "kept": len(library),
                "digested": len(digests),
                "digest_failed": self.digest_failures,
                "with_evidence": with_evidence,
                "read_in_chunks": sum(1 for d in digests.values() if d.chunks > 1),
                "redigested_for_final_outline": self.redigested,
            },
            "outline": {
                "source": self.outline_source,
                "suggestions": sum(len(d.suggestions) for d in digests.values()),
                "refinement": self.refine_report,
            },
            "citations": {
                "distinct_cited": len(survey.cited),
                "reference_coverage": round(len(survey.cited) / len(library), 4)
                if library
                else 0.0,
                # anything still looking like a [@key] citation after numbering: must be 0
                "unresolved": len(re.findall(r"\[@[^\]]*\]", survey.text)),
                "removed_unknown_keys": removed,
                "removed_numeric_brackets": survey.stray_numeric,
            },
            "evidence": {
                "kept_quotes": sum(len(n.evidence) for d in digests.values() for n in d.nodes),
                "dropped_quotes": sum(d.dropped_quotes for d in digests.values()),
            },
            "pruned_sections": self.pruned,
            "llm": ledger.to_json(),
            "seconds_per_stage": self.timings,
            "settings": self.settings.describe(),
            "warnings": self.warnings,
        }


def _outline_line(report: Mapping[str, Any]) -> list[str]:
    """How refinement moved the outline's score, when it ran."""
    refinement = (report.get("outline") or {}).get("refinement") or {}
    if report.get("outline", {}).get("source") == "user":
        return ["outline: yours (--outline), refinement skipped"]
    initial = (refinement.get("initial") or {}).get("score")
    final = (refinement.get("score") or {}).get("score")
    if initial is None or final is None:
        return []
    layers = refinement.get("layers") or []
    accepted = sum(layer.get("accepted", 0) for layer in layers)
    return [
        f"outline: score {initial:.3f} -> {final:.3f} over {len(layers)} layer(s), "
        f"{accepted} candidate(s) accepted"
    ]


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The short quality summary printed on stderr after a run."""
    llm = report["llm"]
    cites = report["citations"]
    return [
        f"survey: {report['words']} words, {report['sections']} sections (depth {report['depth']})",
        f"papers: {report['papers']['kept']} kept"
        + (
            f" of {report['papers']['found']} found ({report['papers']['duplicates']} "
            f"duplicates, {report['papers']['dropped']} dropped by ranking)"
            if report["papers"].get("found")
            else ""
        )
        + f", {cites['distinct_cited']} cited "
        f"(coverage {cites['reference_coverage']:.0%}), {cites['removed_unknown_keys']} unknown "
        f"citation(s) removed, {report['evidence']['dropped_quotes']} unverifiable quote(s) "
        "dropped",
        *_outline_line(report),
        f"llm: {llm['calls']} calls, {llm['cache_hits']} cache hits, {llm['tokens_in']} tokens in, "
        f"{llm['tokens_out']} out, ${llm['cost_usd']:.4f}",
    ]
