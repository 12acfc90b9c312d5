"""The least wall time any schedule of a run's LLM calls could reach.

A run is a set of calls, each taking some seconds and able to start only once the calls it
depends on have finished; at most ``concurrency`` calls are on the wire at once. No schedule
finishes sooner than the longest chain of dependent calls (the critical path), nor sooner
than the total call time spread evenly over the concurrency slots, so the larger of the two
is a lower bound on the wall time. The benchmark prints a run's wall time over this bound:
how close the pipeline comes to overlapping everything the dependencies allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

__all__ = ["Bound", "Call", "lower_bound"]


@dataclass(frozen=True)
class Call:
    """One LLM call: its id, how long it took and the ids of the calls it needed first."""

    id: str
    seconds: float
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bound:
    critical_path: float  # seconds of the longest chain of dependent calls
    work: float  # seconds of all calls together
    concurrency: int
    path: tuple[str, ...]  # the calls of that chain, first to last

    @property
    def seconds(self) -> float:
        """The lower bound on wall time."""
        return max(self.critical_path, self.work / self.concurrency)


def lower_bound(calls: Iterable[Call], concurrency: int) -> Bound:
    """The bound for ``calls`` run at most ``concurrency`` at a time.

    Raises ValueError for a concurrency below 1, a negative duration, a repeated id, a
    dependency on an unknown call or a cycle of dependencies.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    by_id: dict[str, Call] = {}
    for call in calls:
        if call.id in by_id:
            raise ValueError(f"call {call.id!r} is listed twice")
        if call.seconds < 0:
            raise ValueError(f"call {call.id!r} has a negative duration")
        by_id[call.id] = call
    for call in by_id.values():
        unknown = [d for d in call.deps if d not in by_id]
        if unknown:
            raise ValueError(f"call {call.id!r} depends on unknown call(s) {unknown}")
    try:
        order = list(TopologicalSorter({c.id: c.deps for c in by_id.values()}).static_order())
    except CycleError as exc:
        raise ValueError(f"the dependencies form a cycle: {exc.args[1]}") from None

    finish: dict[str, float] = {}  # the earliest a call can end, with unlimited slots
    before: dict[str, str | None] = {}  # the dependency that ends last, on that chain
    for call_id in order:
        call = by_id[call_id]
        last = max(call.deps, key=lambda d: finish[d], default=None)
        finish[call_id] = call.seconds + (finish[last] if last is not None else 0.0)
        before[call_id] = last
    end = max(finish, key=lambda c: finish[c], default=None)
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = before[end]
    return Bound(
        critical_path=finish[path[0]] if path else 0.0,
        work=sum(c.seconds for c in by_id.values()),
        concurrency=concurrency,
        path=tuple(reversed(path)),
    )
