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

This module holds the options, the call plan, the result and :func:`refine`;
:mod:`surveygen.stages.refine_layers` runs the layers and
:mod:`surveygen.stages.refine_prompts` holds what the prompts see and answer (re-exported
here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from surveygen.models import Digest, Outline, Paper
from surveygen.outline_tree import IdAllocator
from surveygen.scoring import DEFAULT_WEIGHTS, ScoreTerms, validate_weights
from surveygen.stages.refine_prompts import (
    EditDraft,
    JudgeAnswer,
    MergedSuggestion,
    Proposal,
    apply_context,
    judge_context,
    merge_context,
    neighbour_order,
    paper_input,
    proposal_input,
)

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
    "plan_total",
    "proposal_input",
    "refine",
    "refine_plan",
]


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


def plan_total(plan: Sequence[Mapping[str, int]]) -> int:
    """The most refine calls in all, from :func:`refine_plan`'s layers."""
    return sum(layer["merge"] + layer["apply"] + layer["judge"] for layer in plan)


# --------------------------------------------------------------------------- result


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


# --------------------------------------------------------------------------- the run


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
    # Imported here, not at the top: the layers build on this module's options and result.
    from surveygen.stages.refine_layers import Refiner

    refiner = Refiner(
        llm, topic, outline, digests, papers, options, allocator, save, warn, progress
    )
    return await refiner.run()
