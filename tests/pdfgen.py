"""Real PDF files for tests, made with fpdf2 (and encrypted with pypdf), so that PDF reading is
tested against what pypdf actually extracts rather than against hand-written bytes."""

from __future__ import annotations

import io

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter
from pypdf.errors import DependencyError

__all__ = ["drawing_only_pdf", "encrypt_pdf", "make_pdf", "owner_only_encrypted"]

# Characters the core fonts cannot encode, spelled in Latin-1 instead.
_LATIN1 = str.maketrans({"—": "-", "–": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "..."})


def _latin1(text: str) -> str:
    """``text`` made encodable by the core fonts (Latin-1); other characters become "?"."""
    return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


def make_pdf(pages: list[str], *, title: str | None = None, author: str | None = None) -> bytes:
    """A PDF with one page per string (Helvetica 11pt, lines wrapped to the page width) and
    the given ``/Title`` and ``/Author`` metadata."""
    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    if title is not None:
        pdf.set_title(_latin1(title))
    if author is not None:
        pdf.set_author(_latin1(author))
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 5, _latin1(text))
    return bytes(pdf.output())


def drawing_only_pdf() -> bytes:
    """A one-page PDF holding a drawn rectangle and no text, like a scan without OCR."""
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    return bytes(pdf.output())


def _encrypted(data: bytes, user_password: str, owner_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    try:
        writer.encrypt(user_password, owner_password, algorithm="AES-256")
    except DependencyError:  # no AES provider installed: RC4 needs none
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.encrypt(user_password, owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypt_pdf(data: bytes, password: str = "secret") -> bytes:
    """``data`` encrypted so that it opens only with ``password``."""
    return _encrypted(data, password, f"{password}-owner")


def owner_only_encrypted(data: bytes) -> bytes:
    """``data`` encrypted with an owner password only: anyone may open it (empty user
    password), as with many publishers' PDFs."""
    return _encrypted(data, "", "owner-secret")
