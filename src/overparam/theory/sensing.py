"""What theory says about factorized gradient descent and nuclear-norm recovery in matrix sensing. No sampling.

**Imbalance recursion** (exact, any operator). With Δ_t = U_tᵀU_t − V_tᵀV_t and E_t = 𝒜*(y − 𝒜(U_tV_tᵀ)), the
gradient step U_{t+1} = U_t + μE_tV_t, V_{t+1} = V_t + μE_tᵀU_t gives

    Δ_{t+1} − Δ_t = μ² (V_tᵀE_tᵀE_tV_t − U_tᵀE_tE_tᵀU_t),

so, both terms being positive semi-definite, ‖Δ_t‖_op ≤ ‖Δ_0‖_op + μ² Σ_{s<t} max(‖E_sV_s‖²_op, ‖E_sᵀU_s‖²_op):
the imbalance can only grow at second order in the step size (implicit balancing).

**Degrees of freedom** of a rank-r n1×n2 matrix: r(n1 + n2 − r).

**Phase transition of nuclear-norm recovery** from m Gaussian measurements (Amelunxen, Lotz, McCoy, Tropp 2014):
recovery succeeds with high probability when m exceeds the statistical dimension δ of the descent cone of ‖·‖_* at
X*, and fails when m is below it. For rank r, with a = min(n1, n2) − r, b = max(n1, n2) − r,

    δ = inf_{τ ≥ 0}  r(n1 + n2 − r) + r τ² + a ∫ (√(b x) − τ)₊² ρ_MP(x) dx,

ρ_MP the Marchenko–Pastur law of ratio c = a/b (eigenvalues of WWᵀ/b, W an a×b Gaussian matrix): the expected
squared distance of a Gaussian matrix to τ·∂‖X*‖_*, minimized over τ, computed here by quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import quad
from scipy.optimize import minimize_scalar

from ..validation import NON_NEGATIVE, POSITIVE_INT, Array, validate_params


def _same_width(U: torch.Tensor, V: torch.Tensor, name: str = "V") -> None:
    if U.shape[1] != V.shape[1]:
        raise ValueError(f"{name}: must have {U.shape[1]} columns like the first factor (got shape {tuple(V.shape)})")


@validate_params({"U": Array(2, to="torch", keep_float32=True), "V": Array(2, to="torch", keep_float32=True)})
def imbalance(U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Δ = UᵀU − VᵀV, shape (k, k), for U (n1, k), V (n2, k) (float32 kept)."""
    _same_width(U, V)
    V = V.to(U.device, U.dtype)
    return U.T @ U - V.T @ V


def imbalance_increment(U: torch.Tensor, V: torch.Tensor, E: torch.Tensor, mu: float) -> torch.Tensor:
    """The exact one-step change μ²(VᵀEᵀEV − UᵀEEᵀU), shape (k, k); E = 𝒜*(y − 𝒜(UVᵀ)) (n1, n2)."""
    EV, EtU = E @ V, E.T @ U
    return mu**2 * (EV.T @ EV - EtU.T @ EtU)


@validate_params({"EV": Array(2, to="torch", keep_float32=True), "EtU": Array(2, to="torch", keep_float32=True),
                  "mu": NON_NEGATIVE})
def imbalance_bound_increment(EV: torch.Tensor, EtU: torch.Tensor, mu: float) -> float:
    """μ² max(‖EV‖²_op, ‖EᵀU‖²_op): the most one step can add to ‖Δ‖_op; EV (n1, k), EtU (n2, k)."""
    _same_width(EV, EtU, "EtU")
    return bound_increment(EV, EtU, mu)


def bound_increment(EV: torch.Tensor, EtU: torch.Tensor, mu: float) -> float:
    """:func:`imbalance_bound_increment` without the checks at the door, for a solver's inner loop."""
    return mu**2 * max(float(torch.linalg.matrix_norm(EV, ord=2)) ** 2,
                       float(torch.linalg.matrix_norm(EtU, ord=2)) ** 2)


@validate_params({"n1": POSITIVE_INT, "n2": POSITIVE_INT, "r": POSITIVE_INT})
def degrees_of_freedom(n1: int, n2: int, r: int) -> int:
    """r(n1 + n2 − r) for 1 ≤ r ≤ min(n1, n2)."""
    if r > min(n1, n2):
        raise ValueError(f"r: rank {r} exceeds min(n1, n2) = {min(n1, n2)}")
    return r * (n1 + n2 - r)


def _mp_expect_shrink(tau: float, a: int, b: int) -> float:
    """a · E_MP (√(b x) − τ)₊², Marchenko–Pastur ratio c = a/b ≤ 1."""
    if a == 0:
        return 0.0
    c = a / b
    lo, hi = (1 - math.sqrt(c)) ** 2, (1 + math.sqrt(c)) ** 2
    dens = lambda x: math.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * math.pi * c * x)  # noqa: E731
    start = max(lo, (tau * tau) / b)
    if start >= hi:
        return 0.0
    val, _ = quad(lambda x: (math.sqrt(b * x) - tau) ** 2 * dens(x), start, hi, limit=200, epsabs=1e-12)
    return a * val


@dataclass(frozen=True)
class PhaseTransition:
    delta: float  # statistical dimension: the number of Gaussian measurements at the transition
    tau: float  # the minimizing τ
    dof: int  # r(n1 + n2 − r)
    ratio: float  # δ / (r (n1 + n2)), the transition on the study's axis m / (r (n1 + n2))


def nuclear_phase_transition(n1: int, n2: int, r: int) -> PhaseTransition:
    """Statistical dimension of the nuclear-norm descent cone at a rank-r n1×n2 matrix (module docstring)."""
    dof = degrees_of_freedom(n1, n2, r)
    n1, n2, r = int(n1), int(n2), int(r)
    a, b = min(n1, n2) - r, max(n1, n2) - r

    def f(tau: float) -> float:
        return dof + r * tau * tau + _mp_expect_shrink(tau, a, b)

    hi = math.sqrt(b) * (1 + math.sqrt(a / b)) if a else 1.0
    res = minimize_scalar(f, bounds=(0.0, hi), method="bounded", options={"xatol": 1e-10})
    return PhaseTransition(float(res.fun), float(res.x), dof, float(res.fun) / (r * (n1 + n2)))


def statistical_dimension_finite(n1: int, n2: int, r: int, tau: float, draws: int = 2000, seed: int = 0) -> float:
    """The expected squared distance E‖G − τ∂‖X*‖_*‖²_F at finite n1×n2 (no Marchenko–Pastur limit), at the τ of
    :func:`nuclear_phase_transition`: r(n1 + n2 − r) + rτ² + E Σᵢ(sᵢ(W) − τ)₊², W the a×b Gaussian block.

    The one sampled quantity of this module (seeded Monte Carlo over ``draws`` matrices W); its difference from
    ``nuclear_phase_transition(...).delta`` is the finite-size error of the quadrature.
    """
    a, b = min(n1, n2) - r, max(n1, n2) - r
    rng = np.random.default_rng(seed)
    s = np.linalg.svd(rng.standard_normal((draws, a, b)), compute_uv=False)
    return float(degrees_of_freedom(n1, n2, r) + r * tau * tau + np.maximum(s - tau, 0.0).__pow__(2).sum(1).mean())
