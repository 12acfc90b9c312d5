"""From raw model answers to JSON values and pydantic models, and from models to strict schemas.

Pure functions, no I/O. The client asks for structured answers in the strongest form the server
accepts (``json_schema``, then ``json_object``, then plain text plus :func:`schema_instructions`)
and reads every answer, whatever the mode, with :func:`parse_model`. A :class:`ParseError` carries
a short message meant to be shown to the model in the one repair request.

What the reader tolerates, and nothing more (no guessing that could change meaning):

* reasoning blocks (``<think>``/``<thinking>``), see :func:`strip_think`;
* a byte-order mark, surrounding whitespace, prose before and after the JSON, code fences;
* a single trailing comma before ``}`` or ``]`` (outside strings);
* raw control characters (newlines, tabs) inside JSON strings (``json.loads(strict=False)``);
* a bare JSON array where the model has exactly one list field (see :func:`parse_model`).

Single quotes, comments, unquoted keys, Python literals and truncated JSON are *not* repaired:
they raise :class:`ParseError` so the model is asked to fix its own answer.
"""

from __future__ import annotations

import collections.abc
import copy
import functools
import json
import re
import types
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

__all__ = [
    "MAX_MESSAGE_CHARS",
    "ParseError",
    "clean_text",
    "complete_sentences",
    "extract_json_text",
    "parse_json",
    "parse_model",
    "response_format",
    "schema_instructions",
    "strict_json_schema",
    "strip_think",
]

M = TypeVar("M", bound=BaseModel)

MAX_MESSAGE_CHARS = 600
"""Longest :attr:`ParseError.message`; longer messages are shortened with an ellipsis."""

_MAX_LISTED_ERRORS = 5


class ParseError(ValueError):
    """An answer that cannot be used; ``message`` is short and meant for the model to read.

    ``cut_off`` is true when the answer looks truncated (JSON never closed, or nothing but an
    unclosed reasoning block), so a caller may raise the token limit rather than only repair.
    """

    def __init__(self, message: str, *, cut_off: bool = False) -> None:
        message = _shorten(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message
        self.cut_off = cut_off


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- reasoning blocks

_THINK_TAG_RE = re.compile(r"<(/?)(think|thinking)(?:\s[^<>]*)?>", re.IGNORECASE)


@dataclass(frozen=True)
class _Tag:
    start: int
    end: int
    closing: bool


def _think_tags(text: str) -> list[_Tag]:
    """Reasoning tags in ``text``; a tag touching a backtick is a literal mention (`<think>`)."""
    tags = []
    for match in _THINK_TAG_RE.finditer(text):
        before = text[match.start() - 1] if match.start() > 0 else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if before == "`" or after == "`":
            continue
        tags.append(_Tag(match.start(), match.end(), match.group(1) == "/"))
    return tags


def _at_line_start(text: str, index: int) -> bool:
    line_start = text.rfind("\n", 0, index) + 1
    return not text[line_start:index].strip(" \t\ufeff")


def strip_think(text: str) -> str:
    """``text`` without the model's reasoning blocks (``<think>`` and ``<thinking>``).

    Rules (tags are case-insensitive; a tag directly next to a backtick is a literal mention in
    inline code and is left alone):

    * a block ``<think>…</think>`` whose opening tag starts a line is removed, wherever it is
      and however many there are (reasoning may be interleaved with the answer). An opening tag
      in the middle of a line is taken as prose that talks about the tag and kept;
    * a closing tag that comes before any opening tag means the chat template opened the block
      in the prompt (DeepSeek-R1, QwQ...): everything up to and including it is removed;
    * an opening tag that is never closed: if nothing but whitespace precedes it, the model was
      cut off while thinking and there is no answer, so the result is ``""``. If answer text
      precedes it, the tag is kept as text: silently dropping the rest of an answer that merely
      mentions ``<think>`` would be worse than leaving a stray tail.

    When something was removed the result is stripped of surrounding whitespace; otherwise
    ``text`` is returned unchanged.
    """
    tags = _think_tags(text)
    if not tags:
        return text
    pieces: list[str] = []
    pos = 0  # start of the text not yet copied to pieces
    index = 0
    if tags[0].closing:
        pos = tags[0].end
        index = 1
    while index < len(tags):
        tag = tags[index]
        if tag.closing or tag.start < pos or not _at_line_start(text, tag.start):
            index += 1
            continue
        close = next((k for k in range(index + 1, len(tags)) if tags[k].closing), None)
        if close is None:
            if not "".join(pieces).strip() and not text[pos : tag.start].strip(" \t\r\n\ufeff"):
                pos = len(text)  # nothing but an unfinished reasoning block
                break
            index += 1
            continue
        pieces.append(text[pos : tag.start])
        pos = tags[close].end
        index = close + 1
    if pos == 0 and not pieces:
        return text  # only literal mentions of the tags
    pieces.append(text[pos:])
    return "".join(pieces).strip()


# --------------------------------------------------------------------------- code fences

_FENCE_LINE_RE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})(?P<info>[^`\r\n]*)$")
_JSON_LANGS = frozenset({"json", "jsonc", "json5"})
_TEXT_LANGS = frozenset({"", "markdown", "md", "text", "txt", "plain", "plaintext"})


@dataclass(frozen=True)
class _Fence:
    lang: str
    content: str
    first_line: int
    last_line: int
    closed: bool


def _fenced_blocks(text: str) -> list[_Fence]:
    """Top-level fenced code blocks, line based.

    Unlike CommonMark, a fence line with an info string inside a block opens a nested block,
    which the next bare fence line closes: models wrap markdown that contains code blocks in
    ```` ```markdown ```` fences and expect the outer fence to survive. An unclosed block runs
    to the end of the text.
    """
    lines = text.splitlines(keepends=True)
    blocks: list[_Fence] = []
    stack: list[tuple[str, int]] = []
    start = 0
    lang = ""
    for number, line in enumerate(lines):
        match = _FENCE_LINE_RE.match(line.rstrip("\r\n"))
        if match is None:
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        if not stack:
            stack.append((fence[0], len(fence)))
            start, lang = number, (info.split()[0].lower() if info else "")
            continue
        char, length = stack[-1]
        if info:
            stack.append((fence[0], len(fence)))
        elif fence[0] == char and len(fence) >= length:
            stack.pop()
            if not stack:
                content = "".join(lines[start + 1 : number])
                blocks.append(_Fence(lang, content, start, number, True))
    if stack:
        blocks.append(_Fence(lang, "".join(lines[start + 1 :]), start, len(lines) - 1, False))
    return blocks


# --------------------------------------------------------------------------- JSON extraction

_STRUCTURE_RE = re.compile(r'["{}\[\]]')
_STRING_END_RE = re.compile(r'["\\]')
_OPENER_RE = re.compile(r"[\[{]")
_CLOSER = {"{": "}", "[": "]"}
# Where a real JSON object or array (or an almost-JSON one worth an error message) can start:
# ``{`` then a quote, ``}`` or ``key:``; ``[`` then a value or ``]``. Prose like ``{curly}`` or
# ``[see 3]`` does not qualify; ``[1]`` does, which is why the longest candidate wins.
_PLAUSIBLE_RE = re.compile(
    r"""\{\s*(?:["'}]|[A-Za-z_$][\w$]*\s*:)"""
    r"""|\[\s*(?:[\]\[{"\-0-9]|(?:true|false|null)\b)"""
)


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    status: Literal["closed", "mismatch", "open"]


def _scan_value(text: str, start: int) -> _Span:
    """Match the bracket at ``start`` with its partner, skipping JSON strings and escapes."""
    expected = [_CLOSER[text[start]]]
    pos = start + 1
    while True:
        match = _STRUCTURE_RE.search(text, pos)
        if match is None:
            return _Span(start, len(text), "open")
        char = match.group()
        pos = match.end()
        if char == '"':
            while True:  # to the end of the string
                end = _STRING_END_RE.search(text, pos)
                if end is None:
                    return _Span(start, len(text), "open")
                pos = end.end()
                if end.group() == '"':
                    break
                pos += 1  # the escaped character
        elif char in "{[":
            expected.append(_CLOSER[char])
        elif char != expected.pop():
            return _Span(start, pos, "mismatch")
        elif not expected:
            return _Span(start, pos, "closed")


def _spans(text: str) -> list[_Span]:
    """Top-level JSON-looking spans of ``text``, left to right.

    Scanning resumes after each span (closed or broken by a mismatched bracket) and stops at
    the first span that is never closed: it runs to the end of the text, so nothing after it
    can be longer. This keeps the scan linear.
    """
    spans = []
    pos = 0
    while (match := _OPENER_RE.search(text, pos)) is not None:
        start = match.start()
        if _PLAUSIBLE_RE.match(text, start) is None:
            pos = start + 1
            continue
        span = _scan_value(text, start)
        spans.append(span)
        if span.status == "open":
            break
        pos = span.end
    return spans


def _longest(spans: list[_Span]) -> _Span | None:
    return max(spans, key=lambda s: (s.end - s.start, -s.start), default=None)


def _drop_trailing_commas(text: str) -> str:
    """Replace each comma that directly precedes ``}`` or ``]`` (outside strings) by a space.

    A space keeps every other character at its offset, so error positions stay true.
    """
    chars = list(text)
    in_string = escaped = False
    for i, char in enumerate(chars):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == ",":
            j = i + 1
            while j < len(chars) and chars[j] in " \t\r\n":
                j += 1
            if j < len(chars) and chars[j] in "}]":
                chars[i] = " "
    return "".join(chars)


def _loads(text: str) -> Any:
    """``json.loads`` with the documented tolerance; raises ``json.JSONDecodeError``."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        fixed = _drop_trailing_commas(text)
        if fixed == text:
            raise
    return json.loads(fixed, strict=False)


def _parses(text: str) -> bool:
    try:
        _loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def extract_json_text(text: str) -> str:
    """The text of the JSON value in a model answer, ready for ``json.loads``.

    Reasoning blocks, a byte-order mark and surrounding whitespace are removed first. Then:

    1. an answer that is JSON as a whole is returned as it is;
    2. else the fenced code blocks, ```` ```json ```` ones first, then unlabelled ones, then the
       rest: the first whose content (or the longest JSON-looking value in it) parses wins;
    3. else the longest JSON-looking object or array anywhere in the answer, found with a
       string- and escape-aware bracket matcher, is returned even if it does not parse, so that
       :func:`parse_json` can report its syntax error. Prose before and after it is ignored.
       The longest, not the first, so that a citation like ``[1]`` in leading prose does not
       win over the real answer. A value that is never closed runs to the end of the answer,
       so it is the longest: the answer counts as cut off even if complete inner objects parse.

    Raises :class:`ParseError` when the answer is empty, holds no JSON object or array, or holds
    one that is never closed (``cut_off=True``: the answer was probably cut off).
    """
    cleaned = strip_think(text or "").strip().lstrip("\ufeff").strip()
    if not cleaned:
        if _think_tags(text or ""):
            raise ParseError(
                "the answer holds only unfinished reasoning (a <think> block that never "
                "closes) and no JSON; it was probably cut off",
                cut_off=True,
            )
        raise ParseError("the answer is empty; expected a JSON object")
    if _parses(cleaned):
        return cleaned

    fences = _fenced_blocks(cleaned)
    ranked = (
        [f for f in fences if f.lang in _JSON_LANGS]
        + [f for f in fences if not f.lang]
        + [f for f in fences if f.lang and f.lang not in _JSON_LANGS]
    )
    for fence in ranked:
        body = fence.content.strip()
        if body and _parses(body):
            return body
        best = _longest(_spans(body))
        if best is not None and best.status == "closed":
            candidate = body[best.start : best.end]
            if _parses(candidate):
                return candidate

    best = _longest(_spans(cleaned))
    if best is None:
        raise ParseError(
            "no JSON object found in the answer; reply with a single JSON object "
            "(no prose, no code fences needed)"
        )
    if best.status == "open":
        raise ParseError(
            f"the JSON value that starts on line {_line_of(cleaned, best.start)} is never "
            "closed (missing '}' or ']'); the answer was probably cut off",
            cut_off=True,
        )
    return cleaned[best.start : best.end]


def _json_error_message(text: str, error: json.JSONDecodeError) -> str:
    before = text[max(0, error.pos - 40) : error.pos]
    after = text[error.pos : error.pos + 30]
    near = f"{before}<HERE>{after}".replace("\r", "").replace("\n", "\\n")
    return (
        f"the answer is not valid JSON: {error.msg} at line {error.lineno} column "
        f"{error.colno}, near: {near!r}. Use double-quoted keys and strings, no comments."
    )


def parse_json(text: str) -> Any:
    """The JSON value in a model answer (see :func:`extract_json_text` for what is accepted).

    Tolerated on top of strict JSON: one trailing comma before ``}``/``]`` and raw control
    characters inside strings. Anything else invalid raises :class:`ParseError` quoting the
    position of the error.
    """
    raw = extract_json_text(text)
    try:
        return _loads(raw)
    except json.JSONDecodeError as error:
        raise ParseError(_json_error_message(raw, error)) from error
    except RecursionError as error:
        raise ParseError("the JSON in the answer is nested too deeply") from error


# --------------------------------------------------------------------------- models

_SEQUENCE_ORIGINS = (
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
)


def _is_list_type(annotation: Any) -> bool:
    if annotation in (list, tuple, set, frozenset):
        return True
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(annotation) if a is not type(None)]
        return len(members) == 1 and _is_list_type(members[0])
    return origin in _SEQUENCE_ORIGINS


def _bare_list_key(model_cls: type[BaseModel]) -> str | None:
    """The input key of the model's only list field, if every other field is optional."""
    fields = model_cls.model_fields
    listy = [name for name, info in fields.items() if _is_list_type(info.annotation)]
    if len(listy) != 1:
        return None
    name = listy[0]
    if any(info.is_required() for other, info in fields.items() if other != name):
        return None
    info = fields[name]
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return info.alias or name


def _error_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(root)"


def _describe_input(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return _shorten(json.dumps(value, ensure_ascii=False, default=str), 40)


def _validation_message(error: ValidationError, model_cls: type[BaseModel]) -> str:
    problems = error.errors(include_url=False)
    count = len(problems)
    lines = [
        f"the JSON does not match the {model_cls.__name__} schema "
        f"({count} problem{'s' if count != 1 else ''}):"
    ]
    for problem in problems[:_MAX_LISTED_ERRORS]:
        line = f"- {_error_path(problem['loc'])}: {problem['msg']}"
        if problem["type"] != "missing" and "input" in problem:
            line += f" (got {_describe_input(problem['input'])})"
        lines.append(_shorten(line, 90))
    if count > _MAX_LISTED_ERRORS:
        lines.append(f"- ... and {count - _MAX_LISTED_ERRORS} more")
    return "\n".join(lines)


def parse_model(text: str, model_cls: type[M]) -> M:
    """A model answer parsed with :func:`parse_json` and validated as ``model_cls``.

    A bare JSON array is accepted as the value of the model's list field when the model has
    exactly one list-typed field and every other field has a default (models often answer
    ``[...]`` instead of ``{"items": [...]}``). Validation errors raise :class:`ParseError`
    listing up to five problems as ``path: message`` lines (``sections[2].title: Field
    required``).
    """
    data = parse_json(text)
    if isinstance(data, list):
        key = _bare_list_key(model_cls)
        if key is not None:
            data = {key: data}
    try:
        return model_cls.model_validate(data)
    except ValidationError as error:
        raise ParseError(_validation_message(error, model_cls)) from error


# --------------------------------------------------------------------------- strict schemas

# Constraints OpenAI's strict mode (and several local grammar engines) reject. They are dropped
# from the schema and restated in the description, so the model still reads them; pydantic
# enforces them when the answer is validated, and a violation goes through the repair request.
_NOTED_KEYWORDS = (
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
_DEFS_PREFIX = "#/$defs/"


def _def_name(ref: str) -> str:
    if not ref.startswith(_DEFS_PREFIX):
        raise TypeError(f"cannot resolve $ref {ref!r}: only local '#/$defs/...' refs are supported")
    return ref[len(_DEFS_PREFIX) :].replace("~1", "/").replace("~0", "~")


class _Strictifier:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def resolve(self, ref: str) -> dict[str, Any]:
        name = _def_name(ref)
        if name not in self.defs:
            raise TypeError(f"cannot resolve $ref {ref!r}: no such definition")
        return self.defs[name]

    def convert(self, node: Any, path: str, inlining: tuple[str, ...] = ()) -> Any:
        if not isinstance(node, dict):
            return node  # boolean schemas
        node = dict(node)

        if "allOf" in node:  # pydantic < 2.9 wrapped a described $ref in a one-item allOf
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise TypeError(f"{path}: allOf with several schemas cannot be made strict")
            node = {**parts[0], **node}

        if "$ref" in node:
            ref = node["$ref"]
            description = node.get("description")
            if description is None or ref in inlining:
                return {"$ref": ref}  # siblings of $ref are not allowed; recursion keeps the ref
            # A field description next to a $ref: inline the definition to keep the description.
            merged = {**self.resolve(ref), "description": description}
            return self.convert(merged, path, (*inlining, ref))

        if "prefixItems" in node:
            raise TypeError(f"{path}: fixed-length tuples cannot be expressed in strict mode")
        is_object = node.get("type") == "object" or "properties" in node
        if is_object and "properties" not in node:
            raise TypeError(
                f"{path}: free-form objects (dict fields) cannot be expressed in strict mode; "
                "use a list of small models instead"
            )

        out: dict[str, Any] = {}
        if "type" in node:
            out["type"] = node["type"]
        description = node.get("description")
        notes = [f"{key}={json.dumps(node[key])}" for key in _NOTED_KEYWORDS if key in node]
        if notes:
            note = f"(constraints: {', '.join(notes)})"
            description = f"{description} {note}" if description else note
        if description:
            out["description"] = description
        if "enum" in node:
            out["enum"] = list(node["enum"])
        elif "const" in node:
            out["enum"] = [node["const"]]
        for key in ("anyOf", "oneOf"):  # oneOf (discriminated unions) is read as anyOf
            if key in node:
                out.setdefault("anyOf", []).extend(
                    self.convert(sub, f"{path}.{key}[{i}]", inlining)
                    for i, sub in enumerate(node[key])
                )
        if is_object:
            properties = {
                name: self.convert(sub, f"{path}.{name}", inlining)
                for name, sub in node["properties"].items()
            }
            out["properties"] = properties
            out["required"] = list(properties)
            out["additionalProperties"] = False
        if "items" in node:
            out["items"] = self.convert(node["items"], f"{path}[]", inlining)
        return out


def _refs_in(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(_def_name(value))
            elif key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    _refs_in(sub, found)
            elif key != "$defs":
                _refs_in(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs_in(item, found)


def strict_json_schema(model_cls: type[BaseModel]) -> dict[str, Any]:
    """A JSON schema for ``model_cls`` that OpenAI's strict structured-output mode accepts.

    Derived from a deep copy of ``model_cls.model_json_schema()`` (pydantic's schema is never
    modified):

    * every object lists all its properties in ``required`` and has
      ``"additionalProperties": false``; optional fields stay nullable (``anyOf`` with
      ``{"type": "null"}``) but must be present, and pydantic applies no default to them;
    * only ``type``, ``description``, ``enum``, ``anyOf``, ``properties``, ``required``,
      ``additionalProperties``, ``items``, ``$ref`` and ``$defs`` are kept. ``default``,
      ``title``, ``examples`` and the like are dropped; ``const`` becomes a one-value ``enum``
      and ``oneOf`` becomes ``anyOf``;
    * range, length, pattern and format constraints (``minimum``, ``maxLength``, ``minItems``,
      ``format``...) are dropped too, because strict mode and several local grammar engines
      reject them, and restated in the description (``(constraints: minItems=3)``); pydantic
      still enforces them when the answer is validated;
    * ``$defs``/``$ref`` are kept (recursion works); a ``$ref`` with a sibling ``description``
      is replaced by the inlined definition, since siblings of ``$ref`` are rejected; a root
      ``$ref`` (recursive models) is inlined so the root is an object; unused ``$defs`` are
      dropped.

    Raises ``TypeError`` for what strict mode cannot express: free-form ``dict`` fields,
    fixed-length tuples, ``allOf`` intersections, a root that is not an object.

    Each call returns a fresh dict; the schema is built once per model class (building it
    took about a millisecond, on every structured call).
    """
    return json.loads(_strict_schema_text(model_cls))


@functools.cache
def _strict_schema_text(model_cls: type[BaseModel]) -> str:
    """:func:`strict_json_schema`'s schema as compact JSON, built once per model class."""
    return json.dumps(_build_strict_schema(model_cls), ensure_ascii=False, separators=(",", ":"))


def _build_strict_schema(model_cls: type[BaseModel]) -> dict[str, Any]:
    source = copy.deepcopy(model_cls.model_json_schema())
    defs = source.pop("$defs", {})
    strictifier = _Strictifier(defs)
    root_inlining: tuple[str, ...] = ()
    if "$ref" in source:  # recursive models: {"$ref": "#/$defs/Model", "$defs": {...}}
        ref = source.pop("$ref")
        source = {**strictifier.resolve(ref), **source}
        root_inlining = (ref,)
    schema = strictifier.convert(source, "(root)", root_inlining)
    if schema.get("type") != "object":
        raise TypeError(f"{model_cls.__name__}: the root of a strict schema must be an object")

    converted = {name: strictifier.convert(d, f"$defs.{name}") for name, d in defs.items()}
    used: set[str] = set()
    _refs_in(schema, used)
    pending = list(used)
    while pending:
        name = pending.pop()
        if name not in converted:
            raise TypeError(f"cannot resolve $ref to {name!r}: no such definition")
        found: set[str] = set()
        _refs_in(converted[name], found)
        pending.extend(found - used)
        used |= found
    kept = {name: d for name, d in converted.items() if name in used}
    if kept:
        schema["$defs"] = kept
    return schema


_NAME_RE = re.compile(r"[^a-zA-Z0-9_-]")


def _schema_name(model_cls: type[BaseModel]) -> str:
    return _NAME_RE.sub("_", model_cls.__name__)[:64] or "answer"


def response_format(
    model_cls: type[BaseModel], mode: Literal["json_schema", "json_object", "text"]
) -> dict[str, Any] | None:
    """The ``response_format`` argument of a chat completion for ``mode``, or None for text.

    ``json_schema`` gives the strict schema named after the model class (sanitised to
    ``^[a-zA-Z0-9_-]{1,64}$``); ``json_object`` gives JSON mode.
    """
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": _schema_name(model_cls),
                "schema": strict_json_schema(model_cls),
                "strict": True,
            },
        }
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "text":
        return None
    raise ValueError(f"unknown structured output mode {mode!r}")


def schema_instructions(model_cls: type[BaseModel]) -> str:
    """Prompt text describing the answer format when the server cannot enforce the schema.

    Deterministic: the same model always gives the same text (property order follows the
    model's field order), so prompts stay cacheable.
    """
    schema = _strict_schema_text(model_cls)
    return (
        "Answer with a single JSON object matching this JSON schema:\n"
        f"{schema}\n"
        "Output only the JSON object: no prose before or after it."
    )


# --------------------------------------------------------------------------- free text


def clean_text(text: str) -> str:
    """A free-text answer without reasoning blocks, a byte-order mark or a wrapping fence.

    The fence is removed only when it wraps the whole answer and is unlabelled or labelled as
    markdown/text (```` ```markdown ````, ```` ```md ````, ```` ```text ````); inner code
    blocks are kept. An answer that is nothing but unfinished reasoning gives ``""``.
    """
    cleaned = strip_think(text or "").strip().lstrip("\ufeff").strip()
    blocks = _fenced_blocks(cleaned)
    if (
        len(blocks) == 1
        and blocks[0].closed
        and blocks[0].first_line == 0
        and blocks[0].last_line == len(cleaned.splitlines()) - 1
        and blocks[0].lang in _TEXT_LANGS
    ):
        cleaned = blocks[0].content.strip()
    return cleaned


# The end of a sentence: its punctuation and any closing quotes or brackets, then (except after
# the full-width marks of Chinese and Japanese) a space or the end of the text.
_SENTENCE_END = re.compile(
    r"[.!?\u2026][\"'\u201d\u2019)\]]*(?=\s|$)"
    r"|[\u3002\uff01\uff1f][\"'\u201d\u2019)\]\u300d\u300f\uff09]*"
)


# A period that ends an abbreviation or an initial, not a sentence: "et al.", "Fig. 3", "J. Doe".
_ABBREVIATION = re.compile(
    r"(?:\bet al|\be\.g|\bi\.e|\bcf|\bvs|\betc|\b[Ff]igs?|\b[Ee]qs?|\b[Ss]ecs?|\b[Tt]ab"
    r"|\bNo|\bapprox|\bresp|\bincl|\b[Rr]ef|\b[A-Z])\.$"
)


def complete_sentences(text: str) -> str:
    """``text`` up to the end of its last complete sentence, for prose that was cut off by the
    token limit; ``""`` when not even one sentence is complete. A period after an
    abbreviation ("et al.", "Fig.") or an initial does not end a sentence."""
    for end in reversed(list(_SENTENCE_END.finditer(text))):
        if end.group().startswith(".") and _ABBREVIATION.search(text[: end.start() + 1]):
            continue
        return text[: end.end()].rstrip()
    return ""
