"""Pure helpers of the pipeline module."""

from __future__ import annotations

import pytest

from surveygen.errors import InputError
from surveygen.pipeline import _state_name, plan_calls, validate_topic


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


def test_plan_bounds_calls_per_stage():
    assert plan_calls(8, 12) == {"gather": 0, "skeleton": 1, "digest": 8, "write": 12}
    assert plan_calls(60, 12, gather=7)["gather"] == 7
