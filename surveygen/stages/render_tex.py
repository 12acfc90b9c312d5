"""Render ``survey.tex``: the survey as a LaTeX article citing ``references.bib`` with natbib.

Section texts are Markdown; they are converted by walking markdown-it's tokens (never by
regexes over the text), and every piece of text is escaped on the way out, so no text a paper
or the model wrote can run a LaTeX command. Citation groups are swapped for placeholder words
before parsing (so Markdown cannot split or mangle them) and become ``\\cite`` after.

The numeric style numbers references in order of first use (natbib ``numbers`` with
``unsrtnat``), as the Markdown does; author-year uses ``plainnat``; the pandoc style prints as
numeric. Characters pdflatex cannot print are handled by :mod:`surveygen.latex`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from markdown_it import MarkdownIt
from markdown_it.token import Token

from surveygen.document import CitationStyle, SurveyDoc
from surveygen.latex import escape_latex, latex_url
from surveygen.library.keys import is_valid_key
from surveygen.models import Paper
from surveygen.stages.render_common import (
    CitationIndex,
    CitationMarks,
    LabelsView,
    TableView,
    generated_by,
    guard_doc,
    labels_view,
    make_env,
    render_template,
    table_view,
)
from surveygen.stages.render_refs import is_web_url

__all__ = ["LatexContext", "LatexSectionView", "markdown_to_latex", "render_latex"]

# cite(keys) -> the LaTeX citation command for one citation group
Cite = Callable[[Sequence[str]], str]

_BIB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")

# Sectioning commands by level; deeper levels, and headings inside a text, are paragraphs.
_SECTIONING = ("section", "subsection", "subsubsection")

# LaTeX allows six nested list environments (quote is one) and four of one kind; texts nest
# at most this deep (inside an abstract, itself a list), deeper items are set as paragraphs.
_MAX_NESTING = 4
_ENUM_COUNTERS = ("enumi", "enumii", "enumiii", "enumiv")


class LatexSectionView(TypedDict):
    id: str
    title: str  # plain text: the template escapes it
    level: int
    command: str  # "section", "subsection", "subsubsection" or "paragraph"
    body: str  # LaTeX, converted from the section's Markdown
    table: TableView | None  # plain-text cells (escaped by the template), LaTeX ``cite``


class LatexContext(TypedDict):
    """``survey.tex.j2``. Fields holding plain text are escaped by the template with
    ``escape_latex``; ``abstract`` and each section's ``body`` are LaTeX already."""

    title: str
    abstract: str  # LaTeX
    sections: list[LatexSectionView]
    labels: LabelsView
    style: CitationStyle  # "numeric" or "author-year"
    natbib_options: str
    bib_style: str
    bib_name: str
    paper_column: str  # width of the tables' first column, as a fraction of \linewidth (%)
    generated_by: str


def render_latex(
    doc: SurveyDoc,
    papers: Mapping[str, Paper],
    *,
    style: CitationStyle = "numeric",
    user_dir: Path | None = None,
    bib_name: str = "references",
) -> str:
    """Render ``survey.tex``; it cites ``<bib_name>.bib``, which the caller writes with
    :func:`render_bib.render_bibtex` (with at least the papers this survey cites)."""
    if not _BIB_NAME.match(bib_name):
        raise ValueError(f"bib_name {bib_name!r} must be a plain file name without extension")
    latex_style: CitationStyle = "author-year" if style == "author-year" else "numeric"
    guarded, _, _ = guard_doc(doc, papers.keys())
    index = CitationIndex.build(guarded, papers, latex_style)
    bad = [key for key in index.numbers if not is_valid_key(key)]
    if bad:  # the library only makes keys the citation parser reads back whole
        raise ValueError(f"citation key {bad[0]!r} cannot be used in LaTeX")
    author_year = latex_style == "author-year"
    group_command = "citep" if author_year else "cite"
    row_command = "citet" if author_year else "cite"

    def cite(keys: Sequence[str]) -> str:
        return f"\\{group_command}{{{','.join(dict.fromkeys(keys))}}}"

    sections: list[LatexSectionView] = []
    tables = 0
    for section in guarded.sections:
        table: TableView | None = None
        if section.table is not None:
            tables += 1
            table = table_view(
                section.table, tables, guarded.labels, lambda key: f"\\{row_command}{{{key}}}"
            )
        level = max(section.level, 1)
        sections.append(
            LatexSectionView(
                id=section.id,
                title=section.title,
                level=level,
                command=_SECTIONING[level - 1] if level <= len(_SECTIONING) else "paragraph",
                body=markdown_to_latex(section.text, cite),
                table=table,
            )
        )
    context = LatexContext(
        title=guarded.title,
        abstract=markdown_to_latex(guarded.abstract, cite),
        sections=sections,
        labels=labels_view(guarded.labels),
        style=latex_style,
        natbib_options="round" if author_year else "numbers,sort&compress",
        bib_style="plainnat" if author_year else "unsrtnat",
        bib_name=bib_name,
        paper_column="22" if author_year else "8",
        generated_by=generated_by(),
    )
    return render_template(make_env("tex", user_dir), "survey.tex.j2", context, user_dir)


# --- Markdown to LaTeX -----------------------------------------------------------------------


def markdown_to_latex(text: str, cite: Cite) -> str:
    """Convert Markdown prose to LaTeX; ``cite(keys)`` makes each citation group's command.

    Supported: paragraphs, emphasis, strong, inline code, bullet and ordered lists, links
    (``\\href`` for http(s) only), blockquotes, code blocks (escaped text in a typewriter
    font, never a verbatim environment), headings (as ``\\paragraph``) and rules. Raw HTML and
    anything else is shown as escaped text.
    """
    if not text.strip():
        return ""
    citations = CitationMarks(text)
    tokens = MarkdownIt("commonmark", {"html": True}).parse(citations.text)
    writer = _LatexWriter(citations, cite)
    writer.blocks(tokens)
    return re.sub(r"\n{3,}", "\n\n", "".join(writer.out)).strip()


@dataclass
class _Frame:
    """An open list or quote: its environment ("" when set flat, too deep to nest) and, for an
    ordered list set flat, the next item's number."""

    environment: str
    number: int | None = None


class _LatexWriter:
    def __init__(self, citations: CitationMarks, cite: Cite) -> None:
        self.citations = citations
        self.cite = cite
        self.out: list[str] = []
        self.depth = 0  # open list and quote environments
        self.enum_depth = 0
        self.stack: list[_Frame] = []
        self.links: list[bool] = []

    def escape(self, content: str) -> str:
        """Escaped text, with citation placeholders turned into citation commands."""
        return "".join(
            escape_latex(piece)
            if isinstance(piece, str)
            else self.cite(self.citations.groups[piece])
            for piece in self.citations.split(content)
        )

    # blocks

    def blocks(self, tokens: Sequence[Token]) -> None:
        for token in tokens:
            handler = getattr(self, "block_" + token.type, None)
            if handler is not None:
                handler(token)
            elif token.type == "inline":
                self.inline(token.children or [])
            elif token.content:  # a token type this writer does not know: its text, escaped
                self.out.append(self.escape(token.content) + "\n\n")

    def block_paragraph_open(self, token: Token) -> None:
        pass

    def block_paragraph_close(self, token: Token) -> None:
        self.out.append("\n" if token.hidden else "\n\n")

    def block_heading_open(self, token: Token) -> None:
        self.out.append("\\paragraph{")

    def block_heading_close(self, token: Token) -> None:
        self.out.append("}\n\n")

    def block_bullet_list_open(self, token: Token) -> None:
        self._open_list("itemize", None)

    def block_ordered_list_open(self, token: Token) -> None:
        start = token.attrs.get("start", 1)
        self._open_list("enumerate", int(start) if isinstance(start, (int, str)) else 1)

    def _open_list(self, environment: str, number: int | None) -> None:
        nested = self.depth < _MAX_NESTING and (
            environment != "enumerate" or self.enum_depth < len(_ENUM_COUNTERS)
        )
        if not nested:
            self.stack.append(_Frame("", number))
            return
        self.out.append(f"\\begin{{{environment}}}\n")
        if environment == "enumerate":
            if number not in (None, 1):
                self.out.append(
                    f"\\setcounter{{{_ENUM_COUNTERS[self.enum_depth]}}}{{{number - 1}}}\n"
                )
            self.enum_depth += 1
        self.depth += 1
        self.stack.append(_Frame(environment, number))

    def _close(self) -> None:
        environment = self.stack.pop().environment
        if environment:
            self.out.append(f"\\end{{{environment}}}\n\n")
            self.depth -= 1
            if environment == "enumerate":
                self.enum_depth -= 1

    def block_bullet_list_close(self, token: Token) -> None:
        self._close()

    block_ordered_list_close = block_blockquote_close = block_bullet_list_close

    def block_list_item_open(self, token: Token) -> None:
        frame = self.stack[-1]
        if frame.environment:
            self.out.append("\\item ")
        elif frame.number is None:
            self.out.append("\\par\\noindent\\textbullet{} ")
        else:
            self.out.append(f"\\par\\noindent {frame.number}.~")
            frame.number += 1

    def block_list_item_close(self, token: Token) -> None:
        self.out.append("\n")

    def block_blockquote_open(self, token: Token) -> None:
        if self.depth < _MAX_NESTING:
            self.out.append("\\begin{quote}\n")
            self.depth += 1
            self.stack.append(_Frame("quote"))
        else:
            self.stack.append(_Frame(""))

    def block_code_block(self, token: Token) -> None:
        lines = token.content.rstrip("\n").split("\n")
        body = "".join(
            (self.escape(line).replace(" ", "\\ ") or "\\mbox{}") + "\\par\n" for line in lines
        )
        self.out.append(
            "\\par\\begingroup\\ttfamily\\small\\parindent=0pt\\parskip=0pt\n"
            + body
            + "\\endgroup\n\n"
        )

    block_fence = block_code_block

    def block_html_block(self, token: Token) -> None:
        self.out.append(self.escape(token.content.strip()) + "\n\n")

    def block_hr(self, token: Token) -> None:
        self.out.append("\\par\\noindent\\rule{\\linewidth}{0.4pt}\n\n")

    # inline

    def inline(self, tokens: Sequence[Token]) -> None:
        for token in tokens:
            kind = token.type
            if kind == "text" or kind == "html_inline":
                self.out.append(self.escape(token.content))
            elif kind == "softbreak":
                self.out.append("\n")
            elif kind == "hardbreak":
                self.out.append("\\hfil\\break{}\n")
            elif kind == "em_open":
                self.out.append("\\emph{")
            elif kind == "strong_open":
                self.out.append("\\textbf{")
            elif kind in ("em_close", "strong_close"):
                self.out.append("}")
            elif kind == "code_inline":
                self.out.append("\\texttt{" + self.escape(token.content) + "}")
            elif kind == "link_open":
                href = str(token.attrs.get("href", ""))
                web = is_web_url(href)
                self.links.append(web)
                if web:
                    self.out.append("\\href{" + latex_url(href) + "}{")
            elif kind == "link_close":
                if self.links.pop():
                    self.out.append("}")
            elif kind == "image":  # no images in the survey: their description
                self.inline(token.children or [])
            elif token.content:
                self.out.append(self.escape(token.content))
