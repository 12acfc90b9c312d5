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
from surveygen.stages.write import drop_fence_lines

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
# Inside math, which pandoc passes to LaTeX as it is, a command keeps its backslash only when
# it is a plain math symbol or layout command; any other (\input, \global, \newcommand,
# \ShellEscape, ...) shows as text. "^^5c" is TeX's spelling of a backslash: broken up too.
_MATH_COMMAND = re.compile(r"\\([A-Za-z]+)")
_MATH_SAFE = frozenset(
    """alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu
    nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta
    Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega frac dfrac tfrac sqrt sum prod int oint
    lim limsup liminf max min sup inf arg argmax argmin log ln exp sin cos tan det dim ker
    Pr mathbb mathcal mathbf mathrm mathit mathsf mathtt boldsymbol text textrm textit
    textbf operatorname left right big Big bigg Bigg cdot cdots ldots dots vdots ddots times
    div pm mp leq geq le ge neq ne approx sim simeq equiv propto in notin subset subseteq
    supset supseteq cup cap setminus emptyset forall exists neg land lor to rightarrow
    leftarrow Rightarrow Leftarrow leftrightarrow iff mapsto infty partial nabla ell hat bar
    tilde vec dot ddot overline underline widehat widetilde top perp mid parallel circ star
    ast bullet langle rangle lfloor rfloor lceil rceil quad qquad binom choose mod bmod pmod
    prime cdotp colon backslash""".split()  # noqa: SIM905 (a word list reads better as text)
)


def _inert(text: str) -> str:
    return _RAW_TEX.sub(r"\1\\\\", _RAW_HTML.sub(r"\1\\<", text))


def _inert_math(raw: str) -> str:
    def command(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group() if name in _MATH_SAFE else rf"\backslash{{}}{name}"

    return _MATH_COMMAND.sub(command, raw).replace("^^", "^{}^")


def _split_link(raw: str) -> tuple[bool, str, str] | None:
    """An inline link or image ``[label](destination ...)``: (image?, label, destination),
    the label's brackets matched by depth (escaped ones skipped); None for anything else."""
    image = raw.startswith("!")
    start = 1 if image else 0
    depth, i = 0, start
    while i < len(raw):
        char = raw[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                rest = raw[i + 1 :]
                if not rest.startswith("(") or not rest[1:].strip():
                    return None
                destination = rest[1:].strip().lstrip("<").split()[0]
                return image, raw[start + 1 : i], destination.rstrip(">)")
        i += 1
    return None


def md_inert(text: str) -> str:
    r"""``text`` (model- or paper-derived Markdown) with no markup beyond Markdown's own.

    A survey.md viewer renders raw HTML and follows links, and pandoc passes raw LaTeX, math
    and ``{=format}`` blocks on to its output, so:

    - raw HTML shows as text (its "<" escaped: ``<script>`` stays visible, never runs, and an
      open ``<!--`` cannot hide the rest of the survey);
    - a link stays a link only when it is an inline link to an http(s) URL; an image becomes
      its description, and a link reference definition (``[x]: javascript:...``) plain text;
    - a LaTeX command's backslash is escaped; in math, only plain math commands keep theirs;
    - code fences become their text, and a code span cannot be marked raw (``{=latex}``).
    """
    out: list[str] = []
    pos = 0
    for span in markup_spans(text):
        if span.kind not in ("fence", "code", "math", "comment", "link", "refdef"):
            continue
        out.append(_inert(text[pos : span.start]))
        raw = text[span.start : span.end]
        if span.kind == "comment":
            raw = _inert(raw)
        elif span.kind == "math":
            raw = _inert_math(raw)
        elif span.kind == "fence":
            raw = _inert(drop_fence_lines(raw))
        elif span.kind == "refdef":
            raw = "\\" + _inert(raw.lstrip(" "))
        elif span.kind == "code" and text.startswith("{", span.end):
            raw += "\\"  # "`x`\\{=latex}": the brace is text, the span plain code
        elif span.kind == "link":
            link = _split_link(raw)
            if link is None or link[0] or not is_web_url(link[2]):
                raw = md_inert(link[1]) if link is not None else _inert(raw)
            else:
                raw = "[" + md_inert(link[1]) + raw[len(link[1]) + 1 :]
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
