"""``surveygen check``: the structural and citation report of any Markdown survey.

Works on surveys from any tool (STORM, AutoSurvey, LLM×MapReduce-V2, hand-written) as long
as they cite with numbers in brackets -- ``[1]``, ``[2, 5]``, ``[3–4]``, ``[1; 9]`` -- and
list their sources under a References (or Bibliography) heading. surveygen's own report.json
takes its words, structure and duplicate rate from here, so the numbers compare.

Counting rules, in one place:

* **Body**: everything before the References heading (YAML front matter dropped). Text after
  the References section (an appendix) is in neither the body nor the references.
* **Words**: whitespace-separated tokens with at least one letter or digit ("GPT-4", "3.5"
  and "retrieval-augmented" are one word each; "—" and "|" are none) in paragraphs, lists,
  block quotes and tables. Not counted: headings, citations, code (fenced, indented, inline),
  math, HTML comments and tags, link and image URLs (link text counts, image alt text does
  not), footnote markers and definitions, link definitions, list markers, table rules.
* **Citations**: a bracket holding only numbers 1–9999 and ranges (``-``, ``–``, ``—``)
  separated by ``,`` or ``;``. A range counts each number it spans (``[6-8]`` is 3); a
  descending range makes the bracket not a citation. Never a citation: anything in code or
  math, a link ``[3](url)`` or its text, ``[^3]`` footnotes, ``[id]: url`` definitions,
  escaped ``\\[3]``, and brackets with other words (``[3, p. 5]``). Headings are scanned too.
* **Reference entries** (under the first heading named References, Reference list,
  Bibliography, Works cited or Literature cited, optionally numbered or bold, up to the next
  heading of the same or a higher level): lines starting with ``[n]`` (also ``**[n]**``,
  ``[n]:`` and ``[n].``), list items ``- [n] ...``, and numbered list items ``n. ...`` /
  ``n) ...`` (a list numbered ``1.`` throughout counts 1, 2, 3, ... as Markdown renders it).
  Footnote definitions ``[^n]:`` are not entries, as ``[^n]`` are not citations. An entry
  number listed twice is one entry.
* **Sections**: body headings except the title (the first heading, when it is level 1 and
  not Abstract) and an Abstract heading; **depth** is how many distinct heading levels they use.
* **Paragraphs**: body paragraphs and block quotes with at least one word; lists, tables and
  code are not paragraphs. ``uncited_paragraphs`` is the share of them without a citation.
* **Sentences and duplicates**: :func:`surveygen.dedupe.duplicate_stats` over each body
  section's prose (paragraphs and list items, citations and code removed, tables left out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from surveygen.dedupe import duplicate_stats
from surveygen.errors import InputError

MAX_BYTES = 20 * 1024 * 1024

__all__ = ["MAX_BYTES", "CheckReport", "check_file", "check_survey", "count_words", "summary_lines"]


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_survey` measured; see the module docstring for the counting rules."""

    title: str | None
    words: int
    sections: int
    depth: int
    paragraphs: int
    references: int
    citations: int
    distinct_cited: int
    reference_coverage: float
    unresolved: tuple[int, ...]
    uncited: tuple[int, ...]
    citations_per_1000_words: float
    uncited_paragraphs: float
    sentences: int
    duplicate_sentences: int
    duplicate_sentence_rate: float

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["unresolved"] = list(self.unresolved)
        data["uncited"] = list(self.uncited)
        return data


# --------------------------------------------------------------------------------------------
# Blocks: a line-based reading of the Markdown, just deep enough to tell prose from the rest.


@dataclass(frozen=True)
class _Block:
    kind: str  # heading, paragraph, list, table, code, definition, rule
    lines: tuple[str, ...]
    level: int = 0  # headings only
    items: tuple[str, ...] = ()  # lists only: each item's lines joined, marker included


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_ITEM = re.compile(r"^([ \t]{0,3})([-*+]|(\d{1,9})[.)])(?:[ \t]+|$)")
_DELIMITER = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_DEFINITION = re.compile(r"^ {0,3}\[[^\[\]\n]+\]:")
_QUOTE = re.compile(r"^ {0,3}> ?")
_INDENTED = re.compile(r"^(?: {4}|\t)")


def _is_table_start(lines: list[str], i: int) -> bool:
    line = lines[i]
    if line.lstrip().startswith("|"):
        return True
    following = lines[i + 1] if i + 1 < len(lines) else ""
    return "|" in line and "|" in following and bool(_DELIMITER.match(following))


def _interrupts(line: str) -> bool:
    """True when ``line`` ends a paragraph without a blank line before it."""
    item = _ITEM.match(line)
    # CommonMark: an ordered list interrupts a paragraph only when it starts at 1, so a
    # wrapped reference continuing with "2020. Proceedings" stays in its paragraph.
    if item and line[item.end() :].strip() and item.group(3) in (None, "1"):
        return True
    return bool(_ATX.match(line) or _FENCE.match(line) or _QUOTE.match(line))


def _blocks(text: str) -> list[_Block]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    n = len(lines)
    i = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        for j in range(1, n):
            if lines[j].strip() in ("---", "..."):
                i = j + 1
                break
    blocks: list[_Block] = []
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        start = i
        if fence := _FENCE.match(line):
            mark = fence.group(1)
            close = re.compile(rf"^ {{0,3}}{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$")
            i += 1
            while i < n and not close.match(lines[i]):
                i += 1
            blocks.append(_Block("code", tuple(lines[start : i + 1])))
            i += 1
        elif stripped.startswith("$$") and "$$" not in stripped[2:]:
            i += 1
            while i < n and "$$" not in lines[i]:
                i += 1
            blocks.append(_Block("code", tuple(lines[start : i + 1])))
            i += 1
        elif stripped.startswith("<!--") and "-->" not in stripped:
            while i < n and "-->" not in lines[i]:
                i += 1
            blocks.append(_Block("code", tuple(lines[start : i + 1])))
            i += 1
        elif heading := _ATX.match(line):
            title = (heading.group(2) or "").strip()
            blocks.append(_Block("heading", (title,), level=len(heading.group(1))))
            i += 1
        elif _RULE.match(line):
            blocks.append(_Block("rule", (line,)))
            i += 1
        elif _INDENTED.match(line):
            while i < n and (not lines[i].strip() or _INDENTED.match(lines[i])):
                i += 1
            blocks.append(_Block("code", tuple(lines[start:i])))
        elif _ITEM.match(line):
            i = _read_list(lines, i, blocks)
        elif _is_table_start(lines, i):
            while i < n and lines[i].strip() and "|" in lines[i]:
                i += 1
            blocks.append(_Block("table", tuple(lines[start:i])))
        elif _DEFINITION.match(line):
            blocks.append(_Block("definition", (line,)))
            i += 1
        else:
            i = _read_paragraph(lines, i, blocks)
    return blocks


def _read_paragraph(lines: list[str], i: int, blocks: list[_Block]) -> int:
    """A paragraph or block quote from ``lines[i]``, or a setext heading; the next index."""
    start = i
    quote = bool(_QUOTE.match(lines[i]))
    i += 1
    while i < len(lines) and lines[i].strip():
        line = lines[i]
        if not quote and _SETEXT.match(line):
            level = 1 if line.strip().startswith("=") else 2
            title = " ".join(part.strip() for part in lines[start:i])
            blocks.append(_Block("heading", (title,), level=level))
            return i + 1
        if (not quote and _interrupts(line)) or _RULE.match(line) or _is_table_start(lines, i):
            break
        i += 1
    body = lines[start:i]
    if quote:
        body = [_QUOTE.sub("", line, count=1) for line in body]
    blocks.append(_Block("paragraph", tuple(body)))
    return i


def _read_list(lines: list[str], i: int, blocks: list[_Block]) -> int:
    """A list from ``lines[i]`` (items, their continuations and lazy lines); the next index."""
    start = i
    items: list[list[str]] = []
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            ahead = i
            while ahead < n and not lines[ahead].strip():
                ahead += 1
            if ahead < n and (_ITEM.match(lines[ahead]) or lines[ahead].startswith("  ")):
                i = ahead
                continue
            break
        item = _ITEM.match(line)
        # an empty item cannot interrupt a paragraph: "2009." wrapped from the line above
        if item and (line[item.end() :].strip() or not lines[i - 1].strip() or i == start):
            items.append([line])
        elif _ATX.match(line) or _FENCE.match(line) or _RULE.match(line):
            break
        else:
            items[-1].append(line)
        i += 1
    end = i
    while end > start and not lines[end - 1].strip():
        end -= 1
    blocks.append(
        _Block("list", tuple(lines[start:end]), items=tuple("\n".join(it) for it in items))
    )
    return i


# --------------------------------------------------------------------------------------------
# Inline: citations out, protected constructs out, prose left.

_NUM = r"[1-9][0-9]{0,3}"
_RANGE = rf"{_NUM}(?:[ \t]*[-–—][ \t]*{_NUM})?"
_BRACKET_TEXT = r"(?:[^\[\]\n]|\[[^\[\]\n]*\])*"
_DESTINATION = r"\((?:<[^>\n]*>|(?:[^()\s]|\([^()\s]*\))*)(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)"
# Alternatives are tried left to right at each position: the protected constructs come first,
# so a number inside code, math, a link or a footnote marker is never taken for a citation.
_INLINE = re.compile(
    "|".join(
        [
            r"(?P<code>(?<!`)(?P<ticks>`+)(?!`)[\s\S]+?(?<!`)(?P=ticks)(?!`))",
            r"(?P<math>\$\$[\s\S]+?\$\$|(?<![\\$])\$(?=[^\s$])[^$\n]*?(?<=[^\s\\])\$(?!\d))",
            r"(?P<comment><!--[\s\S]*?-->)",
            rf"(?P<image>!\[{_BRACKET_TEXT}\]{_DESTINATION})",
            rf"(?P<link>\[(?P<link_text>{_BRACKET_TEXT})\]{_DESTINATION})",
            r"(?P<autolink><[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^<>\s]*>|<[^<>\s@]+@[^<>\s]+>)",
            r"(?P<html></?[A-Za-z][A-Za-z0-9\-]*(?:\s[^<>]*)?/?>|&#?[A-Za-z0-9]+;)",
            r"(?P<footnote>\[\^[^\[\]\s]+\])",
            rf"(?P<cite>(?<!\\)\[[ \t]*{_RANGE}(?:[ \t]*[,;][ \t]*{_RANGE})*[ \t]*\](?!\())",
            r"(?P<reflink>\[(?P<ref_text>[^\[\]\n]+)\]\[[^\[\]\n]*\])",
        ]
    )
)
_RANGE_PARTS = re.compile(rf"({_NUM})(?:[ \t]*[-–—][ \t]*({_NUM}))?")
_WORD = re.compile(r"[^\W_]")


def _cited_numbers(bracket: str) -> list[int] | None:
    """The numbers a citation bracket cites, ranges expanded; None for a descending range."""
    numbers: list[int] = []
    for match in _RANGE_PARTS.finditer(bracket):
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            return None
        numbers.extend(range(low, high + 1))
    return numbers


def _inline(text: str) -> tuple[str, list[int]]:
    """``text`` as plain prose without citations or protected constructs, and its citations."""
    out: list[str] = []
    cited: list[int] = []
    pos = 0
    for match in _INLINE.finditer(text):
        if match.group("cite") is not None:
            numbers = _cited_numbers(match.group())
            if numbers is None:
                continue  # not a citation: stays in the text
            cited.extend(numbers)
            replacement = " "
        elif match.group("link") is not None:
            replacement = match.group("link_text")
        elif match.group("reflink") is not None:
            replacement = match.group("ref_text")
        else:
            replacement = " "
        out.append(text[pos : match.start()])
        out.append(replacement)
        pos = match.end()
    out.append(text[pos:])
    return "".join(out), cited


def _count(prose: str) -> int:
    return sum(1 for token in prose.split() if _WORD.search(token))


_ITEM_MARKER = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")


@dataclass(frozen=True)
class _Prose:
    """What one block contributes: plain text pieces (for sentences), words, citations."""

    pieces: tuple[str, ...]
    words: int
    cited: tuple[int, ...]


def _prose(block: _Block) -> _Prose:
    if block.kind == "heading":
        _, cited = _inline(block.lines[0])
        return _Prose((), 0, tuple(cited))
    if block.kind == "paragraph":
        plain, cited = _inline("\n".join(block.lines))
        return _Prose((plain,), _count(plain), tuple(cited))
    if block.kind == "list":
        pieces, all_cited = [], []
        for item in block.items:
            # nested items' markers sit on the item's continuation lines
            body = "\n".join(_ITEM_MARKER.sub("", line, count=1) for line in item.split("\n"))
            plain, cited = _inline(body)
            pieces.append(plain)
            all_cited.extend(cited)
        return _Prose(tuple(pieces), sum(_count(p) for p in pieces), tuple(all_cited))
    if block.kind == "table":
        rows = [row.replace("|", " ") for row in block.lines if not _DELIMITER.match(row)]
        plain, cited = _inline("\n".join(rows))
        return _Prose((), _count(plain), tuple(cited))
    return _Prose((), 0, ())


# --------------------------------------------------------------------------------------------
# The References section and its entries.

_REFERENCE_NAMES = frozenset(
    {"references", "reference", "reference list", "bibliography", "works cited"}
    | {"literature cited", "cited literature"}
)
_NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*|[IVXLC]+)[.)]?\s+")
_PSEUDO_HEADING = re.compile(r"^\s*(\*\*|__)?\s*([A-Za-z ]+?)\s*:?\s*(\*\*|__)?\s*:?\s*$")
_ENTRY = re.compile(rf"^ {{0,3}}(?:\*\*|__)?\[({_NUM})\](?:\*\*|__)?[:.]?[ \t]*\S")


def _heading_name(title: str) -> str:
    name = re.sub(r"[*_`]", "", title).strip()
    name = _NUMBERING.sub("", name).rstrip(":").strip()
    return " ".join(name.lower().split())


def _is_references(block: _Block) -> bool:
    if block.kind == "heading":
        return _heading_name(block.lines[0]) in _REFERENCE_NAMES
    if block.kind == "paragraph" and len(block.lines) == 1:
        # "**References**" or "References:" on a line of its own, as some tools write it
        pseudo = _PSEUDO_HEADING.match(block.lines[0])
        return bool(pseudo) and _heading_name(pseudo.group(2)) in _REFERENCE_NAMES
    return False


def _split(blocks: list[_Block]) -> tuple[list[_Block], list[_Block] | None]:
    """The body blocks and the References section's blocks (None when there is none)."""
    for index, block in enumerate(blocks):
        if _is_references(block):
            level = block.level if block.kind == "heading" else 7
            section: list[_Block] = []
            for after in blocks[index + 1 :]:
                if after.kind == "heading" and after.level <= level:
                    break
                section.append(after)
            return blocks[:index], section
    return _unnamed_references(blocks)


def _unnamed_references(blocks: list[_Block]) -> tuple[list[_Block], list[_Block] | None]:
    """A last section under a heading of another name (a survey in another language) made of
    two or more numbered entries, and at most one other paragraph (a footer), is the
    reference list too."""
    headings = [i for i, block in enumerate(blocks) if block.kind == "heading"]
    if not headings:
        return blocks, None
    section = blocks[headings[-1] + 1 :]
    others = [
        b for b in section if b.kind != "list" and not all(_ENTRY.match(line) for line in b.lines)
    ]
    if len(_entries(section)) < 2 or len(others) > 1:
        return blocks, None
    return blocks[: headings[-1]], section


def _entries(section: Iterable[_Block]) -> list[int]:
    numbers: list[int] = []
    for block in section:
        if block.kind in ("paragraph", "definition"):
            numbers.extend(int(m.group(1)) for line in block.lines if (m := _ENTRY.match(line)))
        elif block.kind == "list":
            numbers.extend(_list_entries(block.items))
    return numbers


def _list_entries(items: tuple[str, ...]) -> Iterator[int]:
    markers = [_ITEM.match(item) for item in items]
    written = [int(m.group(3)) for m in markers if m and m.group(3) is not None]
    lazy = len(written) > 1 and len(set(written)) == 1  # "1." throughout: Markdown counts up
    for index, (item, marker) in enumerate(zip(items, markers, strict=True)):
        assert marker is not None  # every item starts with a marker
        first = item.split("\n", 1)[0][marker.end() :]
        if bracket := _ENTRY.match(first):
            yield int(bracket.group(1))
        elif marker.group(3) is not None and first.strip():
            number = written[0] + index if lazy else int(marker.group(3))
            if 1 <= number <= 9999:
                yield number


# --------------------------------------------------------------------------------------------
# The report.


def count_words(markdown_text: str) -> int:
    """Words of a Markdown survey's body, by the rules in the module docstring.

    Counting stops at the References heading, so the whole survey and its body alone give the
    same number; text without such a heading is counted whole.
    """
    body, _ = _split(_blocks(markdown_text))
    return sum(_prose(block).words for block in body)


_EXPECTED = (
    'expected a heading such as "## References" or "## Bibliography" followed by numbered '
    'entries such as "[1] A. Author. Title. 2020." or "1. A. Author. Title. 2020."'
)


def check_survey(text: str, *, require_references: bool = True) -> CheckReport:
    """Measure ``text``; InputError when it has no References section with numbered entries,
    unless ``require_references`` is off (a survey of our own that cites nothing)."""
    body, section = _split(_blocks(text))
    if section is None and require_references:
        raise InputError("no References or Bibliography section found", hint=_EXPECTED)
    entries = set(_entries(section)) if section is not None else set()
    if not entries and require_references:
        raise InputError("the References section has no numbered entry", hint=_EXPECTED)

    headings = [b for b in body if b.kind == "heading"]
    title = None
    if headings and headings[0].level == 1 and _heading_name(headings[0].lines[0]) != "abstract":
        title = headings.pop(0).lines[0]
    levels = [h.level for h in headings if _heading_name(h.lines[0]) != "abstract"]

    words = 0
    cited: list[int] = []
    paragraphs = uncited_paragraphs = 0
    section_texts: list[list[str]] = [[]]
    for block in body:
        prose = _prose(block)
        words += prose.words
        cited.extend(prose.cited)
        if block.kind == "heading":
            section_texts.append([])
        elif block.kind == "paragraph" and prose.words:
            paragraphs += 1
            uncited_paragraphs += not prose.cited
        section_texts[-1].extend(p for p in prose.pieces if p.strip())
    sentences, duplicates = duplicate_stats(["\n\n".join(t) for t in section_texts if t])

    distinct = set(cited)
    return CheckReport(
        title=title,
        words=words,
        sections=len(levels),
        depth=len(set(levels)),
        paragraphs=paragraphs,
        references=len(entries),
        citations=len(cited),
        distinct_cited=len(distinct),
        reference_coverage=_share(len(entries & distinct), len(entries)),
        unresolved=tuple(sorted(distinct - entries)),
        uncited=tuple(sorted(entries - distinct)),
        citations_per_1000_words=round(1000 * len(cited) / words, 2) if words else 0.0,
        uncited_paragraphs=_share(uncited_paragraphs, paragraphs),
        sentences=sentences,
        duplicate_sentences=duplicates,
        duplicate_sentence_rate=_share(duplicates, sentences),
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def check_file(path: Path) -> CheckReport:
    """Read and check the survey at ``path``; every problem is an InputError naming the file."""
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="give the path of a Markdown survey")
    if path.is_dir():
        raise InputError(f"{path} is a folder", hint="give the survey's Markdown file inside it")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(
                f"{path} is {size / 1024 / 1024:.0f} MB; surveys over "
                f"{MAX_BYTES // 1024 // 1024} MB are not checked",
                hint="check the Markdown survey itself, not an archive or a data file",
            )
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path} cannot be read: {error.strerror or error}") from error
    if b"\x00" in data:
        raise InputError(f"{path} is a binary file", hint="give a Markdown (.md) survey")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path} is not UTF-8 text (byte {error.start})", hint="save the survey as UTF-8"
        ) from error
    if not text.strip():
        raise InputError(f"{path} is empty", hint="give a Markdown survey with text in it")
    try:
        return check_survey(text)
    except InputError as error:
        raise InputError(f"{path}: {error.message}", hint=error.hint) from error


def summary_lines(report: CheckReport) -> list[str]:
    """The report as a few lines for people."""

    def numbers(values: tuple[int, ...]) -> str:
        shown = ", ".join(f"[{v}]" for v in values[:20])
        return shown + (f" and {len(values) - 20} more" if len(values) > 20 else "")

    return [
        f"title: {report.title or '(none)'}",
        f"structure: {report.words} words, {report.sections} sections (depth {report.depth}), "
        f"{report.paragraphs} paragraphs",
        f"references: {report.references} entries, {report.distinct_cited} distinct numbers "
        f"cited (coverage {report.reference_coverage:.1%})",
        f"citations: {report.citations} ({report.citations_per_1000_words:g} per 1000 words); "
        f"{report.uncited_paragraphs:.1%} of paragraphs cite nothing",
        "unresolved: "
        + (
            f"{numbers(report.unresolved)} cited with no entry in References"
            if report.unresolved
            else "none"
        ),
        "uncited entries: " + (numbers(report.uncited) if report.uncited else "none"),
        f"sentences: {report.sentences}, {report.duplicate_sentences} duplicate "
        f"({report.duplicate_sentence_rate:.1%})",
    ]
