"""Unit tests for surveygen.llm.parsing: reading model answers and building strict schemas."""

from __future__ import annotations

import copy
import json
from enum import Enum
from typing import Any, Generic, Literal, TypeVar

import pytest
from pydantic import BaseModel, ConfigDict, Field

from surveygen.llm.parsing import (
    MAX_MESSAGE_CHARS,
    ParseError,
    clean_text,
    extract_json_text,
    parse_json,
    parse_model,
    response_format,
    schema_instructions,
    strict_json_schema,
    strip_think,
)

# --------------------------------------------------------------------------- test models


class Citation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    page: int | None = None


class Section(BaseModel):
    """One section of the outline."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=120, description="Section heading")
    level: int = Field(default=1, ge=1, le=3)
    kind: Literal["intro", "body", "conclusion"] = "body"
    citations: list[Citation] = Field(default_factory=list, max_length=10)
    note: str | None = None


class Outline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str
    sections: list[Section] = Field(min_length=1)
    lead: Section | None = Field(default=None, description="The section to start with")


class KeyList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[str]
    comment: str = ""


class TwoLists(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: list[int]
    b: list[int]


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    children: list[Node] = []


class Tone(str, Enum):
    neutral = "neutral"
    critical = "critical"


class Styled(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tone: Tone = Field(description="How the survey sounds")
    single: Literal["only"] = "only"
    when: str = Field(default="", json_schema_extra={"format": "date"})


class WithDict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counts: dict[str, int]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(extra="forbid")

    items: list[T]


# --------------------------------------------------------------------------- strip_think


def test_strip_think_closed_block() -> None:
    assert strip_think('<think>\nplan {"a": 1}\n</think>\n\nThe answer.') == "The answer."


def test_strip_think_thinking_tag_and_case() -> None:
    assert strip_think("<THINKING>x</Thinking>  done") == "done"


def test_strip_think_multiple_blocks() -> None:
    text = "<think>one</think>\nPart A.\n<think>\ntwo\n</think>\nPart B."
    assert strip_think(text) == "Part A.\n\nPart B."


def test_strip_think_missing_opening_tag() -> None:
    # The chat template opened the block in the prompt; the answer starts inside it.
    assert strip_think("I should answer briefly.\n</think>\n\nHello.") == "Hello."


def test_strip_think_unclosed_leading_block_is_all_reasoning() -> None:
    assert strip_think('<think>\nLet me think about {"a": 1} and then') == ""
    assert strip_think("  \n<think>cut off") == ""


def test_strip_think_unclosed_tag_after_content_is_kept() -> None:
    text = "Reasoning models write <think> before their reasoning."
    assert strip_think(text) == text
    text = "Answer first.\n<think>\nsomething unfinished"
    assert strip_think(text) == text


def test_strip_think_leaves_literal_mentions() -> None:
    text = "Models wrap reasoning in `<think>` and `</think>` tags."
    assert strip_think(text) == text
    text = "A model writes <think> and then </think> around its reasoning."
    assert strip_think(text) == text


def test_strip_think_no_tags_is_identity() -> None:
    assert strip_think("  plain text \n") == "  plain text \n"


# --------------------------------------------------------------------------- extract_json_text


def test_fenced_json_block() -> None:
    text = 'Here is the outline for {topic}:\n```json\n{"a": [1, 2]}\n```\nDone.'
    assert extract_json_text(text) == '{"a": [1, 2]}'
    assert parse_json(text) == {"a": [1, 2]}


def test_fence_without_language() -> None:
    text = 'Result:\n```\n{"ok": true}\n```'
    assert parse_json(text) == {"ok": True}


def test_json_fence_preferred_over_other_fences() -> None:
    text = '```\n{"example": 1}\n```\nand the real one:\n```json\n{"real": 2}\n```'
    assert parse_json(text) == {"real": 2}


def test_fence_containing_backticks_in_a_string() -> None:
    text = '```json\n{"body": "see ```python\\nx = 1\\n``` above"}\n```'
    assert parse_json(text) == {"body": "see ```python\nx = 1\n``` above"}


def test_think_block_before_json() -> None:
    text = '<think>\nMaybe {"draft": true}?\n</think>\n{"final": true}'
    assert parse_json(text) == {"final": True}


def test_unclosed_think_block_is_cut_off() -> None:
    with pytest.raises(ParseError) as info:
        extract_json_text('<think>\nI will answer {"a": 1} once I')
    assert info.value.cut_off
    assert "think" in info.value.message


def test_leading_prose() -> None:
    assert parse_json('Sure! Here is the JSON:\n{"a": 1}') == {"a": 1}


def test_trailing_prose() -> None:
    text = '{"a": {"b": [1, 2]}}\n\nLet me know if you need {more} changes [1].'
    assert extract_json_text(text) == '{"a": {"b": [1, 2]}}'


def test_citation_marker_in_prose_does_not_win() -> None:
    text = 'As shown in [1], the answer is:\n{"sections": [{"title": "Intro"}]}'
    assert parse_json(text) == {"sections": [{"title": "Intro"}]}


def test_braces_inside_strings() -> None:
    text = 'Note: {"a": "x {b} y", "c": "]"} end'
    assert parse_json(text) == {"a": "x {b} y", "c": "]"}


def test_escaped_quotes() -> None:
    text = 'Answer: {"q": "she said \\"hi {there}\\"", "p": "back\\\\"} thanks'
    assert parse_json(text) == {"q": 'she said "hi {there}"', "p": "back\\"}


def test_top_level_array() -> None:
    assert parse_json('The keys:\n[{"k": "a"}, {"k": "b"}]\nThat is all.') == [
        {"k": "a"},
        {"k": "b"},
    ]


def test_bom_and_whitespace() -> None:
    assert parse_json('\ufeff  \n {"a": 1}\n\n') == {"a": 1}


def test_raw_newline_inside_string_is_tolerated() -> None:
    assert parse_json('{"text": "line one\nline two"}') == {"text": "line one\nline two"}


def test_no_json_at_all() -> None:
    with pytest.raises(ParseError, match="no JSON object found") as info:
        extract_json_text("I cannot help with {that} request [see policy].")
    assert not info.value.cut_off


def test_empty_answer() -> None:
    with pytest.raises(ParseError, match="empty"):
        parse_json("   ")


def test_truncated_json_is_reported_as_cut_off() -> None:
    with pytest.raises(ParseError) as info:
        parse_json('Here:\n{"sections": [{"title": "A"}, {"title": "B"')
    assert info.value.cut_off
    assert "never closed" in info.value.message
    assert "line 2" in info.value.message


def test_pathological_input_fails_fast() -> None:
    with pytest.raises(ParseError) as info:
        parse_json('{"k": ' * 5000)
    assert info.value.cut_off
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_json("[" * 50_000 + "]" * 50_000)


def test_invalid_json_error_message_quotes_position() -> None:
    with pytest.raises(ParseError) as info:
        parse_json('{"a": 1, "b": [1, 2}')
    message = info.value.message
    assert message.startswith("the answer is not valid JSON")
    assert "line 1 column 20" in message
    assert "<HERE>" in message
    assert not info.value.cut_off


def test_single_quotes_are_not_repaired() -> None:
    with pytest.raises(ParseError, match="double quotes"):
        parse_json("{'a': 1}")


def test_trailing_comma_tolerance() -> None:
    assert parse_json('{"a": [1, 2,], "b": {"c": 3,},\n}') == {"a": [1, 2], "b": {"c": 3}}
    # a comma inside a string is left alone
    assert parse_json('{"a": "x,}", "b": ",]",}') == {"a": "x,}", "b": ",]"}


def test_double_trailing_comma_is_not_repaired() -> None:
    with pytest.raises(ParseError):
        parse_json('{"a": [1,,]}')


def test_parse_error_is_a_value_error_with_short_message() -> None:
    error = ParseError("x" * 2000)
    assert isinstance(error, ValueError)
    assert len(error.message) <= MAX_MESSAGE_CHARS
    assert str(error) == error.message


# --------------------------------------------------------------------------- parse_model


def test_parse_model_valid() -> None:
    text = '```json\n{"topic": "RAG", "sections": [{"title": "Intro", "kind": "intro"}]}\n```'
    outline = parse_model(text, Outline)
    assert isinstance(outline, Outline)
    assert outline.sections[0].title == "Intro"
    assert outline.sections[0].kind == "intro"
    assert outline.lead is None


def test_parse_model_lists_error_paths() -> None:
    text = json.dumps(
        {
            "topic": "RAG",
            "sections": [
                {"title": "Intro"},
                {"level": 2},
                {"title": "X", "kind": "appendix", "citations": [{"key": 3}]},
            ],
            "extra": 1,
        }
    )
    with pytest.raises(ParseError) as info:
        parse_model(text, Outline)
    message = info.value.message
    assert "Outline" in message
    assert "- sections[1].title: Field required" in message
    assert "- sections[2].kind:" in message
    assert "'appendix'" in message or '"appendix"' in message
    assert "- sections[2].citations[0].key:" in message
    assert "- extra:" in message


def test_parse_model_caps_listed_errors() -> None:
    text = json.dumps({"topic": "t", "sections": [{"level": "x"} for _ in range(8)]})
    with pytest.raises(ParseError) as info:
        parse_model(text, Outline)
    message = info.value.message
    assert len(message) <= MAX_MESSAGE_CHARS
    assert message.count("\n- sections[") == 5
    assert "more" in message.splitlines()[-1]


def test_parse_model_root_type_error() -> None:
    with pytest.raises(ParseError, match=r"\(root\)"):
        parse_model('"just a string"', Outline)


def test_bare_list_accepted_for_single_list_field() -> None:
    result = parse_model('Here you go:\n["a", "b"]', KeyList)
    assert result == KeyList(keys=["a", "b"])


def test_bare_list_accepted_for_optional_list_field() -> None:
    class MaybeKeys(BaseModel):
        model_config = ConfigDict(extra="forbid")

        keys: list[str] | None = None
        count: int = 0

    assert parse_model('["a"]', MaybeKeys).keys == ["a"]


def test_bare_list_rejected_when_other_fields_are_required() -> None:
    class Titled(BaseModel):
        model_config = ConfigDict(extra="forbid")

        title: str
        keys: list[str]

    with pytest.raises(ParseError, match=r"\(root\)"):
        parse_model('["a"]', Titled)


def test_bare_list_rejected_when_ambiguous() -> None:
    with pytest.raises(ParseError, match="TwoLists"):
        parse_model("[1, 2]", TwoLists)


def test_bare_list_uses_alias() -> None:
    class Aliased(BaseModel):
        model_config = ConfigDict(extra="forbid")

        papers: list[str] = Field(alias="paperKeys")

    assert parse_model('["x"]', Aliased).papers == ["x"]


# --------------------------------------------------------------------------- strict schema

_ALLOWED_KEYWORDS = {
    "type",
    "description",
    "enum",
    "anyOf",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "$ref",
    "$defs",
}


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/$defs/"), ref
    return root["$defs"][ref.removeprefix("#/$defs/")]


def _assert_openai_strict(schema: dict[str, Any]) -> int:
    """Walk every subschema and check OpenAI's strict rules; returns how many objects it saw."""
    assert schema.get("type") == "object", "the root must be an object"
    objects = 0

    def walk(node: Any, path: str, *, root: bool = False) -> None:
        nonlocal objects
        assert isinstance(node, dict), path
        assert set(node) <= _ALLOWED_KEYWORDS, f"{path}: {set(node) - _ALLOWED_KEYWORDS}"
        if "$defs" in node:
            assert root, f"{path}: $defs only at the root"
            for name, sub in node["$defs"].items():
                walk(sub, f"$defs.{name}")
        if "$ref" in node:
            assert set(node) == {"$ref"}, f"{path}: $ref with siblings"
            _resolve(schema, node["$ref"])
            return
        if node.get("type") == "object" or "properties" in node:
            objects += 1
            assert node["additionalProperties"] is False, path
            assert node["required"] == list(node["properties"]), path
            for name, sub in node["properties"].items():
                walk(sub, f"{path}.{name}")
        if node.get("type") == "array":
            walk(node["items"], f"{path}[]")
        for i, sub in enumerate(node.get("anyOf", [])):
            walk(sub, f"{path}.anyOf[{i}]")

    walk(schema, "(root)", root=True)
    return objects


def _all_keys(node: Any) -> set[str]:
    """Every schema keyword used anywhere (property names excluded)."""
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            keys.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    keys |= _all_keys(sub)
            else:
                keys |= _all_keys(value)
    elif isinstance(node, list):
        for item in node:
            keys |= _all_keys(item)
    return keys


def test_strict_schema_nested_model() -> None:
    schema = strict_json_schema(Outline)
    assert _assert_openai_strict(schema) >= 3  # Outline, Section, Citation
    keys = _all_keys(schema)
    for banned in ("default", "title", "minLength", "maxLength", "minItems", "maxItems"):
        assert banned not in keys
    for banned in ("minimum", "maximum", "format", "pattern", "examples", "const", "allOf"):
        assert banned not in keys
    assert schema["properties"]["sections"]["items"] == {"$ref": "#/$defs/Section"}
    section = schema["$defs"]["Section"]
    assert section["required"] == ["title", "level", "kind", "citations", "note"]
    assert section["properties"]["citations"]["items"] == {"$ref": "#/$defs/Citation"}
    citation = schema["$defs"]["Citation"]
    assert citation["additionalProperties"] is False
    assert citation["required"] == ["key", "page"]


def test_strict_schema_restates_dropped_constraints() -> None:
    section = strict_json_schema(Outline)["$defs"]["Section"]
    title = section["properties"]["title"]
    assert title["type"] == "string"
    assert title["description"].startswith("Section heading")
    assert "minLength=1" in title["description"]
    assert "maxLength=120" in title["description"]
    assert "minimum=1" in section["properties"]["level"]["description"]


def test_optional_field_is_nullable_and_required() -> None:
    schema = strict_json_schema(Outline)
    lead = schema["properties"]["lead"]
    assert "lead" in schema["required"]
    assert {"type": "null"} in lead["anyOf"]
    assert {"$ref": "#/$defs/Section"} in lead["anyOf"]
    assert lead["description"] == "The section to start with"
    note = schema["$defs"]["Section"]["properties"]["note"]
    assert note == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_literal_and_enum_give_enum() -> None:
    schema = strict_json_schema(Styled)
    _assert_openai_strict(schema)
    tone = schema["properties"]["tone"]
    assert tone["enum"] == ["neutral", "critical"]
    assert tone["description"] == "How the survey sounds"  # kept by inlining the $ref
    assert schema["properties"]["single"]["enum"] == ["only"]
    assert "format" in schema["properties"]["when"]["description"]
    assert "$defs" not in schema  # Tone was inlined, nothing else refers to it
    kind = strict_json_schema(Outline)["$defs"]["Section"]["properties"]["kind"]
    assert kind == {"type": "string", "enum": ["intro", "body", "conclusion"]}


def test_recursive_model() -> None:
    schema = strict_json_schema(Node)
    _assert_openai_strict(schema)
    assert schema["required"] == ["name", "children"]
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert schema["$defs"]["Node"]["additionalProperties"] is False


def test_strict_schema_does_not_mutate_pydantic_schema() -> None:
    before = copy.deepcopy(Outline.model_json_schema())
    first = strict_json_schema(Outline)
    first["properties"]["topic"]["type"] = "mutated"
    assert Outline.model_json_schema() == before
    assert strict_json_schema(Outline)["properties"]["topic"]["type"] == "string"


def test_strict_schema_rejects_free_form_dicts() -> None:
    with pytest.raises(TypeError, match="dict"):
        strict_json_schema(WithDict)


# --------------------------------------------------------------------------- response_format


def test_response_format_json_schema() -> None:
    fmt = response_format(Outline, "json_schema")
    assert fmt is not None
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Outline"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == strict_json_schema(Outline)


def test_response_format_sanitises_name() -> None:
    fmt = response_format(Page[Section], "json_schema")
    assert fmt is not None
    name = fmt["json_schema"]["name"]
    assert name.startswith("Page")
    assert all(c.isalnum() or c in "_-" for c in name)
    assert 1 <= len(name) <= 64


def test_response_format_json_object_and_text() -> None:
    assert response_format(Outline, "json_object") == {"type": "json_object"}
    assert response_format(Outline, "text") is None
    with pytest.raises(ValueError):
        response_format(Outline, "yaml")  # type: ignore[arg-type]


def test_schema_instructions() -> None:
    text = schema_instructions(Outline)
    assert text.startswith("Answer with a single JSON object matching this JSON schema:")
    assert text == schema_instructions(Outline)  # deterministic
    start, end = text.index("{"), text.rindex("}") + 1
    assert json.loads(text[start:end]) == strict_json_schema(Outline)
    assert "\n" not in text[start:end]  # compact


# --------------------------------------------------------------------------- clean_text


def test_clean_text_plain() -> None:
    assert clean_text("  Hello world.\n\n") == "Hello world."


def test_clean_text_strips_think_and_markdown_fence() -> None:
    text = "<think>plan</think>\n```markdown\n## Intro\n\nText [1].\n```\n"
    assert clean_text(text) == "## Intro\n\nText [1]."


def test_clean_text_bare_fence() -> None:
    assert clean_text("```\nJust text.\n```") == "Just text."


def test_clean_text_keeps_inner_code_blocks() -> None:
    text = "```markdown\n# T\n\n```python\nx = 1\n```\n\nAfter.\n```"
    assert clean_text(text) == "# T\n\n```python\nx = 1\n```\n\nAfter."


def test_clean_text_keeps_partial_fences() -> None:
    text = "Intro.\n\n```python\nx = 1\n```"
    assert clean_text(text) == text
    two = "```\na\n```\nmiddle\n```\nb\n```"
    assert clean_text(two) == two
    code = "```python\nprint(1)\n```"
    assert clean_text(code) == code


def test_clean_text_unfinished_reasoning_is_empty() -> None:
    assert clean_text("<think>\nstill thinking") == ""


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("One [@a]. Two (see Table 1). Three is cu", "One [@a]. Two (see Table 1)."),
        ('He said "stop." Then the model', 'He said "stop."'),
        ("检索有帮助。生成模型", "检索有帮助。"),
        ("Is it? Yes! And then", "Is it? Yes!"),
        ("No sentence ends here", ""),
        ("Values like 3.5 and e.g", ""),
        ("It helps recall. Lewis et al. propose a retriever that", "It helps recall."),
        ("See Fig. 3 for the curve. As in Eq. 2 and", "See Fig. 3 for the curve."),
        ("Written by J. Doe. The model i.e. a", "Written by J. Doe."),
        ("The answer was no. Then the", "The answer was no."),
    ],
)
def test_complete_sentences_cuts_prose_at_its_last_full_sentence(text: str, kept: str) -> None:
    from surveygen.llm.parsing import complete_sentences

    assert complete_sentences(text) == kept
