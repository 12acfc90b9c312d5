"""ArxivSource against a fake arXiv: queries, paging, mapping, politeness, retries, caching
and full texts."""

from __future__ import annotations

import itertools
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from fakearxiv import FakeArxivServer
from pdfgen import make_pdf

from surveygen.library import arxiv_source
from surveygen.library.arxiv_source import (
    ArxivRejected,
    ArxivSource,
    ArxivUnavailable,
    build_query,
)
from surveygen.library.records import Candidate, DocumentError

Factory = Callable[..., ArxivSource]


@pytest.fixture
def server() -> Iterator[FakeArxivServer]:
    with FakeArxivServer() as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the source asked for (tests inject a sleep that only records)."""
    return []


@pytest.fixture
def make(server: FakeArxivServer, tmp_path: Path, sleeps: list[float]) -> Iterator[Factory]:
    """Make ArxivSources for the fake server: no delay, recorded sleeps, a shared cache."""
    made: list[ArxivSource] = []

    def factory(**options: Any) -> ArxivSource:
        options.setdefault("api_url", server.api_url)
        options.setdefault("cache_dir", tmp_path / "cache")
        options.setdefault("delay", 0)
        options.setdefault("sleep", sleeps.append)
        source = ArxivSource(**options)
        made.append(source)
        return source

    yield factory
    for source in made:
        source.close()


def add_papers(server: FakeArxivServer, count: int, *, word: str = "graph") -> None:
    """``count`` papers 2101.000NN; paper i mentions ``word`` i+1 times (so later ones rank
    higher)."""
    for i in range(count):
        server.add_paper(
            f"2101.{i:05d}",
            title=f"Paper {i} on {word}s",
            authors=[f"Author {i}"],
            summary=" ".join([word] * (i + 1)),
        )


def paper_pdf(body: str) -> bytes:
    """A two-page PDF: ``body`` and a references section that full_text must cut off."""
    intro = "This paper studies graph networks and their training in some depth. " * 12
    return make_pdf(
        [
            intro,
            f"{body}\n\nReferences\n[1] A. Smith. An old result. Journal of Things, 2019.\n"
            "[2] B. Jones. Another old result. Proc. of Stuff, 2020.",
        ]
    )


class Canned(requests.adapters.BaseAdapter):
    """A requests transport answering from a table of URL prefixes (longest first), so that
    arxiv.org URLs can be used without a network. Records the URLs it was asked for."""

    def __init__(self, answers: dict[str, tuple[int, bytes, dict[str, str]]]) -> None:
        super().__init__()
        self.answers = dict(sorted(answers.items(), key=lambda item: -len(item[0])))
        self.urls: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = str(request.url)
        self.urls.append(url)
        status, body, headers = next(a for p, a in self.answers.items() if url.startswith(p))
        response = requests.Response()
        response.status_code = status
        response.headers.update({"Content-Length": str(len(body)), **headers})
        response._content = body
        response._content_consumed = True
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        pass


class TricklingServer:
    """An HTTP server that sends a PDF's first bytes and then one byte every 50 ms: each read
    is quick, the whole download never ends."""

    def __init__(self) -> None:
        self.requests = 0
        self._stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", str(10**6))
                self.end_headers()
                try:
                    self.wfile.write(b"%PDF-1.4\n")
                    self.wfile.flush()
                    for _ in range(200):  # 10 s at most, so a regression fails, not hangs
                        if outer._stop.wait(0.05):
                            break
                        self.wfile.write(b"0")
                        self.wfile.flush()
                except OSError:  # the client gave up
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> TricklingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------ queries


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("graph neural networks", "all:graph AND all:neural AND all:networks"),
        (
            "A survey of the methods for Text-to-SQL!",
            'all:survey AND all:methods AND all:"text-to-sql"',
        ),
        (
            'retrieval for "Large Language Models" in practice',
            'all:retrieval AND all:"large language models" AND all:practice',
        ),
        ('"state of the art" parsing', 'all:"state of the art" AND all:parsing'),
        ("GPT-4 evaluation, evaluation; EVALUATION", 'all:"gpt-4" AND all:evaluation'),
        ("note: graphs", "all:note AND all:graphs"),
        ("ti:transformer AND au:vaswani", "ti:transformer AND au:vaswani"),
        ("cat:cs.CL", "cat:cs.CL"),
        ('abs:"graph neural"  ANDNOT ti:survey', 'abs:"graph neural" ANDNOT ti:survey'),
        ("attention OR recurrence", "attention OR recurrence"),
    ],
)
def test_build_query(text: str, expected: str) -> None:
    assert build_query(text) == expected


def test_build_query_keeps_at_most_eight_terms() -> None:
    query = build_query("one two three four five six seven eight nine ten")
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    assert query == " AND ".join(f"all:{w}" for w in words)


@pytest.mark.parametrize("text", ["", "   ", "the of and", "!!! ??? --", '""'])
def test_build_query_without_terms_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="no search terms"):
        build_query(text)


# ------------------------------------------------------------------------------------ search


def test_search_pages_through_results(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 5)
    server.add_paper("2102.00001", title="Unrelated", authors=["X Y"], summary="cats")
    found = make(page_size=2).search("graph", max_results=5)
    assert [c.arxiv_id for c in found] == [f"2101.{i:05d}" for i in (4, 3, 2, 1, 0)]
    pages = server.api_requests
    assert [r.params["start"] for r in pages] == ["0", "2", "4"]
    assert {r.params["max_results"] for r in pages} == {"2"}
    assert {r.params["search_query"] for r in pages} == {"all:graph"}
    assert {r.params["sortBy"] for r in pages} == {"relevance"}


def test_search_stops_at_max_results(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 5)
    found = make().search("graph", max_results=3)
    assert len(found) == 3
    assert [(r.params["start"], r.params["max_results"]) for r in server.api_requests] == [
        ("0", "3")
    ]


def test_search_maps_entries_to_candidates(server: FakeArxivServer, make: Factory) -> None:
    server.add_paper(
        "2101.00001",
        title="Graph networks",
        authors=["Old Author"],
        summary="Old graph abstract.",
        published="2020-12-30T10:00:00Z",
    )
    server.add_version(
        "2101.00001",
        title="Graph\n  Networks & <Friends>",
        authors=("Ada Lovelace", "Alan  Turing"),
        summary="  We study graph\n networks.  ",
        doi="10.1000/ABC.5",
        journal_ref="Proc. ACL 2021",
        updated="2021-03-01T00:00:00Z",
    )
    server.add_paper(
        "hep-th/9901001",
        version=3,
        title="Strings on graph lattices",
        authors=["P. Physicist"],
        summary="graph",
        published="1999-01-05T00:00:00Z",
        categories=("hep-th",),
    )
    first, second = make().search("graph networks OR lattices", max_results=10)
    assert first == Candidate(
        title="Graph Networks & <Friends>",
        authors=("Ada Lovelace", "Alan Turing"),
        year=2020,
        abstract="We study graph networks.",
        arxiv_id="2101.00001",
        arxiv_version=2,
        doi="10.1000/abc.5",
        url="https://arxiv.org/abs/2101.00001",
        venue="Proc. ACL 2021",
        source="arxiv:search",
        origin="search",
        where="arXiv 2101.00001",
        query="graph networks OR lattices",
        pdf_url=server.pdf_url("2101.00001", 2),
    )
    assert (second.arxiv_id, second.arxiv_version, second.year) == ("hep-th/9901001", 3, 1999)
    assert second.url == "https://arxiv.org/abs/hep-th/9901001"
    assert second.doi is None and second.venue is None
    assert second.pdf_url == server.pdf_url("hep-th/9901001", 3)


def test_requests_name_surveygen(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 1)
    make().search("graph", max_results=1)
    agent = server.api_requests[0].headers["user-agent"]
    assert agent.startswith("surveygen/") and "arxiv.py" not in agent


def test_no_results_is_an_empty_list(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 2)
    assert make().search("unicorns", max_results=10) == []
    assert len(server.api_requests) == 1


# ------------------------------------------------------------------------------- politeness


def test_one_request_per_delay_across_threads(
    server: FakeArxivServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_papers(server, 3)
    server.add_version("2101.00000", pdf=paper_pdf("Body."))
    delay = 0.25
    slots: list[float] = []  # the start times the limiter handed out (time.monotonic())
    real_wait = arxiv_source._Limiter.wait

    def recording_wait(self: Any) -> float:
        start = real_wait(self)
        slots.append(start)
        return start

    monkeypatch.setattr(arxiv_source._Limiter, "wait", recording_wait)
    with ArxivSource(api_url=server.api_url, cache_dir=tmp_path, delay=delay, page_size=1) as src:
        paper = Candidate(title="x", pdf_url=server.pdf_url("2101.00000", 2))
        errors: list[BaseException] = []

        def run(call: Callable[[], object]) -> None:
            try:
                call()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(lambda: src.search("graph", max_results=2),)),
            threading.Thread(target=run, args=(lambda: src.full_text(paper, max_bytes=10**7),)),
            threading.Thread(target=run, args=(lambda: src.fetch_ids(["2101.00002"]),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    # Two search pages, one PDF, one id lookup: each waited for its own slot, and the slots
    # are at least `delay` apart (exact: the limiter computes them under its lock).
    assert len(slots) == 4
    slots.sort()
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= delay - 1e-6, gaps
    # Every request reached the server after its slot (same monotonic clock, same process),
    # so the k-th arrival is no earlier than the k-th slot. A loaded machine only adds delay.
    arrivals = sorted(r.time for r in server.requests)
    assert len(arrivals) == 4
    assert all(a >= s - 1e-3 for a, s in zip(arrivals, slots, strict=True)), (arrivals, slots)


def test_arxiv_itself_is_never_asked_more_than_once_every_three_seconds(
    server: FakeArxivServer, tmp_path: Path, sleeps: list[float]
) -> None:
    add_papers(server, 2)
    feed = requests.get(server.api_url, params={"search_query": "all:graph"}, timeout=5).content
    source = ArxivSource(
        api_url="https://export.arxiv.org/api/query",
        cache_dir=tmp_path,
        delay=0.5,  # asked for less than arXiv allows
        sleep=sleeps.append,
    )
    with source:
        assert source.delay == arxiv_source.ARXIV_MIN_DELAY == 3.0
        adapter = Canned({"https://export.arxiv.org/": (200, feed, {})})
        source._session.mount("https://export.arxiv.org/", adapter)
        assert len(source.search("graph", max_results=1)) == 1
        assert len(source.search("graphs", max_results=1)) == 1
    assert len(adapter.urls) == 2
    assert len(sleeps) == 1 and 2.5 < sleeps[0] <= 3.0  # a fake sleep: no real wait


def test_arxiv_hosts_keep_three_seconds_behind_a_mirror(
    server: FakeArxivServer, make: Factory, sleeps: list[float]
) -> None:
    pdf = paper_pdf("Body.")
    adapter = Canned({"https://arxiv.org/pdf/": (200, pdf, {})})
    source = make()  # a local mirror without delay
    assert source.delay == 0
    source._session.mount("https://arxiv.org/", adapter)
    for ident in ("2101.00001", "2101.00002"):
        paper = Candidate(title="T", pdf_url=f"https://arxiv.org/pdf/{ident}v1")
        assert "Body." in source.full_text(paper, max_bytes=10**7)
    assert len(adapter.urls) == 2
    assert len(sleeps) == 1 and 2.5 < sleeps[0] <= 3.0


def test_redirects_wait_on_the_limiter(make: Factory, sleeps: list[float]) -> None:
    pdf = paper_pdf("Body.")
    target = "https://arxiv.org/pdf/2101.00001v1.pdf"
    adapter = Canned(
        {
            target: (200, pdf, {}),
            "https://arxiv.org/pdf/": (301, b"", {"Location": target}),
        }
    )
    source = make()
    source._session.mount("https://arxiv.org/", adapter)
    paper = Candidate(title="T", pdf_url="https://arxiv.org/pdf/2101.00001v1")
    assert "Body." in source.full_text(paper, max_bytes=10**7)
    assert adapter.urls == ["https://arxiv.org/pdf/2101.00001v1", target]
    assert len(sleeps) == 1 and 2.5 < sleeps[0] <= 3.0  # the second hop waited its turn


# ---------------------------------------------------------------------------------- retries


def test_retries_server_errors_with_growing_backoff(
    server: FakeArxivServer, make: Factory, sleeps: list[float]
) -> None:
    add_papers(server, 2)
    server.fail_next(2, status=503)
    found = make().search("graph", max_results=5)
    assert len(found) == 2
    assert [r.status for r in server.api_requests] == [503, 503, 200]
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1]


def test_gives_up_after_tries(server: FakeArxivServer, make: Factory, sleeps: list[float]) -> None:
    add_papers(server, 2)
    server.fail_next(10, status=503)
    with pytest.raises(ArxivUnavailable) as caught:
        make(tries=3).search("graph", max_results=5)
    assert str(caught.value) == "arXiv did not answer after 3 tries (HTTP 503)"
    assert len(server.api_requests) == 3
    assert len(sleeps) == 2


def test_retry_after_is_honoured_for_the_api(
    server: FakeArxivServer, make: Factory, sleeps: list[float]
) -> None:
    add_papers(server, 1)
    server.fail_next(1, status=429, retry_after=5)
    assert len(make().search("graph", max_results=5)) == 1
    assert sleeps == [5.0]


def test_a_refused_query_is_rejected_not_retried(
    server: FakeArxivServer, make: Factory, sleeps: list[float]
) -> None:
    add_papers(server, 1)
    server.fail_next(1, status=400)
    source = make()
    with pytest.raises(ArxivRejected, match=r"HTTP 400"):
        source.search("graph", max_results=5)
    assert len(server.api_requests) == 1
    assert sleeps == []
    # arXiv is not taken for down: the next query is sent and answered.
    assert len(source.search("graphs OR graph", max_results=5)) == 1
    assert len(server.api_requests) == 2


@pytest.mark.parametrize("status", [403, 404, 414])
def test_other_client_errors_are_rejections(
    server: FakeArxivServer, make: Factory, status: int
) -> None:
    server.fail_next(1, status=status)
    with pytest.raises(ArxivRejected, match=rf"HTTP {status}"):
        make().fetch_ids(["2101.00001"])
    assert len(server.api_requests) == 1


def test_request_timeout_status_is_retried(
    server: FakeArxivServer, make: Factory, sleeps: list[float]
) -> None:
    add_papers(server, 1)
    server.fail_next(1, status=408)
    assert len(make().search("graph", max_results=5)) == 1
    assert [r.status for r in server.api_requests] == [408, 200]
    assert len(sleeps) == 1


def test_server_errors_are_not_rejections(server: FakeArxivServer, make: Factory) -> None:
    server.fail_next(2, status=503)
    with pytest.raises(ArxivUnavailable) as caught:
        make(tries=2).search("graph", max_results=5)
    assert not isinstance(caught.value, ArxivRejected)


def test_malformed_xml_is_retried(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 3)
    server.malformed_next(1)
    assert len(make().search("graph", max_results=5)) == 3
    # The broken page is asked for again (a lenient parser would have read half of it).
    assert [r.params["start"] for r in server.api_requests] == ["0", "0"]


def test_malformed_xml_every_time_gives_up(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 3)
    server.malformed_next(5)
    with pytest.raises(ArxivUnavailable, match="malformed"):
        make(tries=2).search("graph", max_results=5)
    assert len(server.api_requests) == 2


def test_unexpected_empty_page_is_retried_without_refetching(
    server: FakeArxivServer, make: Factory
) -> None:
    add_papers(server, 4)
    server.empty_page_next(1)
    found = make(page_size=2).search("graph", max_results=4)
    assert len(found) == 4 and len({c.arxiv_id for c in found}) == 4
    # The retry resumes at the empty page: page 1 is not asked for again.
    assert [r.params["start"] for r in server.api_requests] == ["0", "2", "2"]


def test_empty_pages_every_time_give_up(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 4)
    server.empty_page_next(5)
    with pytest.raises(ArxivUnavailable, match="empty pages"):
        make(page_size=2, tries=2).search("graph", max_results=4)


def test_connection_refused(make: Factory, sleeps: list[float]) -> None:
    port = closed_port()
    source = make(api_url=f"http://127.0.0.1:{port}/api/query", tries=3)
    with pytest.raises(ArxivUnavailable) as caught:
        source.search("graph", max_results=5)
    assert str(caught.value) == f"cannot reach 127.0.0.1:{port} (connection refused; 3 tries)"
    assert len(sleeps) == 2
    # The host is not tried again: the next request fails at once, without waiting.
    with pytest.raises(ArxivUnavailable, match="connection refused"):
        source.fetch_ids(["2101.00001"])
    assert len(sleeps) == 2


def test_pdf_host_refusing_connections(make: Factory, sleeps: list[float]) -> None:
    port = closed_port()
    paper = Candidate(title="x", pdf_url=f"http://127.0.0.1:{port}/pdf/2101.00001v1")
    with pytest.raises(ArxivUnavailable, match="connection refused; 2 tries"):
        make(tries=2).full_text(paper, max_bytes=1000)
    assert len(sleeps) == 1


def test_timeout(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 1)
    server.delay = 1.0
    with pytest.raises(ArxivUnavailable, match=r"did not answer within 0\.3 s \(2 tries\)"):
        make(timeout=0.3, tries=2).search("graph", max_results=5)
    assert len(server.api_requests) == 2


# ------------------------------------------------------------------------------------ cache


def test_identical_search_is_answered_from_the_cache(
    server: FakeArxivServer, make: Factory, tmp_path: Path
) -> None:
    add_papers(server, 3)
    first = make().search("graph", max_results=5)
    again = make().search("Graph!", max_results=5)  # another spelling of the same query
    assert len(server.api_requests) == 1
    assert [c.arxiv_id for c in again] == [c.arxiv_id for c in first]
    assert again[0].query == "Graph!" and first[0].query == "graph"
    assert again[0].title == first[0].title and again[0].pdf_url == first[0].pdf_url
    assert (tmp_path / "cache" / "arxiv.sqlite").is_file()
    make().search("graph", max_results=2)  # another max_results is another question
    assert len(server.api_requests) == 2


def test_empty_answers_are_not_cached(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 2)
    assert make().search("unicorns", max_results=5) == []
    assert make().search("unicorns", max_results=5) == []
    assert len(server.api_requests) == 2  # the second search asked arXiv again
    server.add_paper("2103.00001", title="Unicorns", authors=["U"], summary="unicorns")
    assert len(make().search("unicorns", max_results=5)) == 1
    assert len(make().search("unicorns", max_results=5)) == 1
    assert len(server.api_requests) == 3  # a non-empty answer is cached


def test_cache_expires_after_ttl(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 2)
    now = [1_000_000.0]
    source = make(ttl=100, clock=lambda: now[0])
    source.search("graph", max_results=5)
    now[0] += 99
    source.search("graph", max_results=5)
    assert len(server.api_requests) == 1
    now[0] += 2
    source.search("graph", max_results=5)
    assert len(server.api_requests) == 2


def test_refresh_asks_again_and_stores_the_answer(server: FakeArxivServer, make: Factory) -> None:
    add_papers(server, 2)
    assert len(make().search("graph", max_results=5)) == 2
    server.add_paper("2103.00001", title="New graph paper", authors=["N"], summary="graph")
    assert len(make(refresh=True).search("graph", max_results=5)) == 3
    assert len(server.api_requests) == 2
    assert len(make().search("graph", max_results=5)) == 3  # the refreshed answer
    assert len(server.api_requests) == 2


def test_corrupt_cache_is_tolerated(server: FakeArxivServer, make: Factory, tmp_path: Path) -> None:
    add_papers(server, 2)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "arxiv.sqlite").write_bytes(b"this is not a database\n" * 200)
    source = make()
    assert len(source.search("graph", max_results=5)) == 2
    assert len(source.search("graph", max_results=5)) == 2
    assert len(server.api_requests) == 2


def test_locked_cache_is_tolerated(
    server: FakeArxivServer, make: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arxiv_source, "_DB_TIMEOUT", 0.05)
    add_papers(server, 2)
    make().search("cats", max_results=5)  # creates the cache
    lock = sqlite3.connect(tmp_path / "cache" / "arxiv.sqlite", isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        assert len(make().search("graph", max_results=5)) == 2
    finally:
        lock.close()
    assert len(server.api_requests) == 2


# -------------------------------------------------------------------------------- fetch_ids


def test_fetch_ids_found_missing_and_versions(server: FakeArxivServer, make: Factory) -> None:
    server.add_paper("2101.00001", title="First v1", authors=["A"], summary="s")
    server.add_version("2101.00001", title="First v2")
    server.add_paper("2101.00002", title="Second", authors=["B"], summary="s")
    server.add_paper("hep-th/9901001", version=2, title="Old", authors=["C"], summary="s")
    source = make()
    ids = [
        "arXiv:2101.00002",
        "https://arxiv.org/abs/2101.00001v1",
        "2101.00001",
        "2101.99999",
        "not an id",
        "hep-th/9901001",
        "2101.00002",
    ]
    found, missing = source.fetch_ids(ids)
    assert [(c.arxiv_id, c.arxiv_version, c.title) for c in found] == [
        ("2101.00002", 1, "Second"),
        ("2101.00001", 1, "First v1"),
        ("2101.00001", 2, "First v2"),
        ("hep-th/9901001", 2, "Old"),
    ]
    assert missing == ["2101.99999", "not an id"]
    assert {(c.origin, c.source, c.query) for c in found} == {("user", "arxiv:ids", None)}
    (request,) = server.api_requests
    assert (
        request.params["id_list"] == "2101.00002,2101.00001v1,2101.00001,2101.99999,hep-th/9901001"
    )
    again, missing_again = source.fetch_ids(ids)
    assert again == found and missing_again == missing
    assert len(server.api_requests) == 2  # only the unknown id is asked for again
    assert server.api_requests[1].params["id_list"] == "2101.99999"


def test_fetch_ids_in_batches_of_100(server: FakeArxivServer, make: Factory) -> None:
    ids = [f"2104.{i:05d}" for i in range(150)]
    for ident in ids:
        server.add_paper(ident, title=f"Paper {ident}", authors=["A"], summary="s")
    found, missing = make().fetch_ids(list(reversed(ids)))
    assert [c.arxiv_id for c in found] == list(reversed(ids))
    assert missing == []
    batches = [r.params["id_list"].split(",") for r in server.api_requests]
    assert [len(b) for b in batches] == [100, 50]
    assert [r.params["max_results"] for r in server.api_requests] == ["100", "50"]


# -------------------------------------------------------------------------------- full text


def test_full_text_downloads_extracts_and_caches(
    server: FakeArxivServer, make: Factory, tmp_path: Path
) -> None:
    server.add_paper(
        "2101.00001", title="T", authors=["A"], summary="s", pdf=paper_pdf("First version body.")
    )
    source = make()
    (paper,) = source.search("T", max_results=1)
    text = source.full_text(paper, max_bytes=10**7)
    assert "graph networks" in text and "First version body." in text
    assert "A. Smith" not in text and "References" not in text
    cached = tmp_path / "cache" / "arxiv-text" / "2101.00001v1.txt"
    assert cached.read_text(encoding="utf-8") == text
    assert len(server.pdf_requests) == 1
    assert source.full_text(paper, max_bytes=10**7) == text
    assert len(server.pdf_requests) == 1

    server.add_version("2101.00001", pdf=paper_pdf("Second version body."))
    (newer,), _ = make(refresh=True).fetch_ids(["2101.00001"])
    assert newer.arxiv_version == 2
    text2 = source.full_text(newer, max_bytes=10**7)
    assert "Second version body." in text2 and "First version body." not in text2
    assert [r.path for r in server.pdf_requests] == ["/pdf/2101.00001v1", "/pdf/2101.00001v2"]
    assert source.full_text(paper, max_bytes=10**7) == text  # v1 still cached
    assert len(server.pdf_requests) == 2


def test_full_text_of_an_unversioned_id_asks_for_the_latest(
    server: FakeArxivServer, make: Factory, tmp_path: Path
) -> None:
    server.add_paper("hep-th/9901001", title="T", authors=["A"], summary="s")
    server.add_version("hep-th/9901001", pdf=paper_pdf("Latest body."))
    text = make().full_text(Candidate(title="T", arxiv_id="hep-th/9901001"), max_bytes=10**7)
    assert "Latest body." in text
    assert [r.path for r in server.pdf_requests] == ["/pdf/hep-th/9901001v2"]
    assert (tmp_path / "cache" / "arxiv-text" / "hep-th_9901001v2.txt").is_file()


def test_full_text_honours_retry_after(
    server: FakeArxivServer, make: Factory, sleeps: list[float]
) -> None:
    server.add_paper("2101.00001", title="T", authors=["A"], summary="s", pdf=paper_pdf("Body."))
    server.fail_next(1, status=503, retry_after=7)
    paper = Candidate(title="T", pdf_url=server.pdf_url("2101.00001", 1))
    assert "Body." in make().full_text(paper, max_bytes=10**7)
    assert sleeps == [7.0]
    assert [r.status for r in server.pdf_requests] == [503, 200]


def test_full_text_gives_up_when_asked_to_wait_too_long(
    server: FakeArxivServer, make: Factory, sleeps: list[float]
) -> None:
    server.add_paper("2101.00001", title="T", authors=["A"], summary="s", pdf=paper_pdf("Body."))
    server.fail_next(1, status=503, retry_after=3600)
    paper = Candidate(title="T", pdf_url=server.pdf_url("2101.00001", 1))
    with pytest.raises(ArxivUnavailable, match="asked to wait 3600 s"):
        make().full_text(paper, max_bytes=10**7)
    assert sleeps == [] and len(server.pdf_requests) == 1


def test_full_text_http_errors(server: FakeArxivServer, make: Factory, sleeps: list[float]) -> None:
    source = make(tries=2)
    url = server.pdf_url("2101.77777", 1)
    with pytest.raises(ArxivUnavailable) as caught:
        source.full_text(Candidate(title="T", pdf_url=url), max_bytes=10**7)
    assert str(caught.value) == f"no PDF at {url} (HTTP 404)"
    server.fail_next(1, status=403)
    with pytest.raises(ArxivUnavailable, match=r"HTTP 403"):
        source.full_text(Candidate(title="T", pdf_url=url), max_bytes=10**7)
    assert sleeps == []
    server.fail_next(2, status=502)
    with pytest.raises(ArxivUnavailable) as caught:
        source.full_text(Candidate(title="T", pdf_url=url), max_bytes=10**7)
    assert str(caught.value) == f"could not download {url} after 2 tries (HTTP 502)"
    assert len(server.pdf_requests) == 4


def test_full_text_of_something_else_than_a_pdf(
    server: FakeArxivServer, make: Factory, tmp_path: Path
) -> None:
    server.add_paper("2101.00001", title="T", authors=["A"], summary="s", pdf=b"<html>Hi</html>")
    paper = Candidate(title="T", pdf_url=server.pdf_url("2101.00001", 1))
    with pytest.raises(DocumentError, match="not a PDF"):
        make().full_text(paper, max_bytes=10**7)
    assert not (tmp_path / "cache" / "arxiv-text" / "2101.00001v1.txt").exists()


def test_full_text_size_cap_from_content_length(server: FakeArxivServer, make: Factory) -> None:
    pdf = paper_pdf("Body.")
    server.add_paper("2101.00001", title="T", authors=["A"], summary="s", pdf=pdf)
    paper = Candidate(title="T", pdf_url=server.pdf_url("2101.00001", 1))
    with pytest.raises(DocumentError, match="larger than"):
        make().full_text(paper, max_bytes=len(pdf) - 1)
    assert "Body." in make().full_text(paper, max_bytes=len(pdf))


def test_full_text_download_has_a_total_deadline(make: Factory) -> None:
    with TricklingServer() as trickle:
        paper = Candidate(title="T", pdf_url=f"{trickle.url}/pdf/2101.00001v1")
        started = time.monotonic()
        with pytest.raises(ArxivUnavailable, match=r"took longer than 1 s"):
            make(timeout=0.25).full_text(paper, max_bytes=10**7)
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5.0  # 4 x timeout, though every read got a byte in time
    assert trickle.requests == 1  # not retried


def test_full_text_size_cap_while_streaming(server: FakeArxivServer, make: Factory) -> None:
    huge = b"%PDF-1.4\n" + b"0" * (32 * 1024 * 1024)
    server.add_paper("2101.00001", title="T", authors=["A"], summary="s", pdf=huge)
    server.send_pdf_length = False
    paper = Candidate(title="T", pdf_url=server.pdf_url("2101.00001", 1))
    with pytest.raises(DocumentError, match="larger than 100 KB"):
        make().full_text(paper, max_bytes=100_000)
    (request,) = server.pdf_requests
    deadline = time.monotonic() + 5
    while not request.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert request.finished
    assert request.bytes_sent < len(huge) // 2  # the download stopped early
