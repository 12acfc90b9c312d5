"""Near-duplicate sentences across the sections of a survey.

Sections are written one at a time, so the same finding is often stated again in a later
section, sometimes word for word. A sentence is a duplicate when it near-repeats a sentence
kept before it in reading order (in an earlier section or earlier in its own): the cosine
similarity of the two sentences' content words is at least the threshold. Content words are
those of :func:`surveygen.support.content_words` (citations removed, casefolded, stopwords
and framing words such as "noted" dropped, stemmed), weighted by TF-IDF over all the
survey's sentences so that topic words every section shares count little. Sentences with
fewer than :data:`MIN_WORDS` distinct content words ("Results are mixed.") are never
duplicates: repeating them says nothing twice. Sentences come from
:func:`surveygen.support.sentence_spans`, the product's one sentence splitter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .support import SentenceSpan, content_words, sentence_spans

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_WORDS",
    "Duplicate",
    "duplicate_stats",
    "find_all",
    "find_duplicates",
    "remove_duplicates",
    "remove_found",
]

# Calibrated in tests/test_dedupe.py: repeats with a framing phrase added, the words
# reordered or a word or two changed score about 0.75 or more; sentences on the same topic
# with other content (including a repeat that adds a clause of new content) under 0.6.
DEFAULT_THRESHOLD = 0.65
MIN_WORDS = 6


@dataclass(frozen=True)
class Duplicate:
    """Sentence ``span`` of text ``text_index`` repeats ``of_span`` of ``of_text_index``."""

    text_index: int
    span: SentenceSpan
    of_text_index: int
    of_span: SentenceSpan
    similarity: float


def _identity(words: list[str]) -> list[str]:
    return words


def _find(
    texts: Sequence[str], threshold: float
) -> tuple[list[tuple[int, SentenceSpan]], list[Duplicate]]:
    """All sentences in reading order, and the duplicates among them."""
    sentences = [(i, span) for i, text in enumerate(texts) for span in sentence_spans(text)]
    eligible: list[int] = []
    documents: list[list[str]] = []
    for index, (_, span) in enumerate(sentences):
        words = sorted(set(content_words(span.text, drop_framing=True)))
        if len(words) >= MIN_WORDS:
            eligible.append(index)
            documents.append(words)
    if len(documents) < 2:
        return sentences, []

    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(analyzer=_identity, binary=True).fit_transform(documents)
    similar = (vectors @ vectors.T).tocsr()  # rows are L2-normalised: cosine similarity
    duplicates: list[Duplicate] = []
    removed: set[int] = set()
    for row in range(len(documents)):
        start, end = similar.indptr[row], similar.indptr[row + 1]
        best, best_similarity = -1, 0.0
        for column, value in zip(similar.indices[start:end], similar.data[start:end], strict=True):
            # Only sentences kept so far count: a repeat of a removed repeat is compared
            # with what the reader will still see.
            if column >= row or column in removed or value < threshold:
                continue
            if value > best_similarity or (value == best_similarity and column < best):
                best, best_similarity = int(column), float(value)
        if best >= 0:
            removed.add(row)
            text_index, span = sentences[eligible[row]]
            of_text_index, of_span = sentences[eligible[best]]
            similarity = round(min(best_similarity, 1.0), 4)
            duplicates.append(Duplicate(text_index, span, of_text_index, of_span, similarity))
    return sentences, duplicates


def find_duplicates(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> list[Duplicate]:
    """The sentences of ``texts`` (in reading order) that near-repeat an earlier kept one."""
    return _find(texts, threshold)[1]


def find_all(
    texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD
) -> tuple[int, list[Duplicate]]:
    """The number of sentences over all ``texts`` and their duplicates, from one pass."""
    sentences, duplicates = _find(texts, threshold)
    return len(sentences), duplicates


def duplicate_stats(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> tuple[int, int]:
    """(number of sentences, number of duplicate sentences) over all ``texts``."""
    sentences, duplicates = find_all(texts, threshold)
    return sentences, len(duplicates)


def remove_duplicates(
    texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[str], list[Duplicate]]:
    """``texts`` without their duplicate sentences, and the duplicates removed.

    The space a sentence leaves is tidied: no double spaces, and a paragraph, list item or
    quote line left empty goes with its line (and one of two blank lines around it).
    """
    duplicates = find_duplicates(texts, threshold)
    return remove_found(texts, duplicates), duplicates


def remove_found(texts: Sequence[str], duplicates: Sequence[Duplicate]) -> list[str]:
    """``texts`` with ``duplicates`` (as :func:`find_all` gives them) cut out, tidied."""
    out = list(texts)
    for duplicate in sorted(duplicates, key=lambda d: (d.text_index, d.span.start), reverse=True):
        out[duplicate.text_index] = _cut(out[duplicate.text_index], duplicate.span)
    return out


# What may be left of a line whose only sentence was removed: a list or quote marker.
_BARE_LINE = re.compile(r"[^\S\n]*(?:(?:[-*+]|\d{1,9}[.)]|>)[^\S\n]*)?")


def _cut(text: str, span: SentenceSpan) -> str:
    """``text`` without the sentence ``span``, whitespace tidied."""
    start, end = span.start, span.end
    line_start = text.rfind("\n", 0, start) + 1
    if _BARE_LINE.fullmatch(text[line_start:start]):
        # the sentence opens its line: keep the indentation and marker, lose the space after
        while end < len(text) and text[end] in " \t":
            end += 1
    else:
        while start > line_start and text[start - 1] in " \t":
            start -= 1
    text = text[:start] + text[end:]
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end < 0:
        if not _BARE_LINE.fullmatch(text[line_start:]):
            return text
        # the last line emptied: drop it and the blank lines before it
        return text[:line_start].rstrip()
    if not _BARE_LINE.fullmatch(text[line_start:line_end]):
        return text
    text = text[:line_start] + text[line_end + 1 :]
    # the line went: if that left two blank lines in a row (or one at the start), drop one
    next_end = text.find("\n", line_start)
    if next_end >= 0 and not text[line_start:next_end].strip():
        before = text[text.rfind("\n", 0, max(line_start - 1, 0)) + 1 : max(line_start - 1, 0)]
        if line_start == 0 or not before.strip():
            text = text[:line_start] + text[next_end + 1 :]
    elif next_end < 0 and line_start == len(text) and text.endswith("\n\n"):
        text = text[:-1]
    return text
