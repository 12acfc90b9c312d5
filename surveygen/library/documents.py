"""The user's own documents: PDF, plain-text and Markdown files, alone or in a folder.

Each readable file becomes one :class:`Candidate` carrying its full text (reference list
removed) and what can be found on its first page: a title, an abstract, an arXiv stamp, a
DOI. A file that gives no usable text is skipped with one warning naming it and the reason;
it never stops the load.
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from pathlib import Path

from surveygen.library.pdf import extract_pdf, strip_references
from surveygen.library.records import (
    Candidate,
    DocumentError,
    LoadResult,
    cap_title,
    clean_space,
    normalise_arxiv_id,
    normalise_doi,
    read_capped,
)

__all__ = ["SUFFIXES", "read_document", "read_file", "read_folder"]

PDF_SUFFIXES = frozenset({".pdf"})
TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
SUFFIXES = PDF_SUFFIXES | TEXT_SUFFIXES

_ABSTRACT_WORDS = 300
_BODY_WORDS = 150
_HEAD_CHARS = 3000  # the "first page", where arXiv stamps and DOIs are looked for
_TITLE_LINES = 30


# --------------------------------------------------------------------------------------------
# Loading


def read_folder(path: Path, *, max_bytes: int) -> LoadResult:
    """Every .pdf, .txt and .md file under ``path``, recursively, in relative-path order.

    Hidden files and folders are skipped and symlinked folders are not followed. Files of
    other types are not read; one warning line counts them. A failing file is skipped with
    the warning ``<folder>/<file>: skipped: <reason>``.
    """
    result = LoadResult()
    folder = str(path)
    name = path.name or path.resolve().name or folder
    if not path.is_dir():
        result.skip(folder, "not a folder" if path.exists() else "no such folder")
        return result
    found: list[Path] = []
    others: dict[str, int] = {}

    def unreadable(error: OSError) -> None:
        where = error.filename or folder
        result.warnings.append(f"{where}: skipped: cannot read it ({error.strerror or error})")

    for root, dirs, files in os.walk(path, onerror=unreadable, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            if file.startswith("."):
                continue
            relative = (Path(root) / file).relative_to(path)
            suffix = Path(file).suffix.lower()
            if suffix in SUFFIXES:
                found.append(relative)
            else:
                others[suffix or "no suffix"] = others.get(suffix or "no suffix", 0) + 1
    for relative in sorted(found, key=lambda p: p.as_posix()):
        where = f"{folder.rstrip('/')}/{relative.as_posix()}"
        try:
            result.add(
                read_document(
                    path / relative, max_bytes=max_bytes, source=f"folder:{name}", where=where
                )
            )
        except DocumentError as exc:
            result.skip(where, str(exc))
    if not found:
        result.warnings.append(f"{folder}: no .pdf, .txt or .md files found")
    if others:
        kinds = sorted(others)
        listed = ", ".join(kinds[:5]) + (", ..." if len(kinds) > 5 else "")
        count = sum(others.values())
        result.warnings.append(f"{folder}: ignored {count} file(s) of other types ({listed})")
    return result


def read_file(path: Path, *, max_bytes: int) -> LoadResult:
    """One document given directly; a failure is a skip warning, not an exception."""
    result = LoadResult()
    try:
        result.add(read_document(path, max_bytes=max_bytes, source=f"file:{path.name}"))
    except DocumentError as exc:
        result.skip(str(path), str(exc))
    return result


def read_document(
    path: Path, *, max_bytes: int, source: str, where: str | None = None
) -> Candidate:
    """One PDF, .txt or .md file as a user candidate, or :class:`DocumentError` saying why not.

    The size is checked before anything is read, so a huge file costs nothing.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        kind = suffix or "no suffix"
        raise DocumentError(f"unsupported file type ({kind}); use .pdf, .txt or .md")
    data = read_capped(path, max_bytes)
    title: str | None = None
    authors: tuple[str, ...] = ()
    if suffix in PDF_SUFFIXES:
        pdf = extract_pdf(data)
        text, title, authors = pdf.text, pdf.title, pdf.authors
    else:
        text = _clean_text(_decode_text(data))
        if not text.strip():
            raise DocumentError("empty (whitespace only)")
        if suffix in MARKDOWN_SUFFIXES:
            text, meta_title, meta_authors = _front_matter(text)
            title = meta_title or _markdown_heading(text)
            authors = meta_authors
    text = strip_references(text)
    title_line = None
    if not title:
        title_line, title = _first_title_line(text)
    head = text[:_HEAD_CHARS]
    arxiv_id, arxiv_version, year = _arxiv_stamp(head)
    return Candidate(
        title=_tidy_title(title) if title else _stem_title(path),
        authors=authors,
        year=year,
        abstract=_abstract(text, title_line),
        text=text,
        arxiv_id=arxiv_id,
        arxiv_version=arxiv_version,
        doi=_find_doi(head),
        source=source,
        origin="user",
        where=where if where is not None else str(path),
    )


# --------------------------------------------------------------------------------------------
# Text files

_BINARY_RATIO = 0.05
_ALLOWED_CONTROLS = frozenset(b"\t\n\r\f")


def _decode_text(data: bytes) -> str:
    """``data`` as UTF-8 (optionally with a BOM) or BOM-marked UTF-16 text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(
        codecs.BOM_UTF8
    ):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"not UTF-16 text ({exc.reason})") from None
        if _mostly_controls([ord(ch) for ch in text]):
            raise DocumentError("binary data, not text")
        return text
    if b"\x00" in data or _mostly_controls(data):
        raise DocumentError("binary data, not text")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"not UTF-8 text (invalid byte at offset {exc.start + bom}); "
            "convert it with iconv -t UTF-8"
        ) from None


def _mostly_controls(codes: bytes | list[int]) -> bool:
    if not codes:
        return False
    controls = sum(1 for c in codes if (c < 32 or c == 127) and c not in _ALLOWED_CONTROLS)
    return controls > _BINARY_RATIO * len(codes) or 0 in codes


def _clean_text(text: str) -> str:
    """Unified line ends, no stray control characters, no trailing spaces, at most one
    blank line in a row. Unlike PDF text, lines are not re-joined."""
    text = unicodedata.normalize("NFC", text).replace("\ufeff", "")
    text = re.sub(r"\r\n?|\f", "\n", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = re.sub(r"[ \t]+(?=\n|$)", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def _front_matter(text: str) -> tuple[str, str | None, tuple[str, ...]]:
    """YAML front matter's ``title`` and ``author(s)``, and the text without the block."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return text, None, ()
    title: str | None = None
    authors: list[str] = []
    in_authors = False
    for line in match.group(1).splitlines():
        key, colon, value = line.partition(":")
        item = re.match(r"^\s*-\s+(.*)$", line)
        if in_authors and item:
            authors.append(_unquote(item.group(1)))
            continue
        in_authors = False
        if not colon or line[:1].isspace():
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "title" and value:
            title = _unquote(value)
        elif key in ("author", "authors"):
            if not value:
                in_authors = True
            elif value.startswith("[") and value.endswith("]"):
                authors.extend(_unquote(v) for v in value[1:-1].split(","))
            else:
                authors.extend(_unquote(v) for v in re.split(r"\s*;\s*|\s+and\s+", value))
    names = tuple(n for n in (clean_space(a) for a in authors) if n)
    return text[match.end() :].lstrip("\n"), title or None, names


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value.strip()


_ATX = re.compile(r"^[ ]{0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^[ ]{0,3}(=+|-+)[ \t]*$")
_NOT_TITLES = frozenset(
    {"abstract", "introduction", "contents", "table of contents", "summary", "overview"}
)


def _markdown_heading(text: str) -> str | None:
    """The first level-1 heading (``# Title`` or a ``===`` underline), else the first
    heading of any level in the first lines; never "Abstract" or "Introduction"."""
    lines = text.splitlines()
    headings: list[tuple[int, int, str]] = []  # (level, line number, text)
    in_code = False
    for number, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code:
            continue
        atx = _ATX.match(line)
        if atx:
            headings.append((len(atx.group(1)), number, atx.group(2)))
            continue
        setext = _SETEXT.match(line)
        previous = lines[number - 1].strip() if number else ""
        if setext and previous and not _ATX.match(lines[number - 1]):
            headings.append((1 if setext.group(1)[0] == "=" else 2, number - 1, previous))
    usable = [h for h in headings if _strip_markup(h[2]).lower().rstrip(":") not in _NOT_TITLES]
    for level, _, heading in usable:
        if level == 1:
            return heading
    for _, number, heading in usable:
        if number < _TITLE_LINES:
            return heading
    return None


# --------------------------------------------------------------------------------------------
# Title, abstract and identifiers from the text

_ARXIV_STAMP = re.compile(
    r"arXiv:\s*(\d{4}\.\d{4,5}(?:v\d+)?|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)"
    r"(?:\s*\[[^\]\n]{1,30}\])?(?:\s*(\d{1,2})\s+([A-Z][a-z]{2,8})\.?\s+((?:19|20)\d{2}))?",
    re.IGNORECASE,
)
_MONTH = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+(?:\d{1,2},?\s+)?"
    r"(?:19|20)\d{2}\b|\b\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
    r"\.?\s+(?:19|20)\d{2}\b|\b(?:19|20)\d{2}-\d{2}-\d{2}\b",
    re.IGNORECASE,
)
_NOT_TITLE_LINE = re.compile(
    r"^(?:abstract\b|preprint\b|draft\b|under review|published as|accepted (?:at|to|as|in)\b"
    r"|to appear\b|in proceedings\b|proceedings of\b|copyright\b|page \d+|keywords\b"
    r"|technical report\b|arxiv\b|doi\b|https?:|www\.)",
    re.IGNORECASE,
)
_CONNECTORS = frozenset(
    {"of", "for", "and", "the", "a", "an", "in", "on", "with", "to", "via", "from", "by", "or"}
)


def _first_title_line(text: str) -> tuple[int | None, str | None]:
    """(line number, title) of the first line in the first 30 that reads like a title.

    A title line has 2 to 30 words and is not an arXiv stamp, an e-mail address, a URL, a
    date, a "Preprint" notice, a page number or the "Abstract" heading. A title broken over
    two lines ("... for" / "Cats") is joined.
    """
    lines = text.splitlines()
    seen = 0
    for number, raw in enumerate(lines):
        line = _strip_markup(raw)
        if not line:
            continue
        seen += 1
        if seen > _TITLE_LINES:
            break
        if not _title_like(line):
            continue
        following = _strip_markup(lines[number + 1]) if number + 1 < len(lines) else ""
        if following and _continues(line, following):
            return number + 1, f"{line} {following}"
        return number, line
    return None, None


def _title_like(line: str) -> bool:
    words = line.split()
    if not 2 <= len(words) <= 30 or sum(ch.isalpha() for ch in line) < 4:
        return False
    if _NOT_TITLE_LINE.match(line) or "@" in line or "://" in line or _MONTH.search(line):
        return False
    return not _ARXIV_STAMP.search(line)


def _continues(line: str, following: str) -> bool:
    """Whether ``following`` is the second line of a title that ``line`` starts."""
    if not _title_like(following) or len(following.split()) > 12 or "," in following:
        return False
    last = line.split()[-1].lower()
    return last in _CONNECTORS or line.endswith((":", "-")) or following[0].islower()


def _strip_markup(line: str) -> str:
    """A line without Markdown heading marks, emphasis and code ticks."""
    line = re.sub(r"^\s{0,3}#{1,6}\s+|\s+#+\s*$", "", line)
    line = re.sub(r"(\*{1,3}|_{1,3})(\S(?:.*?\S)?)\1", r"\2", line)
    return clean_space(line.replace("`", ""))


def _tidy_title(title: str) -> str:
    return cap_title(_strip_markup(title).strip(" *_#")) or "Untitled"


def _stem_title(path: Path) -> str:
    return cap_title(clean_space(re.sub(r"[_-]+", " ", path.stem)) or path.name)


_ABSTRACT_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__|\*|_)?abstract(?:\*\*|__|\*|_)?\s*[:.]?\s*$", re.IGNORECASE
)
_ABSTRACT_PREFIX = re.compile(
    r"^\s*(?:\*\*|__|\*|_)?abstract(?:\*\*|__|\*|_)?\s*(?:—|–|:|\.|-{1,2})\s*(?:\*\*|__)?\s*(\S.*)$",
    re.IGNORECASE,
)
_SECTION_START = re.compile(
    r"^\s*(?:#{1,6}\s|(?:\d{1,2}(?:\.\d+)*\.?|[IVX]{1,5}\.)\s+[A-Z][^.]{0,60}$"
    r"|(?i:keywords|key words|index terms|ccs concepts|introduction)\b)"
)


def _abstract(text: str, title_line: int | None) -> str:
    """The abstract: the paragraph after an "Abstract" heading or prefix (at most 300
    words), else the first 150 words of body text after the title."""
    lines = text.splitlines()
    for number, line in enumerate(lines[:200]):
        if _ABSTRACT_HEADING.match(line):
            return _paragraph(lines[number + 1 :], [], _ABSTRACT_WORDS)
        prefix = _ABSTRACT_PREFIX.match(line)
        if prefix:
            return _paragraph(lines[number + 1 :], [prefix.group(1)], _ABSTRACT_WORDS)
    return _body_start(lines, title_line)


def _paragraph(lines: list[str], words: list[str], limit: int) -> str:
    """Words from ``lines`` up to the end of the paragraph or the next section heading."""
    collected = " ".join(words).split()
    for line in lines:
        if not line.strip():
            if collected:
                break
            continue
        if _SECTION_START.match(line):
            break
        collected.extend(line.split())
        if len(collected) >= limit:
            break
    return _strip_markup(" ".join(collected[:limit]))


def _body_start(lines: list[str], title_line: int | None) -> str:
    """The first 150 words of prose after the title: short lines before it (authors,
    affiliations, headings) are passed over."""
    start = 0 if title_line is None else title_line + 1
    collected: list[str] = []
    for line in lines[start:]:
        stripped = line.strip()
        if not collected and (
            len(stripped.split()) < 8 or stripped.startswith("#") or "@" in stripped
        ):
            continue
        if stripped.startswith("#"):
            continue
        collected.extend(stripped.split())
        if len(collected) >= _BODY_WORDS:
            break
    return _strip_markup(" ".join(collected[:_BODY_WORDS]))


def _arxiv_stamp(head: str) -> tuple[str | None, int | None, int | None]:
    """(id, version, year) from an arXiv stamp such as "arXiv:2101.00001v2 [cs.CL] 3 Jan
    2021"; the year falls back to the id's YYMM."""
    match = _ARXIV_STAMP.search(head)
    if match is None:
        return None, None, None
    parsed = normalise_arxiv_id(match.group(1))
    if parsed is None:
        return None, None, None
    ident, version = parsed
    if match.group(4):
        return ident, version, int(match.group(4))
    digits = re.search(r"(\d{2})(\d{2})[.\d]", ident.split("/")[-1])
    year = None
    if digits and 1 <= int(digits.group(2)) <= 12:
        yy = int(digits.group(1))
        year = 1900 + yy if yy >= 91 else 2000 + yy
    return ident, version, year


_DOI_MENTION = re.compile(
    r"(?:\bdoi\s*[:=]?\s*|https?://(?:dx\.)?doi\.org/)(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE
)


def _find_doi(head: str) -> str | None:
    match = _DOI_MENTION.search(head)
    if match is None:
        return None
    doi = match.group(1)
    while (
        doi and doi[-1] in ")]" and doi.count(doi[-1]) > doi.count("(" if doi[-1] == ")" else "[")
    ):
        doi = doi[:-1]  # "(doi:10.1/x)": the bracket closes the sentence, not the DOI
    return normalise_doi(doi)
