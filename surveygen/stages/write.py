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

# A line that would start a block quote or list item, before a heading inside it.
_CONTAINER = r"(?:>[ \t]*|(?:[-*+]|\d{1,9}[.)])[ \t]+)*"
# [ \t], not \s: a heading must not swallow the blank line before it or the line after it.
_HEADING = re.compile(rf"^[ \t]*{_CONTAINER}#{{1,6}}(?:[ \t].*)?$\n?", re.M)
# The underline that turns the line above it into a (setext) heading: "Title\n=====".
_SETEXT = re.compile(rf"^[ \t]*{_CONTAINER}(?:=+|-+)[ \t]*$\n?", re.M)
# A whole answer wrapped in one code fence, whatever its label (some servers fence everything).
_WHOLE_FENCE = re.compile(r"\A\s*(`{3,}|~{3,})[^\n]*\n(.*?)\n\s*\1\s*\Z", re.S)
# Any other code fence line: an opening one (with its label) or a closing one.
_FENCE_LINE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[^\n]*$\n?", re.M)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def drop_fence_lines(text: str) -> str:
    """``text`` without its code fence lines (opening, with their label, and closing); what
    they enclosed stays, as plain text."""
    return _FENCE_LINE.sub("", text)


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

    A section's structure is the outline's, never the model's (nor that of a paper it was
    shown): ATX headings, also inside a quote or list item, and setext underlines go. Section
    prose never holds code or comments, so every other fence line and backtick goes too,
    keeping the text, and comments go whole: the citation guard does not look inside code or
    comments, so an invented key there would survive it, and a fence left open would swallow
    the rest of the survey.
    """
    fenced = _WHOLE_FENCE.match(text)
    if fenced:
        text = fenced.group(2)
    text = _COMMENT.sub("", drop_fence_lines(text)).replace("`", "")
    return _SETEXT.sub("", _HEADING.sub("", text)).strip()


def parent_titles(outline: Outline) -> dict[str, str]:
    parents: dict[str, str] = {}
    for node, _ in outline.walk():
        for child in node.children:
            parents[child.id] = node.title
    return parents
