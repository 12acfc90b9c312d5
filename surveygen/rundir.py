"""The run directory (``--out``): outputs at the top, ``state/`` to resume, ``logs/``.

Every file is written atomically (temporary file in the same directory, fsync, rename), so a
crash or a full disk never leaves a half-written file behind. Reruns of the same topic start
a fresh ``state/``: what makes a rerun free is the LLM cache, not the run directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from surveygen import __version__
from surveygen.errors import InputError, OutputError
from surveygen.identity import describe_changes
from surveygen.text import ascii_fold

__all__ = [
    "RunDir",
    "atomic_write_bytes",
    "atomic_write_text",
    "default_out_dir",
    "fingerprint",
    "slugify",
    "state_name",
]

MANIFEST = "state/run.json"

# The process umask, read once, so atomic writes create files with the usual permissions
# (mkstemp alone would make them private to the owner).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def slugify(topic: str, max_len: int = 60) -> str:
    """A directory name for ``topic``: lowercase ASCII words joined by "-", cut at a word
    boundary to at most ``max_len`` characters. A topic with no ASCII letters or digits
    (e.g. Chinese) becomes ``survey-<first 10 hex digits of its SHA-1>``."""
    words = re.findall(r"[a-z0-9]+", ascii_fold(topic).lower())
    if not words:
        return "survey-" + hashlib.sha1(topic.encode("utf-8")).hexdigest()[:10]
    slug = words[0][:max_len]
    for word in words[1:]:
        if len(slug) + 1 + len(word) > max_len:
            break
        slug += "-" + word
    return slug


def fingerprint(obj: Any) -> str:
    """A short hash of JSON-able data: what a saved state file was made from."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


# Names Windows reserves for devices, whatever the extension.
_DEVICE_NAME = re.compile(r"(?i)(con|prn|aux|nul|com[1-9]|lpt[1-9])(\.|$)")
MAX_STATE_NAME = 120


def state_name(key: str) -> str:
    """A file name for an item key: characters some file systems refuse (':', '/') are
    replaced, a long key is cut and a name Windows reserves (``CON``) gets a leading "_";
    then a hash of the key is appended, so that ``a:b`` and ``a_b`` never share a file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key).lstrip(".") or "_"
    if _DEVICE_NAME.match(safe):
        safe = "_" + safe  # "CON.json" is a device even with the extension
    if safe == key and len(safe) <= MAX_STATE_NAME:
        return safe
    return f"{safe[:MAX_STATE_NAME]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def default_out_dir(topic: str) -> Path:
    """The default ``--out``: ``./surveys/<slug of the topic>``."""
    return Path("surveys") / slugify(topic)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once, creating parent directories.

    Raises ``OutputError`` naming the path and the OS reason; ``path`` then still holds its
    old content (or does not exist), never a partial file.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check free disk space and permissions, then rerun with --resume",
        ) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for text, as UTF-8 with the newlines given."""
    atomic_write_bytes(path, text.encode("utf-8"))


# What a run writes under state/ and logs/: the only things a fresh start may delete, so a
# folder given as --out never loses a file surveygen did not write.
OWNED_STATE = (
    "state/gather.json",
    "state/outline.json",
    "state/digests",
    "state/refine",
    "state/mapped",
    "state/sections",
    "state/coverage",
    "state/tables",
    "state/headings.json",
)
OWNED_LOGS = ("logs/calls.jsonl",)
# The outputs --format chooses from: a run removes those it did not write this time, so the
# folder never mixes a new survey.md with an older run's survey.tex.
OUTPUT_FILES = ("survey.md", "survey.tex", "survey.html", "references.bib")


def _remove(root: Path, relpaths: tuple[str, ...]) -> None:
    for rel in relpaths:
        target = root / rel
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        except OSError as exc:
            raise OutputError(f"cannot clear {target}: {exc.strerror or exc}") from exc


class RunDir:
    """A run directory. Make one with :meth:`RunDir.open`; paths given to its methods are
    relative to it (``"state/outline.json"``) and may not escape it."""

    def __init__(self, path: Path, topic: str) -> None:
        self.path = Path(path)
        self.topic = topic
        self._root = self.path.resolve()
        self._appending: dict[str, Path] = {}  # logs, by relative path, already checked
        # True when the state of an earlier run was kept (--resume, or keep_state with a run
        # of the same topic there), so stages may reuse what it saved.
        self.kept = False
        # Why the state of an earlier run of the same topic was not kept for --outline.
        self.discarded: list[str] = []

    @classmethod
    def open(
        cls,
        path: Path,
        topic: str,
        *,
        resume: bool = False,
        force: bool = False,
        keep_state: bool = False,
        identity: dict[str, Any] | None = None,
    ) -> RunDir:
        """Open ``path`` for a run on ``topic``, creating it with ``state/`` and ``logs/``.

        - a new or empty directory starts a run; a non-empty one without a manifest is
          refused unless ``force`` (it may be the user's own folder);
        - only the files a run writes are ever deleted (``OWNED_STATE``, ``OWNED_LOGS``);
        - the same topic without ``resume`` starts afresh: ``state/`` is emptied, logs are
          kept and appended to (the LLM cache makes the rerun cost nothing);
        - ``resume`` keeps everything and needs a manifest for the same topic;
        - ``keep_state`` (``--outline``) keeps everything when there is a run of the same
          topic, and otherwise starts one as usual;
        - a different topic is refused unless ``force``, which empties ``state/`` and
          ``logs/``;
        - ``identity`` (see surveygen/identity.py) is recorded in the manifest. ``resume``
          refuses a run made with another identity, naming each change; ``keep_state``
          starts afresh instead (the changes are left in ``discarded`` for a warning), since
          the point of ``--outline`` is the new outline, not the old state.
        """
        path = Path(path).expanduser()
        if resume and force:
            raise InputError(
                "--resume and --force contradict each other",
                hint="--resume continues the run in --out; --force starts it over",
            )
        if path.exists() and not path.is_dir():
            raise InputError(
                f"--out {path}: exists and is not a directory",
                hint="choose a new folder, or the folder of an earlier run",
            )
        if resume and not (path / MANIFEST).is_file():
            raise InputError(f"nothing to resume in {path}", hint="run again without --resume")
        if path.is_dir() and not force and not (path / MANIFEST).exists() and any(path.iterdir()):
            raise InputError(
                f"--out {path}: the folder is not empty and holds no surveygen run",
                hint="choose a new or empty folder, or pass --force to use it anyway "
                "(surveygen then replaces only the files it writes itself)",
            )
        try:
            for sub in (path, path / "state", path / "logs"):
                sub.mkdir(parents=True, exist_ok=True)
            probe = path / "state" / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise InputError(
                f"--out {path}: cannot create or write the run directory ({exc.strerror or exc})",
                hint="choose another --out",
            ) from exc

        rd = cls(path, topic)
        manifest = rd._read_manifest(ignore_damage=force)
        old_topic = manifest.get("topic") if manifest else None
        if resume:
            if manifest is None:
                raise InputError(f"nothing to resume in {path}", hint="run again without --resume")
            if old_topic != topic:
                raise InputError(
                    f"--resume: {path} holds a run for topic {old_topic!r}, not {topic!r}",
                    hint="give the topic of that run, or choose the --out of this one",
                )
            if identity is not None:
                changes = describe_changes(manifest.get("identity"), identity)
                if changes:
                    raise InputError(
                        f"--resume: the run in {path} was made with other options:\n    "
                        + "\n    ".join(changes),
                        hint="resume with the options the run was started with, or drop "
                        "--resume to start it over with the new ones (answers already "
                        "received are reused from the LLM cache wherever a prompt is unchanged)",
                    )
            rd.kept = True
            return rd
        if keep_state and manifest is not None and old_topic == topic:
            changes = (
                describe_changes(manifest.get("identity"), identity, ignore=("outline",))
                if identity is not None
                else []
            )
            if not changes:
                rd.kept = True
                if identity is not None and manifest.get("identity") != identity:
                    rd.write_json(MANIFEST, {**manifest, "identity": identity})
                return rd
            rd.discarded = changes
        if manifest is not None and old_topic != topic and not force:
            raise rd._mismatch(old_topic)
        _remove(path, OWNED_STATE + (OWNED_LOGS if force else ()))
        record: dict[str, Any] = {
            "topic": topic,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "surveygen_version": __version__,
        }
        if manifest is not None and isinstance(manifest.get("outputs"), list):
            record["outputs"] = manifest["outputs"]  # still here, and surveygen's to replace
        if identity is not None:
            record["identity"] = identity
        rd.write_json(MANIFEST, record)
        return rd

    def _read_manifest(self, *, ignore_damage: bool) -> dict[str, Any] | None:
        try:
            manifest = self.read_json(MANIFEST)
        except OutputError:
            if ignore_damage:
                return None
            raise InputError(
                f"{self.path / MANIFEST} is damaged",
                hint="pass --force to start the run over, or choose another --out",
            ) from None
        return manifest if isinstance(manifest, dict) else None

    def _mismatch(self, old_topic: Any) -> InputError:
        return InputError(
            f"{self.path} holds a run for topic {old_topic!r}; "
            "choose another --out, or pass --force to replace it"
        )

    def remove_stale_outputs(self, written: Iterable[str]) -> list[str]:
        """Delete the outputs an earlier run wrote here (as its manifest records) that this run
        did not write, and record what this run wrote; the names deleted. A file surveygen
        did not write (the user's own survey.tex in a folder used with --force) is never
        deleted."""
        written = [n for n in OUTPUT_FILES if n in set(written)]
        manifest = self.read_json(MANIFEST) or {}
        earlier = manifest.get("outputs") if isinstance(manifest.get("outputs"), list) else []
        stale = [n for n in OUTPUT_FILES if n in earlier and n not in written and self.exists(n)]
        _remove(self.path, tuple(stale))
        self.write_json(MANIFEST, {**manifest, "outputs": written})
        return stale

    def resolve(self, rel: str) -> Path:
        """The absolute path of ``rel`` inside the run directory; ``OutputError`` for an
        absolute path or one that leads outside (``..``, symbolic links)."""
        if not rel or Path(rel).is_absolute():
            raise OutputError(f"refusing to write {rel!r}: not a path inside {self.path}")
        target = (self._root / rel).resolve()
        if target != self._root and self._root not in target.parents:
            raise OutputError(f"refusing to write {rel!r}: it leads outside {self.path}")
        return target

    def exists(self, rel: str) -> bool:
        return self.resolve(rel).exists()

    def write_text(self, rel: str, text: str) -> Path:
        path = self.resolve(rel)
        atomic_write_text(path, text)
        return path

    def write_json(self, rel: str, obj: Any) -> Path:
        return self.write_text(rel, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")

    def write_jsonl(self, rel: str, rows: Iterable[dict[str, Any]]) -> Path:
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return self.write_text(rel, lines)

    def append_jsonl(self, rel: str, obj: dict[str, Any]) -> None:
        """Append one JSON line (for logs); the line is flushed before returning."""
        path = self._appending.get(rel)
        if path is None:  # checked once per log: a run appends thousands of lines
            path = self._appending[rel] = self.resolve(rel)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8", newline="\n") as handle:
                handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
                handle.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def read_jsonl(self, rel: str) -> list[dict[str, Any]]:
        """The JSON objects in ``rel``, one per line; [] if there is no such file. Lines that
        are not JSON objects (a write cut short) are left out."""
        path = self.resolve(rel)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        rows = []
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows

    def read_json(self, rel: str) -> Any | None:
        """The JSON in ``rel``, or None if there is no such file."""
        path = self.resolve(rel)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot read {path}: {exc}") from exc
