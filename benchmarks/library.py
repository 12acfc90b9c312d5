"""Synthetic paper libraries for the performance benchmark, written as papers.jsonl.

``make_papers(n)`` makes ``n`` papers on one field (``TOPIC``, retrieval-augmented generation
for large language models) split into eight sub-topics, each with its own vocabulary on top
of a shared one, so that the pipeline's clustering (TF-IDF + k-means over title and abstract)
has real structure to find. Paper ``i`` belongs to sub-topic ``subtopic_of(i)``
(``i % len(SUBTOPICS)``). Every paper has a title, authors, a year (2019-2025, never before
its sub-topic took off), a 150-250 word abstract, an arXiv-style id and a citation key; with
``pages`` > 0 it also has a full text of about ``pages * WORDS_PER_PAGE`` words that reads
like text extracted from a PDF: title, authors and abstract, numbered sections with their
headings on lines of their own, paragraphs wrapped at about 90 characters and separated by
blank lines, one results table, and a References list. No two sentences of a paper are the
same, so a sentence-level evidence picker has something real to choose from.

Everything is synthetic: the papers, methods, authors and results do not exist (dataset and
model names are real ones, used only as plausible vocabulary). arXiv ids are syntactically
valid (``YYMM.NNNNN``) but numbered from 90000 up, which no month of arXiv has reached so far;
should one ever collide with a real paper, the match means nothing.

Generation is deterministic: the same ``n``, ``pages`` and ``seed`` give byte-identical
output on every run and platform (``random.Random`` seeded from strings, no hashing of
objects). Paper ``i`` depends only on ``seed`` and the papers before it, so a small library
is a prefix of a larger one with the same seed, and the full text is drawn from its own
generator, so a paper's metadata and abstract are the same with and without ``pages``.

    python benchmarks/library.py OUT.jsonl --papers 200 [--pages 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SUBTOPICS",
    "TOPIC",
    "WORDS_PER_PAGE",
    "main",
    "make_papers",
    "subtopic_of",
    "write_library",
]

TOPIC = "retrieval-augmented generation for large language models"
WORDS_PER_PAGE = 500
FIRST_YEAR, LAST_YEAR = 2019, 2025
ABSTRACT_WORDS = (150, 250)
LINE_WIDTH = 90  # full-text paragraphs are wrapped like text extracted from a PDF


def _items(text: str) -> tuple[str, ...]:
    """The ``;``-separated items of ``text``, stripped (vocabulary is written this way so that
    a list of forty terms takes a few lines instead of forty)."""
    return tuple(item.strip() for item in text.split(";") if item.strip())


@dataclass(frozen=True)
class _Subtopic:
    label: str
    since: int  # the first year a paper of this sub-topic is dated
    names: tuple[str, ...]  # noun phrases naming the sub-topic
    terms: tuple[str, ...]  # its distinctive vocabulary
    problems: tuple[str, ...]  # noun phrases
    ideas: tuple[str, ...]  # verb phrases, third person ("mines hard negatives ...")
    components: tuple[str, ...]  # noun phrases with an article
    findings: tuple[str, ...]  # clauses
    titles: tuple[str, ...]  # title-case noun phrases
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]  # quality measures, higher is better
    baselines: tuple[str, ...]  # noun phrases with an article


def _subtopic(label: str, since: int, **fields: str) -> _Subtopic:
    return _Subtopic(label=label, since=since, **{k: _items(v) for k, v in fields.items()})


# fmt: off
_SUBTOPICS = (
    _subtopic(
        "dense retrieval", 2019,
        names="dense passage retrieval; dense retrieval; learned dense retrieval; "
        "embedding-based retrieval",
        terms="dual encoders; bi-encoders; passage embeddings; query embeddings; contrastive "
        "pretraining; hard negatives; in-batch negatives; false negatives; negative sampling; "
        "the embedding space; the query encoder; the passage encoder; inner-product scores; "
        "the InfoNCE objective; the softmax temperature; synthetic queries; query generation; "
        "domain adaptation; zero-shot transfer; lexical overlap; vocabulary mismatch; sparse "
        "lexical matching; BM25 scores; unsupervised pretraining; random cropping; momentum "
        "encoders; distillation from cross-encoders; multi-vector representations; late "
        "interaction; token-level embeddings; instruction-tuned embedders; asymmetric encoders; "
        "the embedding dimension; Matryoshka embeddings; denoised training labels; a curriculum "
        "of negatives; representation collapse; anisotropic embeddings; mean pooling",
        problems="the vocabulary mismatch between short queries and long passages; the "
        "scarcity of labelled query-passage pairs outside MS MARCO; false negatives among mined "
        "hard negatives; the poor zero-shot transfer of dual encoders to specialised domains; "
        "the anisotropy of passage embeddings; the instability of contrastive training with "
        "small batches",
        ideas="mines hard negatives from a periodically refreshed embedding index; pretrains "
        "the dual encoder on contrastive pairs built by random cropping; generates synthetic "
        "queries for unlabelled passages and filters them by round-trip consistency; distils "
        "token-level late-interaction scores into a single-vector dual encoder; denoises mined "
        "negatives with a cross-encoder before contrastive training; adapts the passage encoder "
        "to a new domain without any labelled queries; follows a curriculum from in-batch "
        "negatives to harder mined negatives; aligns query and passage embeddings with a "
        "temperature-scaled InfoNCE objective",
        components="a shared-weight dual encoder; an asymmetric bi-encoder with a lightweight "
        "query tower; a momentum-updated passage encoder; a cross-encoder teacher; a synthetic "
        "query generator; a multi-vector late-interaction head; a negative-mining scheduler; a "
        "mean-pooled sentence encoder",
        findings="in-batch negatives alone leave a large gap to supervised cross-encoders; "
        "roughly a third of mined hard negatives are in fact relevant passages; lexical overlap "
        "still explains most zero-shot failures of dense retrievers; larger embedding "
        "dimensions help less than cleaner negatives; dense retrievers trained only on MS MARCO "
        "transfer poorly to biomedical and legal queries; contrastive pretraining closes most "
        "of the gap to BM25 on entity-centric questions",
        titles="Hard-Negative Mining for Dense Passage Retrieval; Contrastive Pretraining of "
        "Dual Encoders; Zero-Shot Dense Retrieval with Synthetic Queries; Denoising Negatives "
        "in Dense Retriever Training; Domain Adaptation of Embedding-Based Retrievers; "
        "Distilling Late Interaction into Single-Vector Retrievers; Curriculum Learning for "
        "Dense Retrievers; Isotropic Passage Embeddings for Open-Domain Question Answering",
        datasets="MS MARCO; BEIR; Natural Questions; TREC-COVID; MIRACL; FiQA",
        metrics="Recall@20; nDCG@10; MRR@10; top-20 accuracy",
        baselines="a BM25 baseline; a supervised dual encoder; an unsupervised contrastive "
        "retriever; the strongest single-vector baseline",
    ),
    _subtopic(
        "reranking", 2019,
        names="passage reranking; neural reranking; LLM-based reranking; second-stage ranking",
        terms="cross-encoders; rerankers; listwise ranking; pairwise comparisons; pointwise "
        "relevance scores; relevance judgments; candidate lists; ranked permutations; sliding "
        "windows over candidates; first-stage candidates; second-stage rescoring; ranking "
        "cascades; position bias in ranking prompts; the initial ordering; score calibration; "
        "reciprocal rank fusion; margin ranking losses; listwise distillation; setwise "
        "prompting; tournament-style comparisons; bubble-sort passes; query-passage pairs; "
        "relevance labels; graded relevance; teacher rankings; permutation generation; rank "
        "aggregation; ranking consistency; top-k truncation; reranking depth; relevance "
        "feedback; pseudo-relevance feedback; ranking prompts; comparison budgets; rerank "
        "latency; ranking entropy; precision at the head of the list; ordinal labels; "
        "preference pairs; intransitive preferences",
        problems="the quadratic cost of pairwise comparisons between candidates; the "
        "sensitivity of LLM rerankers to the initial order of candidates; the cost of scoring "
        "hundreds of candidates with a cross-encoder; the miscalibration of pointwise relevance "
        "scores across queries; the limited context of listwise rerankers; the lack of graded "
        "relevance labels for training rerankers",
        ideas="reranks candidates with a listwise prompt over overlapping sliding windows; "
        "distils the permutations of a large LLM reranker into a compact cross-encoder; "
        "replaces pairwise comparisons with a setwise tournament that needs far fewer calls; "
        "calibrates pointwise relevance scores so that they can be thresholded across queries; "
        "fuses first-stage and second-stage scores with a learned reciprocal rank fusion; "
        "debiases listwise rankings by aggregating over shuffled candidate orders; stops "
        "reranking early once the head of the list is stable; trains the reranker on graded "
        "relevance labels produced by an LLM judge",
        components="a listwise LLM reranker; a distilled cross-encoder; a setwise comparison "
        "module; a score calibration layer; a learned rank-fusion head; a permutation-averaging "
        "decoder; an early-stopping controller for reranking; a pairwise preference model",
        findings="listwise rerankers are highly sensitive to the order in which candidates "
        "are presented; most of the reranking gain comes from the top twenty candidates; a "
        "distilled cross-encoder recovers nearly all of the teacher's ranking quality at a "
        "fraction of the cost; pointwise scores are poorly calibrated across queries; reranking "
        "beyond depth one hundred rarely changes the final answer; pairwise preferences of LLM "
        "rerankers are often intransitive",
        titles="Listwise Reranking with Large Language Models; Efficient Setwise Passage "
        "Reranking; Distilling LLM Rankers into Cross-Encoders; Calibrated Relevance Scores for "
        "Reranking; Order-Robust Listwise Ranking; Learned Rank Fusion for Retrieval Pipelines; "
        "Early Stopping for Neural Reranking Cascades; Graded Relevance Supervision for "
        "Rerankers",
        datasets="TREC-DL 2019; TREC-DL 2020; MS MARCO; BEIR; Robust04; NovelEval",
        metrics="nDCG@10; MRR@10; MAP@100",
        baselines="a monolithic cross-encoder; a pointwise LLM reranker; the first-stage "
        "ranking alone; a sliding-window listwise reranker",
    ),
    _subtopic(
        "long context versus retrieval", 2022,
        names="long-context language models versus retrieval; long-context modelling; "
        "retrieval for long inputs; context-length extension",
        terms="long-context models; context windows; context length; positional encodings; "
        "rotary position embeddings; position interpolation; attention sinks; the "
        "lost-in-the-middle effect; needle-in-a-haystack tests; evidence position; middle "
        "positions; distractor documents; chunking strategies; chunk size; full-document "
        "inputs; context compression; soft prompts; gist tokens; token budgets; extended "
        "contexts; long documents; book-length inputs; truncation; recurrent memory; "
        "segment-level recurrence; context utilization; prompt length; 128K-token windows; "
        "effective context length; long-range dependencies; attention dilution; summaries of "
        "chunks; hierarchical reading; context ordering; prefix caching; compressed memories; "
        "length generalization; long-input fine-tuning; synthetic long-context data; retrieval "
        "heads",
        problems="the drop in accuracy when relevant evidence sits in the middle of a long "
        "context; the gap between the advertised and the effective context length; the cost "
        "of attending over hundreds of thousands of tokens; the choice between feeding a whole "
        "document and retrieving a few chunks; the dilution of attention over many distractor "
        "documents; the poor length generalization of models trained on short sequences",
        ideas="compresses retrieved chunks into a small set of gist tokens before generation; "
        "decides per query whether to read the full document or retrieve a few chunks; "
        "reorders retrieved passages so that the most relevant ones sit at the edges of the "
        "context; extends the context window with position interpolation and a short "
        "long-input fine-tuning stage; locates retrieval heads inside the model and uses them "
        "to select evidence; reads book-length inputs hierarchically, summarizing chunks before "
        "answering; trains on synthetic long-context data in which the answer position is "
        "uniformly distributed; caches the prefix of long documents so that repeated queries "
        "cost little",
        components="a gist-token compressor; a retrieve-or-read router; a position-aware "
        "passage reorderer; an interpolated rotary position encoding; a chunk summarizer; a "
        "segment-level recurrent memory; a retrieval-head selector; a prefix cache for long "
        "documents",
        findings="accuracy follows a U-shaped curve over the position of the relevant passage; "
        "retrieval with a short context matches a 128K-token window at a fraction of the cost; "
        "the effective context length of most models is well below their advertised window; "
        "adding retrieved chunks beyond a few thousand tokens mainly adds distractors; "
        "long-context models still benefit from retrieval when the corpus exceeds the window; "
        "chunk size matters more than the number of chunks",
        titles="Retrieval or Long Context for Question Answering; Mitigating the "
        "Lost-in-the-Middle Effect; Compressing Retrieved Context into Gist Tokens; Position "
        "Interpolation Meets Retrieval; Hierarchical Reading of Book-Length Inputs; Deciding "
        "When to Read the Whole Document; The Effective Context Length of Language Models; "
        "Recurrent Memory for Long-Document Question Answering",
        datasets="LongBench; NarrativeQA; QuALITY; Qasper; RULER; InfiniteBench",
        metrics="F1; accuracy; ROUGE-L",
        baselines="a 128K-token long-context model; naive truncation to the context window; "
        "top-k chunk retrieval; a full-document prompt",
    ),
    _subtopic(
        "evaluation benchmarks", 2020,
        names="evaluation of retrieval-augmented generation; RAG evaluation; benchmarking of "
        "retrieval-augmented systems; attribution evaluation",
        terms="benchmarks; evaluation protocols; automatic metrics; human evaluation; "
        "annotators; inter-annotator agreement; LLM-as-a-judge evaluation; judge models; "
        "scoring rubrics; leaderboards; test suites; data contamination; answer correctness; "
        "faithfulness; groundedness; attribution; citation precision; citation recall; "
        "claim-level verification; entailment models; natural language inference; "
        "reference-free metrics; correlation with human judgments; Kendall's tau; Spearman "
        "correlation; unanswerable questions; abstention; adversarial test cases; error "
        "taxonomies; diagnostic categories; fine-grained labels; long-form answers; "
        "counterfactual robustness; noise robustness; negative rejection; information "
        "integration; meta-evaluation; evaluation cost; judge bias; verbosity bias",
        problems="the weak correlation between lexical overlap metrics and human judgments "
        "of long-form answers; the cost of human evaluation of attribution; the contamination "
        "of popular test sets in pretraining data; the lack of diagnostic benchmarks that "
        "separate retrieval errors from generation errors; the bias of LLM judges toward longer "
        "answers; the absence of unanswerable questions in existing benchmarks",
        ideas="scores each claim of an answer against its cited passages with an entailment "
        "model; builds a diagnostic benchmark that separates retrieval failures from "
        "generation failures; measures citation precision and citation recall for long-form "
        "answers; calibrates an LLM judge against a small set of human annotations; generates "
        "adversarial test cases that probe noise robustness and negative rejection; estimates "
        "data contamination by probing models with perturbed test questions; meta-evaluates "
        "automatic metrics against fine-grained human labels; cuts evaluation cost by "
        "selecting a small, representative subset of test cases",
        components="a claim-level entailment scorer; a diagnostic test suite; a calibrated "
        "LLM judge; a citation verification module; an adversarial question generator; a "
        "contamination detector; a meta-evaluation protocol; a human annotation interface",
        findings="lexical overlap metrics correlate poorly with human judgments of "
        "faithfulness; LLM judges prefer longer answers regardless of their correctness; most "
        "systems cite passages that only partially support their claims; a small calibrated "
        "judge agrees with annotators almost as often as annotators agree with each other; "
        "models rarely abstain on unanswerable questions; retrieval errors account for fewer "
        "failures than commonly assumed",
        titles="A Diagnostic Benchmark for Retrieval-Augmented Generation; Measuring Citation "
        "Quality in Long-Form Answers; Calibrating LLM Judges for Faithfulness; Claim-Level "
        "Attribution Evaluation; Adversarial Test Suites for RAG Robustness; Detecting "
        "Benchmark Contamination in Retrieval Tasks; Meta-Evaluating Groundedness Metrics; "
        "Unanswerable Questions as a Test of Abstention",
        datasets="ALCE; ASQA; ELI5; RGB; CRUD-RAG; ExpertQA",
        metrics="citation recall; citation precision; answer correctness",
        baselines="ROUGE-based evaluation; an uncalibrated LLM judge; an off-the-shelf NLI "
        "scorer; exact-match scoring",
    ),
    _subtopic(
        "efficiency and indexing", 2019,
        names="efficient retrieval and indexing; index compression; low-latency retrieval "
        "serving; scalable vector search",
        terms="approximate nearest neighbour search; HNSW graphs; product quantization; "
        "scalar quantization; binary codes; inverted file indexes; IVF partitions; index size; "
        "memory footprint; query latency; throughput; GPU kernels; CPU-only serving; "
        "billion-scale corpora; index sharding; disk-based indexes; caching of retrieval "
        "results; KV-cache reuse; token pruning; embedding compression; dimensionality "
        "reduction; bits per dimension; speedups; request batching; serving cost; early exit; "
        "speculative retrieval; adaptive retrieval frequency; skipped retrieval calls; cluster "
        "centroids; graph traversal; search recall; quantization error; codebooks; residual "
        "compression; index build time; incremental index updates; memory bandwidth; tail "
        "latency; time to first token",
        problems="the memory footprint of billion-scale vector indexes; the tail latency of "
        "graph-based nearest neighbour search; retrieving at every decoding step even when the "
        "model already knows the answer; the loss of recall caused by aggressive quantization; "
        "the cost of rebuilding an index when the corpus changes; the overhead of re-encoding "
        "long retrieved contexts for every query",
        ideas="compresses passage embeddings with residual product quantization learned "
        "jointly with the retriever; retrieves only when the model's uncertainty about the "
        "next tokens exceeds a threshold; reuses the KV cache of frequently retrieved passages "
        "across queries; prunes the HNSW graph so that queries touch fewer nodes; updates the "
        "index incrementally without a full rebuild; speculates on the next retrieval while "
        "the generator is still decoding; shards the index across machines and routes each "
        "query to a few shards; learns binary codes that preserve the ranking of a "
        "full-precision retriever",
        components="a jointly trained product quantizer; an uncertainty-triggered retrieval "
        "controller; a passage-level KV cache; a pruned HNSW graph; an incremental index "
        "updater; a speculative retrieval scheduler; a learned shard router; a binary "
        "embedding head",
        findings="four-bit codes preserve almost all of the recall of full-precision "
        "embeddings; more than half of retrieval calls can be skipped without hurting "
        "accuracy; KV-cache reuse cuts the time to first token sharply on repeated passages; "
        "graph pruning lowers tail latency more than mean latency; incremental updates keep "
        "recall within a point of a full rebuild; most serving cost comes from encoding "
        "retrieved passages rather than from the search itself",
        titles="Product Quantization for Retrieval-Augmented Generation; Adaptive Retrieval "
        "Triggered by Uncertainty; Reusing KV Caches of Retrieved Passages; Pruned Graph "
        "Indexes for Low-Latency Search; Incremental Updates for Vector Indexes; Speculative "
        "Retrieval for Faster Decoding; Learned Shard Routing at Billion Scale; Binary "
        "Embeddings for Memory-Efficient Retrieval",
        datasets="MS MARCO; Wikipedia-21M; Natural Questions; BEIR; ClueWeb22",
        metrics="Recall@100; top-20 accuracy; exact match",
        baselines="an uncompressed flat index; an off-the-shelf HNSW index; retrieval at "
        "every decoding step; an IVF-PQ baseline",
    ),
    _subtopic(
        "multimodal retrieval", 2021,
        names="multimodal retrieval-augmented generation; multimodal retrieval; "
        "vision-language retrieval; retrieval over visually rich documents",
        terms="images; visual features; vision-language models; vision encoders; image-text "
        "pairs; image captions; CLIP embeddings; cross-modal retrieval; the modality gap; patch "
        "embeddings; screenshots; charts; infographics; slides; scanned documents; PDF pages; "
        "page layouts; OCR errors; figures; tables rendered as images; visual question "
        "answering; knowledge-based VQA; video frames; video retrieval; audio clips; speech "
        "transcripts; image queries; visual entities; entity recognition in images; multimodal "
        "embeddings; interleaved image-text inputs; visual grounding; region features; image "
        "resolution; visual tokens; multimodal corpora; photo collections; product images; "
        "medical images; pixel-level inputs",
        problems="the modality gap between image and text embeddings; the loss of layout "
        "information when documents are reduced to OCR text; retrieving knowledge about visual "
        "entities that are never named in the query; the cost of encoding high-resolution "
        "pages into visual tokens; the scarcity of training data for knowledge-based visual "
        "question answering; aligning video frames with textual evidence",
        ideas="embeds document pages directly as images and retrieves them without OCR; "
        "bridges the modality gap by projecting image and text embeddings into a shared space; "
        "recognizes visual entities first and retrieves encyclopedic knowledge about them; "
        "interleaves retrieved images and passages in the prompt of a vision-language model; "
        "retrieves video segments by matching frame captions and speech transcripts; "
        "compresses page screenshots into a few visual tokens per region; generates synthetic "
        "visual questions from image-text pairs; reranks retrieved images with a "
        "vision-language cross-encoder",
        components="a page-level visual retriever; a shared image-text embedding space; a "
        "visual entity linker; a vision-language generator; a video segment retriever; a "
        "visual token compressor; a synthetic visual question generator; a vision-language "
        "cross-encoder",
        findings="retrieving page images outperforms OCR-based pipelines on charts and "
        "infographics; the modality gap, not the retriever capacity, limits cross-modal "
        "recall; visual entity recognition errors account for most failures on knowledge-based "
        "VQA; high-resolution inputs help on documents but not on natural images; interleaving "
        "images and passages helps more than captions alone; text-only retrievers miss most "
        "evidence contained in figures",
        titles="OCR-Free Retrieval over Document Screenshots; Closing the Modality Gap in "
        "Cross-Modal Retrieval; Entity-Centric Retrieval for Knowledge-Based VQA; Interleaved "
        "Image-Text Retrieval Augmentation; Retrieval-Augmented Video Question Answering; "
        "Compressing Visual Tokens for Document Retrieval; Synthetic Data for Visual Question "
        "Answering; Multimodal Reranking with Vision-Language Models",
        datasets="OK-VQA; InfoSeek; WebQA; DocVQA; ViDoRe; Encyclopedic-VQA",
        metrics="VQA accuracy; Recall@5; nDCG@5",
        baselines="an OCR-plus-text retrieval pipeline; a caption-based retriever; a frozen "
        "CLIP retriever; a vision-language model without retrieval",
    ),
    _subtopic(
        "knowledge conflicts", 2021,
        names="knowledge-conflict resolution; robustness to noisy retrieval; context "
        "faithfulness; misinformation-robust retrieval augmentation",
        terms="knowledge conflicts; conflicting evidence; counterfactual passages; parametric "
        "memory; contextual knowledge; misinformation; noisy passages; irrelevant passages; "
        "distracting context; robustness to noise; faithfulness to the context; model "
        "stubbornness; outdated facts; temporal drift; knowledge editing; source credibility; "
        "source reliability; contradictions between passages; inter-context conflicts; entity "
        "substitution; perturbed passages; adversarial passages; corpus poisoning; poisoned "
        "documents; trust calibration; confidence estimates; selective abstention; "
        "self-reflection; critique tokens; answer verification; consistency checks; majority "
        "voting over passages; long-tail entities; memorization ratio; evidence aggregation; "
        "credibility scores; fact-checking; claim verification; conflicting sources; stale "
        "knowledge",
        problems="the tendency of language models to ignore retrieved evidence that "
        "contradicts their parametric memory; the vulnerability of retrieval-augmented systems "
        "to poisoned documents; answering correctly when retrieved passages contradict each "
        "other; the degradation caused by irrelevant or distracting passages; updating "
        "outdated knowledge without retraining; deciding when to trust the context and when to "
        "trust parametric knowledge",
        ideas="detects conflicts between parametric memory and retrieved evidence before "
        "answering; weighs passages by estimated source credibility when they contradict each "
        "other; trains the generator to abstain when retrieved passages disagree; filters "
        "poisoned documents by checking the consistency of independently retrieved evidence; "
        "reflects on each retrieved passage with critique tokens before using it; aggregates "
        "answers over subsets of passages and votes for the most consistent one; fine-tunes on "
        "counterfactual passages so that the model follows the context; separates long-tail "
        "questions, where retrieval helps, from popular ones, where it can hurt",
        components="a conflict detector; a credibility-weighted aggregator; an abstention "
        "head; a poisoning filter; a self-reflective critic; an isolate-then-aggregate voting "
        "scheme; a counterfactual fine-tuning set; a popularity-aware retrieval gate",
        findings="models follow counterfactual context more readily for long-tail entities "
        "than for popular ones; a handful of poisoned documents suffices to flip most answers; "
        "irrelevant passages hurt small models far more than large ones; models rarely signal "
        "when retrieved passages contradict each other; retrieval hurts accuracy on popular "
        "entities that the model already knows; credibility signals are largely ignored unless "
        "the model is trained to use them",
        titles="Resolving Knowledge Conflicts between Context and Memory; Defending Retrieval "
        "against Corpus Poisoning; Credibility-Aware Aggregation of Conflicting Evidence; "
        "Learning to Abstain under Contradictory Retrieval; Robustness to Irrelevant Context; "
        "Counterfactual Training for Context Faithfulness; Self-Reflective Filtering of "
        "Retrieved Passages; When Retrieval Hurts Popular Questions",
        datasets="ConflictQA; PopQA; NQ-Swap; RealtimeQA; FaithEval; TriviaQA",
        metrics="accuracy; exact match; F1",
        baselines="vanilla retrieval-augmented generation; a closed-book model; a majority "
        "vote over passages; a prompt-based conflict warning",
    ),
    _subtopic(
        "agents and tool use", 2022,
        names="agentic retrieval and tool use; tool-augmented retrieval; iterative "
        "retrieval for multi-hop reasoning; search-agent training",
        terms="agents; tool use; tool calls; API calls; function calling; planning; "
        "multi-step reasoning; multi-hop questions; iterative retrieval; interleaved retrieval "
        "and reasoning; search engines; web browsing; query rewriting; question decomposition; "
        "sub-questions; reasoning traces; chain-of-thought; action spaces; trajectories; "
        "reinforcement learning; outcome rewards; process rewards; policy optimization; search "
        "calls; deep research; environments; environment feedback; memory modules; reflection; "
        "stopping decisions; tool documentation; trajectory synthesis; rollouts; exploration; "
        "self-ask prompting; bridge entities; evidence chains; long-horizon tasks; browsing "
        "actions; scratchpads",
        problems="deciding when an agent should issue another search call; the compounding "
        "of errors over long multi-step trajectories; the scarcity of supervised trajectories "
        "for training search agents; the cost of many sequential tool calls; reformulating "
        "queries when the first retrieval fails; credit assignment across the steps of a "
        "trajectory",
        ideas="interleaves chain-of-thought reasoning with search calls until the evidence "
        "chain is complete; decomposes multi-hop questions into sub-questions and retrieves for "
        "each; trains a search agent with reinforcement learning from outcome rewards only; "
        "rewrites failed queries based on environment feedback; learns when to stop searching "
        "from the agent's own confidence; synthesizes training trajectories by rolling out a "
        "strong teacher agent; keeps a memory module of visited documents to avoid redundant "
        "tool calls; assigns process rewards to intermediate retrieval steps",
        components="a reasoning-and-search policy; a question decomposer; an outcome-reward "
        "reinforcement learning loop; a query rewriter; a learned stopping head; a trajectory "
        "synthesizer; a document memory module; a process reward model",
        findings="most failures on multi-hop questions start with a poorly chosen first "
        "query; outcome rewards alone suffice to teach agents to search; agents issue many "
        "redundant search calls unless they track visited documents; longer trajectories "
        "improve accuracy only up to a few search calls; question decomposition helps on "
        "compositional questions but hurts on simple ones; errors in bridge entities propagate "
        "through the rest of the trajectory",
        titles="Interleaving Reasoning and Search for Multi-Hop Questions; Reinforcement "
        "Learning for Search Agents; Learning When to Stop Searching; Question Decomposition "
        "for Iterative Retrieval; Trajectory Synthesis for Tool-Using Agents; Memory-Augmented "
        "Search Agents; Process Rewards for Retrieval Steps; Query Rewriting from Environment "
        "Feedback",
        datasets="HotpotQA; 2WikiMultiHopQA; MuSiQue; Bamboogle; FRAMES; GAIA",
        metrics="exact match; F1; accuracy",
        baselines="single-step retrieval; a ReAct-style prompting agent; chain-of-thought "
        "without retrieval; a supervised fine-tuned agent",
    ),
)

SUBTOPICS: tuple[str, ...] = tuple(s.label for s in _SUBTOPICS)

# Vocabulary of the field as a whole, shared by every sub-topic.
_FIELD = _items("retrieval-augmented generation; retrieval augmentation; RAG; "
                "retrieval-augmented language modelling")
_BACKBONES = _items("Llama-2-7B; Llama-2-13B; Llama-3-8B; Mistral-7B; Qwen2-7B; Flan-T5-XL; "
                    "T5-large; Llama-3-70B")
_LOSSES = _items("a contrastive loss; a cross-entropy loss over answer tokens; a KL divergence "
                 "to the teacher distribution; a margin ranking loss; a listwise softmax loss; "
                 "a language-modelling loss on the gold answer; an auxiliary consistency loss")
_COSTS = _items("latency; inference cost; memory use; the number of retrieved tokens; GPU "
                "hours; the number of LLM calls")
_VARIABLES = _items("the number of retrieved passages; the context length; the model size; "
                    "the size of the training set; the size of the corpus; the chunk size")
_CORPORA = _items("December 2018 Wikipedia dump; 2021 Wikipedia snapshot; MS MARCO passage "
                  "collection; C4-derived corpus of 100M passages; Common Crawl subset")
_HYPERS = _items("the loss weight; the temperature; the number of candidates; the chunk size; "
                 "the learning rate; the number of training steps")
_ENTITIES = _items("long-tail; rare; popular; recent; ambiguous")
_SIZES = (("1.3B", 1.3), ("3B", 3), ("7B", 7), ("8B", 8), ("13B", 13), ("70B", 70))
_COUNTS = ("two", "three", "four", "five", "six", "seven")
_VENUES = _items("NeurIPS; ICML; ICLR; ACL; EMNLP; NAACL; SIGIR; TACL; COLING; CIKM; WSDM; "
                 "Findings of ACL; Findings of EMNLP; CVPR")

_GIVEN = _items(
    "Wei; Jing; Xin; Yuki; Hiroshi; Min-jun; Seo-yeon; Priya; Arjun; Ananya; Rahul; Fatima; "
    "Omar; Layla; Yusuf; Sofia; Lucas; Mateo; Camila; Elena; Marco; Giulia; Luca; Anna; Jonas; "
    "Lena; Felix; Clara; Pierre; Camille; Théo; Emma; Liam; Olivia; Noah; Ava; Ethan; Maya; "
    "Daniel; Sarah; David; Hannah; Tomás; Inés; Javier; Lucía; Ivan; Olga; Dmitri; Katarzyna; "
    "Piotr; Aisha; Kwame; Amara; Chidi; Zeynep; Emre; Lars; Ingrid; Mikko; Aino; Linh; Minh; "
    "Siddharth; Kavya; Rohan; Meera; Hao; Yiming; Ruoxi"
)
_FAMILY = _items(
    "Chen; Wang; Li; Zhang; Liu; Yang; Huang; Zhao; Wu; Zhou; Xu; Sun; Ma; Zhu; Hu; Guo; Lin; "
    "He; Kim; Park; Lee; Choi; Tanaka; Suzuki; Sato; Watanabe; Nakamura; Sharma; Patel; Gupta; "
    "Iyer; Reddy; Singh; Nair; Rao; Khan; Haddad; Nasser; Yilmaz; Demir; Rossi; Bianchi; "
    "Ricci; Moretti; Müller; Schmidt; Schneider; Fischer; Weber; Wagner; Dubois; Martin; "
    "Bernard; Lefèvre; García; Fernández; López; Martínez; Silva; Santos; Oliveira; Costa; "
    "Ivanov; Petrov; Novak; Kowalski; Nowak; Jensen; Nielsen; Andersson; Virtanen; Smith; "
    "Johnson; Brown; Miller; Davis; Wilson; Taylor; Anderson; Moore; Clark; Walker; Okafor; "
    "Mensah; Adeyemi; Nguyen; Tran; Pham"
)
# Made-up method names are a prefix and a core, sometimes with a suffix: "ReRankFuse-XL".
_NAME_PREFIXES = _items(
    "Re; Co; Hy; Pro; Uni; Omni; Flex; Syn; Meta; Tri; Neo; Ada; Lumi; Vec; Spar; Deep; Fast; "
    "Lite; Mem; Quo; Para; Evi; Stra; Kno; Cog; Ret; Gen; Fus; Cur; Sel; Atl; Ori; Ver; Nav"
)
_NAME_CORES = _items(
    "Rank; Fuse; Gate; Trieve; Mind; Scope; Lens; Path; Bridge; Forge; Loop; Chain; Graph; "
    "Net; Cache; Sieve; Pilot; Weave; Stack; Link; Span; Seek; Tune; Mix; Guard; Sage; Lift; "
    "Prism; Atlas; Quill"
)
_NAME_SUFFIXES = ("", "", "", "", "", "-XL", "-Lite", "-Pro", "-Zero", "-2", "-R")
# fmt: on

# --------------------------------------------------------------------------------------------
# Sentence templates. <SLOT> is replaced by a value drawn for that slot (see _Writer.slots):
# M the paper's method; F the field; TOPIC its sub-topic; T a term; P a problem; I an idea of
# the method; C a component of it; R a finding; D a dataset; X a metric; B a baseline; AI, AR
# any idea / finding of the sub-topic; OTOPIC, OT, OI, OR, OD the same for another sub-topic
# (one per sentence); numbers: PTS, SCORE, PCT, FACTOR, K, ...; CITE a reference number. A
# template starting with "!" is used at most once per paper (it has few variants).

_ABSTRACT_MOVES: tuple[tuple[str, ...], ...] = (
    (  # 0 context
        "<F> grounds large language models in external evidence, yet <P> remains a central "
        "obstacle in <TOPIC>.",
        "<TOPIC> is a central concern for modern <F> systems, but <P> still limits how far such "
        "systems can go.",
        "A growing body of work on <F> studies <TOPIC>, where <P> is widely recognised as a "
        "key difficulty.",
        "As <F> moves from research prototypes to deployed systems, <TOPIC> has attracted "
        "increasing attention, and <P> has emerged as a recurring problem.",
        "Large language models answer knowledge-intensive questions more reliably when they "
        "can consult retrieved evidence, which makes <TOPIC> a central question for <F>.",
        "Recent progress in <F> has exposed <P> as a major weakness of current approaches to "
        "<TOPIC>.",
    ),
    (  # 1 gap
        "Existing approaches rely on <T> and <T>, which leaves <P> largely unaddressed.",
        "Prior methods typically treat <T> and <T> separately and, as a result, struggle with <P>.",
        "We find that current systems degrade sharply on <D> because <R>.",
        "Little is known about how <T> and <T> interact in practice.",
        "Most previous work studies <T> in isolation, so it remains unclear whether <R>.",
        "A closer look at <D> reveals that <R>.",
    ),
    (  # 2 proposal
        "In this paper we propose <M>, <C> that <I>.",
        "We introduce <M>, a method that <I>.",
        "To address this problem, we present <M>, which <I>.",
        "This work presents <M>, built around <C>; it <I>.",
        "We propose <M>, a simple approach that <I>, and pair it with <C>.",
    ),
    (  # 3 method
        "<M> combines <C> with <C>, and it <I>.",
        "Unlike previous work, <M> <I> instead of relying on <T> alone.",
        "The key idea is to exploit <T>: <M> <I>.",
        "<M> requires no additional annotation and can be added to an existing pipeline built "
        "on <BACKBONE>.",
        "Concretely, <C> handles <T>, while <C> takes care of <T>.",
        "Training uses <LOSS> together with <LOSS>, so that <M> can be learned end to end.",
    ),
    (  # 4 experiments
        "We evaluate <M> on <D>, <D> and <D> against <B> and <B>.",
        "Experiments cover <COUNT> datasets, including <D> and <D>, and generators from "
        "<SIZERANGE> parameters.",
        "We compare <M> with <B>, <B> and <COUNT> other recent methods on <D> and <D>.",
        "Our evaluation spans <COUNT> benchmarks, from <D> to <D>, with <BACKBONE> as the "
        "generator.",
    ),
    (  # 5 results
        "<M> improves <X> by <PTS> points on <D> and by <PTS> points on <D>.",
        "On <D>, it reaches <SCORE> <X>, <PTS> points above <B>.",
        "Compared with <B>, <M> reduces <COST> by <PCT>% while matching its <X>.",
        "The gains are largest on <D> (+<PTS> <X>), where <R>.",
        "<M> outperforms <B> on <OFN> datasets, with an average gain of <PTS> points of <X>.",
        "With <BACKBONE> as the generator, <M> achieves <SCORE> <X> on <D>, a relative "
        "improvement of <PCT>% over <B>.",
        "It is also <FACTOR> times faster than <B> at inference time.",
    ),
    (  # 6 analysis
        "Ablations show that most of the improvement comes from <T>, and that <R>.",
        "Our analysis further reveals that <R>.",
        "We also find that <R>, which suggests that <T> should receive more attention.",
        "Error analysis on <HUND> examples attributes <PCT>% of the remaining failures to <P>.",
    ),
    (  # 7 closing
        "We release code, data and model checkpoints to support future work on <TOPIC>.",
        "These results suggest that <T> should be a first-class design choice in <F> systems.",
        "Overall, our findings point to <T> as a promising direction for <TOPIC>.",
        "We hope <M> will serve as a strong baseline for future research on <TOPIC>.",
        "Taken together, the results show that progress on <P> need not come at the expense of "
        "<X>.",
    ),
)
# Moves an abstract may repeat to reach its length, in the order they are tried.
_ABSTRACT_EXTRA_MOVES = (5, 3, 1, 6, 5, 3)

_INTRO = (
    "!<F> has become a standard way to give large language models access to knowledge that "
    "is missing from, or outdated in, their parameters <CITE>.",
    "!A typical pipeline retrieves a handful of passages from a large corpus and conditions "
    "the generator on them <CITE>.",
    "!Within this line of work, <TOPIC> has received growing attention <CITE>.",
    "Despite this progress, <P> remains a central obstacle <CITE>.",
    "Several studies report that <R> <CITE>.",
    "Prior work has mostly addressed this problem through <T> <CITE> or <T> <CITE>.",
    "These approaches, however, assume that <T> can be trusted, an assumption that rarely "
    "holds on <D>.",
    "The problem is most visible on <D>, where <R>.",
    "In practice, practitioners tune <T> by hand for every new corpus, which is costly and "
    "brittle.",
    "We argue that <P> calls for a different treatment of <T>.",
    "!In this paper we introduce <M>, <C> that <I>.",
    "!The central observation behind <M> is that <R>.",
    "!<M> is simple to implement and adds little overhead to existing <F> pipelines.",
    "On <D>, <M> improves <X> by <PTS> points over <B>, and the gains carry over to <D>.",
    "!Figure 1 illustrates the difference between <M> and <B> on an example from <D>.",
    "Related efforts in <OTOPIC> <CITE> suggest that <OR>, but their lessons have not yet been "
    "applied to <TOPIC>.",
    "The question matters because <T> and <T> appear in most deployed <F> systems today.",
    "A natural remedy is to scale up <T>, but doing so raises <COST> by <PCT>% on <D>.",
    "For example, on <D>, <R>.",
    "Such failures are costly: on <D>, they account for <PCT>% of wrong answers <CITE>.",
    "Existing remedies rely on <T>, which adds to <COST> and helps little when <AR>.",
    "Recent analyses of <T> <CITE> and <T> <CITE> point in the same direction.",
    "A key reason is that current systems rarely model <T> explicitly.",
    "Practitioners often compensate with <T>, at a higher cost in <COST>.",
    "The gap is large: <B> loses <PTS> points of <X> on <D> when we perturb <T>.",
    "!We study this problem in the setting of <TOPIC>, with <BACKBONE> as the generator.",
)
_RELATED = (
    "Work on <OTOPIC> <CITE> has shown that <OR>.",
    "<NAME> <CITE> <OI>, an idea that is complementary to ours.",
    "<FAM> et al. <CITE> propose a method that <OI> and report gains on <OD>.",
    "Closest to our work, <NAME> <CITE> <AI> but does not address <P>.",
    "Our approach differs from <NAME> <CITE> in that it does not require <T>.",
    "Early studies of <TOPIC> relied on <T> and <T> <CITE>.",
    "More recent methods replace <T> with <T> <CITE>.",
    "A parallel line of research studies <OT> in the context of <OTOPIC> <CITE>.",
    "Surveys of <F> <CITE> list <P> among the open problems of the field.",
    "Benchmarks such as <D> and <OD> <CITE> have become standard testbeds for this question.",
    "<FAM> et al. <CITE> observe that <AR>, which motivates our design.",
    "Unlike <NAME> <CITE>, which <AI>, <M> <I>.",
    "<NAME> <CITE> was among the first systems to combine <T> with <OT>.",
    "In <OTOPIC>, <FAM> et al. <CITE> find that <OR>.",
    "The use of <T> for <TOPIC> goes back to <NAME> <CITE>, which was evaluated on <D>.",
    "Methods such as <NAME> <CITE> and <NAME> <CITE> popularised <T>.",
    "<FAM> et al. <CITE> analyse <OT> and conclude that <OR>.",
    "Our work is also related to research on <OT> <CITE>, although the goals differ.",
    "A complementary direction improves <T> directly <CITE>.",
)
_METHOD_SETUP = (
    "!Let q be a query and C a corpus of passages; a retriever returns the top-<K> passages "
    "for q, and a generator produces an answer conditioned on them.",
    "!We write s(q, p) for the relevance score of a passage p and use it to order the candidates.",
    "The goal is to maximise <X> on held-out queries while keeping <COST> close to that of <B>.",
    "We assume access to <T> at training time but not at test time.",
    "!Throughout, passages are split into chunks of <CHUNK> tokens with an overlap of "
    "<OVERLAP> tokens.",
    "The setting covers <TOPIC> as studied in prior work <CITE>, with <T> as the main source "
    "of difficulty.",
    "This formulation makes explicit that <P> arises from <T> rather than from the generator "
    "itself.",
    "!Formally, the answer distribution factorises over the retrieved passages, and the weight "
    "of each passage depends on <T>.",
    "!The retriever is fixed unless stated otherwise, and passages are scored independently.",
    "Given the candidate set, the generator receives the top-<K> passages in order of "
    "decreasing score.",
    "We measure success with <X> and report <COST> separately.",
    "Our setting differs from that of <NAME> <CITE> in that it does not observe <T> at training "
    "time.",
)
_METHOD_CORE = (
    "!<M> consists of <COUNT> components, the most important of which are <C> and <C>.",
    "The first component, <C>, <I>.",
    "<C> is implemented on top of <BACKBONE> and adds <MPARAM> million parameters.",
    "Intuitively, attending to <T> steers the model toward <T> rather than <T>.",
    "This choice follows from the observation that <R>.",
    "Because <C> operates on <T>, it can be precomputed offline for the whole corpus.",
    "The overall procedure is summarized in Algorithm <TAB>, and its cost grows linearly "
    "with <VAR>.",
    "Equation <TAB> defines the score used to combine <T> and <T>.",
    "In contrast to <B>, <M> <I>.",
    "The design of <C> mirrors how work on <OTOPIC> handles <OT> <CITE>.",
    "All hyperparameters of <C> are shared across datasets.",
    "A second component, <C>, <I>, which makes <M> less sensitive to <T>.",
    "We found it important to normalise <T> before combining the two signals; without this "
    "step training diverged in <PCT>% of runs.",
    "!Figure <TAB> gives an overview of <M>.",
    "Each passage is first encoded by <C>, and the resulting representation is passed to <C>.",
    "The output of <C> is a distribution over <T>, which we sharpen with a temperature of <TAU>.",
    "We keep <C> frozen and train only <C>, which leaves <MPARAM> million trainable parameters.",
    "Without access to <T>, <M> falls back to the behaviour of <B>.",
    "The cost of this step is linear in <VAR> and independent of <VAR>.",
    "This is the main difference from <NAME> <CITE>, which <AI>.",
    "A naive implementation would need <FACTOR> times more memory; we avoid this by sharing "
    "<T> across queries.",
    "In our implementation, <C> uses <K> candidates and a hidden size of <HIDDEN>.",
    "The scoring function combines <T> with <T> through a learned gate initialised at <FLOAT>.",
    "As Section 4.3 shows, removing <C> costs <PTS> points of <X>.",
)
_METHOD_TRAINING = (
    "During training, <M> optimises <LOSS>, weighted by λ = <FLOAT>, together with <LOSS>.",
    "We set the temperature to τ = <TAU> and the number of candidates to <K>.",
    "At inference time, <M> retrieves <K> passages per query and truncates each to <CHUNK> tokens.",
    "Training data are drawn from <D>, and we refresh <T> every <STEPS> steps.",
    "The model is optimised with AdamW at a learning rate of <LR> and a linear warm-up over "
    "<STEPS> steps.",
    "At test time no labels are needed: <M> <I>.",
    "Gradients do not flow through <T>, which keeps the memory cost of training at <MEM> GB "
    "per device.",
    "We use <LOSS> as the main objective because it directly targets <T>.",
    "Training examples on which <T> and the gold answer disagree are down-weighted by a "
    "factor of <FLOAT>.",
    "Inference uses greedy decoding with at most <MAXTOK> new tokens per answer.",
    "Both <C> and <C> are trained jointly for <EPOCHS> epochs.",
    "To stabilise training, we warm up <C> alone for <STEPS> steps before adding <LOSS>.",
)
_EXP_SETUP = (
    "We evaluate on <D>, <D> and <D>, following the splits of prior work <CITE>.",
    "!Unless stated otherwise, the generator is <BACKBONE> and the retriever returns the "
    "top-<K> passages.",
    "We report <X> on the development sets and on held-out test sets.",
    "We compare against <B>, <B> and <NAME> <CITE>.",
    "All models are trained for <EPOCHS> epochs with a learning rate of <LR> and a batch size "
    "of <BATCH> on <GPUS> GPUs.",
    "Training <M> takes about <HOURS> GPU hours, roughly <PCT>% more than <B>.",
    "Results are averaged over <SEEDS> random seeds; standard deviations are below <STD> points.",
    "For <D>, we use the <CORPUS> as the retrieval corpus.",
    "!Baselines are re-run with the same retriever and generator to keep the comparison fair.",
    "Hyperparameters are tuned on a held-out split of <D> and kept fixed for all other datasets.",
    "<D> contains <QCOUNT> test questions, of which we use a random sample of <HUND> for human "
    "evaluation.",
    "For <B>, we use the settings recommended by its authors <CITE>.",
)
_EXP_RESULTS = (
    "<M> outperforms <B> by <PTS> points of <X> on <D>.",
    "On <D>, <M> reaches <SCORE> <X>, compared with <SCORE> for <B>.",
    "The improvement is consistent across model sizes from <SIZERANGE> parameters.",
    "Gains on <D> are smaller (<PTS> points), which we attribute to the fact that <R>.",
    "With <BACKBONE> as the generator, the gap to <B> widens to <PTS> points.",
    "The difference is statistically significant under a paired bootstrap test (p = 0.0<DIGIT>).",
    "Compared with <B>, <M> lowers <COST> by <PCT>% at equal <X>.",
    "Interestingly, <B> is competitive on <D> but falls behind by <PTS> points on <D>.",
    "<M> also stays ahead when the number of retrieved passages grows to <K>.",
    "Relative to <NAME> <CITE>, the gain is <PTS> points of <X> on <D>.",
    "<M> is <FACTOR> times faster than <B> at the same <X>.",
    "On <D>, <M> improves <X> <SCOREUP>.",
    "The largest gain, <PTS> points of <X>, is on <D>.",
    "Averaged over all datasets, <M> improves <X> by <PTS> points over <B> and by <PTS> points "
    "over <B>.",
    "<B> and <B> perform similarly on <D>, within <STD> points of each other.",
    "On the hardest subset of <D>, the margin over <B> grows to <PTS> points.",
    "Even with <K> retrieved passages, <B> trails <M> by <PTS> points on <D>.",
    "Results on <D> follow the same trend, with <M> ahead by <PTS> points of <X>.",
    "In terms of <COST>, <M> stays within <PCT>% of <B>.",
)
_EXP_ABLATION = (
    "Removing <C> lowers <X> on <D> by <PTS> points.",
    "Replacing <T> with <T> costs <PTS> points, confirming that <R>.",
    "Without <LOSS>, training is less stable and <X> drops by <PTS> points on average.",
    "Table <TAB> shows that each component contributes, with <C> accounting for <PCT>% of the "
    "total gain.",
    "Varying <HYPER> changes <X> by less than <STD> points, so <M> is robust to this choice.",
    "Freezing <C> during training costs <PTS> points on <D> but halves training time.",
    "Using <K> instead of <K> candidates changes <X> on <D> by <PTS> points.",
    "The variant without <T> falls back to the behaviour of <B>, losing <PTS> points.",
    "Training without <T> reduces <X> on <D> <SCOREDOWN>.",
    "A variant that <AI> instead performs <PTS> points worse on <D>.",
    "Doubling <HYPER> has little effect on <D> but costs <PTS> points on <D>.",
    "Sharing parameters between <C> and <C> lowers <X> by <PTS> points.",
    "The contribution of <C> is largest on <D>, where it adds <PTS> points.",
    "Replacing <BACKBONE> with <BACKBONE> changes the ranking of the variants only on <D>.",
)
_ANALYSIS = (
    "Figure <TAB> plots <X> as a function of <VAR>.",
    "Performance saturates at around <K> passages, beyond which <R>.",
    "A manual inspection of <HUND> errors shows that <PCT>% stem from <P>.",
    "We find that <R>, which is consistent with <FAM> et al. <CITE>.",
    "The effect is strongest for questions about <ENTITY> entities, where <X> rises by <PTS> "
    "points.",
    "To understand why <M> helps, we compare <T> under <M> and under <B>.",
    "On <PCT>% of the questions, <M> and <B> give the same answer; the remaining cases account "
    "for the whole gain.",
    "Scaling the generator from <SIZERANGE> parameters shrinks but does not close the gap.",
    "Qualitatively, <M> tends to rely on <T>, whereas <B> often falls back on <T>.",
    "We also observe that <OR>, a finding that connects our results to work on <OTOPIC> <CITE>.",
    "Case studies in Appendix <APPX> illustrate typical successes and failures of <M>.",
    "The benefit of <M> grows with <VAR>: from <PTS> points at the smallest setting to <PTS> "
    "points at the largest.",
    "Errors of <M> concentrate on <D>, where <PCT>% of the questions involve <T>.",
    "Breaking results down by question type, <M> gains most on questions that involve <T>.",
    "On <D>, <M> corrects <PCT>% of the errors of <B>, while <PCT>% of the correct answers of "
    "<B> become wrong.",
    "The correlation between <T> and <X> is <CORR> across the test questions of <D>.",
    "When we remove <T> from the inputs, <M> loses <PTS> points, compared with <PTS> points "
    "for <B>.",
    "Figure <TAB> shows that <M> is less sensitive than <B> to <VAR>.",
    "We observe the same pattern with <BACKBONE>, although the absolute numbers are <PTS> "
    "points lower.",
    "Across <HUND> manually annotated outputs, annotators preferred <M> in <PCT>% of cases.",
    "Longer questions benefit more: above <QLEN> words, the gain rises to <PTS> points.",
    "The standard deviation of <X> across seeds is <STD> points for <M> and <STD> points for <B>.",
)
_LIMITATIONS = (
    "!Our experiments are limited to English, and <T> may behave differently in other languages.",
    "<M> assumes access to <C>, which is not always available in practice.",
    "The cost of <T> grows with <VAR>, which may limit <M> on very large corpora.",
    "We did not evaluate <M> on <OD>, where <OR>.",
    "Our analysis relies on <X>, which captures only part of answer quality.",
    "We studied generators of up to <SIZE> parameters; larger models may reduce the benefit of "
    "<T>.",
    "!The datasets we use may overlap with the pretraining data of <BACKBONE>, which could "
    "inflate absolute scores.",
    "!Like other <F> systems, <M> can propagate errors present in the retrieved passages.",
    "The hyperparameters of <C> were tuned on <D> and may need adjustment for other domains.",
    "Our evaluation does not cover <ENTITY> entities in depth, and results there may differ.",
    "Compared with <B>, <M> adds <PCT>% to <COST>, which matters in latency-sensitive settings.",
    "We also did not explore combinations of <M> with methods for <OTOPIC>.",
    "Some of our baselines, including <B>, might improve with more tuning than we could afford.",
    "!Human evaluation was limited to <HUND> examples, which leaves room for sampling error.",
)
_CONCLUSION = (
    "!We presented <M>, <C> that <I>.",
    "Across <D> and <D>, <M> improves <X> by up to <PTS> points over <B>.",
    "Our analysis shows that <R>.",
    "Future work could extend <M> to <OTOPIC> and study how <T> and <T> interact.",
    "!We hope that <M> will encourage further research on <P>.",
    "More broadly, our results suggest that <T> should receive attention in the design of <F> "
    "systems.",
    "The approach is simple, and it combines naturally with <T>.",
    "Ablations confirm that <C> is responsible for a large share of the gain.",
    "!We release our code and training data to facilitate follow-up work on <TOPIC>.",
    "!An open question is whether these findings hold for generators larger than <BACKBONE>.",
)
_CONTRIBUTIONS = (
    "In summary, our contributions are as follows.",
    "First, we identify <P> as a key limitation of current approaches to <TOPIC> and quantify "
    "it on <D>.",
    "Second, we propose <M>, which <I>.",
    "Third, we show on <COUNT> datasets that <M> improves <X> by up to <PTS> points over <B>, "
    "and we release our code.",
)
_ORGANISATION = (
    "The rest of this paper is organised as follows.",
    "Section 2 reviews related work, Section 3 describes <M>, Section 4 reports our "
    "experiments, Section 5 analyses the results and Section 6 discusses limitations.",
)
# Always new in practice: used when a section's templates keep giving sentences already used.
_FALLBACK = (
    "In an additional run with <BACKBONE> and <K> passages (seed <BIGINT>), <M> obtained "
    "<SCORE> <X> on <D>.",
    "A repeated measurement on <D> with <K> passages and seed <BIGINT> gave <SCORE> <X> for "
    "<M> and <SCORE> for <B>.",
)


@dataclass(frozen=True)
class _Part:
    heading: str  # "" for a section without subsections; "<M>" is the method's name
    templates: tuple[str, ...]
    share: float  # of the body's words
    cap: int | None = None  # at most this many words; what is cut goes to uncapped parts


# Real papers do not grow their introduction or conclusion with their length: a long paper
# has more method, experiments and analysis.
_SECTIONS: tuple[tuple[str, tuple[_Part, ...]], ...] = (
    ("1 Introduction", (_Part("", _INTRO, 0.14, 1400),)),
    ("2 Related Work", (_Part("", _RELATED, 0.13, 1600),)),
    (
        "3 Method",
        (
            _Part("3.1 Problem Formulation", _METHOD_SETUP, 0.06, 600),
            _Part("3.2 Overview of <M>", _METHOD_CORE, 0.09),
            _Part("3.3 Training and Inference", _METHOD_TRAINING, 0.07, 900),
        ),
    ),
    (
        "4 Experiments",
        (
            _Part("4.1 Experimental Setup", _EXP_SETUP, 0.07, 700),
            _Part("4.2 Main Results", _EXP_RESULTS, 0.10),
            _Part("4.3 Ablation Study", _EXP_ABLATION, 0.07),
        ),
    ),
    ("5 Analysis", (_Part("", _ANALYSIS, 0.15),)),
    ("6 Limitations", (_Part("", _LIMITATIONS, 0.07, 450),)),
    ("7 Conclusion", (_Part("", _CONCLUSION, 0.05, 300),)),
)

_MIN_SECTION_WORDS = 40
_SLOT = re.compile(r"<([A-Z]+)>")


def subtopic_of(index: int) -> int:
    """The sub-topic (an index into ``SUBTOPICS``) of paper ``index`` of any library."""
    return index % len(_SUBTOPICS)


def _ascii_letters(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _method_name(rng: random.Random) -> str:
    return rng.choice(_NAME_PREFIXES) + rng.choice(_NAME_CORES) + rng.choice(_NAME_SUFFIXES)


def _initials(author: str) -> str:
    """ "Min-jun Park" -> "M. Park", as a reference list writes it."""
    given, family = author.rsplit(" ", 1)
    return f"{given[0]}. {family}"


def _wrap(paragraph: str, width: int = LINE_WIDTH) -> str:
    """``paragraph`` broken into lines of at most ``width`` characters at spaces (a word
    longer than that gets a line of its own)."""
    lines: list[str] = []
    line: list[str] = []
    length = -1
    for word in paragraph.split(" "):
        if line and length + 1 + len(word) > width:
            lines.append(" ".join(line))
            line, length = [], -1
        line.append(word)
        length += 1 + len(word)
    if line:
        lines.append(" ".join(line))
    return "\n".join(lines)


def _words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------------------------
# One paper


@dataclass(frozen=True)
class _Meta:
    """What a paper's sentences are about: drawn once, so that a paper stays on its method."""

    topic: _Subtopic
    method: str
    terms: tuple[str, ...]
    problems: tuple[str, ...]
    ideas: tuple[str, ...]
    components: tuple[str, ...]
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    baselines: tuple[str, ...]
    backbone: str


class _Writer:
    """Fills templates for one paper from its own random generator, never repeating a
    sentence."""

    def __init__(self, rng: random.Random, meta: _Meta, references: int = 0) -> None:
        self.rng = rng
        self.meta = meta
        self.references = references
        self.seen: set[str] = set()
        self.recent: list[str] = []  # templates used last, avoided for the next few sentences
        self.memory = 4
        self.spent: set[str] = set()  # "!" templates used
        self.turns: dict[str, int] = {}
        self.other = meta.topic
        self.used: set[str] = set()
        topic = meta.topic
        others = [s for s in _SUBTOPICS if s is not topic]
        self.others = others
        choice = rng.choice
        uniform = rng.uniform
        randint = rng.randint

        def pick(pool: Sequence[str]) -> Callable[[], str]:
            return lambda: self._fresh(pool)

        def terms() -> str:
            return self._fresh(meta.terms if rng.random() < 0.75 else topic.terms)

        self.slots: dict[str, Callable[[], str]] = {
            "M": lambda: meta.method,
            "F": lambda: choice(_FIELD),
            "TOPIC": lambda: choice(topic.names),
            "T": terms,
            "P": lambda: self._turn("P", meta.problems),
            "I": lambda: self._turn("I", meta.ideas),
            "C": lambda: self._turn("C", meta.components),
            "R": pick(topic.findings),
            "D": pick(meta.datasets),
            "X": pick(meta.metrics),
            "B": pick(meta.baselines),
            "AI": pick(topic.ideas),
            "AR": pick(topic.findings),
            "OTOPIC": lambda: choice(self.other.names),
            "OT": lambda: self._fresh(self.other.terms),
            "OI": lambda: choice(self.other.ideas),
            "OR": lambda: choice(self.other.findings),
            "OD": lambda: choice(self.other.datasets),
            "BACKBONE": self._backbone,
            "LOSS": pick(_LOSSES),
            "COST": pick(_COSTS),
            "VAR": pick(_VARIABLES),
            "CORPUS": lambda: choice(_CORPORA),
            "HYPER": lambda: choice(_HYPERS),
            "ENTITY": lambda: choice(_ENTITIES),
            "PTS": lambda: f"{uniform(0.6, 9.8):.1f}",
            "SCORE": lambda: f"{uniform(24.0, 89.0):.1f}",
            "PCT": lambda: str(randint(8, 78)),
            "FACTOR": lambda: f"{uniform(1.3, 8.5):.1f}",
            "K": pick(("3", "5", "10", "20", "50", "100")),
            "CHUNK": lambda: str(choice((100, 128, 200, 256, 512))),
            "OVERLAP": lambda: str(choice((0, 16, 32, 50, 64))),
            "COUNT": lambda: choice(_COUNTS[1:]),
            "OFN": self._of_n,
            "SIZE": lambda: choice(_SIZES)[0],
            "SIZERANGE": self._size_range,
            "TAB": lambda: str(randint(1, 9)),
            "APPX": lambda: choice("ABCDEF"),
            "EPOCHS": lambda: str(randint(1, 10)),
            "STEPS": lambda: str(choice((500, 1000, 2000, 5000, 10000))),
            "LR": lambda: choice(("1e-5", "2e-5", "3e-5", "5e-5", "1e-4", "2e-4")),
            "BATCH": lambda: str(choice((32, 64, 128, 256, 512, 1024))),
            "GPUS": lambda: str(choice((4, 8, 16, 32, 64))),
            "HOURS": lambda: str(randint(12, 900)),
            "MEM": lambda: str(choice((16, 24, 40, 48, 80))),
            "SEEDS": lambda: choice(_COUNTS[1:4]),
            "STD": lambda: f"{uniform(0.1, 0.9):.1f}",
            "HUND": lambda: str(randint(5, 30) * 10),
            "MPARAM": lambda: f"{uniform(0.5, 120.0):.1f}",
            "FLOAT": lambda: f"{uniform(0.05, 0.95):.2f}",
            "TAU": lambda: choice(("0.01", "0.02", "0.05", "0.1")),
            "DIGIT": lambda: str(randint(1, 4)),
            "BIGINT": lambda: str(randint(1000, 999999)),
            "HIDDEN": lambda: str(choice((256, 512, 768, 1024, 2048, 4096))),
            "MAXTOK": lambda: str(choice((32, 64, 128, 256, 512))),
            "QCOUNT": lambda: f"{randint(500, 15000):,}",
            "QLEN": lambda: str(randint(12, 40)),
            "CORR": lambda: f"{uniform(0.1, 0.8):.2f}",
            "SCOREUP": lambda: self._scores(up=True),
            "SCOREDOWN": lambda: self._scores(up=False),
            "FAM": lambda: choice(_FAMILY),
            "NAME": lambda: _method_name(rng),
            "CITE": self._cite,
        }

    def _fresh(self, pool: Sequence[str]) -> str:
        """A value from ``pool`` not yet used in this sentence, if a few draws find one."""
        value = self.rng.choice(pool)
        for _ in range(4):
            if value not in self.used:
                break
            value = self.rng.choice(pool)
        self.used.add(value)
        return value

    def _backbone(self) -> str:
        """Mostly the paper's own generator, never the same one twice in a sentence."""
        if self.meta.backbone not in self.used and self.rng.random() < 0.6:
            self.used.add(self.meta.backbone)
            return self.meta.backbone
        return self._fresh(_BACKBONES)

    def _turn(self, slot: str, pool: Sequence[str]) -> str:
        """The next of ``pool`` in turn, so that a paper's ideas, components and problems
        alternate instead of one of them being repeated."""
        turn = self.turns.get(slot, self.rng.randrange(len(pool)))
        self.turns[slot] = turn + 1
        return pool[turn % len(pool)]

    def _scores(self, *, up: bool) -> str:
        low = self.rng.uniform(24.0, 80.0)
        high = low + self.rng.uniform(0.6, 9.8)
        return f"from {low:.1f} to {high:.1f}" if up else f"from {high:.1f} to {low:.1f}"

    def _of_n(self) -> str:
        total = self.rng.randint(3, 7)
        return f"{_COUNTS[self.rng.randint(2, total) - 2]} of {_COUNTS[total - 2]}"

    def _size_range(self) -> str:
        low, high = sorted(self.rng.sample(_SIZES, 2), key=lambda s: s[1])
        return f"{low[0]} to {high[0]}"

    def _cite(self) -> str:
        if self.rng.random() < 0.7:
            return f"[{self.rng.randint(1, self.references)}]"
        a, b = sorted(self.rng.sample(range(1, self.references + 1), 2))
        return f"[{a}, {b}]"

    def _slot(self, match: re.Match[str]) -> str:
        return self.slots[match.group(1)]()

    def fill(self, template: str) -> str:
        """``template`` with its slots filled and its first letter capitalised."""
        self.used = set()
        self.other = self.rng.choice(self.others)
        text = _SLOT.sub(self._slot, template)
        return text[0].upper() + text[1:]

    def sentence(self, templates: Sequence[str]) -> str:
        """A sentence from ``templates`` that this paper has not used yet, preferably from a
        template not used for the last few sentences ("!" templates only once)."""
        text = None
        for _ in range(30):
            left = [t for t in templates if t not in self.spent]
            if not left:
                break
            template = self.rng.choice([t for t in left if t not in self.recent] or left)
            candidate = self.fill(template.removeprefix("!"))
            if candidate not in self.seen:
                text = candidate
                self.recent = [*self.recent, template][-self.memory :]
                if template.startswith("!"):
                    self.spent.add(template)
                break
        while text is None or text in self.seen:  # practically never needed twice
            text = self.fill(self.rng.choice(_FALLBACK))
        self.seen.add(text)
        return text

    def abstract(self) -> list[str]:
        """The sentences of an abstract: context, gap, proposal, method, experiments, results,
        analysis and closing, with more of the middle moves up to a drawn length of 150-250
        words."""
        low, high = ABSTRACT_WORDS
        self.memory = 100  # no template twice in an abstract
        while True:
            seen = set(self.seen)
            self.recent = []
            target = self.rng.randint(low + 15, high - 20)
            moves = [(move, self.sentence(pool)) for move, pool in enumerate(_ABSTRACT_MOVES)]
            count = sum(_words(s) for _, s in moves)
            for move in _ABSTRACT_EXTRA_MOVES:
                if count >= target:
                    break
                extra = self.sentence(_ABSTRACT_MOVES[move])
                moves.append((move, extra))
                count += _words(extra)
            if low <= count <= high:
                return [s for _, s in sorted(moves, key=lambda m: m[0])]
            self.seen = seen  # too short or too long: draw again

    def paragraphs(self, templates: Sequence[str], budget: int) -> list[str]:
        """Paragraphs of 3-7 sentences from ``templates``, about ``budget`` words in all (at
        least one sentence)."""
        paragraphs: list[str] = []
        current: list[str] = []
        size = self.rng.randint(3, 7)
        words = 0
        while words < budget or not (paragraphs or current):
            sentence = self.sentence(templates)
            current.append(sentence)
            words += _words(sentence)
            if len(current) >= size:
                paragraphs.append(" ".join(current))
                current, size = [], self.rng.randint(3, 7)
        if current:
            paragraphs.append(" ".join(current))
        return paragraphs


def _meta(rng: random.Random, topic: _Subtopic, method: str) -> _Meta:
    return _Meta(
        topic=topic,
        method=method,
        terms=tuple(rng.sample(topic.terms, 16)),
        problems=tuple(rng.sample(topic.problems, 2)),
        ideas=tuple(rng.sample(topic.ideas, rng.randint(2, 3))),
        components=tuple(rng.sample(topic.components, 3)),
        datasets=tuple(rng.sample(topic.datasets, rng.randint(3, 4))),
        metrics=tuple(rng.sample(topic.metrics, 2)),
        baselines=tuple(rng.sample(topic.baselines, 3)),
        backbone=rng.choice(_BACKBONES),
    )


def _title(rng: random.Random, meta: _Meta) -> str:
    phrase = rng.choice(meta.topic.titles)
    method = meta.method
    shape = rng.random()
    if shape < 0.45:
        return f"{method}: {phrase}"
    if shape < 0.6 and " for " not in phrase and "Retrieval-Augmented" not in phrase:
        return f"{method}: {phrase} for Retrieval-Augmented Generation"
    if shape < 0.75:
        return f"{phrase} with {method}"
    if shape < 0.85:
        return f"{method}: Towards {phrase}"
    adjective = rng.choice(("Simple", "Scalable", "Robust", "Efficient", "Principled"))
    return f"{method}: {adjective} and Effective {phrase}"


def _year(rng: random.Random, since: int) -> int:
    """A year from ``since`` to LAST_YEAR, later years likelier (the field grows)."""
    years = list(range(max(since, FIRST_YEAR), LAST_YEAR + 1))
    return rng.choices(years, weights=range(1, len(years) + 1))[0]


def _reference(
    rng: random.Random, number: int, topic: _Subtopic, year: int, titles: set[str]
) -> str:
    """``[12] A. Author, B. Author. Title. In Venue, 2021.``, mostly on the paper's own
    sub-topic, never later than the paper, and with a title not in ``titles`` (which gets
    it)."""
    source = topic if rng.random() < 0.6 else rng.choice(_SUBTOPICS)
    authors = ", ".join(
        _initials(f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}") for _ in range(rng.randint(1, 4))
    )
    title = rng.choice(source.titles)
    if rng.random() < 0.6 or title in titles:
        title = f"{_method_name(rng)}: {title}"
        while title in titles:
            title = f"{_method_name(rng)}: {rng.choice(source.titles)}"
    titles.add(title)
    venue = "arXiv preprint" if rng.random() < 0.2 else f"In {rng.choice(_VENUES)}"
    return f"[{number}] {authors}. {title}. {venue}, {rng.randint(2017, year)}."


def _fixed(writer: _Writer, templates: Sequence[str]) -> str:
    """One paragraph of the given sentences in order."""
    return " ".join(writer.sentence((template,)) for template in templates)


def _table(writer: _Writer) -> str:
    """A results table as PDF extraction gives it: a caption, then one line per row."""
    rng, meta = writer.rng, writer.meta
    metric = rng.choice(meta.metrics)
    datasets = meta.datasets
    best = [rng.uniform(35.0, 88.0) for _ in datasets]
    rows = [f"Method {' '.join(datasets)}"]
    for baseline in (*meta.baselines, _method_name(rng)):
        name = baseline.removeprefix("a ").removeprefix("an ").removeprefix("the ")
        scores = " ".join(f"{b - rng.uniform(0.4, 9.0):.1f}" for b in best)
        rows.append(f"{name[0].upper()}{name[1:]} {scores}")
    rows.append(f"{meta.method} (ours) {' '.join(f'{b:.1f}' for b in best)}")
    caption = (
        f"Table {rng.randint(1, 4)}: {metric} on {', '.join(datasets[:-1])} and "
        f"{datasets[-1]} (seed {rng.randint(1000, 99999)}); best results in bold."
    )
    writer.seen.add(caption)
    return "\n".join([caption, *rows])


def _budgets(body_words: int) -> list[int]:
    """Words for each part of _SECTIONS, in order: its share of ``body_words``, capped, with
    what the caps cut spread over the uncapped parts by their shares."""
    parts = [part for _, section in _SECTIONS for part in section]
    budgets = [part.share * body_words for part in parts]
    spare = 0.0
    for i, part in enumerate(parts):
        if part.cap is not None and budgets[i] > part.cap:
            spare += budgets[i] - part.cap
            budgets[i] = part.cap
    free = sum(part.share for part in parts if part.cap is None)
    for i, part in enumerate(parts):
        if part.cap is None:
            budgets[i] += spare * part.share / free
    return [max(_MIN_SECTION_WORDS, round(b)) for b in budgets]


def _full_text(
    paper: dict, abstract: Sequence[str], meta: _Meta, rng: random.Random, pages: int
) -> str:
    """About ``pages * WORDS_PER_PAGE`` words: the paper's head (title, authors, abstract),
    seven numbered sections and References, blocks separated by blank lines."""
    references = min(44, 10 + pages) + rng.randint(-3, 3)
    writer = _Writer(rng, meta, references)
    writer.seen.update(abstract)
    head = [paper["title"], ", ".join(paper["authors"]), "Abstract", _wrap(paper["abstract"])]
    titles: set[str] = set()
    refs = [_reference(rng, k, meta.topic, paper["year"], titles) for k in range(1, references + 1)]
    body_words = pages * WORDS_PER_PAGE - sum(map(_words, head)) - sum(map(_words, refs))
    budgets = iter(_budgets(body_words))
    blocks = list(head)
    for heading, parts in _SECTIONS:
        blocks.append(heading)
        for part in parts:
            if part.heading:
                blocks.append(part.heading.replace("<M>", meta.method))
            budget = next(budgets)
            if part.templates is _INTRO:
                tail = [_fixed(writer, _CONTRIBUTIONS), _fixed(writer, _ORGANISATION)]
                paragraphs = writer.paragraphs(_INTRO, budget - sum(map(_words, tail))) + tail
                blocks += map(_wrap, paragraphs)
            elif part.templates is _EXP_RESULTS:  # the table follows the paragraph citing it
                table = _table(writer)
                paragraphs = writer.paragraphs(_EXP_RESULTS, budget - _words(table))
                blocks += [_wrap(paragraphs[0]), table, *map(_wrap, paragraphs[1:])]
            else:
                blocks += map(_wrap, writer.paragraphs(part.templates, budget))
    blocks.append("References")
    blocks += refs
    return "\n\n".join(blocks) + "\n"


# --------------------------------------------------------------------------------------------
# Libraries


def _paper(index: int, seed: int, pages: int, names: set[str], ids: set[str]) -> dict:
    """Paper ``index``; ``names`` and ``ids`` hold the method names (as key letters) and arXiv
    ids of the papers before it, and get this paper's."""
    rng = random.Random(f"surveygen-benchmark/{seed}/{index}")
    topic = _SUBTOPICS[subtopic_of(index)]
    method = _method_name(rng)
    tries = 0
    while _ascii_letters(method) in names:
        tries += 1
        method = _method_name(rng) if tries < 50 else f"{_method_name(rng)}{index}"
    names.add(_ascii_letters(method))
    meta = _meta(rng, topic, method)

    authors = [
        f"{rng.choice(_GIVEN)} {family}" for family in rng.sample(_FAMILY, rng.randint(2, 7))
    ]
    year = _year(rng, topic.since)
    month = rng.randint(1, 12)
    arxiv_id = f"{year % 100:02d}{month:02d}.{rng.randint(90000, 99999)}"
    while arxiv_id in ids:
        arxiv_id = f"{year % 100:02d}{month:02d}.{rng.randint(90000, 99999)}"
    ids.add(arxiv_id)
    title = _title(rng, meta)
    abstract = _Writer(rng, meta).abstract()

    paper: dict = {"title": title, "authors": authors, "year": year}
    paper["abstract"] = " ".join(abstract)
    if pages:
        text_rng = random.Random(f"surveygen-benchmark/{seed}/{index}/text")
        paper["text"] = _full_text(paper, abstract, meta, text_rng, pages)
    paper["arxiv_id"] = arxiv_id
    paper["key"] = f"{_ascii_letters(authors[0].rsplit(' ', 1)[1])}{year}{_ascii_letters(method)}"
    return paper


def make_papers(n: int, *, pages: int = 0, seed: int = 0) -> list[dict]:
    """``n`` synthetic papers as papers.jsonl objects (``title``, ``authors``, ``year``,
    ``abstract``, ``text`` when ``pages`` > 0, ``arxiv_id``, ``key``).

    Paper ``i`` is on sub-topic ``subtopic_of(i)``; titles, keys and arXiv ids are distinct.
    With ``pages`` > 0 every paper has a full text of about ``pages * WORDS_PER_PAGE`` words.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if pages < 0:
        raise ValueError(f"pages must be >= 0, got {pages}")
    names: set[str] = set()
    ids: set[str] = set()
    return [_paper(i, seed, pages, names, ids) for i in range(n)]


def write_library(path: Path, n: int, *, pages: int = 0, seed: int = 0) -> Path:
    """Write ``make_papers(n, pages=pages, seed=seed)`` to ``path`` as papers.jsonl (UTF-8,
    one object per line, ``\\n`` line ends) and return ``path``. Parent folders are made."""
    path = Path(path)
    lines = [json.dumps(p, ensure_ascii=False) for p in make_papers(n, pages=pages, seed=seed)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="library.py",
        description=f"Write a synthetic papers.jsonl library on {TOPIC!r} for benchmarks.",
    )
    parser.add_argument("out", type=Path, help="the .jsonl file to write")
    parser.add_argument("--papers", type=int, default=200, help="how many papers (200)")
    parser.add_argument(
        "--pages", type=int, default=0, help="full-text pages per paper (0: abstracts only)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    if args.papers < 0 or args.pages < 0:
        parser.error("--papers and --pages must be >= 0")
    started = time.perf_counter()
    path = write_library(args.out, args.papers, pages=args.pages, seed=args.seed)
    seconds = time.perf_counter() - started
    papers = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    words = sum(_words(p["abstract"]) + _words(p.get("text", "")) for p in papers)
    kind = f"{args.pages}-page full texts" if args.pages else "abstracts only"
    print(
        f"wrote {len(papers)} papers ({kind}; {words:,} words; "
        f"{path.stat().st_size / 1e6:.2f} MB; seed {args.seed}) to {path} in {seconds:.2f} s; "
        f"topic: {TOPIC}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
