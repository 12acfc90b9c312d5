"""The skeleton stage: clustering the library, the outline it builds from the model's answers,
and the fragment/merge calls against the hermetic server (with failures on purpose)."""

from __future__ import annotations

import asyncio
import json
import random
import re

import pytest
from fakeclient import fake_client
from fakellm import FakeLLMServer
from pydantic import ValidationError
from scripted_skeleton import MERGE_TASK, MERGED, OUTLINE_TASK, answer, fragment

from surveygen.errors import BudgetExceeded, LLMParseError, LLMRejectedError
from surveygen.llm.client import LLMClient
from surveygen.llm.ledger import Ledger, price_table
from surveygen.models import Outline, OutlineNode, Paper
from surveygen.outline_md import parse_outline_md
from surveygen.outline_tree import IdAllocator, NodeDraft, OutlineAnswer, outline_from_answer
from surveygen.stages.render import render_outline_md
from surveygen.stages.skeleton import (
    MIN_CLUSTER_SIZE,
    ONE_PROMPT_PAPERS,
    Fragment,
    build_skeleton,
    cluster_papers,
    cluster_terms,
    concatenate_fragments,
    fragment_leaves,
    fragment_text,
    leaf_shares,
    paper_briefs,
    skeleton_calls,
)
from surveygen.text import approx_tokens

TOPIC = "retrieval-augmented language models"

# --- libraries --------------------------------------------------------------------------------

RAG = [
    (
        "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
        "We combine a pre-trained sequence-to-sequence generator with a dense vector index of "
        "Wikipedia accessed by a neural retriever. The retrieved passages condition generation, "
        "and the model sets the state of the art on open-domain question answering.",
    ),
    (
        "REALM: Retrieval-Augmented Language Model Pre-Training",
        "We augment language model pre-training with a latent knowledge retriever that attends "
        "over documents from a large corpus. The retriever is trained without supervision by "
        "backpropagating through a retrieval step over millions of documents.",
    ),
    (
        "Improving Language Models by Retrieving from Trillions of Tokens",
        "We enhance auto-regressive language models by conditioning on document chunks "
        "retrieved from a database of trillions of tokens. The retrieval-enhanced transformer "
        "matches much larger models while using far fewer parameters.",
    ),
    (
        "Leveraging Passage Retrieval with Generative Models for Open Domain Question Answering",
        "Generative models for open-domain question answering benefit from retrieving "
        "supporting passages. Fusion-in-decoder processes each retrieved passage independently "
        "in the encoder and combines them in the decoder, scaling to many passages.",
    ),
    (
        "Self-RAG: Learning to Retrieve, Generate, and Critique through Self-Reflection",
        "We train a language model that retrieves passages on demand and reflects on the "
        "retrieved passages and its own generations using special reflection tokens, improving "
        "factuality and citation accuracy of retrieval-augmented generation.",
    ),
    (
        "Dense Passage Retrieval for Open-Domain Question Answering",
        "Passage retrieval for open-domain question answering can use dense representations "
        "alone. A dual-encoder retriever trained on question and passage pairs outperforms "
        "BM25 in top-20 passage retrieval accuracy.",
    ),
    (
        "Atlas: Few-shot Learning with Retrieval Augmented Language Models",
        "Atlas is a retrieval-augmented language model that learns knowledge-intensive tasks "
        "from very few training examples. Jointly pre-training the retriever and the language "
        "model gives strong few-shot question answering.",
    ),
    (
        "In-Context Retrieval-Augmented Language Models",
        "Prepending retrieved documents to the input of a frozen language model, without "
        "changing its architecture, improves language modelling. A simple off-the-shelf "
        "retriever already gives large gains for in-context retrieval-augmented generation.",
    ),
]
MORE_RAG = [
    (
        "Lost in the Middle: How Language Models Use Long Contexts",
        "We study how language models use retrieved documents in long input contexts for "
        "multi-document question answering. Accuracy is highest when the relevant passage is at "
        "the start or the end of the context and drops when it is in the middle.",
    ),
    (
        "Active Retrieval Augmented Generation",
        "Instead of retrieving once, the language model retrieves documents again whenever the "
        "upcoming sentence contains low-confidence tokens, using that sentence as the query for "
        "retrieval-augmented generation of long answers.",
    ),
    (
        "RAGAS: Automated Evaluation of Retrieval Augmented Generation",
        "We propose a reference-free evaluation of retrieval-augmented generation pipelines "
        "that scores whether the retrieved passages are relevant, whether the language model "
        "answers faithfully to them, and the quality of the answer.",
    ),
    (
        "ColBERT: Efficient Passage Search via Contextualized Late Interaction",
        "ColBERT encodes the question and each passage separately with a language model and "
        "scores them with a cheap late interaction, making neural passage retrieval efficient "
        "enough for large corpora.",
    ),
]
SPEECH = [
    (
        "Conformer: Convolution-augmented Transformer for Speech Recognition",
        "Convolutions capture local and self-attention global dependencies of an audio "
        "sequence; combining them gives a speech recognition encoder with a low word error rate "
        "on LibriSpeech.",
    ),
    (
        "wav2vec 2.0: Self-Supervised Learning of Speech Representations",
        "Masking raw speech audio in a latent space and solving a contrastive task over "
        "quantized representations learns speech features that need very little transcribed "
        "audio for fine-tuning.",
    ),
    (
        "Robust Speech Recognition via Large-Scale Weak Supervision",
        "Speech recognition models trained on hundreds of thousands of hours of multilingual "
        "audio transcripts from the web transcribe speech robustly, zero-shot, across accents "
        "and noise.",
    ),
    (
        "Listen, Attend and Spell",
        "An attention-based encoder-decoder transcribes speech utterances to characters: a "
        "pyramidal recurrent listener encodes filter bank spectra of the audio and a speller "
        "emits characters.",
    ),
    (
        "SpecAugment: Data Augmentation for Automatic Speech Recognition",
        "Warping the filter bank features of speech audio and masking blocks of frequency "
        "channels and time steps is a simple augmentation that lowers the word error rate of "
        "speech recognition.",
    ),
    (
        "Deep Speech 2: End-to-End Speech Recognition in English and Mandarin",
        "An end-to-end neural network trained on thousands of hours of transcribed audio "
        "replaces hand-engineered speech recognition pipelines for English and Mandarin speech.",
    ),
]
PROTEINS = [
    (
        "Highly Accurate Protein Structure Prediction with AlphaFold",
        "A neural network that reasons over multiple sequence alignments and pairwise residue "
        "features predicts protein structure with atomic accuracy, even without a similar "
        "known structure.",
    ),
    (
        "Protein Structures and Interactions from a Three-Track Neural Network",
        "Reasoning jointly over protein sequence, residue distances and three-dimensional "
        "coordinates predicts the structure of proteins and protein complexes.",
    ),
    (
        "Atomic-Level Protein Structure Prediction with a Language Model",
        "Protein language models scaled to billions of parameters learn enough to predict "
        "protein structure from a single amino acid sequence, far faster than alignment-based "
        "methods.",
    ),
    (
        "Protein Structure Prediction Using Potentials from Deep Learning",
        "A network predicts distances between pairs of residues; a potential built from them is "
        "minimised by gradient descent to fold the protein chain into its structure.",
    ),
    (
        "De Novo Protein Design by Deep Network Hallucination",
        "Starting from random amino acid sequences, sampling in sequence space guided by a "
        "structure prediction network yields new protein designs that fold as predicted.",
    ),
    (
        "Protein Sequence Design with ProteinMPNN",
        "A message passing network designs amino acid sequences for given protein backbones and "
        "recovers native sequences more often than physics-based protein design.",
    ),
]


def make_papers(texts: list[tuple[str, str]], prefix: str = "p") -> list[Paper]:
    return [
        Paper(key=f"{prefix}{i}", title=title, abstract=abstract, year=2020)
        for i, (title, abstract) in enumerate(texts)
    ]


def noise_library(n: int, seed: int = 0) -> list[Paper]:
    """Papers made of words drawn at random from one vocabulary: no subjects to find."""
    rng = random.Random(seed)
    words = [f"term{i}" for i in range(400)]
    return [
        Paper(
            key=f"r{i}",
            title=" ".join(rng.choices(words, k=8)),
            abstract=" ".join(rng.choices(words, k=120)),
        )
        for i in range(n)
    ]


def as_sets(clusters: list[list[int]]) -> list[set[int]]:
    return [set(c) for c in clusters]


def assert_partition(clusters: list[list[int]], n: int) -> None:
    flat = [i for c in clusters for i in c]
    assert sorted(flat) == list(range(n))  # every index exactly once
    assert all(c == sorted(c) for c in clusters)
    assert clusters == sorted(clusters, key=lambda c: (-len(c), c[0]))


# --- clustering -------------------------------------------------------------------------------


def test_two_subjects_are_two_clusters() -> None:
    papers = make_papers(RAG + SPEECH)
    clusters = cluster_papers(papers)
    assert clusters == [list(range(8)), list(range(8, 14))]


def test_three_subjects_are_three_clusters_whatever_their_order() -> None:
    texts = PROTEINS + RAG + SPEECH
    clusters = cluster_papers(make_papers(texts))
    assert_partition(clusters, len(texts))
    assert as_sets(clusters) == [set(range(6, 14)), set(range(6)), set(range(14, 20))]


def test_interleaved_subjects_are_found_and_indices_sorted() -> None:
    order = [*range(8), *range(8, 14)]
    random.Random(3).shuffle(order)
    texts = [(RAG + SPEECH)[i] for i in order]
    clusters = cluster_papers(make_papers(texts))
    assert_partition(clusters, len(texts))
    assert as_sets(clusters) == [
        {pos for pos, i in enumerate(order) if i < 8},
        {pos for pos, i in enumerate(order) if i >= 8},
    ]


def test_one_subject_is_one_cluster() -> None:
    papers = make_papers(RAG + MORE_RAG)
    assert len(papers) >= 2 * MIN_CLUSTER_SIZE  # precondition: large enough to split
    assert cluster_papers(papers) == [list(range(12))]


def test_structureless_library_that_fits_one_prompt_is_one_cluster() -> None:
    assert cluster_papers(noise_library(40)) == [list(range(40))]


def test_structureless_library_too_large_for_one_prompt_is_split() -> None:
    papers = noise_library(ONE_PROMPT_PAPERS + 20)
    clusters = cluster_papers(papers, max_clusters=4)
    assert 2 <= len(clusters) <= 4
    assert all(len(c) >= MIN_CLUSTER_SIZE for c in clusters)
    assert_partition(clusters, len(papers))


@pytest.mark.parametrize("n", [1, 2, 3, 2 * MIN_CLUSTER_SIZE - 1])
def test_tiny_libraries_are_one_cluster(n: int) -> None:
    texts = (RAG + SPEECH)[:n] if n <= 8 else RAG[:5] + SPEECH[: n - 5]
    assert cluster_papers(make_papers(texts)) == [list(range(n))]


def test_no_papers_no_clusters() -> None:
    assert cluster_papers([]) == []


def test_papers_without_words_are_one_cluster() -> None:
    papers = [Paper(key=f"k{i}", title="The", abstract="of and the") for i in range(12)]
    assert cluster_papers(papers) == [list(range(12))]


@pytest.mark.parametrize("max_clusters", [0, 1])
def test_max_clusters_below_two_keeps_one_cluster(max_clusters: int) -> None:
    papers = make_papers(RAG + SPEECH)
    assert cluster_papers(papers, max_clusters=max_clusters) == [list(range(14))]


def test_max_clusters_bounds_the_number_of_clusters() -> None:
    papers = make_papers(PROTEINS + RAG + SPEECH)
    clusters = cluster_papers(papers, max_clusters=2)
    assert len(clusters) == 2
    assert_partition(clusters, len(papers))


def test_clustering_is_deterministic() -> None:
    papers = noise_library(ONE_PROMPT_PAPERS + 20, seed=5)
    assert cluster_papers(papers) == cluster_papers(papers)


def test_small_groups_join_their_nearest_group() -> None:
    # Two protein papers among speech papers are too few for a group of their own.
    texts = RAG + SPEECH + PROTEINS[:2]
    clusters = cluster_papers(make_papers(texts))
    assert_partition(clusters, len(texts))
    assert all(len(c) >= MIN_CLUSTER_SIZE for c in clusters)
    assert len(clusters) == 2


def test_cluster_terms_name_each_group() -> None:
    papers = make_papers(PROTEINS + RAG + SPEECH)
    clusters = cluster_papers(papers)
    terms = cluster_terms(papers, clusters)
    assert [t[0] for t in terms] == ["retrieval", "protein", "speech"]
    assert all(len(t) == 6 for t in terms)
    assert "speech" not in terms[0] and "protein" not in terms[2]


def test_cluster_terms_of_wordless_papers_are_empty() -> None:
    papers = [Paper(key=f"k{i}", title="The") for i in range(3)]
    assert cluster_terms(papers, [[0, 1], [2]]) == [[], []]


@pytest.mark.parametrize(
    ("n", "max_clusters", "calls"),
    [
        *[(0, 8, 1), (3, 8, 1), (9, 8, 1), (10, 8, 3), (14, 8, 3), (15, 8, 4), (40, 8, 9)],
        *[(1000, 8, 9), (1000, 3, 4), (1000, 1, 1)],
    ],
)
def test_skeleton_calls_bound(n: int, max_clusters: int, calls: int) -> None:
    assert skeleton_calls(n, max_clusters=max_clusters) == calls


@pytest.mark.parametrize(
    "texts", [RAG, RAG + SPEECH, PROTEINS + RAG + SPEECH, RAG + MORE_RAG + SPEECH + PROTEINS]
)
def test_skeleton_calls_bounds_the_clusters(texts: list[tuple[str, str]]) -> None:
    clusters = cluster_papers(make_papers(texts))
    calls = 1 if len(clusters) == 1 else len(clusters) + 1
    assert calls <= skeleton_calls(len(texts))


# --- leaf budgets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "total", "shares"),
    [
        ([8, 6, 6], 12, [4, 4, 4]),
        ([8, 6, 6], 5, [2, 2, 1]),
        ([10, 5], 7, [4, 3]),  # one each, then 5 in proportion: 3.33 and 1.67
        ([5, 5], 3, [2, 1]),  # a tie goes to the earlier group
        ([9, 6, 5], 3, [1, 1, 1]),
        ([9, 6, 5], 2, [1, 1, 0]),
        ([0, 0], 4, [2, 2]),
    ],
)
def test_leaf_shares(sizes: list[int], total: int, shares: list[int]) -> None:
    assert leaf_shares(sizes, total) == shares
    assert sum(shares) == total


@pytest.mark.parametrize(
    ("size", "library", "max_sections", "leaves"),
    [(10, 20, 12, 9), (5, 20, 12, 5), (2, 100, 12, 3), (20, 20, 12, 12), (5, 20, 2, 2)],
)
def test_fragment_leaves(size: int, library: int, max_sections: int, leaves: int) -> None:
    assert fragment_leaves(size, library, max_sections) == leaves


# --- the outline built from the model's answer ------------------------------------------------
# build_skeleton turns the model's answer into the outline with outline_from_answer, no ids
# known and a fresh allocator: these pin down what that means for a first outline.


def leaf(title: str, description: str = "What to extract.") -> NodeDraft:
    return NodeDraft(id="", title=title, description=description, children=[])


def section(title: str, *subs: NodeDraft, description: str = "What they share.") -> NodeDraft:
    return NodeDraft(id="", title=title, description=description, children=list(subs))


def draft(*sections: NodeDraft, title: str = "A Survey of RAG") -> OutlineAnswer:
    return OutlineAnswer(title=title, sections=list(sections))


def first_outline(answer: OutlineAnswer, max_sections: int = 10) -> Outline:
    return outline_from_answer(
        answer, allocator=IdAllocator(), known_ids=(), max_leaves=max_sections, fallback_title=TOPIC
    )


def ids_and_titles(outline: Outline) -> list[tuple[str, str]]:
    return [(node.id, node.title) for node, _ in outline.walk()]


def test_ids_are_assigned_in_reading_order() -> None:
    outline = first_outline(
        draft(
            section("Retrievers", leaf("Sparse"), leaf("Dense")),
            section("Evaluation"),
            section("Training", leaf("Joint training")),
        )
    )
    assert ids_and_titles(outline) == [
        ("n1", "Retrievers"),
        ("n2", "Sparse"),
        ("n3", "Dense"),
        ("n4", "Evaluation"),
        ("n5", "Training"),
        ("n6", "Joint training"),
    ]
    assert [n.id for n in outline.leaves()] == ["n2", "n3", "n4", "n6"]
    assert outline.title == "A Survey of RAG"
    assert outline.depth == 2


def test_ids_the_model_invents_are_replaced() -> None:
    answer = draft(
        NodeDraft(id="n9", title="Retrievers", description="", children=[leaf("Dense")]),
        NodeDraft(id="intro", title="Evaluation", description="", children=[]),
    )
    assert ids_and_titles(first_outline(answer)) == [
        ("n1", "Retrievers"),
        ("n2", "Dense"),
        ("n3", "Evaluation"),
    ]


def test_titles_and_descriptions_are_stripped() -> None:
    outline = first_outline(
        draft(
            section("  Retrievers \n", leaf(" Dense ", "  Compare encoders.  "), description=" D ")
        )
    )
    top = outline.sections[0]
    assert (top.title, top.description) == ("Retrievers", "D")
    assert (top.children[0].title, top.children[0].description) == ("Dense", "Compare encoders.")


def test_descriptions_are_one_line_so_outline_md_reads_back_the_same_outline() -> None:
    hostile = "Compare encoders.\n# Not a heading\n<!-- x -->\n\n\n\nThen   contrast them."
    outline = first_outline(draft(section("Retrievers", leaf("Dense", hostile))))
    dense = outline.sections[0].children[0]
    assert dense.description == "Compare encoders. # Not a heading <!-- x --> Then contrast them."
    assert parse_outline_md(render_outline_md(outline)) == outline


def test_empty_titles_are_dropped_without_gaps_in_ids() -> None:
    outline = first_outline(
        draft(
            section("   ", leaf("Orphan of a blank section")),
            section("Retrievers", leaf(""), leaf("Dense"), leaf(" \t ")),
            section(""),
            section("Evaluation"),
        )
    )
    assert ids_and_titles(outline) == [("n1", "Retrievers"), ("n2", "Dense"), ("n3", "Evaluation")]


def test_section_whose_subsections_all_have_blank_titles_becomes_a_leaf() -> None:
    outline = first_outline(
        draft(section("Retrievers", leaf(""), leaf("  ")), section("Evaluation")), max_sections=2
    )
    assert ids_and_titles(outline) == [("n1", "Retrievers"), ("n2", "Evaluation")]
    assert all(node.is_leaf for node in outline.sections)


@pytest.mark.parametrize(
    ("sections", "max_sections", "expected"),
    [
        # sections without subsections count as one leaf each
        (
            [section("A"), section("B"), section("C"), section("D")],
            3,
            [("n1", "A"), ("n2", "B"), ("n3", "C")],
        ),
        # subsections past the bound are cut, later sections dropped
        (
            [section("A", leaf("a1"), leaf("a2"), leaf("a3"), leaf("a4")), section("B")],
            3,
            [("n1", "A"), ("n2", "a1"), ("n3", "a2"), ("n4", "a3")],
        ),
        # a leaf section uses one slot of the bound before the subsections do
        (
            [section("A"), section("B", leaf("b1"), leaf("b2"), leaf("b3"))],
            3,
            [("n1", "A"), ("n2", "B"), ("n3", "b1"), ("n4", "b2")],
        ),
        # parents do not count, only leaves
        (
            [section("A", leaf("a1")), section("B", leaf("b1")), section("C")],
            3,
            [("n1", "A"), ("n2", "a1"), ("n3", "B"), ("n4", "b1"), ("n5", "C")],
        ),
        # blank titles do not use up the bound
        (
            [section(""), section("A", leaf(""), leaf("a1")), section("B")],
            2,
            [("n1", "A"), ("n2", "a1"), ("n3", "B")],
        ),
    ],
)
def test_max_sections_bounds_the_number_of_leaves(
    sections: list[NodeDraft], max_sections: int, expected: list[tuple[str, str]]
) -> None:
    outline = first_outline(draft(*sections), max_sections=max_sections)
    assert ids_and_titles(outline) == expected
    assert len(outline.leaves()) == max_sections


def test_max_sections_larger_than_the_draft_keeps_everything() -> None:
    outline = first_outline(draft(section("A", leaf("a1"), leaf("a2")), section("B")), 50)
    assert len(outline.leaves()) == 3
    assert len(list(outline.walk())) == 4


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_draft_title_falls_back_to_the_topic(blank: str) -> None:
    assert first_outline(draft(section("A"), title=blank)).title == TOPIC


def test_draft_title_is_stripped_and_preferred_over_the_topic() -> None:
    assert first_outline(draft(section("A"), title="  RAG: A Survey \n")).title == "RAG: A Survey"


@pytest.mark.parametrize("sections", [[], [section(""), section("  ", leaf("a1"))]])
def test_no_sections_is_a_parse_error(sections: list[NodeDraft]) -> None:
    with pytest.raises(LLMParseError, match="no sections"):
        first_outline(draft(*sections))


def test_answer_in_the_old_flat_shape_is_rejected() -> None:
    old = {"title": "T", "sections": [{"title": "A", "description": "", "subsections": []}]}
    with pytest.raises(ValidationError):
        OutlineAnswer.model_validate(old)


# --- fragments and the fallback ---------------------------------------------------------------

PART = Outline(
    "Part 1",
    (
        OutlineNode(
            "n1",
            "Retrievers",
            "How passages are found.",
            (OutlineNode("n2", "Dense", "Compare encoders."), OutlineNode("n3", "Sparse")),
        ),
        OutlineNode("n4", "Evaluation", "Contrast benchmarks."),
    ),
)


def test_fragment_text_is_indented_without_ids() -> None:
    assert fragment_text(PART) == (
        "Title: Part 1\n"
        "- Retrievers: How passages are found.\n"
        "  - Dense: Compare encoders.\n"
        "  - Sparse\n"
        "- Evaluation: Contrast benchmarks."
    )


def test_concatenation_gives_each_fragment_its_share_and_fresh_ids() -> None:
    fragments = [
        Fragment(1, 10, ("dense",), PART),
        Fragment(2, 5, (), Outline("Part 2", (OutlineNode("n1", "Efficiency", "Costs."),))),
    ]
    outline = concatenate_fragments(
        fragments, max_sections=3, allocator=IdAllocator(ids=["n4"]), title=TOPIC
    )
    assert outline.title == TOPIC
    assert ids_and_titles(outline) == [
        ("n5", "Retrievers"),
        ("n6", "Dense"),
        ("n7", "Sparse"),
        ("n8", "Efficiency"),  # the second group keeps its one leaf
    ]
    assert outline.sections[0].description == "How passages are found."


# --- paper_briefs -----------------------------------------------------------------------------


def long_abstract(i: int, sentences: int = 150) -> str:
    return " ".join(
        f"Sentence {j} of paper {i} reports a retrieval result in moderate detail."
        for j in range(sentences)
    )


def library(n: int, *, short: dict[int, str] | None = None) -> list[Paper]:
    short = short or {}
    return [
        Paper(
            key=f"author{i}2021word",
            title=f"Paper number {i} on retrieval-augmented generation",
            year=2000 + i % 25,
            abstract=short.get(i, long_abstract(i)),
        )
        for i in range(n)
    ]


def brief_tokens(brief: dict) -> int:
    return approx_tokens(f"[@{brief['key']}] {brief['title']} ({brief['year']})\n") + approx_tokens(
        brief["abstract"]
    )


@pytest.mark.parametrize(("n", "budget"), [(100, 24_000), (20, 5_000), (7, 3_000)])
def test_many_long_abstracts_fit_the_budget(n: int, budget: int) -> None:
    papers = library(n)
    assert sum(approx_tokens(p.abstract) for p in papers) > 5 * budget  # precondition
    briefs = paper_briefs(papers, budget=budget)
    total = sum(brief_tokens(b) for b in briefs)
    assert total <= budget
    assert total >= 0.8 * budget  # shortened evenly, not far below what fits
    lengths = [approx_tokens(b["abstract"]) for b in briefs]
    assert max(lengths) - min(lengths) <= 25  # evenly


def test_shortened_abstracts_are_prefixes_ending_at_a_sentence() -> None:
    papers = library(50)
    for paper, brief in zip(papers, paper_briefs(papers, budget=10_000), strict=True):
        assert brief["abstract"]
        assert brief["abstract"] != paper.abstract
        assert paper.abstract.startswith(brief["abstract"])
        assert brief["abstract"].endswith(".")


def test_short_abstracts_are_untouched() -> None:
    short = {
        3: "Retrieval helps small models more than large ones.",
        40: "We release a benchmark of 10k multi-hop questions. Baselines lag humans by 30 points.",
        77: "",
    }
    papers = library(100, short=short)
    briefs = paper_briefs(papers, budget=24_000)
    for i, text in short.items():
        assert briefs[i]["abstract"] == text
    assert approx_tokens(briefs[0]["abstract"]) < approx_tokens(papers[0].abstract)


def test_briefs_keep_key_title_and_year_in_order() -> None:
    papers = [
        Paper(key="b2020x", title="Second", year=2020, abstract="Short."),
        Paper(key="a2019y", title="First", abstract="Also short."),
    ]
    assert paper_briefs(papers) == [
        {"key": "b2020x", "title": "Second", "year": 2020, "abstract": "Short."},
        {"key": "a2019y", "title": "First", "year": None, "abstract": "Also short."},
    ]


def test_briefs_of_no_papers_is_empty() -> None:
    assert paper_briefs([]) == []


# --- build_skeleton against the fake server ---------------------------------------------------


def make_client(
    server: FakeLLMServer, ledger: Ledger | None = None, concurrency: int = 4
) -> LLMClient:
    return fake_client(
        server, ledger=ledger, api_key="sk-test-skeleton", concurrency=concurrency, timeout=2.0
    )


def build(
    server: FakeLLMServer,
    papers: list[Paper],
    *,
    max_sections: int = 12,
    allocator: IdAllocator | None = None,
    ledger: Ledger | None = None,
    concurrency: int = 4,
) -> tuple[Outline, list[str]]:
    warnings: list[str] = []

    async def go() -> Outline:
        llm = make_client(server, ledger, concurrency)
        try:
            return await build_skeleton(
                llm,
                TOPIC,
                papers,
                max_sections=max_sections,
                allocator=allocator,
                warn=warnings.append,
            )
        finally:
            await llm.aclose()

    return asyncio.run(go()), warnings


def prompts(server: FakeLLMServer, task: str) -> list[str]:
    return [r.prompt_text for r in server.chat_requests() if task in r.prompt_text]


def keys_in(prompt: str) -> set[str]:
    return set(re.findall(r"\[@([^\]\s]+)\]", prompt))


def titles(outline: Outline) -> list[str]:
    return [node.title for node, _ in outline.walk()]


def expected_titles(answer_json: dict) -> list[str]:
    out: list[str] = []

    def visit(nodes: list[dict]) -> None:
        for node in nodes:
            out.append(node["title"])
            visit(node["children"])

    visit(answer_json["sections"])
    return out


THREE_GROUPS = make_papers(RAG, "rag") + make_papers(SPEECH, "asr") + make_papers(PROTEINS, "fold")


@pytest.fixture
def scripted(fake_llm: FakeLLMServer) -> FakeLLMServer:
    fake_llm.responder = lambda body: answer(body) or "not a skeleton prompt"
    return fake_llm


def test_one_cluster_is_one_call_for_the_whole_outline(scripted: FakeLLMServer) -> None:
    outline, warnings = build(scripted, make_papers(RAG))
    requests = scripted.chat_requests()
    assert len(requests) == 1
    prompt = requests[0].prompt_text
    assert OUTLINE_TASK in prompt and "Scope:" not in prompt and "3 to 8 top-level" in prompt
    assert keys_in(prompt) == {f"p{i}" for i in range(8)}
    assert outline.title == MERGED["title"]
    assert titles(outline) == expected_titles(MERGED)
    assert [node.id for node, _ in outline.walk()] == [f"n{i}" for i in range(1, 8)]
    assert warnings == []


def test_one_fragment_per_cluster_then_one_merge(scripted: FakeLLMServer) -> None:
    outline, warnings = build(scripted, THREE_GROUPS, max_sections=12)
    requests = scripted.chat_requests()
    assert len(requests) == 4  # 3 groups + 1 merge
    assert MERGE_TASK in requests[-1].prompt_text  # the merge comes after every fragment
    fragments = prompts(scripted, OUTLINE_TASK)
    assert len(fragments) == 3
    groups = {}
    for prompt in fragments:
        number = int(re.search(r"papers are group (\d) of 3", prompt).group(1))
        groups[number] = keys_in(prompt)
        assert "1 to 4 top-level" in prompt
    assert groups == {
        1: {f"rag{i}" for i in range(8)},
        2: {f"asr{i}" for i in range(6)},
        3: {f"fold{i}" for i in range(6)},
    }
    assert "frequent terms: speech" in next(p for p in fragments if "group 2 of 3" in p)
    # Leaf limits per fragment: a bit more than each group's share of 12.
    assert "At most 8 sections without subsections" in next(p for p in fragments if "group 1" in p)
    assert "At most 6 sections without subsections" in next(p for p in fragments if "group 3" in p)

    merge = prompts(scripted, MERGE_TASK)[0]
    assert "At most 12 sections without subsections" in merge
    for group in (1, 2, 3):
        assert f"<<<fragment {group}\nTitle: Part {group}\n- Group {group} methods: " in merge
    assert "Fragment 1, from 8 papers" in merge and "Fragment 3, from 6 papers" in merge
    assert "[n" not in merge  # fragments are shown without ids

    assert outline.title == MERGED["title"]
    assert titles(outline) == expected_titles(MERGED)
    assert [node.id for node, _ in outline.walk()] == [f"n{i}" for i in range(1, 8)]
    assert warnings == []


def test_fragments_are_requested_concurrently(scripted: FakeLLMServer) -> None:
    scripted.latency = (0.4, 0.0)
    build(scripted, THREE_GROUPS)
    times = [r.time for r in scripted.chat_requests()]
    assert max(times[:3]) - min(times[:3]) < 0.3  # all three before the first answer
    assert times[3] - max(times[:3]) >= 0.35  # the merge waits for them


@pytest.mark.parametrize("max_sections", [1, 3, 4])
def test_max_sections_bounds_the_merged_outline(scripted: FakeLLMServer, max_sections: int) -> None:
    outline, _ = build(scripted, THREE_GROUPS, max_sections=max_sections)
    assert len(outline.leaves()) == max_sections
    assert titles(outline) == expected_titles(MERGED)[: len(titles(outline))]
    for prompt in prompts(scripted, OUTLINE_TASK):
        limit = int(re.search(r"At most (\d+) sections without", prompt).group(1))
        assert limit <= max_sections


def test_ids_continue_above_a_given_allocator(scripted: FakeLLMServer) -> None:
    outline, _ = build(scripted, THREE_GROUPS, allocator=IdAllocator(ids=["n41"]))
    assert [node.id for node, _ in outline.walk()] == [f"n{i}" for i in range(42, 49)]


def test_a_failing_fragment_is_left_out_with_a_warning(scripted: FakeLLMServer) -> None:
    scripted.reply(r"papers are group 2 of 3", "I cannot outline these papers.")
    outline, warnings = build(scripted, THREE_GROUPS)
    assert titles(outline) == expected_titles(MERGED)
    assert len(warnings) == 1
    assert "group 2 of 3" in warnings[0] and "6 papers" in warnings[0]
    merge = prompts(scripted, MERGE_TASK)[0]
    assert "Title: Part 1" in merge and "Title: Part 3" in merge
    assert "Part 2" not in merge
    assert "Fragments (2)" in merge


def test_a_fragment_with_only_blank_titles_is_left_out(scripted: FakeLLMServer) -> None:
    untitled = {"id": "", "title": " ", "description": "No title.", "children": []}
    blank = {"title": "x", "sections": [untitled]}
    scripted.reply(r"papers are group 3 of 3", json.dumps(blank))
    _, warnings = build(scripted, THREE_GROUPS)
    assert len(warnings) == 1 and "group 3 of 3" in warnings[0]
    assert "no sections" in warnings[0]


def test_every_fragment_failing_is_an_error(scripted: FakeLLMServer) -> None:
    scripted.reply(re.escape(OUTLINE_TASK), "no JSON at all")
    with pytest.raises(LLMParseError):
        build(scripted, THREE_GROUPS)
    assert prompts(scripted, MERGE_TASK) == []


def test_a_failing_merge_falls_back_to_the_fragments_in_order(scripted: FakeLLMServer) -> None:
    scripted.reply(re.escape(MERGE_TASK), "Here is my merged outline, in prose.")
    outline, warnings = build(scripted, THREE_GROUPS, max_sections=12)
    assert len(warnings) == 1 and "merging the 3 group outlines failed" in warnings[0]
    assert outline.title == TOPIC
    parts = [fragment(group, ["x"]) for group in (1, 2, 3)]
    assert titles(outline) == [t for part in parts for t in expected_titles(part)]
    assert [node.id for node, _ in outline.walk()] == [f"n{i}" for i in range(1, 13)]


def test_the_fallback_is_cut_to_max_sections_fairly(scripted: FakeLLMServer) -> None:
    scripted.reply(re.escape(MERGE_TASK), "not json")
    outline, _ = build(scripted, THREE_GROUPS, max_sections=5)
    assert len(outline.leaves()) == 5
    # Shares of 5 leaves for groups of 8, 6 and 6 papers: 2, 2 and 1.
    assert titles(outline) == [
        "Group 1 methods",
        "Group 1 retrievers",
        "Group 1 generators",
        "Group 2 methods",
        "Group 2 retrievers",
        "Group 2 generators",
        "Group 3 methods",
        "Group 3 retrievers",
    ]


def test_a_refused_request_is_not_skipped(scripted: FakeLLMServer) -> None:
    scripted.require_api_key = "sk-another-key"
    with pytest.raises(LLMRejectedError):
        build(scripted, THREE_GROUPS)


def test_a_refused_fragment_stops_the_skeleton_even_after_others_succeeded(
    scripted: FakeLLMServer,
) -> None:
    def refuse_after_this(body: dict) -> str | None:
        scripted.require_api_key = "sk-another-key"  # the key is revoked after one answer
        return answer(body)

    scripted.responder = refuse_after_this
    with pytest.raises(LLMRejectedError):
        build(scripted, THREE_GROUPS, concurrency=1)  # one request at a time
    assert len(prompts(scripted, OUTLINE_TASK)) >= 2  # the second was refused
    assert prompts(scripted, MERGE_TASK) == []


def test_a_refused_merge_is_not_replaced_by_the_fallback(scripted: FakeLLMServer) -> None:
    answered: list[str] = []

    def refuse_after_the_fragments(body: dict) -> str | None:
        answered.append("fragment")
        if len(answered) == 3:
            scripted.require_api_key = "sk-another-key"
        return answer(body)

    scripted.responder = refuse_after_the_fragments
    with pytest.raises(LLMRejectedError):
        build(scripted, THREE_GROUPS)
    assert len(prompts(scripted, MERGE_TASK)) == 1


def test_the_budget_stops_the_skeleton(scripted: FakeLLMServer) -> None:
    ledger = Ledger(price_table({"fake-model": {"input": 1000.0, "output": 1000.0}}), budget=0.01)
    with pytest.raises(BudgetExceeded):
        build(scripted, THREE_GROUPS, ledger=ledger)
    assert scripted.chat_requests() == []


def test_max_sections_below_one_is_refused(scripted: FakeLLMServer) -> None:
    with pytest.raises(ValueError, match="max_sections"):
        build(scripted, make_papers(RAG), max_sections=0)


# --- the scripted answers themselves ----------------------------------------------------------


def body(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def test_scripted_answer_ignores_other_prompts() -> None:
    assert answer(body("Task: rate how relevant each paper is")) is None


def test_scripted_answers_are_valid_outlines() -> None:
    whole = answer(body(f"{OUTLINE_TASK}.\n[@a2020x] Title"))
    group = answer(body(f"{OUTLINE_TASK}.\nthese 5 papers are group 2 of 3\n[@a2020x] T"))
    merged = answer(body(f"{MERGE_TASK}.\n<<<fragment 1\nTitle: Part 1\n>>>"))
    assert whole == merged == json.dumps(MERGED)
    assert OutlineAnswer.model_validate_json(group).title == "Part 2"
    assert all(d["children"] for d in MERGED["sections"][:2])


def test_a_small_context_gets_a_skeleton_prompt_that_fits_it() -> None:
    from surveygen.llm.prompts import render_prompt
    from surveygen.stages.skeleton import skeleton_brief_tokens

    assert skeleton_brief_tokens(32_000, 4_096) == 24_000  # the default is unchanged
    room = skeleton_brief_tokens(8_192, 2_048)
    assert room == 8_192 - 2_048 - 1_500
    prompt = render_prompt(
        "skeleton",
        topic="retrieval",
        papers=paper_briefs(library(60), room),
        group=None,
        max_sections=12,
        max_depth=3,
    )
    sent = sum(approx_tokens(m["content"]) for m in prompt.messages)
    assert sent <= 8_192 - 2_048
