"""One linear-operator base for the library's matrix-free maps (Hessians, GGNs, sensing operators, designs).

A :class:`LinearOperator` A of ``shape`` (m, n) acts on torch vectors: ``A @ v`` for v (n,) gives A v (m,), ``A @ V``
for V (n, k) gives A V (m, k). A subclass supplies :meth:`LinearOperator.matvec` (and :meth:`LinearOperator.rmatvec`,
Aᵀ u, unless it is symmetric, when Aᵀ = A); :meth:`LinearOperator.matmat` loops over columns unless a subclass batches
it. On top of those the base gives ``A.T`` / ``A.adjoint()`` (the operator Aᵀ), :meth:`LinearOperator.dense` (A E for
the identity E, built in column blocks) and :meth:`LinearOperator.to_scipy` (a ``scipy.sparse.linalg.LinearOperator``).

**Mixed precision** — products in the operator's own dtype (float32, say), Krylov arithmetic in float64 — is had two
ways, both by casting at the boundary only: :meth:`LinearOperator.to_scipy` takes and returns float64 NumPy arrays
(``dtype=np.float64``, the default) while the products run in ``A.dtype``; :meth:`LinearOperator.cast` returns the same
operator taking and returning torch tensors of another dtype (``A.cast(torch.float64) @ v`` with v float64 runs the
product in float32 and returns float64). Neither raises the accuracy of a product above ``A.dtype``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["LinearOperator"]


class LinearOperator:
    """A linear map R^n → R^m on torch tensors. Subclasses set ``shape`` (m, n), ``dtype``, ``device`` and implement
    :meth:`matvec`; ``symmetric = True`` makes :meth:`rmatvec` the same as :meth:`matvec` (m = n)."""

    shape: tuple[int, int]
    dtype: torch.dtype
    device: torch.device
    symmetric: bool = False

    # --- what a subclass supplies --------------------------------------------------------------------------------
    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """A v for v (n,), (m,)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement matvec")

    def rmatvec(self, u: torch.Tensor) -> torch.Tensor:
        """Aᵀ u for u (m,), (n,); the same as :meth:`matvec` for a symmetric operator."""
        if self.symmetric:
            return self.matvec(u)
        raise NotImplementedError(f"{type(self).__name__} does not implement rmatvec")

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """A V for V (n, k), (m, k): one :meth:`matvec` per column here; subclasses batch it."""
        return torch.stack([self.matvec(V[:, j]) for j in range(V.shape[1])], 1)

    def rmatmat(self, U: torch.Tensor) -> torch.Tensor:
        """Aᵀ U for U (m, k), (n, k): :meth:`matmat` for a symmetric operator, else one :meth:`rmatvec` per column."""
        if self.symmetric:
            return self.matmat(U)
        return torch.stack([self.rmatvec(U[:, j]) for j in range(U.shape[1])], 1)

    # --- derived ---------------------------------------------------------------------------------------------------
    def _tensor(self, x: Any, length: int, what: str) -> torch.Tensor:
        """``x`` as a tensor in this operator's dtype and device, its first axis of ``length``."""
        t = torch.as_tensor(x).to(device=self.device, dtype=self.dtype)
        if t.ndim not in (1, 2) or t.shape[0] != length:
            raise ValueError(f"{what}: must have shape ({length},) or ({length}, k) for an operator of shape "
                             f"{tuple(self.shape)} (got shape {tuple(t.shape)})")
        return t

    def __matmul__(self, x: Any) -> torch.Tensor:
        """A x: :meth:`matvec` for a vector (n,), :meth:`matmat` for a matrix (n, k)."""
        x = self._tensor(x, self.shape[1], "x")
        return self.matvec(x) if x.ndim == 1 else self.matmat(x)

    def __rmatmul__(self, x: Any) -> torch.Tensor:
        """x A = (Aᵀ xᵀ)ᵀ for x (m,) or (k, m)."""
        x = torch.as_tensor(x)
        if x.ndim == 1:
            return self.rmatvec(self._tensor(x, self.shape[0], "x"))
        return self.rmatmat(self._tensor(x.T, self.shape[0], "x")).T

    @property
    def T(self) -> "LinearOperator":
        """The adjoint operator Aᵀ (the operator itself when symmetric)."""
        return self if self.symmetric else _Adjoint(self)

    H = T

    def adjoint(self) -> "LinearOperator":
        """The adjoint operator Aᵀ (real operators: the transpose)."""
        return self.T

    def cast(self, dtype: torch.dtype) -> "LinearOperator":
        """The same operator taking and returning tensors of ``dtype``; products still run in ``self.dtype``
        (float32 products under float64 Krylov arithmetic: ``A.cast(torch.float64)``)."""
        return self if dtype == self.dtype else _Cast(self, dtype)

    def dense(self, block: int = 64) -> torch.Tensor:
        """The (m, n) matrix A = A I, by :meth:`matmat` on ``block`` columns of the identity at a time."""
        n = self.shape[1]
        cols = []
        for j in range(0, n, block):
            E = torch.zeros(n, min(block, n - j), dtype=self.dtype, device=self.device)
            E[torch.arange(j, j + E.shape[1]), torch.arange(E.shape[1])] = 1
            cols.append(self.matmat(E))
        return torch.cat(cols, 1)

    def to_scipy(self, dtype: Any = np.float64):
        """A ``scipy.sparse.linalg.LinearOperator`` with matvec, rmatvec and matmat: NumPy arrays of ``dtype`` in and
        out, products in ``self.dtype`` on ``self.device`` (the module docstring's mixed precision)."""
        from scipy.sparse.linalg import LinearOperator as ScipyOperator

        def run(fn, x):
            out = fn(torch.from_numpy(np.ascontiguousarray(x)).to(device=self.device, dtype=self.dtype))
            return out.detach().cpu().numpy().astype(dtype, copy=False)

        return ScipyOperator(self.shape, dtype=np.dtype(dtype),
                             matvec=lambda v: run(self.matvec, np.asarray(v).reshape(-1)),
                             rmatvec=lambda u: run(self.rmatvec, np.asarray(u).reshape(-1)),
                             matmat=lambda V: run(self.matmat, np.asarray(V)),
                             rmatmat=lambda U: run(self.rmatmat, np.asarray(U)))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of shape {tuple(self.shape)}, {self.dtype}, on {self.device}>"


class _Adjoint(LinearOperator):
    """Aᵀ of a non-symmetric operator A: its products are A's adjoint products."""

    def __init__(self, A: LinearOperator):
        self.A = A
        self.shape = (A.shape[1], A.shape[0])
        self.dtype, self.device = A.dtype, A.device

    def matvec(self, v):
        return self.A.rmatvec(v)

    def rmatvec(self, u):
        return self.A.matvec(u)

    def matmat(self, V):
        return self.A.rmatmat(V)

    def rmatmat(self, U):
        return self.A.matmat(U)

    @property
    def T(self) -> LinearOperator:
        return self.A


class _Cast(LinearOperator):
    """A with vectors of another dtype at its boundary: in → A.dtype → product → out in ``dtype``."""

    def __init__(self, A: LinearOperator, dtype: torch.dtype):
        self.A, self.dtype, self.device = A, dtype, A.device
        self.shape, self.symmetric = A.shape, A.symmetric

    def _via(self, fn, x):
        return fn(x.to(self.A.dtype)).to(self.dtype)

    def matvec(self, v):
        return self._via(self.A.matvec, v)

    def rmatvec(self, u):
        return self._via(self.A.rmatvec, u)

    def matmat(self, V):
        return self._via(self.A.matmat, V)

    def rmatmat(self, U):
        return self._via(self.A.rmatmat, U)
