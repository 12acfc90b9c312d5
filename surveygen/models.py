"""The data that flows between stages: papers, outlines, digests, sections.

Frozen dataclasses inside the pipeline; pydantic only at the edges (input files, LLM answers).
Every type here round-trips through plain JSON (``to_json``/``from_json``) so stages can save
their results in the run directory and a resumed run can read them back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Paper:
    """One paper of the library, known to prompts and citations by its ``key``."""

    key: str
    title: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    abstract: str = ""
    text: str = ""
    arxiv_id: str | None = None
    doi: str | None = None
    url: str | None = None
    venue: str | None = None
    source: str = ""
    # Provenance, recorded in papers.jsonl: the other sources that held the same paper, the
    # search query that found it, its TF-IDF relevance, its LLM screening score (0-10), and
    # whether a paper the user supplied looks off-topic (it is kept all the same).
    also_in: tuple[str, ...] = ()
    query: str | None = None
    score: float | None = None
    screen_score: float | None = None
    off_topic: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": self.key,
            "title": self.title,
            "authors": list(self.authors),
            "year": self.year,
            "abstract": self.abstract,
        }
        for name in ("text", "arxiv_id", "doi", "url", "venue"):
            value = getattr(self, name)
            if value:
                data[name] = value
        data["source"] = self.source
        if self.also_in:
            data["also_in"] = list(self.also_in)
        for name in ("query", "score", "screen_score"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.off_topic:
            data["off_topic"] = True
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Paper:
        return cls(
            key=data["key"],
            title=data["title"],
            authors=tuple(data.get("authors") or ()),
            year=data.get("year"),
            abstract=data.get("abstract") or "",
            text=data.get("text") or "",
            arxiv_id=data.get("arxiv_id"),
            doi=data.get("doi"),
            url=data.get("url"),
            venue=data.get("venue"),
            source=data.get("source") or "",
            also_in=tuple(data.get("also_in") or ()),
            query=data.get("query"),
            score=data.get("score"),
            screen_score=data.get("screen_score"),
            off_topic=bool(data.get("off_topic")),
        )


@dataclass(frozen=True)
class OutlineNode:
    """A section of the survey. ``description`` says what to extract from papers and how."""

    id: str
    title: str
    description: str = ""
    children: tuple[OutlineNode, ...] = ()

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "children": [child.to_json() for child in self.children],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutlineNode:
        return cls(
            id=data["id"],
            title=data["title"],
            description=data.get("description") or "",
            children=tuple(cls.from_json(c) for c in data.get("children") or ()),
        )


@dataclass(frozen=True)
class Outline:
    """The survey's title and its tree of sections (the root itself is not a section)."""

    title: str
    sections: tuple[OutlineNode, ...] = ()

    def walk(self) -> Iterator[tuple[OutlineNode, int]]:
        """Every section in reading order, with its depth (top-level sections have depth 1)."""

        def visit(nodes: tuple[OutlineNode, ...], depth: int) -> Iterator[tuple[OutlineNode, int]]:
            for node in nodes:
                yield node, depth
                yield from visit(node.children, depth + 1)

        return visit(self.sections, 1)

    def leaves(self) -> list[OutlineNode]:
        return [node for node, _ in self.walk() if node.is_leaf]

    def find(self, node_id: str) -> OutlineNode | None:
        return next((node for node, _ in self.walk() if node.id == node_id), None)

    @property
    def depth(self) -> int:
        return max((depth for _, depth in self.walk()), default=0)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "sections": [s.to_json() for s in self.sections]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outline:
        return cls(
            title=data["title"],
            sections=tuple(OutlineNode.from_json(s) for s in data.get("sections") or ()),
        )


@dataclass(frozen=True)
class Evidence:
    """A short verbatim quote from a paper, with the index of the sentence it comes from.

    ``quote`` is the paper's own text (the span of sentence ``sentence`` that matched what the
    model quoted), never the model's paraphrase of it.
    """

    quote: str
    sentence: int


@dataclass(frozen=True)
class NodeDigest:
    """What one paper contributes to one outline node."""

    node_id: str
    summary: str
    evidence: tuple[Evidence, ...] = ()
    confidence: int = 3


SUGGESTION_OPS = ("add", "remove", "merge", "rename", "move")


@dataclass(frozen=True)
class Suggestion:
    """A proposed change to the outline, made by a paper's digest or merged by refinement.

    ``op`` is one of SUGGESTION_OPS. ``targets`` are the ids of the existing nodes concerned
    (the node to remove, rename or move, the nodes to merge; for ``add``, none or the node the
    new one goes next to); ``parent`` is the id of the new parent for ``add`` and ``move``
    (None: the top level); ``title`` and ``description`` give the new or renamed node.
    """

    op: str
    targets: tuple[str, ...] = ()
    parent: str | None = None
    title: str = ""
    description: str = ""
    rationale: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "targets": list(self.targets),
            "parent": self.parent,
            "title": self.title,
            "description": self.description,
            "rationale": self.rationale,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Suggestion:
        return cls(
            op=data["op"],
            targets=tuple(data.get("targets") or ()),
            parent=data.get("parent"),
            title=data.get("title") or "",
            description=data.get("description") or "",
            rationale=data.get("rationale") or "",
        )


@dataclass(frozen=True)
class Digest:
    """One paper read against the outline. ``dropped_quotes`` counts evidence not found in it.

    ``suggestions`` are the paper's proposals for the outline (refinement's local features);
    ``chunks`` is how many pieces the paper was read in (1 unless it exceeded the context and
    went through map/collapse/reduce).
    """

    paper_key: str
    nodes: tuple[NodeDigest, ...] = ()
    dropped_quotes: int = 0
    suggestions: tuple[Suggestion, ...] = ()
    chunks: int = 1

    def node_ids(self) -> set[str]:
        return {n.node_id for n in self.nodes}

    def to_json(self) -> dict[str, Any]:
        return {
            "paper_key": self.paper_key,
            "dropped_quotes": self.dropped_quotes,
            "chunks": self.chunks,
            "nodes": [
                {
                    "node_id": n.node_id,
                    "summary": n.summary,
                    "confidence": n.confidence,
                    "evidence": [{"quote": e.quote, "sentence": e.sentence} for e in n.evidence],
                }
                for n in self.nodes
            ],
            "suggestions": [s.to_json() for s in self.suggestions],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Digest:
        return cls(
            paper_key=data["paper_key"],
            dropped_quotes=data.get("dropped_quotes", 0),
            chunks=data.get("chunks", 1),
            nodes=tuple(
                NodeDigest(
                    node_id=n["node_id"],
                    summary=n["summary"],
                    confidence=n.get("confidence", 3),
                    evidence=tuple(Evidence(e["quote"], e["sentence"]) for e in n["evidence"]),
                )
                for n in data.get("nodes") or ()
            ),
            suggestions=tuple(Suggestion.from_json(s) for s in data.get("suggestions") or ()),
        )


@dataclass(frozen=True)
class Section:
    """The written text of one part of the survey, citing papers as ``[@key]``.

    ``checks`` counts what the citation check did to it (see stages/verify.py
    ``CheckCounts``): claims checked, found unsupported, rewritten, citations dropped.
    """

    node_id: str
    text: str
    removed_citations: tuple[str, ...] = field(default=())
    checks: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "text": self.text,
            "removed_citations": list(self.removed_citations),
            "checks": dict(self.checks),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        checks = data.get("checks") or {}
        if not isinstance(checks, dict) or not all(isinstance(v, int) for v in checks.values()):
            raise ValueError("checks must map names to counts")
        return cls(
            node_id=data["node_id"],
            text=data["text"],
            removed_citations=tuple(data.get("removed_citations") or ()),
            checks=dict(checks),
        )


__all__ = [
    "SUGGESTION_OPS",
    "Digest",
    "Evidence",
    "NodeDigest",
    "Outline",
    "OutlineNode",
    "Paper",
    "Section",
    "Suggestion",
    "replace",
]
