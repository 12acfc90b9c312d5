"""Word budgets: --length split over the survey's parts by evidence."""

from __future__ import annotations

from surveygen.lengths import (
    FRAME_SHARE,
    MAX_AUTO,
    MAX_LEAF,
    MIN_AUTO,
    MIN_LEAF,
    default_length,
    plan_lengths,
)
from surveygen.models import Outline, OutlineNode

OUTLINE = Outline(
    "Survey",
    (
        OutlineNode(
            "n1",
            "Retrievers",
            "",
            (OutlineNode("n2", "Sparse", ""), OutlineNode("n3", "Dense", "")),
        ),
        OutlineNode("n4", "Generators", ""),
    ),
)


def _sum(plan) -> int:
    return plan.abstract + plan.introduction + plan.conclusion + sum(plan.sections.values())


def test_default_length_is_8000_words_for_60_papers_and_bounded() -> None:
    assert default_length(60) == 8100  # 135 words per paper, rounded to 100
    assert default_length(2) == MIN_AUTO
    assert default_length(10_000) == MAX_AUTO


def test_total_is_kept_and_every_part_gets_words() -> None:
    plan = plan_lengths(OUTLINE, {"n2": 1, "n3": 1, "n4": 1}, 4000)
    assert abs(_sum(plan) - 4000) <= 3  # rounding only
    assert set(plan.sections) == {"n1", "n2", "n3", "n4"}
    frame = plan.abstract + plan.introduction + plan.conclusion + plan.sections["n1"]
    assert frame <= FRAME_SHARE * 4000


def test_few_leaves_cannot_take_more_than_one_answer_each() -> None:
    plan = plan_lengths(OUTLINE, {"n2": 1, "n3": 1, "n4": 1}, 20000)
    assert [plan.sections[i] for i in ("n2", "n3", "n4")] == [MAX_LEAF] * 3


def test_leaves_share_by_evidence_weight() -> None:
    plan = plan_lengths(OUTLINE, {"n2": 1.0, "n3": 3.0, "n4": 2.0}, 3000)
    leaves = plan.sections
    assert leaves["n3"] > leaves["n4"] > leaves["n2"]
    assert abs(leaves["n3"] / leaves["n2"] - 3.0) < 0.05


def test_floor_and_ceiling_per_leaf() -> None:
    plan = plan_lengths(OUTLINE, {"n2": 0.001, "n3": 100.0, "n4": 1.0}, 5000)
    assert plan.sections["n2"] == MIN_LEAF
    assert plan.sections["n3"] == MAX_LEAF


def test_small_total_shrinks_the_frame_instead_of_the_leaves() -> None:
    bushy = Outline(
        "S",
        tuple(OutlineNode(f"p{i}", "P", "", (OutlineNode(f"l{i}", "L", ""),)) for i in range(5)),
    )
    plan = plan_lengths(bushy, {}, 1200)
    frame = plan.abstract + plan.introduction + plan.conclusion
    frame += sum(plan.sections[f"p{i}"] for i in range(5))
    assert frame <= FRAME_SHARE * 1200 + 1
    assert all(plan.sections[f"l{i}"] >= MIN_LEAF for i in range(5))
