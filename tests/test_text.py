from __future__ import annotations

import pytest

from surveygen.text import (
    approx_tokens,
    ascii_fold,
    best_sentence,
    matched_span,
    normalise,
    quote_in,
    split_sentences,
    truncate_tokens,
)

# --- split_sentences ----------------------------------------------------------------------


def test_split_basic_punctuation() -> None:
    text = "Retrieval helps. Does it always? No! It depends on the task."
    assert split_sentences(text) == [
        "Retrieval helps.",
        "Does it always?",
        "No!",
        "It depends on the task.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Models differ, e.g. RAG and REALM, in training.",
        "One retriever, i.e. DPR, is used.",
        "As shown by Lewis et al. (2020) the gain is large.",
        "Lewis et al. Showed a large gain.",
        "See Fig. 3 for the results.",
        "By Eq. 2 the loss is bounded.",
        "As argued in Sec. 4 the index can change.",
        "Dense vs. Sparse retrieval is compared.",
        "This is discussed elsewhere, cf. Table 2 of the paper.",
        "Dr. Smith wrote the code.",
        "Patent No. 42 covers it.",
        "It takes approx. 3 hours to index.",
        "The work of J. Smith and A. B. Jones is cited.",
    ],
)
def test_split_does_not_break_after_abbreviations(text: str) -> None:
    assert split_sentences(text) == [text]


def test_split_after_single_lowercase_letters_and_units() -> None:
    text = "The loss depends on x. The latency is 5 ms. A U.S. team and the U.K. Team agree."
    assert split_sentences(text) == [
        "The loss depends on x.",
        "The latency is 5 ms.",
        "A U.S. team and the U.K. Team agree.",
    ]


def test_split_decimals_and_versions() -> None:
    text = "Accuracy rose from 3.5 to 42.4 points. Version 2.1 is faster."
    assert split_sentences(text) == [
        "Accuracy rose from 3.5 to 42.4 points.",
        "Version 2.1 is faster.",
    ]


def test_split_urls_stay_whole() -> None:
    text = "Code is at https://github.com/org/repo.v2/main.py?x=1. Weights follow."
    assert split_sentences(text) == [
        "Code is at https://github.com/org/repo.v2/main.py?x=1.",
        "Weights follow.",
    ]


def test_split_before_digits_quotes_and_brackets() -> None:
    text = 'It ends here. 42 runs were made. "Quoted" text starts. [1] says so. (A) holds.'
    assert split_sentences(text) == [
        "It ends here.",
        "42 runs were made.",
        '"Quoted" text starts.',
        "[1] says so.",
        "(A) holds.",
    ]


def test_split_not_before_lowercase() -> None:
    assert split_sentences("The value is 5 approx. and then it grows.") == [
        "The value is 5 approx. and then it grows."
    ]
    assert split_sentences("It ends. and continues") == ["It ends. and continues"]


def test_split_closing_quote_stays_with_sentence() -> None:
    assert split_sentences('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_split_hyphenated_line_break_is_joined() -> None:
    text = "The trans-\nformer uses atten-\n  tion. It is fast."
    assert split_sentences(text) == ["The transformer uses attention.", "It is fast."]


def test_split_keeps_real_hyphens() -> None:
    assert split_sentences("A retrieval-augmented model is used.") == [
        "A retrieval-augmented model is used."
    ]


def test_split_blank_lines_and_whitespace() -> None:
    text = "Abstract\n\nWe study\n   retrieval   in detail\n\n\n  Results follow here  "
    assert split_sentences(text) == [
        "Abstract",
        "We study retrieval in detail",
        "Results follow here",
    ]


def test_split_drops_tiny_fragments_and_empty_input() -> None:
    assert split_sentences("") == []
    assert split_sentences("a\n\nOk\n\nThis stays.") == ["This stays."]


def test_split_is_deterministic() -> None:
    text = "One sentence. Another one! A third? Yes."
    assert split_sentences(text) == split_sentences(text)


# --- normalise / quote_in / best_sentence -------------------------------------------------


def test_normalise() -> None:
    assert normalise("  “Smart”  quotes—and\tDASHES ‘here’ ") == (
        "\"smart\" quotes-and dashes 'here'"
    )
    assert normalise("ﬁne Straße") == "fine strasse"


HAYSTACK = (
    "We show that dense retrieval outperforms BM25 by a wide margin on the top-20 accuracy. "
    "The index is built once and never updated."
)


def test_quote_in_exact_up_to_normalisation() -> None:
    assert quote_in("dense retrieval outperforms BM25", HAYSTACK)
    assert quote_in("DENSE   retrieval\noutperforms bm25", HAYSTACK)
    assert quote_in("the index is built once", "The index is built once—and never updated.")


def test_quote_in_fuzzy() -> None:
    assert quote_in("dense retreival outperforms BM25 by a wide margin", HAYSTACK)
    assert not quote_in("dense retreival outperforms BM25 by a wide margin", HAYSTACK, 99.5)


def test_quote_in_short_quotes_must_be_exact() -> None:
    assert quote_in("BM25", HAYSTACK)
    assert not quote_in("BM26", HAYSTACK)
    assert not quote_in("retrievals", "dense retrieval models")  # fuzzy would accept it


def test_quote_in_unrelated_and_empty() -> None:
    assert not quote_in("convolutional networks classify images of cats", HAYSTACK)
    assert not quote_in("", HAYSTACK)
    assert not quote_in("   ", HAYSTACK)


def test_quote_in_long_quote_against_short_haystack() -> None:
    assert not quote_in("the index is built once and never updated at all", "the index")


def test_best_sentence() -> None:
    sentences = split_sentences(HAYSTACK)
    assert best_sentence("index is built once", sentences) == (1, 100.0)
    index, score = best_sentence("dense retreival outperforms BM25", sentences)
    assert index == 0
    assert 85 <= score < 100
    assert best_sentence("anything", []) == (-1, 0.0)
    assert best_sentence("", sentences) == (-1, 0.0)
    assert best_sentence("zzz", sentences) == (-1, 0.0)


# --- tokens -------------------------------------------------------------------------------


def test_approx_tokens() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("a") == 1
    assert approx_tokens("abcd") == 1
    assert approx_tokens("abcde") == 2
    assert approx_tokens("x" * 400) == 100


def test_truncate_tokens_keeps_short_text() -> None:
    assert truncate_tokens("Short text.", 100) == "Short text."
    assert truncate_tokens("Anything", 0) == ""


def test_truncate_tokens_cuts_at_sentence_end() -> None:
    text = "First sentence is here. Second sentence is a bit longer than that. Third."
    cut = truncate_tokens(text, 12)
    assert cut == "First sentence is here."
    assert approx_tokens(cut) <= 12


def test_truncate_tokens_cuts_at_word_boundary() -> None:
    text = "word " * 100
    cut = truncate_tokens(text, 10)
    assert len(cut) <= 40
    assert cut.endswith("word")
    assert "wor " not in cut + " "


def test_ascii_fold() -> None:
    assert ascii_fold("Müller Søren Łukasz Oğuz") == "Muller Soren Lukasz Oguz"
    assert ascii_fold("王小明") == ""


# --- matched_span ---------------------------------------------------------------------------

SENTENCE = "On open-domain QA, the model “improves” exact match by 4.2 points over BM25."


@pytest.mark.parametrize(
    ("quote", "span"),
    [
        ('the model "improves" exact match', "the model “improves” exact match"),  # quote marks
        ("OPEN-DOMAIN QA", "open-domain QA"),  # case
        ("odel improves exact matc", "model “improves” exact match"),  # widened to words
        (
            "the model improves exact match by 4.2 points",
            "the model “improves” exact match by 4.2 points",
        ),
    ],
)
def test_matched_span_gives_the_sentence_own_words(quote, span):
    assert matched_span(quote, SENTENCE) == span


def test_matched_span_of_a_quote_as_long_as_the_sentence_is_the_sentence():
    assert matched_span(SENTENCE + " and more", SENTENCE) == SENTENCE
