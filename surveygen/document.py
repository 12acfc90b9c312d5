"""The finished survey as data: what the write stage produces and every renderer reads.

Texts cite pandoc-style (``[@key]``) and are Markdown prose; renderers turn citations into the
chosen style (numeric, author-year, pandoc, ``\\cite``). Nothing here is escaped: escaping is
the renderer's job, for its own output format.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

CitationStyle = Literal["numeric", "author-year", "pandoc"]
CITATION_STYLES: tuple[str, ...] = ("numeric", "author-year", "pandoc")

# Ids of the sections the writer adds around the outline's own (outline ids are "n1", "n2", ...).
INTRODUCTION = "introduction"
CONCLUSION = "conclusion"


@dataclass(frozen=True)
class TableRow:
    """One paper's row: ``key`` is its citation key, ``cells`` one short text per column."""

    key: str
    cells: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "cells": list(self.cells)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableRow:
        return cls(key=data["key"], cells=tuple(data["cells"]))


@dataclass(frozen=True)
class Table:
    """A comparison table. ``columns`` are the compared aspects; renderers add a first column
    holding each row's citation (headed by ``Labels.paper``). Every row has one cell per
    column; an empty cell means "not reported"."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "caption": self.caption,
            "columns": list(self.columns),
            "rows": [row.to_json() for row in self.rows],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        return cls(
            caption=data["caption"],
            columns=tuple(data["columns"]),
            rows=tuple(TableRow.from_json(r) for r in data["rows"]),
        )


@dataclass(frozen=True)
class DocSection:
    """One heading of the survey, in reading order. ``level`` 1 is a top-level section."""

    id: str
    title: str
    level: int
    text: str = ""
    table: Table | None = None


@dataclass(frozen=True)
class Labels:
    """Fixed words the templates print, in the survey's language."""

    abstract: str = "Abstract"
    references: str = "References"
    paper: str = "Paper"
    table: str = "Table"

    def to_json(self) -> dict[str, str]:
        return {
            "abstract": self.abstract,
            "references": self.references,
            "paper": self.paper,
            "table": self.table,
        }


@dataclass(frozen=True)
class SurveyDoc:
    title: str
    abstract: str
    sections: tuple[DocSection, ...]
    labels: Labels = field(default_factory=Labels)
    language: str = "English"

    def citing_texts(self) -> Iterator[str]:
        """Every text that can cite, in reading order: the abstract, then per section its text
        followed by its table's rows (a row cites its paper as ``[@key]``)."""
        yield self.abstract
        for section in self.sections:
            yield section.text
            if section.table is not None:
                for row in section.table.rows:
                    yield f"[@{row.key}]"


__all__ = [
    "CITATION_STYLES",
    "CONCLUSION",
    "INTRODUCTION",
    "CitationStyle",
    "DocSection",
    "Labels",
    "SurveyDoc",
    "Table",
    "TableRow",
]
