"""Local convergence of Newton's method with an approximate Hessian (Li, Song, Wang, Yin 2023).

With r_t = ‖x_t − x*‖, l = λ_min(∇²L(x*)), M the Lipschitz constant of the Hessian and H̃ a (1 ± ε₀) spectral
approximation of the Hessian, one step obeys

    r_{t+1} ≤ 2 (ε₀ + M r_t / (l − M r_t)) r_t        (for M r_t < l),

so convergence is linear with rate about 2ε₀ once M r_t ≪ l ε₀, and ε is reached in O(log(r₀/ε)) steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import positive


def step_bound(r, eps0: float, M: float, l: float) -> np.ndarray:
    """The bound on r_{t+1} given r_t (vectorized); inf where M r_t ≥ l."""
    r = np.asarray(r, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 2 * (eps0 + M * r / (l - M * r)) * r
    return np.where(M * r < l, out, np.inf)


def iterations_to(eps: float, r0: float, eps0: float, M: float, l: float, max_iter: int = 10_000) -> int | float:
    """The number of steps the bound needs to bring r₀ below ``eps``; inf when the bound does not contract."""
    eps = positive("eps", eps)
    r, t = float(r0), 0
    while r > eps:
        nr = float(step_bound(r, eps0, M, l))
        if not math.isfinite(nr) or nr >= r or t >= max_iter:
            return math.inf
        r, t = nr, t + 1
    return t
