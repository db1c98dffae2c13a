"""Leverage scores and row sampling for sketched second-order methods.

Leverage scores of A (n, d): τ_i = a_iᵀ(AᵀA)⁺a_i (they sum to rank A). Sketched (Drineas et al. 2012): R from a QR of
S·A with a sparse sign sketch S (k₁ = 4d rows, one ±1 per input row: O(nnz(A))), then τ_i ≈ ‖a_iᵀ R⁻¹ Π‖² with a
Gaussian Π (d, k₂)/√k₂ (O(nnz(A)·k₂ + d³)). Sampling s rows i.i.d. with p_i ∝ τ_i (mixed with 10 % uniform) and
reweighting by 1/(s p_i) gives Ãᵀ D̃ Ã with E = AᵀDA and (1 ± ε₀) spectral accuracy once s ≳ d log d / ε₀².
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..validation import positive, positive_int
from ..work import Work


def _as_dense_or_sparse(A):
    return A.tocsr() if sp.issparse(A) else np.asarray(A, dtype=float)


def leverage_scores(A, sketch: bool = True, k2: int = 32, seed: int = 0, work: Work | None = None) -> np.ndarray:
    """τ_i of the rows of A (dense array or scipy sparse), exact (QR) or sketched; shape (n,).

    ``work`` (optional) receives the multiply-adds: sketched, nnz(A) for S·A, k₁d² − d³/3 for its QR, d³/3 + d²k₂ for
    R⁻¹Π, nnz(A)·k₂ for A(R⁻¹Π) and n·k₂ for the row norms; exact, the QR of A."""
    A = _as_dense_or_sparse(A)
    n, d = A.shape
    work = work if work is not None else Work()
    nnz = int(A.nnz) if sp.issparse(A) else n * d
    rng = np.random.default_rng(seed)
    if not sketch:
        Ad = A.toarray() if sp.issparse(A) else A
        work.qr(n, d)
        work.add(n * d, n)
        Q, _ = np.linalg.qr(Ad)
        return (Q * Q).sum(1)
    k1 = min(n, 4 * d)
    S = sp.csr_matrix((rng.choice([-1.0, 1.0], n), (rng.integers(0, k1, n), np.arange(n))), shape=(k1, n))
    work.add(nnz, n)  # S·A: each row of A added once (± sign) into one row of the sketch
    SA = S @ A
    SA = SA.toarray() if sp.issparse(SA) else SA
    work.qr(k1, d)
    _, R = np.linalg.qr(SA)
    diag = np.abs(np.diag(R))
    R = R + np.diag(np.where(diag < 1e-12 * max(diag.max(), 1e-300), 1e-12 * max(diag.max(), 1.0), 0.0))
    Pi = rng.standard_normal((d, k2)) / math.sqrt(k2)
    work.factor_solve(d, k2)
    Z = np.linalg.solve(R, Pi)  # R⁻¹Π
    work.sparse_product(nnz, k2, n)
    work.add(n * k2)  # squared row norms of AZ
    AZ = A @ Z
    return np.asarray((AZ * AZ).sum(1)).ravel()


def samples_for(eps0: float, d: int, c: float = 1.0) -> int:
    """s = ⌈c · d log d / ε₀²⌉, the sample size for (1 ± ε₀) spectral accuracy (up to the constant c)."""
    eps0 = positive("eps0", eps0)
    d = positive_int("d", d)
    return int(math.ceil(c * d * max(math.log(d), 1.0) / eps0**2))


def sample_rows(scores: np.ndarray, s: int, d: int, rng: np.random.Generator,
                uniform_mix: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """s row indices drawn i.i.d. with p ∝ (1 − mix)·τ/Στ + mix/n, and their weights 1/(s p_i).

    ``ValueError`` naming ``s`` when s < d (the sample could not be spectrally accurate)."""
    s = positive_int("s", s)
    if s < d:
        raise ValueError(f"s: {s} sampled rows are fewer than d = {d}; the sampled Hessian would be singular")
    n = len(scores)
    p = (1 - uniform_mix) * scores / max(scores.sum(), 1e-300) + uniform_mix / n
    p = p / p.sum()
    idx = rng.choice(n, size=s, replace=True, p=p)
    return idx, 1.0 / (s * p[idx])
