"""Citations in generated text: find them, guard them, number them, convert them.

The model cites pandoc-style: a bracket group of one or more ``@key`` items separated by ``;``
or ``,`` -- ``[@a]``, ``[@a; @b]``, ``[@a, @b]``. Only such groups are citations; other
bracketed text (``[1]``, ``[Smith et al.]``, a Markdown link ``[text](url)``) is not, and
nothing inside code, math, HTML comments or link syntax is ever looked at or changed.

Every function here goes through one scanner (:func:`_scan`), so finding, guarding and
converting always agree on what counts as a citation. The guard removes keys it does not
know and never "repairs" them to a nearby key: that would turn a hallucination into a wrong
citation. A bracket that opens like a citation but is malformed (``[@a/b]``, ``[@../x]``,
``[@a, p. 5]``) cites nothing, yet the guard does not leave it as text either: it keeps only
the well-formed known keys it names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

# A key starts with a letter or digit; a trailing ".", ":" or "-" is punctuation, not key.
# Keys name state files (state/digests/<key>.json), so a key is also short enough to be a file
# name on every file system; a longer one given by the user is replaced by a generated key.
MAX_KEY_CHARS = 100
KEY_PATTERN = rf"[A-Za-z0-9](?:[A-Za-z0-9_:.\-]{{0,{MAX_KEY_CHARS - 2}}}[A-Za-z0-9_])?"
_ITEM = re.compile(rf"@({KEY_PATTERN})")
# Whatever a malformed group names after each "@": all of it, so a key such as "a/b" is
# reported whole and never read as the known key "a".
_LOOSE_ITEM = re.compile(r"@([^\s\[\]@;,]+)")
_WHOLE_KEY = re.compile(KEY_PATTERN)

# A plausible citation number (1-999), alone or as a range: what a model invents as "[3]".
_NUM = r"[1-9][0-9]{0,2}"
_NUM_ITEM = rf"{_NUM}(?:[ \t]*[-–—][ \t]*{_NUM})?"

# Alternatives are tried left to right at each position, so the protected constructs listed
# first win over a citation that merely looks like it starts at the same place.
_TOKEN = re.compile(
    "|".join(
        [
            # fenced code block, to its closing fence (or the end of the text if unclosed)
            r"(?P<fence>^[ ]{0,3}(?P<fmark>`{3,}|~{3,})[^\n]*(?:\n[\s\S]*?)??"
            r"(?:\n[ ]{0,3}(?P=fmark)[`~]*[ \t]*(?=\n|\Z)|\Z))",
            # inline code span: a run of backticks closed by a run of the same length
            r"(?P<code>(?<!`)(?P<ticks>`+)(?!`)(?:(?!\n[ \t]*\n)[\s\S])+?(?<!`)(?P=ticks)(?!`))",
            # TeX math, pandoc's rules for single dollars (so "$5 and $6" is not math)
            r"(?P<math>\$\$[\s\S]+?\$\$|(?<![\\$])\$(?=[^\s$])[^$\n]*?(?<=[^\s\\])\$(?!\d))",
            r"(?P<comment><!--[\s\S]*?-->)",
            # inline link or image: [text](url "title"), one level of nesting in each part
            r"(?P<link>!?\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]"
            r"\((?:<[^>\n]*>|(?:[^()\s]|\([^()\s]*\))*)(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\))",
            # the citation group itself; "[@a](url)" was taken as a link above
            rf"(?P<cite>(?<!\\)\[\s*@{KEY_PATTERN}(?:\s*[;,]\s*@{KEY_PATTERN})*\s*[;,.:]?\s*\])",
            # a bracket that opens like a citation but is not a well-formed group: a key no
            # library makes ("[@a/b]", "[@../x]") or a pandoc locator ("[@a, p. 5]")
            r"(?P<badcite>(?<!\\)\[[ \t]*@[^\[\]\n]*\])",
            # link reference definition label "[id]: url" at the start of a line
            r"(?P<refdef>^[ ]{0,3}\[[^\[\]\n]+\]:(?=[ \t]*\S))",
            # a stray numeric citation the model invented: [3], [1, 2], [4-6]
            rf"(?P<numeric>(?<!\\)\[[ \t]*{_NUM_ITEM}(?:[ \t]*[,;][ \t]*{_NUM_ITEM})*[ \t]*\]"
            r"(?!\())",
            # reference-style link [text][id], so its [id] is not taken for a stray number
            r"(?P<reflink>\[[^\[\]\n]+\]\[[^\[\]\n]*\])",
        ]
    ),
    re.MULTILINE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "text" (plain or protected), "cite", "badcite" or "numeric"
    raw: str
    keys: tuple[str, ...] = ()


def _scan(text: str) -> Iterator[_Token]:
    """Split ``text`` into citation groups, stray numeric brackets and everything else."""
    pos = 0
    for match in _TOKEN.finditer(text):
        kind = next((k for k in ("cite", "badcite", "numeric") if match.group(k) is not None), "")
        if not kind:
            continue  # protected: stays inside the surrounding text piece, untouched
        if match.start() > pos:
            yield _Token("text", text[pos : match.start()])
        raw = match.group()
        yield _Token(kind, raw, _keys(kind, raw))
        pos = match.end()
    if pos < len(text):
        yield _Token("text", text[pos:])


def _keys(kind: str, raw: str) -> tuple[str, ...]:
    if kind == "cite":
        return tuple(_ITEM.findall(raw))
    if kind == "badcite":
        return tuple(_LOOSE_ITEM.findall(raw))
    return ()


@dataclass(frozen=True)
class Span:
    """One construct the scanner recognises, at ``text[start:end]``: a citation group
    ("cite", with its keys), a malformed one ("badcite", with what it names), a stray numeric
    bracket ("numeric"), or a protected construct ("fence", "code", "math", "comment", "link",
    "refdef", "reflink")."""

    kind: str
    start: int
    end: int
    keys: tuple[str, ...] = ()


_KINDS = (
    "fence",
    "code",
    "math",
    "comment",
    "link",
    "cite",
    "badcite",
    "refdef",
    "numeric",
    "reflink",
)


def markup_spans(text: str) -> list[Span]:
    """Every construct of ``text`` as the guard sees it, in order, with offsets: what other
    modules use to find sentences or place citations without a second citation grammar."""
    spans = []
    for match in _TOKEN.finditer(text):
        kind = next(k for k in _KINDS if match.group(k) is not None)
        spans.append(Span(kind, match.start(), match.end(), _keys(kind, match.group())))
    return spans


def citation_spans(text: str) -> list[Span]:
    """The citation groups of ``text`` with their offsets and keys."""
    return [span for span in markup_spans(text) if span.kind == "cite"]


def find_citations(text: str) -> list[str]:
    """Cited keys in order of appearance, repeats included."""
    return [key for token in _scan(text) if token.kind == "cite" for key in token.keys]


def replace_citations(text: str, render: Callable[[tuple[str, ...]], str]) -> str:
    """Replace every citation group by ``render(keys)``; all other text is kept byte for byte."""
    if "@" not in text:  # no group without an "@" (most paper text: skip the scan)
        return text
    return "".join(render(t.keys) if t.kind == "cite" else t.raw for t in _scan(text))


def to_pandoc(text: str) -> str:
    """Normalise every citation group to the canonical ``[@a; @b]`` form."""
    return replace_citations(text, lambda keys: "[" + "; ".join(f"@{k}" for k in keys) + "]")


@dataclass(frozen=True)
class GuardResult:
    """Guarded text, the unknown keys removed (distinct, first seen first) and how many
    invented numeric brackets such as ``[3]`` were removed."""

    text: str
    removed: tuple[str, ...]
    stray_numeric: int


_HSPACE = " \t\u00a0"


def guard_citations(text: str, known: Collection[str]) -> GuardResult:
    """Remove every cited key not in ``known`` and every bare numeric bracket.

    Unknown keys are dropped from their group, never replaced by a similar known key. A
    malformed group (``[@a/b]``, ``[@a, p. 5]``) keeps only the known keys it names, rewritten
    as a well-formed group, so no bracket that looks like a citation survives unchecked. A group
    left empty disappears together with the space before it, so "shown [@x]." becomes
    "shown." rather than "shown ."; "([@x])" goes with its parentheses.
    """
    known = set(known)
    tokens = list(_scan(text))
    out: list[str] = []
    removed: dict[str, None] = {}
    stray = 0
    swallow_space = False  # a dropped group began its line: eat the space that followed it
    swallow_paren = False  # a dropped group filled a "(...)": eat the closing parenthesis
    swallow_sep = False  # a dropped group opened a "(...)": eat the "; " that followed it
    pending = ""  # space removed before a dropped group, given back if a word or group follows

    def drop(index: int) -> None:
        nonlocal swallow_space, swallow_paren, swallow_sep, pending
        after = tokens[index + 1].raw if index + 1 < len(tokens) else ""
        head = "".join(out)
        bare = head.rstrip(_HSPACE)
        if bare.endswith("(") and after.lstrip(_HSPACE).startswith(")"):
            bare = bare[:-1].rstrip(_HSPACE)
            swallow_paren = True
        elif bare.endswith("("):
            swallow_sep = swallow_space = True
        if not bare or bare.endswith("\n"):
            # the group began its line: keep the indentation, lose the space after instead
            swallow_space, pending = True, ""
            head = head[: len(bare)] + head[len(bare) :].replace("(", "")
        else:
            head, pending = bare, head[len(bare) :] or pending
        out[:] = [head]

    for index, token in enumerate(tokens):
        if token.kind == "text":
            raw = token.raw
            if swallow_paren:
                raw = raw.lstrip(_HSPACE)[1:]
            if swallow_sep:
                raw = re.sub(r"^[ \t]*[;,][ \t]*", "", raw)
            if swallow_space:
                raw = raw.lstrip(_HSPACE)
                if raw.startswith("\n"):  # the line held nothing else: remove it whole
                    raw = raw[1:]
            if pending and raw[:1].isalnum():
                out.append(pending)
            swallow_space = swallow_paren = swallow_sep = False
            pending = ""
            out.append(raw)
        elif token.kind == "numeric":
            stray += 1
            drop(index)
        else:
            # a malformed group may name a known key the parser cannot read back: not kept
            kept = [k for k in token.keys if k in known and _WHOLE_KEY.fullmatch(k)]
            for key in token.keys:
                if key not in kept:
                    removed.setdefault(key)
            if kept:
                out.append(pending)
                pending = ""
            if len(kept) == len(token.keys) and token.kind == "cite":
                out.append(token.raw)
            elif kept:
                out.append("[" + "; ".join(f"@{key}" for key in kept) + "]")
            else:
                drop(index)
    return GuardResult("".join(out), tuple(removed), stray)


def citation_order(texts: Iterable[str]) -> dict[str, int]:
    """Number the cited keys 1..n in order of first use across ``texts`` (in reading order)."""
    numbers: dict[str, int] = {}
    for text in texts:
        for key in find_citations(text):
            numbers.setdefault(key, len(numbers) + 1)
    return numbers


def format_numbers(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1–3, 5"``: sorted, distinct, runs of three or more as ranges."""
    values = sorted(set(numbers))
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{values[i]}–{values[j]}")
        else:
            parts.extend(str(v) for v in values[i : j + 1])
        i = j + 1
    return ", ".join(parts)


def to_numeric(text: str, numbers: Mapping[str, int]) -> str:
    """``[@a; @b]`` -> ``[1, 2]``. A key without a number raises KeyError: guard first."""

    def render(keys: tuple[str, ...]) -> str:
        missing = [key for key in keys if key not in numbers]
        if missing:
            raise KeyError(f"citation key {missing[0]!r} has no number; run guard_citations first")
        return "[" + format_numbers(numbers[key] for key in keys) + "]"

    return replace_citations(text, render)


__all__ = [
    "KEY_PATTERN",
    "MAX_KEY_CHARS",
    "GuardResult",
    "Span",
    "citation_order",
    "citation_spans",
    "find_citations",
    "format_numbers",
    "guard_citations",
    "markup_spans",
    "replace_citations",
    "to_numeric",
    "to_pandoc",
]
