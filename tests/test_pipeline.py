"""Pure helpers of the pipeline module."""

from __future__ import annotations

import pytest

from surveygen.errors import InputError
from surveygen.models import Digest, Evidence, NodeDigest, Outline, OutlineNode
from surveygen.pipeline import validate_topic
from surveygen.plan import digest_calls
from surveygen.rundir import state_name as _state_name
from surveygen.stages.mapping import needs_redigest


def test_state_names_are_safe_and_never_collide():
    assert _state_name("vaswani2017attention") == "vaswani2017attention"
    colon, underscore = _state_name("a:b"), _state_name("a_b")
    assert colon != underscore and ":" not in colon and colon.startswith("a_b-")
    assert "/" not in _state_name("../../etc/passwd")


def test_topic_is_normalised_and_bounded():
    assert validate_topic("  graph   neural\nnetworks ") == "graph neural networks"
    assert validate_topic("图神经网络") == "图神经网络"
    with pytest.raises(InputError, match="empty"):
        validate_topic(" \t\n")
    with pytest.raises(InputError, match="2001 characters"):
        validate_topic("x" * 2001)


def test_a_paper_that_fits_takes_one_digest_call():
    assert digest_calls(10_000, 32_000, 4_096) == 1


def test_a_long_paper_is_bounded_by_two_calls_per_chunk():
    # 200k tokens in chunks of at most 32000 - 4096 - 3000 tokens: 9 chunks, so 9 maps, at
    # most 8 collapses and 1 reduce.
    assert digest_calls(200_000, 32_000, 4_096) == 18


# --- map: which digests survive the final outline ----------------------------------------------

FINAL = Outline(
    "T",
    (
        OutlineNode(
            "n1", "Retrievers", "", (OutlineNode("n2", "Sparse"), OutlineNode("n9", "New"))
        ),
        OutlineNode("n4", "Evaluation"),
    ),
)


def _digest(*node_ids: str) -> Digest:
    return Digest(
        "p",
        tuple(NodeDigest(n, "s", (Evidence("q", 0),)) for n in node_ids),
    )


def test_a_digest_on_surviving_leaves_is_reused():
    assert not needs_redigest(_digest("n2", "n4"), ["n2", "n3", "n4"], FINAL)


@pytest.mark.parametrize("gone", ["n3", "n1"])
def test_a_digest_on_a_vanished_node_or_a_new_parent_is_made_again(gone):
    assert needs_redigest(_digest("n2", gone), ["n1", "n2", "n3", "n4"], FINAL)


def test_an_empty_digest_is_made_again_only_when_leaves_were_added():
    assert needs_redigest(_digest(), ["n2", "n3", "n4"], FINAL)  # n9 is new
    assert not needs_redigest(_digest(), ["n2", "n4", "n9"], FINAL)
