"""Helpers of the pipeline module, and the dry run's bound on the calls digests take."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re

import pytest
from click.testing import CliRunner
from fakellm import FakeLLMServer
from scripted import pipeline_responder

from surveygen.cli import main
from surveygen.config import Settings
from surveygen.errors import InputError
from surveygen.llm.client import LLMClient
from surveygen.llm.ledger import Ledger, price_table
from surveygen.mapreduce import chunk_room
from surveygen.models import Digest, Evidence, NodeDigest, Outline, OutlineNode, Paper
from surveygen.pipeline import validate_topic
from surveygen.plan import digest_calls, worst_case_outline
from surveygen.rundir import state_name as _state_name
from surveygen.stages.digest import digest_paper, long_paper_protocol
from surveygen.stages.mapping import needs_redigest
from surveygen.text import approx_tokens


def test_state_names_are_safe_and_never_collide():
    assert _state_name("vaswani2017attention") == "vaswani2017attention"
    colon, underscore = _state_name("a:b"), _state_name("a_b")
    assert colon != underscore and ":" not in colon and colon.startswith("a_b-")
    assert "/" not in _state_name("../../etc/passwd")


@pytest.mark.parametrize("key", ["CON", "nul", "Com1.backup", "lpt9", "..", ".hidden", "x" * 400])
def test_state_names_avoid_reserved_hidden_and_overlong_names(key: str) -> None:
    name = _state_name(key)
    assert name != key and len(name) <= 130 and not name.startswith(".")
    assert name.split(".")[0].lower() not in {"con", "nul", "com1", "lpt9"}


def test_generated_keys_stay_readable_citation_keys() -> None:
    from surveygen.library.keys import is_valid_key, make_key

    key = make_key(["Q. " + "Longname" * 20], 2024, "Supercalifragilistic" * 8, set())
    assert is_valid_key(key) and len(key) <= 100


def test_topic_is_normalised_and_bounded():
    assert validate_topic("  graph   neural\nnetworks ") == "graph neural networks"
    assert validate_topic("图神经网络") == "图神经网络"
    with pytest.raises(InputError, match="empty"):
        validate_topic(" \t\n")
    with pytest.raises(InputError, match="2001 characters"):
        validate_topic("x" * 2001)


# --- dry run: the digest calls a paper takes -------------------------------------------------

TOPIC = "retrieval-augmented language models"
CONTEXT, OUTPUT = 32_000, 4_096  # the defaults


def _long_text(count: int, template: str) -> str:
    return " ".join(template.format(i=i, k=i % 97) for i in range(count))


def _typical_outline(leaves: int = 12) -> Outline:
    """An outline as the model writes one: a few parents, short titles, 1-3 sentence
    descriptions (well within the sizes worst_case_outline assumes)."""
    ids = itertools.count(1)
    description = (
        "Extract the retriever architecture, the training signal and the index each paper "
        "uses; compare their recall and cost across the benchmarks the papers report."
    )

    def node(title: str, children: tuple[OutlineNode, ...] = ()) -> OutlineNode:
        return OutlineNode(f"n{next(ids)}", title, description, children)

    parents = (
        tuple(node(f"Dense Retrieval Methods Part {i}") for i in range(j, leaves, 4))
        for j in range(4)
    )
    return Outline(
        "A Survey of Retrieval-Augmented Language Models",
        tuple(node(f"Retrieval Design Questions {j}", kids) for j, kids in enumerate(parents)),
    )


def _digest_for_real(paper: Paper, outline: Outline, context: int = CONTEXT) -> tuple[Digest, int]:
    """digest_paper run against the scripted model: the digest and the requests it sent."""

    async def go(server: FakeLLMServer) -> Digest:
        settings = Settings(
            base_url=server.base_url,
            api_key="sk-test",
            model="fake-model",
            cache=False,
            max_tries=1,
            context_tokens=context,
            max_output_tokens=OUTPUT,
        )
        llm = LLMClient(settings, ledger=Ledger(price_table(None)), rng=random.Random(0))
        try:
            return await digest_paper(
                llm, TOPIC, outline, paper, context_tokens=context, output_tokens=OUTPUT
            )
        finally:
            await llm.aclose()

    with FakeLLMServer(pipeline_responder) as server:
        digest = asyncio.run(go(server))
        return digest, len(server.chat_requests())


def _bound(paper: Paper, outline: Outline, context: int = CONTEXT) -> int:
    return digest_calls(paper, TOPIC, outline, context_tokens=context, output_tokens=OUTPUT)


def test_a_paper_that_fits_takes_one_digest_call():
    paper = Paper("lewis2020retrieval", "RAG", abstract=_long_text(300, "Claim {i} holds."))
    assert _bound(paper, worst_case_outline(12)) == 1
    digest, requests = _digest_for_real(paper, _typical_outline())
    assert (digest.chunks, requests) == (1, 1)


def test_a_long_paper_against_the_worst_case_outline_is_planned_exactly():
    paper = Paper(
        "k" * 64,
        "A Very Long Study".ljust(300, "x"),
        year=2024,
        text=_long_text(6_000, "Experiment {i} measured the recall of dense retrieval at k={k}."),
    )
    outline = worst_case_outline(12)
    bound = _bound(paper, outline)
    digest, requests = _digest_for_real(paper, outline)
    assert digest.chunks > 1
    assert bound == 2 * digest.chunks  # the same chunks as digest_paper: maps + collapses + reduce
    assert requests <= bound


def test_a_context_too_small_for_the_worst_case_outline_still_gives_a_bound():
    # At 8192 tokens the worst-case outline of 12 leaves leaves no room for a chunk: the plan
    # falls back on the least room a working run can have. The real outline here is the
    # largest that still works, so its room is close to that least room.
    context = 8_192
    paper = Paper(
        "smith2024long",
        "A Long Study",
        text=_long_text(1_000, "Experiment {i} measured recall of the dense retriever at k={k}."),
    )

    def room(outline: Outline) -> int | None:
        protocol = long_paper_protocol(TOPIC, outline, paper, suggest=True)
        try:
            return chunk_room(protocol, context_tokens=context, output_tokens=OUTPUT)
        except ValueError:
            return None

    assert room(worst_case_outline(12)) is None
    real = next(o for k in range(12, 0, -1) if room(o := worst_case_outline(k)) is not None)
    assert len(real.leaves()) > 1
    bound = _bound(paper, worst_case_outline(12), context)
    digest, requests = _digest_for_real(paper, real, context)
    assert digest.chunks > 1
    assert bound >= 2 * digest.chunks and bound >= requests


def test_a_9000_sentence_paper_is_not_under_counted_by_the_dry_run(tmp_path, monkeypatch):
    # The review's case: the raw text's tokens with a fixed overhead planned 12 calls (6
    # chunks), but digest_paper numbers every sentence and makes 7 chunks (up to 14 calls).
    text = _long_text(9_000, "Experiment {i} measured recall of the dense retriever at k={k}.")
    assert 2 * -(-approx_tokens(text) // (CONTEXT - OUTPUT - 3_000)) == 12
    monkeypatch.chdir(tmp_path)
    library = tmp_path / "long.jsonl"
    library.write_text(json.dumps({"title": "A Long Study", "year": 2024, "text": text}) + "\n")
    result = CliRunner().invoke(
        main,
        ["write", TOPIC, "--papers", str(library), "--no-search", "--dry-run"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    planned = int(re.search(r"^digest: at most (\d+) call", result.stdout, re.M).group(1))

    digest, requests = _digest_for_real(
        Paper("smith2024long", "A Long Study", year=2024, text=text), _typical_outline()
    )
    assert digest.chunks >= 7
    assert planned >= 2 * digest.chunks and planned >= requests


def test_the_dry_run_says_search_results_are_counted_as_fitting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    library = tmp_path / "one.jsonl"
    library.write_text(json.dumps({"title": "A Short Study", "abstract": "It works."}) + "\n")
    args = ["write", TOPIC, "--papers", str(library), "--dry-run"]
    searching = CliRunner().invoke(main, args, catch_exceptions=False)
    local = CliRunner().invoke(main, [*args, "--no-search"], catch_exceptions=False)
    assert searching.exit_code == 0 and local.exit_code == 0
    note = "(papers found by search are counted as fitting the context)"
    assert note in searching.stdout.splitlines()
    assert note not in local.stdout
    assert "during the run" not in local.stdout


def test_the_dry_run_says_which_of_your_papers_it_cannot_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    library = tmp_path / "two.jsonl"
    rows = [
        {"title": "A Preprint", "abstract": "It works.", "arxiv_id": "2101.00001"},
        {"title": "A Full Text", "abstract": "It works.", "text": "It works. Really."},
    ]
    library.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["write", TOPIC, "--papers", str(library), "--no-search", "--dry-run"]
    full = CliRunner().invoke(main, args, catch_exceptions=False)
    abstracts = CliRunner().invoke(main, [*args, "--no-full-text"], catch_exceptions=False)
    assert full.exit_code == 0 and abstracts.exit_code == 0
    note = (
        "(your 1 paper(s) whose text comes from arXiv or a PDF during the run are counted as "
        "fitting the context)"
    )
    assert note in full.stdout.splitlines()
    assert "during the run" not in abstracts.stdout


# --- map: which digests survive the final outline ----------------------------------------------

FINAL = Outline(
    "T",
    (
        OutlineNode(
            "n1", "Retrievers", "", (OutlineNode("n2", "Sparse"), OutlineNode("n9", "New"))
        ),
        OutlineNode("n4", "Evaluation"),
    ),
)


def _digest(*node_ids: str) -> Digest:
    return Digest(
        "p",
        tuple(NodeDigest(n, "s", (Evidence("q", 0),)) for n in node_ids),
    )


def test_a_digest_on_surviving_leaves_is_reused():
    assert not needs_redigest(_digest("n2", "n4"), ["n2", "n3", "n4"], FINAL)


@pytest.mark.parametrize("gone", ["n3", "n1"])
def test_a_digest_on_a_vanished_node_or_a_new_parent_is_made_again(gone):
    assert needs_redigest(_digest("n2", gone), ["n1", "n2", "n3", "n4"], FINAL)


def test_an_empty_digest_is_made_again_only_when_leaves_were_added():
    assert needs_redigest(_digest(), ["n2", "n3", "n4"], FINAL)  # n9 is new
    assert not needs_redigest(_digest(), ["n2", "n4", "n9"], FINAL)


def test_papers_most_similar_to_a_new_section_are_read_again():
    from surveygen.models import Paper
    from surveygen.stages.mapping import papers_for_new_leaves

    papers = [
        Paper("a", "Index compression for cheaper dense retrieval", abstract="Memory cost."),
        Paper("b", "Latency of retrieval at web scale", abstract="Serving cost and latency."),
        Paper("c", "Poetry generation with rhyme", abstract="Verse."),
        Paper("d", "Reading comprehension benchmarks", abstract="Datasets."),
    ]
    outline = Outline(
        "T", (OutlineNode("n1", "Old"), OutlineNode("n7", "Cost", "Extract memory and latency."))
    )
    chosen = papers_for_new_leaves(outline, {"n7"}, papers)
    assert chosen == {"a", "b"}  # at most 3, and only papers sharing a word with it
    assert papers_for_new_leaves(outline, set(), papers) == set()


def test_a_paper_fingerprint_ignores_ranking_and_provenance():
    from surveygen.models import Paper, replace
    from surveygen.stages.mapping import paper_fingerprint

    paper = Paper("k", "T", abstract="A.", score=0.3, source="file:x.jsonl")
    assert paper_fingerprint(paper) == paper_fingerprint(replace(paper, score=0.1, source="y"))
    assert paper_fingerprint(paper) != paper_fingerprint(replace(paper, abstract="B."))
