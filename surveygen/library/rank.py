"""Relevance: TF-IDF ranking against the topic and the search queries, the LLM's query
proposals and its optional screening of the best candidates.

The TF-IDF score of a paper (title and abstract) is its cosine similarity to the topic,
blended with its best similarity to any search query: ``0.6 * cos(topic) + 0.4 * max cos(q)``.
The screening score is the LLM's 0–10 rating of the paper's relevance to the topic. Papers
are chosen by screening score first (where there is one) and TF-IDF score second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from surveygen.errors import BudgetExceeded, LLMError, LLMRejectedError
from surveygen.llm.prompts import render_prompt
from surveygen.text import approx_tokens, truncate_tokens

__all__ = [
    "Choice",
    "ScreenAnswer",
    "choose",
    "propose_queries",
    "relevance",
    "screen",
    "shares_terms",
]

STAGE = "gather"
MIN_QUERIES, MAX_QUERIES = 3, 8
SCREEN_BATCH = 20
SCREEN_ABSTRACT_TOKENS = 160
TOPIC_WEIGHT = 0.6


def _document(title: str, abstract: str) -> str:
    return f"{title}. {title}. {abstract}"  # the title twice: it says most in fewest words


def relevance(topic: str, queries: Sequence[str], papers: Sequence[tuple[str, str]]) -> list[float]:
    """TF-IDF relevance in [0, 1] of each ``(title, abstract)`` to the topic and queries."""
    if not papers:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [_document(t, a) for t, a in papers]
    probes = [topic, *[q for q in queries if q.strip() and q.strip() != topic.strip()]]
    vectorizer = TfidfVectorizer(
        stop_words="english", sublinear_tf=True, ngram_range=(1, 2), strip_accents="unicode"
    )
    try:
        matrix = vectorizer.fit_transform(docs + probes)
    except ValueError:  # no word at all survives (empty or stop-word-only texts)
        return [0.0] * len(papers)
    sims = (matrix[: len(docs)] @ matrix[len(docs) :].T).toarray()  # rows are L2-normalised
    topic_sim = sims[:, 0]
    if sims.shape[1] > 1:
        scores = TOPIC_WEIGHT * topic_sim + (1 - TOPIC_WEIGHT) * sims[:, 1:].max(axis=1)
    else:
        scores = topic_sim
    return [round(float(s), 4) for s in np.clip(scores, 0.0, 1.0)]


# --------------------------------------------------------------------------------------------
# Query proposals


class QueryAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queries: list[str]


def clean_queries(topic: str, proposed: Sequence[str]) -> list[str]:
    """Distinct, non-empty proposals other than the topic itself, at most MAX_QUERIES."""
    seen = {" ".join(topic.lower().split())}
    out: list[str] = []
    for query in proposed:
        query = " ".join(query.split())[:200]
        norm = query.lower()
        if query and norm not in seen:
            seen.add(norm)
            out.append(query)
    return out[:MAX_QUERIES]


async def propose_queries(llm: object, topic: str) -> list[str]:
    """3–8 search queries for the topic, proposed by the LLM (see prompts/queries.j2)."""
    prompt = render_prompt("queries", topic=topic, low=MIN_QUERIES, high=MAX_QUERIES)
    answer = await llm.structured(  # type: ignore[attr-defined]
        prompt, QueryAnswer, stage=STAGE, item="queries", task="gather/queries"
    )
    return clean_queries(topic, answer.queries)


# --------------------------------------------------------------------------------------------
# Screening


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    reason: str
    score: float = Field(ge=0, le=10)


class ScreenAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratings: list[Rating]


async def screen(
    llm: object,
    topic: str,
    papers: Sequence[tuple[str, str]],
    *,
    on_batch: object = None,
) -> tuple[list[float | None], list[str]]:
    """The LLM's 0–10 relevance rating of each ``(title, abstract)``, in batches.

    A batch whose call fails leaves its papers unrated (None) and adds a warning; a rating
    for an id the batch does not hold is ignored. Budget and refused-key errors propagate.
    """
    from surveygen.aio import gather_or_cancel

    scores: list[float | None] = [None] * len(papers)
    warnings: list[str] = []

    async def batch(start: int) -> None:
        items = [
            {
                "id": f"p{i + 1}",
                "title": title,
                "abstract": truncate_tokens(abstract, SCREEN_ABSTRACT_TOKENS)
                if approx_tokens(abstract) > SCREEN_ABSTRACT_TOKENS
                else abstract,
            }
            for i, (title, abstract) in enumerate(papers[start : start + SCREEN_BATCH])
        ]
        prompt = render_prompt("screen", topic=topic, papers=items)
        label = f"screen {start // SCREEN_BATCH + 1}"
        try:
            # Search results come from the proposed queries, when the LLM proposed them.
            answer = await llm.structured(  # type: ignore[attr-defined]
                prompt,
                ScreenAnswer,
                stage=STAGE,
                item=label,
                task=f"gather/screen/{start // SCREEN_BATCH + 1}",
                needs=("gather/queries",),
            )
        except (BudgetExceeded, LLMRejectedError):
            raise
        except LLMError as exc:
            warnings.append(f"screening batch {label.split()[1]} failed, left unrated: {exc}")
        else:
            for rating in answer.ratings:
                index = rating.id.strip().lstrip("p")
                if index.isdigit() and 1 <= int(index) <= len(items):
                    scores[start + int(index) - 1] = round(rating.score, 2)
        finally:
            if callable(on_batch):
                on_batch()

    await gather_or_cancel(batch(s) for s in range(0, len(papers), SCREEN_BATCH))
    return scores, warnings


def screen_calls(n: int) -> int:
    return math.ceil(n / SCREEN_BATCH)


# --------------------------------------------------------------------------------------------
# Choosing the library


@dataclass(frozen=True)
class Choice:
    """Indices of papers kept and dropped, and of kept user papers that look off-topic."""

    kept: list[int]
    dropped: list[int]
    off_topic: list[int]


_WORD = re.compile(r"[^\W\d_]{3,}")


def _stems(text: str) -> set[str]:
    """Crude stems (first 5 letters) of the content words: "retrieval" ~ "retrieve"."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = _WORD.findall(text.lower())
    return {w[:5] for w in words if w not in ENGLISH_STOP_WORDS}


def shares_terms(
    topic: str, queries: Sequence[str], papers: Sequence[tuple[str, str]]
) -> list[bool]:
    """Whether each ``(title, abstract)`` shares at least one content word with the topic or
    a query. Unlike the TF-IDF score this does not depend on the rest of the library, so a
    small library of papers all about the topic is never flagged as a whole."""
    probe = _stems(" ".join([topic, *queries]))
    return [bool(probe & _stems(f"{title} {abstract}")) for title, abstract in papers]


def choose(
    is_user: Sequence[bool],
    scores: Sequence[float],
    screen_scores: Sequence[float | None],
    on_topic: Sequence[bool],
    *,
    max_papers: int,
    threshold: float,
) -> Choice:
    """Keep every user paper, then the best search results up to ``max_papers`` in all.

    A search result rated below ``threshold`` by the screen is dropped whatever its TF-IDF
    score. A user paper is flagged off-topic when the screen rates it below the threshold,
    or, unrated, when it shares no content word with the topic and queries (``on_topic``).
    """
    user = [i for i, u in enumerate(is_user) if u]
    off_topic = []
    for i in user:
        rated = screen_scores[i]
        if (rated is not None and rated < threshold) or (rated is None and not on_topic[i]):
            off_topic.append(i)
    found = [i for i, u in enumerate(is_user) if not u]
    eligible = [
        i for i in found if (screen_scores[i] or 0.0) >= threshold or screen_scores[i] is None
    ]
    eligible.sort(key=lambda i: (-(screen_scores[i] or 0.0), -scores[i], i))
    room = max(0, max_papers - len(user))
    kept_found = sorted(eligible[:room])
    kept = sorted(user + kept_found)
    dropped = sorted(set(found) - set(kept_found))
    return Choice(kept=kept, dropped=dropped, off_topic=off_topic)
