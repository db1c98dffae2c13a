"""Claims as data, judged in one place.

A study declares :class:`Claim` s; the pipeline calls :func:`judge` on each, never the study. A claim's
``evaluate(results, theory)`` turns the study's results table into :class:`Evidence` — the measured figure, what the
theory predicts, the standard error of their difference across seeds, a finite-size bias allowance and how many points
were behind it — and the claim's own data say how that is compared:

    tolerance = k · standard_error + bias + floor
    close:    pass ⇔ |measured − predicted| ≤ tolerance,   margin = |measured − predicted| / tolerance
    at_most:  pass ⇔ measured ≤ predicted + tolerance,      margin = (measured − predicted) / tolerance
    at_least: pass ⇔ measured ≥ predicted − tolerance,      margin = (predicted − measured) / tolerance

so a claim passes exactly when ``margin ≤ 1``. ``theory`` is handed in by the caller (the study's
``theory_model``), so a test can hand in a perturbed theory and see the verdict fail.

A claim is *not judged* (status "not judged", never a failure) when there are too few data to decide: ``evaluate``
returned ``None``, fewer than ``min_n`` samples, a standard error that is needed (k > 0) but undefined, or a scale that
is declared too small to judge. Points whose solver did not converge (``converged`` names the status columns that must
read "converged") are excluded before ``evaluate`` sees the table and counted in the verdict's detail; more than
``max_excluded`` of them (a fraction) makes the claim fail, saying so.

This module has no internal imports: ``report/`` and ``sweep/`` read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd

STATUSES: tuple[str, ...] = ("pass", "fail", "not judged")
COMPARISONS: tuple[str, ...] = ("close", "at_most", "at_least")
#: what a status column must read for a point to count towards a claim that requires converged solves
CONVERGED = "converged"


@dataclass(frozen=True)
class Verdict:
    """One claim judged. ``margin`` = distance from the prediction in units of the tolerance (pass ⇔ margin ≤ 1)."""

    study: str
    claim: str
    measured: float
    predicted: float
    standard_error: float
    tolerance: float
    tolerance_derivation: str
    margin: float
    n: int
    status: str
    detail: str = ""
    comparison: str = "close"

    @property
    def passed(self) -> bool:
        """True unless the verdict failed ("not judged" does not fail a run)."""
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None if math.isnan(v) else str(v)  # JSON has no NaN or inf
        return d


@dataclass(frozen=True)
class Evidence:
    """What ``Claim.evaluate`` measured.

    ``standard_error``: of ``measured − predicted`` across independent seeds (NaN where undefined);
    ``bias``: a finite-size bias allowance, measured or derived (the claim's derivation says which);
    ``n``: independent samples behind ``measured``; ``detail``: one line for the report (where it is worst, …).
    """

    measured: float
    predicted: float
    standard_error: float = float("nan")
    n: int = 1
    bias: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a study.

    ``evaluate(results, theory) -> Evidence | None`` reads only the rows of ``part`` (all rows when None) that passed
    the ``converged`` filter. ``k`` standard errors plus the evidence's bias plus ``floor`` make the tolerance;
    ``derivation`` says in one sentence why (k, where the bias comes from). ``min_n``: fewer samples are "not judged".
    ``max_excluded``: the largest fraction of non-converged points that may be left out before the claim fails.
    """

    name: str
    evaluate: Callable[[pd.DataFrame, Any], "Evidence | None"]
    derivation: str
    comparison: Literal["close", "at_most", "at_least"] = "close"
    k: float = 3.0
    floor: float = 0.0
    part: str | None = None
    converged: Sequence[str] = ()
    min_n: int = 2
    max_excluded: float = 0.1
    #: scales whose sizes are declared too small to decide this claim (its verdict says "not judged" there)
    not_judged_at: Sequence[str] = ("test",)

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison: must be one of {', '.join(COMPARISONS)} (got {self.comparison!r})")
        if not (self.k >= 0 and self.floor >= 0):
            raise ValueError(f"k, floor: must be ≥ 0 (got k = {self.k}, floor = {self.floor})")


def margin_of(comparison: str, measured: float, predicted: float, tolerance: float) -> float:
    """Distance in units of the tolerance, signed so that pass ⇔ margin ≤ 1 (NaN measured → inf)."""
    if not (math.isfinite(measured) and math.isfinite(predicted)):
        return math.inf
    diff = {"close": abs(measured - predicted), "at_most": measured - predicted,
            "at_least": predicted - measured}[comparison]
    if tolerance > 0:
        return diff / tolerance
    return 0.0 if diff <= 0 else math.inf


def exclude_unconverged(results: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Rows whose every status column in ``columns`` reads "converged" or is empty (NaN: a row of a part whose run
    has no such solver, seen by a claim that reads several parts), and how many rows were left out."""
    if not len(results) or not columns:
        return results, 0
    ok = np.ones(len(results), dtype=bool)
    for c in columns:
        if c in results:
            ok &= ((results[c] == CONVERGED) | results[c].isna()).to_numpy()
    return results[ok], int((~ok).sum())


def judge(study: str, claim: Claim, results: pd.DataFrame, theory: Any, scale: str | None = None) -> Verdict:
    """The verdict on ``claim`` from the study's ``results`` table and the ``theory`` it is held against."""
    rows = results
    if claim.part is not None:
        rows = results[results["part"] == claim.part] if "part" in results else results.iloc[0:0]
    rows, n_excluded = exclude_unconverged(rows, claim.converged)
    n_total = len(rows) + n_excluded

    def verdict(status: str, ev: Evidence | None, tol: float = math.nan, margin: float = math.nan,
                detail: str = "") -> Verdict:
        measured = ev.measured if ev else math.nan
        predicted = ev.predicted if ev else math.nan
        se = ev.standard_error if ev else math.nan
        parts = [p for p in (ev.detail if ev else "", detail) if p]
        if n_excluded:
            parts.append(f"{n_excluded} of {n_total} points excluded (solver did not converge)")
        return Verdict(study, claim.name, float(measured), float(predicted), float(se), float(tol),
                       claim.derivation, float(margin), int(ev.n if ev else len(rows)), status, "; ".join(parts),
                       claim.comparison)

    if n_total and n_excluded > claim.max_excluded * n_total:
        return verdict("fail", None, detail=f"too many unconverged points: {n_excluded} of {n_total} "
                                            f"(at most {claim.max_excluded:.0%} may be excluded)")
    if not len(rows):
        return verdict("not judged", None, detail="no data for this claim")
    ev = claim.evaluate(rows.reset_index(drop=True), theory)
    if ev is None:
        return verdict("not judged", None, detail="too few data to decide")
    se_term = claim.k * ev.standard_error if claim.k > 0 else 0.0
    tol = se_term + abs(ev.bias) + claim.floor
    margin = margin_of(claim.comparison, ev.measured, ev.predicted, tol)
    if scale is not None and scale in claim.not_judged_at:
        return verdict("not judged", ev, tol, margin, f"the {scale} scale is too small to decide")
    if ev.n < claim.min_n:
        return verdict("not judged", ev, tol, margin, f"{ev.n} samples, at least {claim.min_n} needed")
    if claim.k > 0 and not math.isfinite(ev.standard_error):
        return verdict("not judged", ev, tol, margin, "standard error undefined (a single seed?)")
    return verdict("pass" if margin <= 1 else "fail", ev, tol, margin)


# --- statistics every claim uses -----------------------------------------------------------------------------------
def mean_sem(values: Sequence[float] | np.ndarray) -> tuple[float, float, int]:
    """Mean, standard error of the mean (NaN for fewer than two values) and count of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return math.nan, math.nan, 0
    sem = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), sem, int(len(v))


def pooled_mean(means: Sequence[float] | np.ndarray, sems: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Inverse-variance weighted mean of independent estimates and its standard error.

    Σ wᵢ mᵢ / Σ wᵢ with wᵢ = 1/sᵢ², standard error (Σ wᵢ)^−½. A uniform shift of every mᵢ moves the pooled mean by
    the same shift, while its standard error falls like 1/√(number of estimates): the pooled test over a grid detects
    a systematic theory error far earlier than the largest single deviation does.
    """
    m, s = np.asarray(means, float), np.asarray(sems, float)
    keep = np.isfinite(m) & np.isfinite(s) & (s > 0)
    if not keep.any():
        return math.nan, math.nan
    w = 1.0 / s[keep] ** 2
    return float((w * m[keep]).sum() / w.sum()), float(1.0 / math.sqrt(w.sum()))


def line_fit(x: Sequence[float], y: Sequence[float],
             y_se: Sequence[float]) -> tuple[float, float, float, float]:
    """Weighted least squares y = a + b·x (weights wᵢ = 1/sᵢ², sᵢ the standard error of yᵢ from independent seeds):
    (b, s.e. of b, a, s.e. of a) with Var b = 1/S, Var a = 1/Σwᵢ + x̄²/S, x̄ = Σwᵢxᵢ/Σwᵢ, S = Σwᵢ(xᵢ − x̄)²."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = 1.0 / np.maximum(np.asarray(y_se, float), 1e-300) ** 2
    xb, yb = (w * x).sum() / w.sum(), (w * y).sum() / w.sum()
    sxx = (w * (x - xb) ** 2).sum()
    b = float((w * (x - xb) * (y - yb)).sum() / sxx)
    return b, float(1.0 / math.sqrt(sxx)), float(yb - b * xb), float(math.sqrt(1.0 / w.sum() + xb ** 2 / sxx))


def slope_with_se(x: Sequence[float], y: Sequence[float], y_se: Sequence[float] | None = None) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error.

    With ``y_se`` (standard errors of each y from independent seeds) the slope is the weighted fit of
    :func:`line_fit` and its standard error is propagated from them; without, it is the residual-based error of the
    ordinary fit (NaN for fewer than three points).
    """
    if y_se is not None:
        return line_fit(x, y, y_se)[:2]
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, icpt = np.polyfit(x, y, 1)
    if len(x) < 3:
        return float(slope), math.nan
    resid = y - (slope * x + icpt)
    return float(slope), float(math.sqrt((resid @ resid) / (len(x) - 2) / ((x - x.mean()) ** 2).sum()))


__all__ = ["STATUSES", "COMPARISONS", "CONVERGED", "Verdict", "Evidence", "Claim", "judge", "margin_of",
           "exclude_unconverged", "mean_sem", "pooled_mean", "line_fit", "slope_with_se"]
