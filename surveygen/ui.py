"""Progress and messages on stderr (stdout is kept for results).

On a terminal each stage gets a rich progress bar; elsewhere (CI, pipes, ``NO_COLOR``
respected by rich) each stage prints one line when it starts and one when it ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StageProgress:
    def __init__(self, advance: Any) -> None:
        self._advance = advance

    def advance(self, n: int = 1) -> None:
        self._advance(n)


class UI:
    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._live = sys.stderr.isatty() and not quiet
        self._console: Any = None
        self._progress: Any = None  # the live display while any stage is open
        self._open = 0  # stages open

    def _shared_progress(self) -> Any:
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            columns = [
                TextColumn("[bold]{task.description:<16}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            ]
            self._progress = Progress(*columns, console=self._rich_console(), transient=False)
            self._progress.start()
        return self._progress

    def _rich_console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        return self._console

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[StageProgress]:
        """Report a stage's progress; ``total`` is the number of items when known."""
        started = time.monotonic()
        if self._live:
            # Stages may run at the same time (tables while sections are written): they
            # share one live display, each with its own bar.
            progress = self._shared_progress()
            task = progress.add_task(name, total=total or 1)
            self._open += 1
            try:
                yield StageProgress(lambda n: progress.advance(task, n))
                if not total:
                    progress.advance(task, 1)
            finally:
                self._open -= 1
                if self._open == 0:
                    progress.stop()
                    self._progress = None
            return
        self.info(f"[{name}] started" + (f" ({total} items)" if total else ""))
        done = [0]

        def advance(n: int) -> None:
            done[0] += n

        yield StageProgress(advance)
        suffix = f" {done[0]}/{total}" if total else ""
        self.info(f"[{name}] done{suffix} in {time.monotonic() - started:.1f}s")
