"""``surveygen ask``: question answering over a library, against the fake HTTP server."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
import scripted_ask
from fakeclient import fake_settings
from fakellm import FakeLLMServer

from surveygen.ask import (
    AskEvidence,
    AskQuote,
    AskResult,
    ask,
    format_answer,
    library_lines,
    paper_sentences,
    run_ask,
    verify_quotes,
)
from surveygen.citations import find_citations
from surveygen.config import Settings
from surveygen.errors import InputError, NoEndpointError
from surveygen.llm.client import LLMClient
from surveygen.llm.ledger import Ledger, price_table
from surveygen.mapreduce import ProtocolStats, input_budget
from surveygen.models import Paper
from surveygen.text import approx_tokens
from surveygen.ui import UI

QUESTION = "How do retrievers find the passages a reader model answers from?"

PAPERS = [
    {
        "key": "karpukhin2020dense",
        "title": "Dense Passage Retrieval for Open-Domain Question Answering",
        "year": 2020,
        "text": (
            "We train a dual encoder that maps questions and passages to dense vectors. "
            "Retrieval is a maximum inner product search over an index of Wikipedia passages. "
            "Our retriever outperforms a strong BM25 system by 9 to 19 points in top-20 accuracy."
        ),
    },
    {
        "key": "robertson2009bm25",
        "title": "The Probabilistic Relevance Framework: BM25 and Beyond",
        "year": 2009,
        "abstract": (
            "BM25 scores a passage by the frequency of the query terms it contains. "
            "Term weights are damped by document length and saturate for frequent terms."
        ),
    },
    {
        "key": "izacard2021fid",
        "title": "Leveraging Passage Retrieval with Generative Models",
        "year": 2021,
        "text": (
            "The reader attends to one hundred retrieved passages at once. "
            "Fusion in the decoder lets evidence from many passages be combined."
        ),
    },
]


def _library(tmp_path: Path, papers: list[dict] = PAPERS) -> Path:
    path = tmp_path / "papers.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in papers) + "\n", encoding="utf-8")
    return path


def _settings(server: FakeLLMServer, **over) -> Settings:
    return fake_settings(server, **over)


def _sentences(papers: list[Paper]) -> dict[str, list[str]]:
    return {p.key: paper_sentences(p) for p in papers}


def _check_quotes(result: AskResult, papers: list[Paper]) -> None:
    """Every quote is the paper's own text, from the sentence it names."""
    sentences = _sentences(papers)
    for quote in result.quotes:
        assert quote.quote and quote.quote in sentences[quote.key][quote.sentence]
        assert scripted_ask.FABRICATED_QUOTE not in quote.quote


# ----------------------------------------------------------------------------- end to end


def test_ask_answers_with_verified_quotes_and_known_citations_only(fake_llm, tmp_path) -> None:
    fake_llm.responder = scripted_ask.responder
    result = asyncio.run(
        run_ask(_settings(fake_llm), QUESTION, [_library(tmp_path)], ui=UI(quiet=True))
    )
    papers = [Paper.from_json(p) for p in PAPERS]
    known = {p.key for p in papers}

    cited = set(find_citations(result.answer))
    assert cited and cited <= known
    assert result.removed_citations == (scripted_ask.FAKE_KEY,)
    assert scripted_ask.FAKE_KEY not in result.answer
    assert result.quotes and {q.key for q in result.quotes} <= known
    _check_quotes(result, papers)
    assert result.dropped_quotes >= 1  # the fabricated quote
    assert result.papers == 3 and result.confidence == 4
    assert result.stats.map_calls == 1 and result.stats.reduce_calls == 1
    assert len(fake_llm.chat_requests()) == 2
    assert any(scripted_ask.FAKE_KEY in w for w in result.warnings)
    assert result.usage["calls"] == 2
    assert set(result.references) >= cited
    assert result.references["karpukhin2020dense"].endswith("(2020)")

    text = format_answer(result)
    assert text.startswith(result.answer + "\n\nSupporting quotes:\n")
    for quote in result.quotes:
        assert f'[@{quote.key}] (sentence {quote.sentence}) "{quote.quote}"' in text
    assert "[@karpukhin2020dense] Dense Passage Retrieval" in text

    data = result.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["protocol"]["reduce_calls"] == 1
    assert data["quotes"][0] == result.quotes[0].to_json()


def test_ask_reads_a_folder_of_documents(fake_llm, tmp_path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "dpr.md").write_text(
        "# Dense Passage Retrieval\n\nWe train a dual encoder for passages and questions. "
        "It beats BM25 by a wide margin on top-20 accuracy.\n",
        encoding="utf-8",
    )
    (folder / "bm25.txt").write_text(
        "Sparse Retrieval Revisited\n\nBM25 remains a strong baseline for many tasks. "
        "Its inverted index is small and fast to query.\n",
        encoding="utf-8",
    )
    fake_llm.responder = scripted_ask.responder
    result = asyncio.run(run_ask(_settings(fake_llm), QUESTION, [folder], ui=UI(quiet=True)))
    assert result.papers == 2
    assert result.quotes
    prompt = fake_llm.chat_requests()[0].body["messages"][1]["content"]
    assert "Dense Passage Retrieval" in prompt and "BM25 remains a strong baseline" in prompt


def test_a_long_library_is_collapsed_and_every_prompt_fits(fake_llm) -> None:
    papers = [
        Paper(
            key=f"author{n}2020topic",
            title=f"Study number {n} of passage retrieval",
            year=2020,
            text=" ".join(
                f"Experiment {n}.{i} measures how retriever variant {i} ranks passage {i * 7} "
                f"for question {i * 3}."
                for i in range(160)
            ),
        )
        for n in range(4)
    ]
    fake_llm.responder = scripted_ask.responder
    context, output = 3_000, 500
    llm = LLMClient(
        _settings(fake_llm, max_output_tokens=output),
        ledger=Ledger(price_table(None)),
        rng=random.Random(0),
    )

    async def go() -> AskResult:
        try:
            return await ask(QUESTION, papers, llm, context_tokens=context, output_tokens=output)
        finally:
            await llm.aclose()

    result = asyncio.run(go())
    budget = input_budget(context, output)
    requests = fake_llm.chat_requests()
    assert all(
        sum(approx_tokens(m["content"]) for m in r.body["messages"]) <= budget for r in requests
    )
    stats = result.stats
    assert stats.chunks > 8 and stats.collapse_rounds >= 1
    assert len(requests) == stats.map_calls + stats.collapse_calls + stats.reduce_calls
    assert result.quotes and result.dropped_quotes >= 1
    _check_quotes(result, papers)
    assert result.removed_citations == (scripted_ask.FAKE_KEY,)


# ----------------------------------------------------------------------------- input errors


def test_a_library_without_papers_is_an_input_error_naming_the_path(fake_llm, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError) as caught:
        asyncio.run(run_ask(_settings(fake_llm), QUESTION, [empty], ui=UI(quiet=True)))
    assert caught.value.exit_code == 2
    assert str(empty) in caught.value.message
    assert fake_llm.chat_requests() == []


def test_no_papers_given_or_a_missing_path_is_an_input_error(fake_llm, tmp_path) -> None:
    with pytest.raises(InputError, match="needs papers"):
        asyncio.run(run_ask(_settings(fake_llm), QUESTION, [], ui=UI(quiet=True)))
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(InputError, match=r"nowhere\.jsonl"):
        asyncio.run(run_ask(_settings(fake_llm), QUESTION, [missing], ui=UI(quiet=True)))


@pytest.mark.parametrize("question", ["", "   \n\t ", "x" * 2001])
def test_an_empty_or_overlong_question_is_an_input_error(fake_llm, tmp_path, question) -> None:
    with pytest.raises(InputError) as caught:
        asyncio.run(run_ask(_settings(fake_llm), question, [_library(tmp_path)], ui=UI(quiet=True)))
    assert caught.value.exit_code == 2
    assert fake_llm.chat_requests() == []


def test_ask_needs_an_endpoint(tmp_path) -> None:
    with pytest.raises(NoEndpointError):
        asyncio.run(run_ask(Settings(cache=False), QUESTION, [_library(tmp_path)]))


# ----------------------------------------------------------------------------- pure parts

SENTENCES = {
    "a2020": [
        "Dense retrievers map “questions” and passages to vectors.",
        "They are trained with in-batch negatives on 60,000 questions.",
    ],
    "b2021": ["BM25 is a bag-of-words ranking function."],
}


def test_verify_quotes_keeps_the_papers_own_words_and_drops_what_is_not_there() -> None:
    evidence = [
        # right sentence, the model's casing and straight quotes
        AskEvidence(key="a2020", sentence=0, quote='map "Questions" and passages'),
        # wrong sentence number: corrected
        AskEvidence(key="a2020", sentence=0, quote="trained with in-batch negatives"),
        # a repeat of a sentence already quoted: kept once, not counted as dropped
        AskEvidence(key="a2020", sentence=1, quote="on 60,000 questions"),
        # fabricated, a wrong paper, an unknown paper
        AskEvidence(key="a2020", sentence=1, quote="trained on a billion synthetic questions"),
        AskEvidence(key="b2021", sentence=0, quote="trained with in-batch negatives"),
        AskEvidence(key="zzz1999", sentence=0, quote="BM25 is a bag-of-words ranking function"),
    ]
    quotes, dropped = verify_quotes(evidence, SENTENCES)
    assert quotes == [
        AskQuote("a2020", 0, "map “questions” and passages"),
        AskQuote("a2020", 1, "trained with in-batch negatives"),
    ]
    assert dropped == 3


def test_verify_quotes_widens_a_near_match_to_whole_words() -> None:
    evidence = [AskEvidence(key="b2021", sentence=0, quote="bag-of-word ranking functon")]
    quotes, dropped = verify_quotes(evidence, SENTENCES)
    assert dropped == 0
    assert quotes == [AskQuote("b2021", 0, "bag-of-words ranking function")]


def test_library_lines_label_every_sentence_with_key_and_index() -> None:
    papers = [
        Paper(key="a2020", title="Dense", year=2020, text="First one here. Second one here."),
        Paper(key="b2021", title="Sparse", abstract="Only an abstract here."),
        Paper(key="c2022", title="Title Only Paper"),
    ]
    lines = library_lines(papers, _sentences(papers))
    assert lines == [
        "[a2020] title: Dense (2020)",
        "[a2020 s0] First one here.",
        "[a2020 s1] Second one here.",
        "[b2021] title: Sparse",
        "[b2021 s0] Only an abstract here.",
        "[c2022] title: Title Only Paper",
        "[c2022 s0] Title Only Paper",
    ]


def test_format_answer_without_verified_quotes_says_so() -> None:
    result = AskResult(
        question=QUESTION,
        answer="The library does not answer this.",
        quotes=[],
        confidence=1,
        papers=2,
        stats=ProtocolStats(),
        removed_citations=(),
        dropped_quotes=2,
        warnings=[],
    )
    text = format_answer(result)
    assert text.startswith("The library does not answer this.\n\nSupporting quotes: none")
    assert "Cited papers" not in text
    assert text.endswith("Confidence: 1/5")


# --- the command line ---------------------------------------------------------------------------


def test_ask_command_prints_the_cited_answer_and_its_quotes(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from surveygen.cli import main

    monkeypatch.chdir(tmp_path)
    library = _library(tmp_path)
    with FakeLLMServer(scripted_ask.answer) as server:
        result = CliRunner().invoke(
            main,
            ["ask", QUESTION, "--papers", str(library), "--base-url", server.base_url],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.stderr
        assert "Supporting quotes:" in result.stdout
        cited = set(find_citations(result.stdout.split("Supporting quotes:")[0]))
        assert cited and cited <= {p["key"] for p in PAPERS}
        as_json = CliRunner().invoke(
            main,
            ["ask", QUESTION, "--papers", str(library), "--base-url", server.base_url, "--json"],
            catch_exceptions=False,
        )
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["quotes"] and all(q["key"] in {p["key"] for p in PAPERS} for q in data["quotes"])


def test_ask_command_without_papers_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from surveygen.cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["ask", QUESTION, "--base-url", "http://127.0.0.1:9/v1"], catch_exceptions=False
    )
    assert result.exit_code == 2 and "papers" in result.stderr
    assert "Traceback" not in result.stderr
