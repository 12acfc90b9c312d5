"""Rendering references.bib: golden file, valid BibTeX whatever the metadata holds (checked with
bibtexparser 2.x), and (marked slow) URLs surviving BibTeX and LaTeX into the PDF.

Regenerate the golden file with ``SURVEYGEN_UPDATE_GOLDEN=1 pytest tests/test_bibtex.py``.
"""

from __future__ import annotations

import bibtexparser
import pytest
from renderdata import (
    assert_no_undefined_citations,
    build_latex,
    check_golden,
    hostile_papers,
    make_doc,
    make_papers,
)

from surveygen.document import DocSection, SurveyDoc
from surveygen.models import Paper
from surveygen.stages.render import render_bibtex, render_latex, render_markdown
from surveygen.stages.render_bib import bib_name


def parse(bib: str) -> bibtexparser.Library:
    library = bibtexparser.parse_string(bib)
    assert not library.failed_blocks, [block.error for block in library.failed_blocks]
    return library


def fields(library: bibtexparser.Library, key: str) -> dict[str, str]:
    entry = next(entry for entry in library.entries if entry.key == key)
    return {field.key: field.value for field in entry.fields}


def balanced(value: str) -> bool:
    depth = 0
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def cited_papers() -> list[Paper]:
    papers = make_papers()
    return [papers[key] for key in render_markdown(make_doc(), papers).cited]


def test_references_bib_matches_golden() -> None:
    check_golden("references.bib", render_bibtex(cited_papers()))


def test_entries_in_the_given_order_each_once() -> None:
    papers = cited_papers()
    library = parse(render_bibtex([*papers, papers[0]]))
    assert [entry.key for entry in library.entries] == [paper.key for paper in papers]


def test_entry_types_and_fields() -> None:
    library = parse(render_bibtex(cited_papers()))
    types = {entry.key: entry.entry_type for entry in library.entries}
    assert types == {
        "lewis2020retrieval": "article",
        "guu2020realm": "misc",
        "vaswani2017attention": "misc",
        "karpukhin2020dense": "misc",
        "guu2020second": "article",
    }
    assert fields(library, "lewis2020retrieval") == {
        "author": "Lewis, Patrick and Ethan Perez",
        "title": "{Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks}",
        "journal": "NeurIPS",
        "year": "2020",
        "url": "https://proceedings.neurips.cc/paper/2020/hash/6b493230",
    }
    vaswani = fields(library, "vaswani2017attention")
    assert vaswani["eprint"] == "1706.03762"
    assert vaswani["archivePrefix"] == "arXiv"
    assert vaswani["howpublished"] == "arXiv:1706.03762"
    assert vaswani["title"] == "{Attention Is All You Need}"
    guu = fields(library, "guu2020realm")
    assert guu["doi"] == "10.48550/arXiv.2002.08909"
    assert guu["url"] == "https://doi.org/10.48550/arXiv.2002.08909"
    assert "year" not in fields(library, "karpukhin2020dense")


def test_names() -> None:
    assert bib_name("Ashish Vaswani") == "Ashish Vaswani"
    assert bib_name("Lewis, Patrick") == "Lewis, Patrick"
    assert bib_name("{OpenAI}") == "{OpenAI}"
    assert bib_name("Research and Development Team") == "{Research and Development Team}"
    assert bib_name("Smith AND Wesson") == "{Smith AND Wesson}"
    assert bib_name("Anderson, Sandy") == "Anderson, Sandy"
    assert bib_name("A, B, C, D") == "{A, B, C, D}"
    assert bib_name("Nguyễn Văn A") == r"Nguy{\~{\^{e}}}n Văn A"


def test_authorless_paper_gets_a_label_key() -> None:
    bib = render_bibtex([Paper("anon2020", "REALM: Retrieval", (), 2020)])
    assert fields(parse(bib), "anon2020")["key"] == "REALM"


def test_invalid_key_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be used"):
        render_bibtex([Paper("bad key}", "T")])


def test_hostile_metadata_stays_valid_bibtex() -> None:
    library = parse(render_bibtex(list(hostile_papers().values())))
    assert [entry.key for entry in library.entries] == ["evil2024", "plain2023"]
    evil = fields(library, "evil2024")
    for name, value in evil.items():
        assert balanced(value), (name, value)
        assert "\\input{" not in value
    assert evil["author"].count(" and ") == 3  # three authors, one of them "Lee, Bob and Co"
    assert "{Lee, Bob and Co}" in evil["author"]
    assert evil["title"].startswith(r"{Title 50\% of \$x\_1\$ \& \#tags \textbackslash{}input")
    assert evil["journal"].startswith(r"Venue 50\% of \$x\_1\$ \& {\textbraceleft}\#tags")
    assert evil["url"] == (
        "https://example.org/a_b%20c#frag~x%22%3E%3Cscript%3Ealert(1)%3C/script%3E%7B%5C%7D"
    )


@pytest.mark.slow
def test_urls_survive_bibtex_and_latex(tmp_path) -> None:
    papers = {
        "url2024": Paper(
            "url2024",
            "A Paper With a Difficult URL",
            ("Ann Author",),
            2024,
            venue="Journal of Links",  # an @article: natbib's @misc prints no doi
            url="https://example.org/a_b%20c#frag~x",
            doi="10.1000/x_y%2F~#z",
        )
    }
    doc = SurveyDoc("T", "", (DocSection("s", "S", 1, "Cited [@url2024]."),))
    build = build_latex(tmp_path, render_latex(doc, papers), render_bibtex(list(papers.values())))
    assert_no_undefined_citations(build)
    assert r"\url{https://example.org/a_b%20c#frag~x}" in build.bbl
    assert r"\doi{10.1000/x_y%2F~#z}" in build.bbl
    assert "https://example.org/a_b%20c#frag~x" in build.uris()
    text = "".join(build.text().split())
    assert "https://example.org/a_b%20c#frag~x" in text
    assert "10.1000/x_y%2F~#z" in text


@pytest.mark.slow
def test_hostile_bib_builds(tmp_path) -> None:
    papers = hostile_papers()
    doc = SurveyDoc("T", "", (DocSection("s", "S", 1, "Cited [@evil2024; @plain2023]."),))
    build = build_latex(tmp_path, render_latex(doc, papers), render_bibtex(list(papers.values())))
    assert_no_undefined_citations(build)
    text = "".join(build.text().split())
    assert "root:" not in text
    assert "Title50%of$x_1$&#tags" in text
