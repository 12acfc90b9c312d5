"""LLM×MapReduce-V1 (arXiv 2410.09342): read an input longer than the model's context.

The input is a sequence of lines (usually numbered sentences) packed into chunks that fit the
prompt budget. Then:

1. **map** — every chunk is read on its own (concurrently) into a structured result
   ({extracted information, evidence, rationale, answer, confidence} in V1's protocol);
2. **collapse** — while the reduce prompt over all results would not fit the budget, results
   are grouped in order, each group as large as one collapse prompt allows, and every group is
   merged into one result of the same shape; repeated until they fit;
3. **reduce** — one call turns the remaining results into the final answer.

The engine is generic: a :class:`Protocol` supplies the prompts, the answer schemas and how to
read a result's confidence. It always runs map → (collapse)* → reduce, so even a single chunk
costs two calls; the reduce prompt is where a protocol asks for its final shape.

Guarantees: every prompt sent fits :func:`input_budget` (a chunk whose map prompt would not is
split first), and the loop ends: each collapse round leaves fewer results, or, when no two
results fit one collapse prompt, the least confident result is dropped (and counted).
The measure is :func:`~surveygen.text.approx_tokens` with room kept for the answer schema,
which servers without schema support receive as text appended to the prompt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from surveygen.aio import gather_or_cancel, settle
from surveygen.errors import LLMError
from surveygen.llm.client import LLMClient
from surveygen.llm.parsing import schema_instructions
from surveygen.llm.prompts import Prompt
from surveygen.text import approx_tokens, truncate_tokens

__all__ = [
    "MAX_COLLAPSE_ROUNDS",
    "MIN_INPUT_TOKENS",
    "Chunk",
    "Protocol",
    "ProtocolStats",
    "chunk_lines",
    "chunk_room",
    "input_budget",
    "map_collapse_reduce",
    "prompt_tokens",
    "schema_tokens",
]

R = TypeVar("R", bound=BaseModel)
F = TypeVar("F", bound=BaseModel)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Below this a prompt cannot hold instructions plus a useful amount of text.
MIN_INPUT_TOKENS = 1000
# Collapse rounds before the least confident results are dropped instead. Every round leaves
# fewer results, but a model whose merged results are no shorter than its inputs would
# otherwise cost up to one round per chunk.
MAX_COLLAPSE_ROUNDS = 8
# Chat formatting adds a few tokens per message around its content.
_MESSAGE_OVERHEAD = 4


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive lines that is read in one map call."""

    index: int
    lines: tuple[str, ...]
    tokens: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _line_tokens(line: str) -> int:
    return approx_tokens(line) + 1  # the newline joining it to the next line


def chunk_lines(lines: Sequence[str], max_tokens: int) -> list[Chunk]:
    """Pack lines in order into chunks of at most ``max_tokens`` (approx_tokens per line + 1
    for the newline). A single line longer than ``max_tokens`` is cut with truncate_tokens,
    never dropped silently. Empty input -> []."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be at least 2, got {max_tokens}")
    chunks: list[Chunk] = []
    current: list[str] = []
    used = 0

    def close() -> None:
        nonlocal current, used
        if current:
            text = "\n".join(current)
            chunks.append(Chunk(len(chunks), tuple(current), approx_tokens(text)))
        current, used = [], 0

    for line in lines:
        cost = _line_tokens(line)
        if cost > max_tokens:
            line = truncate_tokens(line, max_tokens - 1)
            cost = _line_tokens(line)
        if used + cost > max_tokens:
            close()
        current.append(line)
        used += cost
    close()
    return chunks


@dataclass(frozen=True)
class Protocol(Generic[R, F]):
    """What one use of the engine asks: its prompts, answer schemas and confidence reader."""

    map_prompt: Callable[[Chunk], Prompt]
    collapse_prompt: Callable[[Sequence[R]], Prompt]  # several results -> one R
    reduce_prompt: Callable[[Sequence[R]], Prompt]  # the last results -> the final F
    map_schema: type[R]  # answer schema of map AND collapse calls
    reduce_schema: type[F]
    confidence: Callable[[R], int]  # 1-5; the weakest results go first when some must


@dataclass
class ProtocolStats:
    chunks: int = 0
    map_calls: int = 0
    collapse_calls: int = 0
    collapse_rounds: int = 0
    reduce_calls: int = 0
    dropped_results: int = 0  # dropped (lowest confidence first) as a last resort
    largest_prompt_tokens: int = 0  # approx tokens of the largest prompt sent
    failed_chunks: int = 0  # chunks whose map call failed (non-fatal LLMError)
    failed_collapses: int = 0  # groups whose collapse failed; their best result was kept

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def prompt_tokens(prompt: Prompt) -> int:
    """Approximate tokens of all the prompt's messages, with a little for chat formatting."""
    return sum(approx_tokens(m["content"]) + _MESSAGE_OVERHEAD for m in prompt.messages)


def input_budget(context_tokens: int, output_tokens: int) -> int:
    """Tokens a prompt may use: the context minus the room kept for the answer."""
    budget = context_tokens - output_tokens
    if budget < MIN_INPUT_TOKENS:
        raise ValueError(
            f"a context of {context_tokens} tokens with {output_tokens} kept for the answer "
            f"leaves {budget} tokens for the prompt; at least {MIN_INPUT_TOKENS} are needed "
            "(raise the context size or lower the maximum output tokens)"
        )
    return budget


def schema_tokens(schema: type[BaseModel]) -> int:
    """Room the answer schema takes: in response_format, or appended to the prompt as text."""
    return approx_tokens(schema_instructions(schema)) + 2


def chunk_room(protocol: Protocol[Any, Any], *, context_tokens: int, output_tokens: int) -> int:
    """The most tokens of chunk text a map prompt can carry: a good ``max_tokens`` for
    :func:`chunk_lines`. Raises ValueError when the prompt alone leaves too little room."""
    limit = input_budget(context_tokens, output_tokens) - schema_tokens(protocol.map_schema)
    empty = prompt_tokens(protocol.map_prompt(Chunk(0, (), 0)))
    room = limit - empty - 2  # rounding of approx_tokens where the text joins the template
    if room < MIN_INPUT_TOKENS // 4:
        raise ValueError(
            f"the map prompt alone takes {empty} of the {limit} tokens a prompt may use; "
            "raise the context size or lower the maximum output tokens"
        )
    return room


# ------------------------------------------------------------------------------ engine


async def _all_or_fatal(jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T | LLMError]:
    """Run jobs concurrently; a failed job gives its LLMError, a fatal error (budget, refused
    key) cancels the others and propagates."""

    return await gather_or_cancel(settle(job) for job in jobs)


class _Run(Generic[R, F]):
    def __init__(
        self,
        llm: LLMClient,
        protocol: Protocol[R, F],
        budget: int,
        stage: str,
        item: str,
        task: str,
        needs: Sequence[str],
    ) -> None:
        self.llm = llm
        self.p = protocol
        self.stage = stage
        self.item = item
        self.task = task
        self.needs = tuple(needs)
        self.stats = ProtocolStats()
        self.map_limit = budget - schema_tokens(protocol.map_schema)
        self.reduce_limit = budget - schema_tokens(protocol.reduce_schema)

    async def _ask(
        self, prompt: Prompt, schema: type[M], label: str, task: str, needs: Sequence[str]
    ) -> M:
        size = prompt_tokens(prompt)
        self.stats.largest_prompt_tokens = max(self.stats.largest_prompt_tokens, size)
        return await self.llm.structured(
            prompt,
            schema,
            stage=self.stage,
            item=f"{self.item}#{label}",
            task=f"{self.task}/{task}",
            needs=needs,
        )

    # ---------------------------------------------------------------- map

    def fit(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        """The chunks, each split until its map prompt fits (renumbered if any was split)."""
        out: list[Chunk] = []
        for chunk in chunks:
            out.extend(self._split(chunk))
        if len(out) != len(chunks):
            out = [Chunk(i, c.lines, c.tokens) for i, c in enumerate(out)]
        return out

    def _split(self, chunk: Chunk) -> list[Chunk]:
        over = prompt_tokens(self.p.map_prompt(chunk)) - self.map_limit
        if over <= 0:
            return [chunk]
        if len(chunk.lines) > 1:
            half = len(chunk.lines) // 2
            parts = (chunk.lines[:half], chunk.lines[half:])
            return [
                piece
                for lines in parts
                for piece in self._split(Chunk(chunk.index, lines, approx_tokens("\n".join(lines))))
            ]
        line = chunk.lines[0] if chunk.lines else ""
        keep = approx_tokens(line) - over - 2
        if keep <= 0:
            raise ValueError(
                f"the map prompt alone exceeds the {self.map_limit} tokens a prompt may use; "
                "raise the context size or lower the maximum output tokens"
            )
        cut = truncate_tokens(line, keep)
        return self._split(Chunk(chunk.index, (cut,), approx_tokens(cut)))

    async def map(self, chunks: Sequence[Chunk]) -> list[R]:
        self.stats.chunks = len(chunks)
        self.stats.map_calls = len(chunks)
        jobs = [
            (
                lambda c=c: self._ask(
                    self.p.map_prompt(c),
                    self.p.map_schema,
                    f"map{c.index}",
                    f"map/{c.index}",
                    self.needs,
                )
            )
            for c in chunks
        ]
        outcomes = await _all_or_fatal(jobs)
        results = [r for r in outcomes if not isinstance(r, LLMError)]
        failures = [r for r in outcomes if isinstance(r, LLMError)]
        self.stats.failed_chunks = len(failures)
        if not results:
            raise failures[-1]
        return results

    # ---------------------------------------------------------------- collapse

    def reduce_fits(self, results: Sequence[R]) -> bool:
        return prompt_tokens(self.p.reduce_prompt(results)) <= self.reduce_limit

    def _collapse_fits(self, group: Sequence[R]) -> bool:
        return prompt_tokens(self.p.collapse_prompt(group)) <= self.map_limit

    def groups(self, results: Sequence[R]) -> list[list[R]]:
        """Results packed in order, greedily, into groups whose collapse prompt fits."""
        groups: list[list[R]] = []
        for result in results:
            if groups and self._collapse_fits([*groups[-1], result]):
                groups[-1].append(result)
            else:
                groups.append([result])
        return groups

    async def collapse_round(self, results: list[R]) -> list[R] | None:
        """One round; None when no two results fit one collapse prompt (no progress)."""
        groups = self.groups(results)
        merging = [i for i, g in enumerate(groups) if len(g) > 1]
        if not merging:
            return None
        self.stats.collapse_rounds += 1
        self.stats.collapse_calls += len(merging)
        rounds = self.stats.collapse_rounds
        label = f"collapse{rounds}"
        # How results are grouped depends on every result of the rounds before.
        needs = [f"{self.task}/map", *(f"{self.task}/collapse/{r}" for r in range(1, rounds))]
        jobs = [
            (
                lambda g=groups[i], n=n: self._ask(
                    self.p.collapse_prompt(g),
                    self.p.map_schema,
                    f"{label}.{n}",
                    f"collapse/{rounds}/{n}",
                    needs,
                )
            )
            for n, i in enumerate(merging)
        ]
        merged = dict(zip(merging, await _all_or_fatal(jobs), strict=True))
        out: list[R] = []
        for i, group in enumerate(groups):
            if i not in merged:
                out.extend(group)
                continue
            outcome = merged[i]
            if isinstance(outcome, LLMError):
                # Keep the group's most confident result rather than repeat a failing call.
                self.stats.failed_collapses += 1
                self.stats.dropped_results += len(group) - 1
                out.append(max(group, key=self.p.confidence))
            else:
                out.append(outcome)  # type: ignore[arg-type]
        return out

    def drop_weakest(self, results: list[R]) -> list[R]:
        """Without the least confident result (of equals, the last one)."""
        weakest = min(range(len(results)), key=lambda i: (self.p.confidence(results[i]), -i))
        self.stats.dropped_results += 1
        return results[:weakest] + results[weakest + 1 :]

    async def collapse(self, results: list[R]) -> list[R]:
        while results and not self.reduce_fits(results):
            merged = None
            if self.stats.collapse_rounds < MAX_COLLAPSE_ROUNDS and len(results) > 1:
                merged = await self.collapse_round(results)
            results = merged if merged is not None else self.drop_weakest(results)
        if not results:
            raise LLMError(
                f"{self.stage}: the model's findings{f' for {self.item}' if self.item else ''} "
                f"are too long for a prompt of {self.reduce_limit} tokens, even one at a time",
                hint="raise the context size (context_tokens) or lower max_output_tokens",
            )
        return results

    async def reduce(self, results: Sequence[R]) -> F:
        self.stats.reduce_calls += 1
        return await self._ask(
            self.p.reduce_prompt(results),
            self.p.reduce_schema,
            "reduce",
            "reduce",
            (f"{self.task}/map", f"{self.task}/collapse"),
        )


async def map_collapse_reduce(
    llm: LLMClient,
    protocol: Protocol[R, F],
    chunks: Sequence[Chunk],
    *,
    context_tokens: int,
    output_tokens: int,
    stage: str,
    item: str = "",
    task: str | None = None,
    needs: Sequence[str] = (),
) -> tuple[F, ProtocolStats]:
    """Run the protocol over ``chunks``; see the module docstring.

    Raises ValueError when the budget is too small or there is no chunk, the last map error
    when every map call failed, and fatal errors (BudgetExceeded, LLMRejectedError) at once.
    Calls are logged with items ``{item}#map{i}``, ``{item}#collapse{round}.{n}`` and
    ``{item}#reduce``, and traced as ``{task}/map/{i}``, ``{task}/collapse/{round}/{n}``
    and ``{task}/reduce`` (``task`` defaults to ``{stage}/{item}``); the map calls need
    ``needs``, each later call the calls before it.
    """
    if not chunks:
        raise ValueError("map_collapse_reduce needs at least one chunk")
    run = _Run(
        llm,
        protocol,
        input_budget(context_tokens, output_tokens),
        stage,
        item,
        task or f"{stage}/{item}",
        needs,
    )
    results = await run.map(run.fit(chunks))
    results = await run.collapse(results)
    final = await run.reduce(results)
    return final, run.stats
