"""``reproduce`` and ``report``: the five calls of every study, and nothing more.

    points(scale) -> run_sweep (executor, store) -> results -> figures + verdicts -> report
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .report.figures import png_bytes
from .report.html import StudySection, render
from .studies import get
from .claims import Verdict
from .studies.base import Study
from .studies.params import Grid
from .validation import POSITIVE_INT, check
from .sweep.engine import SweepSummary, run_sweep, tasks_for
from .sweep.executors import Executor, versions
from .sweep.lock import folder_lock
from .sweep.progress import Progress
from .sweep.store import Store, check_store_file

STORE_NAME = "results.sqlite"


@dataclass
class Outcome:
    """What ``reproduce`` or ``report`` produced."""

    out: Path
    verdicts: list[Verdict]
    sweeps: list[SweepSummary] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no verdict failed ("not judged" does not fail a run)."""
        return all(v.passed for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        """How many verdicts pass, fail and are not judged."""
        return {s: sum(v.status == s for v in self.verdicts) for s in ("pass", "fail", "not judged")}


def device_for(study: Study, device: str) -> str:
    """The device the study's points run on: ``device`` when the study can use it, else its first declared one."""
    kind = device.split(":")[0]
    return device if kind in study.devices else study.devices[0]


SWEEP = "sweep "  # a user's grid, stored in place of the scale: 'sweep {"grid": …, "seeds": N, "scale": S}'


def sweep_spec(grid: Grid, seeds: int, scale: str = "quick") -> str:
    """The text that names a user's grid in the store (where a scale name stands for a study's own grid)."""
    return SWEEP + json.dumps({"grid": grid.to_json(), "seeds": seeds, "scale": scale}, sort_keys=True)


def resolve(study: Study, spec: str) -> tuple[Study, list[dict[str, Any]], str]:
    """(the study as judged, its points, the scale its claims are judged at) for a scale name or a sweep spec."""
    if spec.startswith(SWEEP):
        d = json.loads(spec[len(SWEEP):])
        grid = Grid(d["grid"])
        made = study.for_grid(grid)
        return made, made.sweep_points(grid, int(d["seeds"])), d.get("scale", "quick")
    return study, study.points(spec), spec


def study_points(study: Study, spec: str, device: str = "cpu") -> list[dict[str, Any]]:
    """The study's grid for ``spec`` (a scale or a sweep spec), each point told which device it runs on (see
    :func:`device_for`), so that a study that cannot use ``device`` keeps the keys of its CPU points and a rerun on
    CPU finds them."""
    return _on_device(study, resolve(study, spec)[1], device)


def _on_device(study: Study, points: list[dict[str, Any]], device: str) -> list[dict[str, Any]]:
    dev = device_for(study, device)
    return [dict(p, device=dev) for p in points]


def reproduce(studies: list[str], scale: str = "quick", out: Path | str = "overparam-results",
              executor: Executor | None = None, device: str = "cpu", quiet: bool | None = None) -> Outcome:
    """Sweep each study at ``scale`` (skipping points already in the store), then write the report into ``out``.
    ``executor``: where points run (default: a local process pool with a worker per core).

    One run per folder: a second run into ``out`` while this one holds it raises ``FolderBusy`` naming the holder.
    """
    return run_specs({name: scale for name in studies}, out, executor, device, quiet)


def sweep_study(study: str, settings: dict[str, list[Any]] | None = None, seeds: int = 3, scale: str = "quick",
                out: Path | str = "overparam-results", executor: Executor | None = None, device: str = "cpu",
                quiet: bool | None = None) -> Outcome:
    """Run ``study``'s sweep part on a grid of its declared parameters (``settings``: name → values; the others at
    their ``scale`` defaults), ``seeds`` seeds per grid point, and judge its claims on that grid, as ``reproduce``
    does (claims that need a grid not given are "not judged"). Resumable: finished points are skipped."""
    grid = get(study).grid(settings, scale)
    seeds = check("seeds", seeds, POSITIVE_INT)
    return run_specs({study: sweep_spec(grid, seeds, scale)}, out, executor, device, quiet)


def run_specs(specs: dict[str, str], out: Path | str, executor: Executor | None = None, device: str = "cpu",
              quiet: bool | None = None) -> Outcome:
    """Run each study's points for its spec (a scale or a sweep spec) into the store in ``out``, then the report."""
    out = Path(out)
    if executor is None:
        from .sweep.executors import LocalExecutor
        executor = LocalExecutor()
    check_store_file(out / STORE_NAME)  # a damaged store is refused before anything is written beside it
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    with folder_lock(out):
        parallel = getattr(executor, "workers", 1)
        with Store(out / STORE_NAME) as store, Progress(quiet, parallel=parallel) as progress:
            grid = {name: study_points(get(name), spec, device) for name, spec in specs.items()}
            for name in specs:
                if device_for(get(name), device) != device:
                    progress.log(f"[{name}] runs on {device_for(get(name), device)} whatever --device says "
                                 f"(it declares {', '.join(get(name).devices)}); its points run there")
            progress.begin(total=sum(len(tasks_for(get(n), p)) for n, p in grid.items()))
            progress.prior(estimated_seconds(grid))
            for name, spec in specs.items():
                summaries.append(run_sweep(get(name), grid[name], store, executor, scale=spec,
                                           device=device_for(get(name), device), progress=progress))
        executor.close()
        outcome = build_report(out, list(specs))
    outcome.sweeps = summaries
    return outcome


def estimated_seconds(grid: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """The cost model's seconds per point of each part (``study/part`` → s), for the ETA before a point finishes."""
    from .sweep.cost import CostModel
    model = CostModel.shipped()
    return {f"{name}/{part}": s for name, pts in grid.items()
            for part, s in model.seconds_per_part(get(name), pts).items()}


def _failed_verdict(study: Study, what: str, exc: BaseException) -> Verdict:
    nan = float("nan")
    return Verdict(study.name, f"{what} could be computed", nan, nan, nan, nan, "an error is a failure", nan, 0,
                   "fail", f"{type(exc).__name__}: {exc}")


def completeness_verdict(study: str, n_done: int, n_total: int) -> Verdict:
    """Every point of the sweep finished: a failed point fails the run (it is not silently left out)."""
    return Verdict(study, "every point of the sweep finished", float(n_done), float(n_total), 0.0, 0.0,
                   "exact: a point that raised is counted, never dropped", 0.0 if n_done >= n_total else float("inf"),
                   n_total, "pass" if n_done >= n_total else "fail",
                   f"{n_total - n_done} failed" if n_done < n_total else "", "at_least")


def study_results(store: Store, study: Study, points: list[dict[str, Any]]) -> pd.DataFrame:
    """The store's rows for the study's ``points`` (done and failed)."""
    return store.results(study.name, [t.key for t in tasks_for(study, points)])


def build_report(out: Path, studies: list[str] | None = None) -> Outcome:
    """Figures, verdicts, ``verdicts.json`` and ``index.html`` from the store in ``out``; recomputes no point."""
    path = out / STORE_NAME
    if not path.is_file():
        raise ValueError(f"out: no store {STORE_NAME} in {str(out)!r}; run 'overparam reproduce --out {out}' first")
    sections, all_verdicts = [], []
    with Store(path) as store:
        last = store.last_sweeps()
        names = studies if studies is not None else list(last)
        for name in names:
            info = last.get(name, {"scale": "quick", "device": "cpu"})
            study, points, scale = resolve(get(name), info["scale"])  # the grid is made once
            points = _on_device(study, points, info["device"])
            df = study_results(store, study, points)
            n_total = len(points)
            done = df[df["status"] == "done"].reset_index(drop=True) if len(df) else df
            errors = [] if not len(df) else [f"point {r.key}: {(r.error or 'failed').splitlines()[0]}"
                                             for r in df[df["status"] != "done"].itertuples()][:10]
            verdicts = [completeness_verdict(name, len(done), n_total)]
            try:
                verdicts += study.judge(done, scale=scale)
            except Exception as exc:  # noqa: BLE001 - shown in the report as a failing verdict
                verdicts.append(_failed_verdict(study, "verdicts", exc))
                errors.append(traceback.format_exc(limit=6))
            figures: dict[str, bytes] = {}
            try:
                fig_dir = out / "figures" / name
                fig_dir.mkdir(parents=True, exist_ok=True)
                for fig_name, fig in study.figures(done).items():
                    png = png_bytes(fig)
                    (fig_dir / f"{fig_name}.png").write_bytes(png)
                    figures[fig_name] = png
            except Exception as exc:  # noqa: BLE001
                verdicts.append(_failed_verdict(study, "figures", exc))
                errors.append(traceback.format_exc(limit=6))
            params = distinct_parameters([r.params for r in store.records(keys=df["key"].tolist())]
                                         if len(df) else [])
            run_info = dict(info, n_points=n_total, n_failed=int((df["status"] != "done").sum()) if len(df) else 0,
                            compute_s=float(df["duration_s"].sum()) if len(df) else 0.0)
            sections.append(StudySection(name, study.claim, verdicts, figures, params, run_info, errors))
            all_verdicts += verdicts
    (out / "verdicts.json").write_text(json.dumps([v.to_dict() for v in all_verdicts], indent=2))
    (out / "index.html").write_text(render(sections, dict(versions(), report_time=time.strftime("%Y-%m-%d %H:%M:%S"))))
    return Outcome(out, all_verdicts)


def distinct_parameters(params: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """For each parameter name, the distinct values it takes over the points (sorted)."""
    names = sorted({k for p in params for k in p})
    out = {}
    for k in names:
        vals = {json.dumps(p.get(k), sort_keys=True): p.get(k) for p in params}
        out[k] = sorted(vals.values(), key=lambda v: (str(type(v)), v if isinstance(v, (int, float)) else str(v)))
    return out
