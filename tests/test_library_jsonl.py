from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from surveygen.library.jsonl import read_json, read_jsonl
from surveygen.library.records import LoadResult, arxiv_id_from_url

MAX = 1_000_000


def write_lines(path: Path, *lines: Any) -> Path:
    """Write each item as one line: dicts and lists as JSON, str and bytes as given."""
    with path.open("wb") as handle:
        for line in lines:
            if isinstance(line, (dict, list)):
                line = json.dumps(line, ensure_ascii=False)
            if isinstance(line, str):
                line = line.encode("utf-8")
            handle.write(line + b"\n")
    return path


def read_lines(tmp_path: Path, *lines: Any) -> LoadResult:
    return read_jsonl(write_lines(tmp_path / "papers.jsonl", *lines), max_bytes=MAX)


def write_json(tmp_path: Path, value: Any, name: str = "survey.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


# --- papers.jsonl ---------------------------------------------------------------------------


def test_every_field(tmp_path: Path) -> None:
    entry = {
        "key": "vaswani2017",
        "title": "Attention  Is All\nYou Need",
        "authors": ["Ashish  Vaswani", "Noam Shazeer", "  "],
        "year": 2017,
        "abstract": " The Transformer. ",
        "text": "Full text here.",
        "arxiv_id": "arXiv:1706.03762v5",
        "doi": "https://doi.org/10.5555/3295222.3295349",
        "url": "https://papers.nips.cc/paper/7181",
        "venue": " NeurIPS ",
        "source": "zotero",
        "extra": {"anything": 1},
    }
    path = write_lines(tmp_path / "papers.jsonl", entry)
    result = read_jsonl(path, max_bytes=MAX)
    assert result.warnings == []
    assert (result.read, result.skipped) == (1, 0)
    (paper,) = result.candidates
    assert paper.key == "vaswani2017"
    assert paper.title == "Attention Is All You Need"
    assert paper.authors == ("Ashish Vaswani", "Noam Shazeer")
    assert paper.year == 2017
    assert paper.abstract == "The Transformer."
    assert paper.text == "Full text here."
    assert (paper.arxiv_id, paper.arxiv_version) == ("1706.03762", 5)
    assert paper.doi == "10.5555/3295222.3295349"
    assert paper.url == "https://papers.nips.cc/paper/7181"
    assert paper.venue == "NeurIPS"
    assert paper.source == "zotero"
    assert paper.origin == "user"
    assert paper.where == f"{path}:1"
    assert paper.pdf_path is None


def test_only_title_required_and_defaults(tmp_path: Path) -> None:
    result = read_lines(tmp_path, {"title": "Only a title"})
    (paper,) = result.candidates
    assert paper.authors == ()
    assert paper.year is None
    assert (paper.abstract, paper.text) == ("", "")
    assert paper.arxiv_id is paper.doi is paper.url is paper.venue is paper.key is None
    assert paper.source == "file:papers.jsonl"


def test_authors_as_string(tmp_path: Path) -> None:
    result = read_lines(tmp_path, {"title": "T", "authors": "A. One and B. Two; C. Three"})
    assert result.candidates[0].authors == ("A. One", "B. Two", "C. Three")


def test_year_as_string_is_read(tmp_path: Path) -> None:
    result = read_lines(tmp_path, {"title": "T", "year": " 2021 "})
    assert result.candidates[0].year == 2021
    assert result.warnings == []


@pytest.mark.parametrize("year", [1800, "2021a", "recent", 2020.5, True, [2020]])
def test_bad_year_keeps_paper_with_warning(tmp_path: Path, year: Any) -> None:
    path = write_lines(tmp_path / "papers.jsonl", {"title": "T", "year": year})
    result = read_jsonl(path, max_bytes=MAX)
    assert (result.read, result.skipped) == (1, 0)
    assert result.candidates[0].year is None
    assert result.warnings == [
        f"{path}:1: year {year!r} ignored (expected a year from 1900 to 2100)"
    ]


def test_our_own_output_fields_are_ignored(tmp_path: Path) -> None:
    line = {
        "key": "smith2020deep",
        "title": "Deep Things",
        "authors": ["J. Smith"],
        "year": 2020,
        "abstract": "A.",
        "arxiv_id": "2001.00001",
        "source": "arxiv:search",
        "query": "deep things",
        "score": 0.83,
        "screen_score": 4,
        "off_topic": False,
        "also_in": ["file:refs.bib", "folder:pdfs"],
    }
    result = read_lines(tmp_path, line)
    assert result.warnings == []
    (paper,) = result.candidates
    assert paper.source == "arxiv:search"
    assert paper.origin == "user"
    assert paper.query is None  # the stored query is not taken over
    assert paper.arxiv_id == "2001.00001"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://arxiv.org/abs/2101.00001v2", ("2101.00001", 2)),
        ("http://arxiv.org/pdf/2101.00001v3.pdf", ("2101.00001", 3)),
        ("https://export.arxiv.org/abs/hep-th/9901001", ("hep-th/9901001", None)),
        ("https://arxiv.org/abs/2101.00001?context=cs", ("2101.00001", None)),
    ],
)
def test_arxiv_id_from_url(tmp_path: Path, url: str, expected: tuple[str, int | None]) -> None:
    result = read_lines(tmp_path, {"title": "T", "url": url})
    paper = result.candidates[0]
    assert (paper.arxiv_id, paper.arxiv_version) == expected
    assert paper.url == url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/abs/2101.00001",
        "https://arxiv.org/list/cs.CL/2101.00001",
        "https://notarxiv.org/abs/2101.00001",
        "http://[broken",
    ],
)
def test_no_arxiv_id_from_other_urls(url: str) -> None:
    assert arxiv_id_from_url(url) is None


def test_explicit_arxiv_id_wins_over_url(tmp_path: Path) -> None:
    line = {"title": "T", "arxiv_id": "2202.00002", "url": "https://arxiv.org/abs/2101.00001"}
    assert read_lines(tmp_path, line).candidates[0].arxiv_id == "2202.00002"


def test_unparseable_arxiv_id_and_doi_are_dropped_with_warnings(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "papers.jsonl", {"title": "T", "arxiv_id": "soon", "doi": "n/a"})
    result = read_jsonl(path, max_bytes=MAX)
    (paper,) = result.candidates
    assert paper.arxiv_id is None and paper.arxiv_version is None and paper.doi is None
    assert result.warnings == [
        f"{path}:1: arxiv_id 'soon' ignored (not an arXiv identifier)",
        f"{path}:1: doi 'n/a' ignored (not a DOI)",
    ]


def test_unparseable_arxiv_id_falls_back_to_url(tmp_path: Path) -> None:
    line = {"title": "T", "arxiv_id": "soon", "url": "https://arxiv.org/abs/2101.00001"}
    result = read_lines(tmp_path, line)
    assert result.candidates[0].arxiv_id == "2101.00001"
    assert len(result.warnings) == 1


def test_bad_lines_are_skipped_one_warning_each(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "papers.jsonl",
        {"title": "Good one"},
        '{"title": "broken", }',
        b'{"title": "caf\xe9"}',
        '["a", "list"]',
        '"just a string"',
        {"authors": ["No Title"]},
        {"title": "   "},
        {"title": None},
        {"title": 42},
        {"title": "T", "authors": [1, 2]},
        {"title": "T", "abstract": ["not", "a", "string"]},
        {"title": "Good two"},
    )
    result = read_jsonl(path, max_bytes=MAX)
    assert [c.title for c in result.candidates] == ["Good one", "Good two"]
    assert [c.where for c in result.candidates] == [f"{path}:1", f"{path}:12"]
    assert (result.read, result.skipped) == (12, 10)
    assert result.warnings == [
        f"{path}:2: skipped: invalid JSON (Expecting property name enclosed in double quotes"
        " at column 21)",
        f"{path}:3: skipped: not valid UTF-8 (byte 15)",
        f"{path}:4: skipped: not a JSON object (got an array)",
        f"{path}:5: skipped: not a JSON object (got a string)",
        f"{path}:6: skipped: no title",
        f"{path}:7: skipped: no title",
        f"{path}:8: skipped: no title",
        f"{path}:9: skipped: 'title' must be a non-empty string",
        f"{path}:10: skipped: 'authors' must be a list of strings or a string",
        f"{path}:11: skipped: 'abstract' must be a string",
    ]


def test_blank_lines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"title": "First"}\r\n\r\n   \n{"title": "Second"}\n\n{"title": "Third"}'
    )
    result = read_jsonl(path, max_bytes=MAX)
    assert result.warnings == []
    assert [c.title for c in result.candidates] == ["First", "Second", "Third"]
    assert [c.where for c in result.candidates] == [f"{path}:1", f"{path}:4", f"{path}:6"]
    assert (result.read, result.skipped) == (3, 0)


def test_bom_only_allowed_on_first_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "papers.jsonl", {"title": "A"}, b'\xef\xbb\xbf{"title": "B"}')
    result = read_jsonl(path, max_bytes=MAX)
    assert [c.title for c in result.candidates] == ["A"]
    assert result.warnings[0].startswith(f"{path}:2: skipped: invalid JSON (")


def test_lone_surrogates_are_replaced_in_every_field(tmp_path: Path) -> None:
    # json.loads accepts "\ud800" escapes that pair with nothing; UTF-8 cannot encode them.
    line = (
        '{"title": "\\ud800 Graphs", "authors": ["Ada \\udc00", "Bob"], "abstract": "a\\ud800",'
        ' "text": "t\\udfff", "venue": "v\\ud801", "url": "https://x.org/\\ud800",'
        ' "key": "k\\ud800", "source": "s\\ud800", "year": 2020}'
    )
    result = read_lines(tmp_path, line)
    assert result.warnings == []
    (paper,) = result.candidates
    assert paper.title == "\ufffd Graphs"
    assert paper.authors == ("Ada \ufffd", "Bob")
    assert (paper.abstract, paper.text, paper.venue) == ("a\ufffd", "t\ufffd", "v\ufffd")
    assert (paper.url, paper.key, paper.source) == ("https://x.org/\ufffd", "k\ufffd", "s\ufffd")
    json.dumps(paper.__dict__, default=str, ensure_ascii=False).encode("utf-8")


def test_lone_surrogates_in_v2_json(tmp_path: Path) -> None:
    path = tmp_path / "survey.json"
    path.write_text(
        '{"title": "Topic", "papers": [{"title": "T\\ud800", "txt": "body \\udc00",'
        ' "abstract": "abs", "url": "u"}]}',
        encoding="utf-8",
    )
    (paper,) = read_json(path, max_bytes=MAX).candidates
    assert (paper.title, paper.text) == ("T\ufffd", "body \ufffd")


def test_titles_are_capped_at_300_characters(tmp_path: Path) -> None:
    long_title = " ".join(["word"] * 100)
    result = read_lines(tmp_path, {"title": long_title})
    (paper,) = result.candidates
    assert len(paper.title) <= 300 and paper.title.startswith("word word")
    assert long_title.startswith(paper.title)
    assert result.warnings == []
    path = write_json(tmp_path, [{"title": "y" * 1000}])
    assert read_json(path, max_bytes=MAX).candidates[0].title == "y" * 300


# --- LLM×MapReduce-V2 input -----------------------------------------------------------------

V2 = {
    "title": "Large language models for code",
    "papers": [
        {
            "title": "Codex paper",
            "abstract": "We evaluate.",
            "txt": "Full text of Codex.",
            "url": "https://arxiv.org/abs/2107.03374",
        },
        {"title": "No URL paper", "abstract": "", "txt": ""},
    ],
}


def test_v2_line_in_jsonl(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "input.jsonl", {"title": "Plain line"}, V2)
    result = read_jsonl(path, max_bytes=MAX)
    assert result.warnings == []
    assert [c.title for c in result.candidates] == ["Plain line", "Codex paper", "No URL paper"]
    assert (result.read, result.skipped) == (3, 0)
    codex = result.candidates[1]
    assert codex.text == "Full text of Codex."
    assert codex.abstract == "We evaluate."
    assert codex.arxiv_id == "2107.03374"
    assert codex.where == f"{path}:2 paper 1"
    assert codex.source == "file:input.jsonl"
    assert result.candidates[2].where == f"{path}:2 paper 2"


def test_text_wins_over_txt(tmp_path: Path) -> None:
    result = read_lines(tmp_path, {"title": "T", "text": "from text", "txt": "from txt"})
    assert result.candidates[0].text == "from text"


def test_malformed_v2_papers(tmp_path: Path) -> None:
    line = {
        "title": "Topic",
        "papers": [
            {"title": "Fine"},
            "not an object",
            {"abstract": "no title"},
            {"title": "Bad txt", "txt": 5},
            {"title": "Also fine", "year": "someday"},
        ],
    }
    path = write_lines(tmp_path / "input.jsonl", line, {"title": "T", "papers": []})
    path2 = write_lines(tmp_path / "other.jsonl", {"title": "T", "papers": {"title": "x"}})
    result = read_jsonl(path, max_bytes=MAX)
    assert [c.title for c in result.candidates] == ["Fine", "Also fine"]
    assert (result.read, result.skipped) == (6, 4)
    assert result.warnings == [
        f"{path}:1 paper 2: skipped: not a JSON object (got a string)",
        f"{path}:1 paper 3: skipped: no title",
        f"{path}:1 paper 4: skipped: 'txt' must be a string",
        f"{path}:1 paper 5: year 'someday' ignored (expected a year from 1900 to 2100)",
        f"{path}:2: skipped: its 'papers' list is empty",
    ]
    result2 = read_jsonl(path2, max_bytes=MAX)
    assert result2.candidates == []
    assert result2.warnings == [
        f"{path2}:1: skipped: 'papers' must be a list of paper objects (got an object)"
    ]


def test_json_v2_object(tmp_path: Path) -> None:
    path = write_json(tmp_path, V2)
    result = read_json(path, max_bytes=MAX)
    assert result.warnings == []
    assert [c.title for c in result.candidates] == ["Codex paper", "No URL paper"]
    assert [c.where for c in result.candidates] == [f"{path} paper 1", f"{path} paper 2"]
    assert result.candidates[0].text == "Full text of Codex."
    assert result.candidates[0].source == "file:survey.json"


def test_json_list_of_v2_objects(tmp_path: Path) -> None:
    second = {"title": "Other topic", "papers": [{"title": "Third paper", "txt": "x"}]}
    path = write_json(tmp_path, [V2, second])
    result = read_json(path, max_bytes=MAX)
    assert [c.title for c in result.candidates] == ["Codex paper", "No URL paper", "Third paper"]
    assert result.candidates[2].where == f"{path} item 2 paper 1"
    assert (result.read, result.skipped) == (3, 0)


def test_json_list_of_papers(tmp_path: Path) -> None:
    papers = [
        {"title": "One", "authors": ["A. Author"], "year": 2020, "doi": "10.1000/ABC"},
        {"title": ""},
        7,
        {"title": "Two", "url": "https://arxiv.org/pdf/2002.00002v1"},
    ]
    path = write_json(tmp_path, papers, name="papers.json")
    result = read_json(path, max_bytes=MAX)
    assert [c.title for c in result.candidates] == ["One", "Two"]
    assert result.candidates[0].doi == "10.1000/abc"
    assert result.candidates[0].where == f"{path} item 1"
    assert (result.candidates[1].arxiv_id, result.candidates[1].arxiv_version) == (
        "2002.00002",
        1,
    )
    assert result.warnings == [
        f"{path} item 2: skipped: no title",
        f"{path} item 3: skipped: not a JSON object (got a number)",
    ]
    assert (result.read, result.skipped) == (4, 2)


@pytest.mark.parametrize(
    ("value", "start"),
    [
        ({"title": "A paper, not a survey"}, "a JSON object without a 'papers' list"),
        ([], "an empty list"),
        (["a", "b"], "a list without JSON objects"),
        ("text", "a string"),
        (3, "a number"),
    ],
)
def test_json_of_another_shape_is_one_warning(tmp_path: Path, value: Any, start: str) -> None:
    path = write_json(tmp_path, value)
    result = read_json(path, max_bytes=MAX)
    assert result.candidates == []
    assert (result.read, result.skipped) == (1, 1)
    (warning,) = result.warnings
    assert warning.startswith(f"{path}: skipped: {start}; expected LLM×MapReduce-V2 input")


def test_json_invalid_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "survey.json"
    path.write_text('{\n  "title": "x",\n  "papers": [\n    {"title": "a"},,\n  ]\n}\n')
    result = read_json(path, max_bytes=MAX)
    assert result.candidates == []
    assert result.warnings == [f"{path}:4: skipped: invalid JSON (Expecting value at column 20)"]


def test_json_with_bom_and_bad_utf8(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"title": "Bom"}]).encode())
    assert [c.title for c in read_json(good, max_bytes=MAX).candidates] == ["Bom"]
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[{"title": "caf\xe9"}]')
    result = read_json(bad, max_bytes=MAX)
    assert result.warnings == [f"{bad}: skipped: not valid UTF-8 (byte 16)"]


# --- file-level problems --------------------------------------------------------------------


@pytest.mark.parametrize("reader", [read_jsonl, read_json])
def test_file_level_problems(tmp_path: Path, reader: Any) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\xef\xbb\xbf \n\n")
    big = write_lines(tmp_path / "big.jsonl", *({"title": f"Paper {i}"} for i in range(20)))
    missing = tmp_path / "missing.jsonl"

    assert reader(empty, max_bytes=MAX).warnings == [f"{empty}: skipped: empty file"]
    result = reader(big, max_bytes=100)
    assert result.candidates == []
    assert (result.read, result.skipped) == (1, 1)
    size = big.stat().st_size
    assert result.warnings == [
        f"{big}: skipped: larger than the 100 bytes limit ({size} bytes); "
        "raise max_file_mb in surveygen.toml or split it"
    ]
    result = reader(missing, max_bytes=MAX)
    assert result.warnings == [f"{missing}: skipped: cannot read it (No such file or directory)"]
    assert reader(tmp_path, max_bytes=MAX).warnings == [
        f"{tmp_path}: skipped: a folder, not a file"
    ]


def test_size_limit_in_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as handle:  # sparse: stat() says 100 MiB, nothing is read
        handle.truncate(100 * 1024 * 1024)
    result = read_jsonl(path, max_bytes=50_000_000)  # max_file_mb = 50
    assert result.warnings == [
        f"{path}: skipped: larger than the 50 MB limit (104.9 MB); "
        "raise max_file_mb in surveygen.toml or split it"
    ]


def test_size_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_lines(tmp_path / "papers.jsonl", {"title": "x" * 200})

    def fail(self: Path) -> bytes:
        raise AssertionError("read_bytes called")

    monkeypatch.setattr(Path, "read_bytes", fail)
    result = read_jsonl(path, max_bytes=10)
    assert "larger than the 10 bytes limit" in result.warnings[0]
