"""Local convergence of Newton's method with an approximate Hessian (Li, Song, Wang, Yin 2023).

With r_t = ‖x_t − x*‖, l = λ_min(∇²L(x*)), M the Lipschitz constant of the Hessian and H̃ a (1 ± ε₀) spectral
approximation of the Hessian, one step obeys

    r_{t+1} ≤ 2 (ε₀ + M r_t / (l − M r_t)) r_t        (for M r_t < l),

so convergence is linear with rate about 2ε₀ once M r_t ≪ l ε₀, and ε is reached in O(log(r₀/ε)) steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, validate_params

_BOUND_PARAMS = {"eps0": NON_NEGATIVE, "M": NON_NEGATIVE, "l": POSITIVE}


@validate_params({"r": Array(elements=NON_NEGATIVE, non_empty=False, to="numpy"), **_BOUND_PARAMS,
                  "eps0": Array(elements=NON_NEGATIVE, non_empty=False, to="numpy")})
def step_bound(r, eps0, M: float, l: float) -> np.ndarray:
    """The bound on r_{t+1} given r_t ≥ 0 (vectorized over r and ε₀, broadcast); inf where M r_t ≥ l. ε₀, M ≥ 0,
    l > 0."""
    return _bound(r, eps0, M, l)


def _bound(r, eps0, M: float, l: float) -> np.ndarray:
    """:func:`step_bound` without the checks at the door (the loop of :func:`iterations_to`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 2 * (eps0 + M * r / (l - M * r)) * r
    return np.where(M * r < l, out, np.inf)


@validate_params({"eps": POSITIVE, "r0": NON_NEGATIVE, **_BOUND_PARAMS, "max_iter": POSITIVE_INT})
def iterations_to(eps: float, r0: float, eps0: float, M: float, l: float, max_iter: int = 10_000) -> int | float:
    """The number of steps the bound needs to bring r₀ below ``eps``; inf when the bound does not contract within
    ``max_iter`` steps."""
    r, t = r0, 0
    while r > eps:
        nr = float(_bound(r, eps0, M, l))
        if not math.isfinite(nr) or nr >= r or t >= max_iter:
            return math.inf
        r, t = nr, t + 1
    return t


# --- cost per step (multiply-adds), the paper's model ---------------------------------------------------------------
#: ε₀ ∝ √(d log d / s): the exponent of the sample count s in the spectral accuracy of the sampled Hessian
EPS0_EXPONENT = -0.5
#: the exponent of d in a d × d factorization (ω = 3 for the factorizations used here)
OMEGA = 3.0


def exact_step_cost(n: int, d: int, omega: float = OMEGA) -> float:
    """Multiply-adds of one exact Newton step in the paper's model, O(n d² + d^ω): forming Cᵀ B C over all n rows
    (n d²) and solving with it (d^ω)."""
    return float(n) * d * d + float(d) ** omega


def approx_step_cost(nnz: int, d: int, s: int, k2: int = 32, omega: float = OMEGA) -> float:
    """Multiply-adds of one approximate Newton step in the paper's model, Õ(nnz(C) + s d² + d^ω): sketched
    leverage scores read C once per column of the Johnson–Lindenstrauss sketch (nnz · k₂, the Õ's factor, k₂ =
    O(log n)), the Hessian of s sampled rows (s d²) and the solve (d^ω)."""
    return float(nnz) * k2 + float(s) * d * d + float(d) ** omega


@validate_params({"n": POSITIVE_INT, "d": POSITIVE_INT, "nnz": POSITIVE_INT, "s": POSITIVE_INT, "k2": POSITIVE_INT,
                  "omega": POSITIVE})
def step_cost_ratio(n: int, d: int, nnz: int, s: int, k2: int = 32, omega: float = OMEGA) -> float:
    """exact / approximate Newton cost per step in the model."""
    return exact_step_cost(n, d, omega) / approx_step_cost(nnz, d, s, k2, omega)


#: O(nnz) passes over C that each method makes beyond its model's leading terms: exact Newton reads C for z = Cx,
#: the gradient Cᵀg, the three columns of CᵀU and the weighting of the Gram rows (6); approximate Newton for z, Cᵀg,
#: CᵀU (5), the row scaling |β|^{1/2}C, the sign sketch S·A and the n k₂ squared row norms (≤ nnz k₂ / d, one more
#: pass when k₂ ≤ d): 8
LOWER_ORDER_PASSES = {"newton": 6, "approx_newton": 8}
#: d³ terms the approximate model drops beyond its one d^ω: the QR of the 4d-row sketch (4d³) and R⁻¹Π (d³/3 + d² k₂)
LOWER_ORDER_CUBES = 5


def step_cost_ratio_allowance(n: int, d: int, nnz: int, s: int, k2: int = 32, omega: float = OMEGA) -> float:
    """Relative deviation of the counted exact/approximate ratio from :func:`step_cost_ratio` that the dropped
    lower-order terms allow: passes_e·nnz / exact model + (passes_a·nnz + 5 d³) / approximate model."""
    e = LOWER_ORDER_PASSES["newton"] * nnz / exact_step_cost(n, d, omega)
    a = (LOWER_ORDER_PASSES["approx_newton"] * nnz + LOWER_ORDER_CUBES * float(d) ** 3) / approx_step_cost(
        nnz, d, s, k2, omega)
    return e + a
