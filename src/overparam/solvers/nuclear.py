"""Nuclear-norm (and trace-on-the-PSD-cone) regularized least squares by accelerated proximal gradient.

Solves, for a linear operator 𝒜 (``forward``/``adjoint``) and weight w > 0,

    min_X  P(X) = (w/2) ‖𝒜(X) − y‖² + lam · R(X),

with R(X) = ‖X‖_* (sum of singular values; ``psd=False``) or R(S) = Tr S + ι{S ⪰ 0} (``psd=True``). One solver, two
proximal maps: singular-value soft-thresholding, X ↦ U diag((σ_i − t)₊) Vᵀ, and eigenvalue shift-and-clip,
S ↦ Q diag((λ_i − t)₊) Qᵀ. FISTA with step 1/L, L = w ‖𝒜‖² (estimated, then backtracked), and adaptive restart
(O'Donoghue & Candès 2015; the gradient scheme by default).

Stopping on the duality gap: with residual z = w (y − 𝒜X), scaled into the dual feasible set
{‖𝒜*z‖_op ≤ lam} (resp. {λ_max(𝒜*z) ≤ lam}), the dual value D(z) = ⟨y, z⟩ − ‖z‖²/(2w) ≤ P*; the solver stops when
P(X) − D(z) ≤ ``tol`` · max(1, |P(X)|) and reports it. It says why it stopped (converged to that gap, or max_iter).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..problems.matrix_sensing import SensingOperator
from ..validation import (POSITIVE, POSITIVE_INT, choice, finite_array, in_range, positive, positive_int,
                          validate_params)
from .result import SolverResult


#: momentum restart schemes (O'Donoghue & Candès 2015): 'gradient' drops the momentum after a step whose gradient map
#: opposes it, ⟨Z − X⁺, X⁺ − X⟩ > 0 (no extra pass); 'function' redoes a step that raised P from X (one more forward)
RESTARTS = ("gradient", "function", "none")


def _svt(X: torch.Tensor, t: float) -> tuple[torch.Tensor, int, float]:
    """(X', rank of X', ‖X'‖_*) for singular-value soft-thresholding (the penalty comes free with the prox)."""
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    s = (s - t).clamp_min(0.0)
    r = int((s > 0).sum())
    return (U[:, :r] * s[:r]) @ Vh[:r], r, float(s.sum())


def _psd_shift(S: torch.Tensor, t: float) -> tuple[torch.Tensor, int, float]:
    """(S', rank of S', Tr S') for the eigenvalue shift-and-clip."""
    w, Q = torch.linalg.eigh(0.5 * (S + S.T))
    w = (w - t).clamp_min(0.0)
    keep = w > 0
    Qk = Q[:, keep]
    return (Qk * w[keep]) @ Qk.T, int(keep.sum()), float(w.sum())


def svt(X: torch.Tensor, t: float) -> tuple[torch.Tensor, int]:
    """Singular-value soft-thresholding: the prox of t‖·‖_*; returns (X', rank of X')."""
    return _svt(X, t)[:2]


def psd_shift(S: torch.Tensor, t: float) -> tuple[torch.Tensor, int]:
    """Eigenvalue shift-and-clip of the symmetric part: the prox of t·Tr + ι{⪰ 0}; returns (S', rank of S')."""
    return _psd_shift(S, t)[:2]


def _op_norm(M: torch.Tensor, psd: bool) -> float:
    if psd:
        return float(torch.linalg.eigvalsh(0.5 * (M + M.T))[-1])
    return float(torch.linalg.matrix_norm(M, ord=2))


def _penalty(X: torch.Tensor, psd: bool) -> float:
    return float(torch.trace(X)) if psd else float(torch.linalg.svdvals(X).sum())


def _svt_factors(X: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Singular-value soft-thresholding as factors: (A (n1, r), B (n2, r), r, ‖X'‖_*) with X' = A Bᵀ."""
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    s = (s - t).clamp_min(0.0)
    r = int((s > 0).sum())
    return U[:, :r] * s[:r], Vh[:r].T, r, float(s.sum())


def _psd_factors(S: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Eigenvalue shift-and-clip as factors: (A = B = Q diag(√w) (d, r), r, Tr S') with S' = A Aᵀ."""
    w, Q = torch.linalg.eigh(0.5 * (S + S.T))
    w = (w - t).clamp_min(0.0)
    keep = w > 0
    A = Q[:, keep] * w[keep].sqrt()
    return A, A, int(keep.sum()), float(w.sum())


def _has_factored_forward(op: Any) -> bool:
    """Whether ``op`` applies 𝒜(A Bᵀ) on the factors (its class overrides ``forward_factored``); the base class
    forms A Bᵀ first, which saves nothing."""
    own = getattr(type(op), "forward_factored", None)
    return own is not None and own is not getattr(SensingOperator, "forward_factored", None)


class _Passes:
    """Counts the operator passes a solve makes: ``passes`` (forward + adjoint, each over all n measurements) and
    ``work`` (the same in units of one dense pass: a forward on rank-r factors counts r/min(n1, n2), 2r/min(n1, n2)
    for two distinct factors)."""

    def __init__(self, op: Any, low_rank: float):
        self.op, self.passes, self.work = op, 0, 0.0
        self.width = min(*_shape(op))
        self.factored = _has_factored_forward(op) and low_rank > 0
        self.max_rank = low_rank * self.width

    def forward(self, X: torch.Tensor, A: torch.Tensor | None = None, B: torch.Tensor | None = None) -> torch.Tensor:
        """𝒜X, on the factors X = A Bᵀ when given and cheaper: r products (one factor, A is B) or 2r (two) per
        measurement against min(n1, n2) for the dense pass, at most ``low_rank`` times it."""
        self.passes += 1
        cost = None if A is None else A.shape[1] * (1 if A is B else 2)
        if cost is not None and self.factored and cost <= self.max_rank:
            self.work += cost / self.width
            if A.shape[1] == 0:
                return torch.zeros(self.op.m, dtype=X.dtype, device=X.device)
            return self.op.forward_factored(A, B)
        self.work += 1.0
        return self.op.forward(X)

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        self.passes += 1
        self.work += 1.0
        return self.op.adjoint(z)


def _shape(op: Any) -> tuple[int, int]:
    return (op.n1, op.n2) if hasattr(op, "n1") else (op.d, op.d)


def curvature_estimate(op: Any, iters: int = 6, seed: int = 0) -> float:
    """A lower estimate of ‖𝒜‖² = λ_max(𝒜*𝒜) from ``iters`` power steps V ← 𝒜*𝒜V/‖𝒜*𝒜V‖ (2·iters passes) from a
    seeded Gaussian start; the solver multiplies it by a margin and backtracks if it proves too small."""
    iters = positive_int("iters", iters)
    g = torch.Generator(device=op.device).manual_seed(seed)
    V = torch.randn(*_shape(op), generator=g, device=op.device, dtype=op.dtype)
    s = 0.0
    for _ in range(iters):
        V = op.adjoint(op.forward(V / V.norm()))
        s = float(V.norm())
    return s


def nuclear_least_squares(op: Any, y: torch.Tensor, lam: float, *, psd: bool = False, weight: float = 1.0,
                          X0: torch.Tensor | None = None, max_iter: int = 5000, tol: float = 1e-7,
                          L: float | None = None, check_every: int = 5, restart: str = "gradient",
                          power_iters: int = 6, low_rank: float = 1.0, step_growth: float = 1.0) -> SolverResult:
    """Accelerated proximal gradient for P(X) (module docstring), at one forward and one adjoint pass per iteration.

    With f(X) = (w/2)‖𝒜X − y‖² and G_k = ∇f(X_k) = w 𝒜*(𝒜X_k − y), FISTA's extrapolated point
    Z = X_k + β(X_k − X_{k−1}) has, by linearity, 𝒜Z = 𝒜X_k + β(𝒜X_k − 𝒜X_{k−1}) and ∇f(Z) = G_k + β(G_k − G_{k−1}):
    an iteration is the prox at Z − ∇f(Z)/L, one forward pass at the new iterate (which gives its residual, hence
    its objective, for free) and one adjoint pass (the next gradient, which is also the dual certificate 𝒜*z of the
    gap check: that check costs one eigen/singular-value computation of a d × d matrix, every ``check_every``
    iterations). The forward runs on the prox's factors when that costs at most ``low_rank`` times a dense pass and
    the operator has a factored forward (PSD: S⁺ = A Aᵀ, n·d·r work, used up to full rank by default: it skips
    forming the n × d product with a dense S and reads X once; general: A Bᵀ, 2·n·d·r).

    Step 1/L: L given, or ``curvature_estimate`` (``power_iters`` power steps) × 1.1. Backtracking keeps any L
    honest: a step is accepted when w‖𝒜(X⁺ − Z)‖² ≤ L‖X⁺ − Z‖² (the quadratic upper bound of f at Z; both sides
    known without a pass, the left one less the passes' rounding), else L ← max(1.5 L, 1.1 × that curvature) and the
    step is redone (one more forward). ``step_growth`` > 1 tries L/step_growth before every step (a longer step where
    the local curvature allows it; each failed try costs a forward), with t_{k+1} = (1 + √(1 + 4 (L_{k+1}/L_k) t_k²))/2
    for the changed step (Scheinberg, Goldfarb & Bai 2014).

    Restart (``restart``, O'Donoghue & Candès 2015): 'gradient' (default) sets t ← 1 (no momentum in the next step)
    when the step's gradient map opposes the momentum, ⟨Z − X⁺, X⁺ − X_k⟩ > 0 (a d × d inner product, no pass);
    'function' redoes a step that raised P from X_k without momentum (one more forward); 'none'. Measured on the
    convex twin (κ* = 0.5, α = 1, λ = Δ = 0.1, tol 1e-9, one seed): the gradient scheme 110 iterations at d = 80 and
    95 at d = 200, the function scheme 210 and 250; a growing step (1.1) took 95 and 115 (its failed tries cost a
    forward each), so the default keeps the step.

    op: has ``forward(X) -> (m,)``, ``adjoint(z) -> X-shaped`` and ``n1``, ``n2`` (or ``d`` for square PSD use);
    y (m,); lam ≥ 0; X0 the warm start (default zeros). History every ``check_every`` iterations: ``objective``,
    ``gap``, ``rank``, ``L``, ``passes`` (operator passes so far, step-size estimate included), ``work`` (the same
    in dense-pass units), ``restarts`` and ``backtracks`` (counts so far). Result ``x`` is the minimizer; ``status`` 'converged' when the relative duality gap is
    ≤ tol, else 'max_steps'.
    """
    finite_array("y", y)
    lam = positive("lam", lam, allow_zero=True)
    weight = positive("weight", weight)
    max_iter = positive_int("max_iter", max_iter)
    check_every = positive_int("check_every", check_every)
    low_rank = in_range("low_rank", low_rank, 0.0, 1.0, closed="both")
    restart = choice("restart", restart, RESTARTS)
    step_growth = in_range("step_growth", step_growth, 1.0, 10.0, closed="both")
    ops = _Passes(op, low_rank)
    X = torch.zeros(_shape(op), dtype=y.dtype, device=y.device) if X0 is None else X0.clone()
    if L is None:
        L = weight * curvature_estimate(op, power_iters) * 1.1
        ops.passes += 2 * power_iters
        ops.work += 2 * power_iters
    L = positive("L", L)
    prox = _psd_factors if psd else _svt_factors
    # what ‖𝒜X⁺ − 𝒜Z‖ may be off by from rounding alone (per unit of ‖𝒜X⁺‖ + ‖𝒜Z‖): the passes' own precision
    # (float32 for an operator that multiplies in float32) over sums of min(n1, n2) products; below it the
    # backtracking test cannot tell a curvature from noise and does not fire
    rounding = 4 * torch.finfo(getattr(op, "pass_dtype", y.dtype)).eps * math.sqrt(min(_shape(op)))
    AX = torch.zeros_like(y) if X0 is None else ops.forward(X)
    G = weight * ops.adjoint(AX - y)
    X_prev, AX_prev, G_prev, beta, t_k = X, AX, G, 0.0, 1.0
    P_prev = 0.5 * weight * float((AX - y) @ (AX - y)) + lam * _penalty(X, psd)
    history: dict[str, list[float]] = {"step": [], "objective": [], "gap": [], "rank": [], "L": [], "passes": [],
                                       "work": [], "restarts": [], "backtracks": []}
    status, message, rank, restarts, backtracks = "max_steps", f"reached max_iter = {max_iter}", 0, 0, 0

    def prox_step(Z: torch.Tensor, AZ: torch.Tensor, GZ: torch.Tensor):
        """(X⁺, 𝒜X⁺, rank, penalty) from Z, with backtracking on L."""
        nonlocal L, backtracks
        while True:
            step = 1.0 / L
            A, B, rk, pen = prox(Z - step * GZ, step * lam)
            Xn = A @ B.T
            AXn = ops.forward(Xn, A, B)
            D2 = float(((Xn - Z) ** 2).sum())
            diff = float((AXn - AZ).norm())
            curv = weight * max(diff - rounding * (float(AXn.norm()) + float(AZ.norm())), 0.0) ** 2
            if curv <= L * D2 * (1 + 1e-10) or D2 == 0.0:
                return Xn, AXn, rk, pen
            L = max(1.5 * L, 1.1 * curv / D2)
            backtracks += 1

    it = 0
    for it in range(1, max_iter + 1):
        Z, AZ, GZ = (X, AX, G) if beta == 0.0 else (X + beta * (X - X_prev), AX + beta * (AX - AX_prev),
                                                    G + beta * (G - G_prev))
        L_was = L
        L = L / step_growth
        X_new, AX_new, rank, pen = prox_step(Z, AZ, GZ)
        res = AX_new - y
        P_new = 0.5 * weight * float(res @ res) + lam * pen
        if t_k > 1.0 and restart == "function" and P_new > P_prev:  # drop momentum, redo the step from X
            t_k, restarts = 1.0, restarts + 1
            X_new, AX_new, rank, pen = prox_step(X, AX, G)
            res = AX_new - y
            P_new = 0.5 * weight * float(res @ res) + lam * pen
        elif t_k > 1.0 and restart == "gradient" and float(((Z - X_new) * (X_new - X)).sum()) > 0:
            t_k, restarts = 1.0, restarts + 1  # the step's gradient map opposes the momentum: drop it next time
        G_new = weight * ops.adjoint(res)
        # a step 1/L after 1/L_was: t_{k+1} = (1 + √(1 + 4 (L/L_was) t_k²))/2 (Scheinberg, Goldfarb & Bai 2014)
        t_next = 0.5 * (1 + math.sqrt(1 + 4 * (L / L_was) * t_k * t_k))
        beta = (t_k - 1) / t_next
        X_prev, AX_prev, G_prev = X, AX, G
        X, AX, G, t_k, P_prev = X_new, AX_new, G_new, t_next, P_new
        if it % check_every == 0 or it == max_iter:
            gap = P_new - _dual_value(y, res, G, lam, weight, psd)
            for key, v in (("step", it), ("objective", P_new), ("gap", gap), ("rank", rank), ("L", L),
                           ("passes", ops.passes), ("work", ops.work), ("restarts", restarts),
                           ("backtracks", backtracks)):
                history[key].append(v)
            if gap <= tol * max(1.0, abs(P_new)):
                status, message = "converged", f"relative duality gap {gap / max(1.0, abs(P_new)):.2e} ≤ tol = {tol:g}"
                break
    return SolverResult(X, history, status, it, message + f"; {ops.passes} operator passes")


def _dual_value(y: torch.Tensor, res: torch.Tensor, G: torch.Tensor, lam: float, weight: float, psd: bool) -> float:
    """D(z) = ⟨y, z⟩ − ‖z‖²/(2w) at z = w(y − 𝒜X) = −w·res scaled into the dual feasible set; 𝒜*z = −G."""
    z = -weight * res
    dual_norm = _op_norm(-G, psd)
    if dual_norm > lam and dual_norm > 0:
        z = z * (lam / dual_norm)
    return float(y @ z) - float(z @ z) / (2 * weight)


@validate_params({"lam_final_rel": POSITIVE, "stages": POSITIVE_INT, "max_iter": POSITIVE_INT, "tol": POSITIVE})
def convex_recovery(op: Any, y: torch.Tensor, lam_final_rel: float = 1e-5, stages: int = 6, max_iter: int = 600,
                    tol: float = 1e-9) -> SolverResult:
    """Approximately min ‖X‖_* subject to 𝒜(X) = y: nuclear-norm least squares with the penalty driven from
    ½‖𝒜*y‖_op down to ``lam_final_rel``·‖𝒜*y‖_op over ``stages`` warm-started stages (continuation).

    Returns the last stage's :class:`SolverResult`: its status says whether the final, smallest-penalty problem
    reached the relative duality gap ``tol``.
    """
    top = float(torch.linalg.matrix_norm(op.adjoint(y), ord=2))
    X, res = None, None
    L = op.norm_estimate() ** 2 * 1.01
    for lam in torch.logspace(math.log10(0.5 * top), math.log10(lam_final_rel * top), stages, dtype=torch.float64):
        res = nuclear_least_squares(op, y, float(lam), X0=X, max_iter=max_iter, tol=tol, L=L)
        X = res.x
    return res
