"""The ``write`` pipeline: gather → skeleton → digest → refine → map → write → render.

Each stage is a module in ``surveygen.stages``; this module only wires them together, keeps
per-item state in ``state/`` (written atomically as each item finishes), times the stages and
writes the report. Item failures (one paper whose digest keeps failing, say) are reported and
skipped; failures that make the survey impossible (budget, a refused key, a full disk) stop
the run with everything already paid for kept in the cache and the run directory.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from surveygen.aio import run_items
from surveygen.config import Settings
from surveygen.errors import (
    InputError,
    NoEndpointError,
    OutputError,
    RunError,
)
from surveygen.models import Digest, Outline, Paper
from surveygen.rundir import RunDir, default_out_dir, fingerprint, state_name
from surveygen.stages.mapping import earlier_digests, paper_fingerprint, used_id_floor
from surveygen.ui import UI

MAX_TOPIC_CHARS = 2000
_ENDPOINT_HINT = (
    "check the endpoint and --model, then rerun: with --resume if no option changed, without "
    "it after changing --model (answers already received are reused from the cache either way)"
)
T = TypeVar("T")


def _clock() -> tuple[float, float]:
    """Wall and CPU time now (CPU: this process, all threads)."""
    return time.monotonic(), time.process_time()


def peak_memory_mb() -> float | None:
    """The process's peak resident memory so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


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


def _outline(data: Any) -> Outline:
    """A saved outline; ValueError when it has no section (a damaged file)."""
    outline = Outline.from_json(data)
    if not outline.sections:
        raise ValueError("an outline without sections")
    return outline


def validate_topic(topic: str) -> str:
    if re.search("[\udc80-\udcff]", topic):
        # Bytes the locale could not decode (a C locale without UTF-8 mode): read as UTF-8.
        topic = os.fsencode(topic).decode("utf-8", "replace")
    cleaned = " ".join(topic.split())
    if not any(ch.isalnum() for ch in cleaned):
        raise InputError(
            "the topic is empty" if not cleaned else "the topic has no letters or digits",
            hint='give it as: surveygen write "your topic"',
        )
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


class Pipeline:
    """One ``surveygen write`` run."""

    def __init__(self, settings: Settings, request: WriteRequest, ui: UI) -> None:
        self.settings = settings
        self.request = request
        self.ui = ui
        self.timings: dict[str, float] = {}  # wall seconds per stage
        self.cpu: dict[str, float] = {}  # CPU seconds of this process per stage
        self.peak_mb: dict[str, float | None] = {}  # peak memory by the end of each stage
        self.warnings: list[str] = []
        self.gather_report: Any = None
        self.digest_failures: list[str] = []
        self.pruned: list[str] = []
        self.reuse = request.resume  # may saved state be reused (set once the run dir is open)
        self.refine_report: dict[str, Any] | None = None
        self.outline_source = "user" if request.outline is not None else "refined"
        self.redigested = 0
        self.verify = settings.verify  # the check actually run (see compose.verify_mode)
        self.suggestions = 0  # outline suggestions the first digests made
        self._outline_text: str | None = None  # --outline FILE as read

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.ui.warn(message)

    def _timed(self, stage: str, started: tuple[float, float]) -> None:
        """Add a stage's wall and CPU seconds since ``started`` (from ``_clock()``), and note
        the process's peak memory so far."""
        wall, cpu = _clock()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + wall - started[0], 3)
        self.cpu[stage] = round(self.cpu.get(stage, 0.0) + cpu - started[1], 3)
        self.peak_mb[stage] = peak_memory_mb()

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
        version = fingerprint({"topic": topic, **options.fingerprint()})
        saved = self._saved(rd, "state/gather.json")
        if saved is not None and saved.get("fingerprint") == version:
            lines = rd.read_jsonl("papers.jsonl")
            restored = self._restore(
                "papers.jsonl",
                lambda: (
                    GatherReport.from_json(saved.get("report") or {}),
                    [Paper.from_json(line) for line in lines],
                ),
            )
            if lines and restored is not None:
                self.gather_report, papers = restored
                return papers
        # Keys of the same papers in this folder's last run stay (not across --force: that
        # replaces another topic's run).
        previous = [] if self.request.force else rd.read_jsonl("papers.jsonl")
        started = _clock()
        papers, report = await gather(
            topic, options, llm=llm, ui=self.ui, warn=self._warn, previous=previous
        )
        self._timed("gather", started)
        self.gather_report = report
        rd.write_jsonl("papers.jsonl", (p.to_json() for p in papers))
        rd.write_json("state/gather.json", {"fingerprint": version, "report": report.to_json()})
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

        from surveygen.identity import run_identity

        out = self.request.out or default_out_dir(topic)
        rd = RunDir.open(
            out,
            topic,
            resume=self.request.resume,
            force=self.request.force,
            keep_state=user_outline is not None,
            identity=run_identity(settings, user_outline),
        )
        if rd.discarded:
            self._warn(
                "the earlier run in this folder was made with other options ("
                + "; ".join(rd.discarded)
                + "): its saved work is not reused, only cached answers to identical prompts"
            )
        self.reuse = rd.kept
        if user_outline is not None and rd.kept:
            # New headings must not take the id of a section an earlier run made and the
            # user deleted: its saved evidence would land on the new heading.
            user_outline = self.read_user_outline(id_floor=used_id_floor(rd))

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
                        llm,
                        rd,
                        topic,
                        skeleton,
                        papers,
                        folder="digests",
                        stage="digest",
                        needs=("skeleton",),
                    )
                    if not first:
                        raise RunError(
                            "no paper could be digested; see the warnings above and "
                            "logs/calls.jsonl",
                            hint=_ENDPOINT_HINT,
                        )
                    self.suggestions = sum(len(d.suggestions) for d in first.values())
                    leaves = [leaf.id for leaf in skeleton.leaves()]
                    made_for = {key: leaves for key in first}
                    outline = await self.refine(llm, rd, topic, skeleton, first, library)
                else:
                    outline = user_outline
                    first, made_for = earlier_digests(rd, papers) if self.reuse else ({}, {})
                digests = await self.map(llm, rd, topic, outline, papers, first, made_for)
                outcome = await self.write(llm, rd, topic, outline, digests, library)
            finally:
                await llm.aclose()
            return self.render(rd, topic, outcome, digests, library, ledger, plan=outline)
        finally:
            if cache is not None:
                cache.close()

    def dry_run(self, topic: str, user_outline: Outline | None) -> RunResult:
        """Plan without calls or network (see surveygen/plan.py)."""
        from surveygen.plan import plan_run

        report = plan_run(
            topic,
            self.settings,
            self.gather_options(),
            user_outline,
            None if user_outline is not None else self.refine_options(),
            warn=self._warn,
        )
        return RunResult(out_dir=self.request.out or default_out_dir(topic), report=report)

    # ---------------------------------------------------------------- options

    def read_user_outline(self, id_floor: int = 1) -> Outline | None:
        """``--outline FILE`` parsed and checked before anything is paid for. The file is
        read once (it may be a pipe) and parsed again from that text when needed."""
        from surveygen.outline_md import parse_outline_md, read_outline_text

        path = self.request.outline
        if path is None:
            return None
        if self._outline_text is None:
            self._outline_text = read_outline_text(path)
        outline = parse_outline_md(self._outline_text, source=str(path), id_floor=id_floor)
        leaves = len(outline.leaves())
        if leaves > self.settings.max_sections and id_floor == 1:
            self._warn(
                f"--outline {path} has {leaves} leaf sections, more than --max-sections "
                f"({self.settings.max_sections}); all of them are written"
            )
        return outline

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

    def _saved(self, rd: RunDir, rel: str) -> dict[str, Any] | None:
        """A state file of an earlier run, when it may be reused; a damaged one (unreadable,
        cut short, wrong shape) is reported and ignored, so its work is simply done again."""
        if not self.reuse:
            return None
        try:
            saved: Any = rd.read_json(rel)
        except OutputError:
            saved = False  # unreadable or not JSON: damaged
        if saved is None:
            return None
        if not isinstance(saved, dict):
            self._warn(f"{rel} is damaged; what it held is made again")
            return None
        return saved

    def _restore(self, rel: str, build: Callable[[], T]) -> T | None:
        """``build()`` over a saved state file's content; None (with a warning) when the
        content does not have the shape it should."""
        try:
            return build()
        except (KeyError, TypeError, ValueError, AttributeError):
            self._warn(f"{rel} is damaged; what it held is made again")
            return None

    async def _saved_or_made(
        self,
        rd: RunDir,
        path: str,
        version: str,
        load: Callable[[dict[str, Any]], T],
        make: Callable[[], Awaitable[Any]],
        reusable: Callable[[T], bool] | None = None,
    ) -> T:
        """One item's result: reused from ``path`` on ``--resume`` when it was made from the
        same inputs (``version``) and is ``reusable`` (not made while a call was failing),
        else made and saved there at once (atomically)."""
        saved = self._saved(rd, path)
        if saved is not None and saved.get("outline") == version:
            item = self._restore(path, lambda: load(saved["item"]))
            if item is not None and (reusable is None or reusable(item)):
                return item
        item = await make()
        rd.write_json(path, {"outline": version, "item": item.to_json()})
        return item

    async def skeleton(self, llm: Any, rd: RunDir, topic: str, papers: list[Paper]) -> Outline:
        from surveygen.stages.skeleton import build_skeleton, skeleton_brief_tokens

        # What the skeleton reads of each paper (not its ranking scores).
        library = fingerprint([[p.key, p.title, p.year, p.abstract] for p in papers])
        saved = self._saved(rd, "state/outline.json")
        if saved is not None and saved.get("library") != library:
            self._warn("the library changed since the interrupted run: the outline is made anew")
            saved = None
        outline = None
        if saved is not None:
            outline = self._restore("state/outline.json", lambda: _outline(saved["outline"]))
        started = _clock()
        with self.ui.stage("skeleton", 1) as progress:
            if outline is None:
                s = self.settings
                outline = await build_skeleton(
                    llm,
                    topic,
                    papers,
                    max_sections=s.max_sections,
                    warn=self._warn,
                    brief_tokens=skeleton_brief_tokens(s.context_tokens, s.max_output_tokens),
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
        needs: tuple[str, ...] = (),
    ) -> dict[str, Digest]:
        """Every paper digested against ``outline``; each digest saved in ``state/<folder>/``
        as it finishes, with the outline and paper data it was made for. The calls are traced
        as ``<stage>/<key>``, needing ``needs`` (what made the outline) and, in the map
        stage, the paper's first digest (see surveygen.llm.client.Trace)."""
        from surveygen.stages.digest import digest_paper

        version = fingerprint(outline.to_json())
        leaves = [leaf.id for leaf in outline.leaves()]
        # Suggestions are only asked for while the outline may still change.
        suggest = folder == "digests" and self.settings.layers > 0

        async def make(paper: Paper) -> Digest:
            path = f"state/{folder}/{state_name(paper.key)}.json"
            paper_fp = paper_fingerprint(paper)
            saved = self._saved(rd, path)
            if (
                saved is not None
                and saved.get("outline") == version
                and saved.get("paper") == paper_fp
                and saved.get("suggest", False) == suggest
            ):
                done = self._restore(path, lambda: Digest.from_json(saved["item"]))
                if done is not None:
                    return done
            digest = await digest_paper(
                llm,
                topic,
                outline,
                paper,
                context_tokens=self.settings.context_tokens,
                output_tokens=self.settings.max_output_tokens,
                suggest=suggest,
                task=f"{stage}/{paper.key}",
                needs=(*needs, f"digest/{paper.key}") if stage == "map" else needs,
            )
            record = {"outline": version, "paper": paper_fp, "leaves": leaves, "suggest": suggest}
            rd.write_json(path, {**record, "item": digest.to_json()})
            return digest

        def job(paper: Paper) -> Callable[[], Awaitable[Digest]]:
            return lambda: make(paper)

        started = _clock()
        with self.ui.stage(stage, len(papers)) as progress:
            digests, failures = await run_items(((p.key, job(p)) for p in papers), progress)
        for key, reason in sorted(failures.items()):
            self._warn(f"digest of {key} skipped: {reason}")
        self.digest_failures = sorted(set(self.digest_failures) | set(failures))
        self._timed(stage, started)
        return digests

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
        from surveygen.stages.refine import plan_total, refine, refine_plan

        options = self.refine_options()
        version = fingerprint(
            {
                "outline": outline.to_json(),
                "digests": {key: digests[key].to_json() for key in sorted(digests)},
                "options": [options.layers, options.kernel, options.top_k, options.max_candidates],
                "weights": dict(options.weights),
                "max_sections": options.max_sections,
            }
        )
        saved = self._saved(rd, "state/refine/result.json")
        if saved is not None and saved.get("version") == version:
            kept = self._restore("state/refine/result.json", lambda: _outline(saved["outline"]))
            if kept is not None:
                self.refine_report = saved.get("report")
                return kept
        total = plan_total(refine_plan(len(digests), options))
        started = _clock()
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
        longer fits it, or that may hold evidence for a section added since (see
        stages/mapping.py), are digested again. With --outline, papers no earlier run
        digested are digested here too."""
        from surveygen.stages.mapping import needs_redigest, papers_for_new_leaves

        user = self.request.outline is not None
        final_leaves = {leaf.id for leaf in outline.leaves()}
        new_leaves = final_leaves - {i for key in digests for i in made_for[key]}
        for_new = papers_for_new_leaves(outline, new_leaves, papers) if digests else set()
        redo = [
            p
            for p in papers
            if (p.key in digests and needs_redigest(digests[p.key], made_for[p.key], outline))
            or (user and p.key not in digests)
            or (p.key in digests and p.key in for_new)
        ]
        redo_keys = {p.key for p in redo}
        kept = {key: d for key, d in digests.items() if key not in redo_keys}
        self.redigested = len(redo)
        # The final outline comes from refinement (or the skeleton, when nothing was refined);
        # a user's outline from no call at all.
        made_by = () if user else ("skeleton", "refine")
        fresh = await self.digest(
            llm, rd, topic, outline, redo, folder="mapped", stage="map", needs=made_by
        )
        mapped = {**kept, **fresh}
        if not mapped:
            raise RunError(
                "no paper could be digested; see the warnings above and logs/calls.jsonl",
                hint=_ENDPOINT_HINT,
            )
        return mapped

    async def write(
        self,
        llm: Any,
        rd: RunDir,
        topic: str,
        outline: Outline,
        digests: Mapping[str, Digest],
        library: Mapping[str, Paper],
    ) -> Any:
        """Every part of the survey, checked (see surveygen/stages/compose.py)."""
        from surveygen.stages.compose import Composer, WriteOptions, verify_mode
        from surveygen.stages.write import evidence_by_node, prune

        evidence = evidence_by_node(digests, library)
        final, pruned = prune(outline, set(evidence))
        self.pruned = pruned
        if pruned:
            titles = ", ".join(
                f"{node_id} ({outline.find(node_id).title})"  # type: ignore[union-attr]
                for node_id in pruned
            )
            self._warn(
                f"no paper has evidence for {titles}: left out of the survey (kept in outline.md)"
            )
        if not final.leaves():
            raise RunError(
                "no section of the outline received evidence from any paper",
                hint="check that --papers matches the topic; logs/calls.jsonl has the answers",
            )
        settings = self.settings
        verify, why = verify_mode(settings.language, settings.verify)
        if why:
            self._warn(why)
        self.verify = verify
        options = WriteOptions(
            topic=topic,
            language=settings.language,
            length=settings.length,
            verify=verify,
            max_tables=settings.max_tables,
            budget_tokens=settings.context_tokens - settings.max_output_tokens,
        )
        started = _clock()
        composer = Composer(
            llm,
            final,
            evidence,
            library,
            digests,
            options,
            memo=lambda path, version, load, make, reusable=None: self._saved_or_made(
                rd, path, version, load, make, reusable
            ),
            ui=self.ui,
            warn=self._warn,
        )
        outcome = await composer.run()
        self._timed("write", started)
        if not outcome.sections:
            raise RunError("no section could be written; see the warnings above")
        self.pruned += [n for n in outcome.failures if n not in self.pruned]
        return outcome

    def render(
        self,
        rd: RunDir,
        topic: str,
        outcome: Any,
        digests: Mapping[str, Digest],
        library: Mapping[str, Paper],
        ledger: Any,
        *,
        plan: Outline,
    ) -> RunResult:
        """The outputs ``--format`` asks for, from the written survey; outline.md from
        ``plan``, the outline before sections without evidence were left out, so none of it
        (your edits included) is lost."""
        from surveygen.stages.render import render_outline_md
        from surveygen.stages.render_all import render_outputs

        started = _clock()
        with self.ui.stage("render", 1) as progress:
            rendered = render_outputs(outcome, library, digests, self.settings)
            for name, text in rendered.files.items():
                rd.write_text(name, text)
            stale = rd.remove_stale_outputs(rendered.files)
            if stale:
                self.ui.info(f"removed {', '.join(stale)} of an earlier run (not in --format)")
            rd.write_text(
                "outline.md", render_outline_md(plan, user_dir=self.settings.templates_dir)
            )
            progress.advance()
        self._timed("render", started)
        from surveygen.report import build_report

        report = build_report(self, topic, outcome, digests, library, rendered, ledger)
        rd.write_json("report.json", report)
        outputs = [rd.path / name for name in rendered.files]
        outputs += [rd.path / "outline.md", rd.path / "report.json"]
        return RunResult(out_dir=rd.path, outputs=outputs, report=report)
