"""What every source of papers hands to the gather stage, before de-duplication and keys.

A reader (papers.jsonl, V2 JSON, BibTeX, a folder of documents, arXiv) turns its input into
``Candidate`` records plus warnings; it never raises for one bad entry. The gather stage then
merges candidates that are the same paper (:mod:`surveygen.library.merge`), gives each a
citation key and ranks them.

Identifiers are normalised here, once, so that every source compares them the same way:
arXiv ids without the ``arXiv:`` prefix, URL or version (the version is kept apart), DOIs in
lower case without a resolver prefix, titles reduced to a fingerprint of their words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from surveygen.text import normalise

__all__ = [
    "Candidate",
    "DocumentError",
    "LoadResult",
    "clean_space",
    "normalise_arxiv_id",
    "normalise_doi",
    "title_fingerprint",
]

USER = "user"
SEARCH = "search"


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
        self.warnings.append(f"{where}: skipped: {reason}")

    def add(self, candidate: Candidate) -> None:
        self.read += 1
        self.candidates.append(candidate)


def clean_space(value: str | None) -> str:
    """``value`` with runs of whitespace collapsed to one space and the ends stripped."""
    return " ".join((value or "").split())


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
