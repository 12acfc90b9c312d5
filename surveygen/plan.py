"""``--dry-run``: upper bounds on the LLM calls of each stage, without a call or a network
request. The user's library is read; arXiv is not searched, so with search on the paper count
is an upper bound (``--max-papers``).

A paper's digest is planned the way :func:`surveygen.stages.digest.digest_paper` will make it:
its numbered sentences, the single-call test and the chunks of a long paper, measured against
the outline it will be read with. Before a run there is no outline yet (unless the user gave
one), so the plan uses :func:`worst_case_outline`. A paper whose text a dry run cannot read is
counted as fitting the context (one call): papers found by search, ``--arxiv-ids`` entries and
papers of the user's whose full text is downloaded or extracted from an attached PDF during the
run. ``unread_texts`` in the report counts the user's papers of that kind.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from surveygen.config import Settings
from surveygen.models import Outline, OutlineNode, Paper

if TYPE_CHECKING:
    from surveygen.library.records import Candidate

# The worst case a dry run plans digests against. Outlines are written by the model, so their
# size is an assumption, chosen generously: titles of 15 words, descriptions of 80 words (the
# prompts ask for 1-3 sentences; merging sections joins their descriptions), the survey's title
# of 25 words, every word of 7 letters (technical English averages about 6) and ids of 5
# characters (n1234). The planned chunk counts hold for any real outline within these sizes.
WORST_TITLE_WORDS = 15
WORST_DESCRIPTION_WORDS = 80
WORST_OUTLINE_TITLE_WORDS = 25
_WORD = "abcdefg"
# Citation keys are made at gather time (kept from the user or an earlier run, or made from
# author, year and title); the plan gives each paper a key at least this long.
WORST_KEY_CHARS = 64


def model_stage(stage: str) -> str:
    """The configured stage whose model a pipeline step uses (map re-digests papers)."""
    return "digest" if stage == "map" else stage


def _words(n: int) -> str:
    return " ".join([_WORD] * n)


def worst_case_outline(max_sections: int) -> Outline:
    """The largest outline a run with ``max_sections`` leaves is assumed to read papers
    against: ``max_sections`` leaves, all at the deepest level an outline keeps (3,
    ``surveygen.outline_tree.MAX_DEPTH``), under ``max_sections - 1`` parents (the most an
    outline can have whose parents hold at least two children each), every node with a title
    and a description of the sizes above. Only its size matters: the shape is whatever puts
    that many nodes at those depths."""
    if max_sections < 1:
        raise ValueError("max_sections must be at least 1")
    ids = itertools.count(1000)

    def node(*children: OutlineNode) -> OutlineNode:
        return OutlineNode(
            f"n{next(ids)}",
            _words(WORST_TITLE_WORDS),
            _words(WORST_DESCRIPTION_WORDS),
            children,
        )

    title = _words(WORST_OUTLINE_TITLE_WORDS)
    if max_sections == 1:
        return Outline(title, (node(),))
    if max_sections == 2:
        return Outline(title, (node(node(), node()),))
    # a top parent holding max_sections - 2 parents, which hold the leaves at depth 3
    middles = [node(node(), node(), node())]
    middles += [node(node()) for _ in range(max_sections - 3)]
    return Outline(title, (node(*middles),))


def digest_calls(
    paper: Paper,
    topic: str,
    outline: Outline,
    *,
    context_tokens: int,
    output_tokens: int,
) -> int:
    """Upper bound on the calls :func:`~surveygen.stages.digest.digest_paper` makes to digest
    ``paper`` against an outline no larger than ``outline`` (its prompts rendered no longer).

    The same steps as digest_paper: the paper's sentences, numbered; 1 call when the
    single-call digest prompt fits; else the sentences are packed with
    :func:`~surveygen.mapreduce.chunk_lines` into the room the map prompt leaves
    (:func:`~surveygen.mapreduce.chunk_room`), and map/collapse/reduce over ``c`` chunks costs
    at most ``2c`` calls: ``c`` maps, at most ``c - 1`` collapses (each merges two or more
    results into one) and 1 reduce. The engine splits a chunk only when its map prompt exceeds
    the limit, which chunk_room's room rules out (the part number's extra digits are within
    the rounding slack of the per-line counts), so maps = chunks.

    Suggestions are assumed asked for (a longer prompt). The count is monotone in the room: a
    smaller outline, key or title leaves more room and never makes more chunks. A sentence
    longer than the room, which chunk_lines truncates, is counted as filling a chunk of its
    own, since at a larger room it may be cut longer.
    """
    from surveygen.mapreduce import (
        MIN_INPUT_TOKENS,
        chunk_lines,
        chunk_room,
        input_budget,
        prompt_tokens,
        schema_tokens,
    )
    from surveygen.stages.digest import (
        DigestDraft,
        digest_prompt,
        long_paper_protocol,
        number_sentences,
        numbered_lines,
        paper_sentences,
    )
    from surveygen.text import approx_tokens

    sentences = paper_sentences(paper)
    budget = input_budget(context_tokens, output_tokens) - schema_tokens(DigestDraft)
    prompt = digest_prompt(topic, outline, paper, number_sentences(sentences), suggest=True)
    if prompt_tokens(prompt) <= budget:
        return 1
    protocol = long_paper_protocol(topic, outline, paper, suggest=True)
    try:
        room = chunk_room(protocol, context_tokens=context_tokens, output_tokens=output_tokens)
    except ValueError:
        # A run whose outline leaves less room than this fails before any call; one that
        # proceeds has at least this much.
        room = MIN_INPUT_TOKENS // 4
    full = "x" * (4 * (room - 1))  # costs exactly ``room`` in chunk_lines (+1 per line)
    lines = [
        line if approx_tokens(line) + 1 <= room else full for line in numbered_lines(sentences)
    ]
    return 2 * len(chunk_lines(lines, room))


def planning_paper(candidate: Candidate, *, full_text: bool) -> tuple[Paper, bool]:
    """The paper a candidate will be digested as, sized for a bound, and whether its text is
    known now. The key and title are the longest they may become (see WORST_KEY_CHARS and
    MAX_TITLE_CHARS); the text is the candidate's own when full texts are used, else only the
    abstract (as gather does). A full text gather downloads, or extracts from an attached PDF,
    is not known before the run: the abstract stands in for it and the text counts as
    unknown."""
    from surveygen.library.keys import make_key
    from surveygen.library.records import MAX_TITLE_CHARS

    made = make_key(candidate.authors, candidate.year, candidate.title, set())
    key_chars = max(WORST_KEY_CHARS, len(candidate.key or ""), len(made) + 4)
    text = candidate.text if full_text else ""
    fetched = (
        full_text
        and not text
        and bool(candidate.pdf_path or candidate.pdf_url or candidate.arxiv_id)
    )
    paper = Paper(
        key="k" * key_chars,
        title=candidate.title.ljust(MAX_TITLE_CHARS, "x"),
        year=candidate.year or 2000,
        abstract=candidate.abstract,
        text=text,
    )
    return paper, not fetched


def write_plan(outline: Outline, settings: Settings, papers: int) -> dict[str, int]:
    """The write stage's calls by kind (see stages/compose.py), at most; with --verify llm
    the entailment checks are an estimate from the word budget (a cited sentence of about
    20 words citing up to 3 papers, checked again after its rewrite)."""
    from surveygen.lengths import default_length
    from surveygen.stages.compose import ENGLISH

    leaves = len(outline.leaves())
    parents = sum(1 for node, _ in outline.walk() if not node.is_leaf)
    plan = {
        "sections": leaves,
        "rewrites": leaves + parents + 2,
        "coverage": leaves,
        "tables": min(settings.max_tables, leaves + parents),
        "syntheses": parents,
        "introduction, conclusion, abstract": 3,
        "headings": 0 if settings.language.strip().lower() in ENGLISH else 1,
    }
    from surveygen.stages.compose import verify_mode

    if verify_mode(settings.language, settings.verify)[0] == "llm":
        words = settings.length or default_length(papers)
        plan["entailment checks (estimate)"] = -(-words // 20) * 3 * 2
    return plan


def write_calls(outline: Outline, settings: Settings, papers: int) -> int:
    return sum(write_plan(outline, settings, papers).values())


def plan_run(
    topic: str,
    settings: Settings,
    options: Any,
    user_outline: Outline | None,
    refine_options: Any,
    *,
    warn: Callable[[str], None],
) -> dict[str, Any]:
    """The dry-run report: papers, and the most calls per stage and per refinement layer.

    Digests of the user's papers are bounded against the user's outline, else against
    :func:`worst_case_outline`. Papers found by search (and ``--arxiv-ids`` entries, and the
    user's papers whose full text is fetched during the run: ``unread_texts``) cannot be read
    by a dry run and are counted as fitting the context, one digest call each.
    """
    from surveygen.library.local import read_arxiv_ids
    from surveygen.library.rank import screen_calls
    from surveygen.stages.gather import load_local
    from surveygen.stages.refine import plan_total, refine_plan
    from surveygen.stages.skeleton import skeleton_calls

    local = load_local(options)
    ids: set[str] = set()
    for path in options.arxiv_ids:
        found, result = read_arxiv_ids(path, max_bytes=options.max_file_bytes)
        ids.update(found)
        local.extend(result)
    for warning in local.warnings:
        warn(warning)
    user = len(local.candidates) + len(ids)  # before de-duplication: an upper bound
    searching = options.search
    papers = max(user, options.max_papers) if searching else user
    gather_calls = 0
    if searching:
        gather_calls = 1  # the query proposals
        if options.screen:  # the user's papers and twice the free places, in batches
            gather_calls += screen_calls(user + 2 * max(0, options.max_papers - user))
    outline = (
        user_outline if user_outline is not None else worst_case_outline(settings.max_sections)
    )
    per_paper: list[int] = []
    unread = len(ids)
    for candidate in local.candidates:
        paper, known = planning_paper(candidate, full_text=options.full_text)
        unread += not known
        per_paper.append(
            digest_calls(
                paper,
                topic,
                outline,
                context_tokens=settings.context_tokens,
                output_tokens=settings.max_output_tokens,
            )
        )
    per_paper += [1] * (papers - len(per_paper))
    digest_total = sum(sorted(per_paper, reverse=True)[:papers])
    refine_layers: list[dict[str, int]] = []
    if user_outline is None:
        refine_layers = refine_plan(papers, refine_options)
        bounds = {
            "gather": gather_calls,
            "skeleton": skeleton_calls(papers),
            "digest": digest_total,
            "refine": plan_total(refine_layers),
            # every paper digested again, at worst, for the refined outline
            "map": digest_total,
            "write": write_calls(outline, settings, papers),
        }
    else:
        bounds = {
            "gather": gather_calls,
            "skeleton": 0,
            "digest": 0,
            "refine": 0,
            "map": digest_total,
            "write": write_calls(user_outline, settings, papers),
        }
    report = {
        "topic": topic,
        "papers": papers,
        "write_calls": write_plan(outline, settings, papers),
        "user_papers": user,
        "arxiv_search": searching,
        "unread_texts": unread,
        "outline": "user" if user_outline is not None else "skeleton + refinement",
        "planned_calls_upper_bound": bounds,
        "refine_layers": refine_layers,
        "total_upper_bound": sum(bounds.values()),
        "models": {stage: settings.model_for(model_stage(stage)) for stage in bounds},
    }
    return report
