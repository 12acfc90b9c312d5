"""What every source of papers hands to the gather stage, before de-duplication and keys.

A reader (papers.jsonl, V2 JSON, BibTeX, a folder of documents, arXiv) turns its input into
``Candidate`` records plus warnings; it never raises for one bad entry. The gather stage then
merges candidates that are the same paper (:mod:`surveygen.library.merge`), gives each a
citation key and ranks them.

Identifiers are normalised here, once, so that every source compares them the same way:
arXiv ids without the ``arXiv:`` prefix, URL or version (the version is kept apart), DOIs in
lower case without a resolver prefix, titles reduced to a fingerprint of their words.

The helpers every reader shares live here too: :func:`read_capped` (the one size-capped way
to read an input file), :func:`scrub` (lone surrogates out of decoded JSON),
:func:`printable` (file names that are not UTF-8 made writable) and :func:`cap_title` (no
title longer than ``MAX_TITLE_CHARS``).
"""

from __future__ import annotations

import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from surveygen.text import normalise

__all__ = [
    "BOM",
    "MAX_TITLE_CHARS",
    "Candidate",
    "DocumentError",
    "LoadResult",
    "arxiv_id_from_url",
    "cap_title",
    "clean_space",
    "format_size",
    "normalise_arxiv_id",
    "normalise_doi",
    "parse_year",
    "printable",
    "read_capped",
    "scrub",
    "title_fingerprint",
    "year_warning",
]

USER = "user"
SEARCH = "search"
BOM = b"\xef\xbb\xbf"  # the UTF-8 byte order mark
MAX_TITLE_CHARS = 300


class DocumentError(Exception):
    """A file or download that gives no usable text; ``str()`` is the reason, for a warning
    such as ``paper.pdf: skipped: encrypted PDF (no password)``."""


@dataclass
class Candidate:
    """One paper as a source saw it.

    ``origin`` is ``"user"`` for anything the user supplied (files, ``--arxiv-ids``) and
    ``"search"`` for arXiv search results: ranking may drop search results, never the user's.
    ``source`` names where it came from for ``papers.jsonl`` (``file:refs.bib``,
    ``folder:pdfs``, ``arxiv:search``, ``arxiv:ids``); ``where`` is the place to name in a
    warning (``refs.bib:12``, ``pdfs/a.pdf``). ``key`` is a citation key the user gave (a
    BibTeX entry key, a papers.jsonl ``key``), kept when valid and free.
    """

    title: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    abstract: str = ""
    text: str = ""
    arxiv_id: str | None = None  # normalised, without version: "2101.00001", "hep-th/9901001"
    arxiv_version: int | None = None
    doi: str | None = None  # normalised: "10.1000/xyz"
    url: str | None = None
    venue: str | None = None
    key: str | None = None
    source: str = ""
    origin: str = USER
    where: str = ""
    query: str | None = None  # the search query that found it
    pdf_url: str | None = None  # where its full text can be downloaded (arXiv)
    pdf_path: Path | None = None  # a local PDF holding its full text (BibTeX ``file`` field)


@dataclass
class LoadResult:
    """What one input gave: candidates in input order and one warning per skipped entry.

    ``read`` counts the entries looked at (lines, BibTeX entries, files); ``skipped`` those
    that gave no candidate.
    """

    candidates: list[Candidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    read: int = 0
    skipped: int = 0

    def extend(self, other: LoadResult) -> None:
        self.candidates.extend(other.candidates)
        self.warnings.extend(other.warnings)
        self.read += other.read
        self.skipped += other.skipped

    def skip(self, where: str, reason: str) -> None:
        """Record one skipped entry with the warning ``<where>: skipped: <reason>``."""
        self.read += 1
        self.skipped += 1
        self.warnings.append(printable(f"{where}: skipped: {reason}"))

    def add(self, candidate: Candidate) -> None:
        """Record one candidate. What a reader took from a file's name that is not UTF-8 (a
        title from the stem, the source, the place) is made writable here, once for every
        reader: the title as prose (U+FFFD), the others as places to find (``\\xe9``)."""
        self.read += 1
        candidate.title = scrub(candidate.title)
        candidate.source = printable(candidate.source)
        candidate.where = printable(candidate.where)
        self.candidates.append(candidate)


def clean_space(value: str | None) -> str:
    """``value`` with runs of whitespace collapsed to one space and the ends stripped."""
    return " ".join((value or "").split())


_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    """``text`` with lone surrogates (which JSON's ``\\ud800`` escapes can produce and UTF-8
    cannot encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def printable(text: str) -> str:
    """``text`` made safe to write as UTF-8 (papers.jsonl, report.json, the terminal).

    Python decodes a file name that is not UTF-8 (``café.txt`` saved as Latin-1, say) with
    surrogate escapes; those show here as ``\\xe9``, the way Python itself shows them on
    stderr. Any other lone surrogate becomes U+FFFD, as in :func:`scrub`.
    """
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte produced
        return scrub(text)


def cap_title(title: str) -> str:
    """``title`` cut to at most ``MAX_TITLE_CHARS`` characters, at a word break if there is
    one."""
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title[:MAX_TITLE_CHARS]
    if not title[MAX_TITLE_CHARS].isspace() and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() or title[:MAX_TITLE_CHARS]


# --------------------------------------------------------------------------------------------
# Reading input files


def format_size(n: int) -> str:
    """A byte count in decimal units: ``50 MB``, ``1.5 MB``, ``2.9 KB``, ``100 bytes``.

    Whole numbers of a unit show no decimals (so a ``max_file_mb`` of 50 reads "50 MB");
    anything else shows one decimal, so that a size just over a limit does not read as the
    limit itself.
    """
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= scale - scale // 20_000:  # 999,950 bytes round to "1.0 MB", not "1000.0 KB"
            if n % scale == 0:
                return f"{n // scale} {unit}"
            return f"{n / scale:.1f} {unit}"
    return "1 byte" if n == 1 else f"{n} bytes"


def _too_large(size: int, limit: int) -> DocumentError:
    return DocumentError(
        f"larger than the {format_size(limit)} limit ({format_size(size)}); "
        "raise max_file_mb in surveygen.toml or split it"
    )


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The bytes of the file at ``path``, or :class:`DocumentError` saying why not.

    The size is checked with ``stat()`` before anything is read, so a huge file costs
    nothing. Folders, other non-regular files, unreadable files, files over ``max_bytes``
    and empty files (nothing but whitespace and a byte order mark) are refused.
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise DocumentError(f"cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:  # a NUL byte in the name
        raise DocumentError(f"cannot read it ({exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DocumentError("a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError("not a regular file")
    if info.st_size > max_bytes:
        raise _too_large(info.st_size, max_bytes)
    if info.st_size == 0:
        raise DocumentError("empty file")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise DocumentError(f"cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # it grew after stat()
        raise _too_large(len(data), max_bytes)
    if not data.removeprefix(BOM).strip():
        raise DocumentError("empty file")
    return data


def parse_year(value: Any) -> tuple[int | None, bool]:
    """The year as an int, and whether the value was unusable (so worth a warning)."""
    if value is None or value == "":
        return None, False
    if isinstance(value, str) and re.fullmatch(r"\s*\d{4}\s*", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1900 <= value <= 2100:
        return value, False
    return None, True


def year_warning(where: str, value: Any) -> str:
    """The warning for a year that is kept out of a paper that is still read."""
    return f"{where}: year {value!r} ignored (expected a year from 1900 to 2100)"


# New-style ids (0704.0001 onwards: YYMM.NNNN or YYMM.NNNNN) and old-style ids
# (archive[.SUBJECT]/YYMMNNN), each with an optional version.
_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARXIV_OLD = r"[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_ID = re.compile(
    rf"(?:^|(?<=[/:\s]))({_ARXIV_NEW}|{_ARXIV_OLD})(?:v(\d+))?(?:\.pdf)?/?$", re.IGNORECASE
)


def normalise_arxiv_id(value: str | None) -> tuple[str, int | None] | None:
    """``(id, version)`` for an arXiv identifier in any of its usual spellings, else None.

    Accepts ``2101.00001``, ``2101.00001v2``, ``arXiv:2101.00001v2``, ``hep-th/9901001v1``,
    ``math.GT/0309136``, and abs/pdf URLs such as ``https://arxiv.org/abs/2101.00001v2`` or
    ``http://arxiv.org/pdf/2101.00001v2.pdf``. Old-style archive names are lowercased.
    """
    text = (value or "").strip()
    if not text:
        return None
    text = re.sub(r"[?#].*$", "", text)
    text = re.sub(r"^arxiv:\s*", "", text, flags=re.IGNORECASE)
    match = _ARXIV_ID.search(text)
    if match is None:
        return None
    ident = match.group(1)
    if "/" in ident:
        archive, number = ident.split("/", 1)
        head, _, subject = archive.partition(".")
        archive = f"{head.lower()}.{subject.upper()}" if subject else head.lower()
        ident = f"{archive}/{number}"
    version = int(match.group(2)) if match.group(2) else None
    return ident, version


def arxiv_id_from_url(url: str | None) -> tuple[str, int | None] | None:
    """``(id, version)`` when ``url`` is an arXiv abs or pdf page, else None."""
    try:
        parts = urlsplit((url or "").strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if host != "arxiv.org" and not host.endswith(".arxiv.org"):
        return None
    if not re.match(r"/(?:abs|pdf)/", parts.path):
        return None
    return normalise_arxiv_id(parts.path)


_DOI = re.compile(r"10\.\d{4,9}/\S+")


def normalise_doi(value: str | None) -> str | None:
    """A DOI in lower case without ``doi:`` or a resolver URL, or None if there is none."""
    text = (value or "").strip()
    match = _DOI.search(text)
    if match is None:
        return None
    return match.group(0).rstrip(".,;").lower()


def title_fingerprint(title: str) -> str:
    """Lowercase, accent-free words of ``title``, so that spelling variants compare equal.

    LaTeX braces and punctuation do not count: ``{BERT}: Pre-training ...`` and
    ``BERT - pre-training ...`` give the same fingerprint.
    """
    decomposed = unicodedata.normalize("NFKD", normalise(title))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[\W_]+", " ", bare).split())
