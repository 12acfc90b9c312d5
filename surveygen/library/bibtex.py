"""Read papers from BibTeX files: hand-written ones and Zotero, Better BibTeX, Mendeley exports.

bibtexparser (v2) splits the file into blocks; its middlewares resolve ``@string`` macros,
remove enclosing braces or quotes and split author lists. LaTeX is decoded only in the prose
fields (title, authors, abstract, venue), so that URLs, DOIs and file paths are never
touched by it (``~`` or ``_`` in a URL stays as it is).

A malformed entry, a duplicate key or an entry without a title is skipped with one warning
naming ``file:line``; the other entries are still read. A file that cannot be used at all
(too large, empty, not UTF-8) gives one warning, never an exception.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import unquote, urlsplit

import bibtexparser
from bibtexparser.exceptions import BlockAbortedException
from bibtexparser.library import Library
from bibtexparser.middlewares import (
    BlockMiddleware,
    LatexDecodingMiddleware,
    NormalizeFieldKeys,
    RemoveEnclosingMiddleware,
    ResolveStringReferencesMiddleware,
    SeparateCoAuthors,
)
from bibtexparser.middlewares.names import parse_single_name_into_parts
from bibtexparser.model import (
    Block,
    DuplicateBlockKeyBlock,
    DuplicateFieldKeyBlock,
    Entry,
    MiddlewareErrorBlock,
    ParsingFailedBlock,
)

from surveygen.library.records import (
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

__all__ = ["read_bib"]

# Fields whose LaTeX is decoded; every other field is used as written.
_PROSE_FIELDS = frozenset(
    {"title", "author", "abstract", "journal", "journaltitle", "booktitle", "venue"}
)
_MONTHS = {
    "jan": "January", "feb": "February", "mar": "March", "apr": "April", "may": "May",
    "jun": "June", "jul": "July", "aug": "August", "sep": "September", "oct": "October",
    "nov": "November", "dec": "December",
}  # fmt: skip
# Characters or sequences that LaTeX decoding may change; plain text is left alone.
_LATEX_MARKUP = re.compile(r"[\\{}$~%&`']|--")
# In BibTeX, "%" and "&" in a value are plain characters, but LaTeX decoding would read "%"
# as the start of a comment (dropping the rest of the line) and "&" as a column separator.
_BARE_SPECIAL = re.compile(r"(?<!\\)([%&])")
# LaTeX escapes that sometimes appear in URLs and DOIs ("10.1000/a\_b"); never part of one.
_ESCAPED_URL_CHAR = re.compile(r"\\([_%&#~$])")
_ARXIV_IN_TEXT = re.compile(r"\barxiv\s*:\s*([\w./-]+)", re.IGNORECASE)
_PREPRINT_VENUE = re.compile(r"^\s*(?:arxiv|corr)\b", re.IGNORECASE)
_DATE_YEAR = re.compile(r"\s*(\d{4})(?:[-/][\d/-]*)?\s*")


# --------------------------------------------------------------------------------------------
# Parsing: bibtexparser and the middlewares that shape its entries


def _split_concatenation(value: str) -> list[str]:
    """The parts of ``a # "b" # {c}``, split at the ``#`` outside braces and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(value):
        if char == "\\":
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == '"' and depth == 0:
            quoted = not quoted
        elif char == "#" and depth == 0 and not quoted:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return [part.strip() for part in parts]


class _ResolveConcatenation(BlockMiddleware):
    """Joins ``venue # " 2020"`` style values, resolving ``@string`` macros and months."""

    def __init__(self) -> None:
        super().__init__(allow_inplace_modification=True, allow_parallel_execution=True)

    def transform_entry(self, entry: Entry, library: Library) -> Block:
        strings = {key.lower(): s.value for key, s in library.strings_dict.items()}
        for field in entry.fields:
            value = field.value
            if field.enclosing != "no-enclosing" or not isinstance(value, str) or "#" not in value:
                continue
            pieces = []
            for part in _split_concatenation(value):
                if len(part) >= 2 and (part[0], part[-1]) in (("{", "}"), ('"', '"')):
                    pieces.append(part[1:-1])
                else:
                    pieces.append(strings.get(part.lower(), _MONTHS.get(part.lower(), part)))
            field.value = "".join(str(piece) for piece in pieces)
        return entry


class _PersonNames(BlockMiddleware):
    """Turns the split ``author`` list into "First von Last Jr" names, dropping "others".

    Runs before LaTeX decoding, so that braces still protect corporate names such as
    ``{Barnes and Noble}`` and commas inside them.
    """

    def __init__(self) -> None:
        super().__init__(allow_inplace_modification=True, allow_parallel_execution=True)

    def transform_entry(self, entry: Entry, library: Library) -> Block:
        for field in entry.fields:
            if field.key == "author" and isinstance(field.value, list):
                names = []
                for name in field.value:
                    if name.strip().lower() == "others":
                        continue
                    parts = parse_single_name_into_parts(name, strict=False)
                    names.append(parts.merge_first_name_first or name)
                field.value = names
        return entry


class _DecodeProse(LatexDecodingMiddleware):
    """LaTeX decoding of the prose fields only (see ``_PROSE_FIELDS``), best effort.

    A value that cannot be decoded is kept as written rather than failing the entry.
    """

    def __init__(self) -> None:
        super().__init__(allow_inplace_modification=True, keep_math_mode=False)

    def _decoded(self, value: str) -> str:
        if not _LATEX_MARKUP.search(value):
            return value
        decoded, error = self._transform_python_value_string(_BARE_SPECIAL.sub(r"\\\1", value))
        return value if error else decoded

    def transform_entry(self, entry: Entry, library: Library) -> Block:
        for field in entry.fields:
            if field.key not in _PROSE_FIELDS:
                continue
            if isinstance(field.value, str):
                field.value = self._decoded(field.value)
            elif isinstance(field.value, list):
                field.value = [self._decoded(v) if isinstance(v, str) else v for v in field.value]
        return entry


def _parse_stack() -> list[BlockMiddleware]:
    return [
        NormalizeFieldKeys(),
        ResolveStringReferencesMiddleware(),
        RemoveEnclosingMiddleware(),
        _ResolveConcatenation(),
        SeparateCoAuthors(name_fields=("author",)),
        _PersonNames(),
        _DecodeProse(),
    ]


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's loggers: every problem they log is reported as a warning of ours."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # children without a level of their own follow
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------------------------
# Fields


def _text(fields: dict[str, object], *names: str) -> str:
    """The first non-empty of the named fields, with whitespace collapsed."""
    for name in names:
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            return scrub(clean_space(value))  # LaTeX decoding may make any code point
    return ""


def _unescape_url(value: str) -> str:
    value = clean_space(value)
    match = re.fullmatch(r"\\url\{(.*)\}", value)
    if match:
        value = match.group(1)
    return _ESCAPED_URL_CHAR.sub(r"\1", value)


def _doi_from_url(url: str | None) -> str | None:
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if host in ("doi.org", "dx.doi.org", "www.doi.org"):
        return normalise_doi(unquote(parts.path))
    return None


def _arxiv_id(
    fields: dict[str, object], url: str | None, where: str, result: LoadResult
) -> tuple[str, int | None] | None:
    """The arXiv id from ``eprint``, ``arxivid``/``arxiv``, an "arXiv:..." note or the url."""
    kind = _text(fields, "archiveprefix", "eprinttype").lower()
    eprint = _text(fields, "eprint")
    if eprint and kind in ("", "arxiv"):
        found = normalise_arxiv_id(eprint)
        if found:
            return found
        if kind == "arxiv":
            result.warnings.append(f"{where}: eprint {eprint!r} ignored (not an arXiv identifier)")
    for name in ("arxivid", "arxiv"):
        value = _text(fields, name)
        if value:
            found = normalise_arxiv_id(value)
            if found:
                return found
            result.warnings.append(f"{where}: {name} {value!r} ignored (not an arXiv identifier)")
    for name in ("journal", "journaltitle", "howpublished", "note"):
        match = _ARXIV_IN_TEXT.search(_text(fields, name))
        if match:
            found = normalise_arxiv_id(match.group(1).rstrip("."))
            if found:
                return found
    return arxiv_id_from_url(url)


def _split_unescaped(value: str, separator: str) -> list[str]:
    """``value`` split at each ``separator`` not escaped with a backslash (Zotero writes
    ``C\\:\\\\Users\\\\x.pdf`` on Windows); escapes are kept for ``_unescape_path``."""
    parts, current, i = [], [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value) and value[i + 1] in "\\:;":
            current.append(value[i : i + 2])  # kept escaped: _unescape_path undoes it
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape_path(value: str) -> str:
    return re.sub(r"\\([\\:;])", r"\1", value)


def _attachment_path(attachment: str) -> str:
    """The path in one attachment: ``description:path:mime``, ``:path:pdf`` or a bare path."""
    parts = _split_unescaped(attachment, ":")
    if len(parts) >= 3:  # description:path:mime (an unescaped drive colon is rejoined)
        path = ":".join(parts[1:-1])
    elif len(parts) == 2 and re.fullmatch(r"[A-Za-z]", parts[0]):  # C:\papers\x.pdf
        path = ":".join(parts)
    else:
        path = parts[-1]
    return _unescape_path(path).strip()


def _pdf_file(value: str, bib: Path) -> Path | None:
    """The first PDF in a ``file`` field (several attachments are separated by ``;``).

    Relative paths are relative to the folder of the ``.bib`` file.
    """
    for attachment in _split_unescaped(value, ";"):
        name = _attachment_path(attachment)
        if name.lower().endswith(".pdf"):
            path = Path(name)
            # "~someone" with no such user stays as written
            with suppress(RuntimeError):
                path = path.expanduser()
            if re.match(r"[A-Za-z]:[\\/]", name) or path.is_absolute():
                return path
            return bib.parent / path
    return None


def _attachment_problem(path: Path) -> str | None:
    """Why the attached PDF at ``path`` cannot be used, or None when it is a file.

    A name too long for the file system or a folder that may not be searched makes
    ``stat()`` fail: that is reported like a missing file, never raised.
    """
    shown = str(path)
    if len(shown) > 200:
        shown = f"{shown[:120]}...{shown[-60:]}"
    try:
        if path.is_file():
            return None
    except OSError as exc:
        return f"attached PDF unusable ({exc.strerror or type(exc).__name__}): {shown}"
    except ValueError:  # a NUL byte in the name
        return f"attached PDF unusable (invalid file name): {shown}"
    return f"attached PDF not found: {shown}"


def _year(fields: dict[str, object], where: str, result: LoadResult) -> int | None:
    raw = _text(fields, "year").strip("{}")
    if not raw:
        date = _text(fields, "date").strip("{}")
        match = _DATE_YEAR.fullmatch(date)
        raw = match.group(1) if match else date
        if not raw:
            return None
        if match is None:
            result.warnings.append(year_warning(where, date))
            return None
    year, bad = parse_year(raw)
    if bad:
        result.warnings.append(year_warning(where, raw))
    return year


def _venue(fields: dict[str, object]) -> str | None:
    for name in ("journal", "journaltitle", "booktitle"):
        value = _text(fields, name)
        if value and not _PREPRINT_VENUE.match(value):
            return value
    return None


def _add_entry(entry: Entry, bib: Path, where: str, result: LoadResult) -> None:
    fields: dict[str, object] = {field.key: field.value for field in entry.fields}
    title = cap_title(_text(fields, "title"))
    if not title:
        result.skip(where, "no title")
        return
    authors = fields.get("author")
    if isinstance(authors, str):
        authors = [authors]
    names = tuple(n for n in (scrub(clean_space(a)) for a in authors or ()) if n)

    url = _unescape_url(_text(fields, "url")) or None
    if url is None:
        howpublished = _unescape_url(_text(fields, "howpublished"))
        url = howpublished if re.match(r"https?://\S+$", howpublished) else None
    raw_doi = _unescape_url(_text(fields, "doi"))
    doi = normalise_doi(raw_doi)
    if raw_doi and doi is None:
        result.warnings.append(f"{where}: doi {raw_doi!r} ignored (not a DOI)")
    doi = doi or _doi_from_url(url)
    arxiv = _arxiv_id(fields, url, where, result)
    year = _year(fields, where, result)

    pdf_path = None
    file_field = fields.get("file")
    if isinstance(file_field, str) and file_field.strip():
        pdf_path = _pdf_file(file_field.strip(), bib)
        problem = _attachment_problem(pdf_path) if pdf_path is not None else None
        if problem is not None:
            result.warnings.append(f"{where}: {problem}")
            pdf_path = None

    result.add(
        Candidate(
            title=title,
            authors=names,
            year=year,
            abstract=_text(fields, "abstract"),
            arxiv_id=arxiv[0] if arxiv else None,
            arxiv_version=arxiv[1] if arxiv else None,
            doi=doi,
            url=url,
            venue=_venue(fields),
            key=entry.key.strip() or None,
            source=f"file:{bib.name}",
            where=where,
            pdf_path=pdf_path,
        )
    )


# --------------------------------------------------------------------------------------------
# Files


def _line(block: Block) -> int | None:
    return block.start_line + 1 if block.start_line is not None else None


def _failure(block: ParsingFailedBlock) -> str:
    """A short reason for a block bibtexparser could not parse."""
    error = block.error
    if isinstance(block, DuplicateFieldKeyBlock):
        return f"duplicate field {', '.join(sorted(block.duplicate_keys))}"
    text = error.abort_reason if isinstance(error, BlockAbortedException) else str(error)
    text = clean_space(text) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def read_bib(path: Path, *, max_bytes: int) -> LoadResult:
    """Candidates from a ``.bib`` file, in file order, with one warning per skipped entry.

    ``@comment``, ``@preamble`` and ``@string`` blocks are not counted as entries.
    """
    result = LoadResult()
    try:
        data = read_capped(path, max_bytes)
    except DocumentError as exc:
        result.skip(str(path), str(exc))
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.skip(
            str(path),
            f"not UTF-8 text (invalid byte at offset {exc.start}); export the .bib as UTF-8",
        )
        return result

    with _quiet("bibtexparser"):
        library = bibtexparser.parse_string(text, parse_stack=_parse_stack())

    for block in library.blocks:
        if isinstance(block, MiddlewareErrorBlock) and isinstance(block.ignore_error_block, Entry):
            block = block.ignore_error_block  # a middleware failed on it: use it as it is
        line = _line(block)
        if isinstance(block, Entry):
            _add_entry(block, path, f"{path}:{line or block.key}", result)
        elif isinstance(block, DuplicateBlockKeyBlock):
            if isinstance(block.ignore_error_block, Entry):
                first = _line(block.previous_block)
                at = f" (first at line {first})" if first is not None else ""
                where = f"{path}:{line or block.key}"
                result.skip(where, f"duplicate entry key '{block.key}'{at}")
        elif isinstance(block, ParsingFailedBlock):
            where = f"{path}:{line}" if line else str(path)
            result.skip(where, f"malformed entry ({_failure(block)})")

    if result.read == 0:
        result.skip(str(path), "no BibTeX entries (such as @article{key, ...}) found")
    return result
