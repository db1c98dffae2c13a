"""Small fits shared by the studies' verdicts and figures."""

from __future__ import annotations

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
