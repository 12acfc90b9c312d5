"""Reading the user's documents: PDF extraction, text cleaning, reference stripping, titles,
abstracts, identifiers, and folders with their warnings."""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

import pytest
from pdfgen import drawing_only_pdf, encrypt_pdf, make_pdf, owner_only_encrypted
from pypdf import PdfReader

from surveygen.library.documents import read_document, read_file, read_folder
from surveygen.library.pdf import PdfText, clean_pdf_text, extract_pdf, strip_references
from surveygen.library.records import DocumentError

MB = 1024 * 1024
BODY = "Cats purr when they are content and sometimes when they are stressed. " * 30
SKIP_LINE = re.compile(r"^.+: skipped: \S.*$")


def first_page(title: str = "Deep Learning for Cats") -> str:
    return (
        f"{title}\n"
        "John Smith, Jane Doe\n"
        "University of Nowhere\n"
        "Abstract\n"
        "We study why cats purr. Our model explains purring from first principles.\n"
        "\n"
        "1 Introduction\n"
        f"{BODY}"
    )


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def read(path: Path, max_bytes: int = MB):
    return read_document(path, max_bytes=max_bytes, source="test")


def reason(path: Path, max_bytes: int = MB) -> str:
    with pytest.raises(DocumentError) as info:
        read(path, max_bytes)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# extract_pdf


def test_extract_pdf_reads_every_page_in_order() -> None:
    pdf = extract_pdf(make_pdf(["First page words here.", "Second page words.", "Third one."]))
    assert isinstance(pdf, PdfText)
    assert pdf.pages == 3
    first = pdf.text.index("First page")
    assert first < pdf.text.index("Second page") < pdf.text.index("Third one")
    assert pdf.title is None and pdf.authors == ()


def test_extract_pdf_accepts_a_path(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pdf", make_pdf(["Words on a page, enough of them."]))
    assert "Words on a page" in extract_pdf(path).text


def test_extract_pdf_missing_path_is_a_document_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"^cannot read it \("):
        extract_pdf(tmp_path / "missing.pdf")


def test_extract_pdf_max_pages_limits_reading_not_page_count() -> None:
    pdf = extract_pdf(
        make_pdf(["Alpha page text.", "Beta page text.", "Gamma page text."]), max_pages=2
    )
    assert pdf.pages == 3
    assert "Beta page" in pdf.text and "Gamma" not in pdf.text


def test_extract_pdf_metadata_title_and_authors() -> None:
    data = make_pdf([first_page()], title="Why Cats Purr", author="John Smith; Jane Doe")
    pdf = extract_pdf(data)
    assert pdf.title == "Why Cats Purr"
    assert pdf.authors == ("John Smith", "Jane Doe")


def test_extract_pdf_metadata_drops_lone_surrogates(monkeypatch: pytest.MonkeyPatch) -> None:
    # A broken UTF-16 string in /Title or /Author must not reach a UTF-8 write.
    info = {"/Title": "Why Cats \ud800Purr", "/Author": "John \udc00Smith; Jane Doe"}
    monkeypatch.setattr(PdfReader, "metadata", property(lambda self: info))
    pdf = extract_pdf(make_pdf([first_page()]))
    assert pdf.title == "Why Cats Purr"
    assert pdf.authors == ("John Smith", "Jane Doe")


@pytest.mark.parametrize(
    ("author", "expected"),
    [
        ("John Smith and Jane Doe", ("John Smith", "Jane Doe")),
        ("John Smith, Jane Doe, and Ann Lee", ("John Smith", "Jane Doe", "Ann Lee")),
        ("Smith, John", ("John Smith",)),
        ("Smith, John; Doe, Jane", ("John Smith", "Jane Doe")),
        ("admin", ()),
        ("Microsoft Office User", ()),
        ("jsmith@example.org", ()),
        ("user123", ()),
    ],
)
def test_extract_pdf_authors_only_when_names(author: str, expected: tuple[str, ...]) -> None:
    assert extract_pdf(make_pdf([first_page()], author=author)).authors == expected


@pytest.mark.parametrize(
    "title",
    [
        "",
        "untitled",
        "Untitled",
        "paper.docx",
        "Microsoft Word - paper",
        "main.tex",
        "12345",
        "final_version_v2",
    ],
)
def test_extract_pdf_ignores_placeholder_titles(title: str) -> None:
    assert extract_pdf(make_pdf([first_page()], title=title)).title is None


def test_extract_pdf_encrypted_needs_password() -> None:
    data = encrypt_pdf(make_pdf([first_page()]))
    with pytest.raises(DocumentError, match=r"^encrypted PDF \(needs a password\)$"):
        extract_pdf(data)


def test_extract_pdf_owner_only_encryption_is_readable() -> None:
    data = owner_only_encrypted(make_pdf([first_page()], title="Why Cats Purr"))
    assert b"/Encrypt" in data
    pdf = extract_pdf(data)
    assert "We study why cats purr" in pdf.text
    assert pdf.title == "Why Cats Purr"


def test_extract_pdf_not_a_pdf() -> None:
    with pytest.raises(DocumentError, match=r"^not a PDF \(no %PDF header\)$"):
        extract_pdf(b"<html><body>Not found</body></html>")


@pytest.mark.parametrize("cut", [0.5, 0.25])
def test_extract_pdf_truncated_is_corrupt(cut: float) -> None:
    data = make_pdf([first_page(), BODY, BODY])
    with pytest.raises(DocumentError, match=r"^corrupt PDF \(.+\)$"):
        extract_pdf(data[: int(len(data) * cut)])


def test_extract_pdf_corrupt_prints_nothing(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without pytest's capturing handlers, as in the real program: an unhandled WARNING
    # would go to logging.lastResort, which prints to stderr.
    monkeypatch.setattr(logging.root, "handlers", [])
    with pytest.raises(DocumentError, match="corrupt PDF"):
        extract_pdf(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_extract_pdf_drawing_only_has_no_text() -> None:
    with pytest.raises(DocumentError, match=r"^no extractable text \(scanned images\?\)$"):
        extract_pdf(drawing_only_pdf())


def test_extract_pdf_skips_a_broken_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PageObject

    original = PageObject.extract_text

    def flaky(self: PageObject, *args: object, **kwargs: object) -> str:
        text = original(self, *args, **kwargs)
        if "Second" in text:
            raise KeyError("/Font")
        return text

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    pdf = extract_pdf(make_pdf(["First page text.", "Second page text.", "Third page text."]))
    assert "First page" in pdf.text and "Third page" in pdf.text
    assert "Second" not in pdf.text


def test_extract_pdf_joins_hyphenation() -> None:
    pdf = extract_pdf(make_pdf(["The trans-\nformer architecture is used by many models."]))
    assert "transformer architecture" in pdf.text


# --------------------------------------------------------------------------------------------
# clean_pdf_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("e\ufb03cient \ufb01ne", "efficient fine"),
        ("trans-\nformer", "transformer"),
        ("trans- \n  former", "transformer"),
        ("Anglo-\nSaxon", "Anglo-\nSaxon"),
        ("a\x00b\x07c", "abc"),
        ("keep\ttab", "keep\ttab"),
        ("line   \nnext  ", "line\nnext"),
        ("one\n\n\n\n\ntwo", "one\n\ntwo"),
        ("para one\n\npara two", "para one\n\npara two"),
        ("crlf\r\nline", "crlf\nline"),
        ("soft\u00adhyphen", "softhyphen"),
        ("\n\n  lead", "  lead"),
    ],
)
def test_clean_pdf_text(raw: str, clean: str) -> None:
    assert clean_pdf_text(raw) == clean


# --------------------------------------------------------------------------------------------
# strip_references

INTRO = "1 Introduction\n" + "Prose about the topic. " * 60 + "\n"


@pytest.mark.parametrize(
    "heading",
    [
        "References",
        "REFERENCES",
        "7 References",
        "7. References",
        "VII. REFERENCES",
        "Bibliography",
        "Works Cited",
        "Literature Cited",
        "Reference List",
        "R EFERENCES",
    ],
)
def test_strip_references_cuts_to_end(heading: str) -> None:
    text = f"{INTRO}\n{heading}\n[1] A. Smith. A study. 2020.\n[2] B. Jones. More. 2021."
    stripped = strip_references(text)
    assert stripped == INTRO.rstrip()


@pytest.mark.parametrize(
    "appendix",
    [
        "Appendix",
        "APPENDIX",
        "Appendices",
        "A Appendix: Proofs",
        "Appendix A. Proofs",
        "Supplementary Material",
        "A. Additional experiments",
        "A Implementation Details",
    ],
)
def test_strip_references_keeps_appendix(appendix: str) -> None:
    refs = "References\n[1] A. Smith. A study. 2020.\n[2] B. Jones, C. Lee. More. 2021.\n"
    text = f"{INTRO}{refs}{appendix}\nAppendix prose that matters."
    stripped = strip_references(text)
    assert "A. Smith" not in stripped and "B. Jones" not in stripped
    assert stripped.startswith(INTRO.rstrip())
    assert stripped.endswith(f"{appendix}\nAppendix prose that matters.")


def test_strip_references_ignores_reference_lines_that_look_like_sections() -> None:
    refs = (
        "References\nA. Vaswani, N. Shazeer, and N. Parmar. 2017.\n"
        "A Survey of Everything Ever Written\nB. Jones. Title. 2021.\n"
    )
    assert strip_references(INTRO + refs) == INTRO.rstrip()


def test_strip_references_letter_sections_need_support() -> None:
    refs = "References\n[1] A. Smith. A study. 2020.\n"
    appendix = "A Proofs of the theorems\nProof text.\nB More Results\nResult text."
    assert strip_references(INTRO + refs + appendix).endswith(appendix)


def test_strip_references_ignores_early_table_of_contents() -> None:
    toc = "Contents\n1 Introduction\n2 Method\nReferences\n"
    text = toc + INTRO + "References\n[1] A. Smith. A study. 2020."
    stripped = strip_references(text)
    assert stripped.startswith(toc)
    assert "A. Smith" not in stripped
    assert stripped.endswith("Prose about the topic.")


def test_strip_references_only_early_heading_keeps_text() -> None:
    text = "References\n" + INTRO
    assert strip_references(text) == text


def test_strip_references_uses_the_last_heading() -> None:
    text = INTRO + "References\n[1] first list\n" + INTRO + "References\n[2] second list"
    stripped = strip_references(text)
    assert "[1] first list" in stripped and "[2] second list" not in stripped


@pytest.mark.parametrize(
    "text",
    ["No heading at all. " * 50, INTRO + "We cite references throughout.\nMore text.", ""],
)
def test_strip_references_without_heading_is_unchanged(text: str) -> None:
    assert strip_references(text) == text


# --------------------------------------------------------------------------------------------
# read_document: PDFs


def test_read_pdf_document(tmp_path: Path) -> None:
    page = (
        "arXiv:2101.00001v2 [cs.CL] 3 Jan 2021\n"
        + first_page()
        + "\nReferences\n[1] A. Smith. Reference entry that must go. 2020."
    )
    path = write(tmp_path / "purr.pdf", make_pdf([page, BODY], author="John Smith; Jane Doe"))
    cand = read_document(path, max_bytes=MB, source="folder:pdfs", where="pdfs/purr.pdf")
    assert cand.title == "Deep Learning for Cats"
    assert cand.authors == ("John Smith", "Jane Doe")
    assert (cand.arxiv_id, cand.arxiv_version, cand.year) == ("2101.00001", 2, 2021)
    assert cand.abstract.startswith("We study why cats purr.")
    assert cand.abstract.endswith("from first principles.")
    assert "Cats purr when they are content" in cand.text
    assert "Reference entry that must go" not in cand.text
    assert (cand.origin, cand.source, cand.where) == ("user", "folder:pdfs", "pdfs/purr.pdf")


def test_read_pdf_metadata_title_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pdf", make_pdf([first_page()], title="The Real Title"))
    assert read(path).title == "The Real Title"


def test_read_pdf_title_joins_two_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pdf", make_pdf([first_page("Deep Learning for\nPurring Cats")]))
    assert read(path).title == "Deep Learning for Purring Cats"


def test_read_pdf_title_skips_notices(tmp_path: Path) -> None:
    page = (
        "Published as a conference paper at ICLR 2021\n"
        "Preprint. Under review.\n"
        "3\n"
        "Purring as Communication in Domestic Cats\n" + BODY
    )
    path = write(tmp_path / "a.pdf", make_pdf([page]))
    assert read(path).title == "Purring as Communication in Domestic Cats"


def test_read_pdf_failures_keep_their_reason(tmp_path: Path) -> None:
    locked = write(tmp_path / "locked.pdf", encrypt_pdf(make_pdf([first_page()])))
    assert reason(locked) == "encrypted PDF (needs a password)"
    fake = write(tmp_path / "fake.pdf", b"PK\x03\x04 this is a zip archive really")
    assert reason(fake) == "not a PDF (no %PDF header)"
    scan = write(tmp_path / "scan.pdf", drawing_only_pdf())
    assert reason(scan) == "no extractable text (scanned images?)"


def test_read_owner_only_encrypted_pdf(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pdf", owner_only_encrypted(make_pdf([first_page()])))
    assert read(path).title == "Deep Learning for Cats"


# --------------------------------------------------------------------------------------------
# read_document: text and Markdown


@pytest.mark.parametrize(
    ("name", "content", "title"),
    [
        ("a.md", "# Purring *Cats*\n\nSome text here.\n", "Purring Cats"),
        ("a.md", "## Background\n\n# The Real Title #\n\nText.\n", "The Real Title"),
        ("a.md", "Setext **Title** Here\n=====\n\nText.\n", "Setext Title Here"),
        (
            "a.md",
            '---\ntitle: "Front Matter Title"\nauthor: A. B\n---\n# Other\n',
            "Front Matter Title",
        ),
        (
            "a.markdown",
            "# Abstract\nShort.\n\n## Real Section Title\nText.\n",
            "Real Section Title",
        ),
        ("a.txt", "\n\nA Plain Text Title\n\nBody text follows here.\n", "A Plain Text Title"),
        (
            "a.txt",
            "arXiv:2101.00001v1 [cs.CL] 3 Jan 2021\nme@example.org\nhttps://x.org\n"
            "January 3, 2021\nPreprint\n12\nAbstract\nThe Title After Noise\n",
            "The Title After Noise",
        ),
        ("a.txt", "# Hashed Title in Text\n\nBody.\n", "Hashed Title in Text"),
        ("my_paper-draft.txt", "x\n\n42\n", "my paper draft"),
    ],
)
def test_text_titles(tmp_path: Path, name: str, content: str, title: str) -> None:
    assert read(write(tmp_path / name, content)).title == title


def test_title_is_capped(tmp_path: Path) -> None:
    long_title = " ".join(["word"] * 25) + " " + "x" * 400
    path = write(tmp_path / "a.md", f"# {long_title}\n\nText.\n")
    title = read(path).title
    assert len(title) <= 300 and title.startswith("word word")


def test_front_matter_authors_and_body(tmp_path: Path) -> None:
    content = "---\ntitle: T One\nauthors:\n  - Ann Lee\n  - Bo Chen\n---\n\nBody text.\n"
    cand = read(write(tmp_path / "a.md", content))
    assert cand.authors == ("Ann Lee", "Bo Chen")
    assert cand.text == "Body text."


@pytest.mark.parametrize(
    "line",
    [
        "Abstract: We show that cats purr.",
        "Abstract—We show that cats purr.",
        "Abstract. We show that cats purr.",
        "**Abstract:** We show that cats purr.",
    ],
)
def test_abstract_prefix(tmp_path: Path, line: str) -> None:
    content = f"A Title Line\nAnn Lee\n\n{line}\nSecond line of it.\n\n1 Introduction\n{BODY}"
    assert read(write(tmp_path / "a.txt", content)).abstract == (
        "We show that cats purr. Second line of it."
    )


def test_abstract_heading_markdown(tmp_path: Path) -> None:
    content = "# Title\n\n## Abstract\n\nCats purr.\nA lot.\n\n## Introduction\n\nBody.\n"
    assert read(write(tmp_path / "a.md", content)).abstract == "Cats purr. A lot."


def test_abstract_stops_at_section_heading_without_blank_line(tmp_path: Path) -> None:
    content = "A Title Line\nABSTRACT\nCats purr.\n1 Introduction\nBody starts.\n"
    assert read(write(tmp_path / "a.txt", content)).abstract == "Cats purr."


def test_abstract_is_capped(tmp_path: Path) -> None:
    content = "A Title Line\nAbstract\n" + "word " * 500 + "\n"
    assert len(read(write(tmp_path / "a.txt", content)).abstract.split()) == 300


def test_abstract_falls_back_to_body(tmp_path: Path) -> None:
    content = "A Title Line\nAnn Lee\nann@example.org\n\n" + "Body word " * 200
    abstract = read(write(tmp_path / "a.txt", content)).abstract
    assert abstract.startswith("Body word Body word")
    assert len(abstract.split()) == 150
    assert "Ann Lee" not in abstract


def test_identifiers_in_text(tmp_path: Path) -> None:
    content = (
        "A Title Line\narXiv:hep-th/9901001v3 [hep-th]\n"
        "Published version: https://doi.org/10.1103/PhysRevD.59.123456.\n\nBody.\n"
    )
    cand = read(write(tmp_path / "a.txt", content))
    assert (cand.arxiv_id, cand.arxiv_version, cand.year) == ("hep-th/9901001", 3, 1999)
    assert cand.doi == "10.1103/physrevd.59.123456"


def test_doi_prefix_and_brackets(tmp_path: Path) -> None:
    content = "A Title Line\n(doi:10.1000/xyz.42)\n\nBody.\n"
    assert read(write(tmp_path / "a.txt", content)).doi == "10.1000/xyz.42"


def test_identifiers_only_on_first_page(tmp_path: Path) -> None:
    content = "A Title Line\n" + "Filler text. " * 400 + "\narXiv:2101.00001 doi:10.1000/late\n"
    cand = read(write(tmp_path / "a.txt", content))
    assert cand.arxiv_id is None and cand.doi is None and cand.year is None


def test_new_style_arxiv_year_from_id(tmp_path: Path) -> None:
    cand = read(write(tmp_path / "a.txt", "A Title Line\narXiv:1706.03762\n"))
    assert (cand.arxiv_id, cand.arxiv_version, cand.year) == ("1706.03762", None, 2017)


def test_text_references_are_stripped(tmp_path: Path) -> None:
    content = "# Title\n\n" + INTRO + "\n## References\n\n- A. Smith. 2020.\n"
    text = read(write(tmp_path / "a.md", content)).text
    assert "A. Smith" not in text and text.endswith("Prose about the topic.")


def test_text_encodings(tmp_path: Path) -> None:
    bom8 = write(tmp_path / "bom8.txt", codecs.BOM_UTF8 + "Caf\u00e9 Title Here\n".encode())
    assert read(bom8).title == "Caf\u00e9 Title Here"
    utf16 = write(tmp_path / "u16.txt", "Sixteen Bit Title\n\nBody.\n".encode("utf-16"))
    assert read(utf16).title == "Sixteen Bit Title"
    crlf = write(tmp_path / "crlf.txt", b"Windows Line Ends\r\n\r\nBody.\r\n")
    assert read(crlf).text == "Windows Line Ends\n\nBody."


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.txt", "Caf\u00e9 au lait".encode("latin-1"))
    assert reason(path) == (
        "not UTF-8 text (invalid byte at offset 3); convert it with iconv -t UTF-8"
    )


def test_binary_junk_named_txt(tmp_path: Path) -> None:
    assert reason(write(tmp_path / "nul.txt", b"text\x00more")) == "binary data, not text"
    junk = bytes(range(1, 32)) * 10 + b"some letters"
    assert reason(write(tmp_path / "junk.txt", junk)) == "binary data, not text"


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    assert reason(write(tmp_path / "empty.txt", b"")) == "empty file"
    assert reason(write(tmp_path / "empty.pdf", b"")) == "empty file"
    assert reason(write(tmp_path / "blank.md", " \n\t\n  \r\n")).startswith("empty")


def test_size_cap_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "big.txt", "A Title Line\n" + "x" * 3000)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("read although too large")

    monkeypatch.setattr(Path, "open", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    message = reason(path, max_bytes=2000)
    assert message == (
        "larger than the 2 KB limit (3.0 KB); raise max_file_mb in surveygen.toml or split it"
    )


def test_size_cap_message_in_megabytes(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "A Title Line\n")
    import os

    os.truncate(path, 1_500_000)  # sparse: no real 1.5 MB written
    message = reason(path, max_bytes=1_000_000)
    assert message.startswith("larger than the 1 MB limit (1.5 MB); raise max_file_mb")


def test_unsupported_and_unreadable(tmp_path: Path) -> None:
    assert reason(write(tmp_path / "a.docx", b"PK")).startswith("unsupported file type (.docx)")
    assert reason(tmp_path / "missing.txt").startswith("cannot read it (")


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path / "UPPER.PDF", make_pdf([first_page()]))
    assert read(path).title == "Deep Learning for Cats"
    assert read(write(tmp_path / "NOTE.TXT", "Upper Case Name\n")).title == "Upper Case Name"


# --------------------------------------------------------------------------------------------
# Folders and single files


def test_read_folder(tmp_path: Path) -> None:
    lib = tmp_path / "papers"
    write(lib / "b.txt", "Second Paper Title\n\nBody.\n")
    write(lib / "a.pdf", make_pdf([first_page()]))
    write(lib / "sub" / "c.md", "# Nested Paper\n\nBody.\n")
    write(lib / "sub" / "deeper" / "d.MD", "# Deep Paper\n")
    write(lib / ".hidden.txt", "Hidden Paper\n")
    write(lib / ".git" / "notes.txt", "Hidden Folder Paper\n")
    write(lib / "broken.pdf", b"%PDF-1.4\nnothing else")
    write(lib / "empty.txt", "")
    write(lib / "slides.docx", b"PK")
    write(lib / "fig.png", b"\x89PNG")
    write(lib / "sub" / "more.png", b"\x89PNG")
    write(lib / "Makefile", "all:\n")

    result = read_folder(lib, max_bytes=MB)

    assert [c.title for c in result.candidates] == [
        "Deep Learning for Cats",
        "Second Paper Title",
        "Nested Paper",
        "Deep Paper",
    ]
    assert [c.where for c in result.candidates] == [
        f"{lib}/a.pdf",
        f"{lib}/b.txt",
        f"{lib}/sub/c.md",
        f"{lib}/sub/deeper/d.MD",
    ]
    assert {c.source for c in result.candidates} == {"folder:papers"}
    assert {c.origin for c in result.candidates} == {"user"}
    assert (result.read, result.skipped) == (6, 2)
    assert len(result.warnings) == 3
    assert result.warnings[0].startswith(f"{lib}/broken.pdf: skipped: corrupt PDF (")
    assert result.warnings[1:] == [
        f"{lib}/empty.txt: skipped: empty file",
        f"{lib}: ignored 4 file(s) of other types (.docx, .png, no suffix)",
    ]
    skip_lines = [w for w in result.warnings if "skipped" in w]
    assert len(skip_lines) == 2 and all(SKIP_LINE.match(w) for w in skip_lines)


def test_read_folder_every_failure_is_one_skip_line(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write(lib / "locked.pdf", encrypt_pdf(make_pdf([first_page()])))
    write(lib / "scan.pdf", drawing_only_pdf())
    write(lib / "fake.pdf", b"hello")
    write(lib / "latin.txt", "caf\u00e9".encode("latin-1"))
    write(lib / "bin.md", b"\x00\x01\x02")
    write(lib / "big.txt", "y" * 5000)
    result = read_folder(lib, max_bytes=4096)
    assert result.candidates == []
    assert (result.read, result.skipped) == (6, 6)
    assert len(result.warnings) == 6
    assert all(SKIP_LINE.match(w) for w in result.warnings)
    assert [w.split(": skipped: ")[0] for w in result.warnings] == [
        f"{lib}/{n}"
        for n in ["big.txt", "bin.md", "fake.pdf", "latin.txt", "locked.pdf", "scan.pdf"]
    ]


def test_read_folder_empty(tmp_path: Path) -> None:
    lib = tmp_path / "nothing"
    lib.mkdir()
    result = read_folder(lib, max_bytes=MB)
    assert (result.candidates, result.read, result.skipped) == ([], 0, 0)
    assert result.warnings == [f"{lib}: no .pdf, .txt or .md files found"]


def test_read_folder_only_other_types(tmp_path: Path) -> None:
    lib = tmp_path / "imgs"
    write(lib / "a.png", b"x")
    result = read_folder(lib, max_bytes=MB)
    assert result.read == 0
    assert result.warnings == [
        f"{lib}: no .pdf, .txt or .md files found",
        f"{lib}: ignored 1 file(s) of other types (.png)",
    ]


def test_read_folder_does_not_follow_symlinked_folders(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "x.txt", "Outside Paper Title\n")
    lib = tmp_path / "lib"
    write(lib / "in.txt", "Inside Paper Title\n")
    (lib / "link").symlink_to(outside, target_is_directory=True)
    result = read_folder(lib, max_bytes=MB)
    assert [c.title for c in result.candidates] == ["Inside Paper Title"]


def test_read_file(tmp_path: Path) -> None:
    good = read_file(write(tmp_path / "notes.md", "# My Notes\n\nText.\n"), max_bytes=MB)
    assert [c.title for c in good.candidates] == ["My Notes"]
    assert good.candidates[0].source == "file:notes.md"
    assert good.candidates[0].where == str(tmp_path / "notes.md")
    assert (good.read, good.skipped, good.warnings) == (1, 0, [])

    bad = read_file(write(tmp_path / "bad.pdf", b"not a pdf"), max_bytes=MB)
    assert bad.candidates == []
    assert (bad.read, bad.skipped) == (1, 1)
    assert bad.warnings == [f"{tmp_path / 'bad.pdf'}: skipped: not a PDF (no %PDF header)"]


def test_markdown_appendix_after_references_is_kept(tmp_path: Path) -> None:
    content = (
        "# Title\n\n" + INTRO + "\n## References\n\n- A. Smith. 2020.\n\n"
        "## Appendix A: Proofs\n\nProof of everything.\n"
    )
    text = read(write(tmp_path / "a.md", content)).text
    assert "A. Smith" not in text
    assert text.endswith("Prose about the topic.\n\n## Appendix A: Proofs\n\nProof of everything.")
