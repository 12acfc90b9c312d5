"""Prompt templates: one Jinja file per stage in ``prompts/``, rendered with StrictUndefined.

A prompt file defines two blocks, ``system`` and ``user``; each becomes one chat message.
Every rendered prompt carries its template's name and a short hash of its source, which the
call log records, so a changed prompt is visible in the logs (and, through the messages, in
the cache key).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from surveygen.resources import resource_dir


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    messages: tuple[dict[str, str], ...]


def fence(text: str, label: str) -> str:
    """Wrap paper-derived text as labelled data so the model reads it as material, not orders.

    Any fence-looking line inside the text is defused, so the text cannot close the block.
    """
    body = text.replace("<<<", "‹‹‹").replace(">>>", "›››")
    return f"<<<{label}\n{body}\n>>>"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("prompts"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["fence"] = fence
    return env


@cache
def _version(name: str) -> str:
    source = (resource_dir("prompts") / f"{name}.j2").read_bytes()
    return hashlib.sha256(source).hexdigest()[:12]


def prompt_version(name: str) -> str:
    """A short hash of ``prompts/<name>.j2`` as shipped: what the call log records."""
    return _version(name)


def available_prompts() -> list[str]:
    return sorted(p.stem for p in resource_dir("prompts").glob("*.j2"))


def render_prompt(name: str, **context: Any) -> Prompt:
    """Render ``prompts/<name>.j2`` into system and user messages."""
    template = _environment().get_template(f"{name}.j2")
    ctx = template.new_context(context)
    messages = []
    for role in ("system", "user"):
        block = template.blocks.get(role)
        if block is None:
            raise RuntimeError(f"prompt {name}.j2 has no {{% block {role} %}}")
        text = "".join(block(ctx)).strip()
        messages.append({"role": role, "content": text})
    return Prompt(name=name, version=_version(name), messages=tuple(messages))
