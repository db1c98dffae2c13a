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


def exact_step_cost(n: int, d: int, omega: float = OMEGA, sq: float | None = None) -> float:
    """Multiply-adds of one exact Newton step in the paper's model, O(n d² + d^ω): forming Cᵀ B C over all n rows
    (n d(d + 1)/2 for dense rows, a symmetric rank-n update; Σ_i nnz_i² = ``sq`` for sparse rows, a general sparse
    product) and solving with it (d^ω)."""
    return (float(n) * d * (d + 1) / 2 if sq is None else float(sq)) + float(d) ** omega


def approx_step_cost(nnz: int, d: int, s: int, k2: float = 32, omega: float = OMEGA, sq_per_row: float | None = None
                     ) -> float:
    """Multiply-adds of one approximate Newton step in the paper's model, Õ(nnz(C) + s d² + d^ω): ``k2`` passes over
    C (the Õ's factor: the step's own passes plus the leverage-score sketch's, :func:`approx_passes`), the Hessian of
    s sampled rows (s d(d + 1)/2 dense, or s times the mean nnz_i² ``sq_per_row`` for sparse rows) and the solve
    (d^ω)."""
    return float(nnz) * k2 + float(s) * (d * (d + 1) / 2 if sq_per_row is None else sq_per_row) + float(d) ** omega


#: passes over C that every approximate step makes: z = Cx (1) and the fused Cᵀ[g_z, u, q + p] (3 columns)
STEP_PASSES = 4


def approx_passes(k2: int, refreshes: float = 1.0, steps: float = 1.0) -> float:
    """Passes over C per approximate step: :data:`STEP_PASSES` plus the leverage-score sketch (one CountSketch pass
    and k₂ JL columns) amortized over the steps that reuse it: 4 + (1 + k₂)·refreshes/steps."""
    return STEP_PASSES + (1 + k2) * refreshes / steps


@validate_params({"n": POSITIVE_INT, "d": POSITIVE_INT, "nnz": POSITIVE_INT, "s": POSITIVE_INT, "k2": POSITIVE,
                  "omega": POSITIVE})
def step_cost_ratio(n: int, d: int, nnz: int, s: int, k2: float = 32, omega: float = OMEGA,
                    sq: float | None = None) -> float:
    """exact / approximate Newton cost per step in the model (``k2``: passes over C per approximate step)."""
    return exact_step_cost(n, d, omega, sq) / approx_step_cost(nnz, d, s, k2, omega,
                                                               None if sq is None else sq / n)


def step_cost_ratio_allowance(n: int, d: int, nnz: int, s: int, k2: float = 32, omega: float = OMEGA,
                              sq: float | None = None, k1: int | None = None, refreshes: float = 1.0,
                              steps: float = 1.0, jl: int = 8) -> float:
    """Relative deviation of the counted exact/approximate ratio from :func:`step_cost_ratio` that the terms the
    model drops allow: exact, its :data:`STEP_PASSES` passes over C (z, the fused pass), the Gram's row weighting
    (nnz) and the low-rank part and solve (3d² + 4d); approximate, the sampled rows' weighting (s nnz/n), the
    low-rank part (2d² + 4d), and per refresh the sketch's QR (k₁d²), R⁻¹Π (d³/3 + d²k₂ ≤ 2d³) and row norms
    (n k₂, ``jl`` = k₂): (k₁d² + 2d³ + n k₂)·refreshes/steps with k₁ = 8d; each model also counts the solve as
    d^ω = d³ where the code spends d³/3 + d² (2d³/3 on either side)."""
    k1 = 8 * d if k1 is None else k1
    cube = 2.0 * d**3 / 3
    e = (STEP_PASSES * nnz + nnz + 3 * d * d + 4 * d + cube) / exact_step_cost(n, d, omega, sq)
    a = (s * nnz / n + 2 * d * d + 4 * d + cube + (k1 * d * d + 2.0 * d**3 + n * jl) * refreshes / steps
         ) / approx_step_cost(nnz, d, s, k2, omega, None if sq is None else sq / n)
    return e + a
