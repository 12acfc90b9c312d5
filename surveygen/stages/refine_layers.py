"""The convolution layers of one refinement run: merge, apply, judge, select.

:func:`surveygen.stages.refine.refine` runs a :class:`Refiner`; that module's docstring
describes the algorithm. This one holds the run's state and its layers, and the pure pieces
of selection: a scored outline (:class:`_Entry`), the structure signature that spots
duplicate candidates, and the top-K update (:func:`_select`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from surveygen.aio import TaskScope, gather_or_cancel, settle
from surveygen.errors import LLMError
from surveygen.llm.prompts import render_prompt
from surveygen.models import Digest, Outline, OutlineNode, Paper
from surveygen.outline_tree import IdAllocator, OutlineAnswer, outline_from_answer
from surveygen.scoring import ScoreTerms, data_terms
from surveygen.stages.refine import RefineOptions, RefineResult
from surveygen.stages.refine_prompts import (
    JudgeAnswer,
    MergedSuggestion,
    Proposal,
    apply_context,
    clean_edits,
    judge_context,
    merge_context,
    neighbour_order,
    paper_input,
    proposal_input,
)

__all__ = ["Refiner"]

STAGE = "refine"


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class _Entry:
    """A scored outline: the starting one or a candidate; ``history`` lists the proposals
    applied to reach it, oldest first."""

    label: str
    outline: Outline
    terms: ScoreTerms
    history: tuple[str, ...] = ()


def _signature(outline: Outline) -> str:
    """The outline's structure, ids aside: equal for outlines with the same tree of titles
    and descriptions (case and spacing ignored)."""

    def norm(text: str) -> str:
        return " ".join(text.split()).casefold()

    def node(n: OutlineNode) -> list[Any]:
        return [norm(n.title), norm(n.description), [node(c) for c in n.children]]

    return json.dumps([norm(outline.title), [node(s) for s in outline.sections]])


def _select(pool: list[_Entry], candidates: list[_Entry], k: int) -> list[_Entry]:
    """The next top K: candidates scoring strictly above the pool's lowest member join, the
    best K stay; ties keep the incumbent (the sort is stable and members come first)."""
    bar = min(entry.terms.score for entry in pool)
    entrants = [c for c in candidates if c.terms.score > bar]
    ranked = sorted([*pool, *entrants], key=lambda e: -e.terms.score)
    return ranked[:k]


# --------------------------------------------------------------------------- the refiner


class Refiner:
    """One refinement run: the state shared by its layers."""

    def __init__(
        self,
        llm: Any,
        topic: str,
        outline: Outline,
        digests: Mapping[str, Digest],
        papers: Mapping[str, Paper],
        options: RefineOptions,
        allocator: IdAllocator,
        save: Callable[[str, Any], None],
        warn: Callable[[str], None],
        progress: Callable[[], None] | None,
    ) -> None:
        self.llm = llm
        self.topic = topic
        self.start = outline
        self.digests = digests
        self.papers = papers
        self.options = options
        self.allocator = allocator
        self.save = save
        self.warn = warn
        self.progress = progress
        self.paper_keys = set(papers) | set(digests)
        self.calls = 0
        self.use_judge = True
        self.scored: dict[str, str] = {}  # signature -> label of the entry that has it
        # The traced task of the merge call that made each proposal (see _merge).
        self.origin: dict[str, str] = {}

    # ---- calls

    async def _one(self, what: str, job: Callable[[], Awaitable[Any]]) -> Any:
        """One job's result; None, with a warning, when its call fails for good (a fatal
        error propagates)."""
        self.calls += 1
        try:
            outcome = await settle(job)
        finally:
            if self.progress is not None:
                self.progress()
        if isinstance(outcome, LLMError):
            self.warn(f"refine: {what} skipped: {outcome.message}")
            return None
        return outcome

    async def _attempt(self, jobs: Sequence[tuple[str, Callable[[], Awaitable[Any]]]]) -> list[Any]:
        """Run the jobs concurrently (see :meth:`_one`); results keep job order."""
        return await gather_or_cancel(self._one(what, job) for what, job in jobs)

    def _job(
        self,
        name: str,
        context: dict[str, Any],
        schema: type[BaseModel],
        item: str,
        task: str,
        needs: Sequence[str],
    ) -> Callable[[], Awaitable[Any]]:
        prompt = render_prompt(name, **context)
        return lambda: self.llm.structured(
            prompt, schema, stage=STAGE, item=item, task=task, needs=needs
        )

    def _judge_job(
        self, outline: Outline, item: str, task: str, needs: Sequence[str]
    ) -> Callable[[], Awaitable[Any]]:
        context = judge_context(self.topic, outline, self.papers, self.paper_keys)
        return self._job("refine_judge", context, JudgeAnswer, item, task, needs)

    @staticmethod
    def _selection(layer: int) -> tuple[str, ...]:
        """The traced tasks the top K after ``layer`` is chosen from: its candidates and their
        judges (layer 0: the starting outline's judge)."""
        if layer == 0:
            return ("refine/0",)
        return (f"refine/{layer}/apply", f"refine/{layer}/judge")

    def _terms(self, outline: Outline, answer: JudgeAnswer | None) -> ScoreTerms:
        entropy, coverage, redundancy = data_terms(outline, self.digests, self.paper_keys)
        return ScoreTerms.make(
            answer.term() if answer is not None else None,
            entropy,
            coverage,
            redundancy,
            self.options.weights,
            rationale=answer.rationale.strip() if answer is not None else "",
        )

    # ---- layers

    def _layer_one_groups(self, order: list[str]) -> list[list[dict[str, Any]]]:
        """The merge inputs of each layer-1 kernel (an empty list: no suggestions, no call)."""
        width = self.options.kernel
        return [
            [
                paper_input(self.digests[key], self.papers.get(key))
                for key in order[start : start + width]
                if self.digests[key].suggestions
            ]
            for start in range(0, len(order), width)
        ]

    async def _merge(
        self, layer: int, previous: list[Proposal], order: list[str], best: Outline, extra: list
    ) -> tuple[list[Proposal], list[Proposal], list[Any]]:
        """This layer's merged suggestions (new and carried, in order), the new ones alone,
        and the results of ``extra`` jobs run alongside the merges."""
        if layer == 1:
            groups = [g for g in self._layer_one_groups(order) if g]
        else:
            width = self.options.kernel
            groups = [
                [proposal_input(p) for p in previous[start : start + width]]
                for start in range(0, len(previous), width)
            ]
        jobs: list[tuple[str, Callable[[], Awaitable[Any]]]] = list(extra)
        merging = [g for g in groups if layer == 1 or len(g) >= 2]
        for n, inputs in enumerate(merging, 1):
            item = f"layer {layer} merge {n}"
            context = merge_context(self.topic, best, layer, inputs)
            # Layer 1 reads digests (ordered by all of them) against the skeleton; later
            # layers read the merged suggestions of their group against the best outline.
            needs = (
                ("skeleton", "digest")
                if layer == 1
                else (*(self.origin[i["proposal"].id] for i in inputs), *self._selection(layer - 1))
            )
            job = self._job(
                "refine_merge", context, MergedSuggestion, item, f"refine/{layer}/merge/{n}", needs
            )
            jobs.append((item, job))
        results = await self._attempt(jobs)
        answers = iter(results[len(extra) :])
        made: list[Proposal] = []
        listing: list[Proposal] = []
        merged = 0
        for inputs in groups:
            if layer > 1 and len(inputs) == 1:
                carried = inputs[0]["proposal"]
                listing.append(replace(carried, carried=True))
                continue
            answer = next(answers)
            merged += 1
            if answer is None:
                continue
            edits = clean_edits(answer.edits)
            if not edits:
                continue
            proposal = Proposal(
                id=f"L{layer}.{len(made) + 1}",
                layer=layer,
                summary=" ".join(answer.summary.split()),
                rationale=answer.rationale.strip(),
                edits=edits,
                papers=tuple(key for i in inputs for key in i["papers"]),
            )
            self.origin[proposal.id] = f"refine/{layer}/merge/{merged}"
            made.append(proposal)
            listing.append(proposal)
        return listing, made, results[: len(extra)]

    async def run(self) -> RefineResult:
        options = self.options
        start_terms = self._terms(self.start, None)
        if options.layers == 0 or not any(d.suggestions for d in self.digests.values()):
            reason = (
                "refinement is off (0 layers)"
                if options.layers == 0
                else "no digest has suggestions for the outline: nothing to merge"
            )
            return self._finish(
                [_Entry("initial", self.start, start_terms)], start_terms, [], reason
            )

        order = neighbour_order(self.digests, self.papers)
        judge_item = "initial outline"
        judge = self._judge_job(self.start, judge_item, "refine/0/judge", ("skeleton",))
        extra = [(f"judge of the {judge_item}", judge)]
        pool: list[_Entry] = []
        previous: list[Proposal] = []
        reports: list[dict[str, Any]] = []
        initial = start_terms
        stopped: str | None = None
        for layer in range(1, options.layers + 1):
            if layer > 1 and len(previous) <= 1:
                stopped = (
                    f"stopped before layer {layer}: nothing is left to merge (a single merged "
                    "suggestion remains, already applied; it has seen every paper it can)"
                )
                reports[-1]["stopped"] = stopped
                self.save(f"layer-{layer - 1}/layer.json", reports[-1])
                break
            calls_before = self.calls
            best = pool[0].outline if pool else self.start
            listing, made, extras = await self._merge(layer, previous, order, best, extra)
            if layer == 1:
                answer = extras[0]
                if answer is None:
                    self.use_judge = False
                    self.warn(
                        "refine: the starting outline could not be judged; candidates are "
                        "compared on the data terms alone"
                    )
                initial = self._terms(self.start, answer)
                pool = [_Entry("initial", self.start, initial)]
                self.scored[_signature(self.start)] = "initial"
                self.save("initial.json", {"outline": self.start.to_json(), **initial.to_json()})
                extra = []
            self.save(f"layer-{layer}/merged.json", [p.to_json() for p in listing])
            report, pool = await self._layer(layer, pool, made)
            report["calls"] = self.calls - calls_before
            report["carried"] = [p.id for p in listing if p.carried]
            report["receptive_field"] = max((len(p.papers) for p in listing), default=0)
            if not made and layer < options.layers:
                stopped = f"stopped after layer {layer}: no merged suggestion with edits came out"
                report["stopped"] = stopped
            self.save(f"layer-{layer}/layer.json", report)
            reports.append(report)
            previous = listing
            if not made:
                break
        return self._finish(pool, initial, reports, stopped)

    async def _layer(
        self, layer: int, pool: list[_Entry], made: list[Proposal]
    ) -> tuple[dict[str, Any], list[_Entry]]:
        """Apply the layer's new proposals to the top K, score the candidates, select: the
        layer's report and the next top K."""
        best_before = pool[0].terms.score
        pairs = [(rank, p) for rank in range(len(pool)) for p in made]
        pairs = pairs[: self.options.max_candidates]
        # Which proposal goes on which outline depends on every merge of the layer (only
        # those with edits count) and on the top K the last layer chose.
        apply_needs = (f"refine/{layer}/merge", *self._selection(layer - 1))
        records: list[dict[str, Any]] = []
        judging: list[tuple[int, Outline, asyncio.Future[Any] | None]] = []
        seen_here: dict[str, str] = {}
        async with TaskScope() as scope:
            applying = []
            for n, (rank, proposal) in enumerate(pairs, 1):
                item = f"layer {layer} candidate {n}"
                job = self._job(
                    "refine_apply",
                    apply_context(
                        self.topic, pool[rank].outline, proposal, self.options.max_sections
                    ),
                    OutlineAnswer,
                    item,
                    f"refine/{layer}/apply/{n}",
                    apply_needs,
                )
                applying.append(
                    scope.start(self._one(f"{item} ({proposal.id} on rank {rank + 1})", job))
                )
            # Candidates are taken in order as their outlines arrive, and each is judged at
            # once: whether it duplicates an outline scored before needs only the candidates
            # before it, not the whole layer.
            for n, ((rank, proposal), pending) in enumerate(zip(pairs, applying, strict=True), 1):
                answer = await pending
                base = pool[rank]
                label = f"layer-{layer}/candidate-{n:02d}"
                record: dict[str, Any] = {
                    "label": label,
                    "layer": layer,
                    "proposal": proposal.to_json(),
                    "source": base.label,
                    "source_rank": rank + 1,
                    "history": [*base.history, proposal.id],
                    "outline": None,
                    "terms": None,
                    "score": None,
                    "rationale": "",
                    "accepted": False,
                    "duplicate_of": None,
                    "error": None,
                }
                records.append(record)
                if answer is None:
                    record["error"] = "the apply call failed"
                    continue
                try:
                    outline = outline_from_answer(
                        answer,
                        allocator=self.allocator,
                        known_ids=[node.id for node, _ in base.outline.walk()],
                        max_leaves=self.options.max_sections,
                        fallback_title=base.outline.title,
                    )
                except LLMError as exc:
                    self.warn(f"refine: {label} skipped: {exc.message}")
                    record["error"] = exc.message
                    continue
                record["outline"] = outline.to_json()
                signature = _signature(outline)
                twin = self.scored.get(signature) or seen_here.get(signature)
                if twin is not None:
                    record["duplicate_of"] = twin
                    continue
                seen_here[signature] = label
                verdict = None
                if self.use_judge:
                    needs = [f"refine/{layer}/apply/{m}" for m in range(1, n + 1)]
                    job = self._judge_job(outline, label, f"refine/{layer}/judge/{n}", needs)
                    verdict = scope.start(self._one(f"judge of {label}", job))
                judging.append((n - 1, outline, verdict))
            judged = [await verdict if verdict else None for _, _, verdict in judging]

        candidates: list[_Entry] = []
        for (i, outline, _), answer in zip(judging, judged, strict=True):
            record = records[i]
            if self.use_judge and answer is None:
                record["error"] = "the judge call failed"
                continue
            terms = self._terms(outline, answer)
            record.update(terms=terms.to_json(), score=terms.score, rationale=terms.rationale)
            self.scored[_signature(outline)] = record["label"]
            candidates.append(_Entry(record["label"], outline, terms, tuple(record["history"])))

        new_pool = _select(pool, candidates, self.options.top_k)
        accepted = {e.label for e in new_pool} - {e.label for e in pool}
        for record in records:
            record["accepted"] = record["label"] in accepted
            self.save(f"{record['label']}.json", record)
        report = {
            "layer": layer,
            "merged": len(made),
            "merged_ids": [p.id for p in made],
            "applications": len(pairs),
            "candidates": sum(r["outline"] is not None for r in records),
            "duplicates": sum(r["duplicate_of"] is not None for r in records),
            "scored": len(candidates),
            "failed": sum(r["error"] is not None for r in records),
            "accepted": len(accepted),
            "accepted_labels": sorted(accepted),
            "best_before": round(best_before, 6),
            "best_after": round(new_pool[0].terms.score, 6),
            "top_k": [{"label": e.label, "score": round(e.terms.score, 6)} for e in new_pool],
            "stopped": None,
        }
        return report, new_pool

    def _finish(
        self,
        pool: list[_Entry],
        initial: ScoreTerms,
        layers: list[dict[str, Any]],
        stopped: str | None,
    ) -> RefineResult:
        best = pool[0]
        result = RefineResult(
            outline=best.outline,
            score=best.terms,
            initial=initial,
            layers=layers,
            calls=self.calls,
            history=best.history,
            stopped=stopped,
        )
        self.save("summary.json", result.to_json())
        return result
