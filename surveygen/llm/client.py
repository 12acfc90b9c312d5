"""The one module that talks to language models.

Every model call in surveygen goes through :class:`LLMClient`: an ``openai.AsyncOpenAI``
client pointed at any OpenAI-compatible endpoint, with

* bounded concurrency (a semaphore held only while a request is on the wire);
* our own retries (the client's are switched off so every attempt is logged): exponential
  backoff with jitter that honours ``Retry-After``/``retry-after-ms``, on 429, 408/409, 5xx,
  timeouts, dropped connections and unreadable responses, at most ``max_tries`` attempts;
* structured answers as pydantic models: JSON-schema ``response_format`` first, then JSON
  mode, then plain text with tolerant extraction, whichever the server accepts (the first
  mode that works is remembered), and one repair retry that shows the model its parse error;
* the content-addressed answer cache, the call log and the cost ledger with ``--budget``;
* a halt: after an error that ends the run (budget spent, key refused) no new request is
  sent, while requests already on the wire finish, so their paid answers are cached;
* redaction: the API key never appears in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import openai
from pydantic import BaseModel

from surveygen.config import Settings
from surveygen.errors import BudgetExceeded, LLMError, LLMParseError, LLMRejectedError
from surveygen.llm.cache import AnswerCache, CachedAnswer, cache_key
from surveygen.llm.ledger import Ledger
from surveygen.llm.parsing import (
    ParseError,
    clean_text,
    complete_sentences,
    parse_model,
    response_format,
    schema_instructions,
    strict_json_schema,
)
from surveygen.llm.prompts import Prompt
from surveygen.retry import backoff_seconds, retry_after_seconds
from surveygen.text import approx_tokens

T = TypeVar("T", bound=BaseModel)

MODES = ("json_schema", "json_object", "text")
# Placeholder sent when a local server needs no key (the openai client insists on one).
NO_KEY = "sk-no-key-required"


class Redactor:
    """Replaces secrets in any text that may be logged or shown."""

    def __init__(self, secrets: list[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _url_secrets(url: str | None) -> list[str]:
    """Credentials a URL may carry (user, password, query values), to be redacted."""
    if not url:
        return []
    parts = urlsplit(url)
    user, password = parts.username or "", parts.password or ""
    values = [password, user, unquote(password), unquote(user)]
    if user or password:  # httpx sends them as a Basic auth header, which a server may echo
        basic = f"{unquote(user)}:{unquote(password)}".encode()
        values.append(base64.b64encode(basic).decode("ascii"))
    values += [value for _, value in parse_qsl(parts.query)]
    return [v for v in values if v]


def _split_query(url: str | None) -> tuple[str | None, dict[str, str] | None]:
    """``url`` without its query string, and the query (``?api-key=...`` as Azure-style
    endpoints take it) as parameters the client adds to every request."""
    if not url:
        return url, None
    parts = urlsplit(url)
    if not parts.query:
        return url, None
    return urlunsplit(parts._replace(query="", fragment="")), dict(parse_qsl(parts.query))


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Trace:
    """Where a logical call sits in the run's data flow, for the call log: ``call`` numbers
    it, ``task`` names what its answer is part of (``digest/<key>``, ``refine/2/apply/3``),
    ``needs`` names the tasks whose results its prompt is made from (a name covers the tasks
    under it: ``digest`` covers ``digest/<key>`` and ``digest/<key>/map/1``), and ``after``
    is the call a repair request answers. The benchmark builds the dependency graph of a
    run from these (benchmarks/calltrace.py)."""

    call: int
    task: str
    needs: tuple[str, ...] = ()
    after: int | None = None


@dataclass(frozen=True)
class _Answer:
    content: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None


def _make_answer(
    content: str, usage: Any, finish_reason: str | None, messages: list[dict[str, str]]
) -> _Answer:
    """An answer with the API's token counts, or estimates when the server sent no usage."""
    if usage is None:
        tokens_in = sum(approx_tokens(m["content"]) for m in messages)
        return _Answer(content, tokens_in, approx_tokens(content), finish_reason)
    return _Answer(content, usage.prompt_tokens, usage.completion_tokens, finish_reason)


class LLMClient:
    """Async LLM access for the pipeline stages (they receive it as a parameter)."""

    def __init__(
        self,
        options: Settings,
        *,
        ledger: Ledger,
        cache: AnswerCache | None = None,
        log: Callable[[dict[str, Any]], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self.ledger = ledger
        self.cache = cache
        self._log = log or (lambda entry: None)
        self._rng = rng or random.Random()
        self.redact = Redactor([options.api_key, *_url_secrets(options.base_url)])
        base_url, query = _split_query(options.base_url)
        self._client = openai.AsyncOpenAI(
            api_key=options.api_key or NO_KEY,
            base_url=base_url,
            default_query=query,
            timeout=options.timeout,
            max_retries=0,
        )
        self._semaphore = asyncio.Semaphore(options.concurrency)
        start = options.structured_output
        self._mode = "json_schema" if start == "auto" else start
        self._mode_fixed = start != "auto"
        self._token_param = "max_tokens"
        self._send_stream_options = True
        # The error that ends the run (budget spent, key refused): once set, no request is
        # sent any more, while those already on the wire finish and are cached.
        self._halted: BaseException | None = None
        self._halt_event = asyncio.Event()
        self._calls = 0  # logical calls numbered so far (cache hits included)

    def _trace(
        self,
        stage: str,
        item: str,
        task: str | None,
        needs: Sequence[str],
        after: int | None = None,
    ) -> Trace:
        self._calls += 1
        return Trace(self._calls, task or f"{stage}/{item}", tuple(needs), after)

    async def aclose(self) -> None:
        await self._client.close()

    # ------------------------------------------------------------------ public API

    async def text(
        self,
        prompt: Prompt,
        *,
        stage: str,
        item: str = "",
        task: str | None = None,
        needs: Sequence[str] = (),
    ) -> str:
        """A free-text answer (thinking blocks and a wrapping fence removed). ``task`` and
        ``needs`` place the call in the run's data flow (see :class:`Trace`); ``task``
        defaults to ``<stage>/<item>``."""
        model = self.options.model_for(stage)
        messages = list(prompt.messages)
        key = cache_key(model=model, messages=messages, params=self._params(), schema=None)
        hit = self._cached(key)
        trace = self._trace(stage, item, task, needs)
        if hit is not None and clean_text(hit.content):
            self._record(stage, prompt, model, hit, cache_hit=True, item=item, trace=trace)
            return clean_text(hit.content)
        answer = await self._call(
            messages, None, stage=stage, prompt=prompt, model=model, item=item, trace=trace
        )
        text = clean_text(answer.content)
        self._store(key, model, answer)
        return text

    async def structured(
        self,
        prompt: Prompt,
        schema: type[T],
        *,
        stage: str,
        item: str = "",
        task: str | None = None,
        needs: Sequence[str] = (),
    ) -> T:
        """An answer validated against ``schema``; raises LLMParseError if even the repair
        fails. ``task`` and ``needs`` as for :meth:`text`."""
        model = self.options.model_for(stage)
        messages = list(prompt.messages)
        json_schema = strict_json_schema(schema)
        key = cache_key(model=model, messages=messages, params=self._params(), schema=json_schema)
        hit = self._cached(key)
        trace = self._trace(stage, item, task, needs)
        if hit is not None:
            try:
                result = parse_model(hit.content, schema)
            except ParseError:
                pass  # an entry written by an older parser; ask again
            else:
                self._record(stage, prompt, model, hit, cache_hit=True, item=item, trace=trace)
                return result  # type: ignore[return-value]

        answer = await self._call(
            messages, schema, stage=stage, prompt=prompt, model=model, item=item, trace=trace
        )
        try:
            result = parse_model(answer.content, schema)
        except ParseError as first_error:
            repair = [
                *messages,
                {"role": "assistant", "content": answer.content},
                {"role": "user", "content": self._repair_message(first_error, answer)},
            ]
            answer = await self._call(
                repair,
                schema,
                stage=stage,
                prompt=prompt,
                model=model,
                item=item,
                repair=True,
                trace=self._trace(stage, item, f"{trace.task}/repair", (), after=trace.call),
            )
            try:
                result = parse_model(answer.content, schema)
            except ParseError as second_error:
                raise LLMParseError(
                    f"{stage}: the model's answer{f' for {item}' if item else ''} did not "
                    f"match the expected format, even after a repair request: "
                    f"{self.redact(second_error.message)}",
                    hint="try a stronger --model, or set structured_output in surveygen.toml",
                ) from None
        self._store(key, model, answer)
        return result  # type: ignore[return-value]

    # ------------------------------------------------------------------ internals

    def _params(self) -> dict[str, Any]:
        # The endpoint is part of the key: one model name may mean different models on two
        # servers. Only the key's hash is stored, never the URL itself.
        return {
            "endpoint": self.options.base_url,
            "temperature": self.options.temperature,
            "max_tokens": self.options.max_output_tokens,
        }

    def _cached(self, key: str) -> CachedAnswer | None:
        return self.cache.get(key) if self.cache is not None else None

    def _store(self, key: str, model: str, answer: _Answer) -> None:
        if self.cache is not None:
            self.cache.put(
                key, model, CachedAnswer(answer.content, answer.tokens_in, answer.tokens_out)
            )

    @staticmethod
    def _repair_message(error: ParseError, answer: _Answer) -> str:
        cut = (
            " It was cut off before the end; be more concise."
            if answer.finish_reason == "length"
            else ""
        )
        return (
            f"Your previous answer could not be used: {error.message}{cut}\n"
            "Answer again with only the corrected JSON object, following the schema exactly."
        )

    def _record(
        self,
        stage: str,
        prompt: Prompt,
        model: str,
        answer: CachedAnswer | _Answer | None,
        *,
        cache_hit: bool,
        item: str,
        attempts: int = 0,
        latency: float = 0.0,
        error: str | None = None,
        mode: str | None = None,
        repair: bool = False,
        trace: Trace | None = None,
        wire: tuple[float, float] | None = None,
    ) -> None:
        """Log one attempt (or cache hit). ``wire`` is when the request went on the wire
        (epoch seconds) and how long it was there."""
        tokens_in = answer.tokens_in if answer else 0
        tokens_out = answer.tokens_out if answer else 0
        if cache_hit or answer is not None:
            self.ledger.record(
                stage, model, tokens_in=tokens_in, tokens_out=tokens_out, cache_hit=cache_hit
            )
        elif error:
            self.ledger.record(stage, model, error=True)
        self._log(
            {
                "time": round(time.time(), 3),
                "stage": stage,
                "prompt": prompt.name,
                "prompt_version": prompt.version,
                "model": model,
                "item": item,
                "mode": mode,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "latency_s": round(latency, 3),
                "cache_hit": cache_hit,
                "repair": repair,
                "attempts": attempts,
                "error": self.redact(error) if error else None,
                "call": trace.call if trace else None,
                "task": trace.task if trace else None,
                "needs": list(trace.needs) if trace else [],
                "after": trace.after if trace else None,
                "sent": round(wire[0], 4) if wire else round(time.time(), 4),
                "wire_s": round(wire[1], 4) if wire else 0.0,
            }
        )

    async def _call(
        self,
        messages: list[dict[str, str]],
        schema: type[BaseModel] | None,
        *,
        stage: str,
        prompt: Prompt,
        model: str,
        item: str,
        trace: Trace,
        repair: bool = False,
    ) -> _Answer:
        """Send one logical request, retrying transient failures; return a non-empty answer."""
        opts = self.options
        wire: list[float] = []  # when each attempt went on the wire (epoch, monotonic)

        def on_wire() -> tuple[float, float] | None:
            return (wire[0], time.monotonic() - wire[1]) if wire else None

        def failed(attempt: int, error: str, mode: str) -> None:
            """Log an attempt that got no answer."""
            self._record(
                stage,
                prompt,
                model,
                None,
                cache_hit=False,
                item=item,
                attempts=attempt,
                error=error,
                mode=mode,
                repair=repair,
                trace=trace,
                wire=on_wire(),
            )

        last_reason = "no attempt made"
        attempt = 0
        while attempt < opts.max_tries:
            attempt += 1
            mode = self._mode if schema is not None else "text"
            sent = self._with_instructions(messages, schema, mode)
            sent_at = time.monotonic()
            wire.clear()
            try:
                answer, reservation = await self._send(sent, schema, mode, model, wire)
            except _Retryable as exc:
                last_reason = exc.reason
                failed(attempt, exc.reason, mode)
                if attempt < opts.max_tries:
                    await self._pause(
                        backoff_seconds(
                            attempt,
                            opts.retry_base_seconds,
                            opts.retry_max_seconds,
                            exc.retry_after,
                            self._rng,
                        )
                    )
                continue
            except _Downgraded:
                attempt -= 1  # the server told us what it supports; that try does not count
                continue
            except LLMError as exc:  # refused by the endpoint (a halted client sent nothing)
                if not getattr(exc, "not_sent", False):
                    failed(attempt, exc.message, mode)
                raise
            note = None
            if schema is None and answer.finish_reason == "length":
                # Prose cut off by the token limit: keep its complete sentences only (a
                # structured answer cut off fails to parse and gets its repair request).
                answer = replace(answer, content=complete_sentences(answer.content))
                note = "cut off by the token limit; kept up to its last full sentence"
            empty = not answer.content.strip()
            try:
                self._record(
                    stage,
                    prompt,
                    model,
                    answer,
                    cache_hit=False,
                    item=item,
                    attempts=attempt,
                    latency=time.monotonic() - sent_at,
                    error="empty answer" if empty else note,
                    mode=mode,
                    repair=repair,
                    trace=trace,
                    wire=on_wire(),
                )
            finally:
                # Released only once the real cost is on the ledger, so no other call can
                # slip under the budget in between.
                self.ledger.release(reservation)
            if not empty:
                return answer
            last_reason = "empty answer"
            if attempt < opts.max_tries:
                await self._pause(
                    backoff_seconds(
                        attempt, opts.retry_base_seconds, opts.retry_max_seconds, None, self._rng
                    )
                )
        raise LLMError(
            f"{stage}: giving up on a {model} call{f' for {item}' if item else ''} after "
            f"{opts.max_tries} tries; last error: {self.redact(last_reason)}",
            hint="check the endpoint; answers already received are cached, so rerunning "
            "with --resume repeats only the missing calls",
        )

    def _with_instructions(
        self, messages: list[dict[str, str]], schema: type[BaseModel] | None, mode: str
    ) -> list[dict[str, str]]:
        """When the server cannot enforce the schema, describe it in the last user message."""
        if schema is None or mode == "json_schema":
            return messages
        last = messages[-1]
        return [
            *messages[:-1],
            {
                "role": last["role"],
                "content": f"{last['content']}\n\n{schema_instructions(schema)}",
            },
        ]

    def _request_args(
        self, messages: list[dict[str, str]], schema: type[BaseModel] | None, mode: str, model: str
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"model": model, "messages": messages}
        args[self._token_param] = self.options.max_output_tokens
        if self.options.temperature is not None:
            args["temperature"] = self.options.temperature
        if schema is not None:
            fmt = response_format(schema, mode)  # type: ignore[arg-type]
            if fmt is not None:
                args["response_format"] = fmt
        if self.options.stream:
            args["stream"] = True
            if self._send_stream_options:
                args["stream_options"] = {"include_usage": True}
        return args

    async def _send(
        self,
        messages: list[dict[str, str]],
        schema: type[BaseModel] | None,
        mode: str,
        model: str,
        wire: list[float],
    ) -> tuple[_Answer, float]:
        """One HTTP request; returns the answer and the budget reservation still held for it.
        ``wire`` receives when the request got its slot (epoch and monotonic seconds).

        The worst-case cost is reserved only once a concurrency slot is free, so calls waiting
        in the queue hold no part of the budget.
        """
        args = self._request_args(messages, schema, mode, model)
        est_in = sum(approx_tokens(m["content"]) for m in messages)
        async with self._semaphore:
            if self._halted is not None:
                raise self._stop()
            try:
                reservation = self.ledger.reserve(model, est_in, self.options.max_output_tokens)
            except BudgetExceeded as exc:
                self._halt(exc)
                raise
            wire[:] = [time.time(), time.monotonic()]
            try:
                return await self._request(args, messages, mode), reservation
            except BaseException as exc:
                if isinstance(exc, LLMRejectedError):
                    self._halt(exc)
                self.ledger.release(reservation)
                raise

    def _halt(self, error: BaseException) -> None:
        """Send nothing more: ``error`` ends the run; calls waiting to retry wake up now."""
        self._halted = error
        self._halt_event.set()

    def _stop(self) -> BaseException:
        """The error that halted the client, for a call that was not sent."""
        stop = copy.copy(self._halted)
        stop.not_sent = True  # type: ignore[union-attr]
        return stop  # type: ignore[return-value]

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` before a retry, unless the client halts meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._halt_event.wait(), timeout=seconds)
        if self._halted is not None:
            raise self._stop()

    async def _request(
        self, args: dict[str, Any], messages: list[dict[str, str]], mode: str
    ) -> _Answer:
        """Send ``args``; map the openai client's errors onto retry, downgrade or failure."""
        try:
            if self.options.stream:
                stream = await self._client.chat.completions.create(**args)
                return await self._receive_stream(stream, messages)
            completion = await self._client.chat.completions.create(**args)
        except openai.RateLimitError as exc:
            if getattr(exc, "code", None) == "insufficient_quota":
                raise LLMRejectedError(
                    f"the endpoint says the account has no quota left: {self.redact(exc.message)}",
                    hint="add credit to the account, then rerun the same command with --resume "
                    "(answers already received are cached)",
                ) from None
            raise _Retryable(
                "429 rate limited", retry_after_seconds(exc.response.headers)
            ) from None
        except openai.APITimeoutError:
            raise _Retryable(f"timed out after {self.options.timeout:g}s") from None
        except openai.APIConnectionError as exc:
            raise _Retryable(f"connection error: {self.redact(str(exc))}") from None
        except openai.APIResponseValidationError as exc:
            raise _Retryable(f"unreadable response: {self.redact(exc.message)}") from None
        except openai.APIStatusError as exc:
            self._handle_status(exc, mode)
            raise AssertionError("unreachable") from None
        except openai.APIError as exc:  # e.g. an error event in the middle of a stream
            raise _Retryable(f"endpoint error: {self.redact(str(exc))[:200]}") from None
        except ValueError as exc:  # a body that is not JSON at all
            raise _Retryable(f"unreadable response: {self.redact(str(exc))[:200]}") from None
        if not hasattr(completion, "choices"):  # a non-JSON content type comes back as text
            raise _Retryable("unreadable response: not a chat completion")
        choice = completion.choices[0] if completion.choices else None
        content = (choice.message.content or "") if choice else ""
        finish_reason = choice.finish_reason if choice else None
        return _make_answer(content, completion.usage, finish_reason, messages)

    async def _receive_stream(self, stream: Any, messages: list[dict[str, str]]) -> _Answer:
        parts: list[str] = []
        finish_reason = None
        usage = None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
        return _make_answer("".join(parts), usage, finish_reason, messages)

    def _handle_status(self, exc: openai.APIStatusError, mode: str) -> None:
        status = exc.status_code
        message = self.redact(exc.message)
        if status in (408, 409) or status >= 500:
            raise _Retryable(f"{status} {message[:200]}", retry_after_seconds(exc.response.headers))
        lowered = message.lower()
        if status in (400, 422):
            about_format = any(
                w in lowered for w in ("response_format", "json_schema", "json_object")
            )
            if about_format and not self._mode_fixed and mode != "text":
                # Step down from the mode this request used, never back up: concurrent
                # requests sent in an earlier mode may be refused after a later one was.
                lower = MODES.index(mode) + 1
                if lower > MODES.index(self._mode):
                    self._mode = MODES[lower]
                raise _Downgraded()
            refuses_max_tokens = "max_completion_tokens" in lowered or (
                "max_tokens" in lowered and ("unsupported" in lowered or "not supported" in lowered)
            )
            if refuses_max_tokens and self._token_param == "max_tokens":
                self._token_param = "max_completion_tokens"
                raise _Downgraded()
            if "stream_options" in lowered and self._send_stream_options:
                self._send_stream_options = False
                raise _Downgraded()
        if status in (401, 402, 403):
            raise LLMRejectedError(
                f"the endpoint refused the API key ({status}): {message}",
                hint="check OPENAI_API_KEY (or api_key in surveygen.toml) and --base-url, then "
                "rerun the same command with --resume (answers already received are cached)",
            )
        if status == 404:
            raise LLMRejectedError(
                f"the endpoint does not know this model or path (404): {message}",
                hint="check --model against the server's model list, and that --base-url "
                "ends in /v1; then rerun the command with the right --model and without "
                "--resume (answers already received are reused from the cache)",
            )
        # Anything else concerns this request only (too long for the context, a content
        # filter, ...): sending it again would fail again, but other items may well succeed.
        raise LLMError(f"the endpoint rejected the request ({status}): {message}")


class _Downgraded(Exception):
    """The server rejected an optional feature; the request is sent again without it."""
