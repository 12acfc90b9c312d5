"""``surveygen check``: structure and citation report of any numeric-cited Markdown survey.

The expected numbers for tests/data/check/survey.md were counted by hand, paragraph by
paragraph (see the comments in test_the_fixture_survey).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from surveygen.check import (
    MAX_BYTES,
    CheckReport,
    check_file,
    check_survey,
    count_words,
    summary_lines,
)
from surveygen.cli import main
from surveygen.errors import InputError

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "check"
SURVEY = DATA / "survey.md"
GOLDEN = HERE / "golden" / "survey.md"

ENTRIES = "\n\n## References\n\n" + "\n".join(f"[{n}] A. Author. Title {n}. 2020." for n in (1, 2))


def survey(body: str, references: str = ENTRIES) -> CheckReport:
    return check_survey("# Title\n\n" + body + references)


def cited(body: str) -> tuple[int, list[int]]:
    """Citation occurrences in ``body`` and the distinct numbers cited, sorted."""
    report = survey(body)
    numbers = {1, 2} - set(report.uncited) | set(report.unresolved)
    return report.citations, sorted(numbers)


# --------------------------------------------------------------------------------------------
# The fixture surveys


def test_the_fixture_survey():
    report = check_file(SURVEY)
    assert report.title == "Retrieval-Augmented Language Models: A Short Survey"
    # Words per block: abstract 34, introduction 60 + 44 (the link text "11" is a word),
    # retrievers 18, sparse 29, dense 35, training 27 (code span out), fusion 15,
    # table 8 (header 4, rows 2 + 2), fusion 31 + 31, evaluation 20, list 24, conclusion 29.
    assert report.words == 405
    # 1 Introduction, 2 Retrievers, 2.1, 2.2, Training objectives, 3, 4, 5 on levels 2-4.
    assert (report.sections, report.depth) == (8, 3)
    assert report.paragraphs == 12
    # [1] + [2, 5] + [3–4] + [6-8] + [1; 9] + table [2], [10] + [10] + [12] + list [5], [9]
    # + [1, 2]; never `[99]` (code span), [98] (fenced code) or [11](https://...) (a link).
    assert report.citations == 1 + 2 + 2 + 3 + 2 + 2 + 1 + 1 + 2 + 2 == 18
    assert report.distinct_cited == 11  # 1-10 and 12
    assert report.references == 11
    assert report.unresolved == (12,)
    assert report.uncited == (11,)
    assert report.reference_coverage == round(10 / 11, 4)
    assert report.citations_per_1000_words == round(18_000 / 405, 2) == 44.44
    # abstract, the introduction's second paragraph, retrievers, fusion's first, evaluation
    assert report.uncited_paragraphs == round(5 / 12, 4)
    # The prose has 27 sentences (the list's 3 items count as sentences), none repeated.
    assert (report.sentences, report.duplicate_sentences) == (27, 0)
    assert report.duplicate_sentence_rate == 0.0


def test_the_summary_names_the_problems():
    lines = summary_lines(check_file(SURVEY))
    text = "\n".join(lines)
    assert "405 words, 8 sections (depth 3), 12 paragraphs" in text
    assert "unresolved: [12] cited with no entry in References" in lines
    assert "uncited entries: [11]" in lines
    assert "coverage 90.9%" in text


def test_to_json_is_plain_json():
    data = check_file(SURVEY).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["unresolved"] == [12]
    assert data["uncited"] == [11]
    assert data["words"] == 405
    assert set(data) == set(CheckReport.__dataclass_fields__)


def test_surveygens_own_output_checks_cleanly():
    report = check_file(GOLDEN)
    assert report.title == "Retrieval-Augmented Generation: A Survey"
    assert report.unresolved == ()
    assert report.uncited == ()
    assert report.references == 4
    assert report.citations == 8  # [1, 2], [3], [4], [1–3], [2]
    assert report.words == 30
    # Introduction, Retrievers, Dense retrieval, Sparse retrieval, Conclusion; not Abstract
    assert (report.sections, report.depth) == (5, 2)
    assert report.paragraphs == 6


def test_numbered_list_references():
    report = check_file(DATA / "numbered.md")
    assert report.references == 4  # the wrapped "2009." line is not entry 2009
    assert report.citations == 4  # [1], [2-3], [3]
    assert report.uncited == (4,)
    assert report.unresolved == ()
    assert report.words == 10 + 11 + 7
    assert (report.sections, report.depth) == (2, 1)


def test_a_bibliography_heading_and_an_appendix_after_it():
    report = check_file(DATA / "bibliography.md")
    assert report.title == "Dense Retrieval Notes"  # a setext heading
    assert report.references == 2
    assert report.unresolved == ()  # the appendix's [7] is not in the body
    assert report.words == 9
    assert (report.sections, report.depth) == (0, 0)


def test_a_survey_without_references_is_an_input_error():
    with pytest.raises(InputError) as error:
        check_file(DATA / "no_references.md")
    assert "no_references.md" in error.value.message
    assert "References" in error.value.message
    assert "## References" in str(error.value)  # the hint shows what is expected


def test_a_references_section_without_numbered_entries_is_an_input_error():
    with pytest.raises(InputError, match="no numbered entry"):
        check_survey("# T\n\nText [1].\n\n## References\n\nLewis et al. RAG. 2020.\n")
    with pytest.raises(InputError, match="no numbered entry"):
        check_survey("# T\n\nText[^1].\n\n## References\n\n[^1]: Lewis et al. RAG.\n")


# --------------------------------------------------------------------------------------------
# Citations


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("A [1] b [2, 5] c [3–4] d [6-8] e [1; 9].", (10, [1, 2, 3, 4, 5, 6, 7, 8, 9])),
        ("Em dash [2—4], spaced [ 2 ,1 ], adjacent [1][2].", (7, [1, 2, 3, 4])),
        ("Largest [9999] but not [0], [10000], [01] or [8-6].", (1, [9999])),
        ("Not a locator [1, p. 5] nor words [Smith, 2020].", (0, [])),
        ("Code `x[1]` and ``y [2] z``.", (0, [])),
        ("Fenced:\n\n```\ny = x[1]\n```\n\n~~~\n[2]\n~~~", (0, [])),
        ("Para.\n\n    indented = code[1]", (0, [])),
        ("Math $a_{[1]}$ and $$b[2]$$ and\n\n$$\nc[1]\n$$", (0, [])),
        ("Money $5 and [1] $6 is not math.", (1, [1])),
        ("Links [1](http://x.org) [see [2]](http://x.org) ![fig [1]](f.png).", (0, [])),
        ("Autolink <https://x.org/[1]> and <!-- [2] --> comment.", (0, [])),
        ("Footnote[^1] and a reference link [Smith][2], escaped \\[1].", (0, [])),
        ("Text.\n\n[1]: http://x.org/definition", (0, [])),
        ("## Method [1]\n\nIn a heading.", (1, [1])),
        ("| a | b |\n|---|---|\n| x [1] | y [2] |", (2, [1, 2])),
        ("- item [1]\n- item [2, 3]", (3, [1, 2, 3])),
    ],
)
def test_what_counts_as_a_citation(body, expected):
    assert cited(body) == expected


def test_reference_entry_forms():
    references = "\n\n## References\n\n**[1]** A.\n\n[2]: B.\n\n[3]. C.\n\n- [4] D.\n\n5) E.\n"
    report = survey("Cites [1-5].", references)
    assert (report.references, report.uncited, report.unresolved) == (5, (), ())


def test_a_list_numbered_1_throughout_counts_up():
    report = survey("Cites [2].", "\n\n## References\n\n1. A.\n1. B.\n1. C.\n")
    assert report.references == 3
    assert report.uncited == (1, 3)


def test_a_bold_references_line_and_a_numbered_heading_are_recognised():
    assert survey("Cites [1].", "\n\n**References:**\n\n[1] A.\n").unresolved == ()
    assert survey("Cites [1].", "\n\n## 7. REFERENCES\n\n[1] A.\n").unresolved == ()


def test_a_wrapped_entry_does_not_invent_one():
    report = survey("Cites [1].", "\n\n## References\n\n[1] A. Title. NeurIPS,\n2020. Proc.\n")
    assert report.references == 1


# --------------------------------------------------------------------------------------------
# Words and structure


@pytest.mark.parametrize(
    ("markdown", "words"),
    [
        ("GPT-4 and retrieval-augmented models cost 3.5 — | x", 7),
        ("# Title\n\n## Section\n\nOne two.", 2),
        ("- one\n- two\n\n1. three\n2) four", 4),
        ("[the page](http://x.org/a-b) here, ![alt text](a.png) there", 4),
        ("| a | b |\n|---|---|\n| c d | e |", 5),
        ("---\ntitle: x y\n---\n\nOne.", 1),
        ("Word[^1] more.\n\n[^1]: A footnote.", 2),
        ("<b>bold</b>&nbsp;text <https://x.org>", 2),
        ("Before `code here` after [1, 2].\n\n```\nnot words\n```", 2),
        ("Body words.\n\n## References\n\n[1] Not counted.", 2),
    ],
)
def test_count_words(markdown, words):
    assert count_words(markdown) == words


def test_count_words_agrees_with_the_report():
    text = SURVEY.read_text(encoding="utf-8")
    body = text.split("\n## References", 1)[0]
    assert count_words(text) == count_words(body) == check_survey(text).words == 405


def test_title_sections_and_depth():
    report = check_survey(
        "## Abstract\n\nA.\n\n## Intro\n\nB [1].\n\n#### Deep\n\nC.\n\n## References\n\n[1] X."
    )
    assert report.title is None  # the first heading is not level 1
    assert (report.sections, report.depth) == (2, 2)  # Abstract excluded; levels 2 and 4
    report = check_survey("# Abstract\n\nA.\n\n## Intro\n\nB [1].\n\n# References\n\n[1] X.")
    assert (report.title, report.sections, report.depth) == (None, 1, 1)


def test_a_sentence_repeated_in_a_later_section_is_a_duplicate():
    repeated = "Dense retrievers embed queries and passages into one shared vector space"
    report = survey(
        f"## Dense\n\n{repeated} [1]. They need training pairs.\n\n"
        f"## Outlook\n\nAs noted, more work is needed.\n\n{repeated} [2].\n"
    )
    assert (report.sentences, report.duplicate_sentences) == (4, 1)
    assert report.duplicate_sentence_rate == 0.25


def test_lists_tables_and_code_are_not_paragraphs():
    report = survey("Prose [1].\n\n> Quoted prose.\n\n- a list\n\n| t |\n|---|\n| x |\n")
    assert report.paragraphs == 2
    assert report.uncited_paragraphs == 0.5


# --------------------------------------------------------------------------------------------
# Files


def test_bad_files_are_input_errors(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    binary = tmp_path / "survey.pdf"
    binary.write_bytes(b"%PDF-1.7\x00\x01\x02")
    latin = tmp_path / "latin.md"
    latin.write_bytes("# Résumé\n".encode("latin-1"))
    empty = tmp_path / "empty.md"
    empty.write_text(" \n\n")
    huge = tmp_path / "huge.md"
    with huge.open("wb") as f:
        f.truncate(MAX_BYTES + 1)
    cases = {
        tmp_path / "missing.md": "no such file",
        folder: "is a folder",
        binary: "binary",
        latin: "not UTF-8",
        empty: "is empty",
        huge: "MB",
    }
    for path, needle in cases.items():
        with pytest.raises(InputError) as error:
            check_file(path)
        assert needle in error.value.message
        assert str(path) in error.value.message


def test_a_byte_order_mark_and_crlf_are_fine(tmp_path):
    path = tmp_path / "windows.md"
    path.write_bytes(b"\xef\xbb\xbf# T\r\n\r\nText [1].\r\n\r\n## References\r\n\r\n[1] A.\r\n")
    report = check_file(path)
    assert (report.title, report.words, report.references, report.unresolved) == ("T", 1, 1, ())


# --------------------------------------------------------------------------------------------
# CLI


def run(*args: str):
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def test_cli_prints_the_report_and_exits_0_on_findings():
    result = run(str(SURVEY))
    assert result.exit_code == 0
    assert "unresolved: [12] cited with no entry in References" in result.stdout
    assert result.stderr == ""


def test_cli_json():
    result = run(str(SURVEY), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["file"] == str(SURVEY)
    assert (data["words"], data["unresolved"], data["uncited"]) == (405, [12], [11])


def test_cli_strict_fails_on_unresolved_citations_only():
    result = run(str(SURVEY), "--strict")
    assert result.exit_code == 1
    assert "1 cited number(s) with no entry" in result.stderr
    assert "survey.md" in result.stderr
    assert run(str(GOLDEN), "--strict").exit_code == 0


@pytest.mark.parametrize(
    ("name", "needle"),
    [("missing.md", "missing.md: no such file"), ("no_references.md", "no References")],
)
def test_cli_bad_input_exits_2_with_a_message(name, needle):
    result = run(str(DATA / name))
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
