"""Comparison tables, where the evidence supports them.

After the sections are written, a few sections whose papers can be compared along a few aspects
(approach, data, metric, result...) get a table: one call shows the model the section's papers
with their summaries and verified quotes, and the model either declines (the papers are not
comparable) or fills a table, one row per paper. Nothing the model writes is taken on trust:
rows must belong to papers it was shown (an unknown key is dropped, never remapped), every cell
is checked against its own paper's evidence by ``supported`` and blanked when it fails, and the
table is kept only if at least ``MIN_ROWS`` rows and two columns survive.

Which sections (``table_candidates``): the most specific ones whose evidence, their own plus
their descendants', spans at least ``MIN_PAPERS`` distinct papers. A leaf's papers answer one
question, so they tend to report the same aspects; a parent mixes sub-topics whose papers
report different things, so it is offered only when none of its descendants has enough papers
on its own. Never a section and its ancestor, so no paper is tabulated twice for one subtree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from surveygen.aio import settle
from surveygen.citations import guard_citations
from surveygen.document import Table, TableRow
from surveygen.errors import LLMError
from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import render_prompt
from surveygen.models import Evidence, NodeDigest, Outline, OutlineNode
from surveygen.stages.write import SectionEvidence

STAGE = "write"
MIN_PAPERS = 4  # distinct papers a section's evidence must span to be offered a table
MIN_ROWS = 3  # rows that must survive verification
MAX_COLUMNS = 4
MIN_COLUMNS = 2
MAX_CELL_WORDS = 12
# Also a cap in characters, for languages written without spaces.
MAX_CELL_CHARS = 100
MAX_HEADER_WORDS, MAX_HEADER_CHARS = 5, 40
MAX_CAPTION_WORDS, MAX_CAPTION_CHARS = 40, 300
MAX_QUOTES_PER_PAPER = 6
MAX_REASON_CHARS = 200

# What models write for "not reported" although they are asked for "".
_BLANK_CELLS = frozenset(
    {"-", "–", "—", "?", "n/a", "na", "n.a.", "not reported", "not stated", "not given", "unknown"}
)
_WRAPPING_QUOTES = (('"', '"'), ("“", "”"), ("'", "'"), ("‘", "’"), ("`", "`"))


class RowDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    cells: list[str]


class TableDraft(BaseModel):
    """The model's answer. Sizes are asked for in the prompt and enforced afterwards rather
    than in the schema, so an answer with one column too many is trimmed, not re-requested."""

    model_config = ConfigDict(extra="forbid")
    rationale: str
    useful: bool
    caption: str
    columns: list[str]
    rows: list[RowDraft]


@dataclass(frozen=True)
class TableResult:
    node_id: str
    table: Table | None
    reason: str  # why there is no table; "" when it is kept
    cells_blanked: int
    rows_dropped: int
    failed: bool = False  # the call failed: no verdict on the papers, try again on --resume


# --------------------------------------------------------------------------- candidates


def _papers_per_node(
    outline: Outline, evidence: Mapping[str, Sequence[SectionEvidence]]
) -> dict[str, frozenset[str]]:
    """Distinct paper keys with evidence on each node or any of its descendants."""
    found: dict[str, frozenset[str]] = {}

    def visit(node: OutlineNode) -> frozenset[str]:
        keys = {item.paper.key for item in evidence.get(node.id, ())}
        for child in node.children:
            keys |= visit(child)
        found[node.id] = frozenset(keys)
        return found[node.id]

    for section in outline.sections:
        visit(section)
    return found


def table_candidates(
    outline: Outline, evidence: Mapping[str, Sequence[SectionEvidence]], limit: int
) -> list[str]:
    """Node ids to try for a table, best first, at most ``limit``.

    Eligible: sections whose own and descendants' evidence spans at least MIN_PAPERS distinct
    papers. Offered: the eligible ones with no eligible descendant (the most specific level
    with enough papers; see the module docstring). Ranked by the number of those papers with
    at least one quote (cells are checked against evidence, so quoted papers are the ones that
    can fill them), then by distinct papers, then in reading order.
    """
    if limit <= 0:
        return []
    papers = _papers_per_node(outline, evidence)
    quoted: dict[str, set[str]] = {}
    for node_id, items in evidence.items():
        quoted[node_id] = {item.paper.key for item in items if item.digest.evidence}

    def eligible(node: OutlineNode) -> bool:
        return len(papers.get(node.id, ())) >= MIN_PAPERS

    def has_eligible_descendant(node: OutlineNode) -> bool:
        return any(eligible(c) or has_eligible_descendant(c) for c in node.children)

    def quoted_under(node: OutlineNode) -> set[str]:
        keys = set(quoted.get(node.id, ()))
        for child in node.children:
            keys |= quoted_under(child)
        return keys

    ranked: list[tuple[int, int, int, str]] = []
    for order, (node, _depth) in enumerate(outline.walk()):
        if eligible(node) and not has_eligible_descendant(node):
            ranked.append((-len(quoted_under(node)), -len(papers[node.id]), order, node.id))
    ranked.sort()
    return [node_id for *_, node_id in ranked[:limit]]


def merge_by_paper(node_id: str, items: Sequence[SectionEvidence]) -> list[SectionEvidence]:
    """One entry per paper, strongest first (as ``evidence_by_node`` orders them).

    A paper with evidence on several nodes (a parent's table gathers its children's) gets one
    digest for ``node_id``: its summaries joined, its distinct quotes, its best confidence.
    """
    groups: dict[str, list[SectionEvidence]] = {}
    for item in items:
        groups.setdefault(item.paper.key, []).append(item)
    merged: list[SectionEvidence] = []
    for group in groups.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        group = sorted(group, key=lambda e: (-e.digest.confidence, -len(e.digest.evidence)))
        summaries = list(dict.fromkeys(e.digest.summary.strip() for e in group))
        quotes: dict[tuple[int, str], Evidence] = {}
        for item in group:
            for quote in item.digest.evidence:
                quotes.setdefault((quote.sentence, quote.quote), quote)
        digest = NodeDigest(
            node_id=node_id,
            summary=" ".join(s for s in summaries if s),
            evidence=tuple(quotes.values()),
            confidence=max(e.digest.confidence for e in group),
        )
        merged.append(SectionEvidence(group[0].paper, digest))
    merged.sort(key=lambda e: (-e.digest.confidence, -len(e.digest.evidence), e.paper.key))
    return merged


def subtree_evidence(
    node: OutlineNode, evidence: Mapping[str, Sequence[SectionEvidence]]
) -> list[SectionEvidence]:
    """The evidence a table for ``node`` draws on: its own and its descendants', one entry per
    paper, strongest first. For a leaf this is simply its own evidence."""
    items: list[SectionEvidence] = []

    def visit(current: OutlineNode) -> None:
        items.extend(evidence.get(current.id, ()))
        for child in current.children:
            visit(child)

    visit(node)
    return merge_by_paper(node.id, items)


# --------------------------------------------------------------------------- prompt


def table_context(
    *,
    survey_title: str,
    node: OutlineNode,
    evidence: Sequence[SectionEvidence],
    language: str,
) -> dict[str, Any]:
    """The ``write_table`` prompt's context for the papers in ``evidence``, in that order."""
    return {
        "language": language,
        "survey_title": survey_title,
        "section": {"title": node.title, "description": node.description},
        "papers": [
            {
                "key": e.paper.key,
                "title": e.paper.title,
                "year": e.paper.year,
                "summary": e.digest.summary,
                "quotes": [f'- "{q.quote}"' for q in e.digest.evidence[:MAX_QUOTES_PER_PAPER]],
            }
            for e in evidence
        ],
        "keys": [e.paper.key for e in evidence],
        "min_rows": MIN_ROWS,
        "max_columns": MAX_COLUMNS,
        "max_words": MAX_CELL_WORDS,
    }


# --------------------------------------------------------------------------- verification


def _one_line(text: str) -> str:
    return " ".join(guard_citations(text, ()).text.split())


def _cap(text: str, max_words: int, max_chars: int) -> str:
    """``text`` cut to ``max_words`` words and ``max_chars`` characters, marked with "…"."""
    words = text.split()
    cut = len(words) > max_words
    if cut:
        text = " ".join(words[:max_words])
    if len(text) > max_chars:
        cut = True
        head = text[: max_chars - 1]
        # Prefer a word boundary, unless the text has none near the end (no-space scripts).
        space = head.rfind(" ")
        text = head[:space] if space > max_chars // 2 else head
    if cut:
        text = text.rstrip(" ,;:.-–—") + "…"
    return text


def clean_cell(text: str) -> str:
    """One line, no citations, no wrapping quotes, placeholders for "not reported" as "",
    at most MAX_CELL_WORDS words."""
    text = _one_line(text).rstrip(" ,;")
    for opening, closing in _WRAPPING_QUOTES:
        if len(text) >= 2 and text.startswith(opening) and text.endswith(closing):
            text = text[len(opening) : -len(closing)].strip()
    if text.casefold() in _BLANK_CELLS:
        return ""
    return _cap(text, MAX_CELL_WORDS, MAX_CELL_CHARS)


def _brief(text: str) -> str:
    return _cap(_one_line(text), 10_000, MAX_REASON_CHARS)


def verify_table(
    draft: TableDraft,
    *,
    node_id: str,
    offered: Collection[str],
    supported: Callable[[str, str], bool],
    default_caption: str = "",
) -> TableResult:
    """Keep of the model's table what its papers' evidence supports (pure).

    Rows of keys not in ``offered`` and repeated keys are dropped; cells are cleaned and those
    ``supported(cell, key)`` rejects are blanked; rows left blank and columns blank in every
    row are dropped. The table is kept only with at least MIN_ROWS rows and MIN_COLUMNS columns.
    """
    if not draft.useful:
        reason = "the model found the papers not comparable"
        rationale = _brief(draft.rationale)
        return TableResult(node_id, None, f"{reason}: {rationale}" if rationale else reason, 0, 0)

    # Columns: named, distinct, at most MAX_COLUMNS; ``picked`` maps them to the draft's cells.
    picked: list[int] = []
    names: list[str] = []
    for index, column in enumerate(draft.columns):
        name = _cap(_one_line(column), MAX_HEADER_WORDS, MAX_HEADER_CHARS)
        if name and name.casefold() not in {n.casefold() for n in names}:
            picked.append(index)
            names.append(name)
    picked, names = picked[:MAX_COLUMNS], names[:MAX_COLUMNS]
    if len(names) < MIN_COLUMNS:
        reason = f"the model proposed {len(names)} usable column(s), at least {MIN_COLUMNS} needed"
        return TableResult(node_id, None, reason, 0, 0)

    offered = set(offered)
    seen: set[str] = set()
    rows: list[tuple[str, list[str]]] = []
    blanked = dropped = 0
    for row in draft.rows:
        # "[@key]" and "@key" are the citation syntax around a key, not another key.
        key = row.key.strip().removeprefix("[").removesuffix("]").strip().removeprefix("@")
        if key not in offered or key in seen:
            dropped += 1
            continue
        seen.add(key)
        cells = []
        for index in picked:
            cell = clean_cell(row.cells[index]) if index < len(row.cells) else ""
            if cell and not supported(cell, key):
                blanked += 1
                cell = ""
            cells.append(cell)
        if any(cells):
            rows.append((key, cells))
        else:
            dropped += 1

    filled = [i for i in range(len(names)) if any(cells[i] for _, cells in rows)]
    if len(rows) < MIN_ROWS:
        reason = f"{len(rows)} row(s) survived verification, at least {MIN_ROWS} needed"
        return TableResult(node_id, None, reason, blanked, dropped)
    if len(filled) < MIN_COLUMNS:
        reason = f"{len(filled)} column(s) kept a supported cell, at least {MIN_COLUMNS} needed"
        return TableResult(node_id, None, reason, blanked, dropped)

    caption = _cap(_one_line(draft.caption), MAX_CAPTION_WORDS, MAX_CAPTION_CHARS)
    table = Table(
        caption=caption or default_caption,
        columns=tuple(names[i] for i in filled),
        rows=tuple(TableRow(key, tuple(cells[i] for i in filled)) for key, cells in rows),
    )
    return TableResult(node_id, table, "", blanked, dropped)


# --------------------------------------------------------------------------- the call


async def make_table(
    llm: LLMClient,
    *,
    survey_title: str,
    node: OutlineNode,
    evidence: Sequence[SectionEvidence],
    language: str,
    supported: Callable[[str, str], bool],
    max_papers: int = 12,
    task: str | None = None,
    needs: Sequence[str] = (),
) -> TableResult:
    """One comparison table for ``node`` from ``evidence`` (strongest first), or the reason
    there is none. A failed call for this table (unparseable answer, retries exhausted) is a
    reason too; only fatal errors (budget, refused key) propagate. ``task`` and ``needs``
    trace the call (surveygen.llm.client.Trace)."""
    papers = merge_by_paper(node.id, evidence)[: max(max_papers, 0)]
    if len(papers) < MIN_ROWS:
        reason = f"{len(papers)} paper(s) with evidence, at least {MIN_ROWS} needed"
        return TableResult(node.id, None, reason, 0, 0)
    prompt = render_prompt(
        "write_table",
        **table_context(survey_title=survey_title, node=node, evidence=papers, language=language),
    )
    draft = await settle(
        lambda: llm.structured(
            prompt, TableDraft, stage=STAGE, item=node.id, task=task, needs=needs
        )
    )
    if isinstance(draft, LLMError):
        reason = f"the table call failed: {_brief(draft.message)}"
        return TableResult(node.id, None, reason, 0, 0, failed=True)
    return verify_table(
        draft,
        node_id=node.id,
        offered=[e.paper.key for e in papers],
        supported=supported,
        default_caption=node.title,
    )


__all__ = [
    "MAX_COLUMNS",
    "MIN_PAPERS",
    "MIN_ROWS",
    "RowDraft",
    "TableDraft",
    "TableResult",
    "clean_cell",
    "make_table",
    "merge_by_paper",
    "subtree_evidence",
    "table_candidates",
    "table_context",
    "verify_table",
]
