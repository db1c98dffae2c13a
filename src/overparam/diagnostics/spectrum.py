"""Power-law exponent of a spectrum, a covariance, a kernel or a data matrix.

Two exponents are in use and are easy to confuse; this module reports both, by name:

- **rank decay** ``a``: λ_k ∝ k^−a, the k-th largest eigenvalue (the α of ridge theory, λ_i = i^−α);
- **density tail** ``1 + 1/a``: p(λ) ∝ λ^−(1+1/a) for the eigenvalue density (the α WeightWatcher reports).

The fit is least squares of log λ_k on log k over a window [k_min, k_max] chosen automatically: among windows at least
``min_decades`` wide, the widest whose residual RMS is within ``slack`` of the best; points are thinned to be evenly
spaced in log k so that the tail does not outvote the head. The interval is the spread of a bootstrap (centred on the estimate, since resampled spectra are biased) over the rows of the data
matrix (when one is given) or over the fit's residuals (for a bare spectrum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..validation import finite_array, positive_int


@dataclass(frozen=True)
class PowerLawFit:
    exponent: float  # rank-decay a: λ_k ∝ k^−a
    interval: tuple[float, float]  # bootstrap percentile interval of ``exponent``
    k_min: int
    k_max: int  # fit window, 1-based ranks
    rms: float  # residual RMS of the log-log fit

    @property
    def tail_exponent(self) -> float:
        """The density-tail exponent 1 + 1/a (p(λ) ∝ λ^−(1+1/a)), WeightWatcher's α."""
        return 1.0 + 1.0 / self.exponent

    def __str__(self) -> str:
        lo, hi = self.interval
        return (f"rank-decay exponent a = {self.exponent:.3f} [{lo:.3f}, {hi:.3f}] over ranks {self.k_min}..{self.k_max}"
                f" (density-tail exponent 1 + 1/a = {self.tail_exponent:.3f})")


def spectrum_of(data, kind: str = "auto") -> np.ndarray:
    """Eigenvalues in decreasing order. ``data``: a 1-D spectrum; a symmetric PSD matrix (covariance or kernel,
    ``kind='matrix'``); or a data matrix X (n, p) whose covariance XᵀX/n is meant (``kind='data'``). ``auto`` takes a
    square symmetric matrix as a matrix and anything else 2-D as data."""
    x = data.detach().cpu().double().numpy() if isinstance(data, torch.Tensor) else np.asarray(data, dtype=float)
    finite_array("data", x)
    if x.ndim == 1:
        lam = x
    elif x.ndim == 2:
        if kind == "auto":
            kind = "matrix" if x.shape[0] == x.shape[1] and np.allclose(x, x.T) else "data"
        lam = np.linalg.eigvalsh(x) if kind == "matrix" else np.linalg.svd(x, compute_uv=False) ** 2 / x.shape[0]
    else:
        raise ValueError(f"data: must be 1-D (a spectrum) or 2-D, got shape {x.shape}")
    return np.sort(lam)[::-1]


def _loglog_fit(k: np.ndarray, lam: np.ndarray) -> tuple[float, float, np.ndarray]:
    A = np.stack([np.ones_like(k), np.log(k)], 1)
    coef, *_ = np.linalg.lstsq(A, np.log(lam), rcond=None)
    resid = np.log(lam) - A @ coef
    return -float(coef[1]), float(np.sqrt(np.mean(resid**2))), resid


def _thin(k_min: int, k_max: int, per_decade: int = 24) -> np.ndarray:
    n = max(8, int(per_decade * np.log10(k_max / k_min)))
    return np.unique(np.round(np.geomspace(k_min, k_max, n)).astype(int))


def choose_window(lam: np.ndarray, min_decades: float = 1.0, slack: float = 1.25) -> tuple[int, int]:
    """The fit window [k_min, k_max] (1-based) described in the module docstring."""
    K = int(np.sum(lam > lam[0] * 1e-14))
    if K < 10:
        raise ValueError(f"data: needs at least 10 positive eigenvalues for a power-law fit, got {K}")
    min_decades = min(min_decades, 0.9 * np.log10(K))
    cands = []
    for k_min in (1, 2, 3, 5, 8, 13, 21):
        for k_max in np.unique(np.round(np.geomspace(max(k_min * 10 ** min_decades, k_min + 5), K, 16)).astype(int)):
            if k_max > K or np.log10(k_max / k_min) < min_decades - 1e-9:
                continue
            ks = _thin(k_min, int(k_max))
            _, rms, _ = _loglog_fit(ks.astype(float), lam[ks - 1])
            cands.append((rms, k_min, int(k_max)))
    best = min(c[0] for c in cands)
    ok = [c for c in cands if c[0] <= slack * best + 1e-3]
    _, k_min, k_max = max(ok, key=lambda c: (np.log10(c[2] / c[1]), -c[0]))
    return k_min, k_max


def powerlaw_exponent(data, kind: str = "auto", n_boot: int = 200, seed: int = 0, min_decades: float = 1.0,
                      window: tuple[int, int] | None = None) -> PowerLawFit:
    """Fit λ_k ∝ k^−a to the spectrum of ``data`` (see :func:`spectrum_of`); returns :class:`PowerLawFit`."""
    n_boot = positive_int("n_boot", n_boot)
    lam = spectrum_of(data, kind)
    k_min, k_max = window or choose_window(lam, min_decades)
    ks = _thin(k_min, k_max)
    a, rms, resid = _loglog_fit(ks.astype(float), lam[ks - 1])
    rng = np.random.default_rng(seed)
    x = data.detach().cpu().double().numpy() if isinstance(data, torch.Tensor) else np.asarray(data, dtype=float)
    boot = np.empty(n_boot)
    is_data = x.ndim == 2 and (kind == "data" or (kind == "auto" and not (x.shape[0] == x.shape[1]
                                                                          and np.allclose(x, x.T))))
    for b in range(n_boot):
        if is_data:
            rows = rng.integers(0, x.shape[0], x.shape[0])
            lb = spectrum_of(x[rows], "data")
            boot[b] = _loglog_fit(ks.astype(float), np.maximum(lb[ks - 1], 1e-300))[0]
        else:
            fitted = np.log(lam[ks - 1]) - resid
            boot[b] = _loglog_fit(ks.astype(float), np.exp(fitted + rng.choice(resid, len(resid))))[0]
    q_lo, q_med, q_hi = np.percentile(boot, [2.5, 50, 97.5])
    # resampled spectra are biased (duplicated rows distort the tail): keep the bootstrap's spread, centred on a
    return PowerLawFit(a, (float(a - (q_med - q_lo)), float(a + (q_hi - q_med))), int(k_min), int(k_max), rms)
