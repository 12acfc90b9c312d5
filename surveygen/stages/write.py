"""Write: one call per leaf section, from the evidence the digests placed on it.

The model cites as ``[@key]``; the citation guard then keeps only keys of papers in the
library (an unknown key is removed and counted, never remapped to another paper). Leaves that
no paper has evidence for are pruned from the outline before writing, so no section is written
from nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from surveygen.models import Digest, NodeDigest, Outline, OutlineNode, Paper

STAGE = "write"

# [ \t], not \s: a heading must not swallow the blank line before it or the line after it.
_HEADING = re.compile(r"^[ \t]*#{1,6}(?:[ \t].*)?$\n?", re.M)
# A whole answer wrapped in one code fence, whatever its label (some servers fence everything).
_WHOLE_FENCE = re.compile(r"\A\s*(`{3,}|~{3,})[^\n]*\n(.*?)\n\s*\1\s*\Z", re.S)


@dataclass(frozen=True)
class SectionEvidence:
    paper: Paper
    digest: NodeDigest


def evidence_by_node(
    digests: Mapping[str, Digest], papers: Mapping[str, Paper]
) -> dict[str, list[SectionEvidence]]:
    """Evidence per node id, strongest first (confidence, then more quotes), stable on key."""
    found: dict[str, list[SectionEvidence]] = {}
    for key in sorted(digests):
        for node in digests[key].nodes:
            found.setdefault(node.node_id, []).append(SectionEvidence(papers[key], node))
    for items in found.values():
        items.sort(key=lambda e: (-e.digest.confidence, -len(e.digest.evidence), e.paper.key))
    return found


def prune(outline: Outline, has_evidence: Collection[str]) -> tuple[Outline, list[str]]:
    """Drop leaves without evidence, and parents left with no children; return what went."""
    removed: list[str] = []

    def keep(node: OutlineNode) -> OutlineNode | None:
        if node.is_leaf:
            if node.id in has_evidence:
                return node
            removed.append(node.id)
            return None
        children = tuple(c for c in (keep(child) for child in node.children) if c is not None)
        if not children:
            removed.append(node.id)
            return None
        return OutlineNode(node.id, node.title, node.description, children)

    sections = tuple(s for s in (keep(node) for node in outline.sections) if s is not None)
    return Outline(outline.title, sections), removed


def clean_section_text(text: str) -> str:
    """Unwrap a fenced answer and remove headings the model added despite being asked not to.

    Section prose never holds code, and text left inside a fence would hide its citations
    from the guard.
    """
    fenced = _WHOLE_FENCE.match(text)
    if fenced:
        text = fenced.group(2)
    return _HEADING.sub("", text).strip()


def parent_titles(outline: Outline) -> dict[str, str]:
    parents: dict[str, str] = {}
    for node, _ in outline.walk():
        for child in node.children:
            parents[child.id] = node.title
    return parents
