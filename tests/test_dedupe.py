"""Near-duplicate sentences across sections: which are found, which are kept, how they go."""

from __future__ import annotations

import random
import time

import pytest

from surveygen.dedupe import (
    DEFAULT_THRESHOLD,
    duplicate_stats,
    find_duplicates,
    remove_duplicates,
)

# Sentences on other topics, so TF-IDF weights are those of a survey, not of two sentences.
OTHERS = [
    "Dense passage retrieval encodes questions and passages with two separate BERT encoders "
    "[@dpr].",
    "ColBERT keeps one embedding per token and compares them with late interaction [@colbert].",
    "RAG jointly fine-tunes a retriever and a BART generator on question answering [@rag].",
    "Hallucinated facts tend to differ across samples drawn from the same prompt [@selfcheck].",
    "Language models use information at the start and end of long contexts better than in the "
    "middle [@lostmiddle].",
    "Hard negatives mined with BM25 improve the training of dense retrievers [@dpr].",
    "Re-ranking models generalise better out of domain than single-vector dense retrievers "
    "[@beir].",
    "The index of twenty one million Wikipedia passages is built offline before training [@dpr].",
    "Compression of token embeddings reduces the memory footprint of late interaction indexes "
    "[@colbert].",
    "Benchmarks spanning eighteen datasets reveal large variance between retrieval domains "
    "[@beir].",
]
CLAIM = (
    "Dense retrievers outperform BM25 on open-domain question answering benchmarks by a wide "
    "margin [@dpr]."
)
# Near repeats of CLAIM: a framing phrase added, citations changed, word order, one word.
REPEATS = [
    "Dense retrievers outperform BM25 on open-domain question answering benchmarks by a wide "
    "margin [@dpr; @rag].",
    "As noted above, dense retrievers outperform BM25 on open-domain question answering "
    "benchmarks by a wide margin.",
    "On open-domain question answering benchmarks, dense retrievers outperform BM25 by a wide "
    "margin [@karpukhin2020dense].",
    "Dense retrievers clearly outperform BM25 on open-domain QA benchmarks by a wide margin "
    "[@dpr].",
]
# Same topic and many shared words, different content: kept.
DIFFERENT = [
    "Sparse retrievers such as BM25 still outperform dense retrievers on entity-centric "
    "question answering benchmarks [@beir].",
    "Dense retrievers trained on open-domain question answering generalise poorly to new "
    "domains [@beir].",
    "Dense retrievers outperform BM25 on open-domain question answering but need far more "
    "memory for their index [@dpr].",
]


def sections(*later: str) -> list[str]:
    return [" ".join([*OTHERS[:5], CLAIM]), " ".join([*OTHERS[5:], *later])]


@pytest.mark.parametrize("repeat", REPEATS)
def test_a_near_repeat_in_a_later_section_is_a_duplicate(repeat: str) -> None:
    texts = sections(repeat)
    [duplicate] = find_duplicates(texts)
    assert duplicate.text_index == 1
    assert duplicate.span.text == repeat
    assert texts[1][duplicate.span.start : duplicate.span.end] == repeat
    assert duplicate.of_text_index == 0
    assert duplicate.of_span.text == CLAIM
    assert duplicate.similarity >= DEFAULT_THRESHOLD


def test_an_exact_repeat_has_similarity_one_even_with_other_citations() -> None:
    [duplicate] = find_duplicates(sections(REPEATS[0]))
    assert duplicate.similarity == 1.0


@pytest.mark.parametrize("other", DIFFERENT)
def test_a_sentence_with_different_content_is_kept(other: str) -> None:
    assert find_duplicates(sections(other)) == []


def test_the_threshold_has_a_margin_on_both_sides() -> None:
    """The calibration behind DEFAULT_THRESHOLD: the repeats score at least 0.05 above it,
    the sentences with other content at least 0.05 below."""
    for repeat in REPEATS:
        assert find_duplicates(sections(repeat), DEFAULT_THRESHOLD + 0.05), repeat
    for other in DIFFERENT:
        assert not find_duplicates(sections(other), DEFAULT_THRESHOLD - 0.05), other


def test_short_sentences_are_never_duplicates() -> None:
    texts = ["Results are mixed. BM25 is strong [@beir].", "Results are mixed. BM25 is strong."]
    assert find_duplicates(texts) == []
    assert duplicate_stats(texts) == (4, 0)


def test_a_repeat_within_one_section_is_found_and_the_later_one_goes() -> None:
    text = f"{CLAIM} {OTHERS[0]} {REPEATS[1]}"
    [duplicate] = find_duplicates([text])
    assert (duplicate.text_index, duplicate.of_text_index) == (0, 0)
    assert duplicate.span.text == REPEATS[1]
    assert duplicate.of_span.text == CLAIM
    assert remove_duplicates([text])[0] == [f"{CLAIM} {OTHERS[0]}"]


def test_repeats_are_compared_with_the_sentences_kept() -> None:
    texts = [CLAIM, REPEATS[0], REPEATS[1]]
    duplicates = find_duplicates(texts)
    assert [(d.text_index, d.of_text_index) for d in duplicates] == [(1, 0), (2, 0)]
    assert duplicate_stats(texts) == (3, 2)


# --- removal -----------------------------------------------------------------------------------


def test_removal_mid_paragraph_leaves_single_spaces() -> None:
    first = f"{CLAIM}\n"
    second = f"{OTHERS[0]} {REPEATS[0]} {OTHERS[1]}\n"
    texts, removed = remove_duplicates([first, second])
    assert texts == [first, f"{OTHERS[0]} {OTHERS[1]}\n"]
    assert len(removed) == 1


def test_removal_at_the_start_and_end_of_a_line() -> None:
    second = f"{REPEATS[0]} {OTHERS[0]}\n{OTHERS[1]} {REPEATS[1]}\nLast line here."
    texts, _ = remove_duplicates([CLAIM, second])
    assert texts[1] == f"{OTHERS[0]}\n{OTHERS[1]}\nLast line here."


def test_an_emptied_paragraph_goes_with_its_blank_line() -> None:
    second = f"## Dense retrieval\n\n{REPEATS[0]}\n\n{OTHERS[0]}\n"
    assert remove_duplicates([CLAIM, second])[0][1] == f"## Dense retrieval\n\n{OTHERS[0]}\n"
    first_paragraph = f"{REPEATS[0]}\n\n{OTHERS[0]}"
    assert remove_duplicates([CLAIM, first_paragraph])[0][1] == OTHERS[0]
    last_paragraph = f"{OTHERS[0]}\n\n{REPEATS[0]}"
    assert remove_duplicates([CLAIM, last_paragraph])[0][1] == OTHERS[0]
    last_with_newline = f"{OTHERS[0]}\n\n{REPEATS[0]}\n"
    assert remove_duplicates([CLAIM, last_with_newline])[0][1] == f"{OTHERS[0]}\n"


def test_removal_with_windows_line_endings() -> None:
    second = f"{OTHERS[0]}\r\n\r\n{REPEATS[0]}\r\n\r\n{OTHERS[1]}\r\n"
    assert remove_duplicates([CLAIM, second])[0][1] == f"{OTHERS[0]}\r\n\r\n{OTHERS[1]}\r\n"


def test_an_emptied_list_item_goes() -> None:
    second = f"Findings:\n\n- {OTHERS[0]}\n- {REPEATS[0]}\n- {OTHERS[1]} {REPEATS[1]}\n"
    texts, removed = remove_duplicates([CLAIM, second])
    assert texts[1] == f"Findings:\n\n- {OTHERS[0]}\n- {OTHERS[1]}\n"
    assert len(removed) == 2


def test_nothing_to_remove_leaves_texts_unchanged() -> None:
    texts = [" ".join(OTHERS[:5]), "## Heading\n\n" + " ".join(OTHERS[5:]) + "\n"]
    assert remove_duplicates(texts) == (texts, [])
    assert remove_duplicates([]) == ([], [])


def test_a_survey_sized_input_is_fast() -> None:
    rng = random.Random(7)
    vocabulary = [f"term{i}" for i in range(3000)]

    def sentence() -> str:
        words = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(8, 25)))
        return f"{words.capitalize()} [@key{rng.randint(0, 99)}]."

    texts = [
        "\n\n".join(" ".join(sentence() for _ in range(6)) for _ in range(5)) for _ in range(60)
    ]
    texts[40] += "\n\n" + texts[3].split("\n\n")[1]  # six planted repeats
    find_duplicates(texts[:2])  # import scikit-learn outside the timed part
    started = time.perf_counter()
    count, duplicates = duplicate_stats(texts)
    assert time.perf_counter() - started < 5.0
    assert (count, duplicates) == (60 * 30 + 6, 6)
