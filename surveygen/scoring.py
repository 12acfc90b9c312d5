"""Entropy-driven scoring of candidate outlines: terms measured from the data, and the score.

Refinement (``surveygen.stages.refine``) keeps the candidate outlines that score best. The
score combines an LLM rubric judge with three terms measured here with numpy and
scikit-learn, without any LLM call:

* **entropy** ``H``: how evenly the papers' evidence spreads over the leaves. With ``c_i``
  the number of evidence items placed on leaf ``i`` of ``n`` leaves and ``p_i = c_i / Σc``,
  ``H = −Σ p_i log p_i / log n``, in [0, 1]: 1 when every leaf holds the same amount, 0 when
  everything sits on one leaf (and 0 with fewer than two leaves or no evidence). Leaves no
  paper can fill and catch-all leaves both lower it.
* **coverage** ``C``: the share of the library's papers with at least one evidence item on
  some leaf of the candidate.
* **redundancy** ``R``: overlap between siblings. Every group of two or more siblings (the
  top-level sections form a group too) contributes the highest TF-IDF cosine between two of
  its members' "title + description"; ``R`` is the mean over those groups, 0 when no group
  has two members. Two siblings with the same description give ``R`` near 1.

The combined score is ``w_judge·J + w_entropy·H + w_coverage·C − w_redundancy·R`` where ``J``
is the mean of the judge's four 0–10 rubric scores divided by 10. Weights are non-negative
and not all zero (:func:`validate_weights`); the score is not normalised by their sum, since
only the order of candidates matters.

Placing evidence on a candidate (:func:`place_evidence`): digests point at node ids of the
outline they were read against, and every candidate descends from it with ids kept, so a
digest node whose id is still a leaf keeps its evidence there; an id that became a parent
passes its evidence to the most similar leaf below it; an id that is gone places its
evidence on the leaf whose title and description are most similar (TF-IDF cosine) to the
digest's summary and quotes, or nowhere when no leaf reaches ``MIN_SIMILARITY``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from surveygen.models import Digest, NodeDigest, Outline, OutlineNode

__all__ = [
    "DEFAULT_WEIGHTS",
    "MIN_SIMILARITY",
    "ScoreTerms",
    "combine",
    "data_terms",
    "evidence_entropy",
    "leaf_counts",
    "paper_coverage",
    "place_evidence",
    "sibling_redundancy",
    "validate_weights",
]

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"judge": 0.4, "entropy": 0.2, "coverage": 0.3, "redundancy": 0.1}
)
# Lowest TF-IDF cosine at which evidence whose node vanished is moved to a leaf by similarity.
MIN_SIMILARITY = 0.1


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The four weights as floats; keys left out take their DEFAULT_WEIGHTS value.

    Raises ValueError naming the offending key for an unknown key, a value that is not a
    finite number >= 0, or weights that are all zero.
    """
    unknown = sorted(set(weights) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise ValueError(
            f"unknown score weight {', '.join(map(repr, unknown))}: the weights are "
            f"{', '.join(DEFAULT_WEIGHTS)}"
        )
    result: dict[str, float] = {}
    for name, default in DEFAULT_WEIGHTS.items():
        value = weights.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"score weight {name!r} must be a number, not {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"score weight {name!r} must be a finite number >= 0, not {value}")
        result[name] = float(value)
    if not any(result.values()):
        raise ValueError("score weights are all zero: give at least one a positive value")
    return result


# --------------------------------------------------------------------------- TF-IDF helpers


def _similarities(queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
    """TF-IDF cosine of every query against every document (rows: queries); zeros when no
    word survives stop-word removal."""
    if not queries or not documents:
        return np.zeros((len(queries), len(documents)))
    matrix = _tfidf([*queries, *documents])
    if matrix is None:
        return np.zeros((len(queries), len(documents)))
    return (matrix[: len(queries)] @ matrix[len(queries) :].T).toarray()


def _tfidf(texts: Sequence[str]) -> Any:
    """L2-normalised TF-IDF rows for ``texts``, or None when no word survives."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, strip_accents="unicode")
    try:
        return vectorizer.fit_transform(texts)
    except ValueError:  # empty vocabulary: only stop words, digits or nothing at all
        return None


def _node_text(node: OutlineNode) -> str:
    return f"{node.title}. {node.description}"


def _digest_text(item: NodeDigest) -> str:
    return " ".join([item.summary, *(e.quote for e in item.evidence)])


# --------------------------------------------------------------------------- placement


def place_evidence(
    outline: Outline, digests: Mapping[str, Digest], *, min_similarity: float = MIN_SIMILARITY
) -> dict[str, dict[str, int]]:
    """Where each paper's evidence lands on ``outline``: leaf id -> {paper key: items}.

    Every leaf has an entry (possibly empty). See the module docstring for the rules: same id
    (a leaf), same id (a parent: its most similar leaf), else the most similar leaf at or
    above ``min_similarity``, else unplaced. Ties go to the leaf first in reading order.
    """
    leaves = outline.leaves()
    placement: dict[str, dict[str, int]] = {leaf.id: {} for leaf in leaves}
    if not leaves:
        return placement
    index = {leaf.id: i for i, leaf in enumerate(leaves)}
    nodes = {node.id: node for node, _ in outline.walk()}

    def add(leaf_id: str, paper_key: str, items: int) -> None:
        cell = placement[leaf_id]
        cell[paper_key] = cell.get(paper_key, 0) + items

    # (paper key, digest node, leaf indices it may go to, similarity it needs)
    pending: list[tuple[str, NodeDigest, list[int], float]] = []
    everywhere = list(range(len(leaves)))
    for key in sorted(digests):
        digest = digests[key]
        for item in digest.nodes:
            if not item.evidence:
                continue
            node = nodes.get(item.node_id)
            if node is None:
                pending.append((digest.paper_key, item, everywhere, min_similarity))
            elif node.is_leaf:
                add(node.id, digest.paper_key, len(item.evidence))
            else:
                below = [index[leaf.id] for leaf in _leaves_under(node)]
                pending.append((digest.paper_key, item, below, -math.inf))
    if pending:
        sims = _similarities(
            [_digest_text(item) for _, item, _, _ in pending], [_node_text(n) for n in leaves]
        )
        for row, (paper_key, item, allowed, floor) in enumerate(pending):
            values = sims[row, allowed]
            best = int(np.argmax(values))  # the first maximum: reading order breaks ties
            if values[best] >= floor:
                add(leaves[allowed[best]].id, paper_key, len(item.evidence))
    return placement


def _leaves_under(node: OutlineNode) -> list[OutlineNode]:
    if node.is_leaf:
        return [node]
    return [leaf for child in node.children for leaf in _leaves_under(child)]


def leaf_counts(placement: Mapping[str, Mapping[str, int]]) -> list[int]:
    """Evidence items per leaf, in the placement's (reading) order."""
    return [sum(cell.values()) for cell in placement.values()]


# --------------------------------------------------------------------------- the data terms


def evidence_entropy(counts: Sequence[float]) -> float:
    """Shannon entropy of ``counts`` normalised by ``log(len(counts))``: in [0, 1].

    0 with fewer than two counts or a zero total. Raises ValueError for a negative or
    non-finite count.
    """
    values = np.asarray(counts, dtype=float).ravel()
    if values.size and (not np.all(np.isfinite(values)) or np.any(values < 0)):
        raise ValueError("evidence counts must be finite and >= 0")
    total = values.sum()
    if values.size < 2 or total <= 0:
        return 0.0
    shares = values[values > 0] / total
    entropy = float(-(shares * np.log(shares)).sum() / math.log(values.size))
    return min(1.0, max(0.0, entropy))


def paper_coverage(
    placement: Mapping[str, Mapping[str, int]], paper_keys: Collection[str]
) -> float:
    """The share of ``paper_keys`` with at least one evidence item on some leaf (0 if none)."""
    if not paper_keys:
        return 0.0
    placed = {key for cell in placement.values() for key, items in cell.items() if items > 0}
    return len(placed & set(paper_keys)) / len(set(paper_keys))


def sibling_redundancy(outline: Outline) -> float:
    """Mean over sibling groups (>= 2 members) of the highest pairwise TF-IDF cosine of
    "title + description"; 0 when no group has two members. Top-level sections are a group."""
    groups = [list(outline.sections)]
    groups += [list(node.children) for node, _ in outline.walk()]
    groups = [group for group in groups if len(group) >= 2]
    if not groups:
        return 0.0
    nodes = [node for node, _ in outline.walk()]
    position = {node.id: i for i, node in enumerate(nodes)}
    matrix = _tfidf([_node_text(node) for node in nodes])
    if matrix is None:
        return 0.0
    maxima = []
    for group in groups:
        rows = matrix[[position[node.id] for node in group]]
        sims = (rows @ rows.T).toarray()
        np.fill_diagonal(sims, 0.0)
        maxima.append(float(sims.max()))
    return min(1.0, max(0.0, float(np.mean(maxima))))


def data_terms(
    outline: Outline, digests: Mapping[str, Digest], paper_keys: Collection[str]
) -> tuple[float, float, float]:
    """Entropy, coverage and redundancy of ``outline`` (see the module docstring)."""
    placement = place_evidence(outline, digests)
    return (
        evidence_entropy(leaf_counts(placement)),
        paper_coverage(placement, paper_keys),
        sibling_redundancy(outline),
    )


def combine(
    judge: float, entropy: float, coverage: float, redundancy: float, weights: Mapping[str, float]
) -> float:
    """``w_judge·judge + w_entropy·entropy + w_coverage·coverage − w_redundancy·redundancy``."""
    w = validate_weights(weights)
    return (
        w["judge"] * judge
        + w["entropy"] * entropy
        + w["coverage"] * coverage
        - w["redundancy"] * redundancy
    )


@dataclass(frozen=True)
class ScoreTerms:
    """One outline's score and its parts. ``judge`` is the rubric mean / 10, in [0, 1];
    ``judged`` is False when no judge answer is behind it (then ``judge`` is 0)."""

    judge: float
    entropy: float
    coverage: float
    redundancy: float
    score: float
    rationale: str = ""
    judged: bool = True

    @classmethod
    def make(
        cls,
        judge: float | None,
        entropy: float,
        coverage: float,
        redundancy: float,
        weights: Mapping[str, float],
        rationale: str = "",
    ) -> ScoreTerms:
        """Terms with their combined score; ``judge=None`` means not judged (counts as 0)."""
        value = 0.0 if judge is None else judge
        return cls(
            judge=value,
            entropy=entropy,
            coverage=coverage,
            redundancy=redundancy,
            score=combine(value, entropy, coverage, redundancy, weights),
            rationale=rationale,
            judged=judge is not None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 6),
            "judge": round(self.judge, 6),
            "entropy": round(self.entropy, 6),
            "coverage": round(self.coverage, 6),
            "redundancy": round(self.redundancy, 6),
            "judged": self.judged,
            "rationale": self.rationale,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoreTerms:
        return cls(
            judge=float(data["judge"]),
            entropy=float(data["entropy"]),
            coverage=float(data["coverage"]),
            redundancy=float(data["redundancy"]),
            score=float(data["score"]),
            rationale=data.get("rationale") or "",
            judged=bool(data.get("judged", True)),
        )
