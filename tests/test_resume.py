"""Crash-safe resume: ``kill -9`` and Ctrl-C at several points, then ``--resume``.

The CLI runs in a subprocess against the hermetic server. A clean run (its own cache) gives
the reference: how many calls a run needs and what it writes. An interrupted run plus its
``--resume`` (another cache) must make no more calls than the clean run, except those that
were on the wire when it died, and must write the same survey.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakellm import FakeLLMServer
from scripted import pipeline_responder

from surveygen.cli import main

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "data" / "sample_library.jsonl"
TOPIC = "retrieval-augmented language models"
EXE = Path(sys.executable).with_name("surveygen")
CONCURRENCY = 4
OUTPUTS = ("survey.md", "survey.tex", "survey.html", "references.bib", "outline.md")


@dataclass
class Reference:
    calls: int  # chat requests a clean run sends
    files: dict[str, str]  # its outputs


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(pipeline_responder) as fake:
        fake.latency = (0.01, 0.0)  # every answer takes a moment, so a kill lands mid-stage
        yield fake


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SURVEYGEN_"))}
    env.update(
        XDG_CACHE_HOME=str(cache),
        XDG_CONFIG_HOME=str(cache / "config"),
        SURVEYGEN_ARXIV_URL="http://127.0.0.1:9/api/query",
        SURVEYGEN_ARXIV_DELAY="0",
    )
    return env


def _args(server: FakeLLMServer, out: Path, *extra: str) -> list[str]:
    return [
        str(EXE),
        "write",
        TOPIC,
        "--papers",
        str(LIBRARY),
        "--no-search",
        "--base-url",
        server.base_url,
        "--out",
        str(out),
        "--concurrency",
        str(CONCURRENCY),
        "--format",
        "md,tex,html,bib",
        *extra,
    ]


def _run(server: FakeLLMServer, out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _args(server, out, *extra),
        capture_output=True,
        text=True,
        env=_env(cache),
        cwd=out.parent,
        timeout=300,
    )


def _cached_answers(cache: Path) -> int:
    with sqlite3.connect(cache / "surveygen" / "llm-cache.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]


def _outputs(out: Path) -> dict[str, str]:
    return {name: (out / name).read_text(encoding="utf-8") for name in OUTPUTS}


@pytest.fixture(scope="module")
def reference(server: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    base = tmp_path_factory.mktemp("clean")
    before = len(server.chat_requests())
    done = _run(server, base / "run", base / "cache")
    assert done.returncode == 0, done.stderr
    return Reference(len(server.chat_requests()) - before, _outputs(base / "run"))


def _interrupt(
    server: FakeLLMServer, out: Path, cache: Path, after: int, sig: int
) -> tuple[subprocess.CompletedProcess, int]:
    """Start a run, send ``sig`` once the server has received ``after`` requests from it;
    return the finished process and the number of requests it sent."""
    before = len(server.chat_requests())
    proc = subprocess.Popen(
        _args(server, out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(cache),
        cwd=out.parent,
    )
    deadline = time.monotonic() + 120
    while len(server.chat_requests()) - before < after:
        assert proc.poll() is None, f"the run ended before {after} calls: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the run did not reach the kill point"
        time.sleep(0.002)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    _quiet(server)  # requests the dead process had on the wire may still be arriving
    return done, len(server.chat_requests()) - before


def _quiet(server: FakeLLMServer, still: float = 0.3, limit: float = 10.0) -> None:
    """Wait until the server has received no request for ``still`` seconds."""
    deadline = time.monotonic() + limit
    seen = len(server.chat_requests())
    calm_since = time.monotonic()
    while time.monotonic() - calm_since < still and time.monotonic() < deadline:
        time.sleep(0.02)
        now = len(server.chat_requests())
        if now != seen:
            seen, calm_since = now, time.monotonic()


def _resume_and_compare(
    server: FakeLLMServer, reference: Reference, out: Path, cache: Path, sent: int
) -> dict[str, int]:
    answered = _cached_answers(cache)
    in_flight = sent - answered
    assert 0 <= in_flight <= CONCURRENCY, (sent, answered)
    before = len(server.chat_requests())
    done = _run(server, out, cache, "--resume")
    assert done.returncode == 0, done.stderr
    resumed = len(server.chat_requests()) - before
    # Both runs together: the clean run's calls, plus those that were on the wire.
    assert sent + resumed <= reference.calls + in_flight
    assert resumed == reference.calls - answered
    assert _outputs(out) == reference.files
    return {"sent": sent, "answered": answered, "resumed": resumed}


@pytest.mark.parametrize("share", [0.05, 0.3, 0.6, 0.95])
def test_kill_9_at_any_point_then_resume_pays_only_for_calls_in_flight(
    server: FakeLLMServer, reference: Reference, tmp_path: Path, share: float
) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    after = max(1, int(reference.calls * share))
    done, sent = _interrupt(server, out, cache, after, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    assert not (out / "survey.md").exists()
    _resume_and_compare(server, reference, out, cache, sent)


def test_kill_9_with_the_last_call_on_the_wire_resumes_with_that_call_alone(
    server: FakeLLMServer, reference: Reference, tmp_path: Path
) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    server.latency = (0.2, 0.0)  # the last answer is surely still on its way at the kill
    try:
        done, sent = _interrupt(server, out, cache, reference.calls, signal.SIGKILL)
    finally:
        server.latency = (0.01, 0.0)
    assert done.returncode == -signal.SIGKILL
    figures = _resume_and_compare(server, reference, out, cache, sent)
    assert figures["sent"] == reference.calls
    assert figures["resumed"] == reference.calls - figures["answered"] <= CONCURRENCY


def test_ctrl_c_stops_gracefully_and_says_how_to_resume(
    server: FakeLLMServer, reference: Reference, tmp_path: Path
) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    done, sent = _interrupt(server, out, cache, reference.calls // 2, signal.SIGINT)
    assert done.returncode == 130, done.stderr
    assert "--resume" in done.stderr
    assert "Traceback" not in done.stderr
    assert sent < reference.calls  # it stopped instead of finishing the run
    assert json.loads((out / "state" / "run.json").read_text())["topic"] == TOPIC
    assert list((out / "state" / "digests").glob("*.json"))  # finished items were saved
    _resume_and_compare(server, reference, out, cache, sent)


# ------------------------------------------------------------ resume with other options


def _write(*args: str):
    return CliRunner().invoke(main, ["write", *args], catch_exceptions=False)


def _base(llm: FakeLLMServer, out: Path, *extra: str) -> list[str]:
    return [
        *(TOPIC, "--papers", str(LIBRARY), "--no-search", "--base-url", llm.base_url),
        *("--out", str(out), *extra),
    ]


def test_resume_with_another_model_is_refused_and_names_the_change(llm, workdir) -> None:
    out = workdir / "run"
    assert _write(*_base(llm, out, "--model", "model-a")).exit_code == 0
    sent = len(llm.chat_requests())
    result = _write(*_base(llm, out, "--model", "model-b", "--resume"))
    assert result.exit_code == 2
    assert "model for digest: model-a → model-b" in result.stderr
    assert "drop --resume" in result.stderr
    assert len(llm.chat_requests()) == sent
    # Options that change no answer may differ: --budget, --concurrency, --format.
    result = _write(*_base(llm, out, "--model", "model-a", "--resume", "--concurrency", "2"))
    assert result.exit_code == 0, result.stderr


def test_resume_with_another_outline_or_language_is_refused(llm, workdir) -> None:
    out = workdir / "run"
    assert _write(*_base(llm, out)).exit_code == 0
    outline = out / "outline.md"
    result = _write(*_base(llm, out, "--resume", "--outline", str(outline)))
    assert result.exit_code == 2 and "--outline: now given" in result.stderr
    result = _write(*_base(llm, out, "--resume", "--language", "German"))
    assert result.exit_code == 2 and "--language: English → German" in result.stderr


def test_outline_rerun_with_another_model_does_not_reuse_old_digests(llm, workdir) -> None:
    out = workdir / "run"
    assert _write(*_base(llm, out, "--model", "model-a")).exit_code == 0
    outline = workdir / "outline.md"
    outline.write_text((out / "outline.md").read_text())
    before = len(llm.chat_requests())
    result = _write(*_base(llm, out, "--model", "model-b", "--outline", str(outline)))
    assert result.exit_code == 0, result.stderr
    assert "made with other options (model for digest: model-a → model-b" in result.stderr
    digests = [
        r
        for r in llm.chat_requests()[before:]
        if r.body["model"] == "model-b" and "<<<paper " in r.prompt_text
    ]
    assert len(digests) >= 8  # every paper digested again by the new model


# ------------------------------------------------------------ a fatal error keeps what was paid


def _cache_rows() -> int:
    return _cached_answers(Path(os.environ["XDG_CACHE_HOME"]))


def test_a_budget_stop_lets_calls_on_the_wire_finish_and_caches_them(llm, workdir) -> None:
    (workdir / "surveygen.toml").write_text(
        'retry_base_seconds = 0.01\n[prices."fake-model"]\ninput = 1.0\noutput = 1.0\n'
    )
    llm.latency = (0.05, 0.0)
    args = _base(llm, workdir / "run", "--model", "fake-model", "--concurrency", "4")
    result = _write(*args, "--budget", "0.03")
    assert result.exit_code == 1 and "budget" in result.stderr
    sent = len(llm.chat_requests())
    assert sent > CONCURRENCY  # the stop came while calls ran side by side
    assert _cache_rows() == sent  # every answer the server sent was kept


def test_a_refused_key_stops_new_calls_but_keeps_answers_on_the_wire(llm, workdir) -> None:
    import threading

    llm.latency = (0.05, 0.0)

    def refuse_later() -> None:
        deadline = time.monotonic() + 30
        while len(llm.chat_requests()) < 10 and time.monotonic() < deadline:
            time.sleep(0.002)
        llm.inject("echo_auth")

    threading.Thread(target=refuse_later, daemon=True).start()
    result = _write(*_base(llm, workdir / "run", "--concurrency", "4"))
    assert result.exit_code == 1 and "refused the API key" in result.stderr
    sent = len(llm.chat_requests())
    refused = [r for r in llm.chat_requests() if r.fault == "echo_auth"]
    assert len(refused) == 1
    assert _cache_rows() == sent - 1  # all but the refused request were answered and kept


# ------------------------------------------------------------ a disk that fills mid-run


def _mount_tmpfs(path: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` on ``path``; False when this machine does not allow it."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
    )
    return done.returncode == 0


def _assert_consistent(out: Path) -> None:
    """No temporary file left behind and every state file whole."""
    assert not [p for p in out.rglob("*.tmp")]
    for path in (out / "state").rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("size", ["200k", "300k", "400k"])
def test_a_disk_that_fills_mid_run_fails_clearly_and_resume_finishes(
    llm, workdir, size: str
) -> None:
    disk = workdir / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(disk, size):
        pytest.skip("mounting a small tmpfs needs root; test_a_file_size_limit covers the rest")
    try:
        env = {"XDG_CACHE_HOME": str(disk / "cache")}
        args = _base(llm, disk / "run", "--format", "md,html")
        result = CliRunner().invoke(main, ["write", *args], env=env, catch_exceptions=False)
        assert result.exit_code == 1, result.stderr
        assert "disk is full" in result.stderr or "No space left on device" in result.stderr
        assert "--resume" in result.stderr and "Traceback" not in result.stderr
        assert not (disk / "run" / "survey.md").exists()
        _assert_consistent(disk / "run")
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        sent = len(llm.chat_requests())
        resumed = CliRunner().invoke(
            main, ["write", *args, "--resume"], env=env, catch_exceptions=False
        )
        assert resumed.exit_code == 0, resumed.stderr
        assert len(llm.chat_requests()) > sent  # the calls the failure stopped were made
        # An uninterrupted run with the same cached answers writes the same survey.
        clean = _base(llm, disk / "clean", "--format", "md,html")
        again = CliRunner().invoke(main, ["write", *clean], env=env, catch_exceptions=False)
        assert again.exit_code == 0, again.stderr
        for name in ("survey.md", "survey.html", "outline.md"):
            assert (disk / "run" / name).read_text() == (disk / "clean" / name).read_text()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_file_size_limit_on_the_cache_fails_clearly_and_resume_finishes(
    server: FakeLLMServer, reference: Reference, tmp_path: Path
) -> None:
    """The same failure on any machine: RLIMIT_FSIZE makes the growing cache unwritable."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    out, cache = tmp_path / "run", tmp_path / "cache"
    before = len(server.chat_requests())
    failed = subprocess.run(
        _args(server, out),
        capture_output=True,
        text=True,
        env=_env(cache),
        cwd=tmp_path,
        timeout=300,
        preexec_fn=limit,
    )
    assert failed.returncode == 1, failed.stderr
    assert "cannot write the LLM cache" in failed.stderr and "--resume" in failed.stderr
    assert "Traceback" not in failed.stderr
    _assert_consistent(out)
    sent = len(server.chat_requests()) - before
    _resume_and_compare(server, reference, out, cache, sent)


def test_a_rerun_with_fewer_formats_removes_the_older_outputs(llm, workdir) -> None:
    out = workdir / "run"
    assert _write(*_base(llm, out, "--format", "md,tex,html,bib")).exit_code == 0
    (out / "notes.txt").write_text("mine")
    result = _write(*_base(llm, out, "--format", "html"))
    assert result.exit_code == 0, result.stderr
    assert "removed survey.md, survey.tex, references.bib of an earlier run" in result.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "notes.txt",
        "outline.md",
        "papers.jsonl",
        "report.json",
        "survey.html",
    ]


def test_ctrl_c_while_arxiv_stalls_exits_at_once(server: FakeLLMServer, tmp_path: Path) -> None:
    from fakearxiv import FakeArxivServer

    with FakeArxivServer() as arxiv:
        arxiv.delay = 30  # every arXiv answer takes 30 s
        env = {**_env(tmp_path / "cache"), "SURVEYGEN_ARXIV_URL": arxiv.api_url}
        args = [str(EXE), "write", TOPIC, "--base-url", server.base_url]
        proc = subprocess.Popen(
            [*args, "--out", str(tmp_path / "run")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60
        while not arxiv.api_requests:  # the search is waiting on arXiv
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        waited = time.monotonic() - started
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert waited < 10  # not the 30 s the stalled request would take


def test_outputs_surveygen_did_not_write_are_never_removed(llm, workdir) -> None:
    out = workdir / "mypaper"
    out.mkdir()
    (out / "survey.tex").write_text("my own paper")
    (out / "references.bib").write_text("@misc{mine}")
    result = _write(*_base(llm, out, "--force", "--format", "md"))
    assert result.exit_code == 0, result.stderr
    assert "of an earlier run" not in result.stderr
    assert (out / "survey.tex").read_text() == "my own paper"
    assert (out / "references.bib").read_text() == "@misc{mine}"


def test_resume_accepts_the_outline_md_the_run_wrote_back(llm, workdir) -> None:
    out = workdir / "run"
    assert _write(*_base(llm, out)).exit_code == 0
    edited = workdir / "edited.md"
    text = (out / "outline.md").read_text()
    # the user's own formatting: a heading without its id comment, blank lines doubled
    edited.write_text(text.replace("\n\n", "\n\n\n"))
    assert _write(*_base(llm, out, "--outline", str(edited))).exit_code == 0
    # outline.md is now the run's own rendering of edited.md: the same outline
    result = _write(*_base(llm, out, "--outline", str(out / "outline.md"), "--resume"))
    assert result.exit_code == 0, result.stderr
    result = _write(*_base(llm, out, "--outline", str(edited), "--resume"))
    assert result.exit_code == 0, result.stderr


def test_an_outline_given_through_a_pipe_is_read_once(llm, workdir) -> None:
    out = workdir / "run"
    assert _write(*_base(llm, out)).exit_code == 0
    text = (out / "outline.md").read_text().encode()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, text)
        os.close(write_end)
        result = _write(*_base(llm, out, "--outline", f"/dev/fd/{read_end}"))
    finally:
        os.close(read_end)
    assert result.exit_code == 0, result.stderr
