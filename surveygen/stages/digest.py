"""Digest (map): read each paper against the outline, keep verified evidence and suggestions.

One call per paper. The paper's text is split into numbered sentences (LongCite-style) so the
model points at the sentence each quote comes from; every quote is then checked against the
paper and dropped (and counted) when it does not occur there. A kept quote is stored as the
paper's own words (the span of the sentence that matched), never as the model's rendering of
them; a quote whose sentence number is wrong but whose words are in another sentence is kept
with the corrected number, if it is long enough (MIN_RELOCATED_WORDS words) not to match some
sentence by chance. The model also suggests changes to the outline (add, remove, merge,
rename, move a node, each with a rationale): refinement's local features.

A paper whose numbered text does not fit the model's context (``context_tokens``) is read
with LLM×MapReduce-V1's protocol (surveygen.mapreduce): its sentences, numbered across the
whole paper, are cut into chunks; each chunk is mapped to per-section extracted information,
evidence, rationale and a calibrated confidence; results are collapsed while they exceed the
context and reduced to one digest in which higher confidence wins conflicts. The evidence of
the reduced digest is verified against the whole paper, exactly as for a short paper.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from surveygen.errors import ConfigError
from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import Prompt, render_prompt
from surveygen.mapreduce import (
    Protocol,
    chunk_lines,
    chunk_room,
    input_budget,
    map_collapse_reduce,
    prompt_tokens,
    schema_tokens,
)
from surveygen.models import Digest, Evidence, NodeDigest, Outline, Paper, Suggestion
from surveygen.outline_tree import outline_text
from surveygen.text import approx_tokens, best_sentence, matched_span, quote_in, split_sentences

STAGE = "digest"
MAX_EVIDENCE_PER_NODE = 4
MAX_SUGGESTIONS = 3
# rapidfuzz partial_ratio needed to accept a quote as coming from a sentence.
QUOTE_THRESHOLD = 90.0
# A quote whose sentence number is wrong is looked for in the whole paper only when it has at
# least this many words: a short, generic one would match some sentence somewhere.
MIN_RELOCATED_WORDS = 5


class EvidenceDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sentence: int
    quote: str


class NodeEvidenceDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node_id: str
    summary: str
    evidence: list[EvidenceDraft]
    confidence: int


class SuggestionDraft(BaseModel):
    """A change to the outline; ``parent`` "" means the top level (or: not applicable)."""

    model_config = ConfigDict(extra="forbid")
    rationale: str
    op: Literal["add", "remove", "merge", "rename", "move"]
    targets: list[str]
    parent: str
    title: str
    description: str


class DigestDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relevant: list[NodeEvidenceDraft]
    suggestions: list[SuggestionDraft] = []


class ChunkNodeDraft(BaseModel):
    """V1's structured information for one section from one chunk of a long paper."""

    model_config = ConfigDict(extra="forbid")
    node_id: str
    extracted_information: str
    evidence: list[EvidenceDraft]
    rationale: str
    confidence: int


class ChunkDigestDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relevant: list[ChunkNodeDraft]
    suggestions: list[SuggestionDraft]


def paper_sentences(paper: Paper, *, max_tokens: int | None = None) -> list[str]:
    """The sentences the model sees: full text if there is one, else the abstract (else the
    title), cut after ``max_tokens`` when given."""
    body = paper.text or paper.abstract or paper.title
    sentences: list[str] = []
    used = 0
    for sentence in split_sentences(body):
        used += approx_tokens(sentence) + 2
        if max_tokens is not None and used > max_tokens:
            break
        sentences.append(sentence)
    return sentences or [paper.title]


def number_sentences(sentences: Sequence[str], start: int = 0) -> str:
    return "\n".join(numbered_lines(sentences, start))


def numbered_lines(sentences: Sequence[str], start: int = 0) -> list[str]:
    return [f"[{i}] {s}" for i, s in enumerate(sentences, start)]


def _verify_evidence(
    drafts: Sequence[EvidenceDraft], sentences: Sequence[str]
) -> tuple[list[Evidence], int]:
    """The quotes found in the paper, as the paper's own words; and how many were not."""
    kept: list[Evidence] = []
    dropped = 0
    for ev in drafts:
        quote = ev.quote.strip().strip('"“”')
        index = ev.sentence
        if not (0 <= index < len(sentences) and quote_in(quote, sentences[index], QUOTE_THRESHOLD)):
            if len(quote.split()) < MIN_RELOCATED_WORDS:
                dropped += 1
                continue
            index, _score = best_sentence(quote, sentences)
            if index < 0 or not quote_in(quote, sentences[index], QUOTE_THRESHOLD):
                dropped += 1
                continue
        if len(kept) < MAX_EVIDENCE_PER_NODE and all(k.sentence != index for k in kept):
            kept.append(Evidence(quote=matched_span(quote, sentences[index]), sentence=index))
    return kept, dropped


def verify_suggestions(
    drafts: Sequence[SuggestionDraft], outline_ids: Collection[str]
) -> tuple[Suggestion, ...]:
    """Suggestions that make sense against the outline: targets and parent must be its ids,
    each operation has what it needs; at most MAX_SUGGESTIONS."""
    known = set(outline_ids)
    out: list[Suggestion] = []
    for draft in drafts:
        targets = tuple(dict.fromkeys(t.strip() for t in draft.targets if t.strip()))
        parent = draft.parent.strip() or None
        title = " ".join(draft.title.split())
        if any(t not in known for t in targets) or (parent is not None and parent not in known):
            continue
        needs = {
            "add": bool(title),
            "remove": len(targets) >= 1,
            "merge": len(targets) >= 2,
            "rename": len(targets) == 1 and bool(title),
            "move": len(targets) == 1,
        }
        if not needs[draft.op]:
            continue
        out.append(
            Suggestion(
                op=draft.op,
                targets=targets,
                parent=parent,
                title=title,
                description=draft.description.strip(),
                rationale=draft.rationale.strip(),
            )
        )
        if len(out) >= MAX_SUGGESTIONS:
            break
    return tuple(out)


def verify_digest(
    draft: DigestDraft,
    sentences: Sequence[str],
    paper_key: str,
    node_ids: set[str],
    *,
    outline_ids: Collection[str] = (),
    chunks: int = 1,
) -> Digest:
    """Keep evidence that really occurs in the paper; count what had to be dropped.

    ``node_ids`` are the nodes evidence may go on (the leaves); ``outline_ids`` every node a
    suggestion may name.
    """
    dropped = 0
    nodes: list[NodeDigest] = []
    seen_nodes: set[str] = set()
    for item in draft.relevant:
        if item.node_id not in node_ids or item.node_id in seen_nodes:
            dropped += len(item.evidence)
            continue
        kept, lost = _verify_evidence(item.evidence, sentences)
        dropped += lost
        if not kept:
            continue
        # A node counts as taken only once it has verified evidence, so a later entry for
        # the same node is not lost behind an earlier one whose quotes were all fabricated.
        seen_nodes.add(item.node_id)
        nodes.append(
            NodeDigest(
                node_id=item.node_id,
                summary=item.summary.strip(),
                evidence=tuple(kept),
                confidence=min(5, max(1, item.confidence)),
            )
        )
    return Digest(
        paper_key=paper_key,
        nodes=tuple(nodes),
        dropped_quotes=dropped,
        suggestions=verify_suggestions(draft.suggestions, outline_ids or node_ids),
        chunks=chunks,
    )


def digest_targets(outline: Outline) -> list[dict]:
    """The nodes evidence can be placed on: the leaves (parents synthesise their children)."""
    return [{"id": n.id, "title": n.title, "description": n.description} for n in outline.leaves()]


def _context(topic: str, outline: Outline, paper: Paper, *, suggest: bool) -> dict[str, Any]:
    """What every digest prompt (whole paper, chunk, collapse) is given."""
    return {
        "topic": topic,
        "outline": outline_text(outline),
        "sections": digest_targets(outline),
        "paper": {"key": paper.key, "title": paper.title, "year": paper.year},
        "suggest": suggest,
    }


def digest_prompt(
    topic: str, outline: Outline, paper: Paper, numbered_text: str, *, suggest: bool
) -> Prompt:
    context = _context(topic, outline, paper, suggest=suggest)
    return render_prompt("digest", **context, numbered_text=numbered_text)


def long_paper_protocol(
    topic: str, outline: Outline, paper: Paper, *, suggest: bool
) -> Protocol[ChunkDigestDraft, DigestDraft]:
    """V1's map/collapse/reduce prompts for reading one long paper against the outline."""
    common = _context(topic, outline, paper, suggest=suggest)

    def results_json(results: Sequence[ChunkDigestDraft]) -> list[str]:
        return [json.dumps(r.model_dump(), ensure_ascii=False) for r in results]

    return Protocol(
        map_prompt=lambda chunk: render_prompt(
            "digest_chunk", **common, numbered_text=chunk.text, part=chunk.index + 1
        ),
        collapse_prompt=lambda results: render_prompt(
            "digest_collapse", **common, results=results_json(results), final=False
        ),
        reduce_prompt=lambda results: render_prompt(
            "digest_collapse", **common, results=results_json(results), final=True
        ),
        map_schema=ChunkDigestDraft,
        reduce_schema=DigestDraft,
        confidence=lambda r: max((n.confidence for n in r.relevant), default=1),
    )


async def digest_paper(
    llm: LLMClient,
    topic: str,
    outline: Outline,
    paper: Paper,
    *,
    context_tokens: int,
    output_tokens: int,
    suggest: bool = True,
    task: str | None = None,
    needs: Sequence[str] = (),
) -> Digest:
    """The paper's digest against ``outline``: one call when the paper fits the context,
    else map/collapse/reduce over chunks of its numbered sentences. ``task`` and ``needs``
    trace the calls (see surveygen.llm.client.Trace); ``needs`` names what made ``outline``."""
    task = task or f"{STAGE}/{paper.key}"
    sentences = paper_sentences(paper)
    targets = {t["id"] for t in digest_targets(outline)}
    outline_ids = [node.id for node, _ in outline.walk()]
    budget = input_budget(context_tokens, output_tokens) - schema_tokens(DigestDraft)
    prompt = digest_prompt(topic, outline, paper, number_sentences(sentences), suggest=suggest)
    if prompt_tokens(prompt) <= budget:
        draft = await llm.structured(
            prompt, DigestDraft, stage=STAGE, item=paper.key, task=task, needs=needs
        )
        chunks = 1
    else:
        protocol = long_paper_protocol(topic, outline, paper, suggest=suggest)
        try:
            room = chunk_room(protocol, context_tokens=context_tokens, output_tokens=output_tokens)
            pieces = chunk_lines(numbered_lines(sentences), room)
            draft, stats = await map_collapse_reduce(
                llm,
                protocol,
                pieces,
                context_tokens=context_tokens,
                output_tokens=output_tokens,
                stage=STAGE,
                item=paper.key,
                task=task,
                needs=needs,
            )
        except ValueError as exc:  # the outline and instructions leave no room for text
            raise ConfigError(
                f"context_tokens {context_tokens} is too small to read {paper.key}: {exc}",
                hint="raise --context-tokens to your model's context, or lower "
                "max_output_tokens or --max-sections",
            ) from None
        chunks = stats.chunks
    return verify_digest(
        draft, sentences, paper.key, targets, outline_ids=outline_ids, chunks=chunks
    )
