"""Digest (map): read each paper against the outline and keep verified evidence.

One call per paper. The paper's text is split into numbered sentences (LongCite-style) so the
model can point at the sentence each quote comes from; every quote is then checked against the
paper and dropped (and counted) when it does not occur there. A quote whose sentence number is
wrong but whose words are in another sentence is kept with the corrected number.

Papers longer than the prompt budget are cut for now; the map/collapse/reduce protocol for
long inputs replaces the cut later without moving this stage's boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import render_prompt
from surveygen.models import Digest, Evidence, NodeDigest, Outline, Paper
from surveygen.text import approx_tokens, best_sentence, quote_in, split_sentences

STAGE = "digest"
MAX_EVIDENCE_PER_NODE = 4
# rapidfuzz partial_ratio needed to accept a quote as coming from a sentence.
QUOTE_THRESHOLD = 90.0


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


class DigestDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relevant: list[NodeEvidenceDraft]


def paper_sentences(paper: Paper, *, max_tokens: int) -> list[str]:
    """The sentences the model sees: full text if there is one, else the abstract, cut to fit."""
    body = paper.text or paper.abstract or paper.title
    sentences: list[str] = []
    used = 0
    for sentence in split_sentences(body):
        used += approx_tokens(sentence) + 2
        if used > max_tokens:
            break
        sentences.append(sentence)
    return sentences or [paper.title]


def number_sentences(sentences: Sequence[str]) -> str:
    return "\n".join(f"[{i}] {s}" for i, s in enumerate(sentences))


def verify_digest(
    draft: DigestDraft, sentences: Sequence[str], paper_key: str, node_ids: set[str]
) -> Digest:
    """Keep evidence that really occurs in the paper; count what had to be dropped."""
    dropped = 0
    nodes: list[NodeDigest] = []
    seen_nodes: set[str] = set()
    for item in draft.relevant:
        if item.node_id not in node_ids or item.node_id in seen_nodes:
            dropped += len(item.evidence)
            continue
        kept: list[Evidence] = []
        for ev in item.evidence:
            quote = ev.quote.strip().strip('"“”')
            index = ev.sentence
            if not (
                0 <= index < len(sentences) and quote_in(quote, sentences[index], QUOTE_THRESHOLD)
            ):
                index, _score = best_sentence(quote, sentences)
                if index < 0 or not quote_in(quote, sentences[index], QUOTE_THRESHOLD):
                    dropped += 1
                    continue
            if len(kept) < MAX_EVIDENCE_PER_NODE and all(k.sentence != index for k in kept):
                kept.append(Evidence(quote=quote, sentence=index))
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
    return Digest(paper_key=paper_key, nodes=tuple(nodes), dropped_quotes=dropped)


def digest_targets(outline: Outline) -> list[dict]:
    """The nodes evidence can be placed on: the leaves (parents synthesise their children)."""
    return [{"id": n.id, "title": n.title, "description": n.description} for n in outline.leaves()]


async def digest_paper(
    llm: LLMClient, topic: str, outline: Outline, paper: Paper, *, max_tokens: int
) -> Digest:
    sentences = paper_sentences(paper, max_tokens=max_tokens)
    targets = digest_targets(outline)
    prompt = render_prompt(
        "digest",
        topic=topic,
        sections=targets,
        paper={"key": paper.key, "title": paper.title, "year": paper.year},
        numbered_text=number_sentences(sentences),
    )
    draft = await llm.structured(prompt, DigestDraft, stage=STAGE, item=paper.key)
    return verify_digest(draft, sentences, paper.key, {t["id"] for t in targets})
