"""The user's library on disk: which reader handles a ``--papers`` path, and ``--arxiv-ids``
files.

A path that does not exist, or a file type no reader handles, is a usage error found before
any work starts (exit 2). Problems inside a readable input (a corrupt PDF in a folder, a bad
line of a JSONL file) are warnings: that entry is skipped and the run goes on.
"""

from __future__ import annotations

import re
from pathlib import Path

from surveygen.errors import InputError
from surveygen.library.records import DocumentError, LoadResult, normalise_arxiv_id, read_capped

__all__ = ["DOCUMENT_SUFFIXES", "check_path", "load_path", "read_arxiv_ids"]

DOCUMENT_SUFFIXES = (".pdf", ".txt", ".md", ".markdown")
_KINDS = {".jsonl": "jsonl", ".json": "json", ".bib": "bib"} | dict.fromkeys(
    DOCUMENT_SUFFIXES, "document"
)
_TYPES_HINT = (
    "give a folder of PDF/.txt/.md files, a .bib file (Zotero export works), a papers.jsonl "
    "file, LLMxMapReduce-V2 input (.json/.jsonl), or a single .pdf/.txt/.md file"
)


def check_path(path: Path, flag: str = "--papers") -> str:
    """The kind of input at ``path`` ("folder", "jsonl", "json", "bib", "document", "ids");
    InputError when it does not exist or no reader handles it."""
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long, a folder that may not be searched, ...
        raise InputError(
            f"{flag} {str(path)[:200]}: cannot use it ({exc.strerror or exc})", hint=_TYPES_HINT
        ) from None
    if not exists:
        raise InputError(f"{flag} {path}: no such file or folder", hint=_TYPES_HINT)
    if flag == "--arxiv-ids":
        if path.is_dir():
            raise InputError(
                f"--arxiv-ids {path}: is a folder",
                hint="give a text file with one arXiv id or URL per line",
            )
        return "ids"
    if path.is_dir():
        return "folder"
    kind = _KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"--papers {path}: unsupported file type '{path.suffix or path.name}'",
            hint=_TYPES_HINT,
        )
    return kind


def load_path(path: Path, *, max_bytes: int) -> LoadResult:
    """Read one ``--papers`` input with the reader for its kind."""
    kind = check_path(path)
    if kind == "folder":
        from surveygen.library.documents import read_folder

        return read_folder(path, max_bytes=max_bytes)
    if kind == "document":
        from surveygen.library.documents import read_file

        return read_file(path, max_bytes=max_bytes)
    if kind == "bib":
        from surveygen.library.bibtex import read_bib

        return read_bib(path, max_bytes=max_bytes)
    from surveygen.library.jsonl import read_json, read_jsonl

    return (read_jsonl if kind == "jsonl" else read_json)(path, max_bytes=max_bytes)


_SEPARATORS = re.compile(r"[\s,;]+")
_COMMENT = re.compile(r"(?:^|\s)#.*$")


def read_arxiv_ids(path: Path, *, max_bytes: int) -> tuple[list[str], LoadResult]:
    """arXiv ids from a text file: one or more ids or abs/pdf URLs per line, ``#`` comments.

    Returns the ids (with ``vN`` when a version was given), in file order without repeats,
    and a LoadResult holding only the warnings and counts (unreadable file, bad tokens).
    """
    check_path(path, "--arxiv-ids")
    result = LoadResult()
    try:
        data = read_capped(path, max_bytes)
    except DocumentError as exc:
        result.skip(str(path), str(exc))
        return [], result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.skip(str(path), f"not UTF-8 text (invalid byte at offset {exc.start})")
        return [], result
    ids: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", line)  # "# note" or "id  # note"; a URL's "#frag" stays
        for token in _SEPARATORS.split(line.strip()):
            if not token:
                continue
            parsed = normalise_arxiv_id(token)
            if parsed is None:
                result.skip(f"{path}:{lineno}", f"not an arXiv id or URL: {token[:80]!r}")
                continue
            result.read += 1
            ident = f"{parsed[0]}v{parsed[1]}" if parsed[1] else parsed[0]
            if ident not in ids:
                ids.append(ident)
    if not ids and not result.warnings:
        result.warnings.append(f"{path}: no arXiv ids found")
    return ids, result
