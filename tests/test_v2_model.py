"""benchmarks/v2_model.py: the calls and input tokens LLM×MapReduce-V2's design would spend."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from v2_model import (
    ABSTRACT_CAP,
    PAPER_CAP,
    Library,
    StageCost,
    V2Options,
    library_from_texts,
    v2_breakdown,
    v2_cost,
)

LEAVES, INTERNAL = 20, 6
S = LEAVES + INTERNAL  # sections V2 writes


def library(n: int, *, paper: int = 8_000, abstract: int = 250, **shape: int) -> Library:
    sizes = {
        "leaves": LEAVES,
        "internal": INTERNAL,
        "outline_tokens": 3_000,
        "digest_tokens": 1_500,
        "section_tokens": 900,
    }
    sizes.update(shape)
    return Library(
        paper_tokens=(paper,) * n,
        abstract_tokens=(abstract,) * n,
        title_tokens=(15,) * n,
        **sizes,
    )


SHIPPED = V2Options()


def calls(n: int, options: V2Options = SHIPPED) -> dict[str, int]:
    return {stage: cost.calls for stage, cost in v2_cost(library(n), options).items()}


# Call totals with the shipped script (W=3, Sg=3, B=1, 6 layers, C=10, top_k=6, 3x3 refine).
# skeleton = 1 + ceil(G/3) + 1; digest = 2N; write = S + 1 (chart);
# refine = G feedback + 1 score + 2G (layer 0) + layers + 27 self-refine, where a layer is
# 3 calls per group, but a one-suggestion group skips the kernel call (2 calls).
#   N=50:  G=17. Layers 1-6: 17 <= 30 so C=10 groups of 3 each -> 6 * 30 = 180.
#          8 + 100 + (17 + 1 + 34 + 180 + 27 = 259) + 1 = 368 (+ S)
#   N=100: G=34 > 30, layer 1 pools 34 into 11 groups of 3 and 1 of 1 -> 11*3 + 2 = 35;
#          layers 2-6: 5 * 30 = 150.
#          14 + 200 + (34 + 1 + 68 + 35 + 150 + 27 = 315) + 1 = 530 (+ S)
#   N=200: G=67, layer 1 pools 67 into 22 groups of 3 and 1 of 1 -> 68; then 23 <= 30,
#          layers 2-6: 150.
#          25 + 400 + (67 + 1 + 134 + 68 + 150 + 27 = 447) + 1 = 873 (+ S)
# (The earlier reading's 531 + S and 874 + S counted a kernel call for the lone suggestion.)
@pytest.mark.parametrize(
    ("n", "skeleton", "refine", "total"),
    [(50, 8, 259, 368 + S), (100, 14, 315, 530 + S), (200, 25, 447, 873 + S)],
)
def test_shipped_call_totals(n: int, skeleton: int, refine: int, total: int) -> None:
    got = calls(n)
    assert got == {
        "skeleton": skeleton,
        "digest": 2 * n,
        "refine": refine,
        "write": S + 1,
        "total": total,
    }


def test_below_ninety_papers_refine_is_three_calls_per_group_plus_208() -> None:
    for n in (12, 45, 60, 90):
        groups = math.ceil(n / 3)
        assert calls(n)["refine"] == 3 * groups + 208


def test_a_pooled_lone_suggestion_costs_no_kernel_call() -> None:
    parts = v2_breakdown(library(100))
    assert parts["refine.layer0"].calls == 2 * 34
    assert parts["refine.layer1"].calls == 11 * 3 + 2
    assert [parts[f"refine.layer{i}"].calls for i in range(2, 7)] == [30] * 5
    # 99 papers: 33 groups, pooled into 11 full groups
    assert v2_breakdown(library(99))["refine.layer1"].calls == 33


def test_digest_sends_the_full_text_once_per_pass() -> None:
    n, paper = 50, 8_000
    short = v2_cost(library(n, paper=paper))["digest"]
    long = v2_cost(library(n, paper=2 * paper))["digest"]
    assert long.calls == short.calls == 2 * n
    # B + 1 = 2 passes, each with every paper's whole text
    assert long.input_tokens - short.input_tokens == 2 * n * paper
    one_pass = v2_cost(library(n, paper=2 * paper), V2Options(blocks=0))["digest"]
    assert one_pass.calls == n
    assert long.input_tokens == 2 * one_pass.input_tokens


def test_text_is_cut_only_past_the_800k_token_cap() -> None:
    near = v2_cost(library(3, paper=PAPER_CAP))["digest"].input_tokens
    past = v2_cost(library(3, paper=PAPER_CAP + 50_000))["digest"].input_tokens
    assert near == past


def test_skeleton_reads_abstracts_up_to_the_cap() -> None:
    def init_tokens(abstract: int) -> int:
        return v2_breakdown(library(30, abstract=abstract))["skeleton.init"].input_tokens

    assert init_tokens(400) - init_tokens(300) == 30 * 100
    assert init_tokens(ABSTRACT_CAP + 500) == init_tokens(ABSTRACT_CAP)


def test_more_layers_cost_more_calls() -> None:
    totals = [calls(50, V2Options(layers=layers))["total"] for layers in range(0, 9)]
    assert totals == sorted(set(totals))
    # each layer past the first convolves C=10 groups of 3
    assert totals[7] - totals[6] == 30
    assert calls(50, V2Options(layers=0))["refine"] == 17 + 1 + 34 + 27


def test_kernel_sets_the_group_count() -> None:
    for kernel, groups in [(2, 25), (3, 17), (4, 13), (5, 10)]:
        parts = v2_breakdown(library(50), V2Options(kernel=kernel))
        assert parts["refine.feedback"].calls == groups
        assert parts["refine.layer0"].calls == 2 * groups
        assert parts["skeleton.init"].calls == math.ceil(groups / 3)
    # a wider kernel sends more suggestions to each kernel call
    narrow = v2_breakdown(library(50), V2Options(kernel=3))["refine.layer2"]
    wide = v2_breakdown(library(50), V2Options(kernel=4))["refine.layer2"]
    assert wide.calls == narrow.calls and wide.input_tokens > narrow.input_tokens


def test_same_layers_and_kernel_as_our_run() -> None:
    ours = v2_cost(library(40), V2Options(layers=2, kernel=4))
    groups = 10
    assert ours["refine"].calls == groups + 1 + 2 * groups + 2 * 30 + 27


def test_no_blocks_means_no_refine_and_one_digest_pass() -> None:
    got = calls(50, V2Options(blocks=0))
    assert got["refine"] == 0 and got["digest"] == 50
    twice = calls(50, V2Options(blocks=2))
    assert twice["refine"] == 2 * 259 and twice["digest"] == 150


def test_zero_papers_cost_nothing() -> None:
    for lib in (library(0), library(4, paper=0)):
        cost = v2_cost(lib)
        assert set(cost) == {"skeleton", "digest", "refine", "write", "total"}
        assert all(c == StageCost(0, 0) for c in cost.values())


def test_papers_without_text_are_left_out() -> None:
    mixed = Library(
        paper_tokens=(5_000, 0, 5_000),
        abstract_tokens=(200, 200, 200),
        title_tokens=(10, 10, 10),
        leaves=4,
        internal=2,
        outline_tokens=1_000,
        digest_tokens=500,
        section_tokens=400,
    )
    assert v2_cost(mixed)["digest"].calls == 2 * 2


def test_stages_add_up_to_the_total() -> None:
    cost = v2_cost(library(77))
    stages = [cost[s] for s in ("skeleton", "digest", "refine", "write")]
    assert cost["total"].calls == sum(c.calls for c in stages)
    assert cost["total"].input_tokens == sum(c.input_tokens for c in stages)
    assert all(c.input_tokens > 0 for c in stages)


def test_writing_reads_every_digest_and_the_text_below() -> None:
    base = v2_cost(library(50))["write"]
    more_digest = v2_cost(library(50, digest_tokens=2_500))["write"]
    assert more_digest.input_tokens - base.input_tokens == 50 * 1_000
    longer = v2_cost(library(50, section_tokens=1_900))["write"]
    # the internal sections read their leaves' text, the chart reads all sections
    assert longer.input_tokens - base.input_tokens == (LEAVES + S) * 1_000


@pytest.mark.parametrize(
    "bad",
    [
        {"layers": -1},
        {"kernel": 1},
        {"kernel": 0},
        {"candidates": 0},
        {"blocks": -1},
        {"skeleton_group": 0},
        {"top_k": 0},
        {"self_refine": (3, -1, 3)},
        {"self_refine": (3, 3)},
    ],
)
def test_bad_options_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        V2Options(**bad)


def test_bad_library_raises() -> None:
    with pytest.raises(ValueError):
        Library((1, 2), (1,), (1, 2), 1, 0, 10, 10, 10)
    with pytest.raises(ValueError):
        library(3, leaves=-1)


def test_library_from_texts_counts_like_approx_tokens() -> None:
    lib = library_from_texts(
        ["x" * 4_000, ""],
        ["a" * 400, "b" * 800],
        ["t" * 40, "u" * 41],
        leaves=3,
        internal=1,
        outline_tokens=500,
        digest_tokens=300,
        section_tokens=200,
        topic="A survey title of forty characters long.",
    )
    assert lib.paper_tokens == (1_000, 200)  # no text: the abstract stands in
    assert lib.abstract_tokens == (100, 200)
    assert lib.title_tokens == (10, 11)
    assert lib.topic_tokens == 10
    with pytest.raises(ValueError):
        library_from_texts(
            ["x"],
            [],
            ["t"],
            leaves=1,
            internal=0,
            outline_tokens=1,
            digest_tokens=1,
            section_tokens=1,
        )


def test_defaults_are_v2s() -> None:
    opt = V2Options()
    assert (opt.layers, opt.kernel, opt.candidates, opt.blocks) == (6, 3, 10, 1)
    assert (opt.skeleton_group, opt.self_refine, opt.top_k) == (3, (3, 3, 3), 6)
