"""The fake LLM server, exercised through the real ``openai`` client (sync and async)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fakellm import PROSE_PREFIX, THINK_BLOCK, FakeLLMServer, approx_tokens
from openai import AsyncOpenAI, OpenAI

MESSAGES: list[Any] = [
    {"role": "system", "content": "You write surveys."},
    {"role": "user", "content": "Write the outline for: graph neural networks"},
]


@pytest.fixture
def client(fake_llm: FakeLLMServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=fake_llm.base_url, api_key="sk-test", max_retries=0, timeout=5) as c:
        yield c


def chat(client: OpenAI, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="fake-model", messages=messages or MESSAGES, **kwargs
    )


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def raw_request(
    server: FakeLLMServer, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with http.client, to check the wire format without the openai client."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {} if payload is None else {"Content-Type": "application/json"}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- basics


def test_base_url_and_models_list(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    assert fake_llm.base_url == f"http://127.0.0.1:{fake_llm.port}/v1"
    assert [model.id for model in client.models.list()] == ["fake-model"]
    assert client.models.retrieve("fake-model").owned_by == "fakellm"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("nope")
    assert info.value.code == "model_not_found"


def test_configured_models_and_model_echo() -> None:
    with FakeLLMServer(models=["a", "b"]) as server:
        status, _, payload = raw_request(server, "GET", "/v1/models")
        assert status == 200
        listing = json.loads(payload)
        assert listing["object"] == "list"
        assert [m["id"] for m in listing["data"]] == ["a", "b"]
        with OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
            completion = c.chat.completions.create(model="whatever-1", messages=MESSAGES)
        assert completion.model == "whatever-1"


def test_unknown_path_is_404_in_openai_error_shape(fake_llm: FakeLLMServer) -> None:
    status, headers, payload = raw_request(fake_llm, "POST", "/v1/embeddings", {"input": "x"})
    assert status == 404
    assert headers["content-type"] == "application/json"
    error = json.loads(payload)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "/v1/embeddings" in error["message"]


def test_unknown_path_raises_not_found_in_client(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="Invalid URL"):
        client.get("/nowhere", cast_to=object)


def test_invalid_body_is_400(fake_llm: FakeLLMServer) -> None:
    status, _, payload = raw_request(fake_llm, "POST", "/v1/chat/completions", {"model": "m"})
    assert status == 400
    assert json.loads(payload)["error"]["param"] == "messages"


def test_completion_object_shape_and_usage(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    answer = "x" * 40
    fake_llm.reply("outline", answer)
    completion = chat(client)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.created > 0
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", answer)
    assert choice.finish_reason == "stop"
    prompt = "You write surveys.\nWrite the outline for: graph neural networks"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == approx_tokens(prompt) == len(prompt) // 4
    assert completion.usage.completion_tokens == 10
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 10


def test_max_tokens_truncates_with_finish_reason_length(
    fake_llm: FakeLLMServer, client: OpenAI
) -> None:
    fake_llm.reply("", "y" * 100)
    completion = chat(client, max_tokens=5)
    assert completion.choices[0].message.content == "y" * 20
    assert completion.choices[0].finish_reason == "length"
    completion = chat(client, max_completion_tokens=100)
    assert completion.choices[0].finish_reason == "stop"


# --------------------------------------------------------------------------- scripted answers


def test_rules_in_order_with_times_then_default(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    first = fake_llm.reply(r"outline", "first", times=2)
    fake_llm.reply(r"graph\s+neural", "second")
    fake_llm.reply(r"outline", "never: an earlier rule always matches")
    answers = [chat(client).choices[0].message.content for _ in range(4)]
    assert answers == ["first", "first", "second", "second"]
    assert first.hits == 2 and first.exhausted
    assert chat(client, user("unrelated")).choices[0].message.content == "OK"


def test_pattern_searches_all_messages_with_dotall(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reply(r"surveys\..*graph", "spans messages")
    assert chat(client).choices[0].message.content == "spans messages"


def test_pattern_sees_content_parts(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reply("from a part", "parts work")
    messages = [{"role": "user", "content": [{"type": "text", "text": "hello from a part"}]}]
    assert chat(client, messages).choices[0].message.content == "parts work"


def test_callable_answer_gets_the_request_body(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reply("outline", lambda body: f"{body['model']}:{len(body['messages'])}")
    assert chat(client).choices[0].message.content == "fake-model:2"


def test_constructor_responder_is_the_default() -> None:
    with FakeLLMServer(responder=lambda body: body["messages"][-1]["content"].upper()) as server:
        server.reply("special", "scripted")
        with OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
            echo = c.chat.completions.create(model="m", messages=user("shout this"))
            scripted = c.chat.completions.create(model="m", messages=user("special"))
    assert echo.choices[0].message.content == "SHOUT THIS"
    assert scripted.choices[0].message.content == "scripted"


def test_responder_exception_becomes_500_and_is_recorded() -> None:
    server = FakeLLMServer(responder=lambda body: 1 / 0)  # type: ignore[arg-type,return-value]
    with server, OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
        with pytest.raises(openai.InternalServerError, match="ZeroDivisionError"):
            c.chat.completions.create(model="m", messages=MESSAGES)
        assert isinstance(server.errors[0], ZeroDivisionError)


def test_reply_rejects_bad_times(fake_llm: FakeLLMServer) -> None:
    with pytest.raises(ValueError):
        fake_llm.reply("x", "y", times=0)


# --------------------------------------------------------------------------- streaming


def test_streaming_with_usage_assembles_text_and_usage(
    fake_llm: FakeLLMServer, client: OpenAI
) -> None:
    answer = "Graph neural networks pass messages along edges, layer by layer."
    fake_llm.reply("outline", answer)
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}))
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == approx_tokens(answer)
    assert chunks[-1].usage.total_tokens == (
        chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    )


def test_streaming_without_usage_has_no_usage_chunk(
    fake_llm: FakeLLMServer, client: OpenAI
) -> None:
    chunks = list(chat(client, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "OK"


def test_streaming_wire_format(fake_llm: FakeLLMServer) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    status, headers, payload = raw_request(fake_llm, "POST", "/v1/chat/completions", body)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = [line for line in payload.decode().split("\n\n") if line]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "stop"


def test_async_client_streaming_and_truncation(fake_llm: FakeLLMServer) -> None:
    fake_llm.reply("outline", "0123456789")
    fake_llm.inject("truncated")

    async def run() -> tuple[str, str | None]:
        async with AsyncOpenAI(base_url=fake_llm.base_url, api_key="k", max_retries=0) as c:
            stream = await c.chat.completions.create(
                model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            text, finish = "", None
            async for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    finish = chunk.choices[0].finish_reason or finish
            return text, finish

    assert asyncio.run(run()) == ("01234", "length")


def test_drop_mid_stream_after_chunks(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reply("outline", "a fairly long answer that is streamed in pieces")
    fake_llm.inject("drop", after_chunks=3)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in chat(client, stream=True):
            received.append(chunk)
    assert len(received) == 3
    assert (
        chat(client).choices[0].message.content == "a fairly long answer that is streamed in pieces"
    )


# --------------------------------------------------------------------------- faults


def test_429_with_retry_after_headers(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.inject("429")
    fake_llm.inject("429", retry_after=3, retry_after_ms=250)
    with pytest.raises(openai.RateLimitError) as info:
        chat(client)
    assert info.value.status_code == 429
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "1"
    assert "retry-after-ms" not in info.value.response.headers
    with pytest.raises(openai.RateLimitError) as info:
        chat(client)
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.response.headers["retry-after-ms"] == "250"
    assert chat(client).choices[0].message.content == "OK"


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors(fake_llm: FakeLLMServer, client: OpenAI, kind: str) -> None:
    fake_llm.inject(kind)
    with pytest.raises(openai.InternalServerError) as info:
        chat(client)
    assert info.value.status_code == int(kind)
    assert info.value.type == "server_error"


def test_timeout_makes_client_time_out(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.inject("timeout")  # 30 s by default; stop() must not wait for it
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        chat(client, timeout=0.3)
    assert time.monotonic() - started < 2
    assert fake_llm.chat_requests()[-1].fault == "timeout"


def test_short_timeout_fault_still_answers(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.inject("timeout", seconds=0.2)
    started = time.monotonic()
    assert chat(client).choices[0].message.content == "OK"
    assert time.monotonic() - started >= 0.2


def test_drop_raises_connection_error(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.inject("drop")
    with pytest.raises(openai.APIConnectionError) as info:
        chat(client)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert fake_llm.chat_requests()[-1].status is None


def test_malformed_body_raises_plain_json_decode_error(
    fake_llm: FakeLLMServer, client: OpenAI
) -> None:
    # openai does not wrap this: a 200 with an unparsable JSON body surfaces as the stdlib
    # json.JSONDecodeError (a ValueError), not as an openai.APIError.
    fake_llm.inject("malformed_body")
    with pytest.raises(json.JSONDecodeError) as info:
        chat(client)
    assert not isinstance(info.value, openai.OpenAIError)


def test_malformed_stream_raises_json_decode_error(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.inject("malformed_body")
    with pytest.raises(json.JSONDecodeError):
        list(chat(client, stream=True))


def test_malformed_non_json_content_type_returns_a_str(
    fake_llm: FakeLLMServer, client: OpenAI
) -> None:
    # With a non-JSON content type the client silently returns the body text, not an object.
    fake_llm.inject("malformed_body", body=b"<html>bad gateway</html>", content_type="text/html")
    assert chat(client) == "<html>bad gateway</html>"


def test_bad_json_mangles_the_scripted_answer(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    answer = '{"sections": [{"title": "Intro"}]}'
    fake_llm.reply("outline", answer)
    fake_llm.inject("bad_json")
    content = chat(client).choices[0].message.content
    assert content.startswith('{"sections": [{"title": "Intro"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert json.loads(chat(client).choices[0].message.content) == json.loads(answer)


def test_truncated_and_empty(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reply("outline", "abcdefghij")
    fake_llm.inject("truncated")
    fake_llm.inject("empty")
    truncated = chat(client).choices[0]
    assert (truncated.message.content, truncated.finish_reason) == ("abcde", "length")
    empty = chat(client)
    assert empty.choices[0].message.content == ""
    assert empty.usage is not None and empty.usage.completion_tokens == 0


def test_echo_auth_puts_the_authorization_header_in_the_error(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.inject("echo_auth")
    with (
        OpenAI(base_url=fake_llm.base_url, api_key="sk-SECRET-123", max_retries=0) as c,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        chat(c)
    assert "Bearer sk-SECRET-123" in str(info.value)
    assert "sk-SECRET-123" in info.value.message


def test_faults_apply_in_order_and_spare_rules(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    rule = fake_llm.reply("outline", "the answer", times=1)
    fake_llm.inject("500", times=2)
    fake_llm.inject("429", retry_after=0)
    assert fake_llm.pending_faults == ["500", "500", "429"]
    raised = []
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as info:
            chat(client)
        raised.append(info.value.status_code)
    assert raised == [500, 500, 429]
    assert fake_llm.pending_faults == []
    assert rule.hits == 0
    assert chat(client).choices[0].message.content == "the answer"
    assert [r.fault for r in fake_llm.chat_requests()] == ["500", "500", "429", None]


def test_rejected_requests_do_not_consume_faults(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reject_response_formats = {"json_schema"}
    fake_llm.inject("empty")
    schema = {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError):
        chat(client, response_format=schema)
    assert fake_llm.pending_faults == ["empty"]
    assert chat(client, response_format={"type": "json_object"}).choices[0].message.content == ""


def test_inject_rejects_unknown_kind(fake_llm: FakeLLMServer) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake_llm.inject("teapot")
    with pytest.raises(ValueError):
        fake_llm.fault_rates({"429": 0.7, "500": 0.6})


def test_client_retries_honour_retry_after_ms(fake_llm: FakeLLMServer) -> None:
    fake_llm.inject("429", times=2, retry_after_ms=50)
    with OpenAI(base_url=fake_llm.base_url, api_key="k", max_retries=2) as c:
        assert chat(c).choices[0].message.content == "OK"
    attempts = fake_llm.chat_requests()
    assert [r.status for r in attempts] == [429, 429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in attempts] == ["0", "1", "2"]
    gaps = [b.time - a.time for a, b in itertools.pairwise(attempts)]
    assert all(0.04 <= gap < 0.5 for gap in gaps)


def fault_sequence(seed: int, n: int = 40) -> list[str | None]:
    rates = {"429": 0.2, "500": 0.1, "empty": 0.1}
    with (
        FakeLLMServer() as server,
        OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c,
    ):
        server.fault_rates(rates, seed=seed, retry_after=0)
        for _ in range(n):
            with contextlib.suppress(openai.APIStatusError):
                c.chat.completions.create(model="m", messages=MESSAGES)
        return [request.fault for request in server.chat_requests()]


def test_fault_rates_are_seeded_and_reproducible() -> None:
    first, again, other = fault_sequence(seed=1), fault_sequence(seed=1), fault_sequence(seed=2)
    assert first == again
    assert first != other
    assert {"429", "500", "empty", None} >= set(first)
    assert 5 <= sum(fault is not None for fault in first) <= 30


def test_queue_takes_precedence_over_rates_and_reset_clears(
    fake_llm: FakeLLMServer, client: OpenAI
) -> None:
    fake_llm.fault_rates({"empty": 1.0})
    fake_llm.inject("truncated")
    assert chat(client).choices[0].finish_reason == "length"
    assert chat(client).choices[0].message.content == ""
    fake_llm.reply("outline", "scripted")
    fake_llm.reset()
    assert fake_llm.requests == []
    assert chat(client).choices[0].message.content == "OK"
    assert [r.fault for r in fake_llm.requests] == [None]


# --------------------------------------------------------------------------- capabilities


def test_reject_json_schema_only(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reject_response_formats = {"json_schema"}
    schema = {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, response_format=schema)
    assert "response_format" in info.value.message
    assert info.value.param == "response_format"
    assert chat(client, response_format={"type": "json_object"}).choices[0].message.content
    assert chat(client).choices[0].message.content == "OK"


def test_reject_both_structured_formats(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reject_response_formats = {"json_schema", "json_object"}
    with pytest.raises(openai.BadRequestError, match="response_format"):
        chat(client, response_format={"type": "json_object"})
    assert chat(client, response_format={"type": "text"}).choices[0].message.content == "OK"
    assert [r.status for r in fake_llm.chat_requests()] == [400, 200]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (None, '{"a": 1}'),
        ("fence", '```json\n{"a": 1}\n```'),
        ("think", THINK_BLOCK + '{"a": 1}'),
        ("prose", PROSE_PREFIX + '{"a": 1}'),
    ],
)
def test_wrap_modes(
    fake_llm: FakeLLMServer, client: OpenAI, mode: str | None, expected: str
) -> None:
    fake_llm.wrap = mode
    fake_llm.reply("outline", '{"a": 1}')
    assert chat(client).choices[0].message.content == expected
    streamed = "".join(
        c.choices[0].delta.content or "" for c in chat(client, stream=True) if c.choices
    )
    assert streamed == expected


def test_wrap_think_block_and_prose_prefix() -> None:
    assert THINK_BLOCK.startswith("<think>") and THINK_BLOCK.rstrip().endswith("</think>")
    assert PROSE_PREFIX == "Sure! Here is the JSON:\n"


def test_wrap_rejects_unknown_mode(fake_llm: FakeLLMServer) -> None:
    with pytest.raises(ValueError):
        fake_llm.wrap = "xml"


def test_require_api_key(fake_llm: FakeLLMServer) -> None:
    fake_llm.require_api_key = "sk-right"
    with OpenAI(base_url=fake_llm.base_url, api_key="sk-wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            chat(c)
        assert "sk-wrong" not in str(info.value)
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    with OpenAI(base_url=fake_llm.base_url, api_key="sk-right", max_retries=0) as c:
        assert chat(c).choices[0].message.content == "OK"


# --------------------------------------------------------------------------- recording, timing


def test_request_recording(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    client.models.list()
    chat(client, temperature=0.25)
    chat(client, user("second"))
    requests = fake_llm.requests
    assert [(r.method, r.path) for r in requests] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    assert requests[0].body is None
    first = requests[1]
    assert first.body == {"model": "fake-model", "messages": MESSAGES, "temperature": 0.25}
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["content-type"] == "application/json"
    assert all(name == name.lower() for name in first.headers)
    assert first.prompt_text.endswith("graph neural networks")
    assert (first.status, first.fault) == (200, None)
    assert requests[0].time <= requests[1].time <= requests[2].time
    assert fake_llm.chat_requests() == requests[1:]


def test_latency_base_and_per_token(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    fake_llm.reply("outline", "z" * 40)  # 10 output tokens
    fake_llm.latency = (0.1, 0.01)
    started = time.monotonic()
    chat(client)
    assert 0.2 <= time.monotonic() - started < 1.5


def test_concurrent_async_requests_are_served_in_parallel(fake_llm: FakeLLMServer) -> None:
    # Each answer waits until all eight requests are being handled at once: served one at a
    # time, the barrier would break (after 10 s) and the requests would fail.
    barrier = threading.Barrier(8, timeout=10)

    def answer(body: dict) -> str:
        barrier.wait()
        return body["messages"][0]["content"][::-1]

    fake_llm.reply("", answer)

    async def run() -> list[str | None]:
        async with AsyncOpenAI(base_url=fake_llm.base_url, api_key="k", max_retries=0) as c:
            results = await asyncio.gather(
                *(c.chat.completions.create(model="m", messages=user(f"q{i}")) for i in range(8))
            )
            return [r.choices[0].message.content for r in results]

    assert asyncio.run(run()) == [f"{i}q" for i in range(8)]
    assert len(fake_llm.chat_requests()) == 8


def test_async_fault_errors(fake_llm: FakeLLMServer) -> None:
    fake_llm.inject("429", retry_after=2)
    fake_llm.inject("drop")
    fake_llm.inject("timeout")

    async def run() -> list[type[BaseException]]:
        errors: list[type[BaseException]] = []
        async with AsyncOpenAI(base_url=fake_llm.base_url, api_key="k", max_retries=0) as c:
            for _ in range(3):
                try:
                    await c.chat.completions.create(model="m", messages=MESSAGES, timeout=0.3)
                except openai.OpenAIError as exc:
                    errors.append(type(exc))
        return errors

    assert asyncio.run(run()) == [
        openai.RateLimitError,
        openai.APIConnectionError,
        openai.APITimeoutError,
    ]


def test_stop_is_prompt_while_a_handler_sleeps() -> None:
    server = FakeLLMServer().start()
    server.inject("timeout", seconds=60)
    outcome: list[BaseException] = []

    def call() -> None:
        with OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=30) as c:
            try:
                chat(c)
            except openai.OpenAIError as exc:
                outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 5
    while not server.chat_requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], openai.APIConnectionError)
    server.stop()  # idempotent


def test_environment_is_isolated() -> None:
    assert "OPENAI_API_KEY" not in os.environ
    assert "OPENAI_BASE_URL" not in os.environ
    # Only the conftest's guard that keeps arXiv on a closed local port is set.
    assert {n for n in os.environ if n.startswith("SURVEYGEN_")} == {
        "SURVEYGEN_ARXIV_URL",
        "SURVEYGEN_ARXIV_DELAY",
    }
    assert os.environ["SURVEYGEN_ARXIV_URL"].startswith("http://127.0.0.1:")
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        assert os.path.isdir(os.environ[var])


def test_timed_out_request_does_not_use_up_a_rule(fake_llm: FakeLLMServer, client: OpenAI) -> None:
    rule = fake_llm.reply("outline", "the one answer", times=1)
    fake_llm.inject("timeout", seconds=0.3)
    with pytest.raises(openai.APITimeoutError):
        chat(client, timeout=0.1)
    time.sleep(0.4)  # the sleeping handler wakes, sees the client gone, answers nothing
    assert rule.hits == 0
    assert chat(client).choices[0].message.content == "the one answer"
    assert [r.status for r in fake_llm.chat_requests()] == [None, 200]
