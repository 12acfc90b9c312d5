"""The least wall time any schedule of a run's LLM calls could reach.

A run is a set of calls, each taking some seconds and able to start only once the calls it
depends on have finished; at most ``concurrency`` calls are on the wire at once. No schedule
finishes sooner than the longest chain of dependent calls (the critical path), nor sooner
than the total call time spread evenly over the concurrency slots, so the larger of the two
is a lower bound on the wall time.

That bound ignores phases: a run whose stages each have little parallelism, followed by a
stage of many calls, cannot finish before the first stages are done AND the many calls have
shared the slots. ``Bound.phased`` adds this. For a call v and any call u it depends on
(directly or not), every call between them (depending on u, needed by v) starts after u ends
and ends before v starts, so v cannot start before u ends plus their total time over the
slots. With E(u), a lower bound on when u can end (computed the same way, dependencies
first):

    start(v) >= max( E(d) for each dependency d,
                     work(ancestors of v) / slots,
                     E(u) + work(between u and v) / slots for each ancestor u )
    E(v)      = that + seconds(v)
    wall     >= E(v) + max(tail(v), work(descendants of v) / slots)      for every v

(tail: the longest chain after v; descendants all start after v ends). The largest of these,
the critical path and work / slots is ``Bound.seconds``: still a lower bound on any
schedule, checked against real schedules of random graphs in tests/test_critical_path.py.
The benchmark prints a run's wall time over it: how close the pipeline comes to overlapping
everything the dependencies allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

import numpy as np

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
    phased: float = 0.0  # the per-call bound of the module docstring (0: no calls)
    pivot: str | None = None  # the call that gives ``phased``

    @property
    def simple(self) -> float:
        """max(critical path, work / slots)."""
        return max(self.critical_path, self.work / self.concurrency)

    @property
    def seconds(self) -> float:
        """The lower bound on wall time: the largest of the three."""
        return max(self.simple, self.phased)


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
    phased, pivot = _phased(by_id, order, concurrency)
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
        phased=phased,
        pivot=pivot,
    )


def _phased(by_id: dict[str, Call], order: list[str], concurrency: int) -> tuple[float, str | None]:
    """The phased bound of the module docstring and the call it comes from. The ``between``
    work of every pair comes from one matrix product, so a few thousand calls take seconds."""
    n = len(order)
    if n == 0:
        return 0.0, None
    index = {call_id: i for i, call_id in enumerate(order)}
    seconds = np.array([by_id[c].seconds for c in order], dtype=float)
    deps = [[index[d] for d in set(by_id[c].deps)] for c in order]
    # ancestors[v, x]: x is needed, directly or not, by v (order is topological).
    ancestors = np.zeros((n, n), dtype=bool)
    for v, ds in enumerate(deps):
        for d in ds:
            ancestors[v] |= ancestors[d]
            ancestors[v, d] = True
    # between[u, v] = work of the calls x with u in ancestors(x) and x in ancestors(v).
    weighted = ancestors.T.astype(np.float64) * seconds[None, :]
    between = weighted @ ancestors.T.astype(np.float64)
    work_before = ancestors.astype(np.float64) @ seconds
    work_after = ancestors.T.astype(np.float64) @ seconds
    tail = np.zeros(n)
    users: list[list[int]] = [[] for _ in range(n)]
    for v, ds in enumerate(deps):
        for d in ds:
            users[d].append(v)
    for v in reversed(range(n)):
        tail[v] = max((seconds[u] + tail[u] for u in users[v]), default=0.0)
    end = np.zeros(n)
    for v in range(n):
        start = work_before[v] / concurrency
        if deps[v]:
            start = max(start, max(end[d] for d in deps[v]))
        above = np.flatnonzero(ancestors[v])
        if above.size:
            start = max(start, float(np.max(end[above] + between[above, v] / concurrency)))
        end[v] = start + seconds[v]
    totals = end + np.maximum(tail, work_after / concurrency)
    best = int(np.argmax(totals))
    return float(totals[best]), order[best]
