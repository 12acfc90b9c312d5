"""Gather: load the user's library of papers and give every paper a stable citation key.

This release reads ``.jsonl`` files in the papers.jsonl format (see DESIGN.md): one JSON
object per line, only ``title`` required. Other inputs (folders of PDFs, ``.bib``, V2's
JSON) and arXiv search come with the gather issue (#3).

A bad line never stops the load: it is skipped with one warning naming ``file:line`` and the
reason. Only a library with no usable paper at all is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from surveygen import citations
from surveygen.errors import InputError, NotImplementedYet
from surveygen.models import Paper
from surveygen.text import ascii_fold, normalise

__all__ = ["GatherResult", "load_library", "make_key"]

_COMING = "the gather issue (#3)"
_UNSUPPORTED = {
    ".bib": ".bib files",
    ".pdf": "PDF files",
    ".txt": ".txt files",
    ".md": ".md files",
    ".json": ".json files",
}


@dataclass(frozen=True)
class GatherResult:
    """The papers loaded, in input order, and what was skipped on the way.

    ``read`` counts the non-blank lines read; ``skipped`` the lines that gave no paper
    (malformed or duplicates), so ``len(papers) == read - skipped``.
    """

    papers: tuple[Paper, ...]
    warnings: tuple[str, ...]
    read: int
    skipped: int


# --------------------------------------------------------------------------------------------
# Citation keys

# A given key is kept only if the citation parser reads it back whole (one pattern for both).
KEY_PATTERN = re.compile(rf"^{citations.KEY_PATTERN}$")
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "the", "on", "of", "for", "in", "to", "towards", "toward", "with", "and", "via",
    "from", "by", "is", "are", "using", "beyond", "at", "as", "into", "onto", "or", "not",
    "be", "do", "does", "its", "it", "we", "our", "your", "this", "that", "these", "those",
    "under", "over", "about",
})
# fmt: on
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v"})


def _family_name(author: str) -> str:
    """Letters-only, lowercase ASCII form of the last token of an author's family name.

    Handles "Last, First" ("van der Berg, Jan" -> "berg") and "First Last" ("Jan van der
    Berg" -> "berg"), ignoring name suffixes such as "Jr." or "III".
    """
    family = author.split(",", 1)[0] if "," in author else author
    tokens = [re.sub(r"[^a-z]", "", ascii_fold(t).lower()) for t in family.split()]
    tokens = [t for t in tokens if t]
    while len(tokens) > 1 and tokens[-1] in _NAME_SUFFIXES:
        tokens.pop()
    return tokens[-1] if tokens else ""


def _title_word(title: str) -> str:
    for word in re.split(r"[^a-z0-9]+", ascii_fold(title).lower()):
        if word and word not in _STOPWORDS:
            return word
    return ""


def _suffix(n: int) -> str:
    """1 -> "a", 26 -> "z", 27 -> "aa", ... (bijective base 26)."""
    letters = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def make_key(
    authors: Sequence[str], year: int | None, title: str, taken: set[str] | frozenset[str]
) -> str:
    """A BibTeX-style key such as ``vaswani2017attention`` that is not in ``taken``.

    First author's family name (ASCII-folded, letters only; "anon" without one), the year
    ("nd" without one) and the first title word that is not a stopword. Clashes get a
    suffix: ``smith2020deep``, ``smith2020deepa``, ``smith2020deepb``, ... ``taken`` is not
    modified; generated keys are lowercase, so pass lowercased keys for a case-insensitive
    check (BibTeX compares keys without case).
    """
    name = next((n for a in authors if a.strip() for n in [_family_name(a)]), "")
    base = f"{name or 'anon'}{year if year is not None else 'nd'}{_title_word(title)}"
    key, n = base, 0
    while key in taken:
        n += 1
        key = base + _suffix(n)
    return key


# --------------------------------------------------------------------------------------------
# The input boundary


def _clean(value: str) -> str:
    return " ".join(value.split())


class _PaperLine(BaseModel):
    """One line of a papers.jsonl file as it may arrive; unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    title: str
    authors: list[str] | str | None = None
    year: Any = None  # checked by _parse_year, so that a bad year only costs a warning
    abstract: str | None = None
    text: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None
    url: str | None = None
    venue: str | None = None
    key: str | None = None
    source: str | None = None

    @field_validator("title")
    @classmethod
    def _title_not_empty(cls, value: str) -> str:
        value = _clean(value)
        if not value:
            raise ValueError("empty title")
        return value


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
    return tuple(name for name in (_clean(n) for n in names) if name)


def _parse_year(value: Any) -> tuple[int | None, bool]:
    """The year as an int, and whether the value was unusable (so worth a warning)."""
    if value is None or value == "":
        return None, False
    if isinstance(value, str) and re.fullmatch(r"\s*\d{4}\s*", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1900 <= value <= 2100:
        return value, False
    return None, True


def _optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _title_fingerprint(title: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", normalise(title)).split())


# --------------------------------------------------------------------------------------------
# Loading


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(
            f"--papers {path}: no such file", hint="give the path of a papers.jsonl file"
        )
    if path.is_dir():
        raise NotImplementedYet("--papers with a directory", coming=_COMING)
    suffix = path.suffix.lower()
    if suffix in _UNSUPPORTED:
        raise NotImplementedYet(f"--papers with {_UNSUPPORTED[suffix]}", coming=_COMING)
    if suffix != ".jsonl":
        raise InputError(
            f"--papers {path}: unsupported file type '{suffix or path.name}'",
            hint="give a .jsonl file with one JSON object per line (the papers.jsonl format)",
        )


def _read_lines(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().splitlines()
    except OSError as exc:
        raise InputError(f"--papers {path}: cannot read it ({exc.strerror or exc})") from exc


def _parse_line(raw: bytes, source: str) -> dict[str, Any] | str:
    """The paper's fields, or the reason the line is skipped."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start + 1})"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(data, dict):
        return f"not a JSON object (got {type(data).__name__})"
    try:
        entry = _PaperLine.model_validate(data)
    except ValidationError as exc:
        return _reason(exc)
    year, bad_year = _parse_year(entry.year)
    return {
        "title": entry.title,
        "authors": _split_authors(entry.authors),
        "year": year,
        "abstract": (entry.abstract or "").strip(),
        "text": entry.text or "",
        "arxiv_id": _optional(entry.arxiv_id),
        "doi": _optional(entry.doi),
        "url": _optional(entry.url),
        "venue": _optional(entry.venue),
        "source": _optional(entry.source) or source,
        "key": _optional(entry.key),
        "bad_year": entry.year if bad_year else None,
    }


def load_library(paths: Sequence[Path], *, full_text: bool = True) -> GatherResult:
    """Load papers from ``--papers`` files, in order, with stable citation keys.

    Raises ``InputError`` for a missing file or when no usable paper is found at all,
    ``NotImplementedYet`` for inputs a later release reads (folders, .bib, PDF, ...).
    With ``full_text=False`` the ``text`` field of every paper is dropped.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        _check_path(path)

    papers: list[Paper] = []
    warnings: list[str] = []
    read = skipped = 0
    taken: set[str] = set()  # lowercased keys in use
    seen_titles: dict[str, str] = {}  # title fingerprint -> where it was first seen

    for path in paths:
        source = f"file:{path.name}"
        for lineno, raw in enumerate(_read_lines(path), start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # UTF-8 byte order mark
            if not raw.strip():
                continue
            read += 1
            where = f"{path}:{lineno}"
            fields = _parse_line(raw, source)
            if isinstance(fields, str):
                warnings.append(f"{where}: skipped: {fields}")
                skipped += 1
                continue
            fingerprint = _title_fingerprint(fields["title"])
            if fingerprint in seen_titles:
                warnings.append(f"{where}: skipped: duplicate title of {seen_titles[fingerprint]}")
                skipped += 1
                continue
            seen_titles[fingerprint] = where
            bad_year = fields.pop("bad_year")
            if bad_year is not None:
                warnings.append(
                    f"{where}: year {bad_year!r} ignored (expected a year from 1900 to 2100)"
                )

            given = fields.pop("key")
            if given and KEY_PATTERN.match(given) and given.lower() not in taken:
                key = given
            else:
                key = make_key(fields["authors"], fields["year"], fields["title"], taken)
                if given:
                    problem = "is already used" if KEY_PATTERN.match(given) else "is not valid"
                    warnings.append(f"{where}: key {given!r} {problem}; using {key!r}")
            taken.add(key.lower())
            if not full_text:
                fields["text"] = ""
            papers.append(Paper(key=key, **fields))

    if not papers:
        tried = ", ".join(str(p) for p in paths) or "(none)"
        raise InputError(
            f"no usable papers in {tried}: {read} non-blank line(s) read, {skipped} skipped",
            hint='each line must be a JSON object with a non-empty "title"; '
            "see the warnings for why lines were skipped",
        )
    return GatherResult(tuple(papers), tuple(warnings), read, skipped)
