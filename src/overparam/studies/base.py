"""The contract every study follows.

A study is one paper's claims made checkable. ``reproduce`` calls, for each study,

1. ``points(scale)``      the grid: a list of JSON-serialisable parameter dicts (each fully specifies one run,
                          its ``seed`` included);
2. ``run(point)``         one run: returns metrics, ``dict[str, float | list[float]]``;
3. ``theory(...)``        what the paper predicts (study-specific signature, pure NumPy/SciPy);
4. ``figures(results)``   ``dict[name, matplotlib Figure]`` from the results table;
5. ``verdicts(results)``  ``list[Verdict]``: claim, measured, predicted, tolerance, passed.

``results`` is the store's table for the study's points: one row per point, parameters and metrics as columns
(see :meth:`overparam.sweep.store.Store.results`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import pandas as pd

SCALES: tuple[str, ...] = ("test", "quick", "paper")


@dataclass(frozen=True)
class Verdict:
    """One claim checked: ``passed`` is decided by the study from measured, predicted and tolerance."""

    study: str
    claim: str
    measured: float
    predicted: float | str
    tolerance: float | str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("measured", "predicted", "tolerance"):
            v = d[k]
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = str(v)  # JSON has no NaN
        d["passed"] = bool(d["passed"])
        return d


def verdict_close(study: str, claim: str, measured: float, predicted: float, rtol: float,
                  detail: str = "") -> Verdict:
    """Verdict that |measured − predicted| ≤ rtol·|predicted| (NaN fails)."""
    ok = math.isfinite(measured) and abs(measured - predicted) <= rtol * abs(predicted)
    return Verdict(study, claim, float(measured), float(predicted), f"±{rtol:.3g} relative", bool(ok), detail)


def verdict_at_most(study: str, claim: str, measured: float, bound: float, detail: str = "") -> Verdict:
    """Verdict that measured ≤ bound (NaN fails)."""
    ok = math.isfinite(measured) and measured <= bound
    return Verdict(study, claim, float(measured), float(bound), "≤ predicted", bool(ok), detail)


def verdict_at_least(study: str, claim: str, measured: float, bound: float, detail: str = "") -> Verdict:
    """Verdict that measured ≥ bound (NaN fails)."""
    ok = math.isfinite(measured) and measured >= bound
    return Verdict(study, claim, float(measured), float(bound), "≥ predicted", bool(ok), detail)


@dataclass
class Study:
    """Base class: subclasses set ``name``, ``claim`` and implement the five calls."""

    name: ClassVar[str] = ""
    claim: ClassVar[str] = ""
    #: bump when a change alters the numbers ``run`` returns (part of every point's key)
    version: ClassVar[str] = "1"
    options: dict[str, Any] = field(default_factory=dict)

    def points(self, scale: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def run(self, point: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def theory(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def figures(self, results: pd.DataFrame) -> dict[str, Any]:
        return {}

    def verdicts(self, results: pd.DataFrame) -> list[Verdict]:
        return []

    # helpers for subclasses --------------------------------------------------------------------------
    def verdict(self, claim: str, measured: float, predicted: float | str, tolerance: float | str,
                passed: bool, detail: str = "") -> Verdict:
        return Verdict(self.name, claim, float(measured), predicted, tolerance, bool(passed), detail)
