"""benchmarks/critical_path.py: the wall-time lower bound on small hand-made call graphs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from critical_path import Call, lower_bound


def test_no_calls_take_no_time() -> None:
    bound = lower_bound([], 4)
    assert (bound.seconds, bound.path) == (0.0, ())


def test_a_chain_cannot_be_shortened_by_more_slots() -> None:
    calls = [Call("a", 1), Call("b", 2, ("a",)), Call("c", 3, ("b",))]
    for slots in (1, 4, 100):
        bound = lower_bound(calls, slots)
        assert (bound.critical_path, bound.seconds, bound.path) == (6, 6, ("a", "b", "c"))


def test_independent_calls_are_bounded_by_work_over_slots() -> None:
    calls = [Call(f"c{i}", 1) for i in range(10)]
    assert lower_bound(calls, 4).seconds == 2.5
    assert lower_bound(calls, 10).seconds == 1
    assert lower_bound(calls, 1).seconds == 10


def test_a_diamond_follows_its_longer_branch() -> None:
    calls = [Call("a", 1), Call("b", 5, ("a",)), Call("c", 1, ("a",)), Call("d", 1, ("b", "c"))]
    bound = lower_bound(calls, 8)
    assert bound.critical_path == 7 and bound.path == ("a", "b", "d")
    assert bound.work == 8


@pytest.mark.parametrize(("slots", "seconds"), [(1, 20), (2, 10), (4, 6), (16, 6)])
def test_a_pipeline_shape_switches_from_work_to_path_bound(slots: int, seconds: float) -> None:
    # skeleton (1 s), then 8 digests of 2 s that need it, then a merge of 3 s that needs all
    digests = [Call(f"d{i}", 2, ("skeleton",)) for i in range(8)]
    calls = [Call("skeleton", 1), *digests, Call("merge", 3, tuple(d.id for d in digests))]
    assert lower_bound(calls, slots).seconds == seconds


@pytest.mark.parametrize(
    ("calls", "slots", "message"),
    [
        ([Call("a", 1, ("b",)), Call("b", 1, ("a",))], 2, "cycle"),
        ([Call("a", 1, ("zzz",))], 2, "unknown"),
        ([Call("a", 1), Call("a", 2)], 2, "twice"),
        ([Call("a", -1)], 2, "negative"),
        ([Call("a", 1)], 0, "concurrency"),
    ],
)
def test_malformed_graphs_are_refused(calls: list[Call], slots: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lower_bound(calls, slots)
