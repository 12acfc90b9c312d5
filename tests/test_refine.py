"""Refinement against the fake OpenAI-compatible server, answered by tests/scripted_refine.py."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, get_args

import pytest
import scripted_refine
from fakeclient import fake_client
from fakellm import FakeLLMServer

from surveygen.errors import LLMRejectedError
from surveygen.llm.client import LLMClient
from surveygen.models import (
    SUGGESTION_OPS,
    Digest,
    Evidence,
    NodeDigest,
    Outline,
    OutlineNode,
    Paper,
    Suggestion,
)
from surveygen.outline_tree import IdAllocator
from surveygen.scoring import ScoreTerms, data_terms
from surveygen.stages.refine import (
    EditDraft,
    RefineOptions,
    RefineResult,
    neighbour_order,
    refine,
    refine_plan,
)
from surveygen.stages.refine_layers import _Entry, _select
from surveygen.stages.refine_prompts import MAX_EDITS
from surveygen.stages.refine_prompts import clean_edits as _clean_edits

TOPIC = "Retrieval-augmented generation"

OUTLINE = Outline(
    title="A Survey of Retrieval-Augmented Generation",
    sections=(
        OutlineNode(
            "n1",
            "Retrievers",
            "How passages are found.",
            (
                OutlineNode("n2", "Sparse retrieval", "Compare BM25-style lexical retrievers."),
                OutlineNode("n3", "Dense retrieval", "Trace the evolution of dual encoders."),
            ),
        ),
        OutlineNode(
            "n4",
            "Generators",
            "How generators consume passages.",
            (
                OutlineNode("n5", "Fusion in the decoder", "Contrast fusion strategies."),
                OutlineNode("n6", "Retrieval pretraining", "Compare pretraining objectives."),
            ),
        ),
        OutlineNode("n7", "Evaluation", "Contrast benchmarks and metrics."),
    ),
)
ORIGINAL_IDS = {node.id for node, _ in OUTLINE.walk()}

# (key, title, leaf with its evidence, suggestions)
LIBRARY: list[tuple[str, str, str, tuple[Suggestion, ...]]] = [
    (
        "karpukhin2020dense",
        "Dense passage retrieval for open-domain QA",
        "n3",
        (Suggestion("add", parent="n1", title="Hybrid retrieval", description="Mix both."),),
    ),
    (
        "xiong2021ance",
        "Approximate nearest neighbour negatives for dense retrieval",
        "n3",
        (Suggestion("add", parent="n1", title="Negative sampling", description="Hard ones."),),
    ),
    ("robertson2009bm25", "The probabilistic relevance framework: BM25", "n2", ()),
    (
        "izacard2021fid",
        "Leveraging passage retrieval with generative models (fusion in decoder)",
        "n5",
        (Suggestion("rename", targets=("n5",), title="Fusion-in-Decoder readers"),),
    ),
    (
        "borgeaud2022retro",
        "Improving language models by retrieving from trillions of tokens",
        "n6",
        (Suggestion("add", parent="n4", title="Scaling the datastore", description="Size."),),
    ),
    (
        "guu2020realm",
        "REALM: retrieval-augmented language model pretraining",
        "n6",
        (Suggestion("rename", targets=("n6",), title="Pretraining with a retriever"),),
    ),
    (
        "es2023ragas",
        "RAGAS: automated evaluation of retrieval augmented generation",
        "n7",
        (Suggestion("add", parent="n7", title="Faithfulness metrics", description="Judge."),),
    ),
    (
        "thakur2021beir",
        "BEIR: a heterogeneous benchmark for zero-shot retrieval evaluation",
        "n7",
        (Suggestion("add", parent="n7", title="Retrieval benchmarks", description="BEIR."),),
    ),
    (
        "asai2023selfrag",
        "Self-RAG: learning to retrieve, generate and critique",
        "n5",
        (Suggestion("add", parent=None, title="Adaptive retrieval", description="When."),),
    ),
]

PAPERS = {key: Paper(key=key, title=title, year=2021) for key, title, _, _ in LIBRARY}
DIGESTS = {
    key: Digest(
        paper_key=key,
        nodes=(
            NodeDigest(
                node_id=leaf,
                summary=f"{title} contributes to this section.",
                evidence=(Evidence(f"{title} is proposed.", 0), Evidence("It works.", 1)),
            ),
        ),
        suggestions=suggestions,
    )
    for key, title, leaf, suggestions in LIBRARY
}


def make_client(server: FakeLLMServer, **overrides: Any) -> LLMClient:
    return fake_client(server, **{"timeout": 5.0, **overrides})


def size_judge(nodes: list[tuple[str, int, str]]) -> tuple[float, float, float, float]:
    """Prefers bigger outlines: every node adds half a point."""
    score = min(10.0, 2.0 + 0.5 * len(nodes))
    return score, score, score, score


class Run:
    """A refine run against the fake server, with everything it saved and warned about."""

    def __init__(self, server: FakeLLMServer, judge: Any = scripted_refine.hash_judge) -> None:
        self.server = server
        answer = scripted_refine.make_answer(judge)

        def responder(body: dict) -> str:
            text = answer(body)
            assert text is not None, "a refine run sent a prompt that is not a refine prompt"
            return text

        server.responder = responder
        self.saved: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.requests_at: dict[str, int] = {}
        self.progress = 0

    def save(self, relpath: str, obj: Any) -> None:
        json.dumps(obj)  # everything saved must be plain JSON
        self.saved[relpath] = obj
        self.requests_at[relpath] = len(self.server.chat_requests())

    def tick(self) -> None:
        self.progress += 1

    def __call__(
        self,
        options: RefineOptions,
        *,
        digests: dict[str, Digest] = DIGESTS,
        outline: Outline = OUTLINE,
        **client: Any,
    ) -> RefineResult:
        async def go() -> RefineResult:
            llm = make_client(self.server, **client)
            try:
                return await refine(
                    llm,
                    TOPIC,
                    outline,
                    digests,
                    PAPERS,
                    options,
                    allocator=IdAllocator(outline),
                    save=self.save,
                    warn=self.warnings.append,
                    progress=self.tick,
                )
            finally:
                await llm.aclose()

        return asyncio.run(go())

    def candidates(self, layer: int | None = None) -> list[dict[str, Any]]:
        prefix = f"layer-{layer}/candidate-" if layer else "layer-"
        return [
            v for k, v in sorted(self.saved.items()) if k.startswith(prefix) and "candidate" in k
        ]

    def tasks(self) -> list[str]:
        kinds = {
            scripted_refine.MERGE_TASK: "merge",
            scripted_refine.APPLY_TASK: "apply",
            scripted_refine.JUDGE_TASK: "judge",
        }
        return [
            next(kind for task, kind in kinds.items() if task in r.prompt_text)
            for r in self.server.chat_requests()
        ]


# --- the plan ---------------------------------------------------------------------------------


def test_refine_plan_bounds_each_layer() -> None:
    options = RefineOptions(layers=3, kernel=3, top_k=3, max_candidates=12)
    assert refine_plan(9, options) == [
        # 3 kernels; 3 merged suggestions on the 1 starting outline; + its own judge call
        {"layer": 1, "merge": 3, "apply": 3, "judge": 4},
        # 3 merged suggestions -> 1 group; applied to the top 3
        {"layer": 2, "merge": 1, "apply": 3, "judge": 3},
        # layer 3 would have a single suggestion left, already applied: no entry
    ]
    assert refine_plan(16, options) == [
        {"layer": 1, "merge": 6, "apply": 6, "judge": 7},
        {"layer": 2, "merge": 2, "apply": 6, "judge": 6},
        {"layer": 3, "merge": 1, "apply": 3, "judge": 3},
    ]
    # 4 -> groups of 3 and 1: one merge, the single suggestion is carried without a call.
    assert refine_plan(10, options)[1] == {"layer": 2, "merge": 1, "apply": 3, "judge": 3}
    capped = RefineOptions(layers=2, kernel=2, top_k=3, max_candidates=4)
    assert refine_plan(16, capped) == [
        {"layer": 1, "merge": 8, "apply": 4, "judge": 5},
        {"layer": 2, "merge": 4, "apply": 4, "judge": 4},
    ]
    assert refine_plan(0, options) == []
    assert refine_plan(9, RefineOptions(layers=0)) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"kernel": 1},
        {"layers": -1},
        {"top_k": 0},
        {"max_candidates": 0},
        {"layers": 2.5},
        {"weights": {"judge": -1}},
    ],
)
def test_options_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RefineOptions(**bad)


# --- pure helpers -----------------------------------------------------------------------------


def test_neighbour_order_chains_similar_papers() -> None:
    titles = {
        "a1": "Dense retrieval with dual encoders",
        "b1": "Image diffusion models for video",
        "c1": "Dense passage retrieval encoders",
        "d1": "Video diffusion with latent image models",
    }
    papers = {k: Paper(key=k, title=t) for k, t in titles.items()}
    digests = {k: Digest(paper_key=k) for k in titles}
    # From a1 to its nearest neighbour c1; nothing is like c1, so the first key left (b1),
    # then its neighbour d1.
    assert neighbour_order(digests, papers) == ["a1", "c1", "b1", "d1"]
    # Deterministic whatever the mapping's order.
    reverse = dict(reversed(list(digests.items())))
    assert neighbour_order(reverse, papers) == ["a1", "c1", "b1", "d1"]
    titles["c1"] = "Latent video diffusion"
    papers = {k: Paper(key=k, title=t) for k, t in titles.items()}
    assert neighbour_order(digests, papers) == ["a1", "b1", "d1", "c1"]


def test_edit_ops_match_the_suggestion_ops() -> None:
    assert set(get_args(EditDraft.model_fields["op"].annotation)) == set(SUGGESTION_OPS)


def test_malformed_and_duplicate_edits_are_dropped() -> None:
    def draft(op: str, targets: list[str], title: str = "", parent: str | None = None):
        return EditDraft(
            op=op, targets=targets, parent=parent, title=title, description="", rationale=""
        )

    edits = _clean_edits(
        [
            draft("rename", ["n2"]),  # no new title
            draft("merge", ["n2"], "One"),  # a merge of one node
            draft("add", [], "  New   section "),
            draft("add", [], "New section"),  # the same edit once cleaned
            draft("remove", [" "]),  # no target
            draft("move", ["n3"], parent=" "),
            *[draft("add", [], f"Extra {i}") for i in range(10)],
        ]
    )
    assert edits[0] == Suggestion("add", title="New section")
    assert edits[1] == Suggestion("move", targets=("n3",), parent=None)
    assert len(edits) == MAX_EDITS


def entry(label: str, score: float) -> _Entry:
    return _Entry(label, OUTLINE, ScoreTerms(score, 0.0, 0.0, 0.0, score))


def test_selection_keeps_the_best_k_and_needs_a_strictly_better_score() -> None:
    pool = [entry("a", 0.5)]
    candidates = [entry("b", 0.6), entry("c", 0.9), entry("d", 0.4), entry("e", 0.5)]
    # d is worse and e only ties with a: neither enters, even with room to spare.
    assert [e.label for e in _select(pool, candidates, 5)] == ["c", "b", "a"]
    assert [e.label for e in _select(pool, candidates, 2)] == ["c", "b"]
    assert [e.label for e in _select(pool, candidates, 1)] == ["c"]
    # A full pool: a candidate that beats only the weakest member displaces it.
    full = [entry("x", 0.8), entry("y", 0.3)]
    assert [e.label for e in _select(full, [entry("z", 0.35)], 2)] == ["x", "z"]
    assert [e.label for e in _select(full, [entry("w", 0.3)], 2)] == ["x", "y"]
    assert [e.label for e in _select(full, [], 2)] == ["x", "y"]


# --- runs against the fake server -------------------------------------------------------------


def test_layers_zero_makes_no_call_and_keeps_the_outline(fake_llm: FakeLLMServer) -> None:
    run = Run(fake_llm)
    result = run(RefineOptions(layers=0))
    assert fake_llm.chat_requests() == []
    assert result.calls == 0 and result.layers == []
    assert result.outline == OUTLINE
    assert not result.score.judged and result.score.judge == 0.0
    entropy, coverage, redundancy = data_terms(OUTLINE, DIGESTS, PAPERS)
    assert (result.score.entropy, result.score.coverage) == (entropy, coverage)
    assert result.score.redundancy == redundancy
    assert coverage == 1.0
    assert run.saved["summary.json"]["calls"] == 0


def test_no_suggestions_means_no_call(fake_llm: FakeLLMServer) -> None:
    quiet = {k: Digest(paper_key=k, nodes=d.nodes) for k, d in DIGESTS.items()}
    run = Run(fake_llm)
    result = run(RefineOptions(), digests=quiet)
    assert fake_llm.chat_requests() == []
    assert result.outline == OUTLINE
    assert result.layers == []
    assert "no digest has suggestions" in result.stopped


def test_scores_never_go_down_and_the_final_outline_is_the_best_seen(
    fake_llm: FakeLLMServer,
) -> None:
    run = Run(fake_llm)
    result = run(RefineOptions(layers=3, kernel=3, top_k=2, max_candidates=12))

    scored = [c for c in run.candidates() if c["score"] is not None]
    accepted = [c for c in scored if c["accepted"]]
    rejected = [c for c in scored if not c["accepted"]]
    assert accepted and rejected, "the scripted judge should make some win and some lose"

    initial = run.saved["initial.json"]["score"]
    assert result.initial.judged
    assert result.initial.score == pytest.approx(initial)
    best_seen = max([initial] + [c["score"] for c in scored])
    assert result.score.score == pytest.approx(best_seen)
    assert result.score.score > result.initial.score
    assert result.outline.to_json() in [c["outline"] for c in accepted]

    layers = result.layers
    assert len(layers) == 2
    previous = round(result.initial.score, 6)
    for layer in layers:
        assert layer["best_before"] == previous
        assert layer["best_after"] >= layer["best_before"]
        previous = layer["best_after"]
    assert result.to_json()["scores"] == [round(result.initial.score, 6)] + [
        layer["best_after"] for layer in layers
    ]
    # A candidate is accepted only by beating the weakest of the top K it joins.
    for layer in layers:
        members = [m["score"] for m in layer["top_k"]]
        assert len(members) <= 2
        assert min(members) >= result.initial.score - 1e-9
        for cand in run.candidates(layer["layer"]):
            if cand["score"] is not None and cand["score"] <= result.initial.score:
                assert not cand["accepted"]
    assert result.stopped.startswith("stopped before layer 3: nothing is left to merge")
    assert result.layers[-1]["stopped"] == result.stopped
    assert run.saved["layer-2/layer.json"]["stopped"] == result.stopped
    assert result.layers[0]["stopped"] is None
    assert sum(layer["accepted"] for layer in layers) == len(accepted)


def keyword_judge(nodes: list[tuple[str, int, str]]) -> tuple[float, float, float, float]:
    """5 for the starting outline; +3 with a faithfulness section, -4 with a hybrid one."""
    titles = " ".join(title for _, _, title in nodes)
    score = 5.0 + 3.0 * ("Faithfulness" in titles) - 4.0 * ("Hybrid" in titles)
    return score, score, score, score


def test_a_worse_candidate_never_enters_even_with_room(fake_llm: FakeLLMServer) -> None:
    run = Run(fake_llm, judge=keyword_judge)
    weights = {"judge": 1.0, "entropy": 0.0, "coverage": 0.0, "redundancy": 0.0}
    result = run(RefineOptions(layers=3, kernel=2, top_k=10, max_sections=30, weights=weights))
    assert result.initial.score == pytest.approx(0.5)
    scored = [c for c in run.candidates() if c["score"] is not None]
    worse = [c for c in scored if c["score"] < 0.5]
    better = [c for c in scored if c["score"] > 0.5]
    assert worse and better
    assert not any(c["accepted"] for c in worse)
    assert all(c["accepted"] for c in better if c["layer"] == 1)
    assert result.score.score == pytest.approx(max(c["score"] for c in scored))
    assert any(node.title == "Faithfulness metrics" for node, _ in result.outline.walk())
    assert not any("Hybrid" in node.title for node, _ in result.outline.walk())


def test_requests_per_layer_stay_within_the_plan(fake_llm: FakeLLMServer) -> None:
    run = Run(fake_llm)
    options = RefineOptions(layers=3, kernel=2, top_k=3, max_candidates=5)
    result = run(options)
    plan = refine_plan(len(PAPERS), options)
    before = 0
    ran = result.layers
    assert len(ran) >= 2
    for layer, bound in zip(ran, plan, strict=False):
        assert bound["layer"] == layer["layer"]
        made = run.requests_at[f"layer-{layer['layer']}/layer.json"] - before
        assert made == layer["calls"]
        assert made <= bound["merge"] + bound["apply"] + bound["judge"]
        assert layer["applications"] <= options.max_candidates
        before += made
    assert len(fake_llm.chat_requests()) == result.calls == run.progress
    assert result.calls <= sum(b["merge"] + b["apply"] + b["judge"] for b in plan)
    tasks = run.tasks()
    assert tasks.count("merge") <= sum(b["merge"] for b in plan)
    assert tasks.count("apply") <= sum(b["apply"] for b in plan)


def test_applications_go_round_robin_from_the_best_outline(fake_llm: FakeLLMServer) -> None:
    run = Run(fake_llm, judge=size_judge)
    run(RefineOptions(layers=2, kernel=2, top_k=3, max_candidates=7))
    first = run.candidates(1)
    assert {c["source_rank"] for c in first} == {1}  # one outline to start from
    second = run.candidates(2)
    ranks = [c["source_rank"] for c in second]
    proposals = [c["proposal"]["id"] for c in second]
    assert ranks == sorted(ranks) and ranks[0] == 1 and max(ranks) > 1
    per_rank = len(set(proposals))
    assert proposals[:per_rank] == proposals[per_rank : 2 * per_rank]
    assert len(second) <= 7


def test_edits_accumulate_across_layers(fake_llm: FakeLLMServer) -> None:
    run = Run(fake_llm, judge=size_judge)
    weights = {"judge": 1.0, "entropy": 0.0, "coverage": 0.0, "redundancy": 0.0}
    result = run(RefineOptions(layers=3, kernel=3, top_k=2, max_sections=30, weights=weights))

    layer_one_best = run.saved["layer-1/layer.json"]["top_k"][0]["label"]
    winner = run.saved[f"{layer_one_best}.json"]
    new_ids = {
        node_id
        for node_id in re.findall(r"'id': '(n\d+)'", str(winner["outline"]))
        if node_id not in ORIGINAL_IDS
    }
    assert new_ids, "the layer-1 winner should have added sections"
    final_ids = {node.id for node, _ in result.outline.walk()}
    assert new_ids <= final_ids
    assert len(result.history) == 2
    assert result.history[0].startswith("L1.") and result.history[1].startswith("L2.")
    assert result.to_json()["history"] == list(result.history)
    # Layer 2 merges against the layer-1 winner, so its edits can build on the new sections.
    merges = [r.prompt_text for r in fake_llm.chat_requests() if "Task: merge" in r.prompt_text]
    assert all(f"[{node_id}]" in merges[-1] for node_id in new_ids)
    assert not any(f"[{node_id}]" in merges[0] for node_id in new_ids)


def test_candidates_and_their_scores_are_saved(fake_llm: FakeLLMServer) -> None:
    run = Run(fake_llm)
    result = run(RefineOptions(layers=2, kernel=3, top_k=2))
    assert {"initial.json", "summary.json", "layer-1/merged.json", "layer-1/layer.json"} <= set(
        run.saved
    )
    candidate = run.saved["layer-1/candidate-01.json"]
    assert candidate["source"] == "initial" and candidate["source_rank"] == 1
    assert candidate["proposal"]["id"] == "L1.1" and candidate["proposal"]["edits"]
    assert candidate["proposal"]["papers"]
    assert set(candidate["terms"]) >= {"judge", "entropy", "coverage", "redundancy", "score"}
    assert candidate["rationale"].startswith("Judged")
    assert isinstance(candidate["accepted"], bool)
    Outline.from_json(candidate["outline"])
    assert run.saved["summary.json"] == result.to_json()
    again = RefineResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.outline == result.outline and again.history == result.history
    assert again.score.score == pytest.approx(result.score.score)
    assert again.to_json()["layers"] == result.to_json()["layers"]
    merged = run.saved["layer-1/merged.json"]
    assert [m["id"] for m in merged] == result.layers[0]["merged_ids"]
    assert result.layers[0]["merged"] == len(merged)


def test_a_candidate_identical_to_one_already_scored_is_not_judged(
    fake_llm: FakeLLMServer,
) -> None:
    no_op = Suggestion("rename", targets=("n7",), title="evaluation ", description="")
    digests = {
        key: Digest(paper_key=key, nodes=d.nodes, suggestions=(no_op,) if i < 3 else ())
        for i, (key, d) in enumerate(sorted(DIGESTS.items()))
    }
    run = Run(fake_llm)
    result = run(RefineOptions(layers=2, kernel=3), digests=digests)
    candidates = run.candidates()
    assert candidates
    for candidate in candidates:
        assert candidate["duplicate_of"] == "initial" and candidate["score"] is None
    assert run.tasks().count("judge") == 1  # the starting outline only
    assert result.outline == OUTLINE


def test_failing_calls_are_skipped_with_warnings(fake_llm: FakeLLMServer) -> None:
    fake_llm.reply(r"Task: merge[^\n]*\n.*Fusion-in-Decoder", "this is not JSON")
    fake_llm.reply(r"Task: apply[^\n]*\n.*Negative sampling", "no outline either")
    fake_llm.reply(r"Task: rate[^\n]*\n.*Faithfulness metrics", "no scores")
    run = Run(fake_llm)
    result = run(RefineOptions(layers=2, kernel=3, top_k=3))
    assert any("merge" in w and "skipped" in w for w in run.warnings)
    assert any("candidate" in w and "skipped" in w for w in run.warnings)
    assert any("judge of layer-1/candidate" in w for w in run.warnings)
    errors = [c["error"] for c in run.candidates(1)]
    assert "the apply call failed" in errors and "the judge call failed" in errors
    assert all(not c["accepted"] for c in run.candidates(1) if c["error"])
    assert result.initial.judged
    assert result.score.score >= result.initial.score


def test_a_failed_starting_judge_falls_back_to_the_data_terms(fake_llm: FakeLLMServer) -> None:
    fake_llm.reply(r"Task: rate", "not a judgement", times=2)  # the call and its repair
    run = Run(fake_llm)
    result = run(RefineOptions(layers=2, kernel=3))
    assert any("data terms alone" in w for w in run.warnings)
    assert not result.initial.judged
    assert run.tasks().count("judge") == 2
    assert all(not c["terms"]["judged"] for c in run.candidates() if c["terms"])
    assert not result.score.judged


def test_a_refused_key_stops_the_run(fake_llm: FakeLLMServer) -> None:
    fake_llm.require_api_key = "sk-other"
    run = Run(fake_llm)
    with pytest.raises(LLMRejectedError):
        run(RefineOptions(layers=2))
    assert "summary.json" not in run.saved
