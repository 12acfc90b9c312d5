"""`surveygen write` end to end over HTTP against the hermetic server, through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakellm import FakeLLMServer
from scripted import FAKE_KEY

from surveygen.cli import main
from surveygen.outline_md import parse_outline_md
from surveygen.stages.render import render_outline_md

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "data" / "sample_library.jsonl"
TOPIC = "retrieval-augmented language models"
SECRET = "sk-proj-THIS-KEY-MUST-NEVER-BE-WRITTEN-42"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory with a surveygen.toml that makes retries fast."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "surveygen.toml").write_text(
        "retry_base_seconds = 0.01\nretry_max_seconds = 0.05\ntimeout = 2\n"
    )
    return tmp_path


def write(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["write", *args], env=env, catch_exceptions=False)


def base_args(server: FakeLLMServer, out: Path, *extra: str) -> list[str]:
    return [
        TOPIC,
        "--papers",
        str(LIBRARY),
        "--base-url",
        server.base_url,
        "--out",
        str(out),
        "--no-search",
        *extra,
    ]


def load_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_write_produces_the_run_directory(llm, workdir):
    out = workdir / "run"
    result = write(*base_args(llm, out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == [
        str(out / n) for n in ("survey.md", "outline.md", "report.json")
    ]
    for stage in (
        "[gather:library]",
        "[skeleton]",
        "[digest]",
        "[refine]",
        "[map]",
        "[write]",
        "[render]",
    ):
        assert stage in result.stderr

    survey = (out / "survey.md").read_text()
    assert survey.startswith("# A Survey of Retrieval-Augmented Language Models\n")
    assert "## References" in survey and "[1]" in survey
    assert "[@" not in survey and FAKE_KEY not in survey

    report = load_report(out)
    leaves = report["leaf_sections"]
    assert report["citations"]["unresolved"] == 0
    assert report["citations"]["removed_unknown_keys"] == leaves  # one invented key per section
    assert report["evidence"]["dropped_quotes"] == 8  # one fabricated quote per paper
    assert report["papers"]["kept"] == 8
    assert 0 < report["citations"]["distinct_cited"] <= 8
    calls = [json.loads(line) for line in (out / "logs" / "calls.jsonl").read_text().splitlines()]
    stages = Counter(c["stage"] for c in calls)
    redigested = report["papers"]["redigested_for_final_outline"]
    assert stages["skeleton"] == 1 and stages["refine"] > 0
    # one call per leaf section, then the rest of the writing (fixes, tables, syntheses, frame)
    assert sum(c["prompt"] == "write" for c in calls) == leaves < stages["write"]
    assert stages["digest"] == 8 + redigested  # the map stage digests with the digest model
    assert report["llm"]["calls"] + report["llm"]["cache_hits"] == len(calls)
    assert set(report["seconds_per_stage"]) >= {"gather", "skeleton", "digest", "write", "render"}

    papers = [json.loads(line) for line in (out / "papers.jsonl").read_text().splitlines()]
    assert len(papers) == 8 and all(p["key"] and p["source"] for p in papers)
    outline_md = (out / "outline.md").read_text()
    assert render_outline_md(parse_outline_md(outline_md)) == outline_md
    assert sum(c["prompt"] == "digest" for c in calls) == 8 + redigested
    assert all(len(c["prompt_version"]) == 12 for c in calls)
    assert (out / "state" / "outline.json").exists()
    assert len(list((out / "state" / "digests").glob("*.json"))) == 8


def test_rerunning_the_same_command_makes_no_calls(llm, workdir):
    out = workdir / "run"
    assert write(*base_args(llm, out)).exit_code == 0
    sent = len(llm.chat_requests())
    answers = load_report(out)["llm"]
    first = (out / "survey.md").read_text()
    result = write(*base_args(llm, out))
    assert result.exit_code == 0, result.stderr
    assert len(llm.chat_requests()) == sent
    report = load_report(out)
    assert report["llm"]["calls"] == 0
    assert report["llm"]["cache_hits"] == answers["calls"] + answers["cache_hits"]
    assert (out / "survey.md").read_text() == first


def test_run_completes_through_faults_and_malformed_answers(llm, workdir):
    # One call at a time, so the seeded fault sequence is the same on every run of the test.
    (workdir / "surveygen.toml").write_text(
        "retry_base_seconds = 0.01\nretry_max_seconds = 0.05\ntimeout = 1\nconcurrency = 1\n"
    )
    llm.fault_rates(
        {
            "429": 0.06,
            "500": 0.06,
            "timeout": 0.03,
            "drop": 0.03,
            "malformed_body": 0.02,
            "bad_json": 0.04,
            "truncated": 0.03,
            "empty": 0.03,
        },
        seed=7,
        retry_after_ms=10,
        seconds=3,
    )
    out = workdir / "run"
    result = write(*base_args(llm, out))
    assert result.exit_code == 0, result.stderr
    faults = [r.fault for r in llm.chat_requests() if r.fault]
    assert len(faults) >= 3  # the faults really happened
    survey = (out / "survey.md").read_text()
    assert "[@" not in survey and FAKE_KEY not in survey
    assert load_report(out)["citations"]["unresolved"] == 0


def test_servers_without_json_schema_support_still_work(llm, workdir):
    llm.reject_response_formats = {"json_schema", "json_object"}
    llm.wrap = "fence"
    out = workdir / "run"
    result = write(*base_args(llm, out))
    assert result.exit_code == 0, result.stderr
    assert "[1]" in (out / "survey.md").read_text()


def test_streaming_and_per_stage_models_from_the_config_file(llm, workdir):
    (workdir / "surveygen.toml").write_text(
        'stream = true\nmodel = "base-model"\n[models]\nwrite = "writer-model"\n'
    )
    out = workdir / "run"
    result = write(*base_args(llm, out))
    assert result.exit_code == 0, result.stderr
    bodies = [r.body for r in llm.chat_requests()]
    assert all(b["stream"] is True for b in bodies)
    # the write stage's prompts are the write*.j2 templates (tables included)
    calls = [json.loads(line) for line in (out / "logs" / "calls.jsonl").read_text().splitlines()]
    assert {c["model"] for c in calls if c["prompt"].startswith("write")} == {"writer-model"}
    writes = [b for b in bodies if b["model"] == "writer-model"]
    assert len(writes) == sum(c["prompt"].startswith("write") for c in calls)
    assert all(b["model"] == "base-model" for b in bodies if b not in writes)


def test_budget_stops_the_run_and_resume_finishes_it(llm, workdir):
    (workdir / "surveygen.toml").write_text(
        'retry_base_seconds = 0.01\n[prices."fake-model"]\ninput = 1.0\noutput = 1.0\n'
    )
    out = workdir / "run"
    args = base_args(llm, out, "--model", "fake-model")
    result = write(*args, "--budget", "0.01")
    assert result.exit_code == 1
    assert "budget" in result.stderr and "--resume" in result.stderr
    assert (out / "state" / "outline.json").exists()  # the paid skeleton is kept
    paid = len(llm.chat_requests())
    assert 1 <= paid < 11

    result = write(*args, "--budget", "5", "--resume")
    assert result.exit_code == 0, result.stderr
    skeleton_calls = [r for r in llm.chat_requests() if "propose the outline" in r.prompt_text]
    assert len(skeleton_calls) == 1  # not paid twice
    assert load_report(out)["llm"]["cost_usd"] <= 5


def test_no_endpoint_and_no_key_is_a_usage_error(workdir):
    result = write(TOPIC, "--papers", str(LIBRARY), "--out", str(workdir / "run"))
    assert result.exit_code == 2
    for needle in ("OPENAI_API_KEY", "--base-url", "--engine extractive"):
        assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_key_is_written_nowhere(llm, workdir):
    llm.require_api_key = SECRET
    out = workdir / "run"
    result = write(*base_args(llm, out), env={"OPENAI_API_KEY": SECRET})
    assert result.exit_code == 0, result.stderr
    assert llm.chat_requests()[0].headers["authorization"] == f"Bearer {SECRET}"
    cache_dir = Path(os.environ["XDG_CACHE_HOME"])
    files = [p for d in (out, cache_dir) for p in d.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in result.stdout + result.stderr


def test_a_server_echoing_the_key_does_not_leak_it(llm, workdir):
    llm.inject("echo_auth")
    out = workdir / "run"
    result = write(*base_args(llm, out), env={"OPENAI_API_KEY": SECRET})
    assert result.exit_code == 1
    assert "refused the API key" in result.stderr and SECRET not in result.stderr
    for path in (p for p in out.rglob("*") if p.is_file()):
        assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "extra",
    [
        ["--engine", "extractive"],
    ],
)
def test_options_of_later_releases_say_so(llm, workdir, extra):
    result = write(*base_args(llm, workdir / "run"), *extra)
    assert result.exit_code == 2
    assert "not implemented yet" in result.stderr
    assert llm.chat_requests() == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["   ", "--papers", str(LIBRARY)], "topic is empty"),
        ([TOPIC, "--papers", "missing.jsonl"], "missing.jsonl"),
        ([TOPIC], "--papers"),
        ([TOPIC, "--no-search"], "--no-search leaves no papers"),
        ([TOPIC, "--papers", str(LIBRARY), "--format", "pdf"], "--format"),
        (["x" * 5000, "--papers", str(LIBRARY)], "5000 characters"),
    ],
)
def test_bad_input_is_a_clear_usage_error(llm, workdir, args, needle):
    result = write(*args, "--base-url", llm.base_url, "--out", str(workdir / "run"))
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_config_key_is_named(llm, workdir):
    (workdir / "surveygen.toml").write_text("concurency = 4\n")
    result = write(*base_args(llm, workdir / "run"))
    assert result.exit_code == 2
    assert "concurency" in result.stderr and "concurrency" in result.stderr


def test_a_missing_template_folder_fails_before_any_call(llm, workdir):
    (workdir / "surveygen.toml").write_text('templates_dir = "no-such-folder"\n')
    result = write(*base_args(llm, workdir / "run"))
    assert result.exit_code == 2
    assert "no-such-folder" in result.stderr
    assert llm.chat_requests() == []


def test_a_run_of_another_topic_is_not_overwritten(llm, workdir):
    out = workdir / "run"
    assert write(*base_args(llm, out)).exit_code == 0
    result = write(
        "a different topic",
        "--papers",
        str(LIBRARY),
        "--no-search",
        "--base-url",
        llm.base_url,
        "--out",
        str(out),
    )
    assert result.exit_code == 2
    assert "--force" in result.stderr
    assert load_report(out)["topic"] == TOPIC


def test_dry_run_plans_without_calling(llm, workdir):
    result = write(*base_args(llm, workdir / "run"), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "digest: at most 8 call(s)" in result.stdout
    assert "skeleton: at most 1 call(s)" in result.stdout  # 8 papers are one cluster
    # the worst-case outline of 12 leaves under 11 parents: 12 sections, a rewrite call for
    # each written part (12 + 11 + introduction + conclusion), 12 coverage revisions, 4 tables,
    # 11 syntheses, introduction, conclusion and abstract
    assert "write: at most 67 call(s)" in result.stdout
    assert "  sections 12, rewrites 25, coverage 12, tables 4, syntheses 11" in result.stdout
    stages = dict(re.findall(r"^(\w+): at most (\d+) call", result.stdout, re.M))
    total = int(stages.pop("total"))
    assert set(stages) == {"gather", "skeleton", "digest", "refine", "map", "write"}
    assert total == sum(int(n) for n in stages.values())
    assert llm.chat_requests() == []
    assert not (workdir / "run").exists()


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from surveygen.cli import main\n"
        "heavy = ['openai', 'numpy', 'sklearn', 'rich', 'jinja2', 'pydantic', 'networkx']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.subprocess
def test_installed_command_runs_end_to_end(llm, workdir):
    exe = Path(sys.executable).with_name("surveygen")
    for args in (["--help"], ["write", "--help"]):
        shown = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0 and "Usage:" in shown.stdout
    out = workdir / "run"
    env = {k: v for k, v in os.environ.items()}
    done = subprocess.run(
        [str(exe), "write", *base_args(llm, out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(out / "survey.md")
    assert "survey:" in done.stderr and "llm:" in done.stderr
