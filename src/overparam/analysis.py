"""Small fits shared by the studies' verdicts and figures."""

from __future__ import annotations

import math

import numpy as np


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (power-law exponents: y ∝ x^slope)."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


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
