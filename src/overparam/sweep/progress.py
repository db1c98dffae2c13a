"""Progress of a run: one overall bar across studies and one per study, an ETA from measured point durations, plain
periodic lines when the output is not a terminal (CI, nohup, ``| tee``), and a summary line per study.

The ETA is Σ over the points still to run of the mean duration measured for points of the same part (this run's
finished points, and those the store already holds from earlier runs; before any is measured, the cost model's
estimate, :mod:`overparam.sweep.cost`), divided by the points run in parallel. A
part whose points cost 100× another's no longer makes the first minutes' rate promise an early finish.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter, defaultdict
from typing import Any, Iterable


def fmt_seconds(seconds: float) -> str:
    """'0.35 s', '42 s', '3 min 05 s', '1 h 02 min'; '?' for NaN or inf."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    if seconds < 9.5:
        return f"{seconds:.2g} s"
    s = int(round(seconds))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else (f"{s // 60} min {s % 60:02d} s" if s >= 60
                                                                         else f"{s} s")


class DurationModel:
    """Mean duration per group (``study/part``), from measured points; a group never measured uses the cost model's
    estimate (:meth:`prior`) when one is given, else the mean of all measured points."""

    def __init__(self) -> None:
        self._sum: dict[str, float] = defaultdict(float)
        self._n: dict[str, int] = defaultdict(int)
        self._prior: dict[str, float] = {}

    def prior(self, seconds: dict[str, float]) -> None:
        """Estimated seconds per point of each group, used until a point of the group is measured."""
        self._prior.update({g: s for g, s in seconds.items() if s == s and s >= 0})

    def add(self, group: str, seconds: float) -> None:
        if seconds == seconds and seconds >= 0:
            self._sum[group] += seconds
            self._n[group] += 1

    def mean(self, group: str) -> float:
        if self._n.get(group):
            return self._sum[group] / self._n[group]
        if group in self._prior:
            return self._prior[group]
        n = sum(self._n.values())
        return sum(self._sum.values()) / n if n else float("nan")

    def remaining(self, pending: Counter, parallel: int) -> float:
        """Estimated seconds for the pending points (group → count) run ``parallel`` at a time."""
        return sum(self.mean(g) * k for g, k in pending.items() if k) / max(1, parallel)


class Progress:
    """Context manager; ``quiet=True`` prints nothing, ``quiet=None`` picks a live bar on a terminal and plain lines
    every ``interval`` seconds elsewhere."""

    def __init__(self, quiet: bool | None = None, interval: float | None = None, parallel: int = 1):
        if interval is None:  # seconds between plain lines; OVERPARAM_PROGRESS_INTERVAL overrides the 30 s default
            interval = float(os.environ.get("OVERPARAM_PROGRESS_INTERVAL", "30"))
        self.quiet = bool(quiet)
        self.live = not self.quiet and sys.stderr.isatty()
        self.interval, self.parallel = interval, max(1, parallel)
        self._bar: Any = None
        self._task: Any = None
        self._overall: Any = None
        self._model = DurationModel()
        self._pending: Counter = Counter()
        self._desc, self._total, self._done, self._failed, self._run = "", 0, 0, 0, 0
        self._t0 = self._last_line = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn
            from rich.progress import TimeElapsedColumn
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(),
                                     TextColumn("left {task.fields[eta]}"), console=Console(stderr=True),
                                     transient=False)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    # the whole run -------------------------------------------------------------------------------------------
    def begin(self, total: int, completed: int = 0) -> None:
        """The overall count across every study of the run (call once, before the first :meth:`start`)."""
        self._grand_total, self._grand_done = total, completed
        if self._bar is not None:
            self._overall = self._bar.add_task("all studies", total=total, completed=completed, failed=0, eta="?")

    def known_durations(self, durations: Iterable[tuple[str, float]]) -> None:
        """Durations (group, seconds) measured by earlier runs, for the ETA before this run's first point ends."""
        for g, s in durations:
            self._model.add(g, s)

    def prior(self, seconds: dict[str, float]) -> None:
        """The cost model's seconds per point (``study/part`` → s): the ETA before the first point of a part ends."""
        self._model.prior(seconds)

    # one study ----------------------------------------------------------------------------------------------
    def start(self, description: str, total: int, completed: int = 0, pending: Iterable[str] = ()) -> None:
        """A study's sweep: ``pending`` lists the group (part) of every point still to run."""
        self._desc, self._total, self._done, self._failed, self._run = description, total, completed, 0, 0
        self._pending = Counter(pending)
        self._study_t0 = time.monotonic()
        if hasattr(self, "_grand_done"):
            self._grand_done += completed  # points skipped because the store holds them count as done
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total, completed=completed, failed=0, eta=self.eta())
            if self._overall is not None:
                self._bar.update(self._overall, advance=completed)

    def eta(self) -> str:
        return fmt_seconds(self._model.remaining(self._pending, self.parallel))

    def advance(self, failed: bool = False, group: str = "", seconds: float = float("nan")) -> None:
        """One point finished (``seconds`` it took, in its ``group``)."""
        self._failed += int(failed)
        self._done += 1
        self._run += 1
        if self._pending.get(group):
            self._pending[group] -= 1
        self._model.add(group, seconds)
        if hasattr(self, "_grand_done"):
            self._grand_done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, failed=self._failed, eta=self.eta())
            if self._overall is not None:
                self._bar.update(self._overall, advance=1, failed=self._failed, eta=self.eta())
        elif not self.quiet and time.monotonic() - self._last_line >= self.interval:
            self._line()

    def _line(self) -> None:
        self._last_line = time.monotonic()
        overall = (f"; all studies {self._grand_done}/{self._grand_total}" if hasattr(self, "_grand_total") else "")
        print(f"[{self._desc}] {self._done}/{self._total} points, {self._failed} failed, "
              f"{fmt_seconds(time.monotonic() - self._study_t0)} elapsed, about {self.eta()} left{overall}",
              file=sys.stderr, flush=True)

    def finish(self, skipped: int) -> str:
        """The study's summary line (printed unless quiet): computed, skipped, failed, time."""
        line = (f"[{self._desc}] done: {self._run} computed, {skipped} skipped (already in the store), "
                f"{self._failed} failed, {fmt_seconds(time.monotonic() - self._study_t0)}")
        self.log(line)
        return line

    def log(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        elif not self.quiet:
            print(message, file=sys.stderr, flush=True)
