"""LLM×MapReduce-V1 engine: chunking, and map/collapse/reduce against the fake HTTP server."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Sequence

import pytest
from fakeclient import fake_client
from fakellm import FakeLLMServer
from pydantic import BaseModel, ConfigDict

from surveygen.errors import BudgetExceeded, LLMError, LLMParseError, LLMRejectedError
from surveygen.llm.client import LLMClient
from surveygen.llm.ledger import Ledger, price_table
from surveygen.llm.prompts import Prompt
from surveygen.mapreduce import (
    MIN_INPUT_TOKENS,
    Chunk,
    Protocol,
    ProtocolStats,
    chunk_lines,
    chunk_room,
    input_budget,
    map_collapse_reduce,
    prompt_tokens,
)
from surveygen.text import approx_tokens

# ----------------------------------------------------------------------------- chunk_lines


def _line(i: int, words: int = 16) -> str:
    return f"L{i:05d} " + " ".join(f"word{(i * 7 + j) % 97}" for j in range(words)) + "."


def test_chunk_lines_keeps_every_line_in_order_within_the_budget() -> None:
    lines = [_line(i, words=3 + i % 11) for i in range(300)]
    chunks = chunk_lines(lines, 200)
    assert len(chunks) > 5
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [line for c in chunks for line in c.lines] == lines
    for chunk in chunks:
        assert sum(approx_tokens(line) + 1 for line in chunk.lines) <= 200
        assert chunk.tokens == approx_tokens(chunk.text) <= 200
        assert chunk.text == "\n".join(chunk.lines)
    # greedy: a chunk is closed only when the next line would not fit
    for chunk, following in itertools.pairwise(chunks):
        used = sum(approx_tokens(line) + 1 for line in chunk.lines)
        assert used + approx_tokens(following.lines[0]) + 1 > 200


def test_chunk_lines_cuts_a_line_longer_than_the_budget_instead_of_dropping_it() -> None:
    long = "The opening words of a very long line. " + "filler " * 2000
    chunks = chunk_lines(["short one.", long, "short two."], 50)
    lines = [line for c in chunks for line in c.lines]
    assert lines[0] == "short one." and lines[-1] == "short two."
    assert len(lines) == 3
    assert lines[1].startswith("The opening words of a very long line.")
    assert len(lines[1]) < len(long)
    assert all(c.tokens <= 50 for c in chunks)


def test_chunk_lines_of_nothing_is_no_chunk_and_a_tiny_budget_is_refused() -> None:
    assert chunk_lines([], 100) == []
    with pytest.raises(ValueError):
        chunk_lines(["a"], 1)


def test_input_budget_keeps_room_for_the_answer_and_refuses_too_little() -> None:
    assert input_budget(32_000, 4_000) == 28_000
    with pytest.raises(ValueError, match="at least"):
        input_budget(4_000, 3_500)
    with pytest.raises(ValueError):
        input_budget(MIN_INPUT_TOKENS + 99, 100)


def test_prompt_tokens_counts_every_message() -> None:
    prompt = Prompt(
        "p", "v", ({"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 400})
    )
    assert prompt_tokens(prompt) >= 110
    assert prompt_tokens(prompt) < 130


def test_stats_to_json_has_every_counter() -> None:
    data = ProtocolStats(chunks=3, map_calls=3, reduce_calls=1).to_json()
    assert data["chunks"] == 3 and data["reduce_calls"] == 1 and data["dropped_results"] == 0
    assert {"collapse_rounds", "largest_prompt_tokens", "failed_chunks"} <= set(data)


# ----------------------------------------------------------------------------- a test protocol


class Notes(BaseModel):
    """What the scripted model reads from a chunk: how many lines, the first line's label."""

    model_config = ConfigDict(extra="forbid")
    lines: int
    first: str
    confidence: int
    pad: str


class Final(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total_lines: int
    first: str
    confidences: list[int]


def _prompt(name: str, header: str, body: str) -> Prompt:
    return Prompt(
        name,
        "v1",
        (
            {"role": "system", "content": "Count lines."},
            {"role": "user", "content": f"{header}\n{body}"},
        ),
    )


PROTOCOL: Protocol[Notes, Final] = Protocol(
    map_prompt=lambda chunk: _prompt("mr_map", "MAP", chunk.text),
    collapse_prompt=lambda rs: _prompt(
        "mr_collapse", "COLLAPSE", "\n".join(r.model_dump_json() for r in rs)
    ),
    reduce_prompt=lambda rs: _prompt(
        "mr_reduce", "REDUCE", "\n".join(r.model_dump_json() for r in rs)
    ),
    map_schema=Notes,
    reduce_schema=Final,
    confidence=lambda r: r.confidence,
)


def _user(body: dict) -> str:
    return body["messages"][-1]["content"]


def _results(text: str) -> list[dict]:
    """The results listed in a collapse or reduce prompt (up to a blank line, after which a
    server without schema support gets the schema as text)."""
    listed = text.split("\n\n", 1)[0]
    return [json.loads(line) for line in listed.splitlines()[1:]]


class Model:
    """Answers the test protocol: ``pad`` characters of padding per result, and a confidence
    per map call chosen by ``confidence(first_label)``."""

    def __init__(self, pad: int = 40, confidence=lambda first: 3) -> None:
        self.pad = pad
        self.confidence = confidence

    def __call__(self, body: dict) -> str:
        user = _user(body)
        kind = user.split("\n", 1)[0]
        if kind == "MAP":
            labels = re.findall(r"^(L\d{5}) ", user, flags=re.M)
            first = labels[0]
            notes = {"lines": len(labels), "first": first, "confidence": self.confidence(first)}
            return json.dumps({**notes, "pad": "p" * self.pad})
        results = _results(user)
        if kind == "COLLAPSE":
            merged = {
                "lines": sum(r["lines"] for r in results),
                "first": results[0]["first"],
                "confidence": max(r["confidence"] for r in results),
            }
            return json.dumps({**merged, "pad": "c" * self.pad})
        if kind == "REDUCE":
            return json.dumps(
                {
                    "total_lines": sum(r["lines"] for r in results),
                    "first": results[0]["first"],
                    "confidences": [r["confidence"] for r in results],
                }
            )
        raise AssertionError(f"unexpected prompt {user[:80]!r}")


def _client(
    server: FakeLLMServer, *, log: list | None = None, ledger: Ledger | None = None, **over
) -> LLMClient:
    options = dict(concurrency=8, max_output_tokens=16_000)
    options.update(over)
    return fake_client(server, log=log, ledger=ledger, **options)


def _run(
    server: FakeLLMServer, chunks: Sequence[Chunk], *, context: int, output: int, log=None, **over
):
    async def go():
        llm = _client(server, log=log, **over)
        try:
            return await map_collapse_reduce(
                llm,
                PROTOCOL,
                chunks,
                context_tokens=context,
                output_tokens=output,
                stage="digest",
                item="doc",
            )
        finally:
            await llm.aclose()

    return asyncio.run(go())


def _chunks(count: int, per: int = 40) -> list[Chunk]:
    """``count`` chunks of ``per`` lines each, labelled L00000, L00040, ..."""
    out = []
    for i in range(count):
        lines = tuple(_line(n) for n in range(i * per, (i + 1) * per))
        out.append(Chunk(i, lines, approx_tokens("\n".join(lines))))
    return out


def _sent_tokens(request) -> int:
    return sum(approx_tokens(m["content"]) for m in request.body["messages"])


# ----------------------------------------------------------------------------- the engine


@pytest.mark.parametrize("mode", ["json_schema", "text"])
def test_a_200k_token_text_is_mapped_collapsed_and_reduced_within_the_budget(
    fake_llm, mode
) -> None:
    lines = [_line(i) for i in range(8200)]
    assert sum(approx_tokens(line) for line in lines) >= 200_000
    context, output = 12_000, 2_000
    budget = input_budget(context, output)
    chunks = chunk_lines(lines, chunk_room(PROTOCOL, context_tokens=context, output_tokens=output))
    fake_llm.responder = Model(pad=2_400)
    log: list = []
    final, stats = _run(
        fake_llm, chunks, context=context, output=output, log=log, structured_output=mode
    )

    requests = fake_llm.chat_requests()
    assert requests and all(_sent_tokens(r) <= budget for r in requests)
    assert stats.collapse_rounds >= 1 and stats.collapse_calls >= 1
    assert stats.chunks == stats.map_calls == len(chunks) > 10
    assert stats.reduce_calls == 1
    assert len(requests) == stats.map_calls + stats.collapse_calls + stats.reduce_calls
    assert stats.dropped_results == stats.failed_chunks == 0
    # nothing lost, order kept
    assert final.total_lines == len(lines)
    assert final.first == "L00000"
    assert 0 < stats.largest_prompt_tokens <= budget
    if mode == "json_schema":  # nothing appended to the messages: the measure is exact
        assert stats.largest_prompt_tokens == max(
            sum(approx_tokens(m["content"]) + 4 for m in r.body["messages"]) for r in requests
        )
    items = [e["item"] for e in log]
    assert "doc#map0" in items and "doc#reduce" in items and "doc#collapse1.0" in items
    assert all(e["stage"] == "digest" for e in log)


def test_one_chunk_costs_one_map_and_one_reduce(fake_llm) -> None:
    fake_llm.responder = Model()
    chunks = chunk_lines([_line(i) for i in range(10)], 5_000)
    final, stats = _run(fake_llm, chunks, context=8_000, output=1_000)
    assert len(chunks) == 1
    assert (stats.map_calls, stats.collapse_calls, stats.reduce_calls) == (1, 0, 1)
    assert len(fake_llm.chat_requests()) == 2
    assert final.total_lines == 10


def test_a_chunk_too_big_for_the_prompt_is_split_not_sent(fake_llm) -> None:
    fake_llm.responder = Model()
    lines = [_line(i) for i in range(600)]
    chunks = chunk_lines(lines, 100_000)  # one chunk of ~15k tokens
    final, stats = _run(fake_llm, chunks, context=5_000, output=1_000)
    assert len(chunks) == 1 and stats.chunks > 3
    assert all(_sent_tokens(r) <= input_budget(5_000, 1_000) for r in fake_llm.chat_requests())
    assert final.total_lines == 600


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "text"])
def test_an_overlong_line_is_cut_to_fill_the_prompt_with_room_for_the_schema(
    fake_llm, mode
) -> None:
    # Without schema support the schema travels inside the prompt: it must fit too.
    fake_llm.responder = Model()
    line = "L00000 " + "lorem ipsum " * 5_000
    chunk = Chunk(0, (line,), approx_tokens(line))
    final, stats = _run(fake_llm, [chunk], context=5_000, output=1_000, structured_output=mode)
    budget = input_budget(5_000, 1_000)
    sent = [_sent_tokens(r) for r in fake_llm.chat_requests()]
    assert max(sent) <= budget
    if mode != "json_schema":
        assert max(sent) >= budget - 12  # the cut line fills the prompt: the bound is tight
    assert stats.chunks == 1 and final.total_lines == 1


def test_results_too_large_to_collapse_are_dropped_least_confident_first(fake_llm) -> None:
    # Each result takes ~3,800 tokens: two never fit one collapse prompt of ~3,900.
    confidences = {"L00000": 2, "L00040": 5, "L00080": 3, "L00120": 1}
    fake_llm.responder = Model(pad=15_200, confidence=lambda first: confidences[first])
    chunks = _chunks(4)
    assert [c.lines[0][:6] for c in chunks] == list(confidences)
    final, stats = _run(fake_llm, chunks, context=5_000, output=1_000)
    assert stats.dropped_results == 3
    assert stats.collapse_calls == 0
    assert final.confidences == [5]  # the most confident result is the one kept
    assert final.first == "L00040"
    assert all(_sent_tokens(r) <= input_budget(5_000, 1_000) for r in fake_llm.chat_requests())


def test_a_result_too_large_even_alone_is_an_error_not_a_loop(fake_llm) -> None:
    fake_llm.responder = Model(pad=20_000)
    chunks = _chunks(2)
    with pytest.raises(LLMError, match="too long"):
        _run(fake_llm, chunks, context=5_000, output=1_000)
    assert not any(_user(r.body).startswith("REDUCE") for r in fake_llm.chat_requests())


def test_a_failing_chunk_is_skipped_and_counted(fake_llm) -> None:
    fake_llm.reply(
        r"(?m)^L00040 ", "this is not JSON at all"
    )  # the second chunk, answer and repair
    fake_llm.responder = Model()
    chunks = _chunks(3)
    final, stats = _run(fake_llm, chunks, context=8_000, output=1_000)
    assert stats.failed_chunks == 1 and stats.map_calls == 3
    assert final.total_lines == 80
    assert final.first == "L00000"


def test_a_failing_collapse_keeps_the_groups_most_confident_result(fake_llm) -> None:
    # ~1,500 tokens per result: two fit one collapse prompt, three do not fit the reduce one.
    confidences = {"L00000": 2, "L00040": 4, "L00080": 5, "L00120": 1}
    fake_llm.reply(r"\ACount lines.\nCOLLAPSE\n", "not JSON")
    fake_llm.responder = Model(pad=6_000, confidence=lambda first: confidences[first])
    final, stats = _run(fake_llm, _chunks(4), context=5_000, output=1_000)
    assert (stats.collapse_rounds, stats.collapse_calls, stats.failed_collapses) == (1, 2, 2)
    assert stats.dropped_results == 2
    assert final.confidences == [4, 5]
    assert final.total_lines == 80


def test_chunk_room_leaves_room_for_the_prompt_and_the_schema() -> None:
    room = chunk_room(PROTOCOL, context_tokens=8_000, output_tokens=1_000)
    empty = prompt_tokens(PROTOCOL.map_prompt(Chunk(0, (), 0)))
    assert 7_000 - empty - 200 < room < 7_000 - empty
    wordy = Protocol(
        map_prompt=lambda chunk: _prompt("wordy", "MAP " + "please " * 4_000, chunk.text),
        collapse_prompt=PROTOCOL.collapse_prompt,
        reduce_prompt=PROTOCOL.reduce_prompt,
        map_schema=Notes,
        reduce_schema=Final,
        confidence=PROTOCOL.confidence,
    )
    with pytest.raises(ValueError, match="map prompt alone"):
        chunk_room(wordy, context_tokens=8_000, output_tokens=1_000)


def test_every_map_failing_raises_the_last_error(fake_llm) -> None:
    fake_llm.responder = lambda body: "never JSON"
    chunks = _chunks(2)
    with pytest.raises(LLMParseError):
        _run(fake_llm, chunks, context=8_000, output=1_000)


def test_a_refused_key_propagates_at_once(fake_llm) -> None:
    fake_llm.responder = Model()
    fake_llm.require_api_key = "sk-another-key"
    chunks = _chunks(10)
    with pytest.raises(LLMRejectedError):
        _run(fake_llm, chunks, context=8_000, output=1_000, concurrency=2)
    assert len(fake_llm.chat_requests()) < len(chunks)


def test_the_budget_stops_the_protocol(fake_llm) -> None:
    fake_llm.responder = Model()
    ledger = Ledger(price_table({"fake-model": {"input": 1000.0, "output": 1000.0}}), budget=0.01)
    chunks = _chunks(2)
    with pytest.raises(BudgetExceeded):
        _run(fake_llm, chunks, context=8_000, output=1_000, ledger=ledger)


def test_no_chunks_is_a_value_error(fake_llm) -> None:
    with pytest.raises(ValueError):
        _run(fake_llm, [], context=8_000, output=1_000)
