"""What every output format shares: the Jinja environment, the template contexts' common
parts, guarding the document and numbering and labelling its citations.

Templates live in the top-level ``templates/`` folder (bundled in the wheel); a user folder,
if given, is searched first, so a user overrides one template by dropping a file of the same
name there (mkdocs' ``custom_dir``). Every template gets a typed context (``*View`` and
``*Context`` TypedDicts) and renders with StrictUndefined, so a misspelt variable fails loudly
instead of printing nothing.

Citations are guarded here once more (the write stage guards too): a survey never ships a key
that is not in the library, and never a number the model invented.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypedDict

import jinja2

from surveygen import __version__
from surveygen.citations import (
    citation_order,
    citation_spans,
    format_numbers,
    guard_citations,
    replace_citations,
)
from surveygen.document import CitationStyle, DocSection, Labels, SurveyDoc, Table, TableRow
from surveygen.errors import InputError
from surveygen.latex import escape_latex
from surveygen.library.keys import is_valid_key
from surveygen.models import Outline, Paper, Section
from surveygen.resources import resource_dir
from surveygen.stages.render_refs import (
    AuthorYear,
    ReferenceView,
    author_year_labels,
    end_sentence,
    one_line,
    reference_sort_key,
    reference_view,
)

TemplateKind = Literal["md", "tex", "html"]

# A table row's key must read back as a citation, as keys in texts do, to be numbered.

# nbconvert-style delimiters: braces, "%" and "#" all mean something to LaTeX.
_TEX_SYNTAX = {
    "block_start_string": "((*",
    "block_end_string": "*))",
    "variable_start_string": "(((",
    "variable_end_string": ")))",
    "comment_start_string": "((=",
    "comment_end_string": "=))",
}


def make_env(kind: TemplateKind, user_dir: Path | None = None) -> jinja2.Environment:
    """A fresh Jinja environment for one output kind; ``user_dir`` is searched first."""
    if kind not in ("md", "tex", "html"):
        raise ValueError(f"unknown template kind {kind!r}; expected 'md', 'tex' or 'html'")
    search: list[str] = []
    if user_dir is not None:
        if not Path(user_dir).is_dir():
            raise InputError(
                f"template directory {user_dir} does not exist or is not a folder",
                hint="create it, or set templates_dir to an existing folder",
            )
        search.append(str(user_dir))
    search.append(str(resource_dir("templates")))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=kind == "html",
        **(_TEX_SYNTAX if kind == "tex" else {}),
    )
    env.filters["period"] = end_sentence
    env.filters["escape_latex"] = escape_latex
    env.filters["yaml_quote"] = yaml_quote
    return env


def render_template(
    env: jinja2.Environment, name: str, context: Mapping[str, object], user_dir: Path | None
) -> str:
    """Render ``name``; a broken *user* template is an InputError naming the file.

    A failing built-in template is a bug in surveygen, so its error propagates unchanged.
    """
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as err:
        user_file = Path(user_dir) / name if user_dir is not None else None
        if user_file is None or not user_file.is_file():
            raise
        raise InputError(
            f"template {user_file}: {err}",
            hint="fix the template, or remove it to use the built-in one",
        ) from err


# --- template contexts -----------------------------------------------------------------------


class LabelsView(TypedDict):
    """The fixed words of the survey's language (``document.Labels``)."""

    abstract: str
    references: str
    paper: str
    table: str


class TableRowView(TypedDict):
    key: str
    cite: str  # the row's paper, cited in the output's style and format
    cells: list[str]  # one per column; "–" where the table reports nothing


class TableView(TypedDict):
    n: int  # tables are numbered in reading order
    caption: str
    header: list[str]  # labels.paper, then the table's columns
    rows: list[TableRowView]


def table_view(table: Table, n: int, labels: Labels, cite: Callable[[str], str]) -> TableView:
    """Table ``n`` for a template: a first column citing each row's paper with ``cite``,
    "–" for a cell the paper does not report."""
    return TableView(
        n=n,
        caption=table.caption,
        header=[labels.paper, *table.columns],
        rows=[
            TableRowView(key=row.key, cite=cite(row.key), cells=[c or "–" for c in row.cells])
            for row in table.rows
        ],
    )


def labels_view(labels: Labels) -> LabelsView:
    return LabelsView(
        abstract=one_line(labels.abstract),
        references=one_line(labels.references),
        paper=one_line(labels.paper),
        table=one_line(labels.table),
    )


def generated_by() -> str:
    return f"surveygen {__version__}"


# --- the document ----------------------------------------------------------------------------


def doc_from_outline(
    outline: Outline, sections: Mapping[str, Section], *, abstract: str = ""
) -> SurveyDoc:
    """A document from an outline and its written sections (a node not written yet keeps its
    heading with no text; a section whose node the outline no longer has is left out)."""
    return SurveyDoc(
        title=outline.title,
        abstract=abstract,
        sections=tuple(
            DocSection(
                id=node.id,
                title=node.title,
                level=level,
                text=sections[node.id].text if node.id in sections else "",
            )
            for node, level in outline.walk()
        ),
    )


def guard_doc(doc: SurveyDoc, known: Collection[str]) -> tuple[SurveyDoc, tuple[str, ...], int]:
    """Guard every text of ``doc`` against ``known`` keys.

    Returns the guarded document, the unknown keys removed (distinct, first seen first) and the
    number of invented numeric brackets removed. A table row citing an unknown key is dropped
    (a table left without rows goes too), and rows are padded or cut to one cell per column.
    Titles, captions and cells are one line each and cite nothing: the row's first column
    already names its paper, so citation groups there are removed.
    """
    known = frozenset(known)
    removed: dict[str, None] = {}
    stray = 0

    def guard(text: str, keep: frozenset[str] = known) -> str:
        nonlocal stray
        result = guard_citations(text, keep)
        removed.update(dict.fromkeys(key for key in result.removed if key not in known))
        stray += result.stray_numeric
        return result.text

    def plain(text: str) -> str:
        return one_line(guard(text, frozenset()))

    def guard_table(table: Table) -> Table | None:
        columns = tuple(plain(column) for column in table.columns)
        rows = []
        for row in table.rows:
            if row.key not in known or not is_valid_key(row.key):
                removed.setdefault(row.key)
                continue
            cells = tuple(plain(cell) for cell in row.cells[: len(columns)])
            rows.append(TableRow(row.key, cells + ("",) * (len(columns) - len(cells))))
        return Table(plain(table.caption), columns, tuple(rows)) if rows else None

    abstract = tidy(guard(doc.abstract))
    sections = tuple(
        replace(
            section,
            title=plain(section.title),
            text=tidy(guard(section.text)),
            table=guard_table(section.table) if section.table is not None else None,
        )
        for section in doc.sections
    )
    title = plain(doc.title)
    guarded = replace(doc, title=title, abstract=abstract, sections=sections)
    return guarded, tuple(removed), stray


# --- citations -------------------------------------------------------------------------------


def _distinct(keys: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(keys))


@dataclass(frozen=True)
class CitationIndex:
    """How a guarded document's citations print: numbers by first use over
    ``SurveyDoc.citing_texts()``, author-year labels, and the order of the reference list."""

    style: CitationStyle
    numbers: Mapping[str, int]
    labels: Mapping[str, AuthorYear]

    @classmethod
    def build(
        cls, doc: SurveyDoc, papers: Mapping[str, Paper], style: CitationStyle
    ) -> CitationIndex:
        """``doc`` must be guarded against ``papers`` (see :func:`guard_doc`)."""
        if style not in ("numeric", "author-year", "pandoc"):
            raise ValueError(
                f"unknown citation style {style!r}; expected 'numeric', 'author-year' or 'pandoc'"
            )
        numbers = citation_order(doc.citing_texts())
        labels = author_year_labels(papers[key] for key in numbers)
        return cls(style, numbers, labels)

    def group(self, keys: tuple[str, ...]) -> str:
        """A citation group as plain text: "[1, 2]", "(Lewis, 2020; Guu, 2020)", "[@a; @b]"."""
        if self.style == "author-year":
            return "(" + "; ".join(self.labels[key].parenthetical for key in _distinct(keys)) + ")"
        if self.style == "pandoc":
            return "[" + "; ".join(f"@{key}" for key in keys) + "]"
        return "[" + format_numbers(self.numbers[key] for key in keys) + "]"

    def items(self, keys: tuple[str, ...]) -> list[tuple[str, str]]:
        """A group's keys with the text each shows when linked one by one: ("a", "1"), or
        ("a", "Lewis et al., 2020"); numbers sorted, author-year in the order written."""
        if self.style == "author-year":
            return [(key, self.labels[key].parenthetical) for key in _distinct(keys)]
        ordered = sorted(_distinct(keys), key=lambda key: self.numbers[key])
        return [(key, str(self.numbers[key])) for key in ordered]

    def brackets(self) -> tuple[str, str]:
        return ("(", ")") if self.style == "author-year" else ("[", "]")

    def row(self, key: str) -> str:
        """A table row's paper: "[3]", "Lewis et al. (2020)" or "@key" (pandoc, in-text)."""
        if self.style == "author-year":
            return self.labels[key].textual
        if self.style == "pandoc":
            return f"@{key}"
        return f"[{self.numbers[key]}]"

    def convert(self, text: str) -> str:
        """Every citation group of ``text`` in this style."""
        return replace_citations(text, self.group)

    def references(self, papers: Mapping[str, Paper]) -> list[ReferenceView]:
        """The cited papers, by number, or (author-year) by first author, year and title."""
        keys = list(self.numbers)
        author_year = self.style == "author-year"
        if author_year:
            keys.sort(key=lambda key: reference_sort_key(papers[key]))
        return [
            reference_view(
                self.numbers[key], papers[key], self.labels[key], author_year=author_year
            )
            for key in keys
        ]


class CitationMarks:
    """A text with its citation groups swapped for placeholder words, so a Markdown parser
    can neither split nor mangle them; renderers put their citations back where the
    placeholders come out (``split``).

    A placeholder is ``<prefix><i>x``. The prefix holds one "z", its first letter, and is
    lengthened until the text does not contain it, so after the swap every match is one of
    ours, even where a placeholder touches the text around it.
    """

    def __init__(self, text: str) -> None:
        prefix = "zqcite"
        while prefix in text:
            prefix += "q"
        self.source = text
        self.prefix = prefix
        self.pattern = re.compile(rf"{prefix}(\d+)x")
        self.groups: list[tuple[str, ...]] = []  # keys of group i
        self.text = replace_citations(text, self._mark)
        self.offsets = [span.start for span in citation_spans(text)]

    def _word(self, i: int) -> str:
        return f"{self.prefix}{i}x"

    def _mark(self, keys: tuple[str, ...]) -> str:
        self.groups.append(keys)
        return self._word(len(self.groups) - 1)

    def split(self, content: str) -> Iterator[str | int]:
        """Text pieces of ``content`` and, between them, the number of each citation group."""
        pos = 0
        for match in self.pattern.finditer(content):
            yield content[pos : match.start()]
            yield int(match.group(1))
            pos = match.end()
        yield content[pos:]


# --- helpers (some also template filters) ----------------------------------------------------


def tidy(text: str) -> str:
    """Strip, and leave at most one blank line between blocks."""
    return re.sub(r"\n(?:[ \t]*\n)+", "\n\n", text.strip())


def yaml_quote(text: object) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(one_line(str(text)), ensure_ascii=False)


__all__ = [
    "CitationIndex",
    "CitationMarks",
    "LabelsView",
    "TableRowView",
    "TableView",
    "TemplateKind",
    "doc_from_outline",
    "generated_by",
    "guard_doc",
    "labels_view",
    "make_env",
    "render_template",
    "tidy",
    "yaml_quote",
]
