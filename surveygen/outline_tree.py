"""Outlines the model writes, and the tree analysis every outline-changing stage shares.

The skeleton (per-cluster fragments and their merge) and refinement (a suggestion applied to
an outline) both ask the model for a whole outline as JSON in the shape of
:class:`OutlineAnswer`: nested nodes, each with the id it had (``""`` for a new node), a
title, a description of what to extract from papers and how to analyse it, and children.
:func:`outline_from_answer` turns such an answer into an :class:`Outline` whose ids can be
trusted: an id is kept only if it names a node of the outline the model was shown and is not
used twice; every other node gets a fresh id from an :class:`IdAllocator`, which never hands
out an id that was used before in the run. Stable ids are what lets evidence follow a node
through renames and moves.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict

from surveygen.errors import LLMParseError
from surveygen.models import Outline, OutlineNode

__all__ = [
    "MAX_DEPTH",
    "ROOT",
    "IdAllocator",
    "NodeDraft",
    "OutlineAnswer",
    "outline_from_answer",
    "outline_graph",
    "outline_text",
    "outline_view",
    "parent_map",
]

# Deepest level kept from a model's outline (1 = top-level sections); deeper nodes are cut
# and their parent becomes a leaf.
MAX_DEPTH = 3
ROOT = "ROOT"
_NUMERIC_ID = re.compile(r"n(\d+)")


class NodeDraft(BaseModel):
    """One node of an outline as the model writes it (recursive)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    description: str
    children: list[NodeDraft]


class OutlineAnswer(BaseModel):
    """A whole outline as the model writes it."""

    model_config = ConfigDict(extra="forbid")
    title: str
    sections: list[NodeDraft]


class IdAllocator:
    """Hands out ``n<k>`` ids above every numeric id it has seen, so no id is ever reused."""

    def __init__(self, *outlines: Outline, ids: Iterable[str] = ()) -> None:
        self._next = 1
        self.observe(ids)
        for outline in outlines:
            self.observe(node.id for node, _ in outline.walk())

    def observe(self, ids: Iterable[str]) -> None:
        for node_id in ids:
            match = _NUMERIC_ID.fullmatch(node_id)
            if match:
                self._next = max(self._next, int(match.group(1)) + 1)

    def next(self) -> str:
        node_id = f"n{self._next}"
        self._next += 1
        return node_id

    @property
    def floor(self) -> int:
        """The number of the next id (saved with a run so a resumed run continues above it)."""
        return self._next


def outline_from_answer(
    answer: OutlineAnswer,
    *,
    allocator: IdAllocator,
    known_ids: Collection[str] = (),
    max_leaves: int,
    fallback_title: str,
    max_depth: int = MAX_DEPTH,
) -> Outline:
    """The model's outline as an Outline with trustworthy ids.

    Whitespace in titles and descriptions is collapsed to single spaces (a description keeps
    no line breaks, so it cannot turn into a heading or a comment of outline.md) and nodes with
    a blank title are dropped with their subtree. An id is kept when it is in ``known_ids`` and
    not already taken in this outline; other nodes get ``allocator.next()`` in reading order.
    Levels below ``max_depth`` are cut. At most ``max_leaves`` leaves are kept, in reading
    order; a parent whose children were all cut becomes a leaf itself if there is room, else it
    goes too. Raises LLMParseError when nothing is left.
    """
    known = set(known_ids)
    taken: set[str] = set()
    leaves = 0

    def build(draft: NodeDraft, depth: int) -> OutlineNode | None:
        nonlocal leaves
        title = " ".join(draft.title.split())
        if not title:
            return None
        node_id = draft.id.strip()
        if node_id in known and node_id not in taken:
            taken.add(node_id)
        else:
            node_id = allocator.next()
        children: list[OutlineNode] = []
        if depth < max_depth:
            for child in draft.children:
                if leaves >= max_leaves:
                    break
                built = build(child, depth + 1)
                if built is not None:
                    children.append(built)
        if not children:
            if leaves >= max_leaves:
                return None
            leaves += 1
        description = " ".join(draft.description.split())
        return OutlineNode(node_id, title, description, tuple(children))

    sections = []
    for draft in answer.sections:
        if leaves >= max_leaves:
            break
        built = build(draft, 1)
        if built is not None:
            sections.append(built)
    if not sections:
        raise LLMParseError(
            "the model proposed an outline with no sections", hint="try a stronger --model"
        )
    return Outline(title=" ".join(answer.title.split()) or fallback_title, sections=tuple(sections))


def outline_view(outline: Outline) -> list[dict[str, Any]]:
    """The outline as nested dicts ``{id, title, description, children}`` (for prompts)."""

    def view(node: OutlineNode) -> dict[str, Any]:
        return {
            "id": node.id,
            "title": node.title,
            "description": node.description,
            "children": [view(child) for child in node.children],
        }

    return [view(node) for node in outline.sections]


def outline_text(outline: Outline) -> str:
    """The outline as indented lines ``- [id] Title: description`` (for prompts)."""
    lines = [f"Title: {outline.title}"]
    for node, depth in outline.walk():
        description = f": {node.description}" if node.description else ""
        lines.append(f"{'  ' * (depth - 1)}- [{node.id}] {node.title}{description}")
    return "\n".join(lines)


def parent_map(outline: Outline) -> dict[str, str | None]:
    """Each node id's parent id (None for a top-level section)."""
    parents: dict[str, str | None] = {}
    for node, _ in outline.walk():
        for child in node.children:
            parents[child.id] = node.id
    for node in outline.sections:
        parents[node.id] = None
    return parents


def outline_graph(outline: Outline) -> nx.DiGraph:
    """The outline as a directed tree rooted at ``ROOT``; nodes carry title, description,
    depth and leaf. Every outline is a tree by construction; this is for analysis."""
    graph = nx.DiGraph()
    graph.add_node(ROOT, title=outline.title, description="", depth=0, leaf=False)
    for node, depth in outline.walk():
        graph.add_node(
            node.id, title=node.title, description=node.description, depth=depth, leaf=node.is_leaf
        )
    for node_id, parent in parent_map(outline).items():
        graph.add_edge(parent or ROOT, node_id)
    return graph
