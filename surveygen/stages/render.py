"""Render: the finished survey and the editable outline.

This module writes ``survey.md`` and ``outline.md`` and is the one place callers import
renderers from. Each output format has its module: ``render_tex`` (survey.tex),
``render_html`` (survey.html), ``render_bib`` (references.bib); ``render_common`` holds what
they share (the Jinja environment, guarding, citation numbering and labels) and
``render_refs`` formats names and reference entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

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


def _md_cell(text: str) -> str:
    """A pipe-table cell: one line, "|" escaped, "–" if empty."""
    return one_line(text).replace("|", r"\|") or "–"


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
                caption=section.table.caption,
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
                title=section.title,
                level=section.level,
                text=index.convert(section.text),
                table=table,
            )
        )
    return SurveyContext(
        title=doc.title,
        abstract=index.convert(doc.abstract),
        sections=sections,
        references=index.references(papers),
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


def render_outline_md(outline: Outline, *, user_dir: Path | None = None) -> str:
    """Render the editable ``outline.md`` (read back by ``outline_md.parse_outline_md``)."""
    context = OutlineContext(
        title=one_line(outline.title),
        sections=[
            OutlineNodeView(
                id=node.id,
                title=one_line(node.title),
                level=level,
                description=tidy(node.description),
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
    "reference_view",
    "render_bibtex",
    "render_html",
    "render_latex",
    "render_markdown",
    "render_outline_md",
    "render_template",
]
