"""``surveygen ask``: answer a question over a library of any length, with verified quotes.

The library is read with the same machinery as ``surveygen write`` (arXiv search off), every
paper is split into sentences labelled ``[key sN]``, and the lines go through LLM×MapReduce-V1
(:mod:`surveygen.mapreduce`): each part is mapped to findings {extracted information,
evidence, rationale, answer, confidence}, findings are collapsed while they do not fit one
prompt, and a reduce call writes the answer.

Nothing the model says is taken on trust: every quote must occur in the sentences of the
paper it names (the paper's own words are kept, not the model's), and citations of keys not in
the library are removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from surveygen.citations import find_citations, guard_citations
from surveygen.config import Settings
from surveygen.errors import ConfigError, InputError
from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import Prompt, render_prompt
from surveygen.mapreduce import (
    Chunk,
    Protocol,
    ProtocolStats,
    chunk_lines,
    chunk_room,
    input_budget,
    map_collapse_reduce,
)
from surveygen.models import Paper
from surveygen.text import best_sentence, matched_span, quote_in, split_sentences
from surveygen.ui import UI

__all__ = [
    "AskEvidence",
    "AskFinal",
    "AskFindings",
    "AskQuote",
    "AskResult",
    "ask",
    "ask_protocol",
    "describe_findings",
    "format_answer",
    "library_lines",
    "paper_sentences",
    "run_ask",
    "validate_question",
    "verify_quotes",
]

STAGE = "digest"
MAX_QUESTION_CHARS = 2000
# rapidfuzz partial_ratio a quote needs to count as coming from a sentence (as in digest).
QUOTE_THRESHOLD = 90.0


# ------------------------------------------------------------------------------ answers


class AskEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    sentence: int
    quote: str


class AskFindings(BaseModel):
    """What a map call reads from one part, and what a collapse call merges into."""

    model_config = ConfigDict(extra="forbid")
    extracted_information: str
    evidence: list[AskEvidence]
    rationale: str
    answer: str
    confidence: int


class AskFinal(BaseModel):
    """The reduce call's answer."""

    model_config = ConfigDict(extra="forbid")
    answer: str
    evidence: list[AskEvidence]
    confidence: int


def _clamp(confidence: int) -> int:
    return min(5, max(1, confidence))


@dataclass(frozen=True)
class AskQuote:
    key: str
    sentence: int  # index into the paper's sentences, as labelled [key sN] in the prompts
    quote: str  # the paper's own text that matched the model's quote

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "sentence": self.sentence, "quote": self.quote}


@dataclass
class AskResult:
    question: str
    answer: str
    quotes: list[AskQuote]
    confidence: int
    papers: int
    stats: ProtocolStats
    removed_citations: tuple[str, ...]
    dropped_quotes: int
    warnings: list[str]
    # key -> "Title (year)" of every paper the answer cites or quotes
    references: dict[str, str] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)  # the ledger's totals, from run_ask

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "quotes": [q.to_json() for q in self.quotes],
            "confidence": self.confidence,
            "papers": self.papers,
            "references": dict(self.references),
            "removed_citations": list(self.removed_citations),
            "dropped_quotes": self.dropped_quotes,
            "protocol": self.stats.to_json(),
            "llm": dict(self.usage),
            "warnings": list(self.warnings),
        }


def format_answer(result: AskResult) -> str:
    """The answer as printed on stdout: answer, supporting quotes, then the cited papers."""
    lines = [result.answer.strip(), ""]
    if result.quotes:
        lines.append("Supporting quotes:")
        lines += [f'[@{q.key}] (sentence {q.sentence}) "{q.quote}"' for q in result.quotes]
    else:
        lines.append("Supporting quotes: none could be verified in the papers.")
    cited = list(dict.fromkeys(find_citations(result.answer)))
    if cited:
        lines += ["", "Cited papers:"]
        lines += [f"[@{key}] {result.references.get(key, '')}".rstrip() for key in cited]
    lines += ["", f"Confidence: {result.confidence}/5"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ prompts


def validate_question(question: str) -> str:
    cleaned = " ".join(question.split())
    if not cleaned:
        raise InputError(
            "the question is empty", hint='ask it as: surveygen ask "your question" --papers PATH'
        )
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise InputError(
            f"the question is {len(cleaned)} characters long; the limit is {MAX_QUESTION_CHARS}",
            hint="ask it in a sentence or two",
        )
    return cleaned


def paper_sentences(paper: Paper) -> list[str]:
    """The sentences quotes are checked against: full text, else abstract, else the title."""
    body = paper.text or paper.abstract or paper.title
    return split_sentences(body) or [paper.title]


def _reference(paper: Paper) -> str:
    return f"{paper.title} ({paper.year})" if paper.year else paper.title


def library_lines(papers: Sequence[Paper], sentences: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per sentence, ``[key sN] sentence``, each paper opened by a title line."""
    lines: list[str] = []
    for paper in papers:
        lines.append(f"[{paper.key}] title: {_reference(paper)}")
        lines += [f"[{paper.key} s{i}] {s}" for i, s in enumerate(sentences[paper.key])]
    return lines


def describe_findings(findings: AskFindings) -> str:
    """One map or collapse result as text for the collapse and reduce prompts."""
    lines = [
        f"confidence: {_clamp(findings.confidence)}",
        f"answer: {findings.answer.strip()}",
        f"extracted information: {findings.extracted_information.strip()}",
        f"rationale: {findings.rationale.strip()}",
        "evidence:" if findings.evidence else "evidence: none",
    ]
    lines += [
        f'- [{ev.key} s{ev.sentence}] "{" ".join(ev.quote.split())}"' for ev in findings.evidence
    ]
    return "\n".join(lines)


def ask_protocol(question: str) -> Protocol[AskFindings, AskFinal]:
    """The V1 protocol for one question."""

    def map_prompt(chunk: Chunk) -> Prompt:
        return render_prompt("ask_map", question=question, text=chunk.text)

    def collapse_prompt(results: Sequence[AskFindings]) -> Prompt:
        return render_prompt(
            "ask_collapse", question=question, findings=[describe_findings(r) for r in results]
        )

    def reduce_prompt(results: Sequence[AskFindings]) -> Prompt:
        return render_prompt(
            "ask_reduce", question=question, findings=[describe_findings(r) for r in results]
        )

    return Protocol(
        map_prompt=map_prompt,
        collapse_prompt=collapse_prompt,
        reduce_prompt=reduce_prompt,
        map_schema=AskFindings,
        reduce_schema=AskFinal,
        confidence=lambda r: _clamp(r.confidence),
    )


# ------------------------------------------------------------------------------ verification


def verify_quotes(
    evidence: Sequence[AskEvidence], sentences: Mapping[str, Sequence[str]]
) -> tuple[list[AskQuote], int]:
    """Quotes that occur in the sentences of the paper they name, as the paper words them,
    and how many were dropped. A wrong sentence number is corrected when the words are in
    another sentence of the same paper; repeats of one sentence are kept once."""
    kept: list[AskQuote] = []
    seen: set[tuple[str, int]] = set()
    dropped = 0
    for item in evidence:
        quote = " ".join(item.quote.strip().strip("\"“”'").split())
        paper = sentences.get(item.key)
        if not paper or not quote:
            dropped += 1
            continue
        index = item.sentence
        if not (0 <= index < len(paper) and quote_in(quote, paper[index], QUOTE_THRESHOLD)):
            index, _score = best_sentence(quote, paper)
            if index < 0 or not quote_in(quote, paper[index], QUOTE_THRESHOLD):
                dropped += 1
                continue
        if (item.key, index) in seen:
            continue
        seen.add((item.key, index))
        kept.append(AskQuote(item.key, index, matched_span(quote, paper[index])))
    return kept, dropped


# ------------------------------------------------------------------------------ entry points


async def ask(
    question: str,
    papers: Sequence[Paper],
    llm: LLMClient,
    *,
    context_tokens: int,
    output_tokens: int,
) -> AskResult:
    """Answer ``question`` from ``papers`` with the map/collapse/reduce protocol."""
    question = validate_question(question)
    if not papers:
        raise InputError("there are no papers to answer the question from")
    library = {p.key: p for p in papers}
    sentences = {p.key: paper_sentences(p) for p in papers}
    protocol = ask_protocol(question)
    try:
        input_budget(context_tokens, output_tokens)
        room = chunk_room(protocol, context_tokens=context_tokens, output_tokens=output_tokens)
    except ValueError as exc:
        raise ConfigError(
            str(exc), hint="set context_tokens to your model's context in surveygen.toml"
        ) from None
    chunks = chunk_lines(library_lines(papers, sentences), room)
    final, stats = await map_collapse_reduce(
        llm,
        protocol,
        chunks,
        context_tokens=context_tokens,
        output_tokens=output_tokens,
        stage=STAGE,
        item="ask",
    )
    quotes, dropped = verify_quotes(final.evidence, sentences)
    guarded = guard_citations(final.answer.strip(), library.keys())
    warnings: list[str] = []
    if stats.failed_chunks:
        warnings.append(
            f"{stats.failed_chunks} of {stats.chunks} parts of the library could not be read "
            "(see the call log); the answer leaves them out"
        )
    if stats.dropped_results:
        warnings.append(
            f"{stats.dropped_results} findings were left out to fit the context "
            "(the least confident first); a larger context_tokens keeps them"
        )
    if guarded.removed:
        warnings.append(
            "removed citations of papers not in the library: " + ", ".join(guarded.removed)
        )
    cited = list(dict.fromkeys(find_citations(guarded.text)))
    quoted = {q.key for q in quotes}
    unsupported = [key for key in cited if key not in quoted]
    if unsupported:
        warnings.append(
            "the answer cites papers without a verified quote: " + ", ".join(unsupported)
        )
    referenced = dict.fromkeys([*cited, *(q.key for q in quotes)])
    return AskResult(
        question=question,
        answer=guarded.text,
        quotes=quotes,
        confidence=_clamp(final.confidence),
        papers=len(papers),
        stats=stats,
        removed_citations=guarded.removed,
        dropped_quotes=dropped,
        warnings=warnings,
        references={key: _reference(library[key]) for key in referenced},
    )


_PATHS_HINT = (
    "give --papers a folder of PDF/TXT/MD files, a .bib file, a papers.jsonl file or "
    "LLMxMapReduce-V2 input JSON"
)


async def run_ask(
    settings: Settings,
    question: str,
    paths: Sequence[Path],
    *,
    full_text: bool = True,
    ui: UI | None = None,
) -> AskResult:
    """``surveygen ask``: read the library at ``paths`` and answer ``question`` over it."""
    from surveygen.llm.cache import AnswerCache
    from surveygen.llm.ledger import Ledger, price_table
    from surveygen.pipeline import require_endpoint
    from surveygen.stages.gather import GatherOptions, check_inputs, gather

    question = validate_question(question)
    require_endpoint(settings)
    paths = tuple(Path(p) for p in paths)
    if not paths:
        raise InputError("surveygen ask needs papers to answer from", hint=_PATHS_HINT)
    options = GatherOptions(
        papers=paths,
        search=False,
        screen=False,
        full_text=full_text,
        max_file_bytes=int(settings.max_file_mb * 1_000_000),
        arxiv_url=settings.arxiv_url,
        arxiv_delay=settings.arxiv_delay,
        cache_dir=settings.cache_dir,
    )
    check_inputs(options)
    ui = ui or UI()
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        ui.warn(message)

    context_tokens = settings.context_tokens
    cache = AnswerCache(settings.cache_dir) if settings.cache else None
    ledger = Ledger(price_table(settings.prices), settings.budget)
    llm = LLMClient(settings, ledger=ledger, cache=cache)
    try:
        try:
            try:
                papers, _report = await gather(question, options, llm=llm, ui=ui, warn=warn)
            except InputError:
                raise InputError(
                    "no papers to answer from in --papers " + ", ".join(str(p) for p in paths),
                    hint="see the warnings above for what was skipped; " + _PATHS_HINT,
                ) from None
            with ui.stage("ask", None):
                result = await ask(
                    question,
                    papers,
                    llm,
                    context_tokens=context_tokens,
                    output_tokens=settings.max_output_tokens,
                )
        finally:
            await llm.aclose()
    finally:
        if cache is not None:
            cache.close()
    for message in result.warnings:
        ui.warn(message)
    result.warnings[:0] = warnings  # every warning in the result has been shown on ``ui``
    result.usage = ledger.to_json()
    return result
