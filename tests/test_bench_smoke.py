"""The benchmark script at its smallest size, and the call graph it reads from a real run.

Figures are printed, not asserted against time (machines differ). What is asserted: the
script runs end to end and prints every figure; the run's trace is a correct dependency
graph (no call sent before a call it needs had answered, so every ``needs`` is data the
prompt could hold); the graph says what the pipeline's data flow is; and the lower bound is
never above the time the run really took.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from calltrace import dependencies, read_calls, stage_of  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    work = tmp_path_factory.mktemp("bench")
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench.py"),
        "--papers",
        "50",
        "--latency",
        "0.02",
        "--per-token",
        "0",
        "--work",
        str(work),
        "--json",
        str(work / "figures.json"),
        "--",
        "--no-full-text",
        "--layers",
        "2",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads((work / "figures.json").read_text())["runs"][0]
    return figures, work / "n50-p0" / "survey", done.stdout


def test_the_script_prints_every_figure(bench: tuple[dict, Path, str]) -> None:
    figures, _, stdout = bench
    for stage in ("gather", "skeleton", "digest", "refine", "map", "write", "render"):
        assert f"| {stage} |" in stdout
    assert "wall / bound" in stdout and "LLM×MapReduce-V2" in stdout
    assert figures["calls"] > 50 and figures["tokens_in"] > 0
    assert figures["stages"]["digest"]["calls"] == 50
    assert figures["pipeline_cpu_s"] > 0 and figures["peak_mb"] > 0
    v2 = figures["v2"]["same_layers_kernel"]
    assert (v2["layers"], v2["kernel"]) == (2, 3)
    assert v2["digest"]["calls"] == 100  # two passes over 50 papers


def test_the_trace_is_a_correct_dependency_graph(bench: tuple[dict, Path, str]) -> None:
    figures, _, _ = bench
    assert figures["order_violations"] == []


def test_the_bound_is_never_above_the_real_run(bench: tuple[dict, Path, str]) -> None:
    figures, _, _ = bench
    bound = figures["bound"]
    assert 0 < bound["seconds"] <= figures["llm_span_s"] + 0.01
    assert bound["seconds"] >= max(bound["critical_path_s"], bound["work_over_slots_s"])


def test_the_graph_follows_the_data(bench: tuple[dict, Path, str]) -> None:
    _, survey, _ = bench
    calls = read_calls(survey / "logs" / "calls.jsonl")
    deps = dependencies(calls)
    by_task = {c.task: c.id for c in calls}
    tasks = {c.id: c.task for c in calls}

    def ancestors(call_id: str) -> set[str]:
        seen: set[str] = set()
        todo = [call_id]
        while todo:
            for dep in deps[todo.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return {tasks[i] for i in seen}

    assert {stage_of(c.task) for c in calls} >= {"skeleton", "digest", "refine", "write"}
    digests = {c.task for c in calls if c.task.startswith("digest/")}
    assert len(digests) == 50
    # Every digest reads the skeleton; refinement's first merges read every digest.
    for call in calls:
        if call.task.startswith("digest/"):
            assert "skeleton/merge" in ancestors(call.id)
    first_merge = by_task["refine/1/merge/1"]
    assert digests <= ancestors(first_merge)
    # A leaf is written from the final outline and all evidence: after every refine call.
    leaves = [c for c in calls if c.task.startswith("section/") and c.task.endswith("/draft")]
    refine = {c.task for c in calls if c.task.startswith("refine/")}
    assert leaves and any(refine <= ancestors(c.id) for c in leaves)
    # The introduction and the tables read no section: they may overlap the leaves.
    for call in calls:
        if call.task.startswith(("introduction/", "table/")):
            assert not any(t.startswith(("section/", "cover/")) for t in ancestors(call.id))
    # The abstract reads the introduction and the conclusion.
    abstract = ancestors(by_task["abstract/draft"])
    assert "introduction/draft" in abstract and "conclusion/draft" in abstract
