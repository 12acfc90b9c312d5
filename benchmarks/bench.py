"""The performance benchmark: a whole ``surveygen write`` run against a model with a latency
model, measured stage by stage and set against the best any schedule could do and against
LLM×MapReduce-V2's design on the same library.

    python benchmarks/bench.py --papers 50                 # 50 papers from abstracts
    python benchmarks/bench.py --papers 50 --pages 30      # 50 papers with 30-page texts
    python benchmarks/bench.py --sizes 50,200,1000 --latency 0 --per-token 0   # scaling

Each run generates a synthetic library (benchmarks/library.py), starts the tests' scripted
OpenAI-compatible server in a process of its own (benchmarks/llm_server.py; each answer
waits ``--latency`` s plus ``--per-token`` s per output token), and runs the installed
``surveygen write`` in a fresh process with a fresh cache, exactly as a user would. Then it
prints, per stage: wall time, LLM calls, input and output tokens, CPU time of the surveygen
process (work outside LLM waits: a process waiting for an answer uses no CPU) and its peak
memory by the end of the stage; the critical-path lower bound of the run's recorded call
graph at the run's concurrency (benchmarks/critical_path.py, benchmarks/calltrace.py) and
wall / bound; and LLM×MapReduce-V2's calls and input tokens for the same library
(benchmarks/v2_model.py), with our layers and kernel and with V2's own.

With ``--sizes`` it runs each size and fits the growth of CPU time and peak memory with the
number of papers (the exponent b of a least-squares fit of log y = a + b log n).
``--json FILE`` also writes every figure as JSON. Figures, not assertions: nothing here
passes or fails on time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # surveygen itself, also when run from a checkout

from calltrace import call_graph, order_violations, read_calls, stage_of  # noqa: E402
from critical_path import lower_bound  # noqa: E402
from library import TOPIC, write_library  # noqa: E402
from v2_model import V2Options, library_from_texts, v2_cost  # noqa: E402

STAGES = ("gather", "skeleton", "digest", "refine", "map", "write", "render")
_ENV_DROP = ("OPENAI_", "SURVEYGEN_")
_PROXIES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


# --------------------------------------------------------------------------------------------
# One run


def _environment(work: Path) -> dict[str, str]:
    """The user's environment without keys, endpoints, proxies or surveygen settings, and
    with a fresh cache and config folder (so every call really goes to the model)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_ENV_DROP) and k.lower() not in _PROXIES
    }
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config")):
        (work / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(work / sub)
    env["SURVEYGEN_ARXIV_URL"] = "http://127.0.0.1:9/api/query"  # never reached: --no-search
    return env


def _start_server(latency: float, per_token: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "llm_server.py"),
            "--latency",
            str(latency),
            "--per-token",
            str(per_token),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    if not url.startswith("http"):
        server.kill()
        raise SystemExit("the benchmark's model server did not start")
    return server, url


def _client_probe(url: str, calls: int = 200) -> float:
    """CPU milliseconds the ``openai`` client itself spends per call (building the request,
    HTTP, parsing the answer), measured in this process against the same server: part of
    every LLM call, whatever the pipeline does around it."""
    import asyncio

    import openai

    from surveygen.llm.parsing import response_format
    from surveygen.stages.digest import DigestDraft

    schema = response_format(DigestDraft, "json_schema")
    messages = [
        {"role": "system", "content": "You read papers. " * 100},
        {"role": "user", "content": "Task: propose 3 to 8 arXiv search queries. " * 100},
    ]

    async def probe() -> float:
        client = openai.AsyncOpenAI(base_url=url, api_key="sk-probe", max_retries=0)
        slots = asyncio.Semaphore(16)

        async def one() -> None:
            async with slots:
                await client.chat.completions.create(
                    model="probe", messages=messages, max_tokens=64, response_format=schema
                )

        await one()  # connection and lazy imports
        started = time.process_time()
        await asyncio.gather(*(one() for _ in range(calls)))
        spent = time.process_time() - started
        await client.close()
        return spent / calls * 1000

    return asyncio.run(probe())


def run_once(
    n: int,
    *,
    pages: int,
    concurrency: int,
    latency: float,
    per_token: float,
    seed: int,
    work: Path,
    extra: list[str],
) -> dict[str, Any]:
    """One ``surveygen write`` run, in ``work`` (emptied first); every figure of it."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    library = write_library(work / "papers.jsonl", n, pages=pages, seed=seed)
    out = work / "survey"
    server, url = _start_server(latency, per_token)
    command = [
        sys.executable,
        "-m",
        "surveygen",
        "write",
        TOPIC,
        "--papers",
        str(library),
        "--no-search",
        "--base-url",
        url,
        "--concurrency",
        str(concurrency),
        "--out",
        str(out),
        *extra,
    ]
    try:
        client_ms = _client_probe(url)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        with open(work / "stdout.txt", "w") as stdout, open(work / "stderr.txt", "w") as stderr:
            code = subprocess.call(
                command, cwd=work, env=_environment(work), stdout=stdout, stderr=stderr
            )
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    if code != 0:
        tail = (work / "stderr.txt").read_text(errors="replace")[-2000:]
        raise SystemExit(f"surveygen write exited {code}:\n{tail}")
    process_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return _figures(
        client_ms=client_ms,
        n=n,
        pages=pages,
        concurrency=concurrency,
        latency=(latency, per_token),
        wall=wall,
        process_cpu=process_cpu,
        out=out,
        library=library,
    )


def _figures(**run: Any) -> dict[str, Any]:
    out: Path = run["out"]
    report = json.loads((out / "report.json").read_text())
    calls = read_calls(out / "logs" / "calls.jsonl")
    per_stage: dict[str, dict[str, Any]] = {
        s: {"calls": 0, "tokens_in": 0, "tokens_out": 0} for s in STAGES
    }
    for call in calls:
        row = per_stage.setdefault(
            stage_of(call.task), {"calls": 0, "tokens_in": 0, "tokens_out": 0}
        )
        row["calls"] += 1
        row["tokens_in"] += call.tokens_in
        row["tokens_out"] += call.tokens_out
    walls = report.get("seconds_per_stage", {})
    cpus = report.get("cpu_seconds_per_stage", {})
    peaks = report.get("peak_memory_mb_by_stage_end", {})
    for stage, row in per_stage.items():
        row.update(wall=walls.get(stage, 0.0), cpu=cpus.get(stage, 0.0), peak_mb=peaks.get(stage))
    bound = lower_bound(call_graph(calls), run["concurrency"])
    llm_span = (max(c.end for c in calls) - min(c.start for c in calls)) if calls else 0.0
    return {
        "papers": run["n"],
        "pages": run["pages"],
        "concurrency": run["concurrency"],
        "latency": {"base_s": run["latency"][0], "per_output_token_s": run["latency"][1]},
        "wall_s": round(run["wall"], 3),
        "llm_span_s": round(llm_span, 3),
        "process_cpu_s": round(run["process_cpu"], 3),
        "pipeline_cpu_s": round(sum(cpus.values()), 3),
        "client_cpu_ms_per_call": round(run["client_ms"], 3),
        "pipeline_cpu_without_client_s": round(
            sum(cpus.values()) - len(calls) * run["client_ms"] / 1000, 3
        ),
        "peak_mb": max((p for p in peaks.values() if p is not None), default=None),
        "stages": per_stage,
        "calls": len(calls),
        "tokens_in": sum(c.tokens_in for c in calls),
        "tokens_out": sum(c.tokens_out for c in calls),
        "bound": {
            "critical_path_s": round(bound.critical_path, 3),
            "work_over_slots_s": round(bound.work / bound.concurrency, 3),
            "phased_s": round(bound.phased, 3),
            "seconds": round(bound.seconds, 3),
            "path": [next(c.task for c in calls if c.id == i) for i in bound.path],
        },
        "wall_over_bound": round(run["wall"] / bound.seconds, 3) if bound.seconds else None,
        "llm_span_over_bound": round(llm_span / bound.seconds, 3) if bound.seconds else None,
        "order_violations": order_violations(calls),
        "v2": _v2(out, run["library"], report),
    }


def _v2(out: Path, library: Path, report: dict[str, Any]) -> dict[str, Any]:
    """LLM×MapReduce-V2's cost for this library and our outline's shape."""
    from surveygen.library.pdf import strip_references
    from surveygen.text import approx_tokens

    papers = [json.loads(line) for line in library.read_text().splitlines() if line.strip()]
    # V2 removes a paper's reference list before its digests read it.
    texts = [strip_references(p.get("text") or "") or p.get("abstract") or "" for p in papers]
    outline = (out / "outline.md").read_text()
    headings = [line for line in outline.splitlines() if line.startswith("#")]
    levels = [len(h) - len(h.lstrip("#")) for h in headings]
    leaves = sum(
        1 for i, level in enumerate(levels) if i + 1 >= len(levels) or levels[i + 1] <= level
    )
    digests = [
        json.loads(p.read_text())["item"]
        for folder in ("digests", "mapped")
        for p in sorted((out / "state" / folder).glob("*.json"))
    ]
    digest_tokens = (
        round(sum(approx_tokens(json.dumps(d)) for d in digests) / len(digests)) if digests else 0
    )
    sections = [p for p in sorted((out / "state" / "sections").glob("*.json"))]
    section_texts = [json.loads(p.read_text())["item"].get("text", "") for p in sections]
    section_tokens = (
        round(sum(approx_tokens(t) for t in section_texts) / len(section_texts))
        if section_texts
        else 0
    )
    shape = library_from_texts(
        texts,
        [p.get("abstract") or "" for p in papers],
        [p.get("title") or "" for p in papers],
        leaves=leaves,
        internal=max(0, len(headings) - leaves),
        outline_tokens=approx_tokens(outline),
        digest_tokens=digest_tokens,
        section_tokens=section_tokens,
    )
    settings = report.get("settings", {})
    layers = int(settings.get("layers", 3))
    kernel = int(settings.get("kernel", 3))
    same = v2_cost(shape, V2Options(layers=layers, kernel=kernel))
    own = v2_cost(shape, V2Options())

    def as_json(cost: dict[str, Any]) -> dict[str, Any]:
        return {k: {"calls": v.calls, "tokens_in": v.input_tokens} for k, v in cost.items()}

    return {
        "same_layers_kernel": {"layers": layers, "kernel": kernel, **as_json(same)},
        "v2_defaults": as_json(own),
    }


# --------------------------------------------------------------------------------------------
# Printing


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def print_run(fig: dict[str, Any]) -> None:
    text = "abstracts" if not fig["pages"] else f"{fig['pages']}-page full texts"
    lat = fig["latency"]
    print(
        f"\n## {fig['papers']} papers ({text}), --concurrency {fig['concurrency']}, "
        f"latency {lat['base_s']:g} s + {lat['per_output_token_s'] * 1000:g} ms/token out\n"
    )
    print("| stage | wall s | calls | tokens in | tokens out | CPU s | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stage, row in fig["stages"].items():
        print(
            f"| {stage} | {_num(row['wall'])} | {row['calls']} | {row['tokens_in']:,} | "
            f"{row['tokens_out']:,} | {_num(row['cpu'], 2)} | {_num(row['peak_mb'], 0)} |"
        )
    print(
        f"| **total** | {_num(fig['wall_s'])} | {fig['calls']} | {fig['tokens_in']:,} | "
        f"{fig['tokens_out']:,} | {_num(fig['pipeline_cpu_s'], 2)} | {_num(fig['peak_mb'], 0)} |"
    )
    b = fig["bound"]
    print(f"\nprocess CPU (interpreter start and imports included): {fig['process_cpu_s']:.2f} s")
    print(
        f"the openai client itself: {fig['client_cpu_ms_per_call']:.2f} ms CPU per call "
        f"(probe in the same run); pipeline CPU without it: "
        f"{fig['pipeline_cpu_without_client_s']:.2f} s"
    )
    print(
        f"bound: critical path {b['critical_path_s']:.1f} s, work/slots "
        f"{b['work_over_slots_s']:.1f} s, phased {b['phased_s']:.1f} s -> {b['seconds']:.1f} s"
    )
    print(
        f"wall / bound = {fig['wall_over_bound']}; LLM span (first send to last answer) "
        f"{fig['llm_span_s']:.1f} s, / bound = {fig['llm_span_over_bound']}"
    )
    if fig["order_violations"]:
        print(f"TRACE ERRORS ({len(fig['order_violations'])}):")
        for line in fig["order_violations"][:10]:
            print(f"  {line}")
    v2 = fig["v2"]
    same = v2["same_layers_kernel"]
    print(
        f"\nLLM×MapReduce-V2's design on this library (model: benchmarks/v2_model.py), with "
        f"our {same['layers']} layers and kernel {same['kernel']} / with V2's defaults:\n"
    )
    print("| stage | V2 calls | V2 tokens in | V2-default calls | V2-default tokens in |")
    print("|---|---:|---:|---:|---:|")
    for stage in same:
        if stage in ("layers", "kernel"):
            continue
        own = v2["v2_defaults"][stage]
        print(
            f"| {stage} | {same[stage]['calls']:,} | {same[stage]['tokens_in']:,} | "
            f"{own['calls']:,} | {own['tokens_in']:,} |"
        )
    ratio = fig["tokens_in"] / same["total"]["tokens_in"] if same["total"]["tokens_in"] else 0
    print(
        f"\nours / V2 (same layers and kernel): calls {fig['calls']} / "
        f"{same['total']['calls']} = {fig['calls'] / max(1, same['total']['calls']):.2f}, "
        f"input tokens {fig['tokens_in']:,} / {same['total']['tokens_in']:,} = {ratio:.3f}"
    )


def fit_exponent(sizes: list[float], values: list[float]) -> float | None:
    """b of the least-squares fit log(value) = a + b log(size)."""
    points = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if v > 0]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def print_scaling(runs: list[dict[str, Any]]) -> dict[str, Any]:
    sizes = [r["papers"] for r in runs]
    cpu = [r["pipeline_cpu_s"] for r in runs]
    mem = [r["peak_mb"] or 0.0 for r in runs]
    print("\n## Scaling\n")
    print("| papers | pipeline CPU s | process CPU s | peak MB | calls | wall s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r['papers']} | {r['pipeline_cpu_s']:.2f} | {r['process_cpu_s']:.2f} | "
            f"{_num(r['peak_mb'], 0)} | {r['calls']} | {r['wall_s']:.1f} |"
        )
    growth = {"cpu": fit_exponent(sizes, cpu), "peak_mb": fit_exponent(sizes, mem)}
    print(
        f"\nfitted growth exponent: CPU n^{_num(growth['cpu'], 2)}, "
        f"peak memory n^{_num(growth['peak_mb'], 2)}"
    )
    return growth


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=50)
    parser.add_argument("--sizes", help="comma-separated library sizes, e.g. 50,200,1000")
    parser.add_argument("--pages", type=int, default=0, help="full-text pages (0: abstracts)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--per-token", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("extra", nargs="*", help="more `surveygen write` options, after --")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.papers]
    with tempfile.TemporaryDirectory(prefix="surveygen-bench-") as temp:
        root = args.work or Path(temp)
        runs = []
        for n in sizes:
            fig = run_once(
                n,
                pages=args.pages,
                concurrency=args.concurrency,
                latency=args.latency,
                per_token=args.per_token,
                seed=args.seed,
                work=root / f"n{n}-p{args.pages}",
                extra=list(args.extra),
            )
            print_run(fig)
            runs.append(fig)
        result: dict[str, Any] = {"runs": runs}
        if len(runs) > 1:
            result["growth_exponent"] = print_scaling(runs)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if any(r["order_violations"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
