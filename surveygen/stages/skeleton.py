"""Skeleton: the first outline of the survey, proposed by the LLM from titles and abstracts.

This first cut asks once for the whole outline; clustering the library and merging per-cluster
fragments replaces it later without moving this stage's boundary (papers in, Outline out).
Node ids are assigned here, in reading order (``n1``, ``n2``, ...), and never reused.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from surveygen.errors import LLMParseError
from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import render_prompt
from surveygen.models import Outline, OutlineNode, Paper
from surveygen.text import approx_tokens, truncate_tokens

STAGE = "skeleton"
# Room for titles and abstracts in the one skeleton prompt; abstracts are shortened evenly.
PROMPT_TOKEN_BUDGET = 24_000


class LeafDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    description: str


class SectionDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    description: str
    subsections: list[LeafDraft]


class OutlineDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    sections: list[SectionDraft]


def paper_briefs(papers: Sequence[Paper], budget: int = PROMPT_TOKEN_BUDGET) -> list[dict]:
    """Titles and abstracts, abstracts shortened so that the whole list fits ``budget`` tokens."""
    per_paper = max(40, budget // max(1, len(papers)) - 20)
    return [
        {
            "key": p.key,
            "title": p.title,
            "year": p.year,
            "abstract": truncate_tokens(p.abstract, per_paper)
            if approx_tokens(p.abstract) > per_paper
            else p.abstract,
        }
        for p in papers
    ]


def outline_from_draft(draft: OutlineDraft, *, max_sections: int, fallback_title: str) -> Outline:
    """Turn the model's draft into an Outline with ids, dropping empty titles and extra leaves."""
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return f"n{counter}"

    sections: list[OutlineNode] = []
    leaves = 0
    for section in draft.sections:
        title = section.title.strip()
        if not title or leaves >= max_sections:
            continue
        section_id = next_id()
        children: list[OutlineNode] = []
        for sub in section.subsections:
            if sub.title.strip() and leaves < max_sections:
                children.append(OutlineNode(next_id(), sub.title.strip(), sub.description.strip()))
                leaves += 1
        if not children:
            leaves += 1
        sections.append(
            OutlineNode(section_id, title, section.description.strip(), tuple(children))
        )
    if not sections:
        raise LLMParseError(
            "skeleton: the model proposed an outline with no sections",
            hint="try a stronger --model",
        )
    return Outline(title=draft.title.strip() or fallback_title, sections=tuple(sections))


async def build_skeleton(
    llm: LLMClient, topic: str, papers: Sequence[Paper], *, max_sections: int
) -> Outline:
    prompt = render_prompt(
        "skeleton", topic=topic, papers=paper_briefs(papers), max_sections=max_sections
    )
    draft = await llm.structured(prompt, OutlineDraft, stage=STAGE)
    return outline_from_draft(draft, max_sections=max_sections, fallback_title=topic)
