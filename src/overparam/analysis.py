"""Small fits shared by the studies' verdicts and figures."""

from __future__ import annotations

import math

import numpy as np


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (power-law exponents: y ∝ x^slope)."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def powerlaw_exponent_extrapolated(x, y, y_se, correction: float = -0.5) -> tuple[float, float, float]:
    """Exponent p of y ∝ x^p with its leading finite-size correction fitted and extrapolated away.

    Weighted least squares (weights 1/σᵢ², σᵢ the standard error of log yᵢ from independent seeds) of

        log y = a + p log x + c x^{correction},

    i.e. y = A x^p (1 + c x^{correction} + …): the local log-log slope drifts like c·correction·x^{correction}, so a
    plain fit over a finite grid is biased and this one is not (to that order). Returns (p, its standard error
    propagated from σ, c).
    """
    x, y, s = (np.asarray(v, float) for v in (x, y, y_se))
    X = np.stack([np.ones_like(x), np.log(x), x**correction], 1)
    w = 1.0 / np.maximum(s, 1e-300) ** 2
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = cov @ X.T @ (w * np.log(y))
    return float(beta[1]), float(np.sqrt(cov[1, 1])), float(beta[2])


def crossing(x, rate, level: float = 0.5) -> float:
    """First x at which an increasing ``rate`` (a success rate on the grid x) crosses ``level``, by linear
    interpolation between the grid points around it; x[0] when it starts above, NaN when it never gets there."""
    x, y = np.asarray(x, float), np.asarray(rate, float)
    for i in range(1, len(x)):
        if y[i - 1] < level <= y[i]:
            return float(x[i - 1] + (level - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return float(x[0]) if len(y) and y[0] >= level else float("nan")


def logistic_crossing(x, success, iters: int = 50) -> tuple[float, float]:
    """Where a logistic fit of the trials' successes crosses 1/2, and its binomial standard error.

    Maximum likelihood for P(success | x) = 1/(1 + e^{−(b₀ + b₁x)}) over all trials (0/1 outcomes) by Newton's
    method; the crossing is x₅₀ = −b₀/b₁ and its standard error the delta method on the inverse Fisher information
    C = (Σ pᵢ(1 − pᵢ) zᵢzᵢᵀ)⁻¹, zᵢ = (1, xᵢ):  Var x₅₀ = gᵀCg with g = (−1/b₁, b₀/b₁²). (NaN, NaN) when the
    outcomes do not overlap (no finite maximum) or all agree.
    """
    x, s = np.asarray(x, float), np.asarray(success, float)
    if len(x) < 3 or s.min() == s.max():
        return float("nan"), float("nan")
    try:
        return _logistic_crossing(x, s, iters)
    except np.linalg.LinAlgError:  # separable outcomes: the likelihood has no finite maximum
        return float("nan"), float("nan")


def _logistic_crossing(x: np.ndarray, s: np.ndarray, iters: int) -> tuple[float, float]:
    Z = np.column_stack([np.ones_like(x), x - x.mean()])
    b = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(Z @ b)))
        H = (Z * (p * (1 - p))[:, None]).T @ Z
        step = np.linalg.solve(H, Z.T @ (s - p))
        b = b + step
        if np.abs(step).max() < 1e-10 or np.abs(b).max() > 1e6:
            break
    p = 1 / (1 + np.exp(-(Z @ b)))
    C = np.linalg.inv((Z * (p * (1 - p))[:, None]).T @ Z)
    if not (np.isfinite(b).all() and abs(b[1]) > 0 and np.abs(b).max() < 1e6):
        return float("nan"), float("nan")
    g = np.array([-1 / b[1], b[0] / b[1] ** 2])
    return float(x.mean() - b[0] / b[1]), float(np.sqrt(g @ C @ g))


def convergence_order(errors, floor: float, ceiling: float = 1.0) -> float:
    """Order p of convergence e_{t+1} ≈ C e_t^p from a sequence of errors: the median over steps of
    q_t = log(e_{t+1}/e_t) / log(e_t/e_{t−1}) (p = 2 for Newton's quadratic convergence; with a constant C it is
    exact), using errors in (floor, ceiling). When the method reaches the floor (float64 rounding) too fast for that
    (fewer than three errors above it), the first error at or below the floor closes the sequence: it bounds the true
    error from above, so the order it gives is a lower bound. NaN when no step is left."""
    e = [x for x in errors if floor < x < ceiling]
    if len(e) < 3:
        e = e + [x for x in errors if 0 < x <= floor][:1]
    q = [math.log(e[t + 1] / e[t]) / math.log(e[t] / e[t - 1]) for t in range(1, len(e) - 1)
         if e[t] < e[t - 1] and e[t + 1] < e[t]]
    return float(np.median(q)) if q else float("nan")
