"""How many words each part of the survey gets.

``--length`` is the total; without it the survey gets about ``WORDS_PER_PAPER`` words per
paper with evidence (8,000 for 60 papers). The abstract, introduction, conclusion and the
synthesis opening each parent section take fixed shares (together at most ``FRAME_SHARE``);
the rest goes to the leaf sections in proportion to how much evidence each holds, with a
floor so a thin section still says something, and a ceiling a model can write in one answer
(so an outline of very few leaves can come out shorter than a large ``--length``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from surveygen.models import Outline

WORDS_PER_PAPER = 135
MIN_AUTO, MAX_AUTO = 1200, 16000
FRAME_SHARE = 0.3
MIN_LEAF, MAX_LEAF = 90, 2000


def default_length(papers_with_evidence: int) -> int:
    """The total when ``--length`` is not given, rounded to 100 words."""
    words = WORDS_PER_PAPER * max(papers_with_evidence, 0)
    return int(min(max(round(words, -2), MIN_AUTO), MAX_AUTO))


@dataclass(frozen=True)
class LengthPlan:
    total: int
    abstract: int
    introduction: int
    conclusion: int
    sections: Mapping[str, int]  # node id -> words, for leaves and parents alike

    def words(self, node_id: str) -> int:
        return self.sections[node_id]

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "abstract": self.abstract,
            "introduction": self.introduction,
            "conclusion": self.conclusion,
            "sections": dict(self.sections),
        }


def _clamp(value: float, low: int, high: int) -> int:
    return round(min(max(value, low), high))


def plan_lengths(outline: Outline, weights: Mapping[str, float], total: int) -> LengthPlan:
    """Split ``total`` words. ``weights`` gives each leaf's evidence weight (missing: 1)."""
    parents = [node.id for node, _ in outline.walk() if not node.is_leaf]
    leaves = [leaf.id for leaf in outline.leaves()]
    abstract = _clamp(0.025 * total, 100, 300)
    introduction = _clamp(0.07 * total, 120, 900)
    conclusion = _clamp(0.05 * total, 100, 600)
    parent_words = _clamp(0.025 * total, 50, 250)
    frame = abstract + introduction + conclusion + parent_words * len(parents)
    if frame > FRAME_SHARE * total:  # a small total or a bushy outline: shrink every frame part
        scale = FRAME_SHARE * total / frame
        abstract, introduction, conclusion, parent_words = (
            max(int(abstract * scale), 40),
            max(int(introduction * scale), 40),
            max(int(conclusion * scale), 40),
            max(int(parent_words * scale), 30),
        )
        frame = abstract + introduction + conclusion + parent_words * len(parents)
    sections = {node_id: parent_words for node_id in parents}
    sections.update(_split(total - frame, [(i, max(weights.get(i, 1.0), 0.0)) for i in leaves]))
    return LengthPlan(total, abstract, introduction, conclusion, sections)


def _split(words: int, weighted: list[tuple[str, float]]) -> dict[str, int]:
    """Share ``words`` by weight, every share within [MIN_LEAF, MAX_LEAF] (water-filling)."""
    if not weighted:
        return {}
    fixed: dict[str, int] = {}
    free = dict(weighted)
    while free:
        left = max(words - sum(fixed.values()), 0)
        mass = sum(free.values())
        shares = {
            node_id: left * (w / mass if mass > 0 else 1 / len(free)) for node_id, w in free.items()
        }
        low = {i for i, s in shares.items() if s < MIN_LEAF}
        high = {i for i, s in shares.items() if s > MAX_LEAF}
        if not low and not high:
            fixed.update({i: round(s) for i, s in shares.items()})
            break
        for node_id in low:
            fixed[node_id] = MIN_LEAF
            del free[node_id]
        for node_id in high - low:
            fixed[node_id] = MAX_LEAF
            del free[node_id]
    return {node_id: fixed[node_id] for node_id, _ in weighted}


__all__ = ["WORDS_PER_PAPER", "LengthPlan", "default_length", "plan_lengths"]
