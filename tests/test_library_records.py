"""The helpers every reader shares: the size-capped file reader, sizes in messages, lone
surrogates and title capping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pdfgen import make_pdf

from surveygen.library.pdf import extract_pdf
from surveygen.library.records import (
    MAX_TITLE_CHARS,
    DocumentError,
    cap_title,
    format_size,
    read_capped,
    scrub,
)


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (999_949, "999.9 KB"),
        (999_950, "1.0 MB"),
        (1_000, "1 KB"),
        (2_900, "2.9 KB"),
        (3_013, "3.0 KB"),
        (1_000_000, "1 MB"),
        (1_500_000, "1.5 MB"),
        (50_000_000, "50 MB"),
        (50_000_001, "50.0 MB"),  # just over a 50 MB limit does not read as the limit
        (100 * 1024 * 1024, "104.9 MB"),
    ],
)
def test_format_size_uses_decimal_units(n: int, shown: str) -> None:
    assert format_size(n) == shown


def reason(path: Path, max_bytes: int = 1_000_000) -> str:
    with pytest.raises(DocumentError) as info:
        read_capped(path, max_bytes)
    return str(info.value)


def test_read_capped_returns_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_capped(path, 100) == b"\xef\xbb\xbfhello\n"
    assert read_capped(path, max_bytes=9) == b"\xef\xbb\xbfhello\n"  # exactly at the limit


def test_read_capped_refusals(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\xef\xbb\xbf \n\t\n")
    assert reason(empty) == "empty file"
    assert reason(blank) == "empty file"
    assert reason(tmp_path) == "a folder, not a file"
    assert reason(tmp_path / "missing.txt") == "cannot read it (No such file or directory)"
    assert reason(tmp_path / ("x" * 5000 + ".txt")) == "cannot read it (File name too long)"


def test_read_capped_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    assert reason(fifo) == "not a regular file"


def test_read_capped_checks_the_size_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.bib"
    with path.open("wb") as handle:  # sparse: stat() says 100 MB, nothing is written
        handle.truncate(100_000_000)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("read although too large")

    monkeypatch.setattr(Path, "open", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    assert reason(path, 50_000_000) == (
        "larger than the 50 MB limit (100 MB); raise max_file_mb in surveygen.toml or split it"
    )


def test_read_capped_bytes_feed_extract_pdf(tmp_path: Path) -> None:
    """How gather reads an attached PDF: ``extract_pdf(read_capped(path, max_bytes))``."""
    path = tmp_path / "paper.pdf"
    data = make_pdf(["Graph networks learn from relations between things."])
    path.write_bytes(data)
    assert "Graph networks" in extract_pdf(read_capped(path, len(data))).text
    with pytest.raises(DocumentError, match=r"^larger than the"):
        extract_pdf(read_capped(path, len(data) - 1))


def test_scrub_replaces_lone_surrogates_only() -> None:
    assert scrub("plain ü text 😀") == "plain ü text 😀"
    scrubbed = scrub("\ud800 x \udfff")
    assert scrubbed == "\ufffd x \ufffd"
    scrubbed.encode("utf-8")


def test_cap_title() -> None:
    assert cap_title("Short title") == "Short title"
    words = " ".join(["word"] * 100)  # 499 characters
    capped = cap_title(words)
    assert len(capped) <= MAX_TITLE_CHARS and capped.endswith("word") and capped.startswith("word")
    assert cap_title("x" * 400) == "x" * MAX_TITLE_CHARS  # no space: a hard cut
    # The cut falls right before a space: the last word is whole and kept.
    assert cap_title("a " + "b" * 298 + " more") == "a " + "b" * 298
    # The cut falls inside a word: that word goes.
    assert cap_title("a " + "b" * 299 + " more") == "a"
