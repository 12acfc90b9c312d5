"""`surveygen write` end to end with arXiv: a fake arXiv (Atom feeds and PDFs over HTTP) and
the scripted model, through the CLI. Each source alone, then combined, cached and resumed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakearxiv import FakeArxivServer
from fakellm import FakeLLMServer
from pdfgen import make_pdf
from scripted import SCRIPTED_QUERIES, pipeline_responder

from surveygen.cli import main

TOPIC = "retrieval-augmented language models"

# (arXiv id, title, summary); all but the last two are on the topic.
ON_TOPIC = [
    (
        "2005.11401",
        "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
        "Retrieval-augmented language models combine a dense passage retrieval index with a "
        "generator. We evaluate retrieval augmented generation on open-domain QA.",
    ),
    (
        "2004.04906",
        "Dense Passage Retrieval for Open-Domain Question Answering",
        "Dense passage retrieval with dual encoders beats BM25. Retrieval-augmented language "
        "models use such retrievers.",
    ),
    (
        "2007.01282",
        "Leveraging Passage Retrieval with Generative Models: Fusion in Decoder",
        "Fusion in decoder lets retrieval-augmented language models read many passages. The "
        "decoder attends over all of them.",
    ),
    (
        "2002.08909",
        "REALM: Retrieval-Augmented Language Model Pre-Training",
        "Retrieval-augmented language models can be pre-trained with a latent retriever. "
        "REALM learns retrieval from masked language modeling.",
    ),
    (
        "2310.11511",
        "Self-RAG: Learning to Retrieve, Generate, and Critique",
        "Retrieval-augmented language models retrieve on demand and critique their own "
        "generation. Evaluation shows gains in factuality.",
    ),
]
OFF_TOPIC = [
    (
        "2101.99901",
        "Plasma Fusion Reactor Decoder Circuits",
        "Fusion plasma diagnostics use a decoder circuit. Magnets confine the plasma.",
    ),
]
NO_PDF = "2310.11511"  # its PDF link answers 404


def body(title: str, summary: str) -> list[str]:
    return [
        f"{title}\nA. Author, B. Author\n\nAbstract\n{summary}\n\n1 Introduction\n"
        f"This paper studies {title.lower()}. Our method improves answer accuracy. "
        "We describe the retriever and the reader in detail.",
        "2 Results\nThe method improves exact match by four points on Natural Questions. "
        "Ablations show that the retriever matters most.\n\nReferences\n"
        "[1] X. Someone. A cited paper that must not reach the text. 2019.",
    ]


@pytest.fixture
def arxiv() -> Iterator[FakeArxivServer]:
    with FakeArxivServer() as server:
        for number, (ident, title, summary) in enumerate(ON_TOPIC + OFF_TOPIC):
            server.add_paper(
                ident,
                title=title,
                authors=[f"Author{number} Lastname{number}", "Second Author"],
                summary=summary,
                published=f"20{ident[:2]}-0{1 + number % 9}-10T00:00:00Z",
                pdf=None if ident == NO_PDF else make_pdf(body(title, summary)),
            )
        yield server


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arxiv: FakeArxivServer) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SURVEYGEN_ARXIV_URL", arxiv.api_url)
    (tmp_path / "surveygen.toml").write_text(
        "retry_base_seconds = 0.01\nretry_max_seconds = 0.05\ntimeout = 5\n"
    )
    return tmp_path


def write(llm: FakeLLMServer, out: Path, *args: str):
    return CliRunner().invoke(
        main,
        ["write", TOPIC, "--base-url", llm.base_url, "--out", str(out), *args],
        catch_exceptions=False,
    )


def papers_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "papers.jsonl").read_text().splitlines()]


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def prompt_texts(llm: FakeLLMServer) -> list[str]:
    return [
        "\n".join(m["content"] for m in request.body["messages"]) for request in llm.chat_requests()
    ]


def prompts_named(llm: FakeLLMServer, needle: str) -> int:
    return sum(needle in text for text in prompt_texts(llm))


def failing_writer(failing: dict[str, bool]):
    """The scripted model, except that section writing fails (HTTP 500) while
    ``failing["write"]`` is true: a run that stops after gathering, to resume."""

    def responder(body: dict) -> str:
        text = "\n".join(m["content"] for m in body["messages"])
        if failing["write"] and "Task: write the body of this section" in text:
            raise RuntimeError("the section writer is down")
        return pipeline_responder(body)

    return responder


# --- arXiv search alone ---------------------------------------------------------------------


def test_search_alone_finds_screens_and_reads_papers(llm, arxiv, workdir):
    out = workdir / "run"
    result = write(llm, out)
    assert result.exit_code == 0, result.stderr
    for stage in ("[gather:search]", "[gather:screen]", "[gather:fulltext]"):
        assert stage in result.stderr

    # The topic plus the model's queries were searched, in arXiv's query syntax.
    searched = [r.params["search_query"] for r in arxiv.api_requests]
    assert searched[0] == 'all:"retrieval-augmented" AND all:language AND all:models'
    assert len(searched) == 1 + len(SCRIPTED_QUERIES)

    papers = papers_of(out)
    ids = {p["arxiv_id"] for p in papers}
    assert ids == {ident for ident, _, _ in ON_TOPIC}  # the plasma paper was screened out
    for paper in papers:
        assert paper["source"] == "arxiv:search"
        assert paper["query"] and paper["score"] > 0 and paper["screen_score"] == 9
        assert paper["url"] == f"https://arxiv.org/abs/{paper['arxiv_id']}"
        assert paper["authors"][1] == "Second Author" and paper["year"] >= 2000
    with_text = {p["arxiv_id"]: p.get("text", "") for p in papers}
    assert "exact match by four points" in with_text["2005.11401"]
    assert "must not reach the text" not in with_text["2005.11401"]  # references stripped
    assert with_text[NO_PDF] == ""
    no_pdf_key = next(p["key"] for p in papers if p["arxiv_id"] == NO_PDF)
    assert (
        f"no full text from arXiv for {no_pdf_key} (no PDF at {arxiv.pdf_url(NO_PDF, 1)}"
        in result.stderr
    )
    assert "using the abstract" in result.stderr

    gathered = report_of(out)["papers"]
    assert gathered["kept"] == 5 and gathered["dropped"] == 1
    assert gathered["found"] == gathered["duplicates"] + 6  # the same papers, many queries
    assert gathered["queries"] == [TOPIC, *SCRIPTED_QUERIES]
    assert gathered["full_text"] == {"full_text": 4, "abstract_only": 1}
    assert gathered["by_source"] == {"arxiv": 5}
    found, dups = gathered["found"], gathered["duplicates"]
    assert f"papers: 5 kept of {found} found ({dups} duplicates, 1 dropped by ranking)" in (
        result.stderr
    )
    assert "[1]" in (out / "survey.md").read_text()


def test_max_papers_keeps_the_best_ranked(llm, arxiv, workdir):
    out = workdir / "run"
    result = write(llm, out, "--max-papers", "2", "--no-full-text")
    assert result.exit_code == 0, result.stderr
    papers = papers_of(out)
    assert len(papers) == 2 and all("text" not in p for p in papers)
    assert report_of(out)["papers"]["dropped"] == 4
    assert not arxiv.pdf_requests


def test_no_screen_makes_no_screening_call(llm, arxiv, workdir):
    result = write(llm, workdir / "run", "--no-screen", "--no-full-text")
    assert result.exit_code == 0, result.stderr
    assert prompts_named(llm, "Task: rate how relevant") == 0
    assert all("screen_score" not in p for p in papers_of(workdir / "run"))


# --- --arxiv-ids alone ----------------------------------------------------------------------


def test_arxiv_ids_file_alone(llm, arxiv, workdir):
    ids = workdir / "ids.txt"
    ids.write_text(
        "# my reading list\n"
        "https://arxiv.org/abs/2005.11401v1\n"
        "arXiv:2004.04906  # DPR\n"
        "not-an-id\n"
        "9999.99999\n",
        "utf-8",
    )
    out = workdir / "run"
    result = write(llm, out, "--arxiv-ids", str(ids), "--no-search")
    assert result.exit_code == 0, result.stderr
    assert {p["arxiv_id"] for p in papers_of(out)} == {"2005.11401", "2004.04906"}
    assert all(p["source"] == "arxiv:ids" for p in papers_of(out))
    assert f"{ids}:4: skipped: not an arXiv id or URL: 'not-an-id'" in result.stderr
    assert "arXiv id 9999.99999: not found on arXiv, skipped" in result.stderr
    assert prompts_named(llm, "arXiv search queries") == 0  # no search, no query proposals


# --- combined -------------------------------------------------------------------------------


def test_user_library_and_search_combined_and_deduplicated(llm, arxiv, workdir):
    bib = workdir / "refs.bib"
    bib.write_text(
        "@inproceedings{lewis_rag_2020,\n"
        "  title = {Retrieval-Augmented Generation for Knowledge-Intensive {NLP} Tasks},\n"
        "  author = {Lewis, Patrick and Perez, Ethan},\n  year = {2020},\n"
        "  booktitle = {NeurIPS},\n  eprint = {2005.11401}, archiveprefix = {arXiv},\n}\n"
        "@article{mine_offtopic,\n  title = {Protein Folding Kinetics},\n"
        "  author = {Doe, Jane},\n  year = {2019},\n"
        "  abstract = {Chaperones fold proteins in living cells.},\n}\n",
        "utf-8",
    )
    out = workdir / "run"
    result = write(llm, out, "--papers", str(bib))
    assert result.exit_code == 0, result.stderr
    papers = {p["key"]: p for p in papers_of(out)}
    rag = papers["lewis_rag_2020"]  # the user's key and data win over arXiv's
    assert rag["authors"] == ["Patrick Lewis", "Ethan Perez"] and rag["venue"] == "NeurIPS"
    assert rag["source"] == "file:refs.bib" and rag["also_in"] == ["arxiv:search"]
    assert "exact match by four points" in rag["text"]  # full text from arXiv's PDF
    assert sum(p.get("arxiv_id") == "2005.11401" for p in papers.values()) == 1
    # The user's off-topic paper is kept and flagged, never dropped.
    assert papers["mine_offtopic"]["off_topic"] is True
    assert "look off-topic (kept all the same): mine_offtopic" in result.stderr
    gathered = report_of(out)["papers"]
    assert gathered["kept"] == 6 and gathered["by_source"] == {"file": 2, "arxiv": 4}
    assert gathered["off_topic"] == ["mine_offtopic"]


# --- cache, refresh, resume -----------------------------------------------------------------


def test_rerun_uses_the_search_cache_and_refresh_searches_again(llm, arxiv, workdir):
    out = workdir / "run"
    assert write(llm, out).exit_code == 0
    keys = [p["key"] for p in papers_of(out)]
    arxiv.clear_requests()
    again = write(llm, out)
    assert again.exit_code == 0, again.stderr
    # Searches and PDF texts come from the cache; only the PDF that failed is tried again.
    assert [r.path for r in arxiv.requests] == [f"/pdf/{NO_PDF}v1"]
    assert [p["key"] for p in papers_of(out)] == keys
    refreshed = write(llm, out, "--refresh")
    assert refreshed.exit_code == 0, refreshed.stderr
    assert len(arxiv.api_requests) == 1 + len(SCRIPTED_QUERIES)
    assert len(arxiv.pdf_requests) == 2  # the failed one again; a version's text never changes
    assert [p["key"] for p in papers_of(out)] == keys


def test_resume_reuses_the_gathered_library(arxiv, workdir):
    failing = {"write": True}
    responder = failing_writer(failing)
    out = workdir / "run"
    with FakeLLMServer(responder) as llm:
        first = write(llm, out)
        assert first.exit_code == 1  # no section could be written
        failing["write"] = False
        arxiv.clear_requests()
        logged = len((out / "logs" / "calls.jsonl").read_text().splitlines())
        resumed = write(llm, out, "--resume")
        assert resumed.exit_code == 0, resumed.stderr
        assert arxiv.requests == []  # the library was not gathered again
        lines = (out / "logs" / "calls.jsonl").read_text().splitlines()[logged:]
        sent = [json.loads(line) for line in lines if not json.loads(line)["cache_hit"]]
        # only the writing was left to do: nothing before it is asked again
        assert sent and {c["stage"] for c in sent} == {"write"}
        assert any(c["prompt"] == "write" for c in sent)


# --- arXiv down -----------------------------------------------------------------------------


def test_arxiv_down_with_a_library_warns_and_goes_on(llm, arxiv, workdir, monkeypatch):
    monkeypatch.setenv("SURVEYGEN_ARXIV_URL", "http://127.0.0.1:9/api/query")
    out = workdir / "run"
    lib = workdir / "mine.jsonl"
    lib.write_text(
        json.dumps({"title": "Dense retrieval for language models", "abstract": "We retrieve."})
        + "\n",
        "utf-8",
    )
    result = write(llm, out, "--papers", str(lib))
    assert result.exit_code == 0, result.stderr
    assert "arXiv search for 'retrieval-augmented language models' failed" in result.stderr
    assert "the other 3 queries are not tried" in result.stderr
    assert [p["title"] for p in papers_of(out)] == ["Dense retrieval for language models"]
    assert report_of(out)["papers"]["searches_failed"] == 4


def test_arxiv_down_and_nothing_else_is_exit_2_saying_what_was_tried(llm, workdir, monkeypatch):
    monkeypatch.setenv("SURVEYGEN_ARXIV_URL", "http://127.0.0.1:9/api/query")
    result = write(llm, workdir / "run")
    assert result.exit_code == 2
    assert "no papers to write from: tried arXiv search for 4 queries (failed:" in result.stderr
    assert "--papers" in result.stderr and "Traceback" not in result.stderr


# --- the user's own library through the CLI ---------------------------------------------------


def _folder(root: Path) -> Path:
    folder = root / "pdfs"
    folder.mkdir()
    for ident, title, summary in ON_TOPIC[:2]:
        (folder / f"{ident}.pdf").write_bytes(make_pdf(body(title, summary), title=title))
    (folder / "notes.md").write_text(
        "# Retrieval notes\n\nRetrieval-augmented language models read passages.\n", "utf-8"
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    return folder


def _bib(root: Path) -> Path:
    (root / "att").mkdir()
    title, summary = ON_TOPIC[2][1], ON_TOPIC[2][2]
    (root / "att" / "fid.pdf").write_bytes(make_pdf(body(title, summary)))
    path = root / "zotero.bib"
    path.write_text(
        "@article{izacard_fid_2021,\n  title = {Leveraging Passage Retrieval with Generative "
        "Models: Fusion in Decoder},\n  author = {Izacard, Gautier and Grave, Edouard},\n"
        "  year = {2021},\n  file = {Full Text PDF:att/fid.pdf:application/pdf},\n}\n"
        "@article{broken,\n  title = {No closing brace\n",
        "utf-8",
    )
    return path


def _v2(root: Path) -> Path:
    path = root / "v2.json"
    papers = [
        {
            "title": t,
            "abstract": s,
            "txt": " ".join(body(t, s)),
            "url": f"https://arxiv.org/abs/{i}",
        }
        for i, t, s in ON_TOPIC[3:]
    ]
    path.write_text(json.dumps({"title": TOPIC, "papers": papers}), "utf-8")
    return path


@pytest.mark.parametrize(
    ("make", "count", "warning"),
    [
        (_folder, 3, "broken.pdf: skipped: corrupt PDF"),
        (_bib, 1, "zotero.bib:7: skipped: malformed entry"),
        (_v2, 2, None),
    ],
)
def test_each_local_source_alone_through_the_cli(llm, arxiv, workdir, make, count, warning):
    out = workdir / "run"
    result = write(llm, out, "--papers", str(make(workdir)), "--no-search")
    assert result.exit_code == 0, result.stderr
    papers = papers_of(out)
    assert len(papers) == count
    assert all(p.get("text") for p in papers)
    if warning:
        assert warning in result.stderr
    assert arxiv.requests == [] and prompts_named(llm, "arXiv search queries") == 0
    assert "[1]" in (out / "survey.md").read_text()


def test_every_local_source_combined_through_the_cli(llm, arxiv, workdir):
    ids = workdir / "ids.txt"
    ids.write_text("2005.11401\n2004.04906\n", "utf-8")  # DPR is in the folder too
    args = ["--papers", str(_folder(workdir)), "--papers", str(_bib(workdir))]
    args += ["--papers", str(_v2(workdir)), "--arxiv-ids", str(ids)]
    out = workdir / "run"
    result = write(llm, out, *args, "--no-search")
    assert result.exit_code == 0, result.stderr
    papers = papers_of(out)
    # 3 from the folder + 1 bib + 2 V2 + 2 ids, of which DPR and RAG are already in the
    # folder: 6 papers, 2 duplicates folded.
    assert len(papers) == 6
    gathered = report_of(out)["papers"]
    assert (gathered["found"], gathered["duplicates"], gathered["kept"]) == (8, 2, 6)
    dpr = next(p for p in papers if p.get("arxiv_id") == "2004.04906")
    assert dpr["source"] == "folder:pdfs" and dpr["also_in"] == ["arxiv:ids"]
    assert {p["key"] for p in papers} >= {"izacard_fid_2021"}


# --- review follow-ups ------------------------------------------------------------------------


def test_every_search_result_screened_out_is_exit_2(arxiv, workdir):
    def responder(body: dict) -> str:
        text = "\n".join(m["content"] for m in body["messages"])
        if "arXiv search queries" in text:
            return json.dumps({"queries": ["plasma fusion diagnostics"]})
        return pipeline_responder(body)  # the screen rates non-retrieval titles 1

    with FakeLLMServer(responder) as llm:
        result = CliRunner().invoke(
            main,
            ["write", "plasma fusion reactors", "--base-url", llm.base_url, "--out", "run"],
            catch_exceptions=False,
        )
    assert result.exit_code == 2
    assert "all 1 search results were rated below screen_threshold (4)" in result.stderr
    assert "--no-screen" in result.stderr and "Traceback" not in result.stderr


def test_a_users_arxiv_paper_gets_its_full_text_from_arxiv(llm, arxiv, workdir):
    bib = workdir / "reading.bib"
    bib.write_text(
        "@misc{rag, title = {Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks},"
        " author = {Lewis, Patrick}, year = {2020}, eprint = {2005.11401},"
        " archiveprefix = {arXiv}}\n",
        "utf-8",
    )
    out = workdir / "run"
    result = write(llm, out, "--papers", str(bib), "--no-search")
    assert result.exit_code == 0, result.stderr
    (paper,) = papers_of(out)
    assert paper["key"] == "rag" and "exact match by four points" in paper["text"]
    assert [r.path for r in arxiv.pdf_requests] == ["/pdf/2005.11401v1"]


def test_resume_after_the_library_changed_makes_the_outline_anew(arxiv, workdir):
    failing = {"write": True}
    responder = failing_writer(failing)
    lib = workdir / "mine.jsonl"
    row = {"title": "Dense retrieval for language models", "abstract": "We retrieve passages."}
    lib.write_text(json.dumps(row) + "\n", "utf-8")
    out = workdir / "run"
    with FakeLLMServer(responder) as llm:
        assert write(llm, out, "--papers", str(lib), "--no-search").exit_code == 1
        failing["write"] = False
        row2 = {"title": "Sparse retrieval revisited", "abstract": "BM25 still works."}
        lib.write_text(json.dumps(row) + "\n" + json.dumps(row2) + "\n", "utf-8")
        before = len(llm.chat_requests())
        resumed = write(llm, out, "--papers", str(lib), "--no-search", "--resume")
        assert resumed.exit_code == 0, resumed.stderr
        assert "the library changed since the interrupted run" in resumed.stderr
        new = prompt_texts(llm)[before:]
        assert sum("Task: propose the outline" in t for t in new) == 1
        assert len(papers_of(out)) == 2


def test_dry_run_counts_listed_arxiv_ids(llm, workdir):
    ids = workdir / "ids.txt"
    ids.write_text("2005.11401\n2004.04906 2004.04906v2\n", "utf-8")
    result = CliRunner().invoke(
        main,
        ["write", TOPIC, "--arxiv-ids", str(ids), "--no-search", "--dry-run"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    assert "papers: 3" in result.stdout and "digest: at most 3 call(s)" in result.stdout


def test_a_refused_query_does_not_stop_the_other_searches(llm, arxiv, workdir):
    arxiv.fail_next(1, status=400)
    out = workdir / "run"
    result = write(llm, out, "--no-full-text")
    assert result.exit_code == 0, result.stderr
    assert "arXiv search for 'retrieval-augmented language models' skipped" in result.stderr
    assert "not tried" not in result.stderr
    assert len(arxiv.api_requests) == 1 + len(SCRIPTED_QUERIES)
    # Only the topic's own search finds REALM; every other on-topic paper is still found.
    found = {p["arxiv_id"] for p in papers_of(out)}
    assert found == {ident for ident, _, _ in ON_TOPIC} - {"2002.08909"}
