"""Which reader handles a path, and --arxiv-ids files: the same size cap and messages as
every other input."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveygen.errors import InputError
from surveygen.library.local import check_path, read_arxiv_ids


def test_read_arxiv_ids(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("# mine\n2101.00001v2, arXiv:2101.00002\nhttps://arxiv.org/abs/2101.00001v2\n")
    ids, result = read_arxiv_ids(path, max_bytes=1_000)
    assert ids == ["2101.00001v2", "2101.00002"]
    assert result.warnings == []


def test_read_arxiv_ids_size_cap_and_empty_file(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("2101.00001\n" * 200)
    ids, result = read_arxiv_ids(big, max_bytes=1_000)
    assert ids == []
    assert result.warnings == [
        f"{big}: skipped: larger than the 1 KB limit (2.2 KB); "
        "raise max_file_mb in surveygen.toml or split it"
    ]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert read_arxiv_ids(empty, max_bytes=1_000)[1].warnings == [f"{empty}: skipped: empty file"]


def test_check_path_with_a_name_too_long_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot use it \(File name too long\)"):
        check_path(tmp_path / ("x" * 5000 + ".bib"))
