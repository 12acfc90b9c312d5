"""The citation check of written text: unsupported claims get one rewrite through the real
client and fake server, then lose their citation; --verify llm asks per claim; additions
that cite uncovered papers are kept only when supported."""

from __future__ import annotations

import asyncio
import json

import scripted_write
from fakeclient import fake_client
from fakellm import FakeLLMServer

from surveygen.models import Paper
from surveygen.stages.verify import ClaimVerifier, tidy_text
from surveygen.support import Passage, SupportChecker

PAPERS = {
    "lewis2020rag": Paper(
        key="lewis2020rag",
        title="Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
        abstract="We combine a parametric generator with a non-parametric dense index of "
        "Wikipedia. RAG models set the state of the art on three open-domain QA tasks.",
    ),
    "karpukhin2020dpr": Paper(
        key="karpukhin2020dpr",
        title="Dense Passage Retrieval for Open-Domain Question Answering",
        abstract="Dense representations learned from a small number of questions and passages "
        "outperform a strong Lucene-BM25 system by 9-19% absolute in top-20 accuracy.",
    ),
}


def _passages() -> dict[str, list[Passage]]:
    return {
        "lewis2020rag": [
            Passage(
                "lewis2020rag",
                "We combine a parametric generator with a non-parametric dense index of Wikipedia.",
                "quote",
            ),
            Passage(
                "lewis2020rag",
                "RAG models set the state of the art on three open-domain QA tasks.",
                "abstract",
            ),
        ],
        "karpukhin2020dpr": [
            Passage(
                "karpukhin2020dpr",
                "Dense representations outperform a strong Lucene-BM25 "
                "system by 9-19% absolute in top-20 accuracy.",
                "quote",
            ),
        ],
    }


def _verifier(server: FakeLLMServer, mode: str = "lexical") -> ClaimVerifier:
    passages = _passages()
    return ClaimVerifier(fake_client(server), SupportChecker(passages), PAPERS, passages, mode=mode)


SUPPORTED = (
    "Dense representations outperform a strong BM25 system in top-20 accuracy [@karpukhin2020dpr]."
)
INVENTED = "RAG improves exact-match accuracy by 37% on every benchmark [@lewis2020rag]."


def test_supported_claims_are_left_alone_without_any_call() -> None:
    with FakeLLMServer(scripted_write.answer) as server:
        text, counts = asyncio.run(_verifier(server).verify(SUPPORTED, item="n1"))
        assert server.chat_requests() == []
    assert text == SUPPORTED
    assert (counts.checked, counts.unsupported, counts.rewritten, counts.dropped) == (1, 0, 0, 0)


def test_unsupported_claim_is_rewritten_once_from_the_evidence() -> None:
    with FakeLLMServer(scripted_write.answer) as server:
        text, counts = asyncio.run(_verifier(server).verify(f"{SUPPORTED} {INVENTED}", item="n1"))
        fix_calls = [r for r in server.chat_requests() if "These sentences cite" in r.prompt_text]
    assert len(fix_calls) == 1
    assert "37%" not in text
    # the scripted editor restates the paper's own closest passage, which then passes
    assert "[@lewis2020rag]" in text and text.startswith(SUPPORTED)
    assert (counts.unsupported, counts.rewritten, counts.dropped) == (1, 1, 0)


def test_a_rewrite_that_is_still_unsupported_loses_its_citation() -> None:
    def stubborn(body: dict) -> str:
        return json.dumps(
            {"sentences": [{"id": 1, "rationale": "keep", "text": INVENTED.replace("37", "38")}]}
        )

    with FakeLLMServer(stubborn) as server:
        text, counts = asyncio.run(_verifier(server).verify(INVENTED, item="n1"))
    assert "[@" not in text and "38%" in text
    assert (counts.rewritten, counts.dropped) == (1, 1)


def test_a_rewrite_cannot_bring_in_a_key_the_sentence_did_not_cite() -> None:
    def swaps_key(body: dict) -> str:
        text = "Dense representations outperform BM25 [@karpukhin2020dpr; @lewis2020rag]."
        return json.dumps({"sentences": [{"id": 1, "rationale": "x", "text": text}]})

    with FakeLLMServer(swaps_key) as server:
        text, _ = asyncio.run(_verifier(server).verify(INVENTED, item="n1"))
    assert "karpukhin2020dpr" not in text


def test_a_failing_rewrite_call_falls_back_to_dropping_the_citation() -> None:
    with FakeLLMServer(lambda body: "not json at all") as server:
        text, counts = asyncio.run(_verifier(server).verify(INVENTED, item="n1"))
    assert "[@lewis2020rag]" not in text
    assert (counts.rewritten, counts.dropped, counts.rewrite_failures) == (0, 1, 1)
    assert counts.degraded  # so --resume does not keep this result


def test_llm_mode_asks_per_claim_and_follows_the_verdict() -> None:
    # word overlap accepts this sentence, the (scripted) entailment check does not: the
    # verdict of --verify llm is the model's.
    claim = "Dense representations outperform BM25 everywhere [@karpukhin2020dpr]."

    def judge(body: dict) -> str:
        text = "\n".join(m["content"] for m in body["messages"])
        if "does the paper's text support the claim" in text:
            return json.dumps({"rationale": "not everywhere", "verdict": "partial"})
        return scripted_write.answer(body)

    with FakeLLMServer(judge) as server:
        verifier = _verifier(server, mode="llm")
        assert verifier.checker.check(claim, "karpukhin2020dpr").supported
        text, counts = asyncio.run(verifier.verify(claim, item="n1"))
    assert counts.llm_checks >= 1 and counts.unsupported == 1
    assert counts.rewritten == 1 and "everywhere" not in text


def test_additions_are_kept_only_when_supported_and_always_cite_their_paper() -> None:
    with FakeLLMServer(scripted_write.answer) as server:
        text, counts = asyncio.run(
            _verifier(server).add_sentences(
                "First paragraph.\n\nSecond paragraph.",
                [
                    (
                        "karpukhin2020dpr",
                        2,
                        "Dense representations outperform a strong "
                        "Lucene-BM25 system in top-20 accuracy.",
                    ),
                    (
                        "lewis2020rag",
                        1,
                        "It triples the speed of every GPU by 300% [@lewis2020rag].",
                    ),
                ],
                item="n1",
            )
        )
    assert "[@karpukhin2020dpr]" in text and "[@lewis2020rag]" not in text
    assert text.endswith("top-20 accuracy [@karpukhin2020dpr].")
    assert "300%" not in text
    assert (counts.added, counts.not_added) == (1, 1)
    assert (counts.checked, counts.unsupported) == (0, 0)  # additions are not "as written"


def test_tidy_text_closes_gaps_left_by_removed_sentences() -> None:
    assert tidy_text("One.  Two .\n\n\n\nThree.") == "One. Two.\n\nThree."
    assert tidy_text("- item  one\n  - nested") == "- item one\n  - nested"
