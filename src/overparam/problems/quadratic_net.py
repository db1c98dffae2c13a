"""Two-layer networks with quadratic activation and their convex twin (the nuclear route, Erba et al. 2025).

Model, exactly as implemented:

- inputs x ∈ R^d, i.i.d. N(0, I_d); teacher S* = W*ᵀW*/√(m* d), W* ∈ R^{m*×d} i.i.d. N(0, 1), κ* = m*/d;
- labels y = (xᵀS*x − Tr S*)/√d + √Δ·ξ, ξ ~ N(0, 1);
- student f_W(x) = (xᵀSx − Tr S)/√d with S = WᵀW/√(md), W ∈ R^{m×d};
- non-convex ERM over W:  (1/d²) Σ_μ (y_μ − f_W(x_μ))² + (λ/d) ‖W‖_F²/√(md);
- convex twin over S ⪰ 0:  (1/d²) Σ_μ (y_μ − (x_μᵀSx_μ − Tr S)/√d)² + (λ/d) Tr S   (‖W‖_F²/√(md) = Tr S);
- test error E(y − f(x))² on fresh data (it includes Δ): for the quadratic features it equals 2‖S − S*‖_F²/d + Δ;
  training error (1/n) Σ_μ (y_μ − f(x_μ))².

The measurement operator is 𝒜(S)_μ = ⟨Z_μ, S⟩ with Z_μ = (x_μx_μᵀ − I)/√d, applied as ((X S) ∘ X)·1 − Tr S in n·d²
work and n·d memory, with adjoint 𝒜*(r) = (Xᵀ diag(r) X − (Σ_μ r_μ) I)/√d. ``design="goe"`` replaces Z_μ by GOE
matrices with the same second moments (off-diagonal N(0, 1/d), diagonal N(0, 2/d)), the universality class the
asymptotic theory rests on; they are stored as upper triangles (n·d(d+1)/2 numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..solvers.nuclear import nuclear_least_squares
from ..validation import NON_NEGATIVE, Array, Seed, choice, finite_array, positive, positive_int, validate_params
from .matrix_sensing import SensingOperator

#: eigenvalues above RANK_RTOL·λ_max count towards the rank of a PSD matrix
RANK_RTOL = 1e-6

DESIGNS = ("quadratic", "goe")

#: bytes of one block of rows in a CPU pass of :class:`QuadraticFeatures` (the default ``chunk_rows``)
CHUNK_BYTES = 2**20


class QuadraticFeatures(SensingOperator):
    """𝒜(S)_μ = (x_μᵀSx_μ − Tr S)/√d for X (n, d).

    Passes run over blocks of ``chunk_rows`` rows, each holding one (chunk_rows, d) temporary (memory: n·d for X plus
    that block). Default: blocks of about 1 MiB on the CPU, where the block's product stays in cache for the
    elementwise step (measured 1.5–2.5× faster than one n × d product at d = 100…400), and all n rows at once on a
    GPU. ``pass_dtype=torch.float32`` stores X and multiplies in float32 (half
    the memory and about half the time) while every per-row sum, the accumulation over chunks and the result stay in
    the iterate's dtype (float64): a pass is exact to the float32 rounding of each block's products. Measured at
    d = 30: the solver's objective reaches the float64 minimizer's to ~1e-7 relative, but its duality gap, whose
    certificate 𝒜*z is itself a float32 pass, certifies no better than ~1e-5 relative: use tol ≥ 3e-5 (tested)."""

    def __init__(self, X: torch.Tensor, chunk_rows: int | None = None, pass_dtype: torch.dtype | None = None):
        self.m, self.d = X.shape
        self.n1 = self.n2 = self.d
        self.device, self.dtype = X.device, X.dtype
        self.pass_dtype = X.dtype if pass_dtype is None else pass_dtype
        if self.pass_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"pass_dtype: must be torch.float32 or torch.float64 (got {pass_dtype})")
        self.X = X.to(self.pass_dtype)
        if chunk_rows is None:
            chunk_rows = self.m if self.device.type != "cpu" else max(32, CHUNK_BYTES // (self.d * self.X.element_size()))
        self.chunk_rows = positive_int("chunk_rows", chunk_rows)
        for rows in self._rows():  # block by block: the check's temporaries on all of X were 1.4 times X
            finite_array("X", X[rows])

    def _rows(self):
        for i in range(0, self.m, self.chunk_rows):
            yield slice(i, min(i + self.chunk_rows, self.m))

    def _diag_quadratic(self, U: torch.Tensor, V: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
        """(x_μᵀ U V_μ-row sums): Σ_j (XU)_μj (XV)_μj, or with V None: Σ_j (XU)_μj X_μj; shape (n,)."""
        U = U.to(self.pass_dtype)
        V = None if V is None else V.to(self.pass_dtype)
        out = torch.empty(self.m, dtype=out_dtype, device=self.device)
        for rows in self._rows():
            Xc = self.X[rows]
            T = Xc @ U
            T.mul_(Xc if V is None else (T if V is U else Xc @ V))
            out[rows] = T.sum(1, dtype=out_dtype)
        return out

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        """((X S) ∘ X)·1 − Tr S, over √d: n·d² multiply-adds, one (rows, d) temporary per chunk."""
        self._check(S)
        return (self._diag_quadratic(S, None, S.dtype) - torch.trace(S)) / math.sqrt(self.d)

    def forward_factored(self, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """𝒜(U Vᵀ) = (((XU) ∘ (XV))·1 − Σ U∘V)/√d for U, V (d, r): n·d·r multiply-adds (one product when V is U)."""
        return (self._diag_quadratic(U, V, U.dtype) - (U * V).sum()) / math.sqrt(self.d)

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """(Xᵀ diag(r) X − (Σ r) I)/√d, summed over chunks in r's dtype."""
        acc = torch.zeros(self.d, self.d, dtype=r.dtype, device=r.device)
        rp = r.to(self.pass_dtype)
        for rows in self._rows():
            Xc = self.X[rows]
            acc += (Xc * rp[rows, None]).T @ Xc
        acc.diagonal().sub_(r.sum())
        return acc / math.sqrt(self.d)

    def adjoint_right(self, z: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """𝒜*(z) V = (Xᵀ(z ∘ XV) − (Σ z) V)/√d for V (d, k): 2·n·d·k multiply-adds."""
        acc = torch.zeros(self.d, V.shape[1], dtype=z.dtype, device=z.device)
        zp, Vp = z.to(self.pass_dtype), V.to(self.pass_dtype)
        for rows in self._rows():
            Xc = self.X[rows]
            acc += Xc.T @ ((Xc @ Vp).mul_(zp[rows, None]))
        return (acc - z.sum() * V) / math.sqrt(self.d)


class GOEDesign(SensingOperator):
    """𝒜(S)_μ = ⟨Z_μ, S⟩ with Z_μ GOE: off-diagonal N(0, 1/d), diagonal N(0, 2/d)."""

    def __init__(self, n: int, d: int, g: torch.Generator, dtype: torch.dtype = torch.float64):
        self.m, self.d = positive_int("n", n), positive_int("d", d)
        self.n1 = self.n2 = self.d
        self.device, self.dtype = g.device, dtype
        self.iu = torch.triu_indices(d, d, device=g.device)
        diag = self.iu[0] == self.iu[1]
        Z = torch.randn(n, self.iu.shape[1], generator=g, device=g.device, dtype=dtype) / math.sqrt(d)
        Z[:, diag] *= math.sqrt(2.0)
        self.Zu = Z  # upper-triangle entries of each Z_μ
        self.w = torch.where(diag, 1.0, 2.0).to(dtype)  # ⟨Z, S⟩ = Σ_{i≤j} w_ij Z_ij S_ij for symmetric S

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        self._check(S)
        Ssym = 0.5 * (S + S.T)
        return self.Zu @ (self.w * Ssym[self.iu[0], self.iu[1]])

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        u = r @ self.Zu
        M = torch.zeros(self.d, self.d, dtype=r.dtype, device=r.device)
        M[self.iu[0], self.iu[1]] = u
        return M + M.T - torch.diag(torch.diagonal(M))


@dataclass
class QuadraticNetProblem:
    """A teacher S*, a training set (operator + labels) and the noise level Δ."""

    S_star: torch.Tensor  # (d, d)
    op: SensingOperator  # n measurements
    y: torch.Tensor  # (n,)
    noise: float  # Δ
    design: str

    @property
    def d(self) -> int:
        return int(self.S_star.shape[0])

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def objective(self, S: torch.Tensor, lam: float) -> float:
        """The convex twin's objective at S: (1/d²)‖y − 𝒜S‖² + (λ/d) Tr S."""
        r = self.y - self.op.forward(S)
        return float(r @ r) / self.d**2 + lam / self.d * float(torch.trace(S))

    def convex_twin(self, lam: float, tol: float = 1e-9, max_iter: int = 20000):
        """The convex minimizer of (1/d²)‖y − 𝒜S‖² + (λ/d) Tr S over S ⪰ 0 (FISTA, relative duality-gap stop at
        ``tol``): ``nuclear_least_squares`` with penalty λ/d and the data term's weight 2/d² (its ½ undone)."""
        d = self.d
        return nuclear_least_squares(self.op, self.y, lam / d, psd=True, weight=2.0 / d**2, tol=tol,
                                     max_iter=max_iter)

    def student_gram(self, W: torch.Tensor) -> torch.Tensor:
        """S = WᵀW/√(m d) for a student W of shape (m, d)."""
        return W.T @ W / math.sqrt(W.shape[0] * self.d)

    def train_error(self, S: torch.Tensor) -> float:
        r = self.y - self.op.forward(S)
        return float(r @ r) / self.n

    def test_error(self, S: torch.Tensor) -> float:
        """E(y − f(x))² = 2‖S − S*‖_F²/d + Δ (exact for both designs: Var⟨Z, M⟩ = 2‖M‖_F²/d for symmetric M)."""
        D = 0.5 * (S + S.T) - self.S_star
        return 2.0 * float((D * D).sum()) / self.d + self.noise


@validate_params({"S": Array(ndim=2, to="torch"), "rtol": NON_NEGATIVE})
def psd_rank(S: torch.Tensor, rtol: float = RANK_RTOL) -> tuple[int, np.ndarray]:
    """#{eigenvalues of sym(S) > rtol·λ_max} and the eigenvalues (ascending) of sym(S) = (S + Sᵀ)/2; S (d, d),
    NumPy or torch."""
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"S: must be square (got shape {tuple(S.shape)})")
    ev = torch.linalg.eigvalsh(0.5 * (S + S.T)).cpu().numpy()
    return int((ev > rtol * max(ev.max(), 1e-300)).sum()), ev


def teacher(d: int, kappa_star: float, g: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """S* = W*ᵀW*/√(m* d) with m* = max(1, round(κ* d)) rows of i.i.d. N(0, 1); shape (d, d)."""
    d = positive_int("d", d)
    kappa_star = positive("kappa_star", kappa_star)
    m_star = max(1, int(round(kappa_star * d)))
    W = torch.randn(m_star, d, generator=g, device=g.device, dtype=dtype)
    return W.T @ W / math.sqrt(m_star * d)


def powerlaw_teacher_spectrum(d: int, gamma: float, q0: float = 1.0, rank: int | None = None) -> np.ndarray:
    """Eigenvalues s_j = c·j^−γ for j ≤ rank (default d) and 0 beyond, shape (d,), descending, with c chosen so that
    ‖S*‖²_F/d = Σ_j s_j²/d = q0 (the Q0 of the theory)."""
    d = positive_int("d", d)
    gamma = positive("gamma", gamma, allow_zero=True)
    q0 = positive("q0", q0)
    r = d if rank is None else positive_int("rank", rank)
    if r > d:
        raise ValueError(f"rank: must be ≤ d = {d} (got {r})")
    s = np.zeros(d)
    s[:r] = np.arange(1, r + 1, dtype=float) ** -gamma
    return s * math.sqrt(q0 * d / float(s @ s))


@validate_params({"g": Seed(to="torch")})
def powerlaw_teacher(d: int, gamma: float, g: torch.Generator, q0: float = 1.0, rank: int | None = None,
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """S* = U diag(s) Uᵀ with s = :func:`powerlaw_teacher_spectrum` (d, γ, q0, rank) and U Haar-distributed (QR of
    a Gaussian matrix with the signs of R's diagonal moved into Q); shape (d, d). ``g``: an int, a NumPy or a torch
    Generator."""
    s = torch.as_tensor(powerlaw_teacher_spectrum(d, gamma, q0, rank), dtype=dtype, device=g.device)
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=g, device=g.device, dtype=dtype))
    U = Q * torch.sign(torch.diagonal(R))
    return (U * s) @ U.T


def make_problem(d: int, alpha: float, kappa_star: float | None, noise: float, g: torch.Generator,
                 design: str = "quadratic", dtype: torch.dtype = torch.float64,
                 S_star: torch.Tensor | None = None) -> QuadraticNetProblem:
    """Teacher, n = round(α d²) samples and labels (design 'quadratic' or 'goe'), all from generator ``g``.

    The teacher is the Wishart S* of width κ*d (``kappa_star``) or the given symmetric ``S_star`` (d, d), e.g.
    :func:`powerlaw_teacher`; exactly one of the two."""
    d = positive_int("d", d)
    alpha = positive("alpha", alpha)
    noise = positive("noise", noise, allow_zero=True)
    design = choice("design", design, DESIGNS)
    if (kappa_star is None) == (S_star is None):
        raise ValueError("S_star: give exactly one of kappa_star and S_star "
                         f"(got {'both' if S_star is not None else 'neither'})")
    if S_star is None:
        S_star = teacher(d, kappa_star, g, dtype)
    else:
        finite_array("S_star", S_star)
        if tuple(S_star.shape) != (d, d):
            raise ValueError(f"S_star: must have shape ({d}, {d}) (got {tuple(S_star.shape)})")
        S_star = S_star.to(dtype=dtype, device=g.device)
    n = max(1, int(round(alpha * d * d)))
    if design == "quadratic":
        op: SensingOperator = QuadraticFeatures(torch.randn(n, d, generator=g, device=g.device, dtype=dtype))
    else:
        op = GOEDesign(n, d, g, dtype)
    y = op.forward(S_star) + math.sqrt(noise) * torch.randn(n, generator=g, device=g.device, dtype=dtype)
    return QuadraticNetProblem(S_star, op, y, noise, design)


class QuadraticNet(torch.nn.Module):
    """The student f_W(x) = (xᵀSx − Tr S)/√d, S = WᵀW/√(md), as a ``torch.nn.Module`` (W of shape (m, d))."""

    def __init__(self, d: int, m: int, W: torch.Tensor | None = None, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.d, self.m = positive_int("d", d), positive_int("m", m)
        self.W = torch.nn.Parameter(W.clone() if W is not None else torch.randn(m, d, dtype=dtype) / math.sqrt(d))

    def S(self) -> torch.Tensor:
        return self.W.T @ self.W / math.sqrt(self.m * self.d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x @ self.W.T  # (n, m)
        return ((h * h).sum(1) - (self.W * self.W).sum()) / (math.sqrt(self.m * self.d) * math.sqrt(self.d))
