"""Rendering survey.md and outline.md, and reading outline.md back.

Golden files live in tests/golden/. After an intended change to a template, regenerate them
with ``SURVEYGEN_UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest

from surveygen import __version__
from surveygen.errors import InputError
from surveygen.models import Outline, OutlineNode, Paper, Section
from surveygen.outline_md import parse_outline_md
from surveygen.resources import resource_dir
from surveygen.stages.render import (
    format_authors,
    format_name,
    make_env,
    render_markdown,
    render_outline_md,
)

GOLDEN = Path(__file__).parent / "golden"
# Read at import: conftest's autouse fixture removes every SURVEYGEN_* variable before a test.
UPDATE_GOLDEN = os.environ.get("SURVEYGEN_UPDATE_GOLDEN") == "1"


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/<name>; SURVEYGEN_UPDATE_GOLDEN=1 rewrites it instead."""
    # The version changes with every release; the golden files should not.
    actual = actual.replace(f"surveygen {__version__}", "surveygen X.Y.Z")
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
    assert path.exists(), f"{path} is missing; run with SURVEYGEN_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8")


@pytest.fixture
def outline() -> Outline:
    return Outline(
        title="Retrieval-Augmented Generation: A Survey",
        sections=(
            OutlineNode("n1", "Introduction", "Why language models need retrieval."),
            OutlineNode(
                "n2",
                "Retrievers",
                "How retrievers are built and trained.",
                children=(
                    OutlineNode(
                        "n3",
                        "Dense retrieval",
                        "Dual encoders and their training.\n\nCompare negatives.",
                    ),
                    OutlineNode("n4", "Sparse retrieval"),
                ),
            ),
            OutlineNode("n5", "Conclusion", "Open problems."),
        ),
    )


@pytest.fixture
def papers() -> dict[str, Paper]:
    library = [
        Paper(
            "vaswani2017attention",
            "Attention Is All\n  You Need",
            ("Ashish Vaswani", "Noam Shazeer", "Niki Parmar", "Jakob Uszkoreit"),
            2017,
            arxiv_id="1706.03762",
        ),
        Paper(
            "lewis2020retrieval",
            "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
            ("Lewis, Patrick", "Ethan Perez"),
            2020,
            venue="NeurIPS",
            url="https://proceedings.neurips.cc/paper/2020/hash/6b493230",
        ),
        Paper(
            "guu2020realm",
            "REALM: Retrieval-Augmented Language Model Pre-Training",
            ("Kelvin Guu",),
            2020,
            doi="10.48550/arXiv.2002.08909",
        ),
        Paper(
            "karpukhin2020dense",
            "Dense Passage Retrieval for Open-Domain Question Answering?",
            ("Vladimir Karpukhin", "Barlas Oğuz", "Jean-Baptiste Alayrac"),
        ),
        Paper("never2021cited", "A Paper Nobody Cites", ("No One",), 2021),
    ]
    return {paper.key: paper for paper in library}


@pytest.fixture
def sections() -> dict[str, Section]:
    written = [
        Section(
            "n1",
            "Retrieval grounds generation [@lewis2020retrieval; @guu2020realm], building on "
            "the Transformer [@vaswani2017attention] [3].",
        ),
        # n2 (a parent) is not written yet: it still gets its heading
        Section(
            "n3",
            "Dual encoders [@karpukhin2020dense, @lewis2020retreival] embed passages.\n\n\n\n"
            "They are trained end to end [@guu2020realm; @vaswani2017attention; "
            "@lewis2020retrieval].",
        ),
        Section("n4", "Sparse methods remain strong baselines [@made_up2023]."),
        Section("n5", "Retrieval keeps models current [@guu2020realm]."),
        Section("n9", "A section for a node the outline no longer has [@never2021cited]."),
    ]
    return {section.node_id: section for section in written}


# --- survey.md -------------------------------------------------------------------------------


def test_survey_md_matches_golden(outline, sections, papers) -> None:
    rendered = render_markdown(
        outline, sections, papers, abstract="We survey retrieval-augmented generation."
    )
    check_golden("survey.md", rendered.text)


def test_survey_md_without_abstract_or_citations(outline, papers) -> None:
    text = render_markdown(outline, {}, papers).text
    assert "## Abstract" not in text
    assert "## References" not in text
    assert text.startswith("# Retrieval-Augmented Generation: A Survey\n\n## Introduction\n")
    assert text.endswith("\n\n*Generated by surveygen " + __version__ + "*\n")
    assert "\n\n\n" not in text


def test_references_are_cited_papers_in_order_of_first_use(outline, sections, papers) -> None:
    rendered = render_markdown(outline, sections, papers)
    assert rendered.cited == (
        "lewis2020retrieval",
        "guu2020realm",
        "vaswani2017attention",
        "karpukhin2020dense",
    )
    references = rendered.text.split("## References\n\n", 1)[1]
    starts = [line.split("]", 1)[0] + "]" for line in references.splitlines() if line[:1] == "["]
    assert starts == ["[1]", "[2]", "[3]", "[4]"]
    assert "Lewis" in references.splitlines()[0]
    assert "A Paper Nobody Cites" not in rendered.text


def test_abstract_citations_come_first(outline, sections, papers) -> None:
    rendered = render_markdown(outline, sections, papers, abstract="See [@karpukhin2020dense].")
    assert rendered.cited[0] == "karpukhin2020dense"
    assert "## Abstract\n\nSee [1].\n" in rendered.text


def test_render_removes_unknown_keys_and_stray_numbers(outline, sections, papers) -> None:
    rendered = render_markdown(outline, sections, papers)
    assert rendered.removed == ("lewis2020retreival", "made_up2023")
    assert rendered.stray_numeric == 1
    assert "@" not in rendered.text.split("## References")[0]
    assert "Sparse methods remain strong baselines.\n" in rendered.text
    assert "Dual encoders [4] embed passages.\n\nThey are trained end to end [1–3].\n" in (
        rendered.text
    )


def test_user_template_overrides_the_built_in_one(tmp_path, outline, sections, papers) -> None:
    (tmp_path / "survey.md.j2").write_text(
        "{{ title | upper }}: {{ sections | length }} sections, "
        "{{ references | map(attribute='key') | join(',') }}\n",
        encoding="utf-8",
    )
    text = render_markdown(outline, sections, papers, user_dir=tmp_path).text
    assert text == (
        "RETRIEVAL-AUGMENTED GENERATION: A SURVEY: 5 sections, "
        "lewis2020retrieval,guu2020realm,vaswani2017attention,karpukhin2020dense\n"
    )
    # templates the user did not override still come from the built-in folder
    assert render_outline_md(outline, user_dir=tmp_path) == render_outline_md(outline)


def test_strict_undefined_raises_in_a_user_template(tmp_path, outline, sections, papers) -> None:
    (tmp_path / "survey.md.j2").write_text("# {{ title }}\n{{ subtitle }}\n", encoding="utf-8")
    with pytest.raises(InputError, match="subtitle") as caught:
        render_markdown(outline, sections, papers, user_dir=tmp_path)
    assert "survey.md.j2" in str(caught.value)
    assert isinstance(caught.value.__cause__, jinja2.UndefinedError)


def test_strict_undefined_raises_in_any_template() -> None:
    with pytest.raises(jinja2.UndefinedError, match="subtitle"):
        make_env("md").from_string("{{ subtitle }}").render(title="T")


def test_missing_user_template_dir_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        make_env("md", tmp_path / "nowhere")


# --- the environment factory -----------------------------------------------------------------


def test_tex_environment_uses_latex_safe_delimiters() -> None:
    env = make_env("tex")
    template = env.from_string(
        "((= a comment =))((* for k in keys *))\\cite{((( k | escape_latex )))}((* endfor *))"
        " {% not jinja %} {{ braces }}"
    )
    assert template.render(keys=["a_b", "50%"]) == (
        "\\cite{a\\_b}\\cite{50\\%} {% not jinja %} {{ braces }}"
    )


def test_html_environment_autoescapes_and_md_does_not() -> None:
    source = "{{ title }}"
    assert make_env("html").from_string(source).render(title="<b>&</b>") == (
        "&lt;b&gt;&amp;&lt;/b&gt;"
    )
    assert make_env("md").from_string(source).render(title="<b>&</b>") == "<b>&</b>"


def test_environments_are_fresh_each_time() -> None:
    assert make_env("md") is not make_env("md")


def test_bundled_templates_are_found() -> None:
    folder = resource_dir("templates")
    assert (folder / "survey.md.j2").is_file()
    assert (folder / "outline.md.j2").is_file()


# --- reference formatting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ashish Vaswani", "A. Vaswani"),
        ("Vaswani, Ashish", "A. Vaswani"),
        ("Aidan N. Gomez", "A. N. Gomez"),
        ("Jean-Baptiste Alayrac", "J.-B. Alayrac"),
        ("Ludwig van Beethoven", "L. van Beethoven"),
        ("King, Jr, Martin Luther", "M. L. King Jr"),
        ("Martin Luther King Jr.", "M. L. King Jr."),
        ("{OpenAI}", "OpenAI"),
        ("Plato", "Plato"),
    ],
)
def test_format_name(name: str, expected: str) -> None:
    assert format_name(name) == expected


def test_format_authors_lists_up_to_three_then_et_al() -> None:
    assert format_authors([]) == ""
    assert format_authors(["Ada Lovelace"]) == "A. Lovelace"
    assert format_authors(["Ada Lovelace", "Alan Turing"]) == "A. Lovelace and A. Turing"
    assert format_authors(["A B", "C D", "E F"]) == "A. B, C. D and E. F"
    assert format_authors(["A B", "C D", "E F", "G H"]) == "A. B, C. D, E. F et al."


# --- outline.md ------------------------------------------------------------------------------


def test_outline_md_matches_golden(outline) -> None:
    check_golden("outline.md", render_outline_md(outline))


def test_outline_round_trip_is_lossless(outline) -> None:
    written = render_outline_md(outline)
    parsed = parse_outline_md(written)
    assert parsed == outline
    assert render_outline_md(parsed) == written


def test_outline_heading_line_carries_the_id(outline) -> None:
    assert "\n## Retrievers <!-- id: n2 -->\n\nHow retrievers are built and trained.\n" in (
        render_outline_md(outline)
    )
    assert "\n### Dense retrieval <!-- id: n3 -->\n" in render_outline_md(outline)


def test_parse_gives_new_headings_fresh_ids() -> None:
    text = (
        "# Title\n\n"
        "## Kept <!-- id: n7 -->\n\nKept description.\n\n"
        "### Added child\n\n"
        "## Named <!-- id: intro -->\n\n"
        "## Added sibling ##\n"
    )
    parsed = parse_outline_md(text)
    assert [(node.id, node.title, depth) for node, depth in parsed.walk()] == [
        ("n7", "Kept", 1),
        ("n8", "Added child", 2),
        ("intro", "Named", 1),
        ("n9", "Added sibling", 1),
    ]
    assert parsed.sections[0].description == "Kept description."


def test_parse_tolerates_comments_and_blank_lines() -> None:
    text = (
        "\n<!-- a note\nover two lines -->\n# Title\n<!-- another -->\n"
        "## Only <!--id:n1-->\nFirst paragraph.\n\n\n\nSecond paragraph.\n\n"
    )
    parsed = parse_outline_md(text)
    assert parsed.title == "Title"
    assert parsed.sections == (OutlineNode("n1", "Only", "First paragraph.\n\nSecond paragraph."),)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("", 1, "no '# Title'"),
        ("Some notes\n# Title\n## A\n", 1, "before the '# Title'"),
        ("\n## Section\n", 2, "must start with a '# Title'"),
        ("# Title\n\nStray text\n## A\n", 3, "before the first section"),
        ("# Title\n\n## A\n\n#### Too deep\n", 5, "jumps from ## to ####"),
        ("# Title\n### Too deep\n", 2, "jumps from # to ###"),
        ("# Title\n## A <!-- id: n1 -->\n## B <!-- id: n1 -->\n", 3, "already used on line 2"),
        ("# Title\n\nNothing else.\n", 3, "before the first section"),
        ("# Title\n\n<!-- only a comment -->\n", 1, "no sections"),
        ("# Title\n## A\n# Another title\n", 3, "a second '# ' title"),
        ("# Title\n## <!-- id: n1 -->\n", 2, "without a title"),
        ("#\n## A\n", 1, "heading is empty"),
    ],
)
def test_parse_errors_name_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_outline_md(text)
    message = str(caught.value)
    assert f"outline.md, line {line}:" in message
    assert problem in message


def test_parse_error_names_the_given_source() -> None:
    with pytest.raises(InputError, match=r"^my-outline\.md, line 1:"):
        parse_outline_md("", source="my-outline.md")


def test_new_headings_get_ids_above_the_floor_and_the_file() -> None:
    text = "# T\n\n## Kept <!-- id: n3 -->\n\n## New\n\n## Also new\n"
    assert [n.id for n, _ in parse_outline_md(text).walk()] == ["n3", "n4", "n5"]
    floored = parse_outline_md(text, id_floor=9)
    assert [n.id for n, _ in floored.walk()] == ["n3", "n9", "n10"]
