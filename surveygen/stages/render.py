"""Render: the finished survey and the editable outline.

This module writes ``survey.md`` and ``outline.md`` and is the one place callers import
renderers from. Each output format has its module: ``render_tex`` (survey.tex),
``render_html`` (survey.html), ``render_bib`` (references.bib); ``render_common`` holds what
they share (the Jinja environment, guarding, citation numbering and labels) and
``render_refs`` formats names and reference entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from surveygen.citations import markup_spans
from surveygen.document import CitationStyle, SurveyDoc
from surveygen.latex import escape_latex
from surveygen.models import Outline, Paper
from surveygen.stages.render_bib import render_bibtex
from surveygen.stages.render_common import (
    CitationIndex,
    LabelsView,
    TableRowView,
    TableView,
    TemplateKind,
    doc_from_outline,
    generated_by,
    guard_doc,
    labels_view,
    make_env,
    render_template,
    tidy,
)
from surveygen.stages.render_html import render_html
from surveygen.stages.render_refs import (
    ReferenceView,
    end_sentence,
    format_authors,
    format_name,
    is_web_url,
    one_line,
    reference_view,
)
from surveygen.stages.render_tex import render_latex

# --- template contexts -----------------------------------------------------------------------


class SectionView(TypedDict):
    id: str
    title: str
    level: int  # 1 = top-level section
    text: str  # citations already in the survey's style; "" if not written (yet)
    table: TableView | None


class SurveyContext(TypedDict):
    """``survey.md.j2``: Markdown strings, citations in ``style``, table cells escaped."""

    title: str
    abstract: str
    sections: list[SectionView]  # flat, in reading order; nesting is given by level
    references: list[ReferenceView]  # cited only: by number (author-year: by first author)
    style: CitationStyle
    labels: LabelsView
    generated_by: str


class OutlineNodeView(TypedDict):
    id: str
    title: str
    level: int
    description: str


class OutlineContext(TypedDict):
    title: str
    sections: list[OutlineNodeView]


@dataclass(frozen=True)
class RenderedSurvey:
    text: str
    cited: tuple[str, ...]  # keys in citation-number order (first use)
    removed: tuple[str, ...]  # unknown keys removed, first seen first
    stray_numeric: int


# --- survey.md -------------------------------------------------------------------------------


# "<" where Markdown would open raw HTML (a tag, a closing tag, a comment, a declaration), and
# "\" where pandoc would pass a LaTeX command through to its LaTeX and PDF output (raw_tex),
# unless already escaped: after an even number of backslashes (none included), each is live.
_RAW_HTML = re.compile(r"(?<!\\)((?:\\\\)*)<(?=[A-Za-z/!?])")
_RAW_TEX = re.compile(r"(?<!\\)((?:\\\\)*)\\(?=[A-Za-z])")
_LINK = re.compile(r"(!?)\[(.*)\]\(\s*<?([^\s>)]*)", re.S)
# TeX primitives that read or write files, run programs or redefine the language: inside math,
# which pandoc passes to LaTeX as it is, their backslash is shown instead of obeyed.
_TEX_DANGER = re.compile(
    r"\\(?=(?:input|include|InputIfFileExists|openin|openout|read|write|immediate|special"
    r"|catcode|def|edef|gdef|xdef|let|csname|usepackage|RequirePackage|directlua|newread"
    r"|newwrite|verbatiminput|lstinputlisting|includegraphics)(?![A-Za-z]))"
)


def _inert(text: str) -> str:
    return _RAW_TEX.sub(r"\1\\\\", _RAW_HTML.sub(r"\1\\<", text))


def md_inert(text: str) -> str:
    r"""``text`` (model- or paper-derived Markdown) with no markup beyond Markdown's own.

    A survey.md viewer renders raw HTML and follows links, so -- as survey.html does -- raw
    HTML shows as text (its "<" escaped: ``<script>`` stays visible, never runs, and an open
    ``<!--`` cannot hide the rest of the survey), links stay links only for http(s) URLs and
    images become their description. A LaTeX command's backslash is escaped too, so pandoc
    does not pass ``\input{...}`` through to the LaTeX it makes; in math, which pandoc passes
    on as it is, only commands that touch files or the TeX language are defused. Code is left
    as it is.
    """
    out: list[str] = []
    pos = 0
    for span in markup_spans(text):
        if span.kind not in ("fence", "code", "math", "comment", "link"):
            continue
        out.append(_inert(text[pos : span.start]))
        raw = text[span.start : span.end]
        link = _LINK.match(raw) if span.kind == "link" else None
        if span.kind == "comment":
            raw = _inert(raw)
        elif span.kind == "math":
            raw = _TEX_DANGER.sub(r"\\backslash{}", raw)
        elif link and (link.group(1) or not is_web_url(link.group(3))):
            raw = md_inert(link.group(2))
        elif link:
            raw = "[" + md_inert(link.group(2)) + raw[len(link.group(2)) + 1 :]
        out.append(raw)
        pos = span.end
    out.append(_inert(text[pos:]))
    return "".join(out)


def _md_cell(text: str) -> str:
    """A pipe-table cell: one line, "|" escaped, "–" if empty."""
    return md_inert(one_line(text)).replace("|", r"\|") or "–"


def markdown_context(
    doc: SurveyDoc, papers: Mapping[str, Paper], index: CitationIndex
) -> SurveyContext:
    labels = labels_view(doc.labels)
    sections: list[SectionView] = []
    tables = 0
    for section in doc.sections:
        table: TableView | None = None
        if section.table is not None:
            tables += 1
            table = TableView(
                n=tables,
                caption=md_inert(section.table.caption),
                header=[_md_cell(labels["paper"]), *map(_md_cell, section.table.columns)],
                rows=[
                    TableRowView(
                        key=row.key, cite=index.row(row.key), cells=[_md_cell(c) for c in row.cells]
                    )
                    for row in section.table.rows
                ],
            )
        sections.append(
            SectionView(
                id=section.id,
                title=md_inert(section.title),
                level=section.level,
                text=md_inert(index.convert(section.text)),
                table=table,
            )
        )
    return SurveyContext(
        title=md_inert(doc.title),
        abstract=md_inert(index.convert(doc.abstract)),
        sections=sections,
        references=[
            {**ref, "entry": md_inert(ref["entry"])}  # type: ignore[typeddict-item]
            for ref in index.references(papers)
        ],
        style=index.style,
        labels=labels,
        generated_by=generated_by(),
    )


def render_markdown(
    doc: SurveyDoc,
    papers: Mapping[str, Paper],
    *,
    style: CitationStyle = "numeric",
    user_dir: Path | None = None,
) -> RenderedSurvey:
    """Render ``survey.md``: guard, number citations in reading order, fill the template.

    ``style="pandoc"`` keeps ``[@key]`` citations for pandoc's citeproc, with a front matter
    naming ``references.bib`` (which the caller writes with :func:`render_bib.render_bibtex`).
    """
    guarded, removed, stray = guard_doc(doc, papers.keys())
    index = CitationIndex.build(guarded, papers, style)
    context = markdown_context(guarded, papers, index)
    text = render_template(make_env("md", user_dir), "survey.md.j2", context, user_dir)
    return RenderedSurvey(
        text=text, cited=tuple(index.numbers), removed=removed, stray_numeric=stray
    )


# --- the outline -----------------------------------------------------------------------------


# A description line that outline.md's reader would take for structure: a heading, a code
# fence (which would hide the headings after it) or an HTML comment (likewise).
_STRUCTURE_LINE = re.compile(r"^([ \t]*)(?=#|`{3}|~{3}|<!--)", re.M)


def _plain_lines(description: str) -> str:
    """A description that reads back as itself: structure-like line starts are escaped, so a
    description the model wrote ("## Injected", "```") cannot add, hide or swallow sections
    when the user edits outline.md and runs again with --outline."""
    return _STRUCTURE_LINE.sub(r"\1\\", description)


def render_outline_md(outline: Outline, *, user_dir: Path | None = None) -> str:
    """Render the editable ``outline.md`` (read back by ``outline_md.parse_outline_md``)."""
    context = OutlineContext(
        title=one_line(outline.title),
        sections=[
            OutlineNodeView(
                id=node.id,
                title=one_line(node.title),
                level=level,
                description=_plain_lines(tidy(node.description)),
            )
            for node, level in outline.walk()
        ],
    )
    return render_template(make_env("md", user_dir), "outline.md.j2", context, user_dir)


__all__ = [
    "OutlineContext",
    "OutlineNodeView",
    "ReferenceView",
    "RenderedSurvey",
    "SectionView",
    "SurveyContext",
    "TemplateKind",
    "doc_from_outline",
    "end_sentence",
    "escape_latex",
    "format_authors",
    "format_name",
    "guard_doc",
    "make_env",
    "markdown_context",
    "md_inert",
    "reference_view",
    "render_bibtex",
    "render_html",
    "render_latex",
    "render_markdown",
    "render_outline_md",
    "render_template",
]
