"""What refine's prompts see and answer; no LLM calls here.

The answers of ``prompts/refine_merge.j2`` and ``prompts/refine_judge.j2`` (the apply prompt
answers an :class:`surveygen.outline_tree.OutlineAnswer`) and the cleaning of a merge's
edits; :class:`Proposal`, a merged suggestion; :func:`neighbour_order`, the order in which
digests enter layer 1; and the builders of each prompt's context. The layers that use them
are in :mod:`surveygen.stages.refine_layers`; :mod:`surveygen.stages.refine` re-exports the
public names.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from surveygen.models import Digest, Outline, Paper, Suggestion
from surveygen.outline_tree import outline_text, outline_view

__all__ = [
    "JUDGE_PAPERS",
    "MAX_EDITS",
    "EditDraft",
    "JudgeAnswer",
    "MergedSuggestion",
    "Proposal",
    "apply_context",
    "clean_edits",
    "judge_context",
    "merge_context",
    "neighbour_order",
    "paper_input",
    "proposal_input",
]

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


def clean_edits(drafts: Sequence[EditDraft]) -> tuple[Suggestion, ...]:
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


# --------------------------------------------------------------------------- merged suggestions


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


# --------------------------------------------------------------------------- neighbour order


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


# --------------------------------------------------------------------------- prompt contexts


def _edit_line(edit: Suggestion) -> str:
    return json.dumps(edit.to_json(), ensure_ascii=False)


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
