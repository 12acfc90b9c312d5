"""Refine: convolution layers over the papers' outline suggestions, with entropy-driven selection.

Step 4 of the pipeline, after LLM×MapReduce-V2 (arXiv 2504.05732):

* **Local features** are the digests' suggestions for the outline. Digests are ordered so
  that neighbours are similar (:func:`neighbour_order`: a greedy nearest-neighbour chain over
  TF-IDF vectors of each paper's title and digest summaries, deterministic).
* **Layer 1** slides a kernel over W neighbouring digests (stride W, no overlap) and merges
  each kernel's suggestions into ONE merged suggestion, a short coherent set of edits (one
  call, ``prompts/refine_merge.j2``; a kernel without suggestions makes no call). **Layer l**
  merges groups of W merged suggestions of layer l−1, so the receptive field grows as W^l.
  At layer l ≥ 2 a group of one is carried over unchanged, without a call, and is not
  applied again.
* Every new merged suggestion is **applied** to each of the current top-K outlines (one call,
  ``prompts/refine_apply.j2``: the whole outline back, ids kept for unchanged nodes), at most
  ``max_candidates`` applications per layer, assigned round-robin: every suggestion to the
  rank-1 outline first, then to rank 2, and so on.
* Every candidate is **scored** (:mod:`surveygen.scoring`: the rubric judge of
  ``prompts/refine_judge.j2`` plus entropy, coverage and redundancy measured from the data).
  A candidate structurally identical to an outline already scored (same tree of titles and
  descriptions, ids aside) is not judged again. A candidate joins the top K only by scoring
  strictly higher than its lowest member, so the best score never drops and the final
  outline is the best seen; candidates are built on the survivors, so edits accumulate.
* The starting outline is judged too: its score is the bar. If that judge call fails, the
  run goes on with data terms only (no judge for any candidate), so scores stay comparable.
* It **stops early** when nothing new is left to merge: a layer whose input is a single
  merged suggestion that was already applied (its receptive field covers every paper that
  made it through the earlier merges), or a layer whose merges gave no edits. The result's
  ``stopped`` and the last layer report say so.

A failing merge, apply or judge call is skipped with a warning; BudgetExceeded and
LLMRejectedError propagate. With ``layers=0``, or when no digest has suggestions, no call is
made and the outline comes back with its data terms only (``judged`` false, judge term 0).

Every candidate, its terms and the judge's rationale go through ``save(relpath, obj)``:
``initial.json``, ``layer-<l>/merged.json``, ``layer-<l>/candidate-<nn>.json``,
``layer-<l>/layer.json`` and ``summary.json``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from surveygen.errors import BudgetExceeded, LLMError, LLMRejectedError
from surveygen.llm.prompts import render_prompt
from surveygen.models import Digest, Outline, OutlineNode, Paper, Suggestion
from surveygen.outline_tree import (
    IdAllocator,
    OutlineAnswer,
    outline_from_answer,
    outline_text,
    outline_view,
)
from surveygen.scoring import DEFAULT_WEIGHTS, ScoreTerms, data_terms, validate_weights

__all__ = [
    "EditDraft",
    "JudgeAnswer",
    "MergedSuggestion",
    "Proposal",
    "RefineOptions",
    "RefineResult",
    "apply_context",
    "judge_context",
    "merge_context",
    "neighbour_order",
    "paper_input",
    "proposal_input",
    "refine",
    "refine_plan",
]

STAGE = "refine"
MAX_EDITS = 6
# Paper titles shown to the judge; more would crowd out the outline it is judging.
JUDGE_PAPERS = 80
JUDGE_TITLE_CHARS = 160


# --------------------------------------------------------------------------- answers


class EditDraft(BaseModel):
    """One edit of a merged suggestion (the fields of :class:`surveygen.models.Suggestion`)."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["add", "remove", "merge", "rename", "move"]
    targets: list[str]
    parent: str | None
    title: str
    description: str
    rationale: str


class MergedSuggestion(BaseModel):
    """The merge prompt's answer: why, in one line what, then the edits."""

    model_config = ConfigDict(extra="forbid")
    rationale: str
    summary: str
    edits: list[EditDraft]


class JudgeAnswer(BaseModel):
    """The judge's rubric, rationale first so the scores follow from it; each 0-10."""

    model_config = ConfigDict(extra="forbid")
    rationale: str
    structure: float
    coverage: float
    redundancy: float
    description_quality: float

    def term(self) -> float:
        """The judge term: the mean of the four scores (each clipped to 0-10) divided by 10."""
        scores = (self.structure, self.coverage, self.redundancy, self.description_quality)
        return float(np.mean([min(10.0, max(0.0, s)) for s in scores])) / 10.0


# --------------------------------------------------------------------------- options and plan


@dataclass(frozen=True)
class RefineOptions:
    """``--layers``, ``--kernel``, ``--top-k``; applications per layer; score weights; and
    the most leaves an outline may have (``max_sections``)."""

    layers: int = 3
    kernel: int = 3
    top_k: int = 3
    max_candidates: int = 12
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    max_sections: int = 12

    def __post_init__(self) -> None:
        for name, low in (
            ("layers", 0),
            ("kernel", 2),
            ("top_k", 1),
            ("max_candidates", 1),
            ("max_sections", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                why = (
                    " (a kernel of 1 never widens the receptive field)" if name == "kernel" else ""
                )
                raise ValueError(f"refine {name} must be an integer >= {low}, not {value!r}{why}")
        object.__setattr__(self, "weights", validate_weights(self.weights))


def refine_plan(n_papers: int, options: RefineOptions) -> list[dict[str, int]]:
    """Upper bounds on refine's LLM calls, one entry per layer that can make calls.

    ``{"layer", "merge", "apply", "judge"}``; layer 1's ``judge`` includes the starting
    outline's own judge call. Retries and repair requests are not counted. Empty when
    ``layers`` is 0 or there are no papers.
    """
    plan: list[dict[str, int]] = []
    if options.layers == 0 or n_papers <= 0:
        return plan
    width = options.kernel
    size = 0  # merged suggestions (new or carried) leaving the previous layer
    pool = 1  # outlines in the top K
    for layer in range(1, options.layers + 1):
        if layer == 1:
            merges = math.ceil(n_papers / width)
            size = merges
        else:
            if size <= 1:
                break
            merges = size // width + (1 if size % width >= 2 else 0)
            size = math.ceil(size / width)
        apply = min(options.max_candidates, merges * pool)
        judge = apply + (1 if layer == 1 else 0)  # layer 1 also judges the starting outline
        plan.append({"layer": layer, "merge": merges, "apply": apply, "judge": judge})
        pool = min(options.top_k, pool + apply)
    return plan


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Proposal:
    """A merged suggestion: a short coherent set of edits, and the papers it has seen.

    ``id`` is ``L<layer>.<n>``; ``carried`` marks one passed on unchanged to a later layer.
    """

    id: str
    layer: int
    summary: str
    rationale: str
    edits: tuple[Suggestion, ...]
    papers: tuple[str, ...]
    carried: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "layer": self.layer,
            "summary": self.summary,
            "rationale": self.rationale,
            "edits": [e.to_json() for e in self.edits],
            "papers": list(self.papers),
            "carried": self.carried,
        }


@dataclass(frozen=True)
class _Entry:
    """A scored outline: the starting one or a candidate; ``history`` lists the proposals
    applied to reach it, oldest first."""

    label: str
    outline: Outline
    terms: ScoreTerms
    history: tuple[str, ...] = ()


@dataclass
class RefineResult:
    """The best outline seen, its score, the starting score, and one report per layer run.

    A layer report says what the layer did: ``merged`` (count) and ``merged_ids``,
    ``carried``, ``applications``, ``candidates``, ``duplicates``, ``scored``, ``failed``,
    ``accepted`` (count) and ``accepted_labels``, ``best_before`` and ``best_after``,
    ``top_k``, ``calls``, ``receptive_field`` (most papers behind one merged suggestion) and
    ``stopped`` (why no later layer ran, else None). ``stopped`` on the result says why fewer
    than the requested layers ran (None when all of them did); ``history`` lists the merged
    suggestions applied to reach the final outline.
    """

    outline: Outline
    score: ScoreTerms
    initial: ScoreTerms
    layers: list[dict[str, Any]]
    calls: int
    history: tuple[str, ...] = ()
    stopped: str | None = None

    @property
    def improved(self) -> bool:
        return self.score.score > self.initial.score

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RefineResult:
        """Read back what ``to_json`` wrote (``summary.json``), e.g. for a resumed run."""
        return cls(
            outline=Outline.from_json(data["outline"]),
            score=ScoreTerms.from_json(data["score"]),
            initial=ScoreTerms.from_json(data["initial"]),
            layers=list(data.get("layers") or []),
            calls=int(data.get("calls") or 0),
            history=tuple(data.get("history") or ()),
            stopped=data.get("stopped"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "outline": self.outline.to_json(),
            "score": self.score.to_json(),
            "initial": self.initial.to_json(),
            "improved": self.improved,
            "history": list(self.history),
            "scores": [round(self.initial.score, 6)]
            + [layer["best_after"] for layer in self.layers],
            "layers": self.layers,
            "calls": self.calls,
            "stopped": self.stopped,
        }


# --------------------------------------------------------------------------- pure helpers


def neighbour_order(digests: Mapping[str, Digest], papers: Mapping[str, Paper]) -> list[str]:
    """Digest keys in an order where neighbours are similar.

    A greedy nearest-neighbour chain over TF-IDF vectors of each paper's title and digest
    summaries: it starts at the first key in sorted order and always moves to the most similar
    paper not yet visited (ties: the first in sorted order).
    """
    keys = sorted(digests)
    if len(keys) <= 2:
        return keys
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = []
    for key in keys:
        paper = papers.get(key)
        summaries = " ".join(n.summary for n in digests[key].nodes)
        docs.append(f"{paper.title if paper else key}. {summaries}")
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, strip_accents="unicode")
    try:
        matrix = vectorizer.fit_transform(docs)
    except ValueError:  # no usable words: keep the sorted order
        return keys
    sims = (matrix @ matrix.T).toarray()
    order = [0]
    visited = np.zeros(len(keys), dtype=bool)
    visited[0] = True
    while len(order) < len(keys):
        row = np.where(visited, -1.0, sims[order[-1]])
        nxt = int(np.argmax(row))
        order.append(nxt)
        visited[nxt] = True
    return [keys[i] for i in order]


def _signature(outline: Outline) -> str:
    """The outline's structure, ids aside: equal for outlines with the same tree of titles
    and descriptions (case and spacing ignored)."""

    def norm(text: str) -> str:
        return " ".join(text.split()).casefold()

    def node(n: OutlineNode) -> list[Any]:
        return [norm(n.title), norm(n.description), [node(c) for c in n.children]]

    return json.dumps([norm(outline.title), [node(s) for s in outline.sections]])


def _clean_edits(drafts: Sequence[EditDraft]) -> tuple[Suggestion, ...]:
    """Well-formed, distinct edits, at most MAX_EDITS: an edit that cannot be applied as
    stated (a rename without a title, a merge of one node, ...) is dropped."""
    kept: list[Suggestion] = []
    for draft in drafts:
        edit = Suggestion(
            op=draft.op,
            targets=tuple(t.strip() for t in draft.targets if t.strip()),
            parent=(draft.parent or "").strip() or None,
            title=" ".join(draft.title.split()),
            description=" ".join(draft.description.split()),
            rationale=" ".join(draft.rationale.split()),
        )
        needs = {
            "add": bool(edit.title),
            "remove": bool(edit.targets),
            "rename": bool(edit.targets and edit.title),
            "merge": len(edit.targets) >= 2 and bool(edit.title),
            "move": bool(edit.targets),
        }
        if needs[edit.op] and edit not in kept:
            kept.append(edit)
    return tuple(kept[:MAX_EDITS])


def _edit_line(edit: Suggestion) -> str:
    return json.dumps(edit.to_json(), ensure_ascii=False)


# --------------------------------------------------------------------------- prompt contexts


def paper_input(digest: Digest, paper: Paper | None) -> dict[str, Any]:
    """One paper's suggestions as an input of a layer-1 merge."""
    key = digest.paper_key
    return {
        "label": f"paper {key}",
        "heading": f"[@{key}] {paper.title if paper else key}",
        "edits": [_edit_line(s) for s in digest.suggestions],
        "papers": (key,),
    }


def proposal_input(proposal: Proposal) -> dict[str, Any]:
    """A merged suggestion of the previous layer as an input of a merge."""
    return {
        "label": f"merged suggestion {proposal.id}",
        "heading": proposal.summary,
        "edits": [_edit_line(e) for e in proposal.edits],
        "papers": proposal.papers,
        "proposal": proposal,
    }


def merge_context(
    topic: str, outline: Outline, layer: int, inputs: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The context of ``prompts/refine_merge.j2``: merge ``inputs`` against ``outline``."""
    return {
        "topic": topic,
        "outline": outline_text(outline),
        "layer": layer,
        "inputs": list(inputs),
        "max_edits": MAX_EDITS,
    }


def apply_context(
    topic: str, outline: Outline, proposal: Proposal, max_sections: int
) -> dict[str, Any]:
    """The context of ``prompts/refine_apply.j2``: the outline as the JSON to answer in."""
    shown = {"title": outline.title, "sections": outline_view(outline)}
    return {
        "topic": topic,
        "outline_json": json.dumps(shown, ensure_ascii=False, indent=1),
        "summary": proposal.summary or "no summary",
        "edits": [_edit_line(e) for e in proposal.edits],
        "max_sections": max_sections,
    }


def judge_context(
    topic: str, outline: Outline, papers: Mapping[str, Paper], paper_keys: Collection[str]
) -> dict[str, Any]:
    """The context of ``prompts/refine_judge.j2``: the outline and the first JUDGE_PAPERS
    paper titles (in key order)."""
    keys = sorted(paper_keys)
    titles = []
    for key in keys[:JUDGE_PAPERS]:
        paper = papers.get(key)
        titles.append(f"- {' '.join((paper.title if paper else key).split())[:JUDGE_TITLE_CHARS]}")
    return {
        "topic": topic,
        "outline": outline_text(outline),
        "papers": titles,
        "n_papers": len(keys),
    }


def _select(pool: list[_Entry], candidates: list[_Entry], k: int) -> list[_Entry]:
    """The next top K: candidates scoring strictly above the pool's lowest member join, the
    best K stay; ties keep the incumbent (the sort is stable and members come first)."""
    bar = min(entry.terms.score for entry in pool)
    entrants = [c for c in candidates if c.terms.score > bar]
    ranked = sorted([*pool, *entrants], key=lambda e: -e.terms.score)
    return ranked[:k]


# --------------------------------------------------------------------------- the refiner


class _Refiner:
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

    # ---- calls

    async def _attempt(self, jobs: Sequence[tuple[str, Callable[[], Awaitable[Any]]]]) -> list[Any]:
        """Run the jobs concurrently; a job whose call fails for good yields None and a
        warning, a fatal error cancels the others and propagates. Results keep job order."""

        async def one(what: str, job: Callable[[], Awaitable[Any]]) -> Any:
            self.calls += 1
            try:
                return await job()
            except (BudgetExceeded, LLMRejectedError):
                raise
            except LLMError as exc:
                self.warn(f"refine: {what} skipped: {exc.message}")
                return None
            finally:
                if self.progress is not None:
                    self.progress()

        tasks = [asyncio.ensure_future(one(what, job)) for what, job in jobs]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _job(
        self, name: str, context: dict[str, Any], schema: type[BaseModel], item: str
    ) -> Callable[[], Awaitable[Any]]:
        prompt = render_prompt(name, **context)
        return lambda: self.llm.structured(prompt, schema, stage=STAGE, item=item)

    def _judge_job(self, outline: Outline, item: str) -> Callable[[], Awaitable[Any]]:
        context = judge_context(self.topic, outline, self.papers, self.paper_keys)
        return self._job("refine_judge", context, JudgeAnswer, item)

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
            jobs.append((item, self._job("refine_merge", context, MergedSuggestion, item)))
        results = await self._attempt(jobs)
        answers = iter(results[len(extra) :])
        made: list[Proposal] = []
        listing: list[Proposal] = []
        for inputs in groups:
            if layer > 1 and len(inputs) == 1:
                carried = inputs[0]["proposal"]
                listing.append(replace(carried, carried=True))
                continue
            answer = next(answers)
            if answer is None:
                continue
            edits = _clean_edits(answer.edits)
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
        extra = [(f"judge of the {judge_item}", self._judge_job(self.start, judge_item))]
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
        jobs = []
        for n, (rank, proposal) in enumerate(pairs, 1):
            item = f"layer {layer} candidate {n}"
            jobs.append(
                (
                    f"{item} ({proposal.id} on rank {rank + 1})",
                    self._job(
                        "refine_apply",
                        apply_context(
                            self.topic, pool[rank].outline, proposal, self.options.max_sections
                        ),
                        OutlineAnswer,
                        item,
                    ),
                )
            )
        answers = await self._attempt(jobs)

        records: list[dict[str, Any]] = []
        to_judge: list[tuple[int, Outline]] = []
        seen_here: dict[str, str] = {}
        for n, ((rank, proposal), answer) in enumerate(zip(pairs, answers, strict=True), 1):
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
            to_judge.append((n - 1, outline))

        judged: list[Any] = [None] * len(to_judge)
        if self.use_judge:
            judged = await self._attempt(
                [
                    (f"judge of {records[i]['label']}", self._judge_job(o, records[i]["label"]))
                    for i, o in to_judge
                ]
            )
        candidates: list[_Entry] = []
        for (i, outline), answer in zip(to_judge, judged, strict=True):
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


async def refine(
    llm: Any,
    topic: str,
    outline: Outline,
    digests: Mapping[str, Digest],
    papers: Mapping[str, Paper],
    options: RefineOptions,
    *,
    allocator: IdAllocator,
    save: Callable[[str, Any], None] = lambda p, o: None,
    warn: Callable[[str], None] = lambda m: None,
    progress: Callable[[], None] | None = None,
) -> RefineResult:
    """Refine ``outline`` (the one ``digests`` were read against) through the convolution
    layers; see the module docstring. ``allocator`` hands out ids for new nodes and must have
    seen every id of the run; ``progress`` is called once per LLM call made."""
    refiner = _Refiner(
        llm, topic, outline, digests, papers, options, allocator, save, warn, progress
    )
    return await refiner.run()
