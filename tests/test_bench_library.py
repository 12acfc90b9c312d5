"""benchmarks/library.py: synthetic paper libraries for the performance benchmark."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import library
from library import (
    SUBTOPICS,
    TOPIC,
    WORDS_PER_PAGE,
    main,
    make_papers,
    subtopic_of,
    write_library,
)

from surveygen.config import Settings
from surveygen.library.jsonl import read_jsonl
from surveygen.library.keys import is_valid_key
from surveygen.library.local import load_path
from surveygen.library.merge import assign_keys, merge_candidates
from surveygen.library.records import normalise_arxiv_id, title_fingerprint
from surveygen.models import Paper
from surveygen.text import split_sentences

PAGES = 30
HEADINGS = [
    "Abstract",
    "1 Introduction",
    "2 Related Work",
    "3 Method",
    "3.1 Problem Formulation",
    "3.3 Training and Inference",
    "4 Experiments",
    "4.1 Experimental Setup",
    "4.2 Main Results",
    "4.3 Ablation Study",
    "5 Analysis",
    "6 Limitations",
    "7 Conclusion",
    "References",
]
REFERENCE = re.compile(r"^\[(\d+)\] (?:[A-Z]\. [^,.]+)(?:, [A-Z]\. [^,.]+)*\. .+\. .+, \d{4}\.$")


@pytest.fixture(scope="module")
def abstracts() -> list[dict]:
    return make_papers(1000)


@pytest.fixture(scope="module")
def full_texts() -> list[dict]:
    return make_papers(50, pages=PAGES)


def _words(text: str) -> int:
    return len(text.split())


def test_the_module_is_the_benchmarks_one_not_surveygen_library() -> None:
    assert Path(library.__file__).resolve().parent.name == "benchmarks"
    assert TOPIC and len(SUBTOPICS) == 8


def test_papers_have_the_papers_jsonl_fields(abstracts: list[dict]) -> None:
    for i, paper in enumerate(abstracts):
        assert list(paper) == ["title", "authors", "year", "abstract", "arxiv_id", "key"]
        assert 2 <= len(paper["authors"]) <= 7
        assert all(isinstance(a, str) and " " in a for a in paper["authors"])
        assert isinstance(paper["year"], int) and 2019 <= paper["year"] <= 2025
        # A synthetic id: valid syntax, numbered from 90000, month of the paper's year.
        assert re.fullmatch(r"\d{2}(0[1-9]|1[0-2])\.9\d{4}", paper["arxiv_id"])
        assert paper["arxiv_id"][:2] == str(paper["year"])[2:]
        assert normalise_arxiv_id(paper["arxiv_id"]) == (paper["arxiv_id"], None)
        assert is_valid_key(paper["key"]) and paper["key"] == paper["key"].lower()
        assert str(paper["year"]) in paper["key"]
        assert subtopic_of(i) == i % 8


def test_titles_keys_and_ids_are_distinct(abstracts: list[dict]) -> None:
    assert len({title_fingerprint(p["title"]) for p in abstracts}) == len(abstracts)
    assert len({p["key"] for p in abstracts}) == len(abstracts)
    assert len({p["arxiv_id"] for p in abstracts}) == len(abstracts)
    assert len({p["abstract"] for p in abstracts}) == len(abstracts)


def test_abstracts_have_150_to_250_words(abstracts: list[dict]) -> None:
    counts = [_words(p["abstract"]) for p in abstracts]
    assert min(counts) >= 150 and max(counts) <= 250
    assert 180 <= np.mean(counts) <= 230  # spread over the range, not stuck at one end
    for paper in abstracts[:50]:
        sentences = split_sentences(paper["abstract"])
        assert 6 <= len(sentences) <= 16
        assert len(set(sentences)) == len(sentences)
        assert re.search(r"\d\.\d", paper["abstract"])  # it reports numbers


def test_years_respect_the_subtopic(abstracts: list[dict]) -> None:
    agents = [p["year"] for i, p in enumerate(abstracts) if subtopic_of(i) == 7]
    dense = [p["year"] for i, p in enumerate(abstracts) if subtopic_of(i) == 0]
    assert min(agents) >= 2022 and min(dense) == 2019 and max(dense) == 2025


def test_same_seed_same_bytes_other_seed_other_library(tmp_path: Path) -> None:
    a = write_library(tmp_path / "a.jsonl", 30, pages=2, seed=7).read_bytes()
    b = write_library(tmp_path / "b.jsonl", 30, pages=2, seed=7).read_bytes()
    c = write_library(tmp_path / "c.jsonl", 30, pages=2, seed=8).read_bytes()
    assert a == b and a != c
    titles_a = [json.loads(line)["title"] for line in a.splitlines()]
    titles_c = [json.loads(line)["title"] for line in c.splitlines()]
    assert not set(titles_a) & set(titles_c)


def test_a_smaller_library_is_a_prefix_and_pages_leave_the_metadata(
    abstracts: list[dict], full_texts: list[dict]
) -> None:
    assert make_papers(40) == abstracts[:40]
    for short, long in zip(abstracts[:50], full_texts, strict=True):
        assert {k: v for k, v in long.items() if k != "text"} == short


def test_full_texts_have_about_500_words_a_page(full_texts: list[dict]) -> None:
    counts = [_words(p["text"]) for p in full_texts]
    target = PAGES * WORDS_PER_PAGE
    assert 0.95 * target <= min(counts) and max(counts) <= 1.05 * target
    for pages in (5, 12, 60):
        (paper,) = make_papers(1, pages=pages, seed=3)
        assert abs(_words(paper["text"]) / (pages * WORDS_PER_PAGE) - 1) <= 0.06
    # A very short text keeps every section (a sentence or two each), so it comes out longer.
    (paper,) = make_papers(1, pages=1, seed=3)
    assert 500 <= _words(paper["text"]) <= 1500
    assert all(f"\n\n{h}\n\n" in paper["text"] for h in HEADINGS)


def test_full_texts_read_like_extracted_pdf_text(full_texts: list[dict]) -> None:
    for paper in full_texts:
        text = paper["text"]
        blocks = text.rstrip("\n").split("\n\n")
        assert blocks[0] == paper["title"] and blocks[1] == ", ".join(paper["authors"])
        assert " ".join(blocks[3].split()) == paper["abstract"]
        positions = [blocks.index(h) for h in HEADINGS]  # headings are blocks of their own
        assert positions == sorted(positions)
        assert any(b.startswith("3.2 Overview of ") for b in blocks)
        references = blocks[blocks.index("References") + 1 :]
        assert 37 <= len(references) <= 43
        assert [int(REFERENCE.match(r).group(1)) for r in references] == list(
            range(1, len(references) + 1)
        )
        cited = {int(n) for n in re.findall(r"\[(\d+)(?:, \d+)?\]", text)}
        assert max(cited) <= len(references)
        assert max(len(line) for line in text.splitlines() if not line.startswith("[")) <= 120
        assert any(b.startswith("Table ") and b.count("\n") >= 4 for b in blocks)


def test_full_text_sentences_are_distinct(full_texts: list[dict]) -> None:
    for paper in full_texts[:16]:
        body = paper["text"].split("\n\nReferences\n\n")[0]  # the list repeats venues
        sentences = [s for s in split_sentences(body) if _words(s) >= 5]
        assert len(sentences) > 500
        assert len(set(sentences)) == len(sentences)
        # Built from the paper's own sub-topic: its method is named throughout.
        method = paper["key"][len(re.match(r"[a-z]+\d{4}", paper["key"]).group()) :]
        mentions = sum(method in re.sub(r"[^a-z0-9]", "", s.lower()) for s in sentences)
        assert mentions >= 0.1 * len(sentences)


def test_generation_is_fast() -> None:
    started = time.perf_counter()
    make_papers(1000)
    abstracts = time.perf_counter() - started
    started = time.perf_counter()
    make_papers(50, pages=30)
    texts = time.perf_counter() - started
    # The targets are 1 s and 3 s; CI machines vary, so only a gross regression fails.
    assert abstracts < 10 and texts < 10, (abstracts, texts)


def test_tfidf_nearest_centroid_recovers_the_subtopics() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    papers = make_papers(200, seed=1)
    docs = [f"{p['title']}. {p['title']}. {p['abstract']}" for p in papers]
    matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(docs)
    matrix = matrix.toarray()
    labels = np.array([subtopic_of(i) for i in range(len(papers))])
    sums = np.stack([matrix[labels == k].sum(axis=0) for k in range(8)])
    counts = np.bincount(labels, minlength=8)
    right = 0
    for i, row in enumerate(matrix):
        # Leave-one-out centroids: the paper itself does not pull its own centroid.
        centroids = sums.copy()
        centroids[labels[i]] -= row
        centroids /= (counts - (np.arange(8) == labels[i]))[:, None]
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        right += int(np.argmax(centroids @ row) == labels[i])
    assert right / len(papers) >= 0.9


@pytest.mark.parametrize("n", [50, 200])
def test_the_pipeline_clustering_finds_the_subtopics(n: int) -> None:
    from sklearn.metrics import adjusted_rand_score

    from surveygen.stages.skeleton import cluster_papers

    papers = [Paper(key=p["key"], title=p["title"], abstract=p["abstract"]) for p in make_papers(n)]
    clusters = cluster_papers(papers)
    found = np.zeros(n, dtype=int)
    for label, members in enumerate(clusters):
        found[members] = label
    assert len(clusters) >= 6
    assert adjusted_rand_score([subtopic_of(i) for i in range(n)], found) >= 0.8


def test_the_reader_takes_every_paper_whole(tmp_path: Path, full_texts: list[dict]) -> None:
    path = write_library(tmp_path / "papers.jsonl", 50, pages=PAGES)
    max_bytes = int(Settings().max_file_mb * 1_000_000)
    assert path.stat().st_size < max_bytes / 4
    result = read_jsonl(path, max_bytes=max_bytes)
    assert result.warnings == []
    assert (result.read, result.skipped, len(result.candidates)) == (50, 0, 50)
    for paper, candidate in zip(full_texts, result.candidates, strict=True):
        assert candidate.title == paper["title"]
        assert candidate.authors == tuple(paper["authors"])
        assert candidate.year == paper["year"]
        assert candidate.abstract == paper["abstract"]
        assert candidate.text == paper["text"]
        assert candidate.arxiv_id == paper["arxiv_id"]
        assert candidate.key == paper["key"]
    merged, duplicates = merge_candidates(result.candidates)
    assert duplicates == 0
    assert assign_keys(merged) == []
    assert [m.key for m in merged] == [p["key"] for p in full_texts]


def test_the_reader_takes_a_large_abstract_library(tmp_path: Path) -> None:
    path = write_library(tmp_path / "deep" / "papers.jsonl", 1000)
    # As `surveygen write --papers` reads it: by its suffix, with the default size limit.
    result = load_path(path, max_bytes=int(Settings().max_file_mb * 1_000_000))
    assert result.warnings == [] and len(result.candidates) == 1000
    assert all(c.text == "" for c in result.candidates)
    assert merge_candidates(result.candidates)[1] == 0


def test_cli_writes_the_library_and_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.jsonl"
    assert main([str(out), "--papers", "12", "--pages", "1", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1
    assert "12 papers" in printed and str(out) in printed and TOPIC in printed
    expected = write_library(tmp_path / "api.jsonl", 12, pages=1, seed=5)
    assert out.read_bytes() == expected.read_bytes()


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_papers(-1)
    with pytest.raises(ValueError):
        make_papers(3, pages=-2)
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "x.jsonl"), "--papers", "-5"])
    assert exc.value.code == 2
    assert make_papers(0) == []
