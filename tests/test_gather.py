from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from surveygen.errors import InputError, NotImplementedYet
from surveygen.stages.gather import GatherResult, load_library, make_key

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_library.jsonl"


def write_lines(path: Path, *lines: Any) -> Path:
    """Write each item as one line: dicts as JSON, str and bytes as given."""
    with path.open("wb") as handle:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, ensure_ascii=False)
            if isinstance(line, str):
                line = line.encode("utf-8")
            handle.write(line + b"\n")
    return path


def load(tmp_path: Path, *lines: Any, **kwargs: Any) -> GatherResult:
    return load_library([write_lines(tmp_path / "papers.jsonl", *lines)], **kwargs)


# --- good input ---------------------------------------------------------------------------


def test_full_entry(tmp_path: Path) -> None:
    entry = {
        "title": "Attention  Is All\nYou Need",
        "authors": ["Ashish Vaswani", "Noam Shazeer"],
        "year": 2017,
        "abstract": " The Transformer. ",
        "text": "Full text here.",
        "arxiv_id": "1706.03762",
        "doi": "10.5555/3295222.3295349",
        "url": "https://arxiv.org/abs/1706.03762",
        "venue": "NeurIPS",
        "extra": {"anything": 1},
        "cited_by": 100000,
    }
    result = load(tmp_path, entry)
    assert result.warnings == ()
    assert (result.read, result.skipped) == (1, 0)
    (paper,) = result.papers
    assert paper.key == "vaswani2017attention"
    assert paper.title == "Attention Is All You Need"
    assert paper.authors == ("Ashish Vaswani", "Noam Shazeer")
    assert paper.year == 2017
    assert paper.abstract == "The Transformer."
    assert paper.text == "Full text here."
    assert paper.arxiv_id == "1706.03762"
    assert paper.doi == "10.5555/3295222.3295349"
    assert paper.venue == "NeurIPS"
    assert paper.source == "file:papers.jsonl"


def test_minimal_entry_and_given_source(tmp_path: Path) -> None:
    result = load(tmp_path, {"title": "Only a title"}, {"title": "B", "source": "arxiv"})
    first, second = result.papers
    assert first.authors == () and first.year is None and first.abstract == ""
    assert first.arxiv_id is None and first.text == ""
    assert first.key == "anonndonly"
    assert second.source == "arxiv"


def test_full_text_false_drops_text(tmp_path: Path) -> None:
    result = load(tmp_path, {"title": "T", "text": "long body"}, full_text=False)
    assert result.papers[0].text == ""


def test_blank_lines_are_skipped_silently(tmp_path: Path) -> None:
    result = load(tmp_path, "", {"title": "A"}, "   ", "\t", {"title": "B"})
    assert len(result.papers) == 2
    assert result.warnings == ()
    assert (result.read, result.skipped) == (2, 0)


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"title": "A"}\r\n{"title": "B"}\r\n')
    result = load_library([path])
    assert [p.title for p in result.papers] == ["A", "B"]
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("authors", "expected"),
    [
        ("Ashish Vaswani and Noam Shazeer", ("Ashish Vaswani", "Noam Shazeer")),
        ("Vaswani, Ashish and Shazeer, Noam", ("Vaswani, Ashish", "Shazeer, Noam")),
        (
            "Ashish Vaswani; Noam Shazeer ;Niki Parmar",
            ("Ashish Vaswani", "Noam Shazeer", "Niki Parmar"),
        ),
        ("Ashish Vaswani", ("Ashish Vaswani",)),
        (["  Ashish  Vaswani ", "", "Noam Shazeer"], ("Ashish Vaswani", "Noam Shazeer")),
        ([], ()),
        (None, ()),
    ],
)
def test_author_forms(tmp_path: Path, authors: Any, expected: tuple[str, ...]) -> None:
    result = load(tmp_path, {"title": "Attention Is All You Need", "authors": authors})
    assert result.papers[0].authors == expected
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("year", "expected"), [(2017, 2017), ("2017", 2017), (None, None), ("", None)]
)
def test_good_years(tmp_path: Path, year: Any, expected: int | None) -> None:
    result = load(tmp_path, {"title": "T", "year": year})
    assert result.papers[0].year == expected
    assert result.warnings == ()


@pytest.mark.parametrize("year", ["17", "2017a", 1850, 2500, True, 2017.5, "circa 2017", [2017]])
def test_bad_year_is_ignored_with_a_warning(tmp_path: Path, year: Any) -> None:
    result = load(tmp_path, {"title": "T", "year": year})
    assert result.papers[0].year is None
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(f"{tmp_path / 'papers.jsonl'}:1: year ")


# --- malformed lines ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ('["a", "list"]', "not a JSON object (got list)"),
        ('"a string"', "not a JSON object (got str)"),
        ({"authors": ["A B"]}, "no title"),
        ({"title": ""}, "no title"),
        ({"title": "   "}, "no title"),
        ({"title": None}, "no title"),
        ({"title": 42}, "'title' must be a non-empty string"),
        ({"title": "T", "authors": 42}, "'authors' must be a list of strings or a string"),
        ({"title": "T", "authors": ["A", 3]}, "'authors' must be a list of strings or a string"),
        ({"title": "T", "abstract": ["x"]}, "'abstract' must be a string"),
        ({"title": "T", "arxiv_id": 1706.03762}, "'arxiv_id' must be a string"),
        (b'{"title": "caf\xe9"}', "not valid UTF-8"),
    ],
)
def test_malformed_line_is_skipped_with_one_warning(tmp_path: Path, line: Any, reason: str) -> None:
    result = load(tmp_path, {"title": "Good one"}, line, {"title": "Good two"})
    assert [p.title for p in result.papers] == ["Good one", "Good two"]
    assert (result.read, result.skipped) == (3, 1)
    assert len(result.warnings) == 1
    prefix = f"{tmp_path / 'papers.jsonl'}:2: skipped: "
    assert result.warnings[0].startswith(prefix + reason)


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    result = load(tmp_path, {"title": "A"}, "", "", "oops")
    assert result.warnings == (
        f"{tmp_path / 'papers.jsonl'}:4: skipped: invalid JSON (Expecting value at column 1)",
    )


def test_zero_papers_is_an_error(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "a.jsonl", "nope", {"title": ""})
    b = write_lines(tmp_path / "b.jsonl", "")
    with pytest.raises(InputError) as info:
        load_library([a, b])
    message = str(info.value)
    assert str(a) in message and str(b) in message
    assert "2 skipped" in message
    assert info.value.exit_code == 2


def test_file_with_zero_papers_is_fine_when_others_have_some(tmp_path: Path) -> None:
    empty = write_lines(tmp_path / "empty.jsonl", "")
    good = write_lines(tmp_path / "good.jsonl", {"title": "A"})
    result = load_library([empty, good])
    assert len(result.papers) == 1
    assert result.papers[0].source == "file:good.jsonl"


# --- paths --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match="no such file") as info:
        load_library([missing])
    assert f"--papers {missing}" in str(info.value)


def test_missing_file_is_reported_before_reading_others(tmp_path: Path) -> None:
    good = write_lines(tmp_path / "good.jsonl", {"title": "A"})
    with pytest.raises(InputError, match="no such file"):
        load_library([good, tmp_path / "nope.jsonl"])


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("refs.bib", ".bib files"),
        ("paper.pdf", "PDF files"),
        ("notes.txt", ".txt files"),
        ("notes.md", ".md files"),
        ("input.json", ".json files"),
        ("PAPER.PDF", "PDF files"),
    ],
)
def test_unsupported_kinds(tmp_path: Path, name: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text("x", encoding="utf-8")
    with pytest.raises(NotImplementedYet) as info:
        load_library([path])
    assert str(info.value) == (
        f"--papers with {kind} is not implemented yet (coming with the gather issue (#3))."
    )


def test_directory_is_not_supported_yet(tmp_path: Path) -> None:
    with pytest.raises(NotImplementedYet, match="--papers with a directory"):
        load_library([tmp_path])


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "papers.csv"
    path.write_text("title\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unsupported file type '\.csv'"):
        load_library([path])


def test_no_paths() -> None:
    with pytest.raises(InputError, match="no usable papers"):
        load_library([])


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_titles_keep_the_first(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        {"title": "Attention Is All You Need", "year": 2017},
        {"title": "attention is all you need.", "year": 2018},
        {"title": "Attention  is  all you NEED", "year": "bad"},
        {"title": "Another paper"},
    )
    assert [p.year for p in result.papers] == [2017, None]
    assert (result.read, result.skipped) == (4, 2)
    assert len(result.warnings) == 2  # the bad year of a skipped duplicate is not reported
    assert all("skipped: duplicate title of" in w for w in result.warnings)
    assert result.warnings[0].endswith("papers.jsonl:1")


def test_duplicates_across_files(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "a.jsonl", {"title": "Same"})
    b = write_lines(tmp_path / "b.jsonl", {"title": "Same"}, {"title": "Other"})
    result = load_library([a, b])
    assert [p.source for p in result.papers] == ["file:a.jsonl", "file:b.jsonl"]
    assert result.skipped == 1


# --- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authors", "year", "title", "key"),
    [
        (
            ["Ashish Vaswani", "Noam Shazeer"],
            2017,
            "Attention Is All You Need",
            "vaswani2017attention",
        ),
        (["Vaswani, Ashish"], 2017, "Attention Is All You Need", "vaswani2017attention"),
        (["Ludwig van Beethoven"], 1990, "On the Symphony", "beethoven1990symphony"),
        (["van der Berg, Jan"], 2001, "A Study", "berg2001study"),
        (["Jan van der Berg"], 2001, "A Study", "berg2001study"),
        (["Thomas Müller"], 2020, "Über Alles", "muller2020uber"),
        (["Barlas Oğuz"], 2020, "Dense Passage Retrieval", "oguz2020dense"),
        (["Martin Luther King Jr."], 1963, "I Have a Dream", "king1963i"),
        (["Jean-Luc Picard-Smith"], 2364, "Towards the Stars", "picardsmith2364stars"),
        ([], 2020, "Deep Learning", "anon2020deep"),
        (["", "  "], 2020, "Deep Learning", "anon2020deep"),
        (["王小明"], 2021, "Deep Learning", "anon2021deep"),
        (["A Smith"], None, "Deep Learning", "smithnddeep"),
        (
            ["A Smith"],
            2020,
            "BERT: Pre-training of Deep Bidirectional Transformers",
            "smith2020bert",
        ),
        (["A Smith"], 2023, "Self-RAG: Learning to Retrieve", "smith2023self"),
        (["A Smith"], 2020, "The", "smith2020"),
        (["A Smith"], 2020, "3D Vision for the Masses", "smith20203d"),
    ],
)
def test_make_key(authors: list[str], year: int | None, title: str, key: str) -> None:
    assert make_key(authors, year, title, set()) == key


def test_make_key_disambiguates_without_mutating_taken() -> None:
    taken = {"smith2020deep", "smith2020deepa"}
    assert make_key(["A Smith"], 2020, "Deep nets", taken) == "smith2020deepb"
    assert taken == {"smith2020deep", "smith2020deepa"}
    many = {"x2020y"} | {"x2020y" + chr(c) for c in range(ord("a"), ord("z") + 1)}
    assert make_key(["Q X"], 2020, "Y", many) == "x2020yaa"


def test_keys_disambiguated_in_input_order(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        {"title": "Deep learning one", "authors": ["Ann Smith"], "year": 2020},
        {"title": "Deep learning two", "authors": ["Bob Smith"], "year": 2020},
        {"title": "Deep learning three", "authors": "Smith, Carl", "year": "2020"},
    )
    assert [p.key for p in result.papers] == ["smith2020deep", "smith2020deepa", "smith2020deepb"]


def test_valid_given_keys_are_kept(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        {"title": "A", "key": "Vaswani:2017_attn-v1.2"},
        {"title": "B", "key": "smith2020deep", "authors": ["X Smith"], "year": 2020},
        {"title": "Deep C", "authors": ["Y Smith"], "year": 2020},
    )
    assert [p.key for p in result.papers] == [
        "Vaswani:2017_attn-v1.2",
        "smith2020deep",
        "smith2020deepa",
    ]
    assert result.warnings == ()


@pytest.mark.parametrize("bad", ["_leading", "has space", "semi;colon", "ümlaut", "a{b}", "-x"])
def test_invalid_given_keys_are_replaced(tmp_path: Path, bad: str) -> None:
    result = load(tmp_path, {"title": "Deep C", "authors": ["Y Smith"], "year": 2020, "key": bad})
    assert result.papers[0].key == "smith2020deep"
    assert len(result.warnings) == 1
    assert "is not valid" in result.warnings[0] and "smith2020deep" in result.warnings[0]


def test_taken_given_key_is_replaced(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        {"title": "First", "key": "mykey"},
        {"title": "Deep second", "authors": ["Y Smith"], "year": 2020, "key": "MyKey"},
    )
    assert [p.key for p in result.papers] == ["mykey", "smith2020deep"]
    assert "already used" in result.warnings[0]


def test_generated_key_avoids_later_given_key_clash(tmp_path: Path) -> None:
    # A generated key is assigned first; a later given key equal to it is then taken.
    result = load(
        tmp_path,
        {"title": "Deep one", "authors": ["A Smith"], "year": 2020},
        {"title": "Other", "key": "smith2020deep"},
    )
    assert result.papers[0].key == "smith2020deep"
    assert result.papers[1].key == "anonndother"
    assert len(result.warnings) == 1


def test_keys_are_stable_across_loads(tmp_path: Path) -> None:
    lines = [{"title": f"Deep study {i}", "authors": ["A Smith"], "year": 2020} for i in range(5)]
    first = load(tmp_path, *lines)
    second = load(tmp_path, *lines)
    assert [p.key for p in first.papers] == [p.key for p in second.papers]
    assert first.papers == second.papers


# --- the sample library -------------------------------------------------------------------


def test_sample_library_loads_cleanly() -> None:
    result = load_library([SAMPLE])
    assert result.warnings == ()
    assert len(result.papers) == 8
    assert (result.read, result.skipped) == (8, 0)
    keys = [p.key for p in result.papers]
    assert len(set(keys)) == 8
    assert "lewis2020retrieval" in keys and "karpukhin2020dense" in keys
    for paper in result.papers:
        assert paper.authors and paper.year and paper.arxiv_id
        assert paper.abstract.count(". ") >= 3
        assert paper.source == "file:sample_library.jsonl"


@pytest.mark.parametrize("given", ["smith2020.", "smith-", "smith:"])
def test_given_keys_the_citation_parser_cannot_read_whole_are_replaced(
    tmp_path: Path, given: str
) -> None:
    from surveygen.citations import find_citations

    path = tmp_path / "lib.jsonl"
    path.write_text(
        json.dumps({"title": "Deep Things", "authors": ["Ann Smith"], "year": 2020, "key": given})
        + "\n",
        encoding="utf-8",
    )
    key = load_library([path]).papers[0].key
    assert key != given
    assert find_citations(f"[@{key}]") == [key]
