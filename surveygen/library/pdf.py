"""Plain text from PDF files, with pypdf, and the clean-up every extracted text needs.

pypdf reads hostile or broken files by raising almost any exception, and logs its repairs
as warnings; here every failure becomes a :class:`DocumentError` with a short reason for the
user, and pypdf's log stays quiet. The reference list is cut off before the text reaches the
pipeline: it is long, it is not the paper's own content and it confuses quote matching.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from surveygen.library.records import DocumentError, clean_space

__all__ = ["PdfText", "clean_pdf_text", "extract_pdf", "strip_references"]

# pypdf logs every robustness fix ("EOF marker not found", ...) as a WARNING. With no handler
# configured, logging.lastResort would print those to stderr over the progress display.
_PYPDF_LOG = logging.getLogger("pypdf")
_PYPDF_LOG.addHandler(logging.NullHandler())
_PYPDF_LOG.setLevel(logging.CRITICAL)

_MIN_LETTERS = 10  # fewer letters than this in the whole document: no usable text layer


@dataclass(frozen=True)
class PdfText:
    """What a PDF gave: the metadata title and authors (when meaningful), the cleaned text
    of its pages and how many pages it has."""

    title: str | None
    authors: tuple[str, ...]
    text: str
    pages: int


# --------------------------------------------------------------------------------------------
# Extraction


def extract_pdf(data: bytes | Path, *, max_pages: int = 300) -> PdfText:
    """Text and metadata of a PDF given as bytes or a path, reading at most ``max_pages``.

    Raises :class:`DocumentError` (and nothing else) when the file is not a PDF, is corrupt,
    needs a password or has no text layer. A page whose text cannot be extracted is skipped.
    """
    if isinstance(data, Path):
        try:
            data = data.read_bytes()
        except OSError as exc:
            raise DocumentError(f"cannot read it ({exc.strerror or exc})") from None
    if b"%PDF-" not in data[:1024]:
        raise DocumentError("not a PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except Exception as exc:
        raise DocumentError(f"corrupt PDF ({_detail(exc)})") from None
    _unlock(reader)
    try:
        page_count = len(reader.pages)
    except Exception as exc:
        raise DocumentError(f"corrupt PDF ({_detail(exc)})") from None
    texts: list[str] = []
    for index in range(min(page_count, max(max_pages, 0))):
        try:
            texts.append(reader.pages[index].extract_text() or "")
        except Exception:  # one bad page (broken stream, odd font) must not lose the rest
            continue
    text = clean_pdf_text("\n".join(texts))
    if sum(ch.isalpha() for ch in text) < _MIN_LETTERS:
        raise DocumentError("no extractable text (scanned images?)")
    title, authors = _metadata(reader)
    return PdfText(title=title, authors=authors, text=text, pages=page_count)


def _unlock(reader: PdfReader) -> None:
    """Decrypt ``reader`` with the empty password, which opens owner-password-only files."""
    try:
        if not reader.is_encrypted:
            return
    except Exception as exc:
        raise DocumentError(f"corrupt PDF ({_detail(exc)})") from None
    try:
        opened = reader.decrypt("")
    except Exception as exc:  # DependencyError for AES without a crypto library, and so on
        raise DocumentError(f"encrypted PDF (cannot decrypt: {_detail(exc)})") from None
    if not opened:  # PasswordType.NOT_DECRYPTED is 0
        raise DocumentError("encrypted PDF (needs a password)")


def _detail(exc: BaseException) -> str:
    """A one-line, short description of ``exc`` for a warning."""
    message = clean_space(str(exc)) or type(exc).__name__
    return message if len(message) <= 80 else message[:77].rstrip() + "..."


def _metadata(reader: PdfReader) -> tuple[str | None, tuple[str, ...]]:
    try:
        info = reader.metadata
        if info is None:
            return None, ()
        title = _as_text(info.get("/Title"))
        author = _as_text(info.get("/Author"))
    except Exception:  # broken info dictionary: the text is still worth having
        return None, ()
    return (title if _meaningful_title(title) else None), _split_authors(author)


def _as_text(value: Any) -> str:
    try:
        if hasattr(value, "get_object"):
            value = value.get_object()
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            return ""
    except Exception:
        return ""
    # No NULs, and no lone surrogates (a broken UTF-16 string), which UTF-8 cannot encode.
    value = unicodedata.normalize("NFKC", value).replace("\x00", "")
    return clean_space("".join(ch for ch in value if unicodedata.category(ch) != "Cs"))


# fmt: off
_PLACEHOLDER_TITLES = frozenset({
    "untitled", "untitled document", "no title", "title", "document", "unknown", "none",
    "null", "paper", "article", "main", "manuscript", "draft", "slides", "presentation",
    "pdf", "preprint", "template", "word document",
})
# fmt: on
_FILE_NAME = re.compile(
    r"\.(?:docx?|pdf|tex|dvi|ps|eps|rtf|odt|pptx?|xlsx?|txt|md|html?|indd|qxd|pages|key)$",
    re.IGNORECASE,
)
_APP_PREFIX = re.compile(
    r"^(?:microsoft\s+(?:word|powerpoint|excel)|untitled|document\d*)\s*[-:]", re.IGNORECASE
)


def _meaningful_title(title: str) -> bool:
    """False for the placeholder titles that authoring tools leave in ``/Title``."""
    if len(title) < 3 or sum(ch.isalpha() for ch in title) < 2:
        return False
    lowered = title.lower()
    if lowered in _PLACEHOLDER_TITLES or _FILE_NAME.search(title) or _APP_PREFIX.match(title):
        return False
    if re.fullmatch(r"[\d\s._-]+", title):
        return False
    # "paper_final_v2", "C:\\Users\\x\\paper": identifiers and paths, not titles.
    return not ((" " not in title and "_" in title) or "\\" in title or lowered.startswith("/"))


_AUTHOR_SPLIT = re.compile(r"\s*;\s*|\s*,\s*(?:and\s+|&\s*)?|\s+and\s+|\s*&\s*", re.IGNORECASE)
_NAME_TOKEN = re.compile(r"^[^\W\d_][\w'’.-]*$")
# fmt: off
_NOT_NAMES = frozenset({
    "admin", "administrator", "user", "owner", "unknown", "author", "anonymous", "authors",
    "microsoft office user", "windows user", "default", "none", "null", "root",
})
# fmt: on


def _split_authors(value: str) -> tuple[str, ...]:
    """Author names from ``/Author``, or ``()`` when it does not look like a list of names.

    Splits on ``;``, ``,``, ``&`` and `` and ``; "Smith, John" (two single words around one
    comma) is one author, as is every "Last, First" part of a ``;``-separated list.
    """
    if not value or any(ch in value for ch in "@/:\\0123456789"):
        return ()
    if ";" in value:
        parts = [_flip(p) for p in re.split(r"\s*;\s*", value)]
    else:
        pieces = [p for p in re.split(r"\s*,\s*", value) if p]
        if len(pieces) == 2 and all(len(p.split()) == 1 for p in pieces):
            parts = [_flip(value)]
        else:
            parts = _AUTHOR_SPLIT.split(value)
    names = [clean_space(p) for p in parts if clean_space(p)]
    if not names or not all(_looks_like_name(n) for n in names):
        return ()
    return tuple(names)


def _flip(name: str) -> str:
    """ "Smith, John" -> "John Smith"; other spellings unchanged."""
    last, comma, first = name.partition(",")
    return f"{first.strip()} {last.strip()}" if comma and first.strip() else name


def _looks_like_name(name: str) -> bool:
    tokens = name.split()
    if not 2 <= len(tokens) <= 6 or name.lower() in _NOT_NAMES or len(name) > 80:
        return False
    return all(_NAME_TOKEN.match(t) for t in tokens) and any(t[0].isupper() for t in tokens)


# --------------------------------------------------------------------------------------------
# Cleaning


_DROPPED = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_LINE_BREAKS = re.compile(r"\r\n?|[\f\v\x1c-\x1e\x85\u2028\u2029]")
_HYPHENATED = re.compile(r"(\w)-[ \t]*\n[ \t]*(?=[a-zß-ÿ])")
_TRAILING_SPACE = re.compile(r"[ \t]+(?=\n|$)")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_pdf_text(text: str) -> str:
    """``text`` as extracted from a PDF, made fit to read and match.

    NFKC normalisation (ligatures such as "ﬁ" become "fi"), control characters other than
    newline and tab removed, words hyphenated across a line break joined when the next
    line starts in lowercase, trailing spaces removed, runs of blank lines reduced to one.
    Paragraph breaks (single blank lines) are kept.
    """
    text = unicodedata.normalize("NFKC", text).translate(_DROPPED)
    text = _LINE_BREAKS.sub("\n", text)
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    text = _HYPHENATED.sub(r"\1", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip("\n")


# --------------------------------------------------------------------------------------------
# The reference list

_REFERENCE_WORDS = (
    r"references(?:\s+and\s+notes)?|bibliography|works\s+cited|literature\s+cited"
    r"|reference\s+list|cited\s+literature"
)
# Markdown heading marks and bold around a heading: "## References", "**Appendix**".
_MARK = r"(?:\#{1,6}[ \t]+)?(?:\*\*|__)?"
_END_MARK = r"(?:\*\*|__)?"
_REFERENCE_HEADING = re.compile(
    rf"^[ \t]*{_MARK}(?:(?:\d{{1,2}}|[IVXLC]{{1,6}})\.?[ \t]+)?(?:{_REFERENCE_WORDS})"
    rf"[ \t]*:?{_END_MARK}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_EXPLICIT_APPENDIX = re.compile(
    rf"^[ \t]*{_MARK}(?:[A-Z][.:]?[ \t]+)?(?:appendix|appendices|supplementary|supplemental"
    r"|supplement\b)[^\n]{0,80}$",
    re.IGNORECASE | re.MULTILINE,
)
# "A Additional experiments", "A. Proofs", "B Implementation details": one capital letter,
# then a short heading (checked further by _plausible_heading).
_LETTER_SECTION = re.compile(
    rf"^[ \t]*{_MARK}([A-Z])(?:\.[ \t]*|[ \t]+)([A-Z][^\n]{{0,80}})$", re.MULTILINE
)
# fmt: off
_APPENDIX_WORDS = frozenset({
    "additional", "proof", "proofs", "experiment", "experiments", "experimental", "details",
    "implementation", "hyperparameters", "hyperparameter", "dataset", "datasets", "results",
    "derivation", "derivations", "analysis", "setup", "ablation", "ablations", "examples",
    "prompts", "prompt", "training", "evaluation", "further", "extended", "omitted",
    "qualitative", "limitations", "broader", "ethics", "statistics", "algorithm", "lemma",
    "theorem", "figures", "tables", "supplementary", "more", "case", "studies", "annotation",
})
# fmt: on


def strip_references(text: str) -> str:
    """``text`` without its reference list, keeping any appendix that follows it.

    The reference heading is the last line such as "References", "7. References",
    "VII. REFERENCES" or "Bibliography" found after the first 30% of the text (a table of
    contents mentions it early). The text is cut from there to an appendix heading
    ("Appendix ...", "Supplementary Material", "A. Additional experiments") or to the end.
    Without a heading the text is returned unchanged.
    """
    heading = None
    floor = len(text) * 0.3
    for match in _REFERENCE_HEADING.finditer(_unspace_capitals(text)):
        if match.start() >= floor:
            heading = match
    if heading is None:
        return text
    before = text[: heading.start()].rstrip()
    appendix = _appendix_start(text, heading.end())
    if appendix is None:
        return before
    return f"{before}\n\n{text[appendix:]}" if before else text[appendix:]


def _unspace_capitals(text: str) -> str:
    """Small-caps headings come out of PDFs as "R EFERENCES"; close the gap, keeping length
    (so offsets stay valid) by moving the space to the end of the line."""

    def close(match: re.Match[str]) -> str:
        return f"{match.group(1)}{match.group(2)}{match.group(3)} "

    return re.sub(
        r"^([ \t]*(?:[\dIVXLC]{1,6}\.?[ \t]+)?[A-Z]) ([A-Z]{3,})([ \t]*)$",
        close,
        text,
        flags=re.MULTILINE,
    )


def _appendix_start(text: str, start: int) -> int | None:
    """Where an appendix begins after offset ``start``, or None."""
    explicit = _EXPLICIT_APPENDIX.search(text, start)
    lettered = None
    for match in _LETTER_SECTION.finditer(text, start):
        if explicit is not None and match.start() >= explicit.start():
            break
        if match.group(1) == "A" and _is_letter_section(text, match):
            lettered = match.start()
            break
    found = [m for m in (explicit.start() if explicit else None, lettered) if m is not None]
    return min(found) if found else None


def _is_letter_section(text: str, match: re.Match[str]) -> bool:
    """Whether an "A ..." line after the references is an appendix heading, not a wrapped
    reference line: a plausible heading with an appendix-like word, or followed by a
    "B ..." section or an "A.1" subsection."""
    heading = match.group(2)
    if not _plausible_heading(heading):
        return False
    if any(w.lower().strip(":*_") in _APPENDIX_WORDS for w in heading.split()):
        return True
    rest = text[match.end() :]
    if re.search(r"^[ \t]*(?:\#{1,6}[ \t]+)?A\.1\.?[ \t]+[A-Z]", rest, re.MULTILINE):
        return True
    return any(
        m.group(1) == "B" and _plausible_heading(m.group(2)) for m in _LETTER_SECTION.finditer(rest)
    )


def _plausible_heading(heading: str) -> bool:
    """Short, and without the commas, initials, years and final period of a reference."""
    heading = heading.strip().rstrip("*_ \t")
    if len(heading.split()) > 10 or heading.endswith((".", ",")):
        return False
    return not re.search(r"[,;]|\b\d{4}\b|\b[A-Z]\.(?:\s|$)|\bet al\b", heading)
