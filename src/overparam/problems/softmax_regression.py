"""Two-layer regression with a softmax first layer (Li, Song, Wang, Yin 2023 family), in closed form.

For x ∈ R^d, C ∈ R^{n×d} (dense tensor or scipy.sparse), z = Cx, the first layer u(x) = softmax(z) =
⟨exp(z), 1⟩⁻¹ exp(z) ∈ R^n, a coordinate-wise activation φ with bias θ, target b ∈ R^n and weights w ∈ R^n:

    L(x) = ½ ‖φ(u(x) − θ) − b‖² + ½ ‖w ∘ (Cx)‖².

With v = u − θ, r = φ(v) − b, s = φ'(v) ∘ r, J = diag(u) − uuᵀ (the softmax Jacobian), ū = uᵀs, p = u ∘ (s − ū):

    ∇L = Cᵀ g_z,        g_z = J s + w² ∘ z = p + w² ∘ z,
    ∇²L = Cᵀ B C,       B = J diag(e) J + diag(p) − p uᵀ − u pᵀ + diag(w²),   e = φ'(v)² + φ''(v) ∘ r,

and J diag(e) J = diag(e ∘ u²) − q uᵀ − u qᵀ + (uᵀ(e ∘ u)) uuᵀ with q = e ∘ u². Hence B = diag(β) + diag(w²) + U M Uᵀ
with β = e ∘ u² + p, U = [u, β] (n×2) and M = [[c, −1], [−1, 0]], c = Σ e u² (q and p enter only through their
sum β = q + p: c uuᵀ − uβᵀ − βuᵀ): a diagonal, a rank-≤2 part and the fixed diag(w²). The algorithms use exactly this
structure (Hessian-vector products in O(nnz(C)), the sampled Hessian on diag(β + w²) only).

Activations: relu, softplus, gelu (tanh form is not used: the exact erf form), identity (one-layer softmax
regression). ReLU's φ'' is taken as 0 (its Hessian is defined almost everywhere).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from ..linalg.operator import LinearOperator
from ..validation import choice, finite_array, positive, positive_int
from ..work import Work


def _relu(v):
    return v.clamp_min(0), (v > 0).to(v.dtype), torch.zeros_like(v)


def _softplus(v):
    s = torch.sigmoid(v)
    return torch.nn.functional.softplus(v), s, (1 - s).mul_(s)


def _gelu(v):
    pdf = torch.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(v / math.sqrt(2)))
    return v * cdf, cdf + v * pdf, 2 * pdf - v * v * pdf


def _identity(v):
    return v, torch.ones_like(v), torch.zeros_like(v)


#: name -> v ↦ (φ(v), φ'(v), φ''(v))
ACTIVATIONS: dict[str, Callable] = {"relu": _relu, "softplus": _softplus, "gelu": _gelu, "identity": _identity}
TORCH_PHI = {"relu": torch.relu, "softplus": torch.nn.functional.softplus,
             "gelu": lambda v: torch.nn.functional.gelu(v), "identity": lambda v: v}


#: rows of C per block of :func:`signed_gram`: about 4 MB of float64 rows, small enough to stay in cache between the
#: block's scaling and its rank-k update, large enough for the update to run near matrix-multiply speed (blocks of
#: 1–17 MB measured at n·d = 2·10⁷, one thread: equal within the noise at d = 100; 4 MB 12 % faster than 1 MB at d = 400)
GRAM_BLOCK_BYTES = 1 << 22


def signed_gram(C: np.ndarray, weights: np.ndarray, rows: np.ndarray | None = None, block: int | None = None
                ) -> np.ndarray:
    """G = Cᵀ diag(weights) C for dense C (n, d) over all rows or the given ``rows`` (weights (len(rows),)), (d, d),
    weights of either sign. Block by block of rows: A = diag(√|w|) C_block, G += AᵀA − 2 A₋ᵀA₋ with A₋ the rows
    whose weight is negative, so every product is a symmetric rank-k update (BLAS syrk: d(d + 1)/2 multiply-adds a
    row, at matrix-multiply speed) instead of a general product of (diag(w) C)ᵀ with C (d² a row, and an n × d
    copy). ``block``: rows per block (default :data:`GRAM_BLOCK_BYTES` of rows, at least 64). Measured at
    n = 2·10⁵, d = 100, one thread: 0.09 s against 0.18 s for the general product."""
    n, d = len(weights), C.shape[1]
    root, neg = np.sqrt(np.abs(weights)), weights < 0
    block = block or max(64, GRAM_BLOCK_BYTES // (8 * d))
    G = np.zeros((d, d))
    for i in range(0, n, block):
        j = min(i + block, n)
        A = (C[i:j] if rows is None else C[rows[i:j]]) * root[i:j, None]
        G += A.T @ A  # numpy recognizes AᵀA and calls syrk
        m = neg[i:j]
        if m.any():
            An = A[m]
            G -= 2.0 * (An.T @ An)
    return G


class Matrix(LinearOperator):
    """C as a dense tensor or a scipy sparse matrix, with the products the algorithms need. Every product adds its
    multiply-adds and the rows it reads to ``work`` (:class:`overparam.work.Work`, rules there). A linear operator
    of shape (n, d), float64 on the CPU: ``C @ x`` is :meth:`mv` (or :meth:`mm` for a matrix), ``C.T @ y`` :meth:`rmv`
    (:meth:`rmm`)."""

    dtype, device = torch.float64, torch.device("cpu")

    def __init__(self, C, work: Work | None = None):
        if isinstance(C, torch.Tensor) and C.layout != torch.strided:  # a torch sparse tensor: held as scipy CSR
            C = C.coalesce() if C.layout == torch.sparse_coo else C.to_sparse_coo().coalesce()
            i = C.indices().cpu().numpy()
            C = sp.csr_matrix((C.values().cpu().double().numpy(), (i[0], i[1])), shape=tuple(C.shape))
        if sp.issparse(C):
            self.C = C.tocsr().astype(np.float64)
            self.sparse = True
            finite_array("C", self.C.data)
        else:
            self.C = torch.as_tensor(C, dtype=torch.float64).cpu()
            self.sparse = False
            if self.C.ndim != 2:
                raise ValueError(f"C: must be 2-D (n, d), got shape {tuple(self.C.shape)}")
            finite_array("C", self.C)
        self.n, self.d = self.C.shape
        self.work = work if work is not None else Work()

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.d)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.mv(v)

    def rmatvec(self, u: torch.Tensor) -> torch.Tensor:
        return self.rmv(u)

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        return self.mm(V)

    def rmatmat(self, U: torch.Tensor) -> torch.Tensor:
        return self.rmm(U)

    @property
    def native(self):
        """C as the sketches read it: the scipy CSR matrix, or a NumPy view of the dense tensor (no copy)."""
        return self.C if self.sparse else self.C.numpy()

    @property
    def nnz(self) -> int:
        return int(self.C.nnz) if self.sparse else self.n * self.d

    def row_nnz(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Stored entries of each row (of the given ``rows``, repeats included)."""
        per_row = np.diff(self.C.indptr) if self.sparse else np.full(self.n, self.d)
        return per_row if rows is None else per_row[np.asarray(rows)]

    def mv(self, x: torch.Tensor) -> torch.Tensor:
        """C x, (n,): nnz multiply-adds."""
        self.work.sparse_product(self.nnz, 1, self.n)
        return torch.from_numpy(np.asarray(self.native @ x.numpy()))

    def rmv(self, y: torch.Tensor) -> torch.Tensor:
        """Cᵀ y, (d,): nnz multiply-adds."""
        self.work.sparse_product(self.nnz, 1, self.n)
        return torch.from_numpy(np.asarray(y.numpy() @ self.native)).reshape(self.d)

    def rmm(self, Y: torch.Tensor) -> torch.Tensor:
        """Cᵀ Y for Y (n, k), (d, k): nnz · k multiply-adds, one pass over C (:meth:`rmm_rows` on Yᵀ, which reads C
        row by row)."""
        return self.rmm_rows(np.ascontiguousarray(Y.numpy().T))

    def rmm_rows(self, Yt: np.ndarray) -> torch.Tensor:
        """Cᵀ Y given Yᵀ (k, n) as a C-contiguous array, (d, k): nnz · k multiply-adds, one pass over C. Dense C
        goes through torch's matrix multiply (MKL in the PyPI wheels), which streams a tall C with a few columns
        faster than NumPy's OpenBLAS: at n = 10⁶, d = 100, k = 3, one thread, 69 ms against 87 ms (one pass alone,
        C x, takes 54 ms)."""
        self.work.sparse_product(self.nnz, Yt.shape[0], self.n)
        if self.sparse:
            return torch.from_numpy(np.asarray(self.C.T @ Yt.T))
        return (torch.from_numpy(Yt) @ self.C).T

    def mm(self, X: torch.Tensor) -> torch.Tensor:
        """C X for X (d, k), (n, k): nnz · k multiply-adds."""
        self.work.sparse_product(self.nnz, X.shape[1], self.n)
        return torch.from_numpy(np.asarray(self.native @ X.numpy()))

    def gram(self, weights: torch.Tensor, rows: np.ndarray | None = None) -> torch.Tensor:
        """Cᵀ diag(weights) C over all rows or the given ``rows`` (weights indexed like those rows), (d, d).

        Dense C: :func:`signed_gram`, a symmetric rank-k update per block of rows, d(d + 1)/2 + d multiply-adds a
        row; sparse C: the full sparse product, nnz_i² + nnz_i a row."""
        k = self.row_nnz(rows).astype(float)
        self.work.add(float((k * k + k).sum() if self.sparse else (k * (k + 1) / 2 + k).sum()), len(k))
        wt = weights.numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights, float)
        if self.sparse:
            Cs = self.native if rows is None else self.native[np.asarray(rows)]
            return torch.from_numpy(np.asarray((Cs.T @ Cs.multiply(wt[:, None])).todense()))
        return torch.from_numpy(signed_gram(self.native, wt, rows))

    def dense(self) -> torch.Tensor:
        return torch.from_numpy(self.C.toarray()) if self.sparse else self.C


@dataclass
class State:
    """Everything the derivatives at x need (all (n,) tensors but ``c``)."""

    z: torch.Tensor
    u: torch.Tensor
    r: torch.Tensor
    p: torch.Tensor
    q: torch.Tensor
    beta: torch.Tensor  # e ∘ u² + p: the diagonal part of B without w²
    c: float
    loss: float


class SoftmaxRegression:
    """The problem L(x) of the module docstring. C (n, d) dense or sparse; b, w (n,); θ scalar or (n,)."""

    def __init__(self, C, b, w, theta=0.0, activation: str = "softplus"):
        self.A = Matrix(C)
        self.work = self.A.work  # every product with C, the Hessians and the solvers' factorizations add here
        n, d = self.A.n, self.A.d
        self.b = torch.as_tensor(b, dtype=torch.float64)
        self.w = torch.as_tensor(w, dtype=torch.float64)
        self.theta = torch.as_tensor(theta, dtype=torch.float64)
        if self.b.shape != (n,):
            raise ValueError(f"b: must have shape ({n},) to match C, got {tuple(self.b.shape)}")
        if self.w.shape != (n,):
            raise ValueError(f"w: must have shape ({n},) to match C, got {tuple(self.w.shape)}")
        if self.theta.ndim not in (0, 1) or (self.theta.ndim == 1 and self.theta.shape != (n,)):
            raise ValueError(f"theta: must be a scalar or have shape ({n},)")
        for name, t in (("b", self.b), ("w", self.w), ("theta", self.theta)):
            finite_array(name, t)
        if bool((self.w < 0).any()):
            raise ValueError("w: weights must be ≥ 0")
        self.activation = choice("activation", activation, tuple(ACTIVATIONS))
        self.phi = ACTIVATIONS[activation]
        self.w2 = self.w**2
        self.n, self.d = n, d

    def _check_x(self, x: torch.Tensor) -> None:
        if x.shape != (self.d,):
            raise ValueError(f"x: must have shape ({self.d},), got {tuple(x.shape)}")

    def state(self, x: torch.Tensor) -> State:
        self._check_x(x)
        z = self.A.mv(x)
        u = torch.softmax(z, 0)
        a, d1, d2 = self.phi(u - self.theta)  # three new (n,) tensors: updated in place below (n-vector passes are
        r = a.sub_(self.b)  # a step's cost next to the two passes over C: 32 → 23 ms at n = 10⁶)
        s = d1 * r  # φ'(v) ∘ r
        p = s.sub_(float(u @ s)).mul_(u)  # u ∘ (s − uᵀs)
        e = d2.mul_(r).addcmul_(d1, d1)  # φ'² + φ'' r
        q = u * u
        c = float(e @ q)
        q.mul_(e)  # e ∘ u²
        wz = self.w * z
        loss = 0.5 * float(r @ r) + 0.5 * float(wz @ wz)
        return State(z, u, r, p, q, q + p, c, loss)

    def loss(self, x: torch.Tensor) -> float:
        return self.state(x).loss

    def grad(self, x: torch.Tensor, st: State | None = None) -> torch.Tensor:
        """∇L = Cᵀ(p + w² ∘ z), (d,)."""
        st = st or self.state(x)
        return self.A.rmv(st.p + self.w2 * st.z)

    def diagonal(self, st: State) -> torch.Tensor:
        """D = β + w², (n,): the whole diagonal of B, so that ∇²L = Cᵀ diag(D) C + (CᵀU) M (CᵀU)ᵀ."""
        return st.beta + self.w2

    def low_rank(self, st: State) -> tuple[torch.Tensor, torch.Tensor]:
        """(CᵀU (d, 2), M (2, 2)) with U = [u, β], β = q + p: the rank-≤2 part of the Hessian is (CᵀU) M (CᵀU)ᵀ."""
        return self.A.rmm(self._U(st)), self._M(st)

    def grad_low_rank(self, st: State) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(∇L, CᵀU, M) from one pass over C: Cᵀ[g_z, u, q + p] (nnz · 3 multiply-adds, n rows read once)."""
        Yt = np.empty((3, self.n))  # [g_z, u, q + p] as rows: the pass reads C once, (YᵀC)ᵀ
        rows = torch.from_numpy(Yt)
        torch.add(st.p, self.w2 * st.z, out=rows[0])
        rows[1] = st.u
        rows[2] = st.beta  # q + p
        G = self.A.rmm_rows(Yt)
        return G[:, 0].contiguous(), G[:, 1:], self._M(st)

    @staticmethod
    def _U(st: State) -> torch.Tensor:
        return torch.stack([st.u, st.beta], 1)  # β = q + p

    @staticmethod
    def _M(st: State) -> torch.Tensor:
        return torch.tensor([[st.c, -1.0], [-1.0, 0.0]], dtype=torch.float64)

    def low_rank_product(self, CU: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        """(CᵀU) M (CᵀU)ᵀ for CU (d, k), M (k, k): (d, d), d k² + d² k multiply-adds (4d + 2d² here, k = 2)."""
        k = CU.shape[1]
        self.work.product(self.d, k, k)
        self.work.product(self.d, k, self.d)
        return CU @ M @ CU.T

    def hvp(self, x: torch.Tensor, v: torch.Tensor, st: State | None = None) -> torch.Tensor:
        """∇²L v = Cᵀ B C v in O(nnz(C)): with y = Cv, B y = (β + w²) ∘ y + (c uᵀy − βᵀy) u − (uᵀy) β (U = [u, β],
        β = q + p), four n-vector updates between the two passes over C."""
        st = st or self.state(x)
        Cv = self.A.mv(v)
        uy, by = float(st.u @ Cv), float(st.beta @ Cv)
        Bv = st.beta * Cv
        Bv.addcmul_(self.w2, Cv).add_(st.u, alpha=st.c * uy - by).add_(st.beta, alpha=-uy)
        return self.A.rmv(Bv)

    def hessian(self, x: torch.Tensor, st: State | None = None, CU: torch.Tensor | None = None) -> torch.Tensor:
        """The exact Hessian Cᵀ diag(β + w²) C + (CᵀU)M(CᵀU)ᵀ, (d, d): one Gram pass over all n rows (n(d(d + 1)/2 + d)
        multiply-adds for dense C, a symmetric update); ``CU`` = CᵀU when already known (:meth:`grad_low_rank`)."""
        st = st or self.state(x)
        CU = CU if CU is not None else self.low_rank(st)[0]
        H = self.A.gram(self.diagonal(st)) + self.low_rank_product(CU, self._M(st))
        return 0.5 * (H + H.T)

    def torch_loss(self, x: torch.Tensor) -> torch.Tensor:
        """The same loss written plainly in torch (for autodiff checks)."""
        C = self.A.dense()
        z = C @ x
        u = torch.softmax(z, 0)
        return 0.5 * ((TORCH_PHI[self.activation](u - self.theta) - self.b) ** 2).sum() + 0.5 * ((self.w * z) ** 2).sum()


def make_instance(n: int, d: int, seed: int, activation: str = "softplus", density: float | None = None,
                  radius: float = 2.0, noise: float = 0.1, w_scale: float = 2.0,
                  condition: float = 1.0) -> tuple[SoftmaxRegression, np.ndarray]:
    """An instance meeting the paper's kind of assumptions: rows of C with norm ≈ 1 (dense N(0, Σ/d), or sparse with
    ``density``·d nonzeros per row scaled by Σ^½ column-wise), Σ = diag(σ²) with σ_j² geometric from 1 to
    1/``condition`` (normalized to mean 1: κ(CᵀC) ≈ condition), a planted x₀ with ‖x₀‖ = radius, b = φ(u(Cx₀) − θ) +
    noise·N(0, 1)/n with θ = 1/n (the softmax's scale), and w_i = w_scale/n.

    The default (condition 1, w_scale 2) is the easy family: the regularizer dominates the data term's negative
    curvature and κ(∇²L) ≈ 1. :func:`make_data_dominated` gives the family where the data term dominates.
    Returns (problem, x₀)."""
    n, d = positive_int("n", n), positive_int("d", d)
    condition = positive("condition", condition)
    if condition < 1:
        raise ValueError(f"condition: must be ≥ 1 (got {condition})")
    rng = np.random.default_rng(seed)
    sigma = condition ** (-0.5 * np.arange(d) / max(d - 1, 1))
    sigma /= np.sqrt(np.mean(sigma**2))
    if density is None:
        C = torch.from_numpy(rng.standard_normal((n, d)) * (sigma / math.sqrt(d)))
    else:
        density = positive("density", density)
        k = max(1, int(round(density * d)))
        cols = np.argsort(rng.random((n, d)), axis=1)[:, :k].ravel()
        rows = np.repeat(np.arange(n), k)
        C = sp.csr_matrix((rng.standard_normal(n * k) * sigma[cols] / math.sqrt(k), (rows, cols)), shape=(n, d))
    x0 = rng.standard_normal(d)
    x0 *= radius / np.linalg.norm(x0)
    theta = 1.0 / n
    w = np.full(n, w_scale / n)
    tmp = SoftmaxRegression(C, np.zeros(n), w, theta, activation)
    u = torch.softmax(tmp.A.mv(torch.from_numpy(x0)), 0)
    b = tmp.phi(u - theta)[0].numpy() + noise * rng.standard_normal(n) / n
    return SoftmaxRegression(C, b, w, theta, activation), x0


#: the data-dominated family: κ(CᵀC) = 100, regularization weight w = 0.2/n, ‖x₀‖ = 4
DATA_DOMINATED = dict(condition=100.0, w_scale=0.2, radius=4.0)


def make_data_dominated(n: int, d: int, seed: int, activation: str = "softplus", density: float | None = None,
                        **over) -> tuple[SoftmaxRegression, np.ndarray]:
    """:func:`make_instance` with :data:`DATA_DOMINATED` (any of its keys overridable): an ill-conditioned C and a
    regularizer well below the data curvature, where sampling the Hessian pays off. Returns (problem, x₀)."""
    return make_instance(n, d, seed, activation, density, **{**DATA_DOMINATED, **over})


def curvature_report(prob: SoftmaxRegression, x: torch.Tensor) -> dict[str, float]:
    """What decides whether approximate Newton pays at x (usually x*), counted apart from ``prob.work``:

    - ``kappa_H``: κ(∇²L(x)) = λ_max/λ_min (inf when not positive definite);
    - ``data_to_reg``: tr(∇²L − R)/tr(R), R = Cᵀdiag(w²)C the regularizer's curvature (≫ 1: data-dominated);
    - ``leverage_max``, ``leverage_p99``: the largest and the 99th-percentile exact leverage score of
      diag(√|D|)C, D = β + w², in units of the uniform d/n (1 = uniform scores; large = uniform sampling fails)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    saved = prob.work.copy()
    try:
        st = prob.state(x)
        H = prob.hessian(x, st)
        ev = torch.linalg.eigvalsh(H)
        R = prob.A.gram(prob.w2)
        absD = prob.diagonal(st).abs()
        L = torch.linalg.cholesky(prob.A.gram(absD))  # τ_i = |D_i| c_iᵀ(Cᵀ|D|C)⁻¹c_i = |D_i| ‖L⁻¹c_i‖²
        Y = torch.linalg.solve_triangular(L, torch.eye(prob.d, dtype=torch.float64), upper=False).T
        tau = (absD * (prob.A.mm(Y) ** 2).sum(1)).numpy() * prob.n / prob.d
    finally:
        prob.work.madds, prob.work.rows = saved.madds, saved.rows
    lo, hi = float(ev[0]), float(ev[-1])
    return {"kappa_H": hi / lo if lo > 0 else math.inf,
            "data_to_reg": float((torch.trace(H) - torch.trace(R)) / torch.trace(R)),
            "leverage_max": float(tau.max()), "leverage_p99": float(np.quantile(tau, 0.99))}
