"""One sweep: a study's points minus those already in the store, run by an executor, recorded as they finish."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..studies.base import Study
from .executors import Executor, Task
from .keys import point_key
from .progress import Progress
from .store import Store


@dataclass(frozen=True)
class SweepSummary:
    study: str
    n_points: int
    n_skipped: int
    n_run: int
    n_failed: int
    wall_s: float


def tasks_for(study: Study, params_list: list[dict[str, Any]]) -> list[Task]:
    """One task per point, keyed by :func:`point_key` (duplicate points collapse to one)."""
    tasks: dict[str, Task] = {}
    for params in params_list:
        key = point_key(study.name, study.version, params)
        tasks.setdefault(key, Task(key=key, study=study.name, params=params))
    return list(tasks.values())


def run_sweep(study: Study, params_list: list[dict[str, Any]], store: Store, executor: Executor,
              scale: str = "custom", device: str = "cpu", progress: Progress | None = None) -> SweepSummary:
    """Run every point of ``params_list`` not yet finished in ``store``; record each as it returns."""
    t0 = time.perf_counter()
    tasks = tasks_for(study, params_list)
    done = store.done_keys(t.key for t in tasks)
    todo = [t for t in tasks if t.key not in done]
    sweep_id = store.begin_sweep(study.name, scale, device, len(tasks))
    progress = progress or Progress(quiet=True)
    group = {t.key: f"{study.name}/{t.params.get('part', '')}" for t in tasks}
    progress.known_durations(store.durations(study.name, [t.key for t in tasks if t.key in done], group))
    progress.start(f"{study.name} ({scale.split(' ')[0]})", total=len(tasks), completed=len(done),
                   pending=[group[t.key] for t in todo])
    n_failed = 0
    for rec in executor.run(todo):
        store.record(rec)
        failed = rec.status != "done"
        n_failed += failed
        if failed:
            progress.log(f"[{study.name}] point {rec.key} failed: {rec.error.splitlines()[0] if rec.error else ''}")
        progress.advance(failed=failed, group=group.get(rec.key, ""), seconds=rec.duration_s)
    wall = time.perf_counter() - t0
    store.end_sweep(sweep_id, len(todo), n_failed, wall)
    progress.finish(skipped=len(done))
    return SweepSummary(study.name, len(tasks), len(done), len(todo), n_failed, wall)
