"""Sentence spans, claims, citation dropping and the lexical support check.

The calibration set at the end (six invented papers on retrieval-augmented language models,
with made-up numbers, and survey sentences citing them) fixes DEFAULT_THRESHOLD: sentences a
reader would accept (paraphrases, syntheses of several quotes, generic framing) against
claims about another paper's content and invented numbers.
"""

from __future__ import annotations

import pytest

from surveygen.models import Digest, Evidence, NodeDigest, Paper
from surveygen.support import (
    DEFAULT_THRESHOLD,
    Passage,
    SentenceSpan,
    SupportChecker,
    claims,
    content_words,
    drop_keys,
    evidence_passages,
    replace_span,
    sentence_at,
    sentence_spans,
    unsupported_claims,
)


def texts(source: str) -> list[str]:
    spans = sentence_spans(source)
    for span in spans:
        assert source[span.start : span.end] == span.text
    return [span.text for span in spans]


# --- sentence spans ----------------------------------------------------------------------------


def test_spans_split_prose_and_keep_offsets() -> None:
    source = "Retrieval helps.  Does it always? No! It depends on the task."
    assert texts(source) == [
        "Retrieval helps.",
        "Does it always?",
        "No!",
        "It depends on the task.",
    ]
    assert sentence_spans(source)[1] == SentenceSpan(18, 33, "Does it always?")


@pytest.mark.parametrize(
    "source",
    [
        "Dense retrievers, e.g. DPR, outperform BM25.",
        "One retriever, i.e. DPR, is used.",
        "As shown by Lewis et al. (2020) the gain is large.",
        "Lewis et al. Showed a large gain.",
        "Accuracy rose from 3.5 to 42.4 points.",
        "See Fig. 3 for the results.",
        "The work of J. Smith and A. B. Jones is cited.",
        "The encoder of J.-B. Alayrac is used.",
        "Code is at https://github.com/org/repo.v2/main.py?x=1 now.",
        "Inline `code. With dots` stays whole.",
        "Math $a.B$ and a [link. Here](https://x.org/a.B) stay whole.",
        "Karpukhin et al. [@karpukhin2020dense] train a dual encoder.",
        "The score uses *e.g.* BM25.",
    ],
)
def test_spans_do_not_split_inside(source: str) -> None:
    assert texts(source) == [source]


def test_citation_after_the_period_belongs_to_the_sentence_before() -> None:
    source = "It was shown. [@a] Next one. Also shown [@b]. Tight.[@c; @d] Last."
    assert texts(source) == [
        "It was shown. [@a]",
        "Next one.",
        "Also shown [@b].",
        "Tight.[@c; @d]",
        "Last.",
    ]


def test_citation_at_the_end_of_a_paragraph_and_across_a_line_break() -> None:
    source = "First claim.\n[@a]\n\nSecond claim. [@b]\n"
    assert texts(source) == ["First claim.\n[@a]", "Second claim. [@b]"]


def test_windows_line_endings() -> None:
    source = "One here. Two [@a].\r\nThree.\r\n\r\n- Item one.\r\n"
    assert texts(source) == ["One here.", "Two [@a].", "Three.", "Item one."]


def test_spans_never_cross_a_blank_line() -> None:
    source = "A sentence without a stop\n\nanother paragraph here"
    assert texts(source) == ["A sentence without a stop", "another paragraph here"]


def test_list_items_are_separate_and_their_markers_excluded() -> None:
    source = (
        "Intro sentence:\n"
        "- First item. Second sentence of it.\n"
        "- Second item\n"
        "  continues here.\n"
        "  * Nested item.\n"
        "1. Numbered item.\n"
        "2) Another one.\n"
    )
    assert texts(source) == [
        "Intro sentence:",
        "First item.",
        "Second sentence of it.",
        "Second item\n  continues here.",
        "Nested item.",
        "Numbered item.",
        "Another one.",
    ]


def test_a_wrapped_line_starting_with_a_number_is_not_a_list_item() -> None:
    source = "The method was published in\n2020. It is widely used."
    assert texts(source) == ["The method was published in\n2020.", "It is widely used."]


def test_headings_code_tables_and_rules_are_not_prose() -> None:
    source = (
        "# Dense retrieval. A heading\n"
        "\n"
        "Body one.\n"
        "\n"
        "Setext heading. Still heading\n"
        "==============================\n"
        "\n"
        "```python\n"
        "x = 1. Not prose.\n"
        "```\n"
        "\n"
        "| Model | Note. Here |\n"
        "|---|---|\n"
        "| DPR | Dense. Fast. |\n"
        "\n"
        "Model | Score\n"
        "--- | ---\n"
        "BM25 | Sparse.\n"
        "\n"
        "---\n"
        "\n"
        "Body two.\n"
    )
    assert texts(source) == ["Body one.", "Body two."]


def test_block_quote_markers_are_not_part_of_the_sentence() -> None:
    assert texts("> Quoted claim here. And another.") == ["Quoted claim here.", "And another."]


def test_cjk_and_unspaced_text_do_not_crash() -> None:
    assert texts("检索增强生成很有用。它可以减少幻觉。") == [
        "检索增强生成很有用。",
        "它可以减少幻觉。",
    ]
    assert texts("x" * 5000) == ["x" * 5000]
    assert texts("") == []
    assert texts("\n\n   \n") == []
    assert texts("[@a]\n\n42.") == []  # no letter: not a sentence


def test_emphasised_lead_in_is_its_own_sentence() -> None:
    assert texts("**Dense retrieval.** It encodes text.") == [
        "**Dense retrieval.**",
        "It encodes text.",
    ]


def test_sentence_at() -> None:
    source = "# Title\n\nFirst one. Second one."
    second = source.index("Second")
    assert sentence_at(source, second + 3) == SentenceSpan(second, len(source), "Second one.")
    assert sentence_at(source, source.index("First")).text == "First one."
    assert sentence_at(source, source.index("Second") - 1) is None  # the space between
    assert sentence_at(source, 2) is None  # the heading


def test_replace_span() -> None:
    source = "Keep this. Replace this one. Keep that."
    span = sentence_spans(source)[1]
    assert replace_span(source, span, "New one.") == "Keep this. New one. Keep that."
    with pytest.raises(ValueError, match="no longer holds"):
        replace_span("Other text entirely here.", span, "New one.")


# --- claims ------------------------------------------------------------------------------------


def test_claims_are_the_citing_sentences() -> None:
    source = (
        "Retrieval matters. Dense retrievers outperform BM25 [@dpr; @orqa] on open QA [@dpr]. "
        "It was shown. [@beir]\n\n- A list claim ([@rag]).\n"
    )
    found = claims(source)
    assert [c.keys for c in found] == [("dpr", "orqa"), ("beir",), ("rag",)]
    assert [c.plain for c in found] == [
        "Dense retrievers outperform BM25 on open QA.",
        "It was shown.",
        "A list claim.",
    ]
    assert (
        found[0].sentence.text
        == "Dense retrievers outperform BM25 [@dpr; @orqa] on open QA [@dpr]."
    )


# --- drop_keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "keys", "expected"),
    [
        ("shown [@a; @b].", ["a"], "shown [@b]."),
        ("shown [@a; @b].", ["a", "b"], "shown."),
        ("shown [@a] and [@b].", ["b"], "shown [@a] and."),
        ("shown ([@a]).", ["a"], "shown."),
        ("shown. [@a]", ["a"], "shown."),
        ("shown [@a].", ["c"], "shown [@a]."),
    ],
)
def test_drop_keys_tidies_the_sentence(sentence: str, keys: list[str], expected: str) -> None:
    source = f"Before [@a; @b]. Then it was {sentence} After [@a; @b]."
    span = next(s for s in sentence_spans(source) if s.text.startswith("Then"))
    assert (
        drop_keys(source, span, keys) == f"Before [@a; @b]. Then it was {expected} After [@a; @b]."
    )


def test_drop_keys_refuses_a_stale_span() -> None:
    span = SentenceSpan(0, 12, "Shown [@a].")
    with pytest.raises(ValueError, match="no longer holds"):
        drop_keys("Other text [@a].", span, ["a"])


# --- content words -----------------------------------------------------------------------------


def test_content_words_stem_and_drop_citations_and_stopwords() -> None:
    words = content_words("The retrievers and retrieval [@retrieve2020] retrieve it.")
    assert words == ["retriev", "retriev", "retriev"]
    assert content_words("Generated generation generators") == ["gener"] * 3
    assert content_words("embedding embeddings embedded embed") == ["embed"] * 4
    assert content_words("1,000 queries and 12.50% and three") == ["1000", "query", "12.5", "3"]
    assert content_words("We propose a new approach", drop_framing=True) == []


# --- evidence_passages -------------------------------------------------------------------------


def test_evidence_passages_gathers_distinct_texts_in_order() -> None:
    paper = Paper("p", "Dense Retrieval", abstract="First sentence here. Dense retrieval.")
    digest = Digest(
        "p",
        (
            NodeDigest(
                "n1", "A summary.", (Evidence("a quote", 0), Evidence("first sentence here", 1))
            ),
            NodeDigest("n2", "A summary.", (Evidence("A quote", 2),)),
        ),
    )
    passages = evidence_passages(paper, digest)
    assert [(p.kind, p.text) for p in passages] == [
        ("quote", "a quote"),
        ("quote", "first sentence here"),
        ("summary", "A summary."),
        ("abstract", "Dense retrieval."),
    ]
    assert all(p.key == "p" for p in passages)
    assert [p.kind for p in evidence_passages(paper, None)] == ["abstract", "abstract"]
    with pytest.raises(ValueError, match="digest"):
        evidence_passages(paper, Digest("other"))


# --- the support check -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checker() -> SupportChecker:
    return SupportChecker(
        {key: evidence_passages(paper, DIGESTS.get(key)) for key, paper in PAPERS.items()}
    )


def test_a_paraphrase_of_a_quote_is_supported(checker: SupportChecker) -> None:
    result = checker.check(
        "Training with in-batch negatives keeps dense retriever training efficient.", "dpr"
    )
    assert result.supported
    assert result.score >= DEFAULT_THRESHOLD
    assert result.passage is not None and result.passage.key == "dpr"
    assert "content words found" in result.reason


def test_a_claim_about_another_paper_is_not_supported(checker: SupportChecker) -> None:
    sentence = "Sampling several responses and measuring their consistency exposes hallucinations."
    assert checker.check(sentence, "selfcheck").supported
    wrong = checker.check(sentence, "rag")
    assert not wrong.supported
    assert wrong.score < DEFAULT_THRESHOLD


def test_an_invented_number_is_not_supported_whatever_the_score(checker: SupportChecker) -> None:
    right = checker.check("RAG reaches 44.5 exact match on Natural Questions.", "rag")
    wrong = checker.check("RAG reaches 51.3 exact match on Natural Questions.", "rag")
    assert right.supported
    assert not wrong.supported
    assert wrong.score >= DEFAULT_THRESHOLD  # the words alone would have passed
    assert wrong.reason == "number 51.3 not in the paper's evidence"
    several = checker.check("RAG reaches 51.3 exact match with 9% fewer 1,500 calls.", "rag")
    assert several.reason == "numbers 51.3, 9%, 1,500 not in the paper's evidence"


@pytest.mark.parametrize(
    "sentence",
    [
        "RAG reaches about 44 exact match on Natural Questions.",  # rounded
        "RAG reaches 44.5% exact match on Natural Questions.",  # with a unit
        "In 2021, RAG reached 44.5 exact match on Natural Questions.",  # a year is not a result
        "Like GPT-4, RAG reaches 44.5 exact match on Natural Questions with BM25 and T5.",
        "RAG sets a new state of the art on 3 open-domain QA tasks.",  # "three" in the paper
        "RAG sets a new state of the art on two or three open-domain QA tasks.",
    ],
)
def test_numbers_that_do_not_count_against_a_claim(checker: SupportChecker, sentence: str) -> None:
    assert checker.check(sentence, "rag").supported, checker.check(sentence, "rag").reason


@pytest.mark.parametrize(
    "sentence",
    [
        "RAG reaches 46 exact match on Natural Questions.",
        "RAG reaches 44.9 exact match on Natural Questions.",
        "RAG sets a new state of the art on 4 open-domain QA tasks.",
        "RAG reaches 44.5 exact match, 5x better than BM25.",
    ],
)
def test_numbers_that_do(checker: SupportChecker, sentence: str) -> None:
    result = checker.check(sentence, "rag")
    assert not result.supported
    assert result.reason.startswith("number")


def test_citation_groups_in_the_sentence_are_ignored(checker: SupportChecker) -> None:
    plain = "RAG couples a parametric generator with a non-parametric memory."
    cited = "RAG couples a parametric generator [@rag; @x2023] with a non-parametric memory [@rag]."
    assert checker.check(cited, "rag") == checker.check(plain, "rag")


def test_a_key_without_passages_is_not_supported(checker: SupportChecker) -> None:
    result = checker.check("Dense retrievers outperform BM25.", "unknown2024")
    assert result == result.__class__("unknown2024", 0.0, False, None, "no evidence for this paper")


def test_a_sentence_with_nothing_to_check_is_supported(checker: SupportChecker) -> None:
    result = checker.check("See also [@dpr].", "dpr")
    assert result.supported
    assert result.reason == "no content words to check"


def test_the_threshold_is_the_callers(checker: SupportChecker) -> None:
    passages = {key: evidence_passages(paper, DIGESTS.get(key)) for key, paper in PAPERS.items()}
    sentence = "Dense retrievers generalise poorly outside their training domain."
    score = checker.check(sentence, "dpr").score
    assert 0 < score < DEFAULT_THRESHOLD
    assert SupportChecker(passages, threshold=score).check(sentence, "dpr").supported


def test_best_quote_is_in_the_papers_own_words(checker: SupportChecker) -> None:
    quote = checker.best_quote("RAG gets 44.5 exact match on Natural Questions [@rag].", "rag")
    assert quote == "RAG achieves 44.5 exact match on Natural Questions"
    # the digest summary matches this sentence best, but it is the model's words, not the paper's
    sentence = "RAG conditions a BART generator on passages retrieved by a DPR retriever."
    assert checker.check(sentence, "rag").passage.kind == "summary"
    assert checker.best_quote(sentence, "rag") != sentence
    assert checker.best_quote("Nothing in common whatsoever.", "rag") == PAPERS["rag"].title
    assert checker.best_quote("Anything.", "unknown2024") is None
    summaries_only = SupportChecker({"s": [Passage("s", "A model summary.", "summary")]})
    assert summaries_only.best_quote("A model summary.", "s") is None


def test_unsupported_claims_lists_the_failing_keys(checker: SupportChecker) -> None:
    source = (
        "Dense retrieval matters. RAG couples a parametric generator with a non-parametric "
        "memory [@rag; @colbert; @unknown]. Dual encoders beat BM25 by 11 points of top-20 "
        "accuracy [@dpr]. ColBERT is 500x faster than BERT rerankers [@colbert]."
    )
    found = unsupported_claims(source, checker)
    assert [(claim.sentence.text[:20], keys) for claim, keys in found] == [
        ("RAG couples a parame", ("colbert", "unknown")),
        ("ColBERT is 500x fast", ("colbert",)),
    ]


# --- calibration -------------------------------------------------------------------------------


def _digest(key: str, *nodes: tuple[str, str, tuple[str, ...]]) -> Digest:
    return Digest(
        key,
        tuple(
            NodeDigest(node, summary, tuple(Evidence(q, i) for i, q in enumerate(quotes)))
            for node, summary, quotes in nodes
        ),
    )


PAPERS = {
    "dpr": Paper(
        "dpr",
        "Dense Passage Retrieval for Open-Domain Question Answering",
        abstract=(
            "Open-domain question answering depends on retrieving a few relevant passages "
            "from a large collection. Sparse lexical methods such as BM25 have long been the "
            "default choice for this step. We show that dense representations learned by a "
            "dual encoder from question and passage pairs are enough for retrieval. Our dense "
            "retriever beats a strong BM25 baseline by 11 points of top-20 accuracy and "
            "improves end-to-end exact match on Natural Questions and TriviaQA."
        ),
    ),
    "colbert": Paper(
        "colbert",
        "ColBERT: Efficient Passage Search via Contextualized Late Interaction over BERT",
        abstract=(
            "Neural passage retrieval for search and question answering has improved with "
            "fine-tuned BERT rankers, which are accurate but expensive, since every "
            "query-document pair passes through the full model. ColBERT encodes queries and "
            "documents independently into bags of token-level embeddings and compares them "
            "with a cheap late interaction step. Because document embeddings can be computed "
            "offline, ColBERT cuts query latency by two orders of magnitude while matching the "
            "effectiveness of BERT cross-encoders on MS MARCO passage ranking."
        ),
    ),
    "rag": Paper(
        "rag",
        "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
        abstract=(
            "Large pre-trained language models store factual knowledge in their parameters, "
            "but cannot easily revise it or show where it comes from. We combine a parametric "
            "seq2seq generator with a non-parametric memory, a dense vector index of Wikipedia "
            "accessed by a neural retriever. The retriever and generator are fine-tuned "
            "jointly. RAG sets a new state of the art on three open-domain QA tasks and "
            "generates more specific, diverse and factual text than a BART baseline."
        ),
    ),
    "beir": Paper(
        "beir",
        "BEIR: A Heterogeneous Benchmark for Zero-shot Evaluation of Information Retrieval",
        abstract=(
            "We present a benchmark of 18 retrieval datasets from diverse domains and tasks to "
            "test retrieval models out of domain. In zero-shot evaluation, BM25 remains a "
            "robust baseline, while many dense retrieval models generalise poorly to unseen "
            "domains. Re-ranking and late interaction models generalise best, at a higher "
            "computational cost."
        ),
    ),
    "selfcheck": Paper(
        "selfcheck",
        "Detecting Hallucinations in Large Language Models by Sampling Consistency",
        abstract=(
            "Large language models often produce fluent but non-factual statements. We "
            "propose a black-box method that samples several responses to the same prompt "
            "and measures their agreement: facts the model knows are stated consistently, "
            "while hallucinated facts diverge across samples. On a set of generated "
            "biographies, the method flags 72% of non-factual sentences at a precision of "
            "0.81, without access to the model's probabilities or an external database."
        ),
    ),
    "lostmiddle": Paper(
        "lostmiddle",
        "Lost in the Middle: How Language Models Use Long Contexts",
        abstract=(
            "We study how language models use information in long input contexts. On "
            "multi-document question answering and key-value retrieval, performance is "
            "highest when the relevant information appears at the beginning or the end of "
            "the context, and degrades significantly when it sits in the middle. Extended "
            "context models are not better at using their context."
        ),
    ),
}

DIGESTS = {
    "dpr": _digest(
        "dpr",
        (
            "dense",
            "A dual-encoder dense retriever trained on question-passage pairs outperforms BM25.",
            (
                "our dense retriever outperforms a strong Lucene-BM25 system by 11 points in "
                "top-20 passage retrieval accuracy",
                "using in-batch negatives makes training efficient and effective",
                "the passage encoder is applied to all 21 million Wikipedia passages offline",
            ),
        ),
        (
            "negatives",
            "Hard negatives mined with BM25 improve the dense retriever.",
            ("adding one BM25 hard negative passage per question improves retrieval",),
        ),
    ),
    "colbert": _digest(
        "colbert",
        (
            "late",
            "ColBERT's late interaction keeps BERT quality at a fraction of the cost.",
            (
                "each query embedding is matched against all document embeddings with a "
                "MaxSim operator and the maxima are summed",
                "ColBERT is over 170 times faster than BERT-based rerankers",
            ),
        ),
    ),
    "rag": _digest(
        "rag",
        (
            "rag",
            "RAG conditions a BART generator on passages retrieved by a DPR retriever.",
            (
                "RAG models generate more specific, diverse and factual language than a "
                "state-of-the-art parametric-only seq2seq baseline",
                "RAG achieves 44.5 exact match on Natural Questions",
                "the non-parametric memory can be replaced to update the model's knowledge "
                "without retraining",
            ),
        ),
    ),
    "beir": _digest(
        "beir",
        (
            "eval",
            "BEIR shows dense retrievers generalise poorly out of domain, unlike BM25.",
            (
                "BM25 is a strong baseline that outperforms many dense models in the "
                "zero-shot setting",
                "dense retrieval models trained on MS MARCO underperform on entity-centric "
                "and argument retrieval tasks",
            ),
        ),
    ),
    "selfcheck": _digest(
        "selfcheck",
        (
            "hallu",
            "Sampling consistency detects hallucinated sentences without model internals.",
            (
                "if the model has knowledge of a concept, sampled responses are likely to be "
                "similar and contain consistent facts",
                "the approach reaches an AUC-PR of 0.93 for detecting non-factual sentences",
            ),
        ),
    ),
    "lostmiddle": _digest(
        "lostmiddle",
        (
            "long",
            "Models use the start and end of a long context better than its middle.",
            (
                "performance can degrade by more than 20% when relevant information is in "
                "the middle of the input context",
                "extended-context models are not necessarily better at using their input context",
            ),
        ),
    ),
}

# (sentence, key): a reader of the survey would accept these.
SUPPORTED = [
    (
        "Dual-encoder retrievers trained on question-passage pairs beat BM25 by 11 points of "
        "top-20 accuracy [@dpr].",
        "dpr",
    ),
    ("Training with in-batch negatives keeps dense retriever training efficient [@dpr].", "dpr"),
    ("Mining hard negatives with BM25 further improves dense retrieval [@dpr].", "dpr"),
    (
        "In 2020, dense retrieval overtook sparse lexical methods on open-domain question "
        "answering [@dpr].",
        "dpr",
    ),
    (
        "ColBERT encodes queries and documents separately into token-level embeddings and "
        "scores them with a MaxSim late-interaction operator [@colbert].",
        "colbert",
    ),
    (
        "Late interaction cuts query latency by two orders of magnitude compared with BERT "
        "cross-encoders [@colbert].",
        "colbert",
    ),
    ("ColBERT is more than 170 times faster than BERT rerankers [@colbert].", "colbert"),
    (
        "RAG couples a parametric generator with a non-parametric memory, a dense index of "
        "Wikipedia [@rag].",
        "rag",
    ),
    (
        "Retrieval-augmented models generate more specific and factual text than a "
        "parametric-only BART baseline [@rag].",
        "rag",
    ),
    ("RAG reaches 44.5 exact match on Natural Questions [@rag].", "rag"),
    ("RAG reaches about 44 exact match on Natural Questions [@rag].", "rag"),
    (
        "Swapping the retrieval index updates what the model knows without retraining [@rag].",
        "rag",
    ),
    (
        "Retrieval-augmented generation grounds language model outputs in retrieved "
        "knowledge [@rag].",
        "rag",
    ),
    ("BM25 remains a robust zero-shot baseline across 18 datasets [@beir].", "beir"),
    (
        "Dense retrievers trained on MS MARCO generalise poorly to entity-centric and "
        "argument retrieval [@beir].",
        "beir",
    ),
    (
        "Several works benchmark the zero-shot generalisation of retrieval models [@beir].",
        "beir",
    ),
    (
        "Sampling several responses and measuring their consistency exposes hallucinated "
        "facts [@selfcheck].",
        "selfcheck",
    ),
    (
        "This black-box check flags 72% of non-factual sentences with a precision of 0.81 "
        "[@selfcheck].",
        "selfcheck",
    ),
    (
        "Hallucination detection can work without access to token probabilities [@selfcheck].",
        "selfcheck",
    ),
    (
        "Language models use information in the middle of long contexts poorly [@lostmiddle].",
        "lostmiddle",
    ),
    (
        "Performance drops by more than 20% when the relevant passage sits in the middle of "
        "the input [@lostmiddle].",
        "lostmiddle",
    ),
    (
        "Extending the context window does not make models better at using it [@lostmiddle].",
        "lostmiddle",
    ),
    (
        "Offline precomputation of document embeddings is what makes ColBERT fast [@colbert].",
        "colbert",
    ),
    ("Jointly fine-tuning the retriever and the generator is central to RAG [@rag].", "rag"),
    (
        "Sparse methods like BM25 were long the default first-stage retriever for "
        "open-domain QA [@dpr].",
        "dpr",
    ),
    (
        "Answers are most accurate when the relevant document comes at the beginning or the "
        "end of the prompt [@lostmiddle].",
        "lostmiddle",
    ),
    (
        "Several studies examine dense passage retrieval for question answering [@dpr; @colbert].",
        "dpr",
    ),
    (
        "Several studies examine dense passage retrieval for question answering [@dpr; @colbert].",
        "colbert",
    ),
]

# (sentence, key): the cited paper does not say this.
UNSUPPORTED = [
    # another paper's content
    (
        "ColBERT encodes queries and documents separately into token-level embeddings and "
        "scores them with a MaxSim late-interaction operator [@dpr].",
        "dpr",
    ),
    (
        "RAG couples a parametric generator with a non-parametric memory, a dense index of "
        "Wikipedia [@colbert].",
        "colbert",
    ),
    (
        "Sampling several responses and measuring their consistency exposes hallucinated "
        "facts [@rag].",
        "rag",
    ),
    (
        "Language models use information in the middle of long contexts poorly [@beir].",
        "beir",
    ),
    (
        "Swapping the retrieval index updates what the model knows without retraining [@dpr].",
        "dpr",
    ),
    (
        "Late interaction cuts query latency by two orders of magnitude compared with BERT "
        "cross-encoders [@rag].",
        "rag",
    ),
    (
        "Hallucination detection can work without access to token probabilities [@lostmiddle].",
        "lostmiddle",
    ),
    (
        "Dense retrievers trained on MS MARCO generalise poorly to entity-centric and "
        "argument retrieval [@selfcheck].",
        "selfcheck",
    ),
    (
        "Training with in-batch negatives keeps dense retriever training efficient [@colbert].",
        "colbert",
    ),
    (
        "Extending the context window does not make models better at using it [@selfcheck].",
        "selfcheck",
    ),
    (
        "Reinforcement learning from human feedback reduces toxic generations in dialogue "
        "agents [@rag].",
        "rag",
    ),
    (
        "Knowledge graphs improve multi-hop reasoning over structured tables [@beir].",
        "beir",
    ),
    ("Dense retrievers generalise poorly outside their training domain [@dpr].", "dpr"),
    ("BM25 hard negatives improve dense retriever training [@beir].", "beir"),
    (
        "ColBERT generalises best among neural retrievers in zero-shot evaluation [@colbert].",
        "colbert",
    ),
    (
        "Retrieval from long contexts degrades when evidence sits in the middle [@selfcheck].",
        "selfcheck",
    ),
]

# (sentence, key): the numbers are not the paper's.
INVENTED_NUMBERS = [
    (
        "Dual-encoder retrievers beat BM25 by 25 points of top-20 accuracy [@dpr].",
        "dpr",
    ),
    ("RAG reaches 51.3 exact match on Natural Questions [@rag].", "rag"),
    ("BM25 remains a robust zero-shot baseline across 24 datasets [@beir].", "beir"),
    (
        "This black-box check flags 85% of non-factual sentences [@selfcheck].",
        "selfcheck",
    ),
    ("ColBERT is 500x faster than BERT rerankers [@colbert].", "colbert"),
    (
        "Performance drops by 45% when the relevant passage sits in the middle of the input "
        "[@lostmiddle].",
        "lostmiddle",
    ),
    (
        "The passage encoder indexes 35 million Wikipedia passages offline [@dpr].",
        "dpr",
    ),
    (
        "RAG improves exact match on TriviaQA by 7.2 points over the closed-book model [@rag].",
        "rag",
    ),
]
UNSUPPORTED += INVENTED_NUMBERS


def test_calibration_precision_and_recall(checker: SupportChecker) -> None:
    """Precision and recall of "supported" at DEFAULT_THRESHOLD on the calibration set."""
    accepted = [checker.check(s, k).supported for s, k in SUPPORTED]
    rejected = [not checker.check(s, k).supported for s, k in UNSUPPORTED]
    true_positive = sum(accepted)
    false_positive = len(rejected) - sum(rejected)
    precision = true_positive / (true_positive + false_positive)
    recall = true_positive / len(accepted)
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall


def test_calibration_every_invented_number_is_caught(checker: SupportChecker) -> None:
    for sentence, key in INVENTED_NUMBERS:
        result = checker.check(sentence, key)
        assert not result.supported and result.reason.startswith("number"), sentence
