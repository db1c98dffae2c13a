"""Newton-type methods on one loop (:func:`overparam.solvers.gradient.minimize` with a direction):

- ``gd``: d = −∇L with backtracking (Armijo) line search;
- ``newton``: d = −H⁻¹∇L with the exact Hessian (dense C: O(n d²) per step);
- ``newton_cg``: conjugate gradients on Hessian-vector products (O(nnz(C)) each), to relative residual ``cg_tol``;
- ``approx_newton``: d = −H̃⁻¹∇L with H̃ = Cᵀ D̃ C + (CᵀU)M(CᵀU)ᵀ + Cᵀ diag(w²) C, where D̃ keeps s rows of
  |β|^{1/2}C sampled by sketched leverage scores and reweighted (unbiased for Cᵀ diag(β) C), the low-rank part is
  exact, and Cᵀ diag(w²) C is computed once (it does not depend on x). Per step: O(nnz(C)·k + s d² + d³).

Every product with C, every factorization and the sketch add their multiply-adds to ``problem.work``
(:class:`overparam.work.Work`), so the cost of a step is counted on the path that takes it.

Newton steps are taken in full (lr = 1: the local method). A step that increases the loss is reported by the loop.
The problem is :class:`overparam.problems.softmax_regression.SoftmaxRegression` or anything with ``state``,
``grad``, ``hvp``, ``hessian``, ``low_rank``, ``low_rank_product``, ``A`` (a :class:`Matrix`), ``w2`` and ``d``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..validation import choice, positive_int
from .gradient import minimize
from .result import SolverResult
from .sketch import leverage_scores, sample_rows, samples_for

METHODS = ("gd", "newton", "newton_cg", "approx_newton")


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, tol: float = 1e-10,
                       max_iter: int | None = None) -> torch.Tensor:
    """Solve A x = b for symmetric positive definite A given by ``matvec`` (relative residual ``tol``)."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = float(r @ r)
    bn = max(float(b.norm()), 1e-300)
    for _ in range(max_iter or 10 * len(b)):
        if rs**0.5 <= tol * bn:
            break
        Ap = matvec(p)
        a = rs / float(p @ Ap)
        x += a * p
        r -= a * Ap
        rs_new = float(r @ r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


class SampledHessian:
    """Builds H̃(x) for approximate Newton with ``s`` sampled rows; with ``keep``, every H̃ it built is kept in
    ``drawn`` (for diagnostics such as the spectral accuracy of the Hessians a run actually used); ``k2`` columns of
    the Johnson–Lindenstrauss sketch of the leverage scores."""

    def __init__(self, problem: Any, s: int, seed: int = 0, sketch: bool = True, keep: bool = False, k2: int = 32):
        self.problem, self.s, self.sketch, self.k2 = problem, positive_int("s", s), sketch, positive_int("k2", k2)
        if s < problem.d:
            raise ValueError(f"s: {s} sampled rows are fewer than d = {problem.d}; the sampled Hessian would be "
                             "singular")
        self.rng = np.random.default_rng(seed)
        self.reg_gram = problem.A.gram(problem.w2)  # Cᵀ diag(w²) C, fixed
        self.keep, self.drawn = keep, []

    def __call__(self, x: torch.Tensor, st=None) -> torch.Tensor:
        pb = self.problem
        st = st or pb.state(x)
        beta = st.beta
        root = beta.abs().sqrt().numpy()
        A = pb.A.scaled_rows(root)
        tau = leverage_scores(A, sketch=self.sketch, k2=self.k2, seed=int(self.rng.integers(1 << 31)),
                               work=pb.A.work)
        idx, wts = sample_rows(tau, self.s, pb.d, self.rng)
        D_tilde = torch.from_numpy(wts) * beta[torch.from_numpy(idx)]
        H = pb.A.gram(D_tilde, rows=idx) + pb.low_rank_product(*pb.low_rank(st)) + self.reg_gram
        H = 0.5 * (H + H.T)
        if self.keep:
            self.drawn.append(H)
        return H


def solve(problem: Any, x0: torch.Tensor, method: str, *, max_iter: int = 100, grad_tol: float = 1e-10,
          s: int | None = None, eps0: float | None = None, seed: int = 0, cg_tol: float = 1e-10, lr: float = 1.0,
          record: Callable | None = None, on_step: Callable | None = None, stop: Callable | None = None,
          sampler: SampledHessian | None = None) -> SolverResult:
    """Minimize the problem from ``x0`` with one of :data:`METHODS`; stops on ‖∇L‖ ≤ grad_tol (reason recorded).

    Approximate Newton samples ``s`` rows, or s = ⌈d log d / ε₀²⌉ for a target spectral accuracy ``eps0``
    (:func:`overparam.solvers.sketch.samples_for`), or 4d when neither is given; or pass your own ``sampler``.
    ``stop(t, loss, params)`` ends the run early (reported as converged). Work is counted in ``problem.work``."""
    method = choice("method", method, METHODS)
    if s is None and eps0 is not None:
        s = samples_for(eps0, problem.d)
    cache: dict[str, Any] = {}
    reg_gram = problem.A.gram(problem.w2) if method == "newton" else None
    if method == "approx_newton" and sampler is None:
        sampler = SampledHessian(problem, s or 4 * problem.d, seed)

    def grad(ps):
        x = ps[0]
        st = problem.state(x)
        cache["st"] = st
        return torch.tensor(st.loss, dtype=torch.float64), [problem.grad(x, st)]

    def direction(ps, gs):
        x, g, st = ps[0], gs[0], cache["st"]
        if method == "gd":
            return [-g]
        if method == "newton":
            H = problem.hessian(x, st, reg_gram)
        elif method == "approx_newton":
            H = sampler(x, st)
        else:
            return [-conjugate_gradient(lambda v: problem.hvp(x, v, st), g, cg_tol)]
        problem.A.work.factor_solve(problem.d)
        return [-torch.linalg.solve(H, g)]

    res = minimize(lambda ps: None, [x0.clone()], lr=lr, max_steps=max_iter, grad_tol=grad_tol, grad=grad,
                   direction=direction, line_search=(method == "gd"), record=record, on_step=on_step,
                   stop=stop)
    res.history["method"] = [method]
    res.x = res.x[0]
    if method == "approx_newton":
        res.history["s"] = [float(sampler.s)]
    return res
