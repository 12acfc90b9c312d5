"""Skeleton: the first outline of the survey, proposed by the LLM from titles and abstracts.

The library is clustered by subject (TF-IDF over title and abstract, scikit-learn), the model
proposes one outline fragment per cluster from that cluster's papers (concurrently), and one
more call merges the fragments into a single outline. Small prompts about one subject each let
the model look at every paper, where one prompt for a large library would reduce each abstract
to a line; the merge then removes the overlap between groups. A library without clear groups
is one cluster: one call asks for the whole outline and nothing is merged.

A fragment that fails is left out with a warning (the others still cover most of the library);
a merge that fails falls back to the fragments one after another. Node ids come from an
:class:`IdAllocator`, in reading order (``n1``, ``n2``, ... in a fresh run), never from the model.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from surveygen.aio import gather_or_cancel
from surveygen.errors import LLMError, LLMRejectedError
from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import render_prompt
from surveygen.models import Outline, OutlineNode, Paper
from surveygen.outline_tree import (
    MAX_DEPTH,
    IdAllocator,
    NodeDraft,
    OutlineAnswer,
    outline_from_answer,
)
from surveygen.text import approx_tokens, truncate_tokens

__all__ = [
    "MAX_CLUSTERS",
    "MIN_CLUSTER_SIZE",
    "MIN_SILHOUETTE",
    "Fragment",
    "build_skeleton",
    "cluster_papers",
    "cluster_terms",
    "concatenate_fragments",
    "fragment_leaves",
    "fragment_text",
    "leaf_shares",
    "paper_briefs",
    "skeleton_brief_tokens",
    "skeleton_calls",
]

STAGE = "skeleton"
# Room for titles and abstracts in one skeleton prompt; abstracts are shortened evenly. A model
# with a smaller context gets less (see skeleton_brief_tokens).
PROMPT_TOKEN_BUDGET = 24_000
# What a skeleton prompt holds besides the papers: instructions, topic, schema.
PROMPT_OVERHEAD_TOKENS = 1_500
# The least of an abstract kept, in tokens.
MIN_BRIEF_TOKENS = 20
MAX_CLUSTERS = 8
# A group smaller than this is too thin to outline on its own: its papers join the nearest
# group. It also makes every library under 2 * MIN_CLUSTER_SIZE papers one cluster.
MIN_CLUSTER_SIZE = 5
# Cosine silhouette a split must reach. TF-IDF vectors of abstracts are far apart even within
# a subject, so silhouettes are small: groups on different subjects score about 0.08-0.12,
# arbitrary splits of one subject 0.03-0.05.
MIN_SILHOUETTE = 0.06
# Up to this many papers fit one prompt with useful abstracts (about 400 tokens each), so a
# library this small is split only for a clear grouping; a larger one is split anyway.
ONE_PROMPT_PAPERS = 60
# Terms that name what a group is about, shown in the fragment and merge prompts.
GROUP_TERMS = 6
# A fragment may propose a little more than its group's share of the leaves, so the merge has
# material to choose from.
FRAGMENT_LEAF_FACTOR = 1.5
MIN_FRAGMENT_LEAVES = 3
# Up to this many matrix cells (8 bytes each) k-means runs on a dense copy.
DENSE_KMEANS_CELLS = 4_000_000
# k-means runs from this many k-means++ starts and keeps the best: many while that is cheap
# (small libraries, where a poor start can split one subject), fewer above KMEANS_MANY_PAPERS
# papers, where each start costs more and groups are clearer (scikit-learn's own default for
# k-means++ is one start).
KMEANS_RESTARTS = 10
KMEANS_FEW_RESTARTS = 3
KMEANS_MANY_PAPERS = 200

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Prompt material


def paper_briefs(papers: Sequence[Paper], budget: int = PROMPT_TOKEN_BUDGET) -> list[dict]:
    """Titles and abstracts, abstracts shortened so that the whole list fits ``budget`` tokens."""
    per_paper = max(MIN_BRIEF_TOKENS, budget // max(1, len(papers)) - 20)
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


def fragment_text(outline: Outline) -> str:
    """An outline as indented ``- Title: description`` lines, without ids (for the merge
    prompt: the merged outline gets fresh ids, so showing the fragments' would only mislead)."""
    lines = [f"Title: {outline.title}"]
    for node, depth in outline.walk():
        description = f": {node.description}" if node.description else ""
        lines.append(f"{'  ' * (depth - 1)}- {node.title}{description}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Fragment:
    """The outline the model proposed for one group of papers."""

    group: int  # 1-based, in cluster order (largest group first)
    papers: int
    terms: tuple[str, ...]
    outline: Outline

    def view(self) -> dict[str, Any]:
        """The fragment as the merge prompt reads it."""
        return {
            "papers": self.papers,
            "terms": list(self.terms),
            "outline": fragment_text(self.outline),
        }


# --------------------------------------------------------------------------------------------
# Clustering


def _tfidf(papers: Sequence[Paper]) -> tuple[Any, np.ndarray] | None:
    """L2-normalised TF-IDF rows of title (twice: it says most in fewest words) and abstract,
    with the vocabulary; None when no word survives the stop list."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [f"{p.title}. {p.title}. {p.abstract}" for p in papers]
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, strip_accents="unicode")
    try:
        matrix = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary
        return None
    return matrix, vectorizer.get_feature_names_out()


def _absorb_small(labels: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Dissolve groups under MIN_CLUSTER_SIZE, smallest first: each of their papers joins the
    group it is closest to on average. Outliers would otherwise cost a call each."""
    labels = labels.copy()
    while True:
        ids, counts = np.unique(labels, return_counts=True)
        smallest = int(counts.argmin())
        if len(ids) < 2 or counts[smallest] >= MIN_CLUSTER_SIZE:
            return labels
        victim = ids[smallest]
        members = labels == victim
        others = ids[ids != victim]
        mean = np.stack(
            [distances[np.ix_(members, labels == other)].mean(axis=1) for other in others],
            axis=1,
        )
        labels[members] = others[mean.argmin(axis=1)]


def _partitions(points: Any, distances: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Two candidate splits into ``k`` groups: average-linkage on cosine distance (finds
    well-separated subjects, deterministic) and k-means (balanced groups where subjects
    blend)."""
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.exceptions import ConvergenceWarning

    linkage = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average")
    candidates = [linkage.fit(distances).labels_]
    with warnings.catch_warnings():
        # Raised when duplicate papers leave fewer distinct points than k; harmless here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        starts = KMEANS_RESTARTS if points.shape[0] <= KMEANS_MANY_PAPERS else KMEANS_FEW_RESTARTS
        model = KMeans(n_clusters=k, n_init=starts, random_state=seed)
        candidates.append(model.fit(points).labels_)
    return candidates


def _kmeans_input(matrix: Any) -> Any:
    """The TF-IDF matrix as k-means should get it: dense while small (k-means on a sparse
    matrix spends most of its time starting threads), sparse when large."""
    rows, cols = matrix.shape
    return matrix.toarray() if rows * cols <= DENSE_KMEANS_CELLS else matrix


def cluster_papers(
    papers: Sequence[Paper], *, max_clusters: int = MAX_CLUSTERS, seed: int = 0
) -> list[list[int]]:
    """Indices of papers per cluster, deterministic for a given ``seed``.

    Tries k = 2 .. min(max_clusters, n // MIN_CLUSTER_SIZE) with two clustering methods,
    dissolves groups smaller than MIN_CLUSTER_SIZE into their nearest group, and keeps the
    split with the best cosine silhouette (the smaller k on a tie). A library that fits one
    prompt stays one cluster unless that silhouette reaches MIN_SILHOUETTE. Clusters are
    ordered by size (largest first), then first index; indices are sorted. No papers, no
    clusters.
    """
    n = len(papers)
    whole = [list(range(n))] if n else []
    top = min(max_clusters, n // MIN_CLUSTER_SIZE)
    if top < 2:
        return whole
    tfidf = _tfidf(papers)
    if tfidf is None:
        return whole
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    matrix = tfidf[0]
    points = _kmeans_input(matrix)
    distances = np.clip(1.0 - (matrix @ matrix.T).toarray(), 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    best: np.ndarray | None = None
    best_score = -math.inf
    # One thread: k-means' OpenMP threads spin while they wait, which on a small machine
    # tripled the CPU time of 1,000 papers and made them slower too (6.0 s CPU, 3.4 s wall
    # against 1.9 s and 1.9 s).
    with threadpool_limits(limits=1):
        for k in range(2, top + 1):
            for labels in _partitions(points, distances, k, seed):
                labels = _absorb_small(labels, distances)
                if len(np.unique(labels)) < 2:
                    continue
                score = float(silhouette_score(distances, labels, metric="precomputed"))
                if score > best_score + 1e-9:
                    best, best_score = labels, score
    if best is None or (best_score < MIN_SILHOUETTE and n <= ONE_PROMPT_PAPERS):
        return whole
    clusters = [np.flatnonzero(best == label).tolist() for label in np.unique(best)]
    return sorted(clusters, key=lambda members: (-len(members), members[0]))


def cluster_terms(
    papers: Sequence[Paper], clusters: Sequence[Sequence[int]], *, count: int = GROUP_TERMS
) -> list[list[str]]:
    """Up to ``count`` words per cluster that set it apart: highest mean TF-IDF weight in the
    cluster minus the mean outside it (ties by word)."""
    tfidf = _tfidf(papers) if papers else None
    if tfidf is None:
        return [[] for _ in clusters]
    matrix, vocabulary = tfidf
    out = []
    for members in clusters:
        inside = np.zeros(len(papers), dtype=bool)
        inside[list(members)] = True
        score = np.asarray(matrix[inside].mean(axis=0)).ravel()
        if (~inside).any():
            score = score - np.asarray(matrix[~inside].mean(axis=0)).ravel()
        order = np.lexsort((vocabulary, -score))[:count]
        out.append([str(vocabulary[j]) for j in order if score[j] > 0])
    return out


def skeleton_brief_tokens(context_tokens: int, max_output_tokens: int) -> int:
    """Room for the papers in one skeleton prompt on a model with this context."""
    room = context_tokens - max_output_tokens - PROMPT_OVERHEAD_TOKENS
    return max(MIN_BRIEF_TOKENS, min(PROMPT_TOKEN_BUDGET, room))


def skeleton_calls(n_papers: int, *, max_clusters: int = MAX_CLUSTERS) -> int:
    """Upper bound on the skeleton's LLM calls (not counting retries and repair requests):
    one per possible cluster plus the merge, or 1 when the library cannot be split."""
    top = min(max_clusters, n_papers // MIN_CLUSTER_SIZE)
    return 1 if top < 2 else top + 1


# --------------------------------------------------------------------------------------------
# Leaf budgets and the deterministic fallback


def fragment_leaves(size: int, library: int, max_sections: int) -> int:
    """Leaves a fragment may propose: a bit more than its group's share, at least a few."""
    share = math.ceil(FRAGMENT_LEAF_FACTOR * max_sections * size / max(1, library))
    return min(max_sections, max(MIN_FRAGMENT_LEAVES, share))


def leaf_shares(sizes: Sequence[int], total: int) -> list[int]:
    """Split ``total`` leaves over groups of ``sizes``: one each (in the given order while
    they last), the rest in proportion to size by largest remainder (earlier group on ties)."""
    m = len(sizes)
    if total <= m:
        return [1] * total + [0] * (m - total)
    weights = list(sizes) if sum(sizes) > 0 else [1] * m
    raw = [(total - m) * w / sum(weights) for w in weights]
    shares = [1 + math.floor(r) for r in raw]
    by_remainder = sorted(range(m), key=lambda i: (-(raw[i] - math.floor(raw[i])), i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _drafts(nodes: Sequence[OutlineNode]) -> list[NodeDraft]:
    return [
        NodeDraft(id="", title=n.title, description=n.description, children=_drafts(n.children))
        for n in nodes
    ]


def concatenate_fragments(
    fragments: Sequence[Fragment], *, max_sections: int, allocator: IdAllocator, title: str
) -> Outline:
    """The fragments one after another, each cut to its share of ``max_sections`` leaves (by
    group size), with fresh ids: the outline to use when the merge fails."""
    sections: list[NodeDraft] = []
    shares = leaf_shares([f.papers for f in fragments], max_sections)
    for fragment, share in zip(fragments, shares, strict=True):
        if share:
            cut = outline_from_answer(
                OutlineAnswer(title="", sections=_drafts(fragment.outline.sections)),
                allocator=IdAllocator(),
                max_leaves=share,
                fallback_title=title,
            )
            sections += _drafts(cut.sections)
    return outline_from_answer(
        OutlineAnswer(title="", sections=sections),
        allocator=allocator,
        known_ids=(),
        max_leaves=max_sections,
        fallback_title=title,
    )


# --------------------------------------------------------------------------------------------
# The stage


async def build_skeleton(
    llm: LLMClient,
    topic: str,
    papers: Sequence[Paper],
    *,
    max_sections: int,
    allocator: IdAllocator | None = None,
    warn: Callable[[str], None] | None = None,
    max_clusters: int = MAX_CLUSTERS,
    brief_tokens: int = PROMPT_TOKEN_BUDGET,
) -> Outline:
    """The first outline: one fragment per cluster of ``papers``, merged (see the module doc).

    Raises the first fragment's LLMError when every fragment failed; BudgetExceeded and
    LLMRejectedError always propagate.
    """
    if max_sections < 1:
        raise ValueError("max_sections must be at least 1")
    allocator = allocator or IdAllocator()
    warn = warn or log.warning

    def final(answer: OutlineAnswer) -> Outline:
        return outline_from_answer(
            answer,
            allocator=allocator,
            known_ids=(),
            max_leaves=max_sections,
            fallback_title=topic,
        )

    clusters = cluster_papers(papers, max_clusters=max_clusters)
    if len(clusters) <= 1:
        prompt = render_prompt(
            "skeleton",
            topic=topic,
            papers=paper_briefs(papers, brief_tokens),
            group=None,
            max_sections=max_sections,
            max_depth=MAX_DEPTH,
        )
        return final(
            await llm.structured(
                prompt,
                OutlineAnswer,
                stage=STAGE,
                item="outline",
                task="skeleton/outline",
                needs=("gather",),
            )
        )

    terms = cluster_terms(papers, clusters)
    count = len(clusters)

    async def propose(index: int) -> Fragment | LLMError:
        members = [papers[i] for i in clusters[index]]
        limit = fragment_leaves(len(members), len(papers), max_sections)
        group = {"index": index + 1, "count": count, "terms": terms[index]}
        prompt = render_prompt(
            "skeleton",
            topic=topic,
            papers=paper_briefs(members, brief_tokens),
            group=group,
            max_sections=limit,
            max_depth=MAX_DEPTH,
        )
        try:
            answer = await llm.structured(
                prompt,
                OutlineAnswer,
                stage=STAGE,
                item=f"group {index + 1}/{count}",
                task=f"skeleton/group/{index + 1}",
                needs=("gather",),
            )
            outline = outline_from_answer(
                answer, allocator=IdAllocator(), max_leaves=limit, fallback_title=topic
            )
        except LLMRejectedError:
            raise
        except LLMError as exc:
            return exc
        return Fragment(index + 1, len(members), tuple(terms[index]), outline)

    results = await gather_or_cancel([propose(i) for i in range(count)])
    fragments = [r for r in results if isinstance(r, Fragment)]
    failures = [(i, r) for i, r in enumerate(results) if isinstance(r, LLMError)]
    if not fragments:
        raise failures[0][1]
    for index, error in failures:
        warn(
            f"skeleton: the outline for group {index + 1} of {count} "
            f"({len(clusters[index])} papers) failed and is left out: {error.message}"
        )

    prompt = render_prompt(
        "skeleton_merge",
        topic=topic,
        fragments=[f.view() for f in fragments],
        max_sections=max_sections,
        max_depth=MAX_DEPTH,
    )
    try:
        return final(
            await llm.structured(
                prompt,
                OutlineAnswer,
                stage=STAGE,
                item="merge",
                task="skeleton/merge",
                needs=("skeleton/group",),
            )
        )
    except LLMRejectedError:
        raise
    except LLMError as exc:
        warn(
            f"skeleton: merging the {len(fragments)} group outlines failed ({exc.message}); "
            "they are used one after another instead"
        )
    return concatenate_fragments(
        fragments, max_sections=max_sections, allocator=allocator, title=topic
    )
