"""The LLM seam against the hermetic server: retries, fallbacks, cache, budget, redaction."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import pytest
from fakeclient import fake_client
from fakellm import FakeLLMServer
from pydantic import BaseModel, ConfigDict

from surveygen.errors import BudgetExceeded, LLMError, LLMParseError, LLMRejectedError
from surveygen.llm.cache import AnswerCache
from surveygen.llm.client import (
    LLMClient,
    Redactor,
    backoff_seconds,
    retry_after_seconds,
)
from surveygen.llm.ledger import Ledger, lookup_price, price_table
from surveygen.llm.prompts import Prompt

KEY = "sk-test-SECRET-0123456789abcdef"


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    score: int


GOOD = json.dumps({"name": "x", "score": 3})
PROMPT = Prompt(
    name="unit",
    version="v1",
    messages=(
        {"role": "system", "content": "You answer in JSON."},
        {"role": "user", "content": "Give a pair."},
    ),
)


def make_client(
    server: FakeLLMServer,
    *,
    cache: AnswerCache | None = None,
    ledger: Ledger | None = None,
    log: list | None = None,
    **overrides,
) -> LLMClient:
    options = dict(api_key=KEY, timeout=2.0, max_tries=4, retry_max_seconds=0.05)
    options.update(overrides)
    return fake_client(server, cache=cache, ledger=ledger, log=log, **options)


def run(coro):
    return asyncio.run(coro)


async def six_pairs(client: LLMClient) -> list[Pair]:
    """Six different structured calls at once through one client, which is closed after."""
    prompts = [
        Prompt("unit", "v1", ({"role": "user", "content": f"Give a pair {i}"},)) for i in range(6)
    ]
    try:
        return await asyncio.gather(*(client.structured(p, Pair, stage="digest") for p in prompts))
    finally:
        await client.aclose()


async def structured(client: LLMClient, schema=Pair, prompt: Prompt = PROMPT):
    try:
        return await client.structured(prompt, schema, stage="digest")
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- pure helpers


def test_retry_after_prefers_milliseconds_then_seconds_then_http_date():
    assert retry_after_seconds({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    rng = random.Random(1)
    delays = [backoff_seconds(a, 1.0, 60.0, None, rng) for a in (1, 2, 3, 4)]
    for attempt, delay in zip((1, 2, 3, 4), delays, strict=True):
        ceiling = 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_seconds(10, 1.0, 8.0, None, rng) <= 8.0
    assert backoff_seconds(1, 1.0, 60.0, 42.0, rng) == 42.0


def test_redactor_hides_secrets():
    redact = Redactor([KEY, None, ""])
    assert redact(f"Incorrect API key provided: {KEY}.") == "Incorrect API key provided: ***."


def test_price_lookup_by_longest_prefix_and_overrides():
    table = price_table({"my-local": {"input": 1.0, "output": 2.0}})
    assert lookup_price(table, "gpt-4o-mini-2024-07-18") == table["gpt-4o-mini"]
    assert lookup_price(table, "openai/gpt-4o") == table["gpt-4o"]
    assert lookup_price(table, "my-local") == (1.0, 2.0)
    assert lookup_price(table, "llama3:8b") is None


def test_budget_reservation_refuses_a_call_that_would_cross_it():
    ledger = Ledger(price_table({"m": {"input": 1_000_000.0, "output": 0.0}}), budget=2.0)
    held = ledger.reserve("m", 1, 0)  # $1
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("m", 2, 0)  # $2 more would cross $2
    assert "--budget" in str(info.value) and "--resume" in str(info.value)
    ledger.release(held)
    ledger.reserve("m", 2, 0)


# --------------------------------------------------------------------------- over HTTP


def test_structured_answer_uses_json_schema_response_format(fake_llm):
    fake_llm.reply("Give a pair", GOOD)
    log: list = []
    result = run(structured(make_client(fake_llm, log=log)))
    assert result == Pair(name="x", score=3)
    body = fake_llm.chat_requests()[0].body
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert body["max_tokens"] == 4096
    assert log[0]["prompt"] == "unit" and log[0]["prompt_version"] == "v1"
    assert log[0]["mode"] == "json_schema" and log[0]["cache_hit"] is False


def test_falls_back_to_json_mode_then_text_when_schemas_are_rejected(fake_llm):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.reject_response_formats = {"json_schema"}
    client = make_client(fake_llm)
    assert run(structured(client)).score == 3
    sent = [r.body.get("response_format", {}).get("type") for r in fake_llm.chat_requests()]
    assert sent == ["json_schema", "json_object"]
    # The schema is described in the prompt once the server cannot enforce it.
    assert "JSON schema" in fake_llm.chat_requests()[1].body["messages"][-1]["content"]

    fake_llm.reset()
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.reject_response_formats = {"json_schema", "json_object"}
    fake_llm.wrap = "think"
    assert run(structured(make_client(fake_llm))).name == "x"
    last = fake_llm.chat_requests()[-1].body
    assert "response_format" not in last


def test_remembers_the_mode_that_worked(fake_llm):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.reject_response_formats = {"json_schema"}
    client = make_client(fake_llm)

    async def twice():
        try:
            await client.structured(PROMPT, Pair, stage="digest")
            other = Prompt(
                "unit", "v1", (*PROMPT.messages[:1], {"role": "user", "content": "Give a pair!"})
            )
            await client.structured(other, Pair, stage="digest")
        finally:
            await client.aclose()

    run(twice())
    assert len(fake_llm.chat_requests()) == 3  # one rejection, then json_object twice


@pytest.mark.parametrize("wrap", ["fence", "prose", "think"])
def test_tolerates_wrapped_json(fake_llm, wrap):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.wrap = wrap
    assert run(structured(make_client(fake_llm))).score == 3


@pytest.mark.parametrize("fault", ["bad_json", "truncated", "empty"])
def test_one_repair_or_retry_recovers_from_a_bad_answer(fake_llm, fault):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.inject(fault)
    log: list = []
    assert run(structured(make_client(fake_llm, log=log))).score == 3
    requests = fake_llm.chat_requests()
    assert len(requests) == 2
    if fault == "empty":  # an empty answer is simply asked again
        assert [e["repair"] for e in log] == [False, False]
        assert log[0]["error"] == "empty answer"
    else:  # a parse error is shown to the model
        assert [e["repair"] for e in log] == [False, True]
        repair = requests[1].body["messages"]
        assert repair[-2]["role"] == "assistant"
        assert "could not be used" in repair[-1]["content"]


def test_parse_error_after_the_repair_is_reported(fake_llm):
    fake_llm.reply("Give a pair", '{"name": "x"}')  # always misses "score"
    with pytest.raises(LLMParseError) as info:
        run(structured(make_client(fake_llm)))
    assert "score" in str(info.value)
    assert len(fake_llm.chat_requests()) == 2


@pytest.mark.parametrize("fault", ["429", "500", "503", "timeout", "drop", "malformed_body"])
def test_transient_faults_are_retried(fake_llm, fault):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.inject(fault, times=2, retry_after_ms=10, seconds=5)
    log: list = []
    client = make_client(fake_llm, log=log, timeout=0.5)
    assert run(structured(client)).score == 3
    assert len(fake_llm.chat_requests()) == 3
    assert [e["error"] is not None for e in log] == [True, True, False]


def test_retries_are_bounded(fake_llm):
    fake_llm.inject("500", times=10)
    with pytest.raises(LLMError) as info:
        run(structured(make_client(fake_llm, max_tries=3)))
    assert "after 3 tries" in str(info.value)
    assert len(fake_llm.chat_requests()) == 3


def test_retry_after_is_honoured(fake_llm):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.inject("429", retry_after=None, retry_after_ms=400)
    run(structured(make_client(fake_llm)))
    first, second = fake_llm.chat_requests()
    assert second.time - first.time >= 0.4


def test_rejected_key_fails_at_once_without_leaking_it(fake_llm):
    fake_llm.inject("echo_auth")
    log: list = []
    with pytest.raises(LLMRejectedError) as info:
        run(structured(make_client(fake_llm, log=log)))
    assert KEY not in str(info.value)
    assert "OPENAI_API_KEY" in str(info.value)
    assert len(fake_llm.chat_requests()) == 1
    assert KEY not in json.dumps(log)


def test_a_refused_request_is_logged_and_nothing_is_sent_after_it(fake_llm):
    fake_llm.inject("echo_auth")
    log: list = []
    client = make_client(fake_llm, log=log, concurrency=1)
    prompts = [Prompt("unit", "v1", ({"role": "user", "content": f"pair {i}"},)) for i in range(3)]

    async def go():
        try:
            return await asyncio.gather(
                *(client.structured(p, Pair, stage="digest") for p in prompts),
                return_exceptions=True,
            )
        finally:
            await client.aclose()

    outcomes = run(go())
    assert all(isinstance(o, LLMRejectedError) for o in outcomes)
    assert len(fake_llm.chat_requests()) == 1  # the other two were never sent
    assert [entry["error"] for entry in log] == [log[0]["error"]]  # one line, for the refusal
    assert "401" in log[0]["error"] and "--resume" in str(outcomes[0])


def test_a_refusal_wakes_calls_waiting_to_retry(fake_llm):
    fake_llm.inject("429", retry_after=20)
    fake_llm.inject("echo_auth")
    client = make_client(fake_llm, concurrency=2, retry_max_seconds=60)
    prompts = [Prompt("unit", "v1", ({"role": "user", "content": f"pair {i}"},)) for i in range(2)]

    async def go():
        try:
            return await asyncio.gather(
                *(client.structured(p, Pair, stage="digest") for p in prompts),
                return_exceptions=True,
            )
        finally:
            await client.aclose()

    started = time.monotonic()
    outcomes = run(go())
    assert time.monotonic() - started < 5  # not the 20 s the 429 asked to wait
    assert all(isinstance(o, LLMRejectedError) for o in outcomes)
    assert len(fake_llm.chat_requests()) == 2


def test_prose_cut_off_by_the_token_limit_keeps_its_complete_sentences(fake_llm, tmp_path):
    fake_llm.reply("Write", "First claim [@a]. Second claim holds. Third claim is cut", times=1)
    fake_llm.inject("truncated", keep=0.9)
    log: list = []
    cache = AnswerCache(tmp_path)
    prompt = Prompt("unit", "v1", ({"role": "user", "content": "Write something"},))

    async def go(client):
        try:
            return await client.text(prompt, stage="write")
        finally:
            await client.aclose()

    assert run(go(make_client(fake_llm, log=log, cache=cache))) == (
        "First claim [@a]. Second claim holds."
    )
    assert "cut off by the token limit" in log[0]["error"]
    again = run(go(make_client(fake_llm, cache=AnswerCache(tmp_path))))
    assert again == "First claim [@a]. Second claim holds."  # the trimmed answer was cached


def test_cache_makes_the_second_call_free(fake_llm, tmp_path: Path):
    fake_llm.reply("Give a pair", GOOD)
    cache = AnswerCache(tmp_path)
    ledger = Ledger(price_table(None))
    run(structured(make_client(fake_llm, cache=cache, ledger=ledger)))
    run(structured(make_client(fake_llm, cache=AnswerCache(tmp_path), ledger=ledger)))
    assert len(fake_llm.chat_requests()) == 1
    totals = ledger.totals()
    assert (totals.calls, totals.cache_hits) == (1, 1)
    assert KEY not in (tmp_path / AnswerCache.FILENAME).read_bytes().decode("latin-1")


def test_a_bad_answer_is_not_cached(fake_llm, tmp_path: Path):
    fake_llm.reply("Give a pair", '{"name": "x"}')
    with pytest.raises(LLMParseError):
        run(structured(make_client(fake_llm, cache=AnswerCache(tmp_path))))
    assert len(AnswerCache(tmp_path)) == 0


def test_streaming_collects_text_and_usage(fake_llm):
    fake_llm.reply("Give a pair", GOOD)
    ledger = Ledger(price_table(None))
    assert run(structured(make_client(fake_llm, stream=True, ledger=ledger))).score == 3
    body = fake_llm.chat_requests()[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert ledger.totals().tokens_out > 0


def test_concurrency_is_bounded(fake_llm):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.latency = (0.2, 0.0)
    client = make_client(fake_llm, concurrency=2)

    started = time.monotonic()
    assert len(run(six_pairs(client))) == 6
    # 6 calls of 0.2 s, two at a time: at least three rounds.
    assert time.monotonic() - started >= 0.6


def test_budget_stops_before_the_call(fake_llm):
    ledger = Ledger(price_table({"fake-model": {"input": 1000.0, "output": 1000.0}}), budget=0.01)
    with pytest.raises(BudgetExceeded):
        run(structured(make_client(fake_llm, ledger=ledger)))
    assert fake_llm.chat_requests() == []


def test_text_answers_strip_think_blocks(fake_llm):
    fake_llm.reply("Write", "<think>plan</think>\nThe answer [@a].")
    client = make_client(fake_llm)
    prompt = Prompt("unit", "v1", ({"role": "user", "content": "Write something"},))

    async def go():
        try:
            return await client.text(prompt, stage="write")
        finally:
            await client.aclose()

    assert run(go()) == "The answer [@a]."
    assert "response_format" not in fake_llm.chat_requests()[0].body


def test_servers_refusing_max_tokens_get_max_completion_tokens(fake_llm):
    fake_llm.reply("Give a pair", GOOD)
    fake_llm.reject_params = {"max_tokens"}
    client = make_client(fake_llm, max_output_tokens=500)
    assert run(structured(client)).score == 3
    first, second = (r.body for r in fake_llm.chat_requests())
    assert first["max_tokens"] == 500 and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == 500 and "max_tokens" not in second


def test_a_request_the_endpoint_rejects_fails_that_item_only(fake_llm):
    # The server refuses both token-limit parameters: after the one fallback there is
    # nothing left to try, and sending the same request again would fail again.
    fake_llm.reject_params = {"max_tokens", "max_completion_tokens"}
    fake_llm.reply("Give a pair", GOOD)
    with pytest.raises(LLMError) as info:
        run(structured(make_client(fake_llm)))
    assert not isinstance(info.value, LLMRejectedError)  # not fatal for the whole run
    assert "400" in str(info.value)
    assert len(fake_llm.chat_requests()) == 2


def test_budget_is_reserved_only_for_calls_on_the_wire(fake_llm):
    # Each call may cost up to $0.0050 (max_output_tokens=5000 at $1/M out); the budget of
    # $0.012 cannot hold six queued calls at once, but one running call at a time fits,
    # because the real calls cost far less than their worst case.
    fake_llm.reply("Give a pair", GOOD)
    ledger = Ledger(price_table({"fake-model": {"input": 1.0, "output": 1.0}}), budget=0.012)
    client = make_client(fake_llm, ledger=ledger, concurrency=1, max_output_tokens=5000)

    assert len(run(six_pairs(client))) == 6
    assert ledger.spent < 0.012
