"""The trace of a symmetric operator from products alone, with a stated error.

- :func:`hutchinson`: tr(H) ≈ (1/m) Σ_i z_iᵀ H z_i over m Rademacher probes (E zzᵀ = I); its standard error is the
  sample standard deviation of z_iᵀ H z_i over √m. The variance of one probe is 2(‖H‖_F² − Σ_i H_ii²).
- :func:`hutchpp`: Hutch++ (Meyer, Musco, Musco, Woodruff 2021): with S, G (n × m/3) Rademacher, Q an orthonormal
  basis of H S, tr(H) = tr(Qᵀ H Q) + tr((I − QQᵀ) H (I − QQᵀ)); the first term exactly (m/3 products), the second
  by Hutchinson with the probes (I − QQᵀ) g (m/3 products). Its error is that of the second term only, which the
  top of the spectrum (deflated by Q) no longer dominates: O(1/m) relative error against Hutchinson's O(1/√m) for
  a matrix with a decaying spectrum. Standard error as for Hutchinson, of the deflated term.

Any operator :func:`overparam.diagnostics.lanczos` accepts works (``matvec``, a size, ``dtype``, ``device``); blocks of
probes go through its ``matmat`` where it has one (batched products). The probes, the products, Hutch++'s QR and
its deflation run in the operator's dtype (float32 or float64; ±1 probes are exact in both), the quadratic forms'
sums in float64: in float32 a Householder Q is orthonormal to about 1e-6 and each form carries a relative rounding
of about 1e-6, far below the stated error of any estimate from fewer than 10⁶ probes (at 10⁶ parameters this saves
the float64 copies of every block and halves the QR's time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..validation import Interval, Integral, POSITIVE_INT, Seed, validate_params
from .krylov import OPERATOR, Counted, rademacher, size


@dataclass
class TraceEstimate:
    """An estimate of tr(H) with its standard error across probes (the exact part of Hutch++ has none) and the
    products used."""

    trace: float
    stderr: float
    products: int
    n_probe: int


def _work_dtype(H: Any) -> torch.dtype:
    """The dtype the estimators work in: the operator's, at least float32 (module docstring)."""
    return torch.promote_types(getattr(H, "dtype", torch.float64), torch.float32)


def _quadratic_forms(op: Counted, Z: torch.Tensor) -> np.ndarray:
    """z_iᵀ H z_i for the columns of Z (one batched product H Z where the operator has ``matmat``), summed in
    float64."""
    return (Z * op.matmat(Z, Z.dtype)).sum(0, dtype=torch.float64).cpu().numpy()


def _mean_and_stderr(samples: np.ndarray) -> tuple[float, float]:
    m = len(samples)
    return float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(m)) if m > 1 else math.inf


@validate_params({"H": OPERATOR, "n_probe": POSITIVE_INT, "seed": Seed(to="torch")})
def hutchinson(H: Any, n_probe: int = 30, seed: int = 0) -> TraceEstimate:
    """tr(H) ≈ (1/m) Σ z_iᵀ H z_i over ``n_probe`` = m Rademacher probes (module docstring); ``stderr`` = s/√m."""
    op = Counted(H)
    q = _quadratic_forms(op, rademacher(op.n, n_probe, seed, getattr(H, "device", "cpu"), _work_dtype(H)))
    mean, se = _mean_and_stderr(q)
    return TraceEstimate(mean, se, op.products, n_probe)


@validate_params({"H": OPERATOR, "n_products": Interval(Integral, 6, None, "left"), "seed": Seed(to="torch")})
def hutchpp(H: Any, n_products: int = 60, seed: int = 0) -> TraceEstimate:
    """Hutch++ with about ``n_products`` products (module docstring): tr(QᵀHQ) + Hutchinson on (I − QQᵀ)H(I − QQᵀ),
    Q from k = n_products/3 products, k exact products QᵀHQ and the rest as probes; ``stderr`` of the deflated part."""
    op = Counted(H)
    n, device, dtype = op.n, getattr(H, "device", "cpu"), _work_dtype(H)
    k = min(n_products // 3, n)
    S = rademacher(n, k, seed, device, dtype)
    Q, _ = torch.linalg.qr(op.matmat(S, dtype))
    top = float(_quadratic_forms(op, Q).sum())
    G = rademacher(n, max(n_products - 2 * k, 2), seed, device, dtype)
    G = G - Q @ (Q.T @ G)
    rest, se = _mean_and_stderr(_quadratic_forms(op, G))
    return TraceEstimate(top + rest, se, op.products, G.shape[1])
