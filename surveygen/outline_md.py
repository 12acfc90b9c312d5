"""Read back the editable outline file, ``outline.md``.

The format, written by ``templates/outline.md.j2`` and meant to be edited by hand::

    # Survey title

    ## Section title <!-- id: n1 -->

    What to extract from papers for this section, and how to analyse it.

    ### Subsection title <!-- id: n2 -->

    ...

A section at depth d has d + 1 ``#``. The id comment ties a heading to the work already done
for it; a heading without one is a new section and gets a fresh id. Other HTML comments are
ignored. Parsing is pure and strict: a malformed file raises InputError naming the line, so a
user's edit never silently changes the outline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from surveygen.errors import InputError
from surveygen.models import Outline, OutlineNode

_HEADING = re.compile(r"^(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_ID_COMMENT = re.compile(r"[ \t]*<!--[ \t]*id:[ \t]*(\S*?)[ \t]*-->$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_NUMERIC_ID = re.compile(r"n(\d+)")
# Ids of the parts the writer adds around the outline (surveygen/document.py).
RESERVED_IDS = frozenset({"introduction", "conclusion", "abstract"})
_HINT = "fix outline.md by hand, or delete it to let surveygen write a fresh one"
_READ_HINT = "give the outline.md of an earlier run, edited as you like"
# An outline of a hundred sections with long descriptions is tens of kilobytes.
MAX_OUTLINE_BYTES = 1_000_000


@dataclass
class _Draft:
    """A node while its children are still being read."""

    line: int
    level: int
    title: str
    id: str | None
    lines: list[str] = field(default_factory=list)
    children: list[_Draft] = field(default_factory=list)


def read_outline_file(path: Path, *, id_floor: int = 1) -> Outline:
    """``--outline FILE``: read and parsed, InputError naming the file for any problem."""
    return parse_outline_md(read_outline_text(path), source=str(path), id_floor=id_floor)


def read_outline_text(path: Path) -> str:
    """The text of ``--outline FILE``, InputError naming the file for any problem.

    At most ``MAX_OUTLINE_BYTES`` are read, so a wrong file (a PDF, ``/dev/zero``) costs
    nothing; a pipe such as ``<(...)`` works when it is read once (keep the text).
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_OUTLINE_BYTES + 1)
    except OSError as exc:
        raise InputError(
            f"--outline {path}: cannot read it ({exc.strerror or exc})", hint=_READ_HINT
        ) from None
    if len(raw) > MAX_OUTLINE_BYTES:
        raise InputError(
            f"--outline {path}: larger than {MAX_OUTLINE_BYTES // 1_000_000} MB, too large "
            "for an outline (a short Markdown file of headings)",
            hint=_READ_HINT,
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"--outline {path}: not UTF-8 text (invalid byte at offset {exc.start})", hint=_HINT
        ) from None
    if not text.strip():
        raise InputError(f"--outline {path}: the file is empty", hint=_READ_HINT)
    return text


def parse_outline_md(text: str, *, source: str = "outline.md", id_floor: int = 1) -> Outline:
    """Parse ``outline.md`` text into an Outline; InputError names the line of any problem.

    A heading without an id gets ``n<k>`` with k above every numeric id in the file and at
    least ``id_floor``, so ids an earlier run used for sections since deleted are not reused.
    """

    def fail(line: int, problem: str) -> InputError:
        return InputError(f"{source}, line {line}: {problem}", hint=_HINT)

    title: str | None = None
    title_line = 1
    roots: list[_Draft] = []
    stack: list[_Draft] = []  # the open path from a top-level section down to the last heading
    in_comment = in_fence = False

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if in_comment:
            in_comment = "-->" not in stripped
            continue
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is None:
            if not in_fence and stripped.startswith("<!--"):
                in_comment = "-->" not in stripped
                continue
            if stack:
                stack[-1].lines.append(line)
            elif stripped:
                where = "before the '# Title' line" if title is None else "before the first section"
                raise fail(number, f"text {where} belongs to no section: {stripped[:60]!r}")
            continue

        hashes, rest = heading.group(1), heading.group(2) or ""
        node_id = None
        id_match = _ID_COMMENT.search(rest)
        if id_match:
            node_id, rest = id_match.group(1), rest[: id_match.start()]
            if not node_id:
                raise fail(number, "empty id in '<!-- id: -->'; give an id or drop the comment")
            if node_id in RESERVED_IDS:
                raise fail(
                    number,
                    f"the id {node_id!r} is reserved for the part surveygen writes itself; "
                    "give this section another id (or drop the comment for a new one)",
                )
        name = " ".join(_CLOSING_HASHES.sub("", rest).split())
        level = len(hashes) - 1  # "#" is the title (0), "##" a top-level section (1)

        if title is None:
            if level != 0:
                raise fail(number, "the outline must start with a '# Title' heading")
            if not name:
                raise fail(number, "the '# Title' heading is empty")
            title, title_line = name, number
            continue
        if level == 0:
            raise fail(number, "a second '# ' title; sections are headings with '##' or more")
        parent_level = stack[-1].level if stack else 0
        if level > parent_level + 1:
            raise fail(
                number,
                f"heading level jumps from {'#' * (parent_level + 1)} to {hashes}; "
                "add the missing level or use fewer '#'",
            )
        if not name:
            raise fail(number, "a section heading without a title")
        draft = _Draft(number, level, name, node_id)
        while stack and stack[-1].level >= level:
            stack.pop()
        (stack[-1].children if stack else roots).append(draft)
        stack.append(draft)

    if title is None:
        raise fail(1, "no '# Title' heading; the outline must start with one")
    if not roots:
        raise fail(title_line, "the outline has no sections; add at least one '## Section'")
    _assign_ids(roots, fail, id_floor)
    return Outline(title=title, sections=tuple(_freeze(d) for d in roots))


def _walk(drafts: list[_Draft]) -> list[_Draft]:
    return [d for draft in drafts for d in (draft, *_walk(draft.children))]


def _assign_ids(
    roots: list[_Draft], fail: Callable[[int, str], InputError], id_floor: int = 1
) -> None:
    """Check ids are unique; give each heading without one ``n<k>``, k above every ``n<int>``."""
    drafts = _walk(roots)
    seen: dict[str, int] = {}
    for draft in drafts:
        if draft.id is None:
            continue
        if draft.id in seen:
            raise fail(
                draft.line,
                f"id {draft.id!r} is already used on line {seen[draft.id]}; "
                "ids must be unique (delete the comment on a copied heading)",
            )
        seen[draft.id] = draft.line
    numbers = [int(m.group(1)) for i in seen if (m := _NUMERIC_ID.fullmatch(i))]
    next_number = max(max(numbers, default=0) + 1, id_floor)
    for draft in drafts:
        if draft.id is None:
            draft.id = f"n{next_number}"
            next_number += 1


def _freeze(draft: _Draft) -> OutlineNode:
    description = re.sub(r"\n(?:[ \t]*\n)+", "\n\n", "\n".join(draft.lines)).strip()
    return OutlineNode(
        id=draft.id or "",
        title=draft.title,
        description=description,
        children=tuple(_freeze(child) for child in draft.children),
    )


__all__ = ["parse_outline_md", "read_outline_file", "read_outline_text"]
