"""``--dry-run``: upper bounds on the LLM calls of each stage, without a call or a network
request. The user's library is read; arXiv is not searched, so with search on the paper count
is an upper bound (``--max-papers``) and search results are assumed to fit the context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surveygen.config import Settings
from surveygen.models import Outline


def model_stage(stage: str) -> str:
    """The configured stage whose model a pipeline step uses (map re-digests papers)."""
    return "digest" if stage == "map" else stage


def digest_calls(tokens: int, context_tokens: int, output_tokens: int) -> int:
    """Upper bound on the calls digesting a paper of about ``tokens`` takes: 1 when it fits
    the context, else map/collapse/reduce over its chunks (c maps, at most c - 1 collapses,
    1 reduce)."""
    from surveygen.mapreduce import input_budget

    budget = input_budget(context_tokens, output_tokens)
    # Instructions and the outline take room too; a generous share, as this is a bound.
    room = max(200, budget - 3_000)
    if tokens + 3_000 <= budget:
        return 1
    chunks = -(-tokens // room)
    return 2 * chunks


def plan_run(
    topic: str,
    settings: Settings,
    options: Any,
    user_outline: Outline | None,
    refine_options: Any,
    *,
    warn: Callable[[str], None],
) -> dict[str, Any]:
    """The dry-run report: papers, and the most calls per stage and per refinement layer."""
    from surveygen.library.local import read_arxiv_ids
    from surveygen.library.rank import screen_calls
    from surveygen.stages.gather import load_local
    from surveygen.stages.refine import refine_plan
    from surveygen.stages.skeleton import skeleton_calls
    from surveygen.text import approx_tokens

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
    per_paper = [
        digest_calls(
            approx_tokens(c.text or c.abstract or c.title),
            settings.context_tokens,
            settings.max_output_tokens,
        )
        for c in local.candidates
    ]
    per_paper += [1] * (papers - len(per_paper))
    digest_total = sum(sorted(per_paper, reverse=True)[:papers])
    refine_layers: list[dict[str, int]] = []
    if user_outline is None:
        refine_layers = refine_plan(papers, refine_options)
        bounds = {
            "gather": gather_calls,
            "skeleton": skeleton_calls(papers),
            "digest": digest_total,
            "refine": sum(
                layer.get("merge", 0) + layer.get("apply", 0) + layer.get("judge", 0)
                for layer in refine_layers
            ),
            # every paper digested again, at worst, for the refined outline
            "map": digest_total,
            "write": settings.max_sections,
        }
    else:
        bounds = {
            "gather": gather_calls,
            "skeleton": 0,
            "digest": 0,
            "refine": 0,
            "map": digest_total,
            "write": len(user_outline.leaves()),
        }
    report = {
        "topic": topic,
        "papers": papers,
        "user_papers": user,
        "arxiv_search": searching,
        "outline": "user" if user_outline is not None else "skeleton + refinement",
        "planned_calls_upper_bound": bounds,
        "refine_layers": refine_layers,
        "total_upper_bound": sum(bounds.values()),
        "models": {stage: settings.model_for(model_stage(stage)) for stage in bounds},
    }
    return report
