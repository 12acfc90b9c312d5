"""arXiv as a source of papers: keyword search, papers by id, and full text from their PDFs.

arXiv asks API users for at most one request every three seconds, so every request this
module sends (an API page, a PDF, each redirect) waits on a shared, thread-safe limiter, and
requests to arxiv.org hosts are never closer than three seconds whatever ``delay`` says.
Non-empty answers are cached per user in SQLite (``arxiv.sqlite``) for ``ttl`` seconds and
extracted texts forever (``arxiv-text/<id>v<version>.txt``: a version never changes), so a
re-run asks arXiv little or nothing. Failures that another try may fix (HTTP 408/429/5xx,
broken connections, timeouts, malformed or unexpectedly empty pages) are retried with
exponential backoff; whatever still fails becomes :class:`ArxivUnavailable` with a reason a
user can read, and a request arXiv refuses (HTTP 400 for a malformed query, ...) becomes its
subclass :class:`ArxivRejected`. No ``requests`` or ``arxiv`` exception leaves this module.

The ``arxiv`` package does the paging and the Atom parsing. It gets a ``requests.Session`` of
ours that applies the limiter, a timeout and our User-Agent, and checks that every page is
well-formed XML (``arxiv`` parses leniently and would take a broken page for an empty one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from xml.etree import ElementTree

import arxiv
import requests
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from urllib3 import exceptions as urllib3_errors
from urllib3.response import HTTPResponse as Urllib3Response

import surveygen
from surveygen.library.records import (
    SEARCH,
    USER,
    Candidate,
    DocumentError,
    cap_title,
    clean_space,
    format_size,
    normalise_arxiv_id,
    normalise_doi,
    scrub,
)
from surveygen.retry import retry_after_seconds

__all__ = ["ARXIV_MIN_DELAY", "ArxivRejected", "ArxivSource", "ArxivUnavailable", "build_query"]

T = TypeVar("T")

# The arxiv package logs a warning for every malformed feed and odd entry; with no handler
# configured, logging.lastResort would print them to stderr over the progress display.
_ARXIV_LOG = logging.getLogger("arxiv")
if not any(isinstance(h, logging.NullHandler) for h in _ARXIV_LOG.handlers):
    _ARXIV_LOG.addHandler(logging.NullHandler())
if _ARXIV_LOG.level == logging.NOTSET:
    _ARXIV_LOG.setLevel(logging.ERROR)

log = logging.getLogger(__name__)

_USER_AGENT = (
    f"surveygen/{surveygen.__version__} (literature survey writer) "
    f"python-requests/{requests.__version__}"
)
_ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
_ATOM_ENTRY = "{http://www.w3.org/2005/Atom}entry"
_BATCH = 100  # ids per id_list request
_BACKOFF_BASE = 2.0  # seconds before the first retry (at most `delay`); doubles every try
_BACKOFF_CAP = 60.0
_MAX_RETRY_AFTER = 120.0  # a server asking for a longer wait is not retried
_DB_TIMEOUT = 1.0  # seconds to wait for a cache locked by another process
_CHUNK = 64 * 1024
_DOWNLOAD_TIMEOUTS = 4  # a PDF's body must arrive within this many times `timeout`
ARXIV_MIN_DELAY = 3.0  # arXiv's terms of use: at most one request every three seconds


class ArxivUnavailable(Exception):
    """arXiv (or its PDF host) could not be used; ``str()`` is the reason, for a warning."""


class ArxivRejected(ArxivUnavailable):
    """arXiv refused this one request (HTTP 4xx other than 408 and 429, such as 400 for a
    malformed query): arXiv itself works, so the next query is still worth sending."""


def _is_arxiv_host(host: str | None) -> bool:
    host = (host or "").lower().rstrip(".")
    return host == "arxiv.org" or host.endswith(".arxiv.org")


# --------------------------------------------------------------------------------------------
# Queries

_STOPWORD_TEXT = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
via using use used towards toward within without upon versus vs etc e.g i.e
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_FIELD_SYNTAX = re.compile(r"(?<![\w])(?:ti|abs|au|all|cat|co|jr|rn|id):(?=\S)")
_OPERATOR = re.compile(r"(?:^|\s)(?:AND|OR|ANDNOT)(?:\s|$)")
_PIECE = re.compile(r'"([^"]*)"|([^\W_]+(?:[-.\'][^\W_]+)*)')
_WORD = re.compile(r"[^\W_]+(?:[-.\'][^\W_]+)*")
_MAX_TERMS = 8


def build_query(text: str) -> str:
    """An arXiv ``search_query`` for free text, or ``text`` itself if it is one already.

    Free text loses its stopwords and punctuation; the remaining words (at most eight, in
    order, without repeats) are all required: ``all:graph AND all:"neural network"``.
    Quoted phrases stay phrases. Raises ValueError when no search term is left.
    """
    stripped = clean_space(text)
    if _FIELD_SYNTAX.search(stripped) or _OPERATOR.search(stripped):
        return stripped
    terms: list[str] = []
    for match in _PIECE.finditer(stripped):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None:
            words = [w.lower() for w in _WORD.findall(phrase)]
            if not words:
                continue
            term = f'all:"{" ".join(words)}"' if len(words) > 1 else _word_term(words[0])
        else:
            lowered = word.lower()
            if lowered in _STOPWORDS:
                continue
            term = _word_term(lowered)
        if term not in terms:
            terms.append(term)
        if len(terms) == _MAX_TERMS:
            break
    if not terms:
        raise ValueError(f"no search terms in the query {text!r}")
    return " AND ".join(terms)


def _word_term(word: str) -> str:
    """``all:word``; a word with inner punctuation (``gpt-4``, ``2.0``) as a phrase."""
    return f'all:"{word}"' if re.search(r"[-.']", word) else f"all:{word}"


# --------------------------------------------------------------------------------------------
# HTTP: the limiter, the session and retries


class _Limiter:
    """At most one request per ``interval`` seconds, shared by every thread.

    Each caller reserves the next free slot under the lock and sleeps outside it, so waiting
    threads do not block one another and slots are handed out in arrival order.
    """

    def __init__(self, interval: float, sleep: Callable[[float], None]) -> None:
        self.interval = max(0.0, interval)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = float("-inf")

    def wait(self) -> float:
        """Wait for the next free slot; returns its start (``time.monotonic()`` seconds)."""
        with self._lock:
            now = time.monotonic()
            if self.interval <= 0:
                return now
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)
        return start


class _BadFeed(Exception):
    """An API answer with status 200 that is not a well-formed Atom feed."""


@dataclass
class _ApiCall:
    """Per-thread state of one logical API request (all its pages and tries)."""

    pages: dict[str, requests.Response] = field(default_factory=dict)
    retry_after: float | None = None


class _PoliteSession(requests.Session):
    """A Session that waits on the limiter, sets a timeout and names surveygen.

    Every request it sends, redirects included, first waits on a limiter: ``arxiv_limiter``
    for arxiv.org and its subdomains, ``limiter`` for any other host (both may be the same).
    During an API call (see :meth:`api_call`) it also rejects malformed feeds, remembers the
    Retry-After of a failed page and answers a page it already fetched from memory, so a
    retry after a failure on page 3 does not fetch pages 1 and 2 again.
    """

    def __init__(self, limiter: _Limiter, timeout: float, arxiv_limiter: _Limiter) -> None:
        super().__init__()
        self.headers["User-Agent"] = _USER_AGENT
        self._limiter = limiter
        self._arxiv_limiter = arxiv_limiter
        self._timeout = timeout
        self._local = threading.local()

    @contextlib.contextmanager
    def api_call(self) -> Iterator[_ApiCall]:
        state = _ApiCall()
        self._local.api = state
        try:
            yield state
        finally:
            self._local.api = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        api: _ApiCall | None = getattr(self._local, "api", None)
        if api is not None and str(url) in api.pages:
            return api.pages[str(url)]
        # Our User-Agent, not the arxiv package's own (it passes one per request).
        headers = kwargs.get("headers") or {}
        kwargs["headers"] = {k: v for k, v in headers.items() if k.lower() != "user-agent"}
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        response = super().request(method, url, *args, **kwargs)
        if api is not None:
            api.retry_after = _retry_after(response)
            if response.status_code == 200:
                entries = _feed_entries(response.content)
                if entries is None:
                    raise _BadFeed(str(url))
                if entries:  # an empty page may be a glitch that a retry should see again
                    api.pages[str(url)] = response
        return response

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        # Session.request and Session.resolve_redirects both send through here, so every
        # redirect hop waits on the limiter too.
        host = urlsplit(request.url or "").hostname
        (self._arxiv_limiter if _is_arxiv_host(host) else self._limiter).wait()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def _feed_entries(content: bytes) -> int | None:
    """How many entries an Atom feed holds, or None if ``content`` is not one."""
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return None
    if root.tag != _ATOM_FEED:
        return None
    return len(root.findall(_ATOM_ENTRY))


def _retry_after(response: requests.Response) -> float | None:
    """Seconds a 429 or 503 answer asks us to wait (``Retry-After``), or None."""
    if response.status_code not in (429, 503):
        return None
    return retry_after_seconds(response.headers)


class _Retry(Exception):
    """One try failed in a way another try may fix.

    ``message`` is the reason to give if no try succeeds; ``{tries}`` in it becomes
    "4 tries".
    """

    def __init__(
        self, message: str, retry_after: float | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.unreachable = unreachable  # the host refused the connection or has no address

    def reason(self, tries: int) -> str:
        return self.message.replace("{tries}", "1 try" if tries == 1 else f"{tries} tries")


def _network_reason(err: BaseException) -> str:
    """A few words on why a connection failed: "connection refused", "host not found"..."""
    seen: set[int] = set()
    todo: list[Any] = [err]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, ConnectionResetError):
            return "connection reset"
        if type(item).__name__ == "gaierror" or "NameResolution" in type(item).__name__:
            return "host not found"
        if "SSL" in type(item).__name__:
            return "TLS error"
        todo += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]
    text = str(err).lower()
    if "connection refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "host not found"
    if "remotedisconnected" in text or "connection aborted" in text:
        return "connection closed by the server"
    return "connection failed"


# --------------------------------------------------------------------------------------------
# The source


class ArxivSource:
    """Search arXiv, fetch papers by id and download their full texts, politely.

    Thread-safe: one limiter and one session are shared by every thread. ``clock`` (wall
    time, for cache ages) and ``sleep`` (for the limiter and backoff) can be replaced in
    tests. ``refresh`` ignores cached API answers (and replaces them); extracted texts are
    always reused. A host that refused every try is not asked again by the same source.

    ``delay`` is the least time between two requests; for arXiv itself (an ``api_url`` on
    arxiv.org or a subdomain) it is at least ``ARXIV_MIN_DELAY``, whatever is asked, and
    requests to arXiv hosts always keep that spacing, even when the API is a local mirror.
    """

    def __init__(
        self,
        *,
        api_url: str = "https://export.arxiv.org/api/query",
        cache_dir: Path,
        delay: float = 3.0,
        timeout: float = 30.0,
        tries: int = 4,
        ttl: float = 86400.0,
        refresh: bool = False,
        page_size: int = 100,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_url = api_url
        self._host = urlsplit(api_url).netloc or api_url
        api_is_arxiv = _is_arxiv_host(urlsplit(api_url).hostname)
        if api_is_arxiv and not delay >= ARXIV_MIN_DELAY:
            delay = ARXIV_MIN_DELAY
        self._cache_dir = Path(cache_dir)
        self._timeout = timeout
        self._tries = max(1, tries)
        self._ttl = ttl
        self._refresh = refresh
        self._page_size = max(1, page_size)
        self._clock = clock
        self._sleep = sleep
        # With no politeness delay (a local mirror, tests) backoff need not be long either.
        self._backoff = min(_BACKOFF_BASE, max(delay, 0.05))
        self._rng = random.Random()
        self._unreachable: dict[str, str] = {}  # host -> why it could not be reached
        limiter = _Limiter(delay, sleep)
        arxiv_limiter = limiter if api_is_arxiv else _Limiter(ARXIV_MIN_DELAY, sleep)
        self._session = _PoliteSession(limiter, timeout, arxiv_limiter)
        self._cache_broken = False

    @property
    def delay(self) -> float:
        """The effective least time between two API requests, in seconds."""
        return self._session._limiter.interval

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ArxivSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ API

    def search(self, query: str, *, max_results: int) -> list[Candidate]:
        """Up to ``max_results`` papers for ``query`` (free text or arXiv syntax), by relevance.

        Raises ValueError for a query without search terms, ArxivRejected when arXiv refuses
        this query (HTTP 400 and the like), ArxivUnavailable when arXiv cannot answer. Empty
        answers are not cached.
        """
        built = build_query(query)
        if max_results <= 0:
            return []
        key = self._key("search", built, str(max_results))
        cached = self._cache_get(key)
        if cached:
            return [replace(c, query=query) for c in cached]
        search = arxiv.Search(
            query=built, max_results=max_results, sort_by=arxiv.SortCriterion.Relevance
        )
        found: list[Candidate] = []
        seen: set[str] = set()
        for result in self._results(search, page_size=min(self._page_size, max_results)):
            candidate = _candidate(result, origin=SEARCH, source="arxiv:search", query=query)
            if candidate is not None and candidate.arxiv_id not in seen:
                seen.add(str(candidate.arxiv_id))
                found.append(candidate)
        if found:  # arXiv sometimes answers a good query with an empty feed: ask again later
            self._cache_put(key, found)
        return found

    def fetch_ids(self, ids: Sequence[str]) -> tuple[list[Candidate], list[str]]:
        """The papers with these ids (any spelling; a version asks for that version).

        Returns the candidates found, in input order and without repeats, and the ids (as
        given) that are not arXiv ids or that arXiv does not know.
        """
        wanted: list[tuple[str, int | None]] = []
        for given in ids:
            parsed = normalise_arxiv_id(given)
            if parsed is not None and parsed not in wanted:
                wanted.append(parsed)
        found: dict[tuple[str, int | None], Candidate] = {}
        to_fetch: list[tuple[str, int | None]] = []
        for ident, version in wanted:
            cached = self._cache_get(self._id_key(ident, version))
            if cached:
                found[ident, version] = cached[0]
            else:
                to_fetch.append((ident, version))
        for start in range(0, len(to_fetch), _BATCH):
            batch = to_fetch[start : start + _BATCH]
            id_list = [f"{i}v{v}" if v is not None else i for i, v in batch]
            search = arxiv.Search(id_list=id_list, max_results=len(batch))
            got = [
                c
                for r in self._results(search, page_size=len(batch))
                if (c := _candidate(r, origin=USER, source="arxiv:ids", query=None)) is not None
            ]
            for ident, version in batch:
                # An unversioned id means the latest version, even if an older one was
                # asked for in the same batch.
                matches = [
                    c for c in got if c.arxiv_id == ident and version in (None, c.arxiv_version)
                ]
                if matches:
                    match = max(matches, key=lambda c: c.arxiv_version or 0)
                    found[ident, version] = match
                    self._cache_put(self._id_key(ident, version), [match])
        candidates: list[Candidate] = []
        missing: list[str] = []
        done: set[tuple[str, int | None]] = set()
        for given in ids:
            parsed = normalise_arxiv_id(given)
            if parsed is None or parsed not in found:
                missing.append(clean_space(given))
            elif parsed not in done:
                done.add(parsed)
                candidates.append(replace(found[parsed]))
        return candidates, missing

    def _results(self, search: arxiv.Search, *, page_size: int) -> list[arxiv.Result]:
        """Every result of ``search``, with our retries around the arxiv client's paging."""
        client = arxiv.Client(page_size=page_size, delay_seconds=0, num_retries=0)
        client.delay_seconds = 0  # the session's limiter spaces the requests
        client.query_url_format = self._api_url + "?{}"
        client._session.close()
        client._session = self._session
        with self._session.api_call() as call:
            return self._retrying(lambda: self._api_try(client, search, call), self._host)

    def _api_try(
        self, client: arxiv.Client, search: arxiv.Search, call: _ApiCall
    ) -> list[arxiv.Result]:
        try:
            return list(client.results(search))
        except arxiv.HTTPError as err:
            if err.status in (408, 429) or err.status >= 500:
                raise _Retry(
                    f"arXiv did not answer after {{tries}} (HTTP {err.status})", call.retry_after
                ) from None
            if 400 <= err.status < 500:
                raise ArxivRejected(f"arXiv refused the request (HTTP {err.status})") from None
            raise ArxivUnavailable(f"arXiv refused the request (HTTP {err.status})") from None
        except arxiv.UnexpectedEmptyPageError:
            raise _Retry("arXiv kept sending empty pages of results ({tries})") from None
        except (_BadFeed, ValueError):
            raise _Retry("arXiv sent malformed answers ({tries})") from None
        except requests.RequestException as err:
            raise self._network_error(err, self._host) from None

    def _network_error(self, err: requests.RequestException, host: str) -> Exception:
        """A _Retry for a timeout or broken connection, ArxivUnavailable for the rest."""
        if isinstance(err, requests.Timeout):
            return _Retry(f"{host} did not answer within {self._timeout:g} s ({{tries}})")
        if isinstance(err, requests.ConnectionError):
            reason = _network_reason(err)
            return _Retry(
                f"cannot reach {host} ({reason}; {{tries}})",
                unreachable=reason in ("connection refused", "host not found"),
            )
        if isinstance(err, (ChunkedEncodingError, ContentDecodingError)):
            return _Retry(f"the connection to {host} kept breaking off ({{tries}})")
        return ArxivUnavailable(f"cannot talk to {host} ({clean_space(str(err))[:200]})")

    def _retrying(self, attempt: Callable[[], T], host: str) -> T:
        """``attempt()`` tried up to ``tries`` times, with exponential backoff and jitter.

        A host that refused every try (or has no address) is not tried again by this source:
        later requests to it fail at once with the same reason.
        """
        if host in self._unreachable:
            raise ArxivUnavailable(self._unreachable[host])
        last = _Retry("no try made")
        for index in range(self._tries):
            try:
                return attempt()
            except _Retry as err:
                last = err
                wait = err.retry_after
                if wait is not None and wait > _MAX_RETRY_AFTER:
                    raise ArxivUnavailable(
                        f"{err.reason(index + 1)}; asked to wait {wait:.0f} s"
                    ) from None
                if index + 1 < self._tries:
                    if wait is None:
                        wait = min(_BACKOFF_CAP, self._backoff * 2**index)
                        wait += self._rng.uniform(0, wait / 2)
                    log.debug("arXiv: %s; retrying in %.1f s", err.reason(index + 1), wait)
                    self._sleep(wait)
        if last.unreachable:
            self._unreachable[host] = last.reason(self._tries)
        raise ArxivUnavailable(last.reason(self._tries))

    # ------------------------------------------------------------------ full text

    def full_text(self, candidate: Candidate, *, max_bytes: int) -> str:
        """The text of ``candidate``'s PDF, without its reference list.

        Cached by arXiv id and version. Raises DocumentError for an unusable PDF (not a PDF,
        corrupt, no text, larger than ``max_bytes``) and ArxivUnavailable when it cannot be
        downloaded, which includes a body that takes longer than four times ``timeout`` to
        arrive (each read also has ``timeout``).
        """
        url, version_key = self._pdf_target(candidate)
        path = None
        if version_key is not None:
            ident, version = version_key
            path = self._cache_dir / "arxiv-text" / f"{ident.replace('/', '_')}v{version}.txt"
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = path.read_text(encoding="utf-8")
                if text.strip():
                    return text
        data = self._download(url, max_bytes=max_bytes)
        # Imported here: pypdf is only needed once a PDF is actually read.
        from surveygen.library.pdf import extract_pdf, strip_references

        text = strip_references(extract_pdf(data).text)
        if not text.strip():
            raise DocumentError("no text before the reference list")
        if path is not None:
            _write_atomically(path, text)
        return text

    def _pdf_target(self, candidate: Candidate) -> tuple[str, tuple[str, int] | None]:
        """The PDF's URL and the (id, version) it holds, when known."""
        url = candidate.pdf_url
        parsed = normalise_arxiv_id(url) if url else None
        if url and parsed is not None and parsed[1] is not None:
            return url, (parsed[0], parsed[1])
        ident, version = candidate.arxiv_id, candidate.arxiv_version
        if url and parsed is None:  # not an arXiv link: trust the candidate's id
            return url, ((ident, version) if ident and version is not None else None)
        ident = ident or (parsed[0] if parsed else None)
        if ident is None:
            raise DocumentError("no PDF link and no arXiv id")
        if url is None and version is not None:
            return f"https://arxiv.org/pdf/{ident}v{version}", (ident, version)
        # An unversioned link serves the latest version: ask arXiv which one that is.
        found, _ = self.fetch_ids([ident])
        latest = found[0].arxiv_version if found else None
        if latest is None:
            raise DocumentError(f"arXiv has no paper {ident}")
        return found[0].pdf_url or f"https://arxiv.org/pdf/{ident}v{latest}", (ident, latest)

    def _download(self, url: str, *, max_bytes: int) -> bytes:
        host = urlsplit(url).netloc or url

        def attempt() -> bytes:
            try:
                with self._session.get(url, stream=True) as response:
                    return self._read_pdf(response, url, max_bytes)
            except urllib3_errors.HTTPError as err:  # from reading the body ourselves
                raise self._network_error(_as_requests_error(err), host) from None
            except requests.RequestException as err:
                raise self._network_error(err, host) from None

        return self._retrying(attempt, host)

    def _read_pdf(self, response: requests.Response, url: str, max_bytes: int) -> bytes:
        status = response.status_code
        if status in (404, 410):
            raise ArxivUnavailable(f"no PDF at {url} (HTTP {status})")
        if status in (408, 429) or status >= 500:
            raise _Retry(
                f"could not download {url} after {{tries}} (HTTP {status})",
                _retry_after(response),
            )
        if status != 200:
            raise ArxivUnavailable(f"cannot download {url} (HTTP {status})")
        too_big = DocumentError(f"PDF larger than {format_size(max_bytes)}")
        length = (response.headers.get("Content-Length") or "").strip()
        if length.isdigit() and int(length) > max_bytes:
            raise too_big
        allowed = _DOWNLOAD_TIMEOUTS * self._timeout
        deadline = time.monotonic() + allowed
        data = bytearray()
        for chunk in _body_chunks(response):
            data += chunk
            if len(data) > max_bytes:
                raise too_big
            if time.monotonic() > deadline:
                raise ArxivUnavailable(f"downloading {url} took longer than {allowed:g} s")
        return bytes(data)

    # ------------------------------------------------------------------ cache

    def _key(self, *parts: str) -> str:
        return hashlib.sha256("\n".join((self._api_url, *parts)).encode()).hexdigest()

    def _id_key(self, ident: str, version: int | None) -> str:
        return self._key("id", ident, "latest" if version is None else str(version))

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection | None]:
        """A connection to the cache, or None when there is no usable cache."""
        if self._cache_broken:
            yield None
            return
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._cache_dir / "arxiv.sqlite", timeout=_DB_TIMEOUT)
        except (OSError, sqlite3.Error) as err:
            log.debug("arXiv cache unusable: %s", err)
            self._cache_broken = True
            yield None
            return
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS answers "
                "(key TEXT PRIMARY KEY, fetched_at REAL NOT NULL, payload TEXT NOT NULL)"
            )
            yield conn
        finally:
            conn.close()

    def _cache_get(self, key: str) -> list[Candidate] | None:
        if self._refresh:
            return None
        try:
            with self._db() as conn:
                if conn is None:
                    return None
                row = conn.execute(
                    "SELECT fetched_at, payload FROM answers WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.Error as err:
            self._cache_failed(err)
            return None
        if row is None:
            return None
        age = self._clock() - float(row[0])
        if not 0 <= age < self._ttl:
            return None
        try:
            return [_from_json(item) for item in json.loads(row[1])["candidates"]]
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def _cache_put(self, key: str, candidates: list[Candidate]) -> None:
        payload = json.dumps({"candidates": [_to_json(c) for c in candidates]})
        try:
            with self._db() as conn:
                if conn is None:
                    return
                with conn:
                    conn.execute(
                        "INSERT OR REPLACE INTO answers (key, fetched_at, payload) "
                        "VALUES (?, ?, ?)",
                        (key, self._clock(), payload),
                    )
        except sqlite3.Error as err:
            self._cache_failed(err)

    def _cache_failed(self, err: sqlite3.Error) -> None:
        """Note a cache error; a file that is not a database is not tried again."""
        log.debug("arXiv cache error: %s", err)
        if not isinstance(err, sqlite3.OperationalError):  # corrupt, not merely locked
            self._cache_broken = True


# --------------------------------------------------------------------------------------------
# Helpers


def _candidate(
    result: arxiv.Result, *, origin: str, source: str, query: str | None
) -> Candidate | None:
    """The Candidate for one feed entry, or None for an entry without an arXiv id."""
    parsed = normalise_arxiv_id(result.get_short_id())
    if parsed is None:
        return None
    ident, version = parsed
    published = getattr(result, "published", None)
    year = published.year if published is not None and published.year > 1 else None
    authors = tuple(n for a in result.authors if (n := scrub(clean_space(a.name))))
    pdf_url = result.pdf_url or None
    if pdf_url and pdf_url.startswith("http://arxiv.org/"):
        pdf_url = "https://" + pdf_url[len("http://") :]
    return Candidate(
        title=cap_title(scrub(clean_space(result.title))),
        authors=authors,
        year=year,
        abstract=scrub(clean_space(result.summary)),
        arxiv_id=ident,
        arxiv_version=version,
        doi=normalise_doi(result.doi),
        url=f"https://arxiv.org/abs/{ident}",
        venue=scrub(clean_space(result.journal_ref)) or None,
        source=source,
        origin=origin,
        where=f"arXiv {ident}",
        query=query,
        pdf_url=pdf_url,
    )


_FIELDS = frozenset(f.name for f in fields(Candidate))


def _to_json(candidate: Candidate) -> dict[str, Any]:
    data = asdict(candidate)
    data["pdf_path"] = str(candidate.pdf_path) if candidate.pdf_path is not None else None
    return data


def _from_json(data: dict[str, Any]) -> Candidate:
    values = {k: v for k, v in data.items() if k in _FIELDS}
    values["authors"] = tuple(values.get("authors") or ())
    if values.get("pdf_path") is not None:
        values["pdf_path"] = Path(values["pdf_path"])
    candidate = Candidate(**values)
    if not isinstance(candidate.title, str):
        raise TypeError("cached candidate without a title")
    return candidate


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so no reader sees half of it.
    A cache that cannot be written is not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        log.debug("cannot cache %s: %s", path, err)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as err:
        log.debug("cannot cache %s: %s", path, err)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body of a streamed response as it arrives: each chunk is what one read of the
    socket gave (at most 64 KiB), so a slow sender cannot hold a chunk back for long."""
    raw = response.raw
    read1 = getattr(raw, "read1", None) if isinstance(raw, Urllib3Response) else None
    if read1 is None:  # urllib3 < 2 has no read1
        yield from response.iter_content(_CHUNK)
        return
    while chunk := read1(_CHUNK, decode_content=True):
        yield chunk


def _as_requests_error(err: urllib3_errors.HTTPError) -> requests.RequestException:
    """The requests exception that ``iter_content`` would have raised for ``err``."""
    if isinstance(err, urllib3_errors.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(err)
    if isinstance(err, urllib3_errors.DecodeError):
        return ContentDecodingError(err)
    if isinstance(err, urllib3_errors.SSLError):
        return requests.exceptions.SSLError(err)
    if isinstance(err, urllib3_errors.ProtocolError):
        return ChunkedEncodingError(err)
    return requests.exceptions.ConnectionError(err)
