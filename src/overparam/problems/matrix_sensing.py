"""Matrix sensing: measurement operators 𝒜 and their adjoints, and low-rank ground truths.

Every operator maps X ∈ R^{n1×n2} to 𝒜(X) = (⟨A_i, X⟩)_{i=1..m} / √m, scaled so that E 𝒜*𝒜 = I, with adjoint
𝒜*(z) = Σ_i z_i A_i / √m. Batched in torch, on the device of the generator they were drawn from.

- :class:`GaussianOperator`: A_i with i.i.d. N(0, 1) entries (stored, m·n1·n2 numbers).
- :class:`RankOneOperator`: A_i = a_i b_iᵀ, a_i, b_i ~ N(0, I); applied through a_iᵀ X b_i, never forming A_i, and to a
  factored X = UVᵀ through (a_iᵀU)·(b_iᵀV) in O(m k (n1 + n2)) (what lets n1 = n2 = 2000 run on a laptop).
- :class:`EntrySampling`: A_i = √(n1 n2) e_{j_i} e_{l_i}ᵀ with uniformly drawn entries (matrix completion).

Factored methods (used by factorized gradient descent, shapes U (n1, k), V (n2, k), z (m,)):
``forward_factored(U, V) = 𝒜(UVᵀ)``, ``adjoint_right(z, V) = 𝒜*(z) V`` (n1, k), ``adjoint_left(z, U) = 𝒜*(z)ᵀ U``
(n2, k). The base class implements them by forming the n1×n2 matrices; the rank-one and entry operators override them.

Every operator is also an :class:`overparam.linalg.LinearOperator` of shape (m, n1·n2) on X flattened row-major:
``op @ X.reshape(-1)`` = 𝒜(X), ``op.T @ z`` = vec 𝒜*(z), ``op.dense()`` the m × n1·n2 matrix, ``op.to_scipy()``.
Here ``op.adjoint(z)`` applies 𝒜* to z as before; ``op.adjoint()`` without z is the adjoint operator (``op.T``).
"""

from __future__ import annotations

import functools
import math

import torch

from ..linalg.operator import LinearOperator

from ..validation import (NON_NEGATIVE, POSITIVE_INT, Array, InstanceOf, Interval, Options, Real, Seed, finite_array,
                          positive_int, validate_params)

#: what every operator's constructor takes: sizes ≥ 1, a seed (int, NumPy or torch Generator), float32 or float64
_OP_PARAMS = {"m": POSITIVE_INT, "n1": POSITIVE_INT, "n2": POSITIVE_INT, "g": Seed(to="torch"),
              "dtype": Options((torch.float64, torch.float32))}


class SensingOperator(LinearOperator):
    """Base class: ``forward``/``adjoint`` on matrices; factored forms derived from them; a linear operator of shape
    (m, n1·n2) whose matvec/rmatvec wrap ``forward``/``adjoint`` (module docstring)."""

    m: int
    n1: int
    n2: int

    def __init_subclass__(cls, **kwargs):
        """A subclass's ``adjoint(z)`` also answers ``adjoint()`` (no z) with the adjoint operator, as every
        :class:`LinearOperator` does."""
        super().__init_subclass__(**kwargs)
        apply = cls.__dict__.get("adjoint")
        if apply is not None:
            @functools.wraps(apply)
            def adjoint(self, z: torch.Tensor | None = None):
                return LinearOperator.adjoint(self) if z is None else apply(self, z)
            cls.adjoint = adjoint

    @property
    def shape(self) -> tuple[int, int]:
        return (self.m, self.n1 * self.n2)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """𝒜(X) for v = vec X (n1·n2,), row-major; (m,)."""
        return self.forward(v.reshape(self.n1, self.n2))

    def rmatvec(self, z: torch.Tensor) -> torch.Tensor:
        """vec 𝒜*(z) for z (m,); (n1·n2,)."""
        return self.adjoint(z).reshape(-1)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def adjoint(self, z: torch.Tensor | None = None):
        if z is None:
            return LinearOperator.adjoint(self)
        raise NotImplementedError

    __call__ = forward

    def forward_factored(self, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return self.forward(U @ V.T)

    def adjoint_right(self, z: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return self.adjoint(z) @ V

    def adjoint_left(self, z: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        return self.adjoint(z).T @ U

    def norm_estimate(self, iters: int = 50, seed: int = 0) -> float:
        """‖𝒜‖_op by power iteration on 𝒜*𝒜 (the Lipschitz constant of ½‖𝒜X − y‖² is its square)."""
        g = torch.Generator(device=self.device).manual_seed(seed)
        X = torch.randn(self.n1, self.n2, generator=g, device=self.device, dtype=self.dtype)
        s = 0.0
        for _ in range(iters):
            X = self.adjoint(self.forward(X))
            s = float(X.norm())
            X = X / s
        return math.sqrt(s)

    def _check(self, X: torch.Tensor) -> None:
        if X.shape != (self.n1, self.n2):
            raise ValueError(f"X: must have shape ({self.n1}, {self.n2}), got {tuple(X.shape)}")


def _dims(m: int, n1: int, n2: int) -> tuple[int, int, int]:
    return positive_int("m", m), positive_int("n1", n1), positive_int("n2", n2)


class GaussianOperator(SensingOperator):
    """Dense Gaussian measurements: A (m, n1, n2) with N(0, 1) entries."""

    @validate_params(_OP_PARAMS)
    def __init__(self, m: int, n1: int, n2: int, g: torch.Generator | int, dtype: torch.dtype = torch.float64):
        self.m, self.n1, self.n2 = _dims(m, n1, n2)
        self.device, self.dtype = g.device, dtype
        self.A = torch.randn(self.m, self.n1 * self.n2, generator=g, device=g.device, dtype=dtype)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        self._check(X)
        return self.A @ X.reshape(-1) / math.sqrt(self.m)

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.A).reshape(self.n1, self.n2) / math.sqrt(self.m)


class RankOneOperator(SensingOperator):
    """A_i = a_i b_iᵀ with a (m, n1), b (m, n2) standard Gaussian; ⟨A_i, X⟩ = a_iᵀ X b_i."""

    @validate_params(_OP_PARAMS)
    def __init__(self, m: int, n1: int, n2: int, g: torch.Generator | int, dtype: torch.dtype = torch.float64):
        self.m, self.n1, self.n2 = _dims(m, n1, n2)
        self.device, self.dtype = g.device, dtype
        self.a = torch.randn(self.m, self.n1, generator=g, device=g.device, dtype=dtype)
        self.b = torch.randn(self.m, self.n2, generator=g, device=g.device, dtype=dtype)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        self._check(X)
        return ((self.a @ X) * self.b).sum(1) / math.sqrt(self.m)

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        return (self.a * z[:, None]).T @ self.b / math.sqrt(self.m)

    def forward_factored(self, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return ((self.a @ U) * (self.b @ V)).sum(1) / math.sqrt(self.m)

    def adjoint_right(self, z: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return self.a.T @ (z[:, None] * (self.b @ V)) / math.sqrt(self.m)

    def adjoint_left(self, z: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        return self.b.T @ (z[:, None] * (self.a @ U)) / math.sqrt(self.m)


class EntrySampling(SensingOperator):
    """Matrix completion: m entries (rows, cols) drawn uniformly with replacement, A_i = √(n1 n2) e_row e_colᵀ."""

    @validate_params(_OP_PARAMS)
    def __init__(self, m: int, n1: int, n2: int, g: torch.Generator | int, dtype: torch.dtype = torch.float64):
        self.m, self.n1, self.n2 = _dims(m, n1, n2)
        self.device, self.dtype = g.device, dtype
        self.rows = torch.randint(0, self.n1, (self.m,), generator=g, device=g.device)
        self.cols = torch.randint(0, self.n2, (self.m,), generator=g, device=g.device)
        self.scale = math.sqrt(self.n1 * self.n2 / self.m)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        self._check(X)
        return X[self.rows, self.cols] * self.scale

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.n1 * self.n2, device=z.device, dtype=z.dtype)
        out.index_add_(0, self.rows * self.n2 + self.cols, z * self.scale)
        return out.reshape(self.n1, self.n2)

    def forward_factored(self, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return (U[self.rows] * V[self.cols]).sum(1) * self.scale

    def adjoint_right(self, z: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.n1, V.shape[1], device=z.device, dtype=z.dtype)
        return out.index_add_(0, self.rows, (z * self.scale)[:, None] * V[self.cols])

    def adjoint_left(self, z: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.n2, U.shape[1], device=z.device, dtype=z.dtype)
        return out.index_add_(0, self.cols, (z * self.scale)[:, None] * U[self.rows])


OPERATORS = {"gaussian": GaussianOperator, "rank_one": RankOneOperator, "entries": EntrySampling}


@validate_params({"kind": Options(tuple(OPERATORS)), **_OP_PARAMS})
def make_operator(kind: str, m: int, n1: int, n2: int, g: torch.Generator | int,
                  dtype: torch.dtype = torch.float64) -> SensingOperator:
    """One of :data:`OPERATORS` by name, drawn from ``g`` (an int seed, a NumPy or a torch Generator; a torch
    Generator's device is where the operator lives), in float64 (default) or float32."""
    return OPERATORS[kind](m, n1, n2, g, dtype)


@validate_params({"n1": POSITIVE_INT, "n2": POSITIVE_INT, "r": POSITIVE_INT, "kappa": Interval(Real, 1, None, "left"),
                  "g": Seed(to="torch"), "dtype": Options((torch.float64, torch.float32))})
def low_rank_truth(n1: int, n2: int, r: int, kappa: float, g: torch.Generator | int,
                   dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors (L (n1, r), R (n2, r)) of X* = L Rᵀ with singular values evenly spaced from 1 down to 1/κ (κ ≥ 1)
    and random orthonormal singular vectors (so ‖X*‖_op = 1, condition number κ). Form X* as ``L @ R.T``."""
    if r > min(n1, n2):
        raise ValueError(f"r: rank {r} exceeds min(n1, n2) = {min(n1, n2)}")
    Qu, _ = torch.linalg.qr(torch.randn(n1, r, generator=g, device=g.device, dtype=dtype))
    Qv, _ = torch.linalg.qr(torch.randn(n2, r, generator=g, device=g.device, dtype=dtype))
    sig = torch.linspace(1.0, 1.0 / kappa, r, device=g.device, dtype=dtype) if r > 1 else torch.ones(1, dtype=dtype,
                                                                                                     device=g.device)
    return Qu * sig, Qv


@validate_params({"op": InstanceOf(SensingOperator), "L": Array(2, to="torch", keep_float32=True),
                  "R": Array(2, to="torch", keep_float32=True), "noise": NON_NEGATIVE,
                  "g": [None, Seed(to="torch", device_of="L")]})
def measure(op: SensingOperator, L: torch.Tensor, R: torch.Tensor, noise: float = 0.0,
            g: torch.Generator | int | None = None) -> torch.Tensor:
    """y = 𝒜(L Rᵀ) + noise · N(0, I_m), L (n1, r), R (n2, r) in the operator's dtype and device; ``g`` (a seed)
    is required when noise > 0."""
    if L.shape[0] != op.n1 or R.shape[0] != op.n2 or L.shape[1] != R.shape[1]:
        raise ValueError(f"R: factors must be ({op.n1}, r) and ({op.n2}, r) for this operator (got L "
                         f"{tuple(L.shape)}, R {tuple(R.shape)})")
    if noise > 0 and g is None:
        raise ValueError("g: a seed is required when noise > 0 (got None)")
    L, R = L.to(op.device, op.dtype), R.to(op.device, op.dtype)
    y = op.forward_factored(L, R)
    if noise > 0:
        y = y + noise * torch.randn(op.m, generator=g, device=y.device, dtype=y.dtype)
    finite_array("y", y)
    return y
