"""Newton-type methods on one loop (:func:`overparam.solvers.gradient.minimize` with a direction):

- ``gd``: d = −∇L with backtracking (Armijo) line search;
- ``newton``: d = −H⁻¹∇L with the exact Hessian H = Cᵀ diag(D) C + (CᵀU)M(CᵀU)ᵀ, D = β + w² (dense C:
  n(d(d + 1)/2 + d) multiply-adds per step for the Gram matrix, a symmetric update);
- ``newton_cg``: conjugate gradients on Hessian-vector products (2 nnz(C) each), to relative residual ``cg_tol``
  or, with ``cg_tol="adaptive"``, η_t = min(½, max(√(‖∇L_t‖/‖∇L_0‖), grad_tol/(2‖∇L_t‖))) (Eisenstat–Walker:
  superlinear near x*; the second term stops the last solves from going below what the target needs: after a step
  with forcing term η, ‖∇L_{t+1}‖ ≈ η‖∇L_t‖ up to a term quadratic in the step, so η = grad_tol/(2‖∇L_t‖) leaves
  half the target to that term);
- ``approx_newton``: d = −H̃⁻¹∇L with H̃ = Cᵀ D̃ C + (CᵀU)M(CᵀU)ᵀ, D̃ a sampled, reweighted copy of the whole
  diagonal D (unbiased for Cᵀ diag(D) C) and the low-rank part exact (:class:`SampledHessian`);
- ``approx_newton_cg``: the same H̃, factored once per step, as the preconditioner of conjugate gradients on the exact
  Hessian-vector product (2 nnz(C) each), to the tolerance ``cg_tol`` (default adaptive, as for ``newton_cg``).
  PCG's first iterate from 0 is the approximate-Newton direction −H̃⁻¹∇L up to CG's step length; each further
  product cuts the error of the Newton system by (√κ − 1)/(√κ + 1) with κ = κ(H̃⁻¹H) ≤ (1 + ε₀)/(1 − ε₀) when H̃
  is a (1 ± ε₀) spectral approximation (≈ ε₀/2, against ε₀ for one more approximate-Newton step, which also
  needs a new sampled Gram matrix). So the outer iteration is an inexact Newton method (superlinear with the
  adaptive tolerance, Eisenstat–Walker) whose every inner product costs O(nnz(C)), and the s d(d + 1)/2 Gram
  matrix and d³/3 factorization are paid once per outer step.

∇L and CᵀU come from one pass over C (Cᵀ[g_z, u, q + p]) for both Newton methods. Every product with C, every
factorization and every sketch add their multiply-adds and rows read to ``problem.work``
(:class:`overparam.work.Work`), set-up included, so the cost of a run is counted on the path that takes it.

When approximate Newton is the right choice: n ≫ d with dense rows, curvature that the data term dominates with an
ill-conditioned CᵀC (:func:`overparam.problems.softmax_regression.make_data_dominated`), where CG and first-order
methods need many passes over C, and d large enough that exact Newton's Gram matrix outweighs the passes over C that
every step makes. A step costs two passes over C plus s d(d + 1)/2 + d³ against exact Newton's n d(d + 1)/2 Gram
matrix, but the passes run at memory speed and the Gram matrix at matrix-multiply speed, and the sampled method needs
about 2× the steps (linear against quadratic convergence). Measured (benchmarks/approximate_newton.py, one thread,
2026-11-27, data-dominated family, exact Newton's time over the fastest sampled variant's, each the fastest method of
its point): at d = 400, 1.30× at n = 10⁵ and 1.71× at n = 10⁶ (``approx_newton_cg`` with one preconditioner built
at x0, ``lag=0``, uniform, ε₀ = ¼ and ⅛); at d = 100, 1.30× and 1.31× at n = 10⁵ (the same, ε₀ = ⅛) and 1.51× and
1.46× at 10⁶ in two runs (``approx_newton``, uniform, ε₀ = ⅛, 8 steps against 4): there every method's two passes
over C a step (0.15 s of pass and n-vector work at n = 10⁶) are half of exact Newton's time. When it is not: d ≲ 100,
small n (s ≈ d log d/ε₀² rows are then a large share of n, and exact Newton's quadratic convergence wins), sparse
rows (exact Newton's Hessian then costs only Σ nnz_i²: sampling saved 1.5× the counted work at 10 nonzeros a row), a
regularizer that dominates the Hessian (κ(H) ≈ 1: exact Newton needs 2 steps and Newton-CG 4), or a loose target
accuracy. ``approx_newton_cg`` with a
fresh H̃ each step takes 6–7 outer steps where ``approx_newton`` takes 13–14 with the same s, and pays where the
Gram matrices it saves outweigh its products; built once it pays one Gram matrix a run (below).

``lag`` (``approx_newton_cg`` only) reuses one H̃ and its factor over ``lag`` outer steps (0: the one built at x0
for the whole run). The outer loop stays an inexact Newton method whatever the (SPD) preconditioner: the adaptive
forcing term keeps its superlinear convergence, and the preconditioner's quality decides only how many products each
CG solve takes, through κ(H̃⁻¹H_t) (the sample reused across iterations where the theory allows: a stale H̃ is a
preconditioner of the current Hessian, not an approximation to it that the step relies on). On the data-dominated
family the Hessian moves little in that sense: built once at x = 0 (n = 10⁵, d = 100, uniform, ε₀ = ⅛) CG took
1, 1, 2, 3, 2 products over 5 outer steps, against 1, 1, 1, 2, 3 with a fresh H̃ each step, and the run took 0.20 s
against 0.30 s (exact Newton 0.27–0.28 s, the fastest method there before). Plain ``approx_newton`` takes no lag: with
H̃ from x = 0 as its Newton matrix it contracted by about 0.6 a step (27 steps against 8 at ε₀ = ⅛).

Newton-type steps are damped by default (Armijo backtracking, :func:`solve`); ``damped=False`` takes them in full
(lr = 1: the local method of the theory). The linear system is solved by Cholesky; a Hessian (sampled or exact) that
is not positive definite is shifted until it is (:func:`shifted_cholesky`; the shifted steps are counted in the
history), so a step never points uphill. A step that increases the loss is reported by the loop.
The problem is :class:`overparam.problems.softmax_regression.SoftmaxRegression` or anything with the same
``state``, ``grad``, ``grad_low_rank``, ``diagonal``, ``hvp``, ``hessian``, ``low_rank_product``, ``A`` and ``d``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from scipy.linalg import solve_triangular

from ..validation import NON_NEGATIVE_INT, check, choice, finite_array, positive, positive_int
from .gradient import minimize
from .result import SolverResult
from .sketch import countsketch, draw_rows, leverage_factors, sampling_probabilities, samples_for

METHODS = ("gd", "newton", "newton_cg", "approx_newton", "approx_newton_cg")
#: how approximate Newton builds H̃: leverage-score row sampling (scores reused, rows redrawn every step), uniform
#: row sampling, or a CountSketch Newton sketch (SA)ᵀ(SA) of diag(√|D|)C
SCHEMES = ("leverage", "uniform", "countsketch")


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, tol: float = 1e-10,
                       max_iter: int | None = None, precond: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> torch.Tensor:
    """Solve A x = b for symmetric positive definite A given by ``matvec`` to relative residual ‖b − Ax‖ ≤ tol‖b‖
    (the residual of A, whatever the preconditioner), from x = 0. ``precond``: r ↦ M⁻¹r for a symmetric positive
    definite M ≈ A (preconditioned CG: the error in the A-norm falls by (√κ − 1)/(√κ + 1) per product, κ = κ(M⁻¹A);
    with M = A it stops after one product). Where pᵀAp ≤ 0 (A not positive definite along a search direction) it
    stops there (truncated CG) and returns the iterate so far, or M⁻¹b if that is still 0: a descent direction for
    the Newton step −x. Shapes (d,)."""
    x = torch.zeros_like(b)
    r = b.clone()
    z = precond(r) if precond is not None else r
    p = z.clone()
    rz = float(r @ z)
    bn = max(float(b.norm()), 1e-300)
    for _ in range(max_iter or 10 * len(b)):
        if float(r.norm()) <= tol * bn:
            break
        Ap = matvec(p)
        pAp = float(p @ Ap)
        if pAp <= 0:  # A is not positive definite along p: stop (truncated CG), with M⁻¹b if nothing was taken yet
            return p if not x.any() else x
        a = rz / pAp
        x += a * p
        r -= a * Ap
        z = precond(r) if precond is not None else r
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x


def _generator(seed) -> np.random.Generator:
    """A NumPy Generator from an int, a NumPy Generator or a torch Generator (its next 63-bit draw)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=seed)))
    return np.random.default_rng(int(seed))


class SampledHessian:
    """H̃(x) = Cᵀ D̃ C + (CᵀU)M(CᵀU)ᵀ for approximate Newton, D = β + w² the Hessian's whole diagonal (the regularizer
    included: nothing of size n d² is precomputed).

    ``scheme`` (:data:`SCHEMES`):

    - ``"leverage"``: rows drawn i.i.d. with p_i ∝ |D_i| ℓ_i, mixed with ``uniform_mix`` uniform, and weighted
      D_i·count_i/(s p_i), so Cᵀ D̃ C is unbiased for Cᵀ diag(D) C at every step. ℓ_i = ‖c_iᵀR₀⁻¹Π‖² comes from a
      sketch of diag(√|D₀|)C (:func:`overparam.solvers.sketch.leverage_factors`): |D₀| ∘ ℓ are the sketched leverage
      scores at D₀, and τ̃ = |D| ∘ ℓ those at the current D with the Gram matrix A₀ = Cᵀ|D₀|C in place of
      A = Cᵀ|D|C. Reweighting costs n multiplies a step and no pass over C. Reuse rule (matrix Chernoff: a sample
      of s rows drawn with p is (1 ± ε₀)-accurate once s ∝ R log d / ε₀², R = max_i τ_i/p_i, and R = d for exact
      scores): if A ≽ a A₀ then τ_i ≤ τ̃_i / a, so R ≤ Σ_i τ̃_i / ((1 − mix) a), and against freshly computed
      factors (Σ τ̃ = Z₀ at D₀) the sample may need at most O = (Z / Z₀) / a times the rows, Z = Σ_i |D_i| ℓ_i.
      The factors are reused while O ≤ ``refresh`` (γ) and recomputed otherwise. a is bounded below in three ways:
      the smallest row ratio r_i = |D_i|/|D₀_i| (free), the last step's bound times the smallest ratio of |D| to
      the last step's (free: A ≽ c A_last ≽ c a_last A₀), and, where those give O > γ, the bound
      a ≥ ρ − (ρ − min r) η with B the s/16 rows of smallest ratio, ρ the smallest ratio outside B and
      η = λ_max(A₀^-½ C_Bᵀ|D₀|_B C_B A₀^-½) (B's share of A₀, computed with the sketch's RᵀR in place of A₀, the
      approximation the scores already carry: s d²/32 + 7d³/3 multiply-adds, counted), since
      A ≽ ρ(A₀ − E_B) + (min r) E_B for E_B = C_Bᵀ|D₀|_B C_B. A few rows whose weight collapses then cost no
      refresh, while a drop on rows that carry A₀ (η near 1) still does: after the first step of the data-dominated
      family (n = 10⁵, d = 400, ε₀ = ¼) min r = 0.099 (O = 10.4) but B's 2 396 rows have η = 0.20 with ρ = 0.43,
      so a ≥ 0.36 and O = 2.9; B of s/64, s/4 or s rows gave 0.33, 0.33 and 0.099. Ratios are taken with |D| and |D₀|
      floored at 10⁻³ of the mean |D| (rows below carry a negligible share). ``refresh=1`` recomputes every step
      (the paper's method). Rows are redrawn every step (fresh, independent samples).
    - ``"uniform"``: p_i = 1/n (the baseline that fails when scores are spread out).
    - ``"countsketch"``: H̃ = (S A₊)ᵀ(S A₊) − (S A₋)ᵀ(S A₋) with A± = diag(√D±)C and one CountSketch S of s rows
      (one pass over C, 2 s d² for the two Gram matrices): the Newton sketch of Pilanci–Wainwright.

    ``s`` rows (or s = ⌈d log d/ε₀²⌉ from ``eps0``; default ε₀ = ½). ``k1``, ``k2``: CountSketch rows and
    Johnson–Lindenstrauss columns of the leverage-score sketch (:func:`overparam.solvers.sketch.leverage_scores`).
    With ``keep``, every H̃ built is kept in ``drawn``; ``refreshes`` counts the score computations."""

    def __init__(self, problem: Any, s: int | None = None, seed=0, scheme: str = "leverage", *,
                 eps0: float | None = None, refresh: float = 4.0, k1: int | None = None, k2: int = 8,
                 uniform_mix: float = 0.1, keep: bool = False):
        self.problem, self.scheme = problem, choice("scheme", scheme, SCHEMES)
        self.s = positive_int("s", s) if s is not None else samples_for(eps0 if eps0 is not None else 0.5, problem.d)
        if self.s < problem.d:
            raise ValueError(f"s: {self.s} sampled rows are fewer than d = {problem.d}; the sampled Hessian would "
                             "be singular")
        if self.s >= problem.n:
            raise ValueError(f"s: {self.s} sampled rows are not fewer than n = {problem.n} rows; sampling cannot "
                             "save work here (use method='newton', or a larger eps0)")
        self.refresh = positive("refresh", refresh)
        if self.refresh < 1:
            raise ValueError(f"refresh: must be ≥ 1 (got {refresh})")
        self.k1, self.k2 = k1, positive_int("k2", k2)
        self.uniform_mix = positive("uniform_mix", uniform_mix, allow_zero=True)
        self.rng = _generator(seed)
        self.keep, self.drawn, self.refreshes = keep, [], 0
        self._D0 = self._ell = self._R0 = self._p = self._cdf = None
        self._Z0, self._a, self._Dlast = 1.0, 1.0, None

    def oversampling(self, absD: np.ndarray, scores: np.ndarray | None = None) -> float:
        """O = (Z/Z₀)/a, the factor by which the reused factors may need more rows than fresh ones at weights |D|
        (class docstring). a is the best of: the smallest row ratio; the last step's bound times the smallest
        ratio to the last step's |D| (A ≽ c A_last ≽ c a_last A₀, free); and, where those give O > γ, the refined
        bound. ``scores``: |D| ∘ ℓ where the caller has them (else computed). Keeps a and |D| for the next step's
        chained bound (call it once a step)."""
        floor = 1e-3 * float(absD.mean())
        floored = np.maximum(absD, floor)
        ratio = floored / np.maximum(self._D0, floor)
        smallest = float(ratio.min())
        mass = float((absD * self._ell if scores is None else scores).sum()) / self._Z0
        step = float((floored / np.maximum(self._Dlast, floor)).min())
        a = max(smallest, self._a * step)
        if mass / a > self.refresh:
            a = max(a, self._spectral_floor(ratio, smallest))
        self._a, self._Dlast = a, absD
        return mass / a

    def _spectral_floor(self, ratio: np.ndarray, a: float) -> float:
        """ρ − (ρ − a) η ≤ λ_min(A₀^-½ A A₀^-½) (class docstring), B the s/16 rows of smallest ratio."""
        pb, d = self.problem, self.problem.d
        m = min(max(self.s // 16, 1), len(ratio) - 1)
        part = np.argpartition(ratio, m)
        B, rho = part[:m], float(ratio[part[m]])
        E = pb.A.gram(torch.from_numpy(self._D0[B]), rows=B).numpy()
        Y = solve_triangular(self._R0, E, trans="T")  # R₀⁻ᵀ E
        M = solve_triangular(self._R0, Y.T, trans="T")  # R₀⁻ᵀ E R₀⁻¹ (E symmetric)
        pb.work.add(d**3 + 4 * d**3 / 3)  # two triangular solves with d columns, then eigvalsh
        eta = float(np.clip(np.linalg.eigvalsh(0.5 * (M + M.T))[-1], 0.0, 1.0))
        return rho - (rho - a) * eta

    def _probabilities(self, D: np.ndarray) -> np.ndarray:
        """p (n,) for this step; recomputes the leverage factors when the reuse rule says so."""
        pb = self.problem
        if self.scheme == "uniform":
            if self._p is None:
                self._p = np.full(pb.A.n, 1.0 / pb.A.n)
                self._cdf = np.cumsum(self._p)
            return self._p
        absD = np.abs(D)
        scores = None if self._D0 is None else absD * self._ell  # |D| ∘ ℓ: the reuse rule's Z and this step's p
        if scores is None or self.oversampling(absD, scores) > self.refresh:
            self._ell, self._R0 = leverage_factors(pb.A.native, absD, k1=self.k1, k2=self.k2, seed=self.rng,
                                                   work=pb.work, return_factor=True)
            self._D0 = self._Dlast = absD
            scores = absD * self._ell
            self._Z0, self._a = float(scores.sum()), 1.0
            self.refreshes += 1
        self._p = sampling_probabilities(scores, self.uniform_mix)
        self._cdf = np.cumsum(self._p)
        return self._p

    def data_gram(self, D: torch.Tensor) -> torch.Tensor:
        """The sampled (or sketched) stand-in for Cᵀ diag(D) C, (d, d), its work counted."""
        pb = self.problem
        Dn = D.numpy()
        if self.scheme == "countsketch":
            neg = Dn < 0
            SA = torch.from_numpy(countsketch(pb.A.native, self.s, self.rng, np.sqrt(np.abs(Dn)), split=neg,
                                              work=pb.work))
            pb.work.product(pb.d, 2 * self.s, pb.d)
            P, N = SA[:self.s], SA[self.s:]
            return P.T @ P - N.T @ N
        p = self._probabilities(Dn)
        idx, cnt = draw_rows(self._cdf, self.s, self.rng)
        wts = Dn[idx] * cnt / (self.s * p[idx])
        return pb.A.gram(torch.from_numpy(wts), rows=idx)

    def __call__(self, x: torch.Tensor, st=None, CU: torch.Tensor | None = None) -> torch.Tensor:
        pb = self.problem
        st = st or pb.state(x)
        CU = CU if CU is not None else pb.low_rank(st)[0]
        H = self.data_gram(pb.diagonal(st)) + pb.low_rank_product(CU, pb._M(st))
        H = 0.5 * (H + H.T)
        if self.keep:
            self.drawn.append(H)
        return H


def _as_x(x0, d: int) -> tuple[torch.Tensor, bool]:
    """x0 as a float64 CPU tensor (a copy) and whether it came as NumPy."""
    was_numpy = not isinstance(x0, torch.Tensor)
    x = torch.as_tensor(np.asarray(x0, dtype=float) if was_numpy else x0).detach().to("cpu", torch.float64).clone()
    if x.shape != (d,):
        raise ValueError(f"x0: must have shape ({d},), got {tuple(x.shape)}")
    finite_array("x0", x)
    return x, was_numpy


def shifted_cholesky(H: torch.Tensor, work: Any = None, max_shifts: int = 60) -> tuple[torch.Tensor, float]:
    """(L, μ): the Cholesky factor of H + μI, (d, d), with μ = 0 when H (d, d) is positive definite and otherwise the
    first μ = 10⁻¹⁰·max|H_ii|·4^k (k = 0, 1, …) at which the factorization succeeds (Levenberg's shift). A sampled
    Hessian far from x* can be indefinite even where the true one is not (rows with D_i < 0 drawn more often than
    their share). Each factorization tried adds d³/3 multiply-adds to ``work``."""
    d = H.shape[0]
    eye = torch.eye(d, dtype=H.dtype, device=H.device)
    mu, scale = 0.0, float(H.diagonal().abs().max()) or 1.0
    for k in range(max_shifts + 1):
        L, info = torch.linalg.cholesky_ex(H + mu * eye if mu else H)
        if work is not None:
            work.add(d**3 / 3)
        if int(info) == 0:
            return L, mu
        mu = 1e-10 * scale * 4.0**k
    raise FloatingPointError(f"H: no shift up to {mu:.3g} makes the Hessian positive definite (non-finite entries?)")


def cholesky_apply(L: torch.Tensor, work: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """r ↦ (LLᵀ)⁻¹r, (d,) → (d,): two triangular solves, d² multiply-adds added to ``work`` per application."""
    def apply(r: torch.Tensor) -> torch.Tensor:
        if work is not None:
            work.add(L.shape[0] ** 2)
        return torch.cholesky_solve(r[:, None], L)[:, 0]
    return apply


def _backtrack(problem: Any, x: torch.Tensor, loss: float, g: torch.Tensor, step: torch.Tensor, cache: dict,
               c: float = 1e-4, max_halvings: int = 30) -> torch.Tensor:
    """a·step with a = 2^−k the first that meets L(x + a·step) ≤ L(x) + c·a·gᵀstep (one pass over C per trial);
    the accepted trial's state is left in ``cache['trial']`` for the next gradient. The full step when none does
    (the loop then reports the increase)."""
    slope = float(g @ step)
    # a decrease below the loss's rounding cannot be tested: L is a sum of n terms, which loses up to n·2⁻⁵³ of |L|
    # (seen: a step with slope 1.8·10⁻¹³|L| at n = 10⁵ rejected nine times on a rounding increase of 3·10⁻¹³|L|)
    if -slope <= max(1e-13, getattr(problem, "n", 1) * 2.0**-52) * abs(loss):
        return step
    a = 1.0
    for _ in range(max_halvings):
        xt = x + a * step
        st = problem.state(xt)
        if st.loss <= loss + c * a * slope:
            cache["trial"] = (xt, st)
            return a * step
        cache["backtracks"] = cache.get("backtracks", 0) + 1
        a *= 0.5
    return step


def solve(problem: Any, x0, method: str, *, max_iter: int = 100, grad_tol: float = 1e-10,
          s: int | None = None, eps0: float | None = None, scheme: str = "leverage", refresh: float = 4.0,
          lag: int = 1, seed=0, cg_tol: float | str | None = None, lr: float = 1.0, damped: bool = True,
          record: Callable | None = None,
          on_step: Callable | None = None, stop: Callable | None = None,
          sampler: SampledHessian | None = None) -> SolverResult:
    """Minimize the problem from ``x0`` (NumPy array or torch tensor, (d,); the result's ``x`` comes back in the
    same type) with one of :data:`METHODS`; stops on ‖∇L‖ ≤ grad_tol (reason recorded).

    The problem is a :class:`~overparam.problems.softmax_regression.SoftmaxRegression` (its C, b, w may be NumPy,
    torch or scipy sparse). Approximate Newton samples ``s`` rows, or s = ⌈d log d / ε₀²⌉ for a target spectral
    accuracy ``eps0`` (default ½), with ``scheme`` and ``refresh`` as in :class:`SampledHessian`; or pass your own
    ``sampler``. ``lag`` (``approx_newton_cg`` only): the preconditioner H̃ and its Cholesky factor are built every
    ``lag`` steps and reused in between (0: built once, at x0; default 1, every step); module docstring.
    ``seed``: int, NumPy or torch Generator. ``cg_tol``: the CG solves' relative residual or "adaptive"
    (η_t of the module docstring); default 10⁻¹⁰ for ``newton_cg`` and "adaptive" for ``approx_newton_cg``.
    ``damped``: the Newton-type steps backtrack (Armijo, c = 10⁻⁴, halving) until the loss decreases; the state at
    the accepted point is the next step's, so a full step that is accepted costs no extra pass over C (the local
    method, ``damped=False``, always takes the full step). ``stop(t, loss, params)`` ends the run early (reported as
    converged). Work is counted in ``problem.work``. See the module docstring for when approximate Newton is the right choice."""
    method = choice("method", method, METHODS)
    x, was_numpy = _as_x(x0, problem.d)
    positive("grad_tol", grad_tol, allow_zero=True)
    if cg_tol is None:
        cg_tol = "adaptive" if method == "approx_newton_cg" else 1e-10
    adaptive = cg_tol == "adaptive"
    if not adaptive:
        cg_tol = positive("cg_tol", cg_tol)
    sampled = method in ("approx_newton", "approx_newton_cg")
    lag = check("lag", lag, NON_NEGATIVE_INT)
    if lag != 1 and method != "approx_newton_cg":
        raise ValueError(f"lag: only method='approx_newton_cg' reuses the sampled Hessian (got lag = {lag} with "
                         f"method={method!r}: as the Newton matrix itself a stale H̃ sets the rate ‖I − H̃⁻¹H‖)")
    if sampled and sampler is None:
        sampler = SampledHessian(problem, s, seed, scheme, eps0=eps0, refresh=refresh)
    cache: dict[str, Any] = {}
    fused = method in ("newton", "approx_newton", "approx_newton_cg")

    def grad(ps):
        trial = cache.pop("trial", None)
        st = trial[1] if trial is not None and torch.equal(trial[0], ps[0]) else problem.state(ps[0])
        if fused:
            g, cache["CU"], _ = problem.grad_low_rank(st)
        else:
            g = problem.grad(ps[0], st)
        cache["st"] = st
        cache.setdefault("g0", max(float(g.norm()), 1e-300))
        return torch.tensor(st.loss, dtype=torch.float64), [g]

    def forcing(g: torch.Tensor) -> float:
        """The CG solves' relative residual: ``cg_tol``, or η_t of the module docstring (Eisenstat–Walker, never
        tighter than the target needs)."""
        if not adaptive:
            return cg_tol
        gn = float(g.norm())
        return min(0.5, max(math.sqrt(gn / cache["g0"]), 0.5 * grad_tol / max(gn, 1e-300)))

    def direction(ps, gs):
        xt, g, st = ps[0], gs[0], cache["st"]
        if method == "gd":
            return [-g]
        if method == "newton_cg":
            step = -conjugate_gradient(lambda v: problem.hvp(xt, v, st), g, forcing(g))
            return [_backtrack(problem, xt, st.loss, g, step, cache) if damped else step]
        if method == "newton":
            L, mu = shifted_cholesky(problem.hessian(xt, st, cache["CU"]), problem.work)
        else:  # the sampled Hessian's factor, rebuilt every ``lag`` steps (lag = 0: once)
            t = cache.get("t", 0)
            if "L" not in cache or (lag and t % lag == 0):
                cache["L"], mu = shifted_cholesky(sampler(xt, st, cache["CU"]), problem.work)
                cache["built"] = cache.get("built", 0) + 1
            else:
                mu = 0.0
            cache["t"], L = t + 1, cache["L"]
        cache["shifted"] = cache.get("shifted", 0) + (mu > 0)
        if method == "approx_newton_cg":
            step = -conjugate_gradient(lambda v: problem.hvp(xt, v, st), g, forcing(g),
                                       precond=cholesky_apply(L, problem.work))
        else:
            step = -cholesky_apply(L, problem.work)(g)
        return [_backtrack(problem, xt, st.loss, g, step, cache) if damped else step]

    res = minimize(lambda ps: None, [x], lr=lr, max_steps=max_iter, grad_tol=grad_tol, grad=grad,
                   direction=direction, line_search=(method == "gd"), record=record, on_step=on_step,
                   stop=stop)
    res.history["method"] = [method]
    res.history["backtracks"] = [float(cache.get("backtracks", 0))]  # rejected trial points (one pass over C each)
    res.history["shifted_steps"] = [float(cache.get("shifted", 0))]  # Newton-type steps whose H needed a shift
    res.x = res.x[0].numpy() if was_numpy else res.x[0]
    if sampled:
        res.history["hessians_built"] = [float(cache.get("built", 0))]  # sampled Hessians built and factored
        res.history["s"] = [float(sampler.s)]
        res.history["score_refreshes"] = [float(sampler.refreshes)]
    return res
