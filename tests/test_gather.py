"""The gather stage over the user's own library: every input kind alone and combined,
de-duplication across sources, bad input, keys kept across runs. arXiv is a closed local
port here; the arXiv paths are tested end to end in test_gather_e2e.py."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pdfgen import encrypt_pdf, make_pdf

from surveygen.errors import InputError
from surveygen.models import Paper
from surveygen.stages.gather import GatherOptions, GatherReport, check_inputs, gather
from surveygen.ui import UI

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_library.jsonl"
TOPIC = "retrieval-augmented language models"

ATTENTION_PAGES = [
    "Attention Is All You Need\nAshish Vaswani, Noam Shazeer\n\nAbstract\nThe dominant "
    "sequence transduction models are based on recurrent networks. We propose the "
    "Transformer, based solely on attention mechanisms.\n\n1 Introduction\nRecurrent models "
    "factor computation along symbol positions. Retrieval of long-range dependencies is hard.",
    "2 Model\nThe encoder maps an input sequence to continuous representations. Self-attention "
    "relates positions of a single sequence.\n\nReferences\n[1] D. Bahdanau. Neural machine "
    "translation. 2014.\n[2] K. Cho. Learning phrase representations. 2014.",
]


def run(
    options: GatherOptions, previous: list[dict] | None = None
) -> tuple[list[Paper], GatherReport, list[str]]:
    warnings: list[str] = []
    papers, report = asyncio.run(
        gather(
            TOPIC,
            options,
            llm=None,
            ui=UI(quiet=True),
            warn=warnings.append,
            previous=previous or [],
        )
    )
    return papers, report, warnings


CLOSED_PORT = "http://127.0.0.1:9/api/query"


def local(*paths: Path, **kw: Any) -> GatherOptions:
    kw.setdefault("max_file_bytes", 1_000_000)
    kw.setdefault("arxiv_url", CLOSED_PORT)  # never the real arXiv, even by mistake
    kw.setdefault("arxiv_delay", 0.0)
    kw.setdefault("cache_dir", Path(os.environ["XDG_CACHE_HOME"]) / "surveygen")
    return GatherOptions(papers=tuple(paths), search=False, **kw)


def jsonl(path: Path, *rows: dict | str) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8"
    )
    return path


# --- each source alone ----------------------------------------------------------------------


def test_papers_jsonl_alone() -> None:
    papers, report, warnings = run(local(SAMPLE))
    # The sample's papers have arXiv ids, so their full texts are asked of arXiv, which is
    # unreachable here: one warning for all of them, and the abstracts are used.
    assert len(warnings) == 1
    assert warnings[0].startswith("no full text from arXiv for ")
    assert "lewis2020retrieval" in warnings[0] and warnings[0].endswith("using the abstract")
    assert len(papers) == 8 and len({p.key for p in papers}) == 8
    assert "lewis2020retrieval" in {p.key for p in papers}
    assert all(p.source == "file:sample_library.jsonl" for p in papers)
    assert all(p.score is not None and p.score > 0 for p in papers)
    assert (report.found, report.duplicates, report.kept, report.dropped) == (8, 0, 8, 0)
    assert report.by_source == {"file": 8}
    assert report.full_text == {"full_text": 0, "abstract_only": 8}  # the sample has abstracts only


def test_folder_of_documents_alone(tmp_path: Path) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "attention.pdf").write_bytes(
        make_pdf(ATTENTION_PAGES, title="Attention Is All You Need")
    )
    (folder / "notes.md").write_text(
        "# Retrieval-Augmented Generation Notes\n\nRetrieval-augmented generation conditions "
        "a language model on retrieved passages. It improves factuality.\n",
        "utf-8",
    )
    (folder / "dpr.txt").write_text(
        "Dense Passage Retrieval for Open-Domain Question Answering\n\nDense retrieval "
        "with dual encoders outperforms BM25 for passage retrieval.\n",
        "utf-8",
    )
    papers, report, warnings = run(local(folder))
    assert warnings == []
    titles = {p.title for p in papers}
    assert titles == {
        "Attention Is All You Need",
        "Retrieval-Augmented Generation Notes",
        "Dense Passage Retrieval for Open-Domain Question Answering",
    }
    attention = next(p for p in papers if p.title.startswith("Attention"))
    assert "Self-attention relates positions" in attention.text
    assert "Bahdanau" not in attention.text  # references stripped
    assert all(p.source == "folder:pdfs" for p in papers)
    assert report.full_text == {"full_text": 3, "abstract_only": 0}


def test_bib_alone_reads_attached_pdfs(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "vaswani.pdf").write_bytes(make_pdf(ATTENTION_PAGES))
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@inproceedings{vaswani_attention_2017,\n"
        "  title = {Attention {Is} {All} {You} {Need}},\n"
        "  author = {Vaswani, Ashish and Shazeer, Noam},\n  year = {2017},\n"
        "  booktitle = {NeurIPS},\n  eprint = {1706.03762}, archiveprefix = {arXiv},\n"
        "  file = {Full Text PDF:files/vaswani.pdf:application/pdf},\n}\n"
        "@article{lewis2020,\n  title = {Retrieval-Augmented Generation for Knowledge-Intensive"
        " {NLP} Tasks},\n  author = {Lewis, Patrick},\n  year = {2020},\n"
        "  abstract = {We combine parametric and non-parametric memory for generation.},\n}\n",
        "utf-8",
    )
    papers, report, warnings = run(local(bib))
    # Its title shares no word with the topic: flagged, yet kept with its full text.
    assert warnings == [
        "1 of your papers look off-topic (kept all the same): vaswani_attention_2017"
    ]
    by_key = {p.key: p for p in papers}
    assert set(by_key) == {"vaswani_attention_2017", "lewis2020"}  # the user's own keys
    vaswani = by_key["vaswani_attention_2017"]
    assert vaswani.title == "Attention Is All You Need"
    assert vaswani.authors == ("Ashish Vaswani", "Noam Shazeer")
    assert vaswani.arxiv_id == "1706.03762" and vaswani.venue == "NeurIPS"
    assert "Self-attention relates positions" in vaswani.text and "Bahdanau" not in vaswani.text
    assert by_key["lewis2020"].text == ""
    assert report.full_text == {"full_text": 1, "abstract_only": 1}


def test_v2_input_alone(tmp_path: Path) -> None:
    path = tmp_path / "v2.json"
    path.write_text(
        json.dumps(
            {
                "title": TOPIC,
                "papers": [
                    {
                        "title": "Dense Passage Retrieval",
                        "abstract": "Dual encoders for retrieval.",
                        "txt": "Dense retrieval beats BM25. It uses dual encoders.",
                        "url": "https://arxiv.org/abs/2004.04906",
                    },
                    {
                        "title": "REALM: Retrieval-Augmented Pre-Training",
                        "abstract": "x",
                        "txt": "",
                    },
                ],
            }
        ),
        "utf-8",
    )
    papers, _, warnings = run(local(path))
    assert warnings == []
    assert [p.title for p in papers] == [
        "Dense Passage Retrieval",
        "REALM: Retrieval-Augmented Pre-Training",
    ]
    assert papers[0].arxiv_id == "2004.04906" and papers[0].text.startswith("Dense retrieval")


def test_no_full_text_keeps_abstracts_only(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "p.jsonl", {"title": "Some retrieval paper", "abstract": "A.", "text": "Body."}
    )
    papers, report, _ = run(local(path, full_text=False))
    assert papers[0].text == "" and papers[0].abstract == "A."
    assert report.full_text == {"full_text": 0, "abstract_only": 0}


# --- combined -------------------------------------------------------------------------------


def test_one_library_out_of_every_kind_of_input(tmp_path: Path) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "attention.pdf").write_bytes(
        make_pdf(ATTENTION_PAGES, title="Attention Is All You Need")
    )
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{vaswani17, title={Attention is all you need}, author={Vaswani, Ashish},"
        " year={2017}, journal={NeurIPS}}\n"
        "@article{dpr, title={Dense Passage Retrieval for Open-Domain Question Answering},"
        " author={Karpukhin, Vladimir}, year={2020}, doi={10.18653/v1/2020.emnlp-main.550}}\n",
        "utf-8",
    )
    lines = jsonl(
        tmp_path / "mine.jsonl",
        {
            "title": "DPR: dense passage retrieval for open-domain QA (preprint)",
            "doi": "https://doi.org/10.18653/V1/2020.EMNLP-MAIN.550",
            "abstract": "Dual encoders.",
        },
        {"title": "Attention Is All You Need", "arxiv_id": "1706.03762v5"},
        {"title": "Atlas: Few-shot Learning with Retrieval Augmented Language Models"},
    )
    papers, report, warnings = run(local(bib, folder, lines))
    assert warnings == [
        "1 paper(s) have only a title, no abstract or text, so they can give little evidence: "
        "anonndatlas"
    ]
    assert (report.found, report.duplicates, report.kept) == (6, 3, 3)
    by_key = {p.key: p for p in papers}
    assert set(by_key) == {"vaswani17", "dpr", "anonndatlas"}
    attention = by_key["vaswani17"]
    # The first source's data wins; the others fill what it lacks.
    assert attention.title == "Attention is all you need" and attention.venue == "NeurIPS"
    assert attention.arxiv_id == "1706.03762" and "Self-attention" in attention.text
    assert attention.source == "file:refs.bib"
    assert attention.also_in == ("folder:pdfs", "file:mine.jsonl")
    assert by_key["dpr"].abstract == "Dual encoders."
    assert report.by_source == {"file": 3}


# --- bad input ------------------------------------------------------------------------------


def test_every_bad_input_costs_one_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    good = make_pdf(ATTENTION_PAGES, title="Attention Is All You Need")
    (folder / "good.pdf").write_bytes(good)
    (folder / "corrupt.pdf").write_bytes(good[: len(good) // 3])
    (folder / "locked.pdf").write_bytes(encrypt_pdf(good))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "latin1.txt").write_bytes("Caf\xe9 retrieval notes\n\nSome text.".encode("latin-1"))
    (folder / "junk.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "huge.md").write_text("# Big\n\n" + "retrieval " * 200_000, "utf-8")
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{ok, title={Retrieval-augmented generation}, year={2020}}\n"
        "@article{broken, title={Unclosed\n\n"
        "@article{notitle, author={Nobody}, year={2020}}\n",
        "utf-8",
    )
    lines = jsonl(tmp_path / "p.jsonl", {"title": "Dense retrieval"}, "{not json", {"year": 2020})
    papers, report, warnings = run(local(folder, bib, lines))
    assert {p.title for p in papers} >= {"Attention Is All You Need", "Dense retrieval"}
    expected = {
        "corrupt.pdf": "corrupt PDF",
        "locked.pdf": "encrypted",
        "empty.txt": "empty",
        "latin1.txt": "not UTF-8",
        "junk.txt": "binary",
        "huge.md": "larger than",
        "p.jsonl:2": "invalid JSON",
        "p.jsonl:3": "no title",
    }
    for where, reason in expected.items():
        hits = [w for w in warnings if where in w]
        assert len(hits) == 1, (where, warnings)
        assert "skipped" in hits[0] and reason in hits[0], hits[0]
    assert sum("refs.bib" in w for w in warnings) == 2  # the broken entry and the untitled one
    assert report.skipped_input == sum("skipped" in w for w in warnings)
    assert all("Traceback" not in w for w in warnings)


def test_zero_papers_is_an_input_error_saying_what_was_tried(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = jsonl(tmp_path / "bad.jsonl", "{oops", {"year": 1})
    with pytest.raises(InputError) as info:
        run(local(empty, bad))
    message = str(info.value)
    assert "no papers to write from" in message
    assert (
        f"--papers {empty}" in message and f"--papers {bad} (2 entries read, 2 unusable)" in message
    )


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp: local(tmp / "missing.bib"), "no such file or folder"),
        (lambda tmp: local((tmp / "refs.ris").resolve()), "unsupported file type"),
        (lambda tmp: GatherOptions(search=False), "--no-search leaves no papers"),
        (lambda tmp: GatherOptions(arxiv_ids=(tmp,)), "is a folder"),
    ],
)
def test_usage_errors_come_before_any_work(tmp_path: Path, make: Any, needle: str) -> None:
    (tmp_path / "refs.ris").write_text("TY  - JOUR\n", "utf-8")
    with pytest.raises(InputError, match=needle):
        check_inputs(make(tmp_path))


# --- ranking and keys -----------------------------------------------------------------------


def test_user_papers_are_never_dropped_but_off_topic_ones_are_flagged(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "p.jsonl",
        *[
            {
                "title": f"Retrieval-augmented language models study {i}",
                "abstract": "Retrieval augmented language models retrieve passages.",
            }
            for i in range(4)
        ],
        {"title": "Protein folding kinetics", "abstract": "Chaperones fold proteins in cells."},
    )
    papers, report, warnings = run(local(path, max_papers=2))
    assert len(papers) == 5 and report.dropped == 0
    flagged = [p for p in papers if p.off_topic]
    assert [p.title for p in flagged] == ["Protein folding kinetics"]
    assert report.off_topic == [flagged[0].key]
    assert any("look off-topic (kept all the same)" in w for w in warnings)


def test_keys_stay_the_same_when_the_library_grows(tmp_path: Path) -> None:
    first = jsonl(
        tmp_path / "a.jsonl",
        {"title": "Retrieval study zeta", "authors": ["A Smith"], "year": 2020},
    )
    papers, _, _ = run(local(first))
    assert papers[0].key == "smith2020retrieval"
    previous = [p.to_json() for p in papers]
    grown = jsonl(
        tmp_path / "b.jsonl",
        {"title": "Retrieval study alpha", "authors": ["B Smith"], "year": 2020},
        {"title": "Retrieval study zeta", "authors": ["A Smith"], "year": 2020},
    )
    fresh, _, _ = run(local(grown))
    kept, _, _ = run(local(grown), previous=previous)
    assert {p.title: p.key for p in fresh}["Retrieval study zeta"] == "smith2020retrievala"
    assert {p.title: p.key for p in kept} == {
        "Retrieval study zeta": "smith2020retrieval",
        "Retrieval study alpha": "smith2020retrievala",
    }


def test_papers_jsonl_round_trips_with_provenance(tmp_path: Path) -> None:
    papers, _, _ = run(local(SAMPLE))
    out = jsonl(tmp_path / "papers.jsonl", *[p.to_json() for p in papers])
    again, _, warnings = run(local(out, full_text=False))
    assert warnings == []
    assert [(p.key, p.title, p.abstract) for p in again] == [
        (p.key, p.title, p.abstract) for p in papers
    ]
    line = json.loads(out.read_text().splitlines()[0])
    assert {"key", "title", "authors", "year", "abstract", "source", "score"} <= set(line)
