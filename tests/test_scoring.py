"""The data terms of the refinement score, on hand-made outlines with values worked out by hand."""

from __future__ import annotations

import math

import pytest

from surveygen.models import Digest, Evidence, NodeDigest, Outline, OutlineNode
from surveygen.scoring import (
    DEFAULT_WEIGHTS,
    ScoreTerms,
    combine,
    data_terms,
    evidence_entropy,
    leaf_counts,
    paper_coverage,
    place_evidence,
    sibling_redundancy,
    validate_weights,
)

OUTLINE = Outline(
    title="Retrieval-augmented generation",
    sections=(
        OutlineNode(
            "n1",
            "Retrievers",
            "How passages are found.",
            (
                OutlineNode("n2", "Sparse retrieval", "Compare BM25 lexical term matching."),
                OutlineNode("n3", "Dense retrieval", "Trace dual encoder embedding models."),
            ),
        ),
        OutlineNode("n4", "Evaluation", "Contrast benchmarks and metrics."),
    ),
)


def node(node_id: str, summary: str, items: int = 1) -> NodeDigest:
    return NodeDigest(
        node_id=node_id,
        summary=summary,
        evidence=tuple(Evidence(f"quote {i}", i) for i in range(items)),
    )


def digest(key: str, *nodes: NodeDigest) -> Digest:
    return Digest(paper_key=key, nodes=nodes)


# --- entropy ----------------------------------------------------------------------------------


def test_uniform_spread_has_entropy_one() -> None:
    assert evidence_entropy([2, 2, 2, 2]) == pytest.approx(1.0)


def test_everything_on_one_leaf_has_entropy_zero() -> None:
    assert evidence_entropy([5, 0, 0]) == 0.0


def test_two_of_four_leaves_equally_filled_is_half() -> None:
    # H = log 2, normalised by log 4.
    assert evidence_entropy([1, 1, 0, 0]) == pytest.approx(0.5)


def test_uneven_spread_is_between() -> None:
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert evidence_entropy([3, 1]) == pytest.approx(expected)
    assert expected == pytest.approx(0.811278, abs=1e-6)


@pytest.mark.parametrize("counts", [[], [7], [0, 0, 0]])
def test_entropy_is_zero_without_two_leaves_or_evidence(counts: list[int]) -> None:
    assert evidence_entropy(counts) == 0.0


@pytest.mark.parametrize("counts", [[1, -1], [1, math.nan], [math.inf, 1]])
def test_entropy_rejects_impossible_counts(counts: list[float]) -> None:
    with pytest.raises(ValueError):
        evidence_entropy(counts)


# --- coverage ---------------------------------------------------------------------------------


def test_coverage_is_the_share_of_papers_with_placed_evidence() -> None:
    placement = {"n2": {"p1": 2}, "n3": {"p2": 0, "outsider": 1}, "n4": {}}
    # p1 has evidence; p2 has a zero count; the outsider is not one of the papers.
    assert paper_coverage(placement, ["p1", "p2", "p3", "p4"]) == pytest.approx(0.25)
    assert paper_coverage(placement, ["p1"]) == 1.0
    assert paper_coverage(placement, []) == 0.0


# --- redundancy -------------------------------------------------------------------------------


def test_identical_sibling_descriptions_are_fully_redundant() -> None:
    outline = Outline(
        "t",
        (
            OutlineNode("a", "Dense retrieval", "Compare dual encoders."),
            OutlineNode("b", "Dense retrieval", "Compare dual encoders."),
        ),
    )
    assert sibling_redundancy(outline) == pytest.approx(1.0)


def test_disjoint_sibling_descriptions_are_not_redundant() -> None:
    outline = Outline(
        "t",
        (
            OutlineNode("a", "Dense retrieval", "Compare dual encoders."),
            OutlineNode("b", "Evaluation", "Contrast benchmarks and metrics."),
        ),
    )
    assert sibling_redundancy(outline) == 0.0


def test_redundancy_is_the_mean_over_groups_of_the_worst_pair() -> None:
    outline = Outline(
        "t",
        (
            OutlineNode(
                "a",
                "Retrievers",
                "Passages.",
                (
                    OutlineNode("c", "Dense retrieval", "Compare dual encoders."),
                    OutlineNode("d", "Dense retrieval", "Compare dual encoders."),
                    OutlineNode("e", "Sparse lexical", "Term weighting."),
                ),
            ),
            OutlineNode("b", "Evaluation", "Contrast benchmarks and metrics."),
        ),
    )
    # Top level: {a, b} share no word -> 0. Children: max pair (c, d) -> 1. Mean: 0.5.
    assert sibling_redundancy(outline) == pytest.approx(0.5)


def test_redundancy_is_zero_without_a_sibling_group() -> None:
    outline = Outline("t", (OutlineNode("a", "Only", "One.", (OutlineNode("b", "Child", "x"),)),))
    assert sibling_redundancy(outline) == 0.0


# --- placement --------------------------------------------------------------------------------


def test_evidence_on_a_leaf_id_stays_there() -> None:
    placement = place_evidence(OUTLINE, {"p1": digest("p1", node("n3", "anything", items=3))})
    assert placement == {"n2": {}, "n3": {"p1": 3}, "n4": {}}


def test_evidence_on_an_id_that_became_a_parent_goes_to_its_most_similar_leaf() -> None:
    outline = Outline(
        "t",
        (
            OutlineNode(
                "n4",
                "Evaluation",
                "Benchmarks.",
                (
                    OutlineNode("n8", "Question answering benchmarks", "Natural Questions."),
                    OutlineNode("n9", "Faithfulness metrics", "Hallucination measures."),
                ),
            ),
            OutlineNode("n2", "Sparse retrieval", "BM25."),
        ),
    )
    digests = {"p1": digest("p1", node("n4", "Measures hallucination with a faithfulness metric"))}
    assert place_evidence(outline, digests)["n9"] == {"p1": 1}


def test_a_parent_with_no_similar_leaf_still_keeps_the_evidence_below_it() -> None:
    outline = Outline(
        "t",
        (
            OutlineNode("n4", "Evaluation", "", (OutlineNode("n8", "Alpha", "Beta."),)),
            OutlineNode("n2", "Sparse retrieval", "Lexical quantum chromodynamics."),
        ),
    )
    digests = {"p1": digest("p1", node("n4", "quantum chromodynamics"))}
    placement = place_evidence(outline, digests)
    assert placement["n8"] == {"p1": 1}  # below n4, even though n2 is the more similar leaf
    assert placement["n2"] == {}


def test_evidence_whose_node_vanished_goes_to_the_most_similar_leaf() -> None:
    digests = {"p1": digest("p1", node("n77", "New benchmarks and metrics for evaluation", 2))}
    assert place_evidence(OUTLINE, digests) == {"n2": {}, "n3": {}, "n4": {"p1": 2}}


def test_evidence_below_the_minimum_similarity_is_unplaced() -> None:
    digests = {"p1": digest("p1", node("n77", "Protein folding on lattices"))}
    assert place_evidence(OUTLINE, digests) == {"n2": {}, "n3": {}, "n4": {}}


def test_the_minimum_similarity_is_a_threshold() -> None:
    digests = {"p1": digest("p1", node("n77", "Dense protein folding on lattices"))}
    assert place_evidence(OUTLINE, digests)["n3"] == {"p1": 1}  # one shared word is enough
    assert place_evidence(OUTLINE, digests, min_similarity=0.9)["n3"] == {}


def test_similarity_uses_the_quotes_too() -> None:
    item = NodeDigest("n77", "A paper.", (Evidence("We report BM25 lexical baselines.", 3),))
    assert place_evidence(OUTLINE, {"p1": digest("p1", item)})["n2"] == {"p1": 1}


def test_evidence_from_several_papers_and_nodes_adds_up() -> None:
    digests = {
        "p1": digest("p1", node("n2", "x", 2), node("n3", "y", 1)),
        "p2": digest("p2", node("n2", "z", 1), node("gone", "Benchmarks and metrics", 1)),
        "p3": digest("p3", NodeDigest("n4", "no evidence at all")),
    }
    placement = place_evidence(OUTLINE, digests)
    assert placement == {"n2": {"p1": 2, "p2": 1}, "n3": {"p1": 1}, "n4": {"p2": 1}}
    assert leaf_counts(placement) == [3, 1, 1]


def test_data_terms_of_a_hand_made_example() -> None:
    digests = {
        "p1": digest("p1", node("n2", "x", 1)),
        "p2": digest("p2", node("n3", "y", 1)),
        "p3": digest("p3", node("n4", "z", 1)),
    }
    entropy, coverage, redundancy = data_terms(OUTLINE, digests, ["p1", "p2", "p3", "p4"])
    assert entropy == pytest.approx(1.0)  # one item on each of the three leaves
    assert coverage == pytest.approx(0.75)  # p4 has no evidence
    assert redundancy == pytest.approx(sibling_redundancy(OUTLINE))
    # "Sparse retrieval" / "Dense retrieval" share a word; "Retrievers" / "Evaluation" do not.
    assert 0.0 < redundancy < 0.5


# --- weights and the combined score -----------------------------------------------------------


def test_default_weights_combine_as_documented() -> None:
    assert validate_weights(DEFAULT_WEIGHTS) == dict(DEFAULT_WEIGHTS)
    assert combine(1.0, 1.0, 1.0, 1.0, DEFAULT_WEIGHTS) == pytest.approx(0.4 + 0.2 + 0.3 - 0.1)
    assert combine(0.5, 0.0, 0.0, 0.0, DEFAULT_WEIGHTS) == pytest.approx(0.2)
    assert combine(0.0, 0.0, 0.0, 1.0, DEFAULT_WEIGHTS) == pytest.approx(-0.1)


def test_weights_left_out_take_their_defaults() -> None:
    weights = validate_weights({"judge": 1, "redundancy": 0})
    assert weights == {"judge": 1.0, "entropy": 0.2, "coverage": 0.3, "redundancy": 0.0}
    assert combine(0.5, 1.0, 0.0, 1.0, {"judge": 1, "redundancy": 0}) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"judge": -0.1}, "judge"),
        ({"entropy": math.nan}, "entropy"),
        ({"coverage": math.inf}, "coverage"),
        ({"judge": "high"}, "judge"),
        ({"judge": True}, "judge"),
        ({"juge": 1.0}, "juge"),
        ({"judge": 0, "entropy": 0, "coverage": 0, "redundancy": 0}, "all zero"),
    ],
)
def test_bad_weights_are_refused_with_a_clear_message(weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_weights(weights)


def test_score_terms_without_a_judge_count_it_as_zero() -> None:
    terms = ScoreTerms.make(None, 1.0, 1.0, 0.0, DEFAULT_WEIGHTS)
    assert not terms.judged and terms.judge == 0.0
    assert terms.score == pytest.approx(0.5)
    judged = ScoreTerms.make(0.5, 1.0, 1.0, 0.0, DEFAULT_WEIGHTS, rationale="fine")
    assert judged.judged and judged.score == pytest.approx(0.7)
    assert ScoreTerms.from_json(judged.to_json()) == judged
    assert judged.to_json()["rationale"] == "fine"
