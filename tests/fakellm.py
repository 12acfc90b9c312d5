"""A hermetic, OpenAI-compatible chat server for tests.

``FakeLLMServer`` is a real HTTP/1.1 server on 127.0.0.1 (random free port) that speaks the
parts of the OpenAI REST API surveygen uses, so the official ``openai`` client talks to it
unmodified::

    with FakeLLMServer() as server:
        server.reply(r"outline", '{"sections": []}')
        client = OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="fake-model", messages=[...])

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``
(plain JSON, or SSE when ``"stream": true``). Anything else is a 404 in OpenAI's error shape.

A chat request goes through these steps, in order:

1. it is recorded (``server.requests``);
2. authentication: with ``require_api_key`` set, a wrong ``Authorization`` gets a 401;
3. validation: a body that is not a JSON object, no ``messages``, or a ``response_format``
   type listed in ``reject_response_formats`` gets a 400;
4. a fault is taken: first from the ``inject`` queue, else drawn from ``fault_rates``.
   Only requests that got this far consume a fault, so ``inject("429")`` followed by a
   request that is rejected by step 3 leaves the 429 for the next accepted request;
5. transport and status faults (``429``, ``500``, ``503``, ``timeout``, ``drop``,
   ``malformed_body``, ``echo_auth``) are applied; a ``timeout`` sleeps, then answers only
   if the client is still connected (a client that timed out does not use up a rule);
6. the answer is chosen: the first ``reply`` rule whose regex matches the prompt text, else
   the ``responder`` given to the constructor, else ``"OK"``. Rules are consumed only here,
   so a request that failed in steps 2-5 does not use up a rule's ``times``;
7. the answer is shaped: ``bad_json`` mangles it, ``wrap`` wraps it, then ``truncated`` /
   ``empty`` / the request's ``max_tokens`` (or ``max_completion_tokens``) cut it;
8. ``latency`` is slept, then the completion is sent. (The rule was used in step 6, so a
   client that gives up during ``latency`` has still used it.)

Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import select
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "FAULT_KINDS",
    "WRAP_MODES",
    "FakeLLMServer",
    "RecordedRequest",
    "Rule",
    "approx_tokens",
    "prompt_text",
]

Answer = str | Callable[[dict[str, Any]], str]
"""What a rule or the server answers: fixed text, or a function of the request body."""

FAULT_KINDS: frozenset[str] = frozenset(
    {
        "429",
        "500",
        "503",
        "timeout",
        "drop",
        "malformed_body",
        "bad_json",
        "truncated",
        "empty",
        "echo_auth",
    }
)
"""Every fault kind ``inject`` and ``fault_rates`` accept."""

WRAP_MODES: frozenset[str | None] = frozenset({None, "fence", "think", "prose"})
"""Every value ``FakeLLMServer.wrap`` accepts."""

PROSE_PREFIX = "Sure! Here is the JSON:\n"
THINK_BLOCK = "<think>\nThe user wants JSON. Let me write it carefully.\n</think>\n\n"

_CHAT_PATH = "/v1/chat/completions"
_MODELS_PATH = "/v1/models"
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def prompt_text(body: Mapping[str, Any] | None) -> str:
    """Concatenate the text of every message in a chat request body, one message a line.

    String contents are taken as they are; list contents (content parts) contribute their
    ``text`` parts. This is the text ``reply`` patterns are searched in.
    """
    if not body:
        return ""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return "\n".join(texts)


def approx_tokens(text: str) -> int:
    """Approximate token count: ``max(1, len(text) // 4)``, and 0 for empty text."""
    return max(1, len(text) // 4) if text else 0


@dataclass
class RecordedRequest:
    """One HTTP request the server received.

    ``time`` is ``time.monotonic()`` at arrival (compare two requests to measure a client's
    backoff). ``fault`` is the fault kind applied to it, if any; ``status`` is the HTTP status
    sent back (``None`` when the connection was dropped or the client went away first).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    time: float
    fault: str | None = None
    status: int | None = None
    query: dict[str, str] = field(default_factory=dict)  # the URL's query parameters

    @property
    def prompt_text(self) -> str:
        """The concatenated message contents of a chat request (``""`` otherwise)."""
        return prompt_text(self.body if isinstance(self.body, Mapping) else None)

    @property
    def is_chat(self) -> bool:
        """True for ``POST /v1/chat/completions``."""
        return self.method == "POST" and self.path == _CHAT_PATH


@dataclass
class Rule:
    """A scripted answer added with ``FakeLLMServer.reply``.

    ``times`` is how many more uses are left (``None``: unlimited); ``hits`` counts uses.
    """

    pattern: re.Pattern[str]
    answer: Answer
    times: int | None = None
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        """True once a rule with ``times`` has been used that many times."""
        return self.times is not None and self.times <= 0


@dataclass
class _Fault:
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


class _HTTPServer(ThreadingHTTPServer):
    """The socket server; carries a back-reference to the ``FakeLLMServer`` it serves."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of concurrent connections beyond
    # that has its SYNs dropped and retried a second later, which distorts latency figures.
    request_queue_size = 256
    fake: FakeLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away; the handler records everything else."""
        return


class FakeLLMServer:
    """An OpenAI-compatible chat server with scripted answers, latency and fault injection.

    Args:
        responder: answers requests no ``reply`` rule matches (``None``: answer ``"OK"``).
        models: model ids listed by ``GET /v1/models``; the first one is reported for
            requests without a ``model`` field (requests may name any model).
        host: interface to bind; the port is always a random free one.

    Attributes you may set at any time:
        latency: ``(base_seconds, per_output_token_seconds)`` slept before each completion.
        reject_response_formats: ``response_format.type`` values answered with a 400.
        reject_params: request fields answered with a 400 "Unsupported parameter", the way
            OpenAI's reasoning models refuse ``max_tokens`` (``{"max_tokens"}``).
        require_api_key: when set, ``Authorization`` must be ``Bearer <key>`` or a 401 follows.
        responder: the default responder.
    """

    def __init__(
        self,
        responder: Callable[[dict[str, Any]], str] | None = None,
        *,
        models: tuple[str, ...] | list[str] = ("fake-model",),
        host: str = "127.0.0.1",
    ) -> None:
        if not models:
            raise ValueError("models must name at least one model id")
        self.responder = responder
        self.models: list[str] = list(models)
        self.host = host
        self.latency: tuple[float, float] = (0.0, 0.0)
        self.reject_response_formats: set[str] = set()
        self.reject_params: set[str] = set()
        self.require_api_key: str | None = None
        self._wrap: str | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._rules: list[Rule] = []
        self._fault_queue: deque[_Fault] = deque()
        self._fault_rates: dict[str, float] = {}
        self._fault_rate_options: dict[str, Any] = {}
        self._rng = random.Random(0)
        self._errors: list[BaseException] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeLLMServer:
        """Bind a free port and serve in a daemon thread. Returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("FakeLLMServer is already running")
        self._stopping = threading.Event()
        httpd = _HTTPServer((self.host, 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fakellm:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; returns promptly even mid-``timeout``.

        Handlers sleeping for a simulated timeout or latency wake up and drop their
        connection without answering. Calling ``stop`` twice is harmless.
        """
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown_socket(conn)
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (only while running)."""
        if self._httpd is None:
            raise RuntimeError("FakeLLMServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, ready for ``OpenAI(base_url=...)``."""
        return f"http://{self.host}:{self.port}/v1"

    # ----------------------------------------------------------------- scripting

    def reply(
        self, pattern: str | re.Pattern[str], answer: Answer, *, times: int | None = None
    ) -> Rule:
        """Answer ``answer`` to chat requests whose prompt text matches ``pattern``.

        ``pattern`` is searched (``re.S``) in ``prompt_text(body)``, the message contents
        joined by newlines. ``answer`` is a string or a function of the request body. Rules
        are tried in the order added; a rule with ``times`` is used that many times and then
        skipped. Returns the rule, whose ``hits`` counts its uses.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for unlimited)")
        compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.S)
        rule = Rule(pattern=compiled, answer=answer, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    @property
    def wrap(self) -> str | None:
        """How every answer is wrapped: ``None``, ``"fence"``, ``"think"`` or ``"prose"``.

        ``"fence"`` puts it in a fenced json code block, ``"think"`` after a
        ``<think>...</think>`` block, ``"prose"`` after ``"Sure! Here is the JSON:\\n"``.
        """
        return self._wrap

    @wrap.setter
    def wrap(self, mode: str | None) -> None:
        if mode not in WRAP_MODES:
            raise ValueError(f"wrap must be one of None, 'fence', 'think', 'prose'; got {mode!r}")
        self._wrap = mode

    # ----------------------------------------------------------------- faults

    def inject(self, kind: str, times: int = 1, **options: Any) -> None:
        """Queue ``kind`` for the next ``times`` accepted chat requests (after earlier ones).

        Options by kind: ``429``: ``retry_after`` (seconds, default 1; ``None`` omits the
        header) and ``retry_after_ms`` (adds ``retry-after-ms``, which the openai client
        prefers); ``timeout``: ``seconds`` (default 30); ``drop``: ``after_chunks`` (streaming
        only: send that many SSE events, then cut the connection mid-body);
        ``malformed_body``: ``body`` (bytes) and ``content_type``;
        ``truncated``: ``keep`` (fraction kept, default 0.5).
        """
        _check_kind(kind)
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._fault_queue.extend(_Fault(kind, dict(options)) for _ in range(times))

    def fault_rates(
        self, rates: Mapping[str, float] | None, *, seed: int = 0, **options: Any
    ) -> None:
        """Give each accepted chat request a seeded random fault (when the queue is empty).

        One ``random.Random(seed)`` draw per request picks at most one kind, with the given
        probabilities (in the mapping's order, summing to at most 1), so the same request
        sequence always gets the same faults. ``options`` apply to every drawn fault (for
        example ``retry_after_ms=10`` or ``seconds=2``). ``None`` or ``{}`` turns it off.
        """
        rates = dict(rates or {})
        for kind, rate in rates.items():
            _check_kind(kind)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate for {kind!r} must be within [0, 1], got {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates must sum to at most 1")
        with self._lock:
            self._fault_rates = rates
            self._fault_rate_options = dict(options)
            self._rng = random.Random(seed)

    @property
    def pending_faults(self) -> list[str]:
        """Kinds still waiting in the ``inject`` queue, next first."""
        with self._lock:
            return [fault.kind for fault in self._fault_queue]

    # ----------------------------------------------------------------- records

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[RecordedRequest]:
        """Only the ``POST /v1/chat/completions`` requests, oldest first."""
        return [request for request in self.requests if request.is_chat]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while answering (a responder that raised, a server bug).

        Each one was also answered with a 500 whose message names it.
        """
        with self._lock:
            return list(self._errors)

    def reset(self) -> None:
        """Forget recorded requests and errors, rules, queued faults and fault rates.

        ``latency``, ``wrap``, ``reject_response_formats``, ``reject_params``,
        ``require_api_key`` and the default responder are kept.
        """
        with self._lock:
            self._requests.clear()
            self._errors.clear()
            self._rules.clear()
            self._fault_queue.clear()
            self._fault_rates = {}
            self._fault_rate_options = {}
            self._rng = random.Random(0)

    # ----------------------------------------------------------------- internals

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _track(self, conn: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if self._fault_queue:
                return self._fault_queue.popleft()
            if not self._fault_rates:
                return None
            draw = self._rng.random()
            cumulative = 0.0
            for kind, rate in self._fault_rates.items():
                cumulative += rate
                if draw < cumulative:
                    return _Fault(kind, dict(self._fault_rate_options))
            return None

    def _answer(self, body: dict[str, Any]) -> str:
        text = prompt_text(body)
        answer: Answer | None = None
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.pattern.search(text):
                    continue
                rule.hits += 1
                if rule.times is not None:
                    rule.times -= 1
                answer = rule.answer
                break
        if answer is None:
            answer = self.responder if self.responder is not None else "OK"
        result = answer if isinstance(answer, str) else answer(body)
        if not isinstance(result, str):
            raise TypeError(f"an answer function must return str, got {type(result).__name__}")
        return result

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True if the server is stopping."""
        if seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")


def _shutdown_socket(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def _error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _mangle_json(text: str) -> str:
    """Turn ``text`` into certainly-invalid JSON: drop closing brackets, add a comma."""
    return text.rstrip().rstrip("}]").rstrip() + ","


def _wrap(text: str, mode: str | None) -> str:
    if mode == "fence":
        return f"```json\n{text}\n```"
    if mode == "think":
        return THINK_BLOCK + text
    if mode == "prose":
        return PROSE_PREFIX + text
    return text


def _pieces(text: str, count: int = 8) -> Iterator[str]:
    """Split ``text`` into at most ``count`` consecutive pieces of (nearly) equal size."""
    size = max(1, math.ceil(len(text) / count))
    for start in range(0, len(text), size):
        yield text[start : start + size]


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler: keep-alive with ``Content-Length``, chunked SSE for streams."""

    protocol_version = "HTTP/1.1"
    server_version = "fakellm/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _HTTPServer

    _record: RecordedRequest | None = None
    _headers_sent = False

    # --------------------------------------------------------- plumbing

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    @property
    def fake(self) -> FakeLLMServer:
        return self.server.fake

    def _dispatch(self) -> None:
        self._record = None
        self._headers_sent = False
        try:
            self._route()
        except _CLIENT_GONE:
            self.close_connection = True
        except Exception as exc:
            self.fake._record_error(exc)
            if self._headers_sent:
                self._drop()
                return
            try:
                self._send_error(500, f"fakellm: the answer raised {exc!r}", "server_error")
            except OSError:
                self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _drop(self) -> None:
        """Close the connection without (finishing) a response."""
        self.close_connection = True
        _shutdown_socket(self.connection)

    def _peer_closed(self) -> bool:
        """True if the client has closed its end (it timed out while we slept)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self._headers_sent = True
        if self._record is not None:
            self._record.status = status

    def _send_bytes(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(payload))}
        all_headers.update(headers or {})
        self._start(status, all_headers)
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), headers=headers)

    def _send_error(
        self,
        status: int,
        message: str,
        type_: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._send_json(status, _error_body(message, type_, param=param, code=code), headers)

    # --------------------------------------------------------- routing

    def _route(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if len(path) > 1:
            path = path.rstrip("/")
        raw = self._read_body()
        body: Any = None
        body_ok = True
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body_ok = False
        self._record = RecordedRequest(
            method=self.command,
            path=path,
            query=dict(parse_qsl(urlsplit(self.path).query)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            time=time.monotonic(),
        )
        self.fake._record(self._record)

        if not self._authorized():
            return
        if path == _CHAT_PATH:
            if self.command != "POST":
                self._method_not_allowed()
            elif not body_ok or not isinstance(body, dict):
                self._send_error(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely means"
                    " you aren't using your HTTP library correctly.)",
                    "invalid_request_error",
                )
            else:
                self._chat(body)
        elif path == _MODELS_PATH:
            if self.command == "GET":
                self._send_json(200, {"object": "list", "data": self._models()})
            else:
                self._method_not_allowed()
        elif path.startswith(_MODELS_PATH + "/") and self.command == "GET":
            model_id = path[len(_MODELS_PATH) + 1 :]
            found = [model for model in self._models() if model["id"] == model_id]
            if found:
                self._send_json(200, found[0])
            else:
                self._send_error(
                    404,
                    f"The model '{model_id}' does not exist",
                    "invalid_request_error",
                    param="model",
                    code="model_not_found",
                )
        else:
            self._send_error(404, f"Invalid URL ({self.command} {path})", "invalid_request_error")

    def _authorized(self) -> bool:
        key = self.fake.require_api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send_error(
            401,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            code="invalid_api_key",
        )
        return False

    def _method_not_allowed(self) -> None:
        self._send_error(
            405,
            f"Not allowed to {self.command} on {self._record.path if self._record else '?'}.",
            "invalid_request_error",
        )

    def _models(self) -> list[dict[str, Any]]:
        return [
            {"id": model, "object": "model", "created": 0, "owned_by": "fakellm"}
            for model in self.fake.models
        ]

    # --------------------------------------------------------- chat completions

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.fake
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._send_error(
                400,
                "'messages' is a required property and must be a non-empty array",
                "invalid_request_error",
                param="messages",
            )
            return
        for param in sorted(fake.reject_params & body.keys()):
            self._send_error(
                400,
                f"Unsupported parameter: '{param}' is not supported with this model.",
                "invalid_request_error",
                param=param,
            )
            return
        response_format = body.get("response_format")
        format_type = response_format.get("type") if isinstance(response_format, dict) else None
        if format_type in fake.reject_response_formats:
            self._send_error(
                400,
                f"Invalid parameter: 'response_format' of type '{format_type}' is not supported"
                " by this server.",
                "invalid_request_error",
                param="response_format",
            )
            return

        fault = fake._take_fault()
        kind = fault.kind if fault else None
        options = fault.options if fault else {}
        assert self._record is not None
        self._record.fault = kind
        stream = bool(body.get("stream"))

        if kind == "429":
            headers: dict[str, str] = {}
            if options.get("retry_after", 1) is not None:
                headers["Retry-After"] = _number(options.get("retry_after", 1))
            if options.get("retry_after_ms") is not None:
                headers["retry-after-ms"] = _number(options["retry_after_ms"])
            self._send_error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
            return
        if kind == "500":
            self._send_error(
                500, "The server had an error while processing your request.", "server_error"
            )
            return
        if kind == "503":
            self._send_error(
                503,
                "The engine is currently overloaded, please try again later.",
                "server_error",
                code="overloaded",
            )
            return
        if kind == "echo_auth":
            self._send_error(
                401,
                f"Incorrect API key provided: {self.headers.get('Authorization', '')}",
                "invalid_request_error",
                code="invalid_api_key",
            )
            return
        if kind == "drop" and not (stream and options.get("after_chunks")):
            self._drop()
            return
        if kind == "timeout" and (
            fake._sleep(float(options.get("seconds", 30))) or self._peer_closed()
        ):
            self._drop()  # stopping, or the client gave up: answer nothing, consume no rule
            return
        if kind == "malformed_body":
            self._malformed(stream, options)
            return

        content = fake._answer(body)
        if kind == "bad_json":
            content = _mangle_json(content)
        content = _wrap(content, fake.wrap)
        finish_reason = "stop"
        if kind == "truncated":
            content = content[: int(len(content) * float(options.get("keep", 0.5)))]
            finish_reason = "length"
        elif kind == "empty":
            content = ""
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and approx_tokens(content) > limit:
            content = content[: limit * 4]
            finish_reason = "length"

        prompt_tokens = approx_tokens(prompt_text(body))
        completion_tokens = approx_tokens(content)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base, per_token = fake.latency
        if fake._sleep(base + per_token * completion_tokens):
            self._drop()
            return

        model = body.get("model") if isinstance(body.get("model"), str) else fake.models[0]
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if stream:
            stream_options = body.get("stream_options")
            include_usage = isinstance(stream_options, dict) and bool(
                stream_options.get("include_usage")
            )
            self._stream(
                completion_id,
                created,
                model,
                content,
                finish_reason,
                usage if include_usage else None,
                drop_after=int(options.get("after_chunks", 0)) if kind == "drop" else 0,
            )
            return
        self._send_json(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fakellm",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
            },
        )

    def _malformed(self, stream: bool, options: Mapping[str, Any]) -> None:
        if stream:
            self._start(200, _SSE_HEADERS)
            self._chunk(
                b'data: {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "ch\n\n'
            )
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
            return
        payload = options.get("body", b'{"id": "chatcmpl-broken", "object": "chat.completion", "ch')
        if isinstance(payload, str):
            payload = payload.encode()
        self._send_bytes(200, payload, options.get("content_type", "application/json"))

    def _chunk(self, data: bytes) -> None:
        """Write one HTTP chunk (an empty one ends the body)."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _stream(
        self,
        completion_id: str,
        created: int,
        model: str,
        content: str,
        finish_reason: str,
        usage: dict[str, int] | None,
        *,
        drop_after: int = 0,
    ) -> None:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            obj: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fakellm",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if usage is not None:
                obj["usage"] = None
            return obj

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": piece}, None) for piece in _pieces(content)]
        events.append(chunk({}, finish_reason))
        if usage is not None:
            last = chunk({}, None)
            last["choices"] = []
            last["usage"] = usage
            events.append(last)

        self._start(200, _SSE_HEADERS)
        for sent, event in enumerate(events):
            if drop_after and sent >= drop_after:
                self._drop()
                return
            self._chunk(f"data: {json.dumps(event)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")


_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "Transfer-Encoding": "chunked",
}


def _number(value: Any) -> str:
    """Format a header number: ``1`` not ``1.0``, but ``0.25`` stays ``0.25``."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)
