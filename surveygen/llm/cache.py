"""A persistent, content-addressed cache of LLM answers (SQLite).

The key is a hash of everything that determines an answer: model, messages, sampling
parameters and the answer's schema. A rerun of the same inputs therefore costs no calls, and
``--resume`` after a crash only pays for the calls that never finished. Only answers that
parsed are stored, so a transient bad answer is never replayed.

The API key is not part of the key and is never stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surveygen.errors import ConfigError, OutputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    content TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(
    *, model: str, messages: list[dict[str, Any]], params: dict[str, Any], schema: Any
) -> str:
    """A stable hash of a request's meaning (JSON with sorted keys, so dict order is irrelevant)."""
    blob = json.dumps(
        {"model": model, "messages": messages, "params": params, "schema": schema},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    content: str
    tokens_in: int
    tokens_out: int


class AnswerCache:
    """SQLite-backed answer store; safe to share between the coroutines of one process.

    Every ``put`` commits at once, so an answer that was paid for survives ``kill -9``.
    """

    FILENAME = "llm-cache.sqlite3"

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / self.FILENAME
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode a commit then survives the process being killed (what --resume
            # needs) without a disk flush per answer; only a power cut may lose the last ones.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the LLM cache in {directory}: {exc}",
                hint="set cache_dir in surveygen.toml or SURVEYGEN_CACHE_DIR to a writable folder",
            ) from exc
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedAnswer | None:
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT content, tokens_in, tokens_out FROM answers WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise OutputError(f"cannot read the LLM cache {self.path}: {exc}") from exc
        return CachedAnswer(*row) if row else None

    def put(self, key: str, model: str, answer: CachedAnswer) -> None:
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                    (key, model, answer.content, answer.tokens_in, answer.tokens_out, time.time()),
                )
                self._db.commit()
        except sqlite3.Error as exc:  # disk full, or the file locked by another process
            raise OutputError(
                f"cannot write the LLM cache {self.path}: {exc}",
                hint="free disk space (or set cache_dir), then rerun with --resume",
            ) from exc

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
