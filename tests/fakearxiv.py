"""A hermetic stand-in for arXiv's query API and PDF links, for tests.

``FakeArxivServer`` is a real HTTP server on 127.0.0.1 (random free port) that answers
``GET /api/query`` in the Atom format of arXiv's API user manual ("Details of Atom Results
Returned") and serves PDFs at ``/pdf/<id>v<version>``, so the ``arxiv`` package and
``requests`` talk to it unmodified::

    with FakeArxivServer() as server:
        server.add_paper("2101.00001", title="Graphs", authors=["A. Author"], summary="...")
        source = ArxivSource(api_url=server.api_url, cache_dir=tmp_path, delay=0)

Search semantics are simple: ``all:x``, ``ti:x``, ``abs:x``, ``au:x``, ``cat:x``, quoted
phrases, ``AND`` / ``OR`` / ``ANDNOT`` and parentheses; a bare word means ``all:``, and two
terms without an operator are ORed. Words and phrases match whole words, case-insensitively,
in the title and summary (``ti:`` title only, ``abs:`` summary only). Results are ranked by
the number of term hits, ties in insertion order.

Every request is recorded (path, query parameters, headers, monotonic arrival time). Faults:
``fail_next`` (an HTTP error status, optionally with Retry-After), ``malformed_next`` (broken
XML), ``empty_page_next`` (a page after the first with no entries) and ``delay`` (seconds
slept before every answer). Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

__all__ = ["FakeArxivServer", "FakePaper", "RecordedRequest"]

_SCHEME = "http://arxiv.org/schemas/atom"
_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7})(?:v(\d+))?")


@dataclass
class FakePaper:
    """One version of one paper."""

    arxiv_id: str
    version: int
    title: str
    authors: tuple[str, ...]
    summary: str
    published: str
    updated: str
    doi: str | None
    journal_ref: str | None
    categories: tuple[str, ...]
    pdf: bytes | None


@dataclass
class RecordedRequest:
    """One request as the server saw it; ``bytes_sent`` counts PDF body bytes delivered."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival
    status: int | None = None
    bytes_sent: int = 0
    finished: bool = False  # the handler is done with it (answered, or the client left)

    @property
    def is_api(self) -> bool:
        return self.path == "/api/query"

    @property
    def is_pdf(self) -> bool:
        return self.path.startswith("/pdf/")


@dataclass
class _Faults:
    fail: list[tuple[int, str | None]] = field(default_factory=list)
    malformed: int = 0
    empty_pages: int = 0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64
    fake: FakeArxivServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts, aborted downloads)."""
        return


class FakeArxivServer:
    """arXiv's query API and PDF links on a local port, with faults and a request log.

    Attributes you may set at any time:
        delay: seconds slept before answering each request.
        send_pdf_length: False serves PDFs without Content-Length (the body ends when the
            connection closes), to test limits enforced while streaming.
    """

    def __init__(self) -> None:
        self.delay = 0.0
        self.send_pdf_length = True
        self._papers: dict[str, dict[int, FakePaper]] = {}
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults = _Faults()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeArxivServer:
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeArxivServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeArxivServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/query"

    def pdf_url(self, arxiv_id: str, version: int) -> str:
        return f"{self.base_url}/pdf/{arxiv_id}v{version}"

    # ----------------------------------------------------------------- papers

    def add_paper(
        self,
        arxiv_id: str,
        *,
        version: int = 1,
        title: str,
        authors: list[str] | tuple[str, ...],
        summary: str,
        published: str = "2021-01-04T18:00:00Z",
        updated: str | None = None,
        doi: str | None = None,
        journal_ref: str | None = None,
        categories: tuple[str, ...] | list[str] = ("cs.CL",),
        pdf: bytes | None = None,
    ) -> FakePaper:
        """Add (or replace) version ``version`` of a paper."""
        paper = FakePaper(
            arxiv_id=arxiv_id,
            version=version,
            title=title,
            authors=tuple(authors),
            summary=summary,
            published=published,
            updated=updated or published,
            doi=doi,
            journal_ref=journal_ref,
            categories=tuple(categories),
            pdf=pdf,
        )
        with self._lock:
            self._papers.setdefault(arxiv_id, {})[version] = paper
        return paper

    def add_version(self, arxiv_id: str, **changes: Any) -> FakePaper:
        """Add the next version of a paper: the latest one with ``changes`` applied (any
        FakePaper field, such as ``pdf``, ``title`` or ``updated``)."""
        with self._lock:
            versions = self._papers[arxiv_id]
            latest = versions[max(versions)]
            paper = replace(latest, version=latest.version + 1, **changes)
            versions[paper.version] = paper
        return paper

    # ----------------------------------------------------------------- faults

    def fail_next(self, n: int, status: int = 503, retry_after: float | str | None = None) -> None:
        """Answer the next ``n`` requests (API or PDF) with ``status`` and, when given, a
        ``Retry-After`` header (seconds, or an HTTP date as a string)."""
        value = None if retry_after is None else str(retry_after)
        with self._lock:
            self._faults.fail += [(status, value)] * n

    def malformed_next(self, n: int) -> None:
        """Answer the next ``n`` API requests with truncated, ill-formed XML (status 200)."""
        with self._lock:
            self._faults.malformed += n

    def empty_page_next(self, n: int) -> None:
        """Answer the next ``n`` API requests for a page after the first (start > 0) with no
        entries, though totalResults says there are more."""
        with self._lock:
            self._faults.empty_pages += n

    # ----------------------------------------------------------------- records

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def api_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_api]

    @property
    def pdf_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_pdf]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ----------------------------------------------------------------- internals

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_failure(self) -> tuple[int, str | None] | None:
        with self._lock:
            return self._faults.fail.pop(0) if self._faults.fail else None

    def _take_malformed(self) -> bool:
        with self._lock:
            if self._faults.malformed > 0:
                self._faults.malformed -= 1
                return True
            return False

    def _take_empty_page(self, start: int) -> bool:
        with self._lock:
            if start > 0 and self._faults.empty_pages > 0:
                self._faults.empty_pages -= 1
                return True
            return False

    def _latest(self) -> list[FakePaper]:
        with self._lock:
            return [versions[max(versions)] for versions in self._papers.values()]

    def _lookup(self, ident: str, version: int | None) -> FakePaper | None:
        with self._lock:
            versions = self._papers.get(ident)
            if not versions:
                return None
            return versions.get(version) if version is not None else versions[max(versions)]

    def _query(self, params: dict[str, str]) -> tuple[int, str]:
        """The status and Atom feed answering one API request."""
        try:
            start = int(params.get("start") or 0)
            max_results = int(params.get("max_results") or 10)
        except ValueError:
            return 400, _error_feed("start and max_results must be integers")
        if start < 0 or max_results < 0:
            return 400, _error_feed("start and max_results must not be negative")
        query = params.get("search_query", "").strip()
        id_list = [i.strip() for i in params.get("id_list", "").split(",") if i.strip()]
        tree = _parse_query(query) if query else None
        if id_list:
            papers = []
            for given in id_list:
                match = _ID.fullmatch(given)
                if match is None:
                    return 400, _error_feed(f"incorrect id format for {given}")
                version = int(match.group(2)) if match.group(2) else None
                paper = self._lookup(match.group(1), version)
                if paper is not None and (tree is None or _score(tree, paper) > 0):
                    papers.append(paper)
        elif tree is not None:
            scored = [(_score(tree, p), i, p) for i, p in enumerate(self._latest())]
            papers = [p for s, i, p in sorted(scored, key=lambda t: (-t[0], t[1])) if s > 0]
            papers = _sort(papers, params.get("sortBy"), params.get("sortOrder"))
        else:
            papers = []
        total = len(papers)
        page = papers[start : start + max_results]
        if self._take_empty_page(start):
            page = []
        return 200, self._feed(params, page, total=total, start=start, per_page=max_results)

    def _feed(
        self,
        params: dict[str, str],
        page: list[FakePaper],
        *,
        total: int,
        start: int,
        per_page: int,
    ) -> str:
        query = urlencode(params)
        digest = hashlib.sha1(query.encode()).hexdigest()[:27]
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries = "".join(self._entry(p) for p in page)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
            f'xmlns:arxiv="{_SCHEME}">\n'
            f"  <id>https://arxiv.org/api/{digest}</id>\n"
            f"  <title>{escape('arXiv Query: ' + query)}</title>\n"
            f"  <updated>{now}</updated>\n"
            f"  <link href={quoteattr('https://arxiv.org/api/query?' + query)} "
            'type="application/atom+xml"/>\n'
            f"  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>\n"
            f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
            f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
            f"{entries}</feed>\n"
        )

    def _entry(self, paper: FakePaper) -> str:
        versioned = f"{paper.arxiv_id}v{paper.version}"
        abs_url = f"http://arxiv.org/abs/{versioned}"
        lines = [
            "  <entry>",
            f"    <id>{abs_url}</id>",
            f"    <title>{escape(paper.title)}</title>",
            f"    <updated>{paper.updated}</updated>",
            f'    <link href={quoteattr(abs_url)} rel="alternate" type="text/html"/>',
            f"    <link href={quoteattr(self.pdf_url(paper.arxiv_id, paper.version))} "
            'rel="related" type="application/pdf" title="pdf"/>',
            f"    <summary>  {escape(paper.summary)}\n</summary>",
        ]
        lines += [
            f'    <category term={quoteattr(c)} scheme="{_SCHEME}"/>' for c in paper.categories
        ]
        lines.append(f"    <published>{paper.published}</published>")
        if paper.doi:
            lines.append(f"    <arxiv:doi>{escape(paper.doi)}</arxiv:doi>")
            lines.append(
                f"    <link href={quoteattr('https://doi.org/' + paper.doi)} "
                'rel="related" title="doi"/>'
            )
        if paper.journal_ref:
            lines.append(f"    <arxiv:journal_ref>{escape(paper.journal_ref)}</arxiv:journal_ref>")
        if paper.categories:
            lines.append(
                f"    <arxiv:primary_category term={quoteattr(paper.categories[0])} "
                f'scheme="{_SCHEME}"/>'
            )
        lines += [
            f"    <author>\n      <name>{escape(name)}</name>\n    </author>"
            for name in paper.authors
        ]
        lines.append("  </entry>\n")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Query parsing and matching


_TOKEN = re.compile(r'\(|\)|[A-Za-z_]+:"[^"]*"|"[^"]*"|[^\s()]+')
_OPERATORS = {"AND", "OR", "ANDNOT"}


def _parse_query(text: str) -> Any:
    """A tree of ``("leaf", field, words)`` and ``(op, left, right)`` nodes."""
    tokens = _TOKEN.findall(text)
    position = 0

    def unit() -> Any:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            node = expression()
            if position < len(tokens) and tokens[position] == ")":
                position += 1
            return node
        name, colon, value = token.partition(":")
        if not colon or name.startswith('"'):
            name, value = "all", token
        words = re.findall(r"\w+", value.lower())
        return ("leaf", name.lower(), words)

    def expression() -> Any:
        nonlocal position
        node = unit()
        while position < len(tokens) and tokens[position] != ")":
            op = "OR"
            if tokens[position] in _OPERATORS:
                op = tokens[position]
                position += 1
            if position >= len(tokens) or tokens[position] == ")":
                break
            node = (op, node, unit())
        return node

    return expression() if tokens else ("leaf", "all", [])


def _score(node: Any, paper: FakePaper) -> int:
    kind = node[0]
    if kind == "leaf":
        _, name, words = node
        if not words:
            return 0
        haystack = {
            "ti": paper.title,
            "abs": paper.summary,
            "au": " ".join(paper.authors),
            "cat": " ".join(paper.categories),
            "id": paper.arxiv_id,
        }.get(name, f"{paper.title}\n{paper.summary}")
        pattern = r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words) + r"(?!\w)"
        return len(re.findall(pattern, haystack, re.IGNORECASE))
    left, right = _score(node[1], paper), _score(node[2], paper)
    if kind == "AND":
        return left + right if left and right else 0
    if kind == "ANDNOT":
        return left if left and not right else 0
    return left + right


def _sort(papers: list[FakePaper], sort_by: str | None, order: str | None) -> list[FakePaper]:
    if sort_by not in ("lastUpdatedDate", "submittedDate"):
        return papers  # relevance: already ranked
    attr = "updated" if sort_by == "lastUpdatedDate" else "published"
    return sorted(papers, key=lambda p: getattr(p, attr), reverse=order != "ascending")


def _error_feed(message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">\n'
        "  <opensearch:totalResults>1</opensearch:totalResults>\n"
        "  <entry>\n    <id>http://arxiv.org/api/errors</id>\n"
        f"    <title>Error</title>\n    <summary>{escape(message)}</summary>\n  </entry>\n"
        "</feed>\n"
    )


# --------------------------------------------------------------------------------------------
# HTTP


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0: one request per connection, so a body may end with the connection."""

    server_version = "fakearxiv/1.0"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        record = RecordedRequest(
            path=parts.path,
            params=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            time=time.monotonic(),
        )
        fake._record(record)
        try:
            if fake.delay > 0 and fake._stopping.wait(fake.delay):
                return
            self._answer(fake, record)
        except OSError:  # the client went away
            self.close_connection = True
        finally:
            record.finished = True

    def _answer(self, fake: FakeArxivServer, record: RecordedRequest) -> None:
        failure = fake._take_failure()
        if failure is not None:
            status, retry_after = failure
            headers = {} if retry_after is None else {"Retry-After": retry_after}
            self._send(record, status, b"Service unavailable\n", "text/plain", headers)
            return
        if record.is_api:
            status, feed = fake._query(record.params)
            body = feed.encode("utf-8")
            if status == 200 and fake._take_malformed():
                body = body[: len(body) // 2]
            self._send(record, status, body, "application/atom+xml; charset=utf-8")
            return
        if record.is_pdf:
            rest = record.path[len("/pdf/") :].removesuffix(".pdf")
            match = _ID.fullmatch(rest)
            paper = None
            if match is not None:
                version = int(match.group(2)) if match.group(2) else None
                paper = fake._lookup(match.group(1), version)
            if paper is None or paper.pdf is None:
                self._send(record, 404, b"Not found\n", "text/plain")
                return
            self._send_pdf(record, paper.pdf, with_length=fake.send_pdf_length)
            return
        self._send(record, 404, b"Not found\n", "text/plain")

    def _send(
        self,
        record: RecordedRequest,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_pdf(self, record: RecordedRequest, pdf: bytes, *, with_length: bool) -> None:
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        if with_length:
            self.send_header("Content-Length", str(len(pdf)))
        self.end_headers()
        with contextlib.suppress(OSError):
            for offset in range(0, len(pdf), 64 * 1024):
                self.wfile.write(pdf[offset : offset + 64 * 1024])
                record.bytes_sent += len(pdf[offset : offset + 64 * 1024])
