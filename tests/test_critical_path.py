"""benchmarks/critical_path.py: the wall-time lower bound on small hand-made call graphs."""

from __future__ import annotations

import random
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


@pytest.mark.parametrize(
    ("slots", "simple", "phased", "best"),
    [(1, 20, 20, 20), (2, 10, 12, 12), (4, 6, 8, 8), (16, 6, 6, 6)],
)
def test_a_pipeline_shape_switches_from_work_to_path_bound(
    slots: int, simple: float, phased: float, best: float
) -> None:
    # skeleton (1 s), then 8 digests of 2 s that need it, then a merge of 3 s that needs all.
    # The best schedule: 1 + ceil(8 / slots) * 2 + 3. With 2 slots the simple bound (work
    # 20 / 2) misses that the merge can only start after 1 + 16 / 2 s: the phased bound sees
    # it and meets the best schedule.
    digests = [Call(f"d{i}", 2, ("skeleton",)) for i in range(8)]
    calls = [Call("skeleton", 1), *digests, Call("merge", 3, tuple(d.id for d in digests))]
    bound = lower_bound(calls, slots)
    assert (bound.simple, bound.phased, bound.seconds) == (simple, phased, max(simple, phased))
    assert bound.seconds <= best
    if simple < phased:  # the merge is where the phases show
        assert bound.pivot == "merge"


def _list_schedule(calls: list[Call], slots: int) -> float:
    """The wall time of one real schedule: whenever a slot is free, start the ready call that
    was listed first."""
    pending = {c.id: c for c in calls}
    done: dict[str, float] = {}
    running: list[tuple[float, str]] = []
    now = 0.0
    while pending or running:
        ready = [c for c in pending.values() if all(d in done for d in c.deps)]
        while ready and len(running) < slots:
            call = ready.pop(0)
            del pending[call.id]
            running.append((now + call.seconds, call.id))
        running.sort()
        now, finished = running.pop(0)
        done[finished] = now
    return now


@pytest.mark.parametrize("seed", range(40))
def test_the_bound_never_exceeds_a_real_schedule(seed: int) -> None:
    # Random call graphs: any schedule takes at least as long as the best one, which takes at
    # least the bound; a formula that overestimates fails here.
    rng = random.Random(seed)
    calls: list[Call] = []
    for i in range(rng.randint(1, 25)):
        deps = tuple(c.id for c in calls if rng.random() < 0.15)
        calls.append(Call(f"c{i}", rng.choice([0.0, 0.5, 1, 2, 3.5]), deps))
    for slots in (1, 2, 3, 16):
        bound = lower_bound(calls, slots)
        assert bound.seconds <= _list_schedule(calls, slots) + 1e-9
        assert bound.seconds >= bound.simple


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
