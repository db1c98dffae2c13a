"""The minimum-trace PSD interpolator: min Tr S subject to 𝒜S = y, S ⪰ 0, by ADMM with a duality certificate.

This is the λ → 0⁺ limit of the trace-penalized sensing problem that :func:`.nuclear.nuclear_least_squares` solves
at λ > 0 (exact noiseless recovery, and the minimum-nuclear-norm interpolator of noisy labels). Everything runs in
svec coordinates of symmetric d × d matrices, s = (S_ii, √2·S_ij for i < j) ∈ R^p, p = d(d+1)/2, where
⟨S, T⟩_F = sᵀt and 𝒜S = B s for a design matrix B (n, p) (:func:`design_matrix`).

**ADMM** (scaled form, Boyd et al. 2011, §5) on the split S = Z, S in the affine set {B s = y}, Z ⪰ 0:

    s⁺ = Π_aff(z − u − c/ρ),   Π_aff(v) = v − Bᵀ(BBᵀ)⁻¹(Bv − y) = (I − QQᵀ)v + Q R⁻ᵀ y   (Bᵀ = QR),
    ŝ = a·s⁺ + (1 − a)·z       (over-relaxation, a = 1.6; §3.4.3),
    z⁺ = Π_⪰0(ŝ + u)           (eigenvalues clipped at 0),
    u⁺ = u + ŝ − z⁺,

c = svec(I) (so Tr S = cᵀs), ρ balanced so that the primal residual ‖s − z‖ and the dual residual ρ‖z⁺ − z‖ stay
within a factor 10 of each other (u rescaled with it). One iteration: 2·n·p multiply-adds and one d × d eigh.

**Certificate.** The s-step's multiplier gives the dual point w = −ρ(BBᵀ)⁻¹(B v − y) of the dual problem
max yᵀw s.t. I − 𝒜*w ⪰ 0. Reported: primal infeasibility ‖B z − y‖/‖y‖ of the PSD iterate Z, dual infeasibility
ε = max(0, −λ_min(I − 𝒜*w)) and the gap Tr Z − yᵀw. Weak duality with the shifted dual point, feasible for
(1 + ε)I, bounds the optimum: yᵀw/(1 + ε) − (primal infeasibility term) ≤ p* ≤ Tr Z + (same), so Tr Z is within
|gap| + ε·Tr Z (+ the infeasibility) of the optimum; the status is 'converged' when all three are ≤ ``tol``
(relative to max(1, Tr Z) for the gap, to 1 for ε).

Nested designs: the QR of Bᵀ restricted to its first k columns is the QR of the first k rows' design (Gram–Schmidt
is nested), so :class:`TraceInterpolator` factors the largest design once and solves on any leading block of
measurements (what a bisection on the number of samples needs); success is monotone in k for a fixed draw: a
solution that is the unique minimizer with k measurements stays feasible and minimal with more.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from ..validation import finite_array, in_range, positive, positive_int
from .nuclear import _psd_shift
from .result import SolverResult


@functools.lru_cache(maxsize=16)
def svec_index(d: int, device: Any = "cpu", dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(upper-triangle indices (2, p) in ``torch.triu_indices`` order, scale (p,): 1 on the diagonal, √2 off it)."""
    iu = torch.triu_indices(d, d, device=device)
    scale = torch.full((iu.shape[1],), math.sqrt(2.0), dtype=dtype, device=device)
    scale[iu[0] == iu[1]] = 1.0
    return iu, scale


def svec(S: torch.Tensor) -> torch.Tensor:
    """(S_ii, √2 S_ij for i < j) of the symmetric part of S (d, d), shape (d(d+1)/2,): ‖svec S‖ = ‖S‖_F."""
    iu, scale = svec_index(S.shape[0], str(S.device), S.dtype)
    return 0.5 * (S + S.T)[iu[0], iu[1]] * scale


def smat(s: torch.Tensor, d: int) -> torch.Tensor:
    """The inverse of :func:`svec`: the symmetric (d, d) matrix with svec s."""
    iu, scale = svec_index(d, str(s.device), s.dtype)
    M = torch.zeros(d, d, dtype=s.dtype, device=s.device)
    M[iu[0], iu[1]] = s / scale
    return M + M.T - torch.diag(torch.diagonal(M))


def design_matrix(op: Any) -> torch.Tensor:
    """B (n, p) with 𝒜S = B·svec(S) for symmetric S.

    A GOE design stored as upper triangles (attributes ``Zu``, ``w``: 𝒜S = Zu·(w ∘ S_upper)) gives B = Zu·√w at no
    cost; any other operator is read off ``op.dense()`` (n × d² on S flattened row-major): the column of S_ij, i < j,
    is (A_ij + A_ji)/√2."""
    if hasattr(op, "Zu") and hasattr(op, "w"):
        return op.Zu * op.w.sqrt()
    d = op.n1
    A = op.dense().reshape(-1, d, d)
    iu, scale = svec_index(d, str(A.device), A.dtype)
    return (0.5 * (A + A.transpose(1, 2)))[:, iu[0], iu[1]] * scale


def _psd_project(s: torch.Tensor, d: int) -> tuple[torch.Tensor, int]:
    """svec of (smat s)₊ and its rank: the nuclear solver's eigenvalue clip with no shift."""
    S, rank, _ = _psd_shift(smat(s, d), 0.0)
    return svec(S), rank


class TraceInterpolator:
    """min Tr S s.t. 𝒜S = y, S ⪰ 0 on the first k rows of one design (module docstring).

    B: (n, p) design in svec coordinates (:func:`design_matrix`), or a sensing operator; d the matrix side.
    One QR of Bᵀ (n·p² multiply-adds) serves every k ≤ n."""

    def __init__(self, B: Any, d: int | None = None):
        if not isinstance(B, torch.Tensor):
            d = B.n1 if d is None else d
            B = design_matrix(B)
        finite_array("B", B)
        p = B.shape[1]
        self.d = positive_int("d", d if d is not None else int(round((math.sqrt(8 * p + 1) - 1) / 2)))
        if self.d * (self.d + 1) // 2 != p:
            raise ValueError(f"B: must have d(d+1)/2 = {self.d * (self.d + 1) // 2} columns (got {p})")
        if B.shape[0] > p:
            raise ValueError(f"B: at most p = {p} rows for an interpolation problem (got {B.shape[0]})")
        self.B = B
        self.Q, self.R = torch.linalg.qr(B.T)  # (p, n), (n, n)
        self.c = svec(torch.eye(self.d, dtype=B.dtype, device=B.device))
        self.state: tuple[torch.Tensor, torch.Tensor, float] | None = None  # (z, u, ρ) of the last solve

    def solve(self, y: torch.Tensor, k: int | None = None, *, tol: float = 1e-7, max_iter: int = 20000,
              rho: float | None = None, check_every: int = 10, warm_start: bool = False,
              relax: float = 1.6) -> SolverResult:
        """ADMM on the first ``k`` measurements (default all): ``x`` the PSD iterate Z (d, d); history ``step``,
        ``primal`` (‖s − z‖/max(‖s‖, 1e-300)), ``dual`` (ρ‖Δz‖/‖ρu‖), ``rho``, ``trace``; ``status`` 'converged'
        when the certificate (module docstring) is within ``tol``; the certificate's numbers in ``history``:
        ``infeasibility``, ``dual_infeasibility``, ``gap`` (relative), ``dual_value``. ``warm_start``: start from
        the previous solve's (z, u, ρ) (another k of the same design: the bisection's neighbours share most of their
        solution); ``relax`` the over-relaxation a ∈ (0, 2)."""
        finite_array("y", y)
        tol = positive("tol", tol)
        max_iter = positive_int("max_iter", max_iter)
        k = self.B.shape[0] if k is None else positive_int("k", k)
        if k > self.B.shape[0] or y.shape[0] != k:
            raise ValueError(f"y: must have k = {k} ≤ {self.B.shape[0]} entries (got {y.shape[0]})")
        Q, R = self.Q[:, :k], self.R[:k, :k]
        s0 = Q @ torch.linalg.solve_triangular(R.T, y[:, None], upper=False)[:, 0]  # least-norm solution of Bs = y
        relax = in_range("relax", relax, 0.0, 2.0, closed="neither")
        if warm_start and self.state is not None:
            z, u, rho = self.state
        else:
            z, u = s0.clone(), torch.zeros_like(s0)
            rho = float(rho) if rho is not None else float(self.c.norm() / max(float(s0.norm()), 1e-300))
        hist: dict[str, list[float]] = {k_: [] for k_ in ("step", "primal", "dual", "rho", "trace")}
        status, message, it, rank = "max_steps", f"reached max_iter = {max_iter}", 0, 0
        for it in range(1, max_iter + 1):
            v = z - u - self.c / rho
            s = v - Q @ (Q.T @ v) + s0
            z_old = z
            s_hat = relax * s + (1.0 - relax) * z_old
            z, rank = _psd_project(s_hat + u, self.d)
            u = u + s_hat - z
            if it % check_every:
                continue
            r_p = float((s - z).norm()) / max(float(z.norm()), 1e-300)
            r_d = rho * float((z - z_old).norm()) / max(rho * float(u.norm()), float(self.c.norm()))
            for key, val in (("step", it), ("primal", r_p), ("dual", r_d), ("rho", rho),
                             ("trace", float(self.c @ z))):
                hist[key].append(val)
            if r_p < tol and r_d < tol:
                cert = self.certificate(y, Q, R, z, z - u - self.c / rho, rho)
                for key, val in cert.items():
                    hist.setdefault(key, []).append(val)
                if max(cert["infeasibility"], cert["dual_infeasibility"], abs(cert["gap"])) <= 10 * tol:
                    status = "converged"
                    message = (f"certificate: infeasibility {cert['infeasibility']:.1e}, dual infeasibility "
                               f"{cert['dual_infeasibility']:.1e}, relative gap {cert['gap']:.1e}")
                    break
            if r_p > 10 * r_d:
                rho, u = 2.0 * rho, 0.5 * u
            elif r_d > 10 * r_p:
                rho, u = 0.5 * rho, 2.0 * u
        hist["rank"] = [rank]
        self.state = (z, u, rho)
        return SolverResult(smat(z, self.d), hist, status, it, message)

    def certificate(self, y: torch.Tensor, Q: torch.Tensor, R: torch.Tensor, z: torch.Tensor, v: torch.Tensor,
                    rho: float) -> dict[str, float]:
        """Primal infeasibility ‖Bz − y‖/‖y‖, dual infeasibility max(0, −λ_min(I − 𝒜*w)) and relative gap
        (Tr Z − yᵀw)/max(1, Tr Z) at the dual point w = −ρ(BBᵀ)⁻¹(Bv − y) = −ρR⁻¹(Qᵀv − R⁻ᵀy)."""
        k = y.shape[0]
        Bk = self.B[:k]
        Rt_y = torch.linalg.solve_triangular(R.T, y[:, None], upper=False)[:, 0]
        w = -rho * torch.linalg.solve_triangular(R, (Q.T @ v - Rt_y)[:, None], upper=True)[:, 0]
        slack = torch.linalg.eigvalsh(smat(self.c - Bk.T @ w, self.d))
        tr = float(self.c @ z)
        return {"infeasibility": float((Bk @ z - y).norm() / max(float(y.norm()), 1e-300)),
                "dual_infeasibility": max(0.0, -float(slack[0])), "gap": (tr - float(y @ w)) / max(1.0, abs(tr)),
                "dual_value": float(y @ w)}


def min_trace_interpolation(op: Any, y: torch.Tensor, *, tol: float = 1e-7, max_iter: int = 20000,
                            rho: float | None = None) -> SolverResult:
    """min Tr S subject to 𝒜S = y, S ⪰ 0 (module docstring) for a sensing operator (or design matrix B in svec
    coordinates, then d from its width) with n ≤ d(d+1)/2 measurements; ``x`` the minimizer (d, d)."""
    return TraceInterpolator(op).solve(y, tol=tol, max_iter=max_iter, rho=rho)


def recovery_threshold(interp: TraceInterpolator, y: torch.Tensor, S_star: torch.Tensor, rtol: float = 1e-3,
                       resolution: int = 1, **solve_kw: Any) -> dict[str, Any]:
    """The smallest number k of leading measurements whose minimum-trace interpolator recovers ``S_star``
    (‖Ŝ_k − S*‖_F/‖S*‖_F ≤ ``rtol``), by bisection on k over [0, p]: k = 0 fails (S* ≠ 0) and k = p succeeds
    without a solve (a nonsingular square design leaves S* alone in the affine set). Exact for noiseless labels
    y = 𝒜S* of a nested design, where success is monotone in k (module docstring): ⌈log₂(p/resolution)⌉ solves,
    stopping once the bracket [k_fail, k_success] is at most ``resolution`` wide; each solve starts from the last
    one's ADMM state.

    y: (p,) or longer labels of the design behind ``interp``; ``solve_kw`` go to :meth:`TraceInterpolator.solve`.
    Returns ``k_fail`` (largest k known to fail), ``k_success`` (smallest k known to succeed), ``solves``,
    ``unconverged`` (solves
    whose certificate missed the tolerance; their verdict on success is still used), ``steps`` (ADMM iterations in
    all) and ``error_fail``/``error_success`` (relative errors at the bracket's ends, NaN where not solved)."""
    rtol = positive("rtol", rtol)
    p = interp.B.shape[1]
    if interp.B.shape[0] != p:
        raise ValueError(f"interp: needs a square design, n = p = {p} measurements (got {interp.B.shape[0]})")
    lo, hi = 0, p
    errors = {0: math.nan, p: math.nan}
    solves = unconverged = steps = 0
    norm = float(S_star.norm())
    resolution = positive_int("resolution", resolution)
    while hi - lo > resolution:
        k = (lo + hi) // 2
        res = interp.solve(y[:k], k, warm_start=solves > 0, **solve_kw)
        solves, steps = solves + 1, steps + res.steps
        unconverged += not res.converged
        errors[k] = float((res.x - S_star).norm()) / norm
        lo, hi = (lo, k) if errors[k] <= rtol else (k, hi)
    return {"k_fail": lo, "k_success": hi, "solves": solves, "unconverged": unconverged, "steps": steps,
            "error_fail": errors.get(lo, math.nan), "error_success": errors.get(hi, math.nan)}


__all__ = ["min_trace_interpolation", "recovery_threshold", "TraceInterpolator", "design_matrix", "svec", "smat"]
