"""A live progress bar for sweeps: points done / total, failures, time left. Quiet off a terminal."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Context manager around a rich progress bar; every method is a no-op when ``quiet``."""

    def __init__(self, quiet: bool | None = None):
        self.quiet = (not sys.stderr.isatty()) if quiet is None else quiet
        self._bar: Any = None
        self._task: Any = None
        self._failed = 0

    def __enter__(self) -> "Progress":
        if not self.quiet:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(),
                                     TextColumn("left"), TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=False)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def start(self, description: str, total: int, completed: int = 0) -> None:
        self._failed = 0
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total, completed=completed, failed=0)

    def advance(self, failed: bool = False) -> None:
        self._failed += int(failed)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, failed=self._failed)

    def log(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message)
        elif not self.quiet:
            print(message, file=sys.stderr)
