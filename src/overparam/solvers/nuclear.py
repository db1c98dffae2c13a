"""Nuclear-norm (and trace-on-the-PSD-cone) regularized least squares by accelerated proximal gradient.

Solves, for a linear operator 𝒜 (``forward``/``adjoint``) and weight w > 0,

    min_X  P(X) = (w/2) ‖𝒜(X) − y‖² + lam · R(X),

with R(X) = ‖X‖_* (sum of singular values; ``psd=False``) or R(S) = Tr S + ι{S ⪰ 0} (``psd=True``). One solver, two
proximal maps: singular-value soft-thresholding, X ↦ U diag((σ_i − t)₊) Vᵀ, and eigenvalue shift-and-clip,
S ↦ Q diag((λ_i − t)₊) Qᵀ. FISTA with step 1/L, L = w ‖𝒜‖², and function-value restart (O'Donoghue & Candès 2015).

Stopping on the duality gap: with residual z = w (y − 𝒜X), scaled into the dual feasible set
{‖𝒜*z‖_op ≤ lam} (resp. {λ_max(𝒜*z) ≤ lam}), the dual value D(z) = ⟨y, z⟩ − ‖z‖²/(2w) ≤ P*; the solver stops when
P(X) − D(z) ≤ ``tol`` · max(1, |P(X)|) and reports it. It says why it stopped (converged to that gap, or max_iter).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..validation import POSITIVE, POSITIVE_INT, finite_array, positive, positive_int, validate_params
from .result import SolverResult


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


def nuclear_least_squares(op: Any, y: torch.Tensor, lam: float, *, psd: bool = False, weight: float = 1.0,
                          X0: torch.Tensor | None = None, max_iter: int = 5000, tol: float = 1e-7,
                          L: float | None = None, check_every: int = 5, restart: bool = True) -> SolverResult:
    """Accelerated proximal gradient for P(X) (module docstring).

    op: has ``forward(X) -> (m,)``, ``adjoint(z) -> X-shaped`` and ``n1``, ``n2`` (or ``d`` for square PSD use);
    y (m,); lam ≥ 0; X0 the warm start (default zeros). History: ``objective``, ``gap``, ``rank`` every
    ``check_every`` iterations. Result ``x`` is the minimizer; ``status`` 'converged' when the relative duality gap is
    ≤ tol, else 'max_steps'.
    """
    finite_array("y", y)
    lam = positive("lam", lam, allow_zero=True)
    weight = positive("weight", weight)
    max_iter = positive_int("max_iter", max_iter)
    shape = (op.n1, op.n2) if hasattr(op, "n1") else (op.d, op.d)
    X = torch.zeros(shape, dtype=y.dtype, device=y.device) if X0 is None else X0.clone()
    if L is None:
        L = weight * op.norm_estimate() ** 2 * 1.01
    step = 1.0 / L
    prox = _psd_shift if psd else _svt
    Z, t_k = X.clone(), 1.0
    history: dict[str, list[float]] = {"step": [], "objective": [], "gap": [], "rank": []}

    def objective(M: torch.Tensor, penalty: float) -> tuple[float, torch.Tensor]:
        res = op.forward(M) - y
        return 0.5 * weight * float(res @ res) + lam * penalty, res

    P_prev, _ = objective(X, _penalty(X, psd))
    status, message, rank = "max_steps", f"reached max_iter = {max_iter}", 0

    def prox_step(M: torch.Tensor) -> tuple[torch.Tensor, int, float, torch.Tensor]:
        Xn, rk, pen = prox(M - step * weight * op.adjoint(op.forward(M) - y), step * lam)
        Pn, rn = objective(Xn, pen)
        return Xn, rk, Pn, rn

    for it in range(1, max_iter + 1):
        X_new, rank, P_new, res = prox_step(Z)
        if restart and t_k > 1.0 and P_new > P_prev:  # function-value restart: drop momentum, step from X
            t_k = 1.0
            X_new, rank, P_new, res = prox_step(X)
        t_next = 0.5 * (1 + math.sqrt(1 + 4 * t_k * t_k))
        Z = X_new + ((t_k - 1) / t_next) * (X_new - X)
        X, t_k, P_prev = X_new, t_next, P_new
        if it % check_every == 0 or it == max_iter:
            z = -weight * res  # = w (y − 𝒜X)
            dual_norm = _op_norm(op.adjoint(z), psd)
            if dual_norm > lam:
                z = z * (lam / dual_norm) if dual_norm > 0 else z
            D = float(y @ z) - float(z @ z) / (2 * weight)
            gap = P_new - D
            history["step"].append(it)
            history["objective"].append(P_new)
            history["gap"].append(gap)
            history["rank"].append(rank)
            if gap <= tol * max(1.0, abs(P_new)):
                status, message = "converged", f"relative duality gap {gap / max(1.0, abs(P_new)):.2e} ≤ tol = {tol:g}"
                break
    return SolverResult(X, history, status, it, message)


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
