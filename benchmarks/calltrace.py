"""A run's LLM calls as a dependency graph, read from its ``logs/calls.jsonl``.

Every call surveygen makes is logged with its place in the run's data flow (see
``surveygen.llm.client.Trace``): a number, the task its answer is part of
(``digest/<key>``, ``refine/2/apply/3``, ``section/n4/draft``), the tasks its prompt is made
from (``needs``; a name covers the tasks under it) and, for a repair request, the call it
answers (``after``). Those are stated where each prompt is built, from what goes into it,
not from the order the code happens to run things in, so the graph shows every overlap the
data allows, including overlaps the pipeline fails to make.

Each logical call becomes one :class:`critical_path.Call` lasting from its first attempt's
send to its last attempt's answer (retries and their pauses included); a cache hit lasts 0 s.
:func:`order_violations` lists calls sent before a call they need had answered: that would
mean a ``needs`` claims data the prompt could not have contained, so the graph is wrong.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from critical_path import Call

__all__ = ["TracedCall", "call_graph", "order_violations", "read_calls", "stage_of"]

# The first part of a task, as the benchmark reports stages.
_WRITE_PARTS = {
    "section",
    "cover",
    "table",
    "introduction",
    "conclusion",
    "abstract",
    "headings",
}


@dataclass
class TracedCall:
    """One logical call: all attempts (and the repair's own call is separate)."""

    id: str
    task: str
    needs: tuple[str, ...]
    after: str | None
    start: float  # epoch seconds its first attempt went on the wire
    end: float  # epoch seconds its last attempt ended
    tokens_in: int = 0
    tokens_out: int = 0
    attempts: int = 0
    cache_hit: bool = False
    prompt: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


def stage_of(task: str) -> str:
    """The pipeline stage a task belongs to: gather, skeleton, digest, refine, map, write."""
    head = task.split("/", 1)[0]
    return "write" if head in _WRITE_PARTS else head


def read_calls(path: Path) -> list[TracedCall]:
    """The logical calls of a call log, in the order they were numbered."""
    calls: dict[str, TracedCall] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry.get("call") is None:
                raise ValueError(f"{path}:{number}: a call logged without its trace")
            call_id = str(entry["call"])
            sent = float(entry["sent"])
            ended = sent + float(entry.get("wire_s") or 0.0)
            call = calls.get(call_id)
            if call is None:
                after = entry.get("after")
                call = calls[call_id] = TracedCall(
                    id=call_id,
                    task=str(entry["task"]),
                    needs=tuple(entry.get("needs") or ()),
                    after=None if after is None else str(after),
                    start=sent,
                    end=ended,
                    cache_hit=bool(entry.get("cache_hit")),
                    prompt=str(entry.get("prompt") or ""),
                )
            call.start = min(call.start, sent)
            call.end = max(call.end, ended)
            call.tokens_in += int(entry.get("tokens_in") or 0)
            call.tokens_out += int(entry.get("tokens_out") or 0)
            call.attempts += 0 if entry.get("cache_hit") else 1
            if entry.get("error"):
                call.errors.append(str(entry["error"]))
    return sorted(calls.values(), key=lambda c: int(c.id))


def _prefixes(task: str) -> Iterable[str]:
    parts = task.split("/")
    for end in range(1, len(parts) + 1):
        yield "/".join(parts[:end])


def dependencies(calls: Sequence[TracedCall]) -> dict[str, tuple[str, ...]]:
    """Each call's dependencies: the calls whose task is one it needs or lies under one,
    and the call a repair answers."""
    under: dict[str, list[str]] = defaultdict(list)
    for call in calls:
        for prefix in _prefixes(call.task):
            under[prefix].append(call.id)
    deps: dict[str, tuple[str, ...]] = {}
    for call in calls:
        found: dict[str, None] = {}
        for need in call.needs:
            for other in under.get(need, ()):
                if other != call.id:
                    found[other] = None
        if call.after is not None:
            found[call.after] = None
        deps[call.id] = tuple(found)
    return deps


def call_graph(calls: Sequence[TracedCall]) -> list[Call]:
    """The calls as critical_path.Call: durations and dependencies."""
    deps = dependencies(calls)
    return [Call(c.id, c.seconds, deps[c.id]) for c in calls]


def order_violations(calls: Sequence[TracedCall], slack: float = 0.005) -> list[str]:
    """Calls sent before a call they need had answered (``slack`` seconds allowed for the
    log's rounding). Empty for a correct trace."""
    by_id = {c.id: c for c in calls}
    out = []
    for call_id, deps in dependencies(calls).items():
        call = by_id[call_id]
        for dep in deps:
            other = by_id[dep]
            if other.end > call.start + slack:
                out.append(
                    f"call {call_id} ({call.task}) was sent {other.end - call.start:.3f}s "
                    f"before call {dep} ({other.task}), which it needs, had answered"
                )
    return out
