from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

import surveygen
from surveygen import rundir
from surveygen.errors import InputError, OutputError
from surveygen.rundir import RunDir, atomic_write_bytes, atomic_write_text, slugify

TOPIC = "Retrieval-augmented generation"

# --- slugify ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "slug"),
    [
        ("Diffusion models for video generation", "diffusion-models-for-video-generation"),
        ("  LLMs: what's next?! (2024 edition)  ", "llms-what-s-next-2024-edition"),
        ("Über Größe — naïve café", "uber-grosse-naive-cafe"),
        ("../../etc/passwd", "etc-passwd"),
        (".hidden/topic..name", "hidden-topic-name"),
        ("扩散模型 diffusion", "diffusion"),
    ],
)
def test_slugify(topic: str, slug: str) -> None:
    assert slugify(topic) == slug


def test_slugify_long_topic_cuts_at_word_boundary() -> None:
    topic = "a survey of " + " ".join(["retrieval"] * 20)
    slug = slugify(topic)
    assert len(slug) <= 60
    assert slug.startswith("a-survey-of-retrieval")
    assert slug.split("-")[-1] == "retrieval"
    assert slugify("x" * 100, max_len=10) == "x" * 10


def test_slugify_non_ascii_topic() -> None:
    slug = slugify("扩散模型在视频生成中的应用")
    assert slug.startswith("survey-") and len(slug) == len("survey-") + 10
    assert slug == slugify("扩散模型在视频生成中的应用")
    assert slug != slugify("大语言模型")
    assert slugify("").startswith("survey-")


@pytest.mark.parametrize("topic", ["", "...", "/", "../..", "。", "a/b", ".x"])
def test_slugify_is_always_a_safe_name(topic: str) -> None:
    slug = slugify(topic)
    assert slug and "/" not in slug and ".." not in slug and not slug.startswith(".")


# --- atomic writes ------------------------------------------------------------------------


def test_atomic_write_text(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.md"
    atomic_write_text(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    atomic_write_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.md"]


def test_atomic_write_uses_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.md"
    atomic_write_text(target, "x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~rundir._UMASK


def _fail(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_atomic_write_failure_leaves_old_content_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    target = tmp_path / "out.md"
    target.write_text("old", encoding="utf-8")
    monkeypatch.setattr(rundir.os, where, _fail)
    with pytest.raises(OutputError) as info:
        atomic_write_bytes(target, b"new content")
    assert str(target) in str(info.value)
    assert os.strerror(errno.ENOSPC) in str(info.value)
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"]


def test_atomic_write_failure_creates_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rundir.os, "replace", _fail)
    with pytest.raises(OutputError):
        atomic_write_text(tmp_path / "new.md", "text")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_under_a_file_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(blocker / "out.md", "text")


# --- RunDir.open --------------------------------------------------------------------------


def test_open_creates_layout_and_manifest(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path / "a" / "run", TOPIC)
    assert rd.path == tmp_path / "a" / "run"
    assert (rd.path / "state").is_dir() and (rd.path / "logs").is_dir()
    manifest = json.loads((rd.path / "state" / "run.json").read_text(encoding="utf-8"))
    assert manifest["topic"] == TOPIC
    assert manifest["surveygen_version"] == surveygen.__version__
    assert manifest["created"].endswith("+00:00")
    assert [p.name for p in (rd.path / "state").iterdir()] == ["run.json"]


def test_open_same_topic_starts_fresh_but_keeps_logs(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, TOPIC)
    rd.write_json("state/outline.json", {"x": 1})
    rd.append_jsonl("logs/calls.jsonl", {"n": 1})
    rd.write_text("survey.md", "# Survey")
    rd = RunDir.open(tmp_path, TOPIC)
    assert not rd.exists("state/outline.json")
    assert rd.exists("state/run.json")
    assert rd.exists("survey.md")
    rd.append_jsonl("logs/calls.jsonl", {"n": 2})
    lines = (tmp_path / "logs" / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["n"] for line in lines] == [1, 2]


def test_open_other_topic_is_refused(tmp_path: Path) -> None:
    RunDir.open(tmp_path, TOPIC)
    with pytest.raises(InputError) as info:
        RunDir.open(tmp_path, "Something else")
    message = str(info.value)
    assert f"{tmp_path} holds a run for topic '{TOPIC}'" in message
    assert "--force" in message and "--out" in message
    assert info.value.exit_code == 2


def test_open_other_topic_with_force_clears_state_and_logs(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, TOPIC)
    rd.write_json("state/digests/p1.json", {"x": 1})
    rd.append_jsonl("logs/calls.jsonl", {"n": 1})
    rd = RunDir.open(tmp_path, "Something else", force=True)
    assert rd.read_json("state/run.json")["topic"] == "Something else"
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["run.json"]
    assert list((tmp_path / "logs").iterdir()) == []


def test_resume_keeps_state(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, TOPIC)
    created = rd.read_json("state/run.json")["created"]
    rd.write_json("state/outline.json", {"x": 1})
    rd = RunDir.open(tmp_path, TOPIC, resume=True)
    assert rd.read_json("state/outline.json") == {"x": 1}
    assert rd.read_json("state/run.json")["created"] == created


def test_resume_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to resume in"):
        RunDir.open(tmp_path / "fresh", TOPIC, resume=True)


def test_resume_other_topic_is_refused(tmp_path: Path) -> None:
    RunDir.open(tmp_path, TOPIC)
    with pytest.raises(InputError, match="holds a run for topic"):
        RunDir.open(tmp_path, "Other", resume=True)


def _identity(**changes: object) -> dict:
    from surveygen.config import Settings
    from surveygen.identity import run_identity

    base = run_identity(Settings(models={"digest": "m-a"}), None)
    return {**base, **changes}


def test_resume_refuses_another_identity_and_names_each_change(tmp_path: Path) -> None:
    RunDir.open(tmp_path, TOPIC, identity=_identity())
    changed = _identity(language="German", models={**_identity()["models"], "write": "m-x"})
    with pytest.raises(InputError) as caught:
        RunDir.open(tmp_path, TOPIC, resume=True, identity=changed)
    message = str(caught.value)
    assert "--language: English → German" in message
    assert "model for write: gpt-4o-mini → m-x" in message
    assert "model for digest" not in message  # unchanged entries are not listed
    assert RunDir.open(tmp_path, TOPIC, resume=True, identity=_identity()).kept


def test_resume_of_a_run_without_identity_is_refused(tmp_path: Path) -> None:
    RunDir.open(tmp_path, TOPIC)
    with pytest.raises(InputError, match="older surveygen"):
        RunDir.open(tmp_path, TOPIC, resume=True, identity=_identity())


def test_keep_state_starts_afresh_when_the_identity_changed(tmp_path: Path) -> None:
    RunDir.open(tmp_path, TOPIC, identity=_identity())
    RunDir.open(tmp_path, TOPIC, identity=_identity()).write_json("state/outline.json", {})
    kept = RunDir.open(tmp_path, TOPIC, keep_state=True, identity=_identity(outline="abc"))
    assert kept.kept and kept.discarded == [] and kept.exists("state/outline.json")
    assert kept.read_json("state/run.json")["identity"]["outline"] == "abc"
    fresh = RunDir.open(tmp_path, TOPIC, keep_state=True, identity=_identity(length=900))
    assert not fresh.kept and fresh.discarded == ["--length: default → 900"]
    assert not fresh.exists("state/outline.json")


def test_resume_and_force_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--resume and --force"):
        RunDir.open(tmp_path, TOPIC, resume=True, force=True)


def test_damaged_manifest(tmp_path: Path) -> None:
    RunDir.open(tmp_path, TOPIC)
    (tmp_path / "state" / "run.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(InputError, match="damaged"):
        RunDir.open(tmp_path, TOPIC)
    rd = RunDir.open(tmp_path, TOPIC, force=True)
    assert rd.read_json("state/run.json")["topic"] == TOPIC


def test_open_path_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=f"--out {target}: exists and is not a directory"):
        RunDir.open(target, TOPIC)


def test_open_path_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(InputError) as info:
        RunDir.open(blocker / "run", TOPIC)
    assert f"--out {blocker / 'run'}" in str(info.value)
    assert os.strerror(errno.ENOTDIR) in str(info.value)


def test_open_unwritable_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, data: bytes) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(InputError, match="Permission denied"):
        RunDir.open(tmp_path, TOPIC)


# --- paths and files ----------------------------------------------------------------------


@pytest.mark.parametrize("rel", ["../x", "state/../../x", "/etc/passwd", "", "a/../../b"])
def test_resolve_rejects_escapes(tmp_path: Path, rel: str) -> None:
    rd = RunDir.open(tmp_path / "run", TOPIC)
    with pytest.raises(OutputError):
        rd.resolve(rel)
    with pytest.raises(OutputError):
        rd.write_text(rel, "x")


def test_resolve_rejects_symlink_escape(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path / "run", TOPIC)
    (rd.path / "link").symlink_to(tmp_path)
    with pytest.raises(OutputError, match="outside"):
        rd.resolve("link/x.txt")


def test_resolve_inside(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path / "run", TOPIC)
    assert rd.resolve("state/x.json") == (tmp_path / "run" / "state" / "x.json").resolve()
    assert rd.resolve("state/../survey.md") == (tmp_path / "run" / "survey.md").resolve()


def test_json_roundtrip_and_missing(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, TOPIC)
    assert rd.read_json("state/none.json") is None
    assert not rd.exists("state/none.json")
    rd.write_json("state/deep/x.json", {"title": "Über", "n": [1, 2]})
    assert rd.exists("state/deep/x.json")
    raw = (tmp_path / "state" / "deep" / "x.json").read_text(encoding="utf-8")
    assert "Über" in raw and '\n  "n"' in raw and raw.endswith("\n")
    assert rd.read_json("state/deep/x.json") == {"title": "Über", "n": [1, 2]}


def test_read_json_damaged_file(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, TOPIC)
    rd.write_text("state/bad.json", "{nope")
    with pytest.raises(OutputError, match="cannot read"):
        rd.read_json("state/bad.json")


def test_write_jsonl(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, TOPIC)
    path = rd.write_jsonl("papers.jsonl", ({"key": f"k{i}", "t": "é"} for i in range(3)))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["k0", "k1", "k2"]
    assert '"é"' in lines[0]
    rd.write_jsonl("papers.jsonl", [])
    assert path.read_text(encoding="utf-8") == ""


def test_a_foreign_folder_is_refused_and_never_emptied(tmp_path: Path) -> None:
    (tmp_path / "state" / "important").mkdir(parents=True)
    (tmp_path / "state" / "important" / "thesis.tex").write_text("mine", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine too", encoding="utf-8")
    with pytest.raises(InputError, match="not empty and holds no surveygen run"):
        RunDir.open(tmp_path, TOPIC)
    rd = RunDir.open(tmp_path, TOPIC, force=True)
    rd.write_json("state/outline.json", {"x": 1})
    RunDir.open(tmp_path, "Other topic", force=True)
    assert (tmp_path / "state" / "important" / "thesis.tex").read_text(encoding="utf-8") == "mine"
    assert (tmp_path / "notes.txt").exists()
    assert not (tmp_path / "state" / "outline.json").exists()
