"""What the writing prompts are made from, and the shapes of their structured answers.

One builder per prompt (``prompts/write*.j2``), so the stage and the prompt tests build the
same contexts. Evidence lists are cut to the room the model's context leaves, strongest
evidence first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from surveygen.models import Outline, OutlineNode
from surveygen.text import approx_tokens, truncate_tokens

# Tokens the prompt's own wording takes, beyond the material it shows (kept generous).
PROMPT_OVERHEAD = 900
WORDS_PER_PARAGRAPH = 130
MAX_QUOTES = 4


class FixDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    rationale: str
    text: str


class FixAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sentences: list[FixDraft]


class CoverDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    paragraph: int
    sentence: str


class CoverAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    additions: list[CoverDraft]


class VerdictAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rationale: str
    verdict: Literal["supported", "partial", "unsupported"]


class HeadingDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    text: str


class HeadingsAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    headings: list[HeadingDraft]


@dataclass(frozen=True)
class EvidenceItem:
    """A paper as a writing prompt shows it: key, title, year, summary, its quotes."""

    key: str
    title: str
    year: int | None
    summary: str
    quotes: tuple[str, ...]

    def to_context(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": " ".join(self.title.split()),
            "year": self.year,
            "summary": self.summary,
            "quotes": [f'- "{q}"' for q in self.quotes[:MAX_QUOTES]],
        }


def fit_items(items: Sequence[EvidenceItem], budget_tokens: int) -> tuple[list[dict], int]:
    """The items (strongest first) that fit ``budget_tokens``; always at least one, cut short
    if it alone is too long. Returns the contexts and how many items were left out."""
    shown: list[dict] = []
    used = 0
    for item in items:
        context = item.to_context()
        cost = approx_tokens(str(context))
        if shown and used + cost > budget_tokens:
            break
        if not shown and cost > budget_tokens:
            context["summary"] = truncate_tokens(item.summary, max(budget_tokens // 3, 50))
            context["quotes"] = context["quotes"][:1]
        shown.append(context)
        used += cost
    return shown, len(items) - len(shown)


def paragraphs_for(words: int) -> str:
    low = max(1, round(words / WORDS_PER_PARAGRAPH) - 1)
    high = max(low, round(words / WORDS_PER_PARAGRAPH))
    return str(low) if low == high else f"{low}-{high}"


def leaf_context(
    *,
    survey_title: str,
    node: OutlineNode,
    parent_title: str | None,
    items: Sequence[EvidenceItem],
    words: int,
    language: str,
    budget_tokens: int,
) -> dict[str, Any]:
    evidence, omitted = fit_items(items, budget_tokens - PROMPT_OVERHEAD)
    return {
        "language": language,
        "survey_title": survey_title,
        "parent_title": parent_title,
        "section": {"title": node.title, "description": node.description},
        "evidence": evidence,
        "omitted": omitted,
        "words": words,
        "paragraphs": paragraphs_for(words),
    }


def share_texts(texts: Sequence[tuple[str, str]], budget_tokens: int) -> list[dict[str, str]]:
    """``(title, text)`` pairs, each text cut to an equal share of ``budget_tokens``."""
    if not texts:
        return []
    each = max(budget_tokens // len(texts), 60)
    return [{"title": title, "text": truncate_tokens(text, each)} for title, text in texts]


def parent_context(
    *,
    survey_title: str,
    node: OutlineNode,
    children: Sequence[tuple[str, str]],
    words: int,
    language: str,
    budget_tokens: int,
) -> dict[str, Any]:
    return {
        "language": language,
        "survey_title": survey_title,
        "section": {"title": node.title, "description": node.description},
        "children": share_texts(children, budget_tokens - PROMPT_OVERHEAD),
        "words": words,
    }


def outline_lines(outline: Outline) -> str:
    return "\n".join(
        f"{'  ' * (depth - 1)}- {node.title}: {node.description}".rstrip(": ")
        for node, depth in outline.walk()
    )


def intro_context(
    *,
    topic: str,
    outline: Outline,
    items: Sequence[EvidenceItem],
    words: int,
    language: str,
    budget_tokens: int,
) -> dict[str, Any]:
    lines = outline_lines(outline)
    room = budget_tokens - PROMPT_OVERHEAD - approx_tokens(lines)
    papers, _ = fit_items(
        [EvidenceItem(i.key, i.title, i.year, i.summary, ()) for i in items], room
    )
    return {
        "language": language,
        "survey_title": outline.title,
        "topic": topic,
        "outline": lines,
        "papers": [{k: p[k] for k in ("key", "title", "year", "summary")} for p in papers],
        "words": words,
    }


def conclusion_context(
    *,
    survey_title: str,
    sections: Sequence[tuple[str, str]],
    words: int,
    language: str,
    budget_tokens: int,
) -> dict[str, Any]:
    return {
        "language": language,
        "survey_title": survey_title,
        "sections": share_texts(sections, budget_tokens - PROMPT_OVERHEAD),
        "words": words,
    }


def abstract_context(
    *,
    survey_title: str,
    section_titles: Iterable[str],
    introduction: str,
    conclusion: str,
    words: int,
    language: str,
    budget_tokens: int,
) -> dict[str, Any]:
    half = max((budget_tokens - PROMPT_OVERHEAD) // 2, 100)
    return {
        "language": language,
        "survey_title": survey_title,
        "section_titles": list(section_titles),
        "introduction": truncate_tokens(introduction, half),
        "conclusion": truncate_tokens(conclusion, half),
        "words": words,
    }


@dataclass(frozen=True)
class FixItem:
    id: int
    sentence: str
    papers: tuple[tuple[str, str, tuple[str, ...]], ...]  # (key, title, passages)


def fix_context(items: Sequence[FixItem], *, language: str, budget_tokens: int) -> dict[str, Any]:
    room = max(budget_tokens - PROMPT_OVERHEAD, 200)
    per_paper = max(room // max(sum(len(i.papers) for i in items), 1), 60)
    return {
        "language": language,
        "items": [
            {
                "id": item.id,
                "sentence": item.sentence,
                "papers": [
                    {
                        "key": key,
                        "title": " ".join(title.split()),
                        "passages": _passages_within(passages, per_paper),
                    }
                    for key, title, passages in item.papers
                ],
            }
            for item in items
        ],
    }


def _passages_within(passages: Sequence[str], budget_tokens: int) -> list[str]:
    kept: list[str] = []
    used = 0
    for passage in passages:
        cost = approx_tokens(passage) + 2
        if kept and used + cost > budget_tokens:
            break
        kept.append(f"- {truncate_tokens(passage, budget_tokens)}")
        used += cost
    return kept


def cover_context(
    *,
    section_title: str,
    paragraphs: Sequence[str],
    items: Sequence[EvidenceItem],
    language: str,
    budget_tokens: int,
) -> dict[str, Any]:
    room = budget_tokens - PROMPT_OVERHEAD - sum(approx_tokens(p) for p in paragraphs)
    papers, _ = fit_items(items, max(room, 200))
    return {
        "language": language,
        "section_title": section_title,
        "paragraphs": list(paragraphs),
        "papers": papers,
    }


def verify_context(
    *, claim: str, key: str, title: str, passages: Sequence[str], budget_tokens: int
) -> dict[str, Any]:
    return {
        "claim": claim,
        "key": key,
        "title": " ".join(title.split()),
        "passages": _passages_within(passages, max(budget_tokens - PROMPT_OVERHEAD, 200)),
    }


def headings_context(headings: Mapping[str, str], *, language: str) -> dict[str, Any]:
    return {
        "language": language,
        "headings": [f"{node_id}: {' '.join(text.split())}" for node_id, text in headings.items()],
    }
