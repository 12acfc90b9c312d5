"""Read papers from JSON Lines and JSON files: the papers.jsonl format and V2's input.

The papers.jsonl format (DESIGN.md) is one JSON object per line with only ``title``
required; unknown fields are ignored, so our own ``papers.jsonl`` output (which adds
``query``, ``score``, ``also_in``, ...) reads back as it is. LLM×MapReduce-V2's input is
``{"title": <topic>, "papers": [{"title", "abstract", "txt", "url"}, ...]}``, either as one
line of a ``.jsonl`` file or as a whole ``.json`` file.

A bad line or paper never stops the load: it is skipped with one warning naming where it is
and why. A file that cannot be used at all (too large, empty, unreadable) gives one warning.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from surveygen.library.records import (
    BOM,
    Candidate,
    DocumentError,
    LoadResult,
    arxiv_id_from_url,
    cap_title,
    clean_space,
    normalise_arxiv_id,
    normalise_doi,
    parse_year,
    read_capped,
    scrub,
    year_warning,
)

__all__ = ["read_json", "read_jsonl"]

_EXPECTED_JSON = (
    'expected LLM×MapReduce-V2 input {"title": ..., "papers": [...]}, '
    "a list of such objects, or a list of paper objects"
)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --------------------------------------------------------------------------------------------
# One paper


class _PaperLine(BaseModel):
    """One paper object as it may arrive; unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    title: str
    authors: list[str] | str | None = None
    year: Any = None  # checked by parse_year, so that a bad year only costs a warning
    abstract: str | None = None
    text: str | None = None
    txt: str | None = None  # LLM×MapReduce-V2's name for the full text
    arxiv_id: str | None = None
    doi: str | None = None
    url: str | None = None
    venue: str | None = None
    key: str | None = None
    source: str | None = None

    @field_validator("title")
    @classmethod
    def _title_not_empty(cls, value: str) -> str:
        value = clean_space(value)
        if not value:
            raise ValueError("empty title")
        return cap_title(value)


_EXPECTED = {"title": "a non-empty string", "authors": "a list of strings or a string"}


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    if field == "title" and (
        first["type"] == "missing" or first.get("input") is None or "empty title" in first["msg"]
    ):
        return "no title"
    return f"'{field}' must be {_EXPECTED.get(field, 'a string')}"


def _split_authors(value: list[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    names = re.split(r"\s+and\s+|;", value) if isinstance(value, str) else value
    return tuple(name for name in (clean_space(n) for n in names) if name)


def _optional(value: str | None) -> str | None:
    return clean_space(value) or None


def _scrubbed(value: Any) -> Any:
    """A JSON field's value with lone surrogates replaced in it and in a list of strings."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub(item) if isinstance(item, str) else item for item in value]
    return value


def _add_paper(data: dict[str, Any], where: str, source: str, result: LoadResult) -> None:
    """Add the paper in ``data`` to ``result``, or skip it with the reason."""
    data = {key: _scrubbed(value) for key, value in data.items()}
    try:
        entry = _PaperLine.model_validate(data)
    except ValidationError as exc:
        result.skip(where, _reason(exc))
        return
    year, bad_year = parse_year(entry.year)
    if bad_year:
        result.warnings.append(year_warning(where, entry.year))

    url = _optional(entry.url)
    arxiv = None
    if _optional(entry.arxiv_id):
        arxiv = normalise_arxiv_id(entry.arxiv_id)
        if arxiv is None:
            result.warnings.append(
                f"{where}: arxiv_id {entry.arxiv_id!r} ignored (not an arXiv identifier)"
            )
    if arxiv is None:
        arxiv = arxiv_id_from_url(url)
    doi = normalise_doi(entry.doi)
    if doi is None and _optional(entry.doi):
        result.warnings.append(f"{where}: doi {entry.doi!r} ignored (not a DOI)")

    result.add(
        Candidate(
            title=entry.title,
            authors=_split_authors(entry.authors),
            year=year,
            abstract=(entry.abstract or "").strip(),
            text=entry.text or entry.txt or "",
            arxiv_id=arxiv[0] if arxiv else None,
            arxiv_version=arxiv[1] if arxiv else None,
            doi=doi,
            url=url,
            venue=_optional(entry.venue),
            key=_optional(entry.key),
            source=_optional(entry.source) or source,
            where=where,
        )
    )


def _add_object(data: dict[str, Any], where: str, source: str, result: LoadResult) -> None:
    """Add one paper object, or every paper of a V2 object (one with a ``papers`` list)."""
    papers = data.get("papers")
    if papers is None:
        _add_paper(data, where, source, result)
    elif not isinstance(papers, list):
        result.skip(where, f"'papers' must be a list of paper objects (got {_json_type(papers)})")
    elif not papers:
        result.skip(where, "its 'papers' list is empty")
    else:
        for i, paper in enumerate(papers, start=1):
            paper_where = f"{where} paper {i}"
            if isinstance(paper, dict):
                _add_paper(paper, paper_where, source, result)
            else:
                result.skip(paper_where, f"not a JSON object (got {_json_type(paper)})")


class _Invalid:
    """Marks bytes that are not valid JSON: why, and on which line if JSON says so."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line


def _decode(raw: bytes, *, offset: int = 0) -> Any:
    """The JSON value in ``raw`` (``offset`` bytes into its line or file), or ``_Invalid``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Invalid(f"not valid UTF-8 (byte {offset + exc.start + 1})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return _Invalid(f"invalid JSON ({exc.msg} at column {exc.colno})", exc.lineno)
    except (ValueError, RecursionError) as exc:  # e.g. an integer with too many digits
        return _Invalid(f"invalid JSON ({clean_space(str(exc))[:100]})")


# --------------------------------------------------------------------------------------------
# Files


def read_jsonl(path: Path, *, max_bytes: int) -> LoadResult:
    """Candidates from a ``.jsonl`` file: papers.jsonl lines and V2 objects, in file order.

    Blank lines are ignored; a UTF-8 byte order mark on the first line is allowed. Every
    other line is read: a bad one (or a bad paper inside a V2 line) is skipped with a warning.
    """
    result = LoadResult()
    try:
        data = read_capped(path, max_bytes)
    except DocumentError as exc:
        result.skip(str(path), str(exc))
        return result
    source = f"file:{path.name}"
    for lineno, raw in enumerate(data.splitlines(), start=1):
        line = raw.removeprefix(BOM) if lineno == 1 else raw
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        value = _decode(line, offset=len(raw) - len(line))
        if isinstance(value, _Invalid):
            result.skip(where, value.reason)
        elif not isinstance(value, dict):
            result.skip(where, f"not a JSON object (got {_json_type(value)})")
        else:
            _add_object(value, where, source, result)
    return result


def read_json(path: Path, *, max_bytes: int) -> LoadResult:
    """Candidates from a ``.json`` file: a V2 object, a list of them, or a list of papers.

    Anything else (or invalid JSON) skips the whole file with one warning.
    """
    result = LoadResult()
    try:
        data = read_capped(path, max_bytes)
    except DocumentError as exc:
        result.skip(str(path), str(exc))
        return result
    text = data.removeprefix(BOM)
    value = _decode(text, offset=len(data) - len(text))
    if isinstance(value, _Invalid):
        result.skip(f"{path}:{value.line}" if value.line else str(path), value.reason)
        return result

    source = f"file:{path.name}"
    if isinstance(value, dict):
        if value.get("papers") is not None:
            _add_object(value, str(path), source, result)
        else:
            result.skip(str(path), f"a JSON object without a 'papers' list; {_EXPECTED_JSON}")
    elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
        for i, item in enumerate(value, start=1):
            where = f"{path} item {i}"
            if isinstance(item, dict):
                _add_object(item, where, source, result)
            else:
                result.skip(where, f"not a JSON object (got {_json_type(item)})")
    elif isinstance(value, list):
        what = "an empty list" if not value else "a list without JSON objects"
        result.skip(str(path), f"{what}; {_EXPECTED_JSON}")
    else:
        result.skip(str(path), f"{_json_type(value)}; {_EXPECTED_JSON}")
    return result
