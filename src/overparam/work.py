"""Counted work: multiply-adds and rows of C touched, added where the work happens.

A :class:`Work` is handed to (or owned by) the code that multiplies, factorizes or reads rows, and each operation
adds what it costs on its own code path, by these rules:

- sparse (CSR) matrix times a dense (d, k) block: nnz · k multiply-adds; dense (m, n) times (n, k): m · n · k;
- Gram matrix Cᵀ diag(w) C over rows R: dense rows, Σ_{i∈R} (d(d + 1)/2 + d) (a symmetric rank-one update, the
  upper triangle, and one weighting per row); sparse rows, Σ_{i∈R} (nnz_i² + nnz_i) (the general sparse product);
- elementwise scaling of a matrix: one multiply per stored entry;
- LU or Cholesky factorization of a d × d matrix: d³/3; the two triangular solves for k right-hand sides: d² · k;
- Householder QR of an (m, d) matrix: m d² − d³/3.

Vector operations of length n (softmax, activations, residuals) are not counted: a handful per step, each below one
pass over the nonzeros of C. This module has no internal imports: ``problems/`` and ``solvers/`` both add to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Work:
    """Running totals: ``madds`` multiply-adds, ``rows`` rows of C read (with repetition)."""

    madds: float = 0.0
    rows: int = 0

    def add(self, madds: float, rows: int = 0) -> None:
        self.madds += float(madds)
        self.rows += int(rows)

    def product(self, m: int, n: int, k: int, rows: int = 0) -> None:
        """A dense (m, n) @ (n, k) product: m · n · k multiply-adds."""
        self.add(m * n * k, rows)

    def sparse_product(self, nnz: int, k: int, rows: int = 0) -> None:
        """A sparse matrix with ``nnz`` stored entries times k dense columns: nnz · k multiply-adds."""
        self.add(nnz * k, rows)

    def factor_solve(self, d: int, k: int = 1) -> None:
        """LU/Cholesky of a d × d matrix (d³/3) and the triangular solves for k right-hand sides (d² · k)."""
        self.add(d**3 / 3 + d * d * k)

    def qr(self, m: int, d: int) -> None:
        """Householder QR of an (m, d) matrix, m ≥ d: m d² − d³/3."""
        self.add(m * d * d - d**3 / 3)

    def copy(self) -> "Work":
        return Work(self.madds, self.rows)

    def __sub__(self, other: "Work") -> "Work":
        return Work(self.madds - other.madds, self.rows - other.rows)


__all__ = ["Work"]
