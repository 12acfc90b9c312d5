"""Rendering survey.tex: golden files, Markdown-to-LaTeX conversion, escaping and Unicode, and
(marked slow) building the PDF with latexmk, hostile text included.

Regenerate the golden files with ``SURVEYGEN_UPDATE_GOLDEN=1 pytest tests/test_render_tex.py``.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from renderdata import (
    assert_no_undefined_citations,
    build_latex,
    check_golden,
    hostile_doc,
    hostile_papers,
    make_doc,
    make_papers,
)

from surveygen.document import DocSection, Labels, SurveyDoc
from surveygen.errors import InputError
from surveygen.latex import NATIVE, REPLACEMENT, bib_url, escape_latex, latex_url
from surveygen.models import Paper
from surveygen.stages.render import render_bibtex, render_latex, render_markdown
from surveygen.stages.render_tex import markdown_to_latex


def cite(keys) -> str:
    return "\\cite{" + ",".join(keys) + "}"


def body(text: str) -> str:
    return markdown_to_latex(text, cite)


def cited_bib(doc: SurveyDoc, papers: dict[str, Paper]) -> str:
    cited = render_markdown(doc, papers).cited
    return render_bibtex([papers[key] for key in cited])


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "golden"), [("numeric", "survey.tex"), ("author-year", "survey-author-year.tex")]
)
def test_survey_tex_matches_golden(style, golden) -> None:
    check_golden(golden, render_latex(make_doc(), make_papers(), style=style))


def test_numeric_and_pandoc_styles_number_by_first_use() -> None:
    tex = render_latex(make_doc(), make_papers())
    assert r"\usepackage[numbers,sort&compress]{natbib}" in tex
    assert r"\bibliographystyle{unsrtnat}" in tex
    assert render_latex(make_doc(), make_papers(), style="pandoc") == tex
    assert r"\cite{lewis2020retrieval,guu2020realm}" in tex
    assert r"\cite{karpukhin2020dense} & Dual encoder & NQ, TriviaQA \\" in tex


def test_author_year_uses_citep_and_plainnat() -> None:
    tex = render_latex(make_doc(), make_papers(), style="author-year")
    assert r"\usepackage[round]{natbib}" in tex
    assert r"\bibliographystyle{plainnat}" in tex
    assert r"\citep{lewis2020retrieval,guu2020realm}" in tex
    assert r"\citet{guu2020second} & Knowledge retriever & – \\" in tex


def test_unknown_keys_never_reach_the_tex() -> None:
    tex = render_latex(make_doc(), make_papers())
    for unknown in ("lewis2020retreival", "made_up2023", "made_up_key", "never2021cited"):
        assert unknown not in tex


def test_sections_by_level_and_labels() -> None:
    doc = SurveyDoc(
        "T",
        "An abstract.",
        tuple(DocSection(f"s{i}", f"Level {i}", i, "") for i in range(1, 6)),
        labels=Labels("Zusammenfassung", "Literatur", "Arbeit", "Tabelle"),
    )
    tex = render_latex(doc, {})
    for line in (
        r"\section{Level 1}",
        r"\subsection{Level 2}",
        r"\subsubsection{Level 3}",
        r"\paragraph{Level 4}",
        r"\paragraph{Level 5}",
        r"\renewcommand{\abstractname}{Zusammenfassung}",
        r"\renewcommand{\refname}{Literatur}",
        r"\renewcommand{\tablename}{Tabelle}",
        "\\begin{abstract}\nAn abstract.\n\\end{abstract}",
        r"\bibliography{references}",
    ):
        assert line in tex


def test_bib_name_must_be_a_plain_file_name() -> None:
    assert r"\bibliography{refs-2024}" in render_latex(
        make_doc(), make_papers(), bib_name="refs-2024"
    )
    with pytest.raises(ValueError, match="bib_name"):
        render_latex(make_doc(), make_papers(), bib_name="refs}\\input{x")


def test_user_tex_template_overrides_the_built_in_one(tmp_path) -> None:
    (tmp_path / "survey.tex.j2").write_text(
        "((( title | escape_latex ))): ((* for s in sections *))((( s.command ))) ((* endfor *))\n",
        encoding="utf-8",
    )
    tex = render_latex(make_doc(), make_papers(), user_dir=tmp_path)
    assert tex == (
        "Retrieval-Augmented Generation: A Survey: section section subsection subsection section "
    )
    (tmp_path / "survey.tex.j2").write_text("((( nothing.here )))", encoding="utf-8")
    with pytest.raises(InputError, match=r"survey\.tex\.j2"):
        render_latex(make_doc(), make_papers(), user_dir=tmp_path)


# --- Markdown to LaTeX -------------------------------------------------------------------------


def test_inline_markup() -> None:
    assert body("*a* **b** `c_d` plain") == r"\emph{a} \textbf{b} \texttt{c\_d} plain"


def test_lists() -> None:
    assert body("- one\n- two") == "\\begin{itemize}\n\\item one\n\n\\item two\n\n\\end{itemize}"
    ordered = body("3. three\n4. four")
    assert ordered.startswith("\\begin{enumerate}\n\\setcounter{enumi}{2}\n\\item three")
    # a task-list box is text, not \item's optional label
    assert "\\item {[}x{]} done" in body("- [x] done")


def test_links_only_for_web_urls() -> None:
    assert body("[a](https://x.org/a_b?c=1&d=%20#e~f)") == (
        r"\href{https://x.org/a_b?c=1&d=\%20\#e~f}{a}"
    )
    assert body("[a](ftp://x.org/f) [b](mailto:a@b.c) [c](/local)") == "a b c"
    assert body("[a](javascript:alert(1))") == "{[}a{]}(javascript:alert(1))"  # not a link
    assert body("<https://x.org/p>") == r"\href{https://x.org/p}{https://x.org/p}"


def test_code_is_escaped_text_never_verbatim() -> None:
    for text in ("```\n\\end{verbatim} $x$\n  indented\n```", "    \\end{verbatim} $x$"):
        latex = body(text)
        assert "verbatim}" not in latex.replace(r"verbatim\}", "")
        assert r"\textbackslash{}end\{verbatim\}\ \$x\$" in latex
        assert "\\begin{verbatim}" not in latex
    assert "\\ \\ indented\\par" in body("```\n  indented\n```")


def test_raw_html_headings_quotes_and_rules() -> None:
    assert body("<script>alert(1)</script>") == "<script>alert(1)</script>"
    assert body("a <b>c</b> & d") == r"a <b>c</b> \& d"
    assert body("# Head *x*") == r"\paragraph{Head \emph{x}}"
    assert body("> quoted") == "\\begin{quote}\nquoted\n\n\\end{quote}"
    assert body("a\n\n---\n\nb") == "a\n\n\\par\\noindent\\rule{\\linewidth}{0.4pt}\n\nb"
    assert body("a  \nb") == "a\\hfil\\break{}\nb"


def test_nesting_is_capped() -> None:
    deep = "".join("  " * i + "- level\n" for i in range(9)) + "\n" + "> " * 9 + "quote\n"
    latex = body(deep)
    depth = deepest = 0
    for match in re.finditer(r"\\(begin|end)\{(itemize|enumerate|quote)\}", latex):
        depth += 1 if match.group(1) == "begin" else -1
        deepest = max(deepest, depth)
    assert depth == 0
    assert deepest == 4
    assert "\\par\\noindent\\textbullet{} level" in latex


def test_citations_survive_markdown_and_placeholder_words_in_the_text() -> None:
    text = "A *zqcite0x* word [@a] and **[@b; @c]** then `[@d]`."
    assert body(text) == (
        r"A \emph{zqcite0x} word \cite{a} and \textbf{\cite{b,c}} then \texttt{{[}@d{]}}."
    )


def test_empty_text_is_empty() -> None:
    assert body("") == body("  \n\n") == ""


# --- escaping and Unicode ----------------------------------------------------------------------


def test_escape_latex_specials() -> None:
    assert escape_latex(r"50% $x_1$ & {#t} \input{a} ~^ [o]") == (
        r"50\% \$x\_1\$ \& \{\#t\} \textbackslash{}input\{a\} "
        r"\textasciitilde{}\textasciicircum{} {[}o{]}"
    )
    assert escape_latex("a{b}", bibtex=True) == r"a{\textbraceleft}b{\textbraceright}"
    assert escape_latex("a\n\nb\tc\x00d\x1be\r\nf") == "a  b cde f"


@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("Oğuz Łukasz Müller café – “q” …", "Oğuz Łukasz Müller café – “q” …"),
        ("α≤β", r"{\ensuremath{\alpha}}{\ensuremath{\leq}}{\ensuremath{\beta}}"),
        ("x→∞", r"x→{\ensuremath{\infty}}"),
        ("Nguyễn Thị ǎ", r"Nguy{\~{\^{e}}}n Th{\d{i}} {\v{a}}"),
        ("ǐ", r"{\v{\i}}"),
        ("ﬁ Ｘ x² x⁴ H₂O", r"fi X x² x\textsuperscript{4} H\textsubscript{2}O"),
        ("深度学习 😀 👨‍👩‍👧", "???? ? ???"),
        ("a\u200bb\u00a0c\u2009d", "ab~c d"),
        ("Ħ ά ΑΒ", r"H {\ensuremath{\alpha}} AB"),
    ],
)
def test_unicode(text: str, latex: str) -> None:
    assert escape_latex(text) == latex


def test_urls() -> None:
    assert latex_url("https://x.org/a b_c%20%zz#f~{x}\\^é") == (
        r"https://x.org/a\%20b_c\%20\%25zz\#f~\%7Bx\%7D\%5C\%5E\%C3\%A9"
    )
    assert bib_url("https://x.org/a_b%20c#d~e") == "https://x.org/a_b%20c#d~e"
    assert bib_url(" https://x.org/wrapped\n   part ") == "https://x.org/wrappedpart"


# --- building the PDF (slow) ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("style", ["numeric", "author-year"])
def test_survey_builds_without_undefined_citations(tmp_path, style) -> None:
    papers = make_papers()
    tex = render_latex(make_doc(), papers, style=style)
    build = build_latex(tmp_path, tex, cited_bib(make_doc(), papers))
    assert_no_undefined_citations(build)
    text = " ".join(build.text().split())
    if style == "numeric":  # unsrtnat numbers as the Markdown does: by first use
        markdown = render_markdown(make_doc(), papers).text
        assert "Dual encoders [4] embed passages." in markdown
        assert "Dual encoders [4] embed passages." in text
        assert "end to end [1–3]." in text
    else:
        assert "(Lewis and Perez, 2020; Guu, 2020a)" in text
        assert "Guu (2020b) Knowledge retriever" in text
    assert "https://example.org/guu_2020%20v2#sec~3" in build.uris()
    assert "https://example.org/bench?a=1&b=2" in build.uris()


@pytest.mark.slow
def test_hostile_text_compiles_and_stays_text(tmp_path) -> None:
    papers = hostile_papers()
    doc = hostile_doc()
    tex = render_latex(doc, papers)
    assert "\\input" not in tex
    assert "\\begin{verbatim}" not in tex
    assert "深" not in tex and "😀" not in tex
    build = build_latex(tmp_path, tex, cited_bib(doc, papers))
    assert_no_undefined_citations(build)
    text = build.text()
    assert r"\input{/etc/passwd}" in text  # printed, not run
    assert "root:" not in text
    assert "</script><script>alert(1)</script>" in text
    assert "50% of $x_1$ & {#tags}" in text


@pytest.mark.slow
def test_every_character_the_table_allows_compiles(tmp_path) -> None:
    from surveygen.latex import _MATH, _TEXT

    samples = (
        "".join(sorted(NATIVE))
        + "".join(_MATH)
        + "".join(_TEXT)
        + "Nguyễn Thị Minh Khai ǎěǐǒǔ ȳ ḑ ṛ ǵ ẁ ḿ ﬁﬂ Ｘ ⁴₂ ① ℝ 𝐱 ⅓ "
        + "Привет שלום مرحبا नमस्ते 深度学习 😀 \ue000 \U0010ffff ░ ♥"
    )
    assert unicodedata.normalize("NFC", samples)
    paragraphs = "\n\n".join(samples[i : i + 60] for i in range(0, len(samples), 60))
    doc = SurveyDoc(
        "Title " + samples[:80],
        "",
        (DocSection("s", "Section " + samples[80:160], 1, paragraphs + "\n\n`" + samples + "`"),),
    )
    tex = render_latex(doc, {})
    tex.encode("utf-8")  # nothing unencodable (lone surrogates and the like) is left
    build = build_latex(tmp_path, tex, "")
    assert "Unicode character" not in build.log
    assert REPLACEMENT in build.text()
