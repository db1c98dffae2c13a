"""What a sweep will cost before it runs: seconds and peak memory per point, per part and in all.

Each study's part declares ``work(point)``, a number proportional to the point's compute (the multiply-adds of its
dominant loop, as a formula of the point's sizes), and ``memory(point)``, the bytes of the largest arrays it holds.
The model turns work into seconds with a line fitted to measured runs, per part::

    seconds(point) = a + c · work(point)        a, c ≥ 0 (non-negative least squares on relative error,
                                                  then scaled so the calibration run's total is reproduced)

``a`` is a point's fixed overhead (imports, set-up), ``c`` the seconds per unit of work on the machine measured.
Parts that run the same function with the same work formula share one fit (more sizes for one line).
A part measured at one size only gets ``a = 0`` (no overhead can be told apart), and a part without a work formula
the mean time of its points.
Linear in work by design: the formulas count multiply-adds, so a larger point costs proportionally more and the fit
extrapolates to the paper scale as the arithmetic does. The spread of the fit, ``exp(rms log(measured/fitted))``, is
reported as the factor within which a point's time was predicted on the calibration run.

The model shipped with the package (``cost_model.json``) was fitted on a quick-scale run on the 2-core development
machine; :meth:`CostModel.calibrate` fits one on any store, e.g. a run on your own machine
(``overparam plan STUDY --calibrate-from DIR``). Peak memory = the largest point's arrays + the interpreter's own
footprint (:data:`BASE_MEMORY`, measured: Python with torch, NumPy, SciPy and pandas imported).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .progress import fmt_seconds as _fmt_s

#: resident memory of a worker before its first point (Python + torch + NumPy + SciPy + pandas + the studies):
#: 371 MB measured here
BASE_MEMORY = 371e6
SHIPPED = Path(__file__).with_name("cost_model.json")


@dataclass(frozen=True)
class PartCost:
    """seconds = a + c · work; ``spread``: the calibration run's rms factor between measured and fitted seconds."""

    a: float
    c: float
    spread: float
    n: int

    def seconds(self, work: float) -> float:
        return self.a + self.c * work


def fit_part(work: np.ndarray, seconds: np.ndarray) -> PartCost:
    """Fit ``seconds ≈ a + c·work`` (a, c ≥ 0) minimizing the relative error; a constant when work does not vary."""
    from scipy.optimize import nnls

    w, s = np.asarray(work, float), np.asarray(seconds, float)
    keep = np.isfinite(w) & np.isfinite(s) & (s > 0)
    w, s = w[keep], s[keep]
    if not len(s):
        raise ValueError("seconds: no finished points to calibrate on")
    if np.ptp(w) <= 1e-12 * max(1.0, float(np.max(np.abs(w)))):
        # one size only: no overhead can be told apart, so seconds ∝ work (through the mean, after the rescaling)
        a, c = 0.0, 1.0 / max(float(w[0]), 1e-300)
    else:
        A = np.stack([np.ones_like(w), w], axis=1) / s[:, None]
        (a, c), _ = nnls(A, np.ones_like(s))
    # relative errors fit the typical point; rescaled so that the calibration run's total is reproduced (a worker's
    # first point, which pays for warming up, is rare but long, and totals are what a plan is read for)
    scale = float(s.sum() / max(np.sum(a + c * w), 1e-300))
    a, c = a * scale, c * scale
    fitted = np.maximum(a + c * w, 1e-12)
    spread = float(np.exp(np.sqrt(np.mean(np.log(s / fitted) ** 2))))
    return PartCost(float(a), float(c), spread, int(len(s)))


def _pool(study: Any, part: Any) -> tuple[str, Any, Any]:
    """Parts that run the same function with the same work formula share one fit (more sizes, one line)."""
    return (study.name, getattr(part.run, "__qualname__", part.name), getattr(part.work, "__qualname__", None))


def _work(part: Any, point: dict[str, Any]) -> float:
    return float(part.work(point)) if part.work is not None else 1.0


class CostModel:
    """Per ``study/part``: a :class:`PartCost`. ``source`` says what run it was fitted on."""

    def __init__(self, parts: dict[str, PartCost], source: str = ""):
        self.parts, self.source = parts, source

    # --- making one -------------------------------------------------------------------------------------------------
    @classmethod
    def shipped(cls) -> "CostModel":
        """The model fitted on the development machine (empty when the file is missing)."""
        return cls.load(SHIPPED) if SHIPPED.is_file() else cls({}, "none")

    @classmethod
    def load(cls, path: str | Path) -> "CostModel":
        d = json.loads(Path(path).read_text())
        return cls({k: PartCost(**v) for k, v in d["parts"].items()}, d.get("source", ""))

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps({"source": self.source, "parts": {k: asdict(v) for k, v in
                                                                           sorted(self.parts.items())}}, indent=1))
        return Path(path)

    @classmethod
    def calibrate(cls, records: Iterable[Any], studies: dict[str, Any], source: str = "") -> "CostModel":
        """Fit every part from finished store records (``PointRecord`` s with ``study``, ``params``, ``status``,
        ``duration_s``) of the ``studies`` given (name → Study)."""
        parts = {name: study._parts() for name, study in studies.items()}  # built once, not per record
        rows: dict[tuple[str, Any, Any], list[tuple[float, float]]] = {}
        for r in records:
            study = studies.get(r.study)
            if study is None or r.status != "done" or not r.duration_s:
                continue
            part = parts[r.study].get(r.params.get("part"))
            if part is None:
                continue
            rows.setdefault(_pool(study, part), []).append((_work(part, r.params), float(r.duration_s)))
        fits = {k: fit_part(*map(np.array, zip(*v))) for k, v in rows.items()}
        return cls({f"{name}/{part.name}": fits[_pool(study, part)] for name, study in studies.items()
                    for part in parts[name].values() if _pool(study, part) in fits}, source)

    # --- using one --------------------------------------------------------------------------------------------------
    def seconds_per_part(self, study: Any, points: list[dict[str, Any]]) -> dict[str, float]:
        """Mean estimated seconds per point of each part present in ``points``."""
        table = self.plan(study, points)
        return dict(zip(table["part"], table["seconds_per_point"])) if len(table) else {}

    def plan(self, study: Any, points: list[dict[str, Any]]) -> pd.DataFrame:
        """One row per part: points, seconds per point (mean), CPU seconds in all, peak memory (bytes), the
        calibration's spread factor."""
        parts = study._parts()
        rows = []
        for name in dict.fromkeys(p.get("part") for p in points):
            pts = [p for p in points if p.get("part") == name]
            part = parts[name]
            cost = self.parts.get(f"{study.name}/{name}")  # None: never calibrated, NaN seconds
            secs = np.array([cost.seconds(_work(part, p)) if cost else math.nan for p in pts])
            mem = max((float(part.memory(p)) for p in pts), default=0.0) if part.memory is not None else 0.0
            rows.append(dict(study=study.name, part=name, points=len(pts), seconds_per_point=float(np.mean(secs)),
                             cpu_seconds=float(np.sum(secs)), peak_memory=BASE_MEMORY + mem,
                             spread=cost.spread if cost else math.nan))
        return pd.DataFrame(rows)


def format_plan(table: pd.DataFrame, workers: int, source: str) -> str:
    """The plan as text: a line per part, totals, and the wall time on ``workers`` processes."""
    lines = [f"{'study/part':<34} {'points':>7} {'s/point':>9} {'CPU':>12} {'peak memory':>12} {'spread':>7}"]
    for r in table.itertuples():
        lines.append(f"{r.study + '/' + r.part:<34} {r.points:>7} {_fmt_s(r.seconds_per_point):>9} "
                     f"{_fmt_s(r.cpu_seconds):>12} {_fmt_b(r.peak_memory):>12} "
                     f"{'×' + format(r.spread, '.2f') if r.spread == r.spread else '?':>7}")
    unknown = table[table["cpu_seconds"].isna()]["part"].tolist() if len(table) else []
    total = float(table["cpu_seconds"].dropna().sum()) if len(table) else 0.0
    lines.append(f"in all: {int(table['points'].sum()) if len(table) else 0} points, {_fmt_s(total)} of CPU, about "
                 f"{_fmt_s(total / max(1, workers))} on {workers} worker{'s' if workers != 1 else ''}, peak memory "
                 f"{_fmt_b(float(table['peak_memory'].max()) if len(table) else BASE_MEMORY)} per worker")
    if unknown:
        lines.append(f"not calibrated (no measured run): {', '.join(unknown)} — left out of the totals")
    lines.append(f"cost model: {source or 'unknown'}")
    return "\n".join(lines)


def _fmt_b(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"
