"""The citation functions: what counts as a citation, the guard, numbering and conversion."""

from __future__ import annotations

import pytest

from surveygen.citations import (
    GuardResult,
    citation_order,
    find_citations,
    format_numbers,
    guard_citations,
    to_numeric,
    to_pandoc,
)

KNOWN = {"lewis2020retrieval", "guu2020realm", "a", "b", "c"}


# --- recognition -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("as shown [@a].", ["a"]),
        ("both [@lewis2020retrieval; @guu2020realm].", ["lewis2020retrieval", "guu2020realm"]),
        ("commas [@a, @b] too", ["a", "b"]),
        ("tight [@a;@b,@c]", ["a", "b", "c"]),
        ("spaces [ @a ; @b ]", ["a", "b"]),
        ("wrapped [@a;\n@b]", ["a", "b"]),
        ("keys with punctuation [@doe:2020.x-y_z]", ["doe:2020.x-y_z"]),
        ("trailing period in group [@a.]", ["a"]),
        ("trailing separator [@a;]", ["a"]),
        ("Uppercase and digits [@Vaswani2017; @2004smith]", ["Vaswani2017", "2004smith"]),
        ("repeats [@a] and [@b; @a]", ["a", "b", "a"]),
    ],
)
def test_find_citations_recognises_groups(text: str, keys: list[str]) -> None:
    assert find_citations(text) == keys


@pytest.mark.parametrize(
    "text",
    [
        "numbers are not citations [1], [1, 2], [4-6]",
        "neither are names [Smith et al.] or [Smith et al., 2020]",
        "a link [@a](https://example.org) or [text](https://example.org/@a)",
        "an image ![@a](figure.png)",
        "inline code `[@a]` and ``code with ` [@b]``",
        "```\n[@a]\n```",
        "~~~python\nx = '[@a]'\n~~~",
        "math $f([@a])$",
        "a comment <!-- [@a] -->",
        "escaped \\[@a]",
        "not a key [@] or [@-a] or [@ a b]",
        "an e-mail address me@example.org",
        "a bare @a outside brackets",
    ],
)
def test_find_citations_ignores_non_citations(text: str) -> None:
    assert find_citations(text) == []


def test_unclosed_code_fence_protects_to_the_end() -> None:
    assert find_citations("[@a] then\n```\n[@b]\nnever closed") == ["a"]


def test_key_stops_before_trailing_punctuation() -> None:
    # the "." that ends the key inside the group is punctuation, not part of the key
    assert find_citations("[@smith2020.]") == ["smith2020"]


# --- the guard -------------------------------------------------------------------------------


def test_guard_keeps_known_citations_untouched() -> None:
    text = "Known [@a, @b] and [@lewis2020retrieval]."
    assert guard_citations(text, KNOWN) == GuardResult(text, (), 0)


def test_guard_removes_unknown_keys_from_mixed_groups() -> None:
    result = guard_citations("Mixed [@a; @ghost; @b] and [@phantom, @c].", KNOWN)
    assert result.text == "Mixed [@a; @b] and [@c]."
    assert result.removed == ("ghost", "phantom")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shown [@ghost].", "shown."),
        ("shown [@ghost], and more", "shown, and more"),
        ("shown [@ghost] here", "shown here"),
        ("shown [@ghost]", "shown"),
        ("two [@ghost] [@phantom].", "two."),
        ("[@ghost] Starts a line.", "Starts a line."),
        ("- [@ghost] in a list", "- in a list"),
        ("  [@ghost] indented", "  indented"),
        ("shown ([@ghost]).", "shown."),
        ("shown ([@ghost]; see also X).", "shown (see also X)."),
        ("first line.\n[@ghost]\nnext line", "first line.\nnext line"),
        ("shown [@ghost][@a].", "shown [@a]."),
    ],
)
def test_guard_removes_empty_groups_without_artefacts(text: str, expected: str) -> None:
    assert guard_citations(text, KNOWN).text == expected


def test_guard_never_remaps_a_near_miss() -> None:
    # one letter away from a known key: removed and reported, never "corrected"
    result = guard_citations("RAG [@lewis2020retreival].", KNOWN)
    assert result.text == "RAG."
    assert result.removed == ("lewis2020retreival",)
    result = guard_citations("Case matters [@A].", KNOWN)
    assert result.text == "Case matters."
    assert result.removed == ("A",)


def test_guard_reports_each_unknown_key_once_in_order() -> None:
    result = guard_citations("[@z] [@y; @a] [@z]", KNOWN)
    assert result.removed == ("z", "y")


def test_guard_removes_and_counts_stray_numeric_brackets() -> None:
    result = guard_citations("One [3], two [1, 2], range [4-6], dash [7–9]; kept [@a].", KNOWN)
    assert result.text == "One, two, range, dash; kept [@a]."
    assert result.stray_numeric == 4
    assert result.removed == ()


@pytest.mark.parametrize(
    "text",
    [
        "an interval [0, 1] or [0.5, 2] or [-1, 1]",
        "a footnote[^1] and a task [ ] and [x]",
        "a link [1](https://example.org) and a reference link [text][2]",
        "[1]: https://example.org",
        "code `[@ghost] [3]` and $x_{[2]}$",
        "```\n[@ghost] [3]\n```",
        "[Smith et al.] and [see below]",
    ],
)
def test_guard_leaves_protected_and_non_citation_text_alone(text: str) -> None:
    assert guard_citations(text, KNOWN) == GuardResult(text, (), 0)


def test_guard_accepts_any_collection_of_keys() -> None:
    papers = {"a": object(), "b": object()}
    assert guard_citations("[@a; @x]", papers.keys()).text == "[@a]"


# --- numbering and conversion ----------------------------------------------------------------


def test_citation_order_numbers_first_use_across_texts() -> None:
    texts = ["Intro [@b] and [@a; @b].", "", "Body [@c, @a]."]
    assert citation_order(texts) == {"b": 1, "a": 2, "c": 3}


def test_citation_order_ignores_protected_text() -> None:
    assert citation_order(["`[@z]` then [@a]"]) == {"a": 1}


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ([1], "1"),
        ([2, 1], "1, 2"),
        ([3, 1, 2], "1–3"),
        ([1, 2, 3, 5, 7, 8], "1–3, 5, 7, 8"),
        ([4, 4, 5, 6, 7, 10], "4–7, 10"),
    ],
)
def test_format_numbers_sorts_and_collapses_runs(numbers: list[int], expected: str) -> None:
    assert format_numbers(numbers) == expected


def test_to_numeric_converts_groups_in_place() -> None:
    numbers = {"a": 2, "b": 1, "c": 3, "d": 5}
    text = "See [@a; @b], [@c, @b, @a] and [@d]; `[@a]` stays."
    assert to_numeric(text, numbers) == "See [1, 2], [1–3] and [5]; `[@a]` stays."


def test_to_numeric_raises_on_unguarded_keys() -> None:
    with pytest.raises(KeyError, match="ghost"):
        to_numeric("Fine [@a] but not [@a; @ghost].", {"a": 1})


def test_to_pandoc_normalises_every_style() -> None:
    text = "[@a, @b] [ @c ;@a ] [@b.] `[@a,@b]` [x](y)"
    assert to_pandoc(text) == "[@a; @b] [@c; @a] [@b] `[@a,@b]` [x](y)"
    assert to_pandoc(to_pandoc(text)) == to_pandoc(text)


def test_citation_spans_give_offsets_and_keys_and_skip_protected_text() -> None:
    from surveygen.citations import citation_spans, markup_spans

    text = "Shown [@a; @b]. Code `[@c]` and [link](http://x) then [@d]."
    spans = citation_spans(text)
    assert [(text[s.start : s.end], s.keys) for s in spans] == [
        ("[@a; @b]", ("a", "b")),
        ("[@d]", ("d",)),
    ]
    kinds = [s.kind for s in markup_spans(text)]
    assert kinds == ["cite", "code", "link", "cite"]
