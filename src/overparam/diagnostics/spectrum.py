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

from ..validation import POSITIVE, POSITIVE_INT, Array, Integral, Interval, Options, Seed, check, validate_params

_DATA = Array((1, 2), to="numpy")
_KIND = Options(("auto", "matrix", "data"))


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


@validate_params({"data": _DATA, "kind": _KIND})
def _spectrum_of(data, kind: str = "auto") -> np.ndarray:
    """Eigenvalues in decreasing order. ``data``: a 1-D spectrum; a symmetric PSD matrix (covariance or kernel,
    ``kind='matrix'``); or a data matrix X (n, p) whose covariance XᵀX/n is meant (``kind='data'``). ``auto`` takes a
    square symmetric matrix as a matrix and anything else 2-D as data."""
    x = data
    if x.ndim == 1:
        if np.any(x < 0):
            raise ValueError(f"data: a 1-D spectrum must be ≥ 0 (got {x.min():g})")
        lam = x
    else:
        if kind == "matrix" and (x.shape[0] != x.shape[1] or not np.allclose(x, x.T)):
            raise ValueError(f"data: kind='matrix' needs a square symmetric matrix (got shape {x.shape})")
        lam = _covariance_eigenvalues(x) if _is_data(x, kind) else np.linalg.eigvalsh(x)
    return np.sort(lam)[::-1]


def _covariance_eigenvalues(x: np.ndarray) -> np.ndarray:
    """Eigenvalues of XᵀX/n for X (n, p), from the smaller Gram matrix (XᵀX or XXᵀ, one product and one symmetric
    eigensolve: several times cheaper than the SVD of X at n, p in the thousands; eigenvalues below ~1e-15·λ_max lose
    their relative accuracy and are clipped at 0)."""
    G = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    return np.maximum(np.linalg.eigvalsh(G), 0.0) / x.shape[0]


def _is_data(x: np.ndarray, kind: str) -> bool:
    """Whether a 2-D ``x`` is a data matrix (its covariance meant) rather than a symmetric matrix."""
    return kind == "data" or (kind == "auto" and not (x.shape[0] == x.shape[1] and np.allclose(x, x.T)))


def _loglog_fit(k: np.ndarray, lam: np.ndarray) -> tuple[float, float, np.ndarray]:
    A = np.stack([np.ones_like(k), np.log(k)], 1)
    coef, *_ = np.linalg.lstsq(A, np.log(lam), rcond=None)
    resid = np.log(lam) - A @ coef
    return -float(coef[1]), float(np.sqrt(np.mean(resid**2))), resid


def _thin(k_min: int, k_max: int, per_decade: int = 24) -> np.ndarray:
    n = max(8, int(per_decade * np.log10(k_max / k_min)))
    return np.unique(np.round(np.geomspace(k_min, k_max, n)).astype(int))


def _choose_window(lam: np.ndarray, min_decades: float = 1.0, slack: float = 1.25) -> tuple[int, int]:
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


def _window(window, lam: np.ndarray) -> tuple[int, int]:
    """A given fit window (k_min, k_max): integers 1 ≤ k_min < k_max ≤ the number of positive eigenvalues."""
    if not (isinstance(window, (tuple, list)) and len(window) == 2):
        raise ValueError(f"window: must be a pair (k_min, k_max) of ranks (got {window!r})")
    k_min, k_max = (check("window", k, POSITIVE_INT) for k in window)
    K = int(np.sum(lam > 0))
    if not k_min < k_max <= K:
        raise ValueError(f"window: must satisfy 1 ≤ k_min < k_max ≤ {K} (the positive eigenvalues; got {tuple(window)})")
    return k_min, k_max


@validate_params({"data": _DATA, "kind": _KIND, "n_boot": POSITIVE_INT, "seed": Seed(), "min_decades": POSITIVE})
def powerlaw_exponent(data, kind: str = "auto", n_boot: int = 200, seed: int = 0, min_decades: float = 1.0,
                      window: tuple[int, int] | None = None) -> PowerLawFit:
    """Fit λ_k ∝ k^−a to the spectrum of ``data`` (see :func:`_spectrum_of`; NumPy, torch or sequences, computed in
    float64); ``kind`` one of 'auto', 'matrix', 'data'; ``seed`` an int, NumPy or torch Generator; returns
    :class:`PowerLawFit`."""
    lam = _spectrum_of(data, kind)
    k_min, k_max = _window(window, lam) if window is not None else _choose_window(lam, min_decades)
    ks = _thin(k_min, k_max)
    a, rms, resid = _loglog_fit(ks.astype(float), lam[ks - 1])
    rng = np.random.default_rng(seed)
    x = data
    boot = np.empty(n_boot)
    is_data = x.ndim == 2 and _is_data(x, kind)
    for b in range(n_boot):
        if is_data:
            rows = rng.integers(0, x.shape[0], x.shape[0])
            lb = _spectrum_of(x[rows], "data")
            boot[b] = _loglog_fit(ks.astype(float), np.maximum(lb[ks - 1], 1e-300))[0]
        else:
            fitted = np.log(lam[ks - 1]) - resid
            boot[b] = _loglog_fit(ks.astype(float), np.exp(fitted + rng.choice(resid, len(resid))))[0]
    q_lo, q_med, q_hi = np.percentile(boot, [2.5, 50, 97.5])
    # resampled spectra are biased (duplicated rows distort the tail): keep the bootstrap's spread, centred on a
    return PowerLawFit(a, (float(a - (q_med - q_lo)), float(a + (q_hi - q_med))), int(k_min), int(k_max), rms)


# --- the density-tail exponent, fitted directly (Clauset, Shalizi, Newman 2009) ----------------------------------
@dataclass(frozen=True)
class TailFit:
    """p(λ) ∝ λ^−alpha for λ ≥ xmin: the density-tail exponent (WeightWatcher's α), not the rank-decay a."""

    alpha: float  # tail exponent α of the density
    xmin: float  # lower end of the tail, chosen by the least KS distance
    ks_distance: float  # sup |S(λ) − P(λ)| between the empirical and the fitted tail CDFs
    standard_error: float  # (α − 1)/√n_tail, the MLE's asymptotic standard error
    n_tail: int  # eigenvalues ≥ xmin

    @property
    def interval(self) -> tuple[float, float]:
        """α ± 1.96 standard errors."""
        return self.alpha - 1.96 * self.standard_error, self.alpha + 1.96 * self.standard_error

    @property
    def rank_decay(self) -> float:
        """The rank-decay exponent a = 1/(α − 1) a pure power law with this tail would have."""
        return 1.0 / (self.alpha - 1.0)

    def __str__(self) -> str:
        lo, hi = self.interval
        return (f"density-tail exponent α = {self.alpha:.3f} [{lo:.3f}, {hi:.3f}] over {self.n_tail} eigenvalues "
                f"≥ xmin = {self.xmin:.4g} (KS distance {self.ks_distance:.3f}; rank decay 1/(α − 1) = "
                f"{self.rank_decay:.3f})")


def _tail_mle(tail: np.ndarray) -> tuple[float, float]:
    """α̂ = 1 + n / Σ ln(λ_i/xmin) over the tail (xmin = its least value) and the KS distance of that fit."""
    n, xmin = len(tail), tail[0]
    logs = np.log(tail / xmin)
    alpha = 1.0 + n / max(float(logs.sum()), 1e-300)
    empirical = np.arange(n) / n  # P(λ < tail[i]) within the tail, ascending
    fitted = 1.0 - (tail / xmin) ** (1.0 - alpha)
    return alpha, float(np.max(np.abs(empirical - fitted)))


@validate_params({"eigenvalues": Array(1, to="numpy"), "min_tail": Interval(Integral, 3, None, "left")})
def tail_exponent(eigenvalues, min_tail: int = 10) -> TailFit:
    """Fit p(λ) ∝ λ^−α to the largest eigenvalues (NumPy, torch or sequences; float64) by maximum likelihood,
    α̂ = 1 + n_tail / Σ_{λ ≥ xmin} ln(λ/xmin), with xmin the candidate (each eigenvalue leaving ≥ ``min_tail`` in
    the tail) whose fit has the least Kolmogorov–Smirnov distance (Clauset, Shalizi & Newman 2009, eq. 3.1 and
    §3.3; the rule WeightWatcher follows). Standard error (α̂ − 1)/√n_tail (their eq. 3.2)."""
    lam = np.sort(eigenvalues[eigenvalues > 0])
    if np.any(eigenvalues < 0):
        raise ValueError(f"eigenvalues: must be ≥ 0 (got {eigenvalues.min():g})")
    if len(lam) < min_tail:
        raise ValueError(f"eigenvalues: needs at least min_tail = {min_tail} positive values (got {len(lam)})")
    best = None
    for i in range(len(lam) - min_tail + 1):
        if i and lam[i] == lam[i - 1]:
            continue
        alpha, ks = _tail_mle(lam[i:])
        if best is None or ks < best[1]:
            best = (alpha, ks, i)
    alpha, ks, i = best
    n = len(lam) - i
    return TailFit(alpha, float(lam[i]), ks, (alpha - 1.0) / np.sqrt(n), n)


def exponents_disagree(rank: PowerLawFit, tail: TailFit) -> bool:
    """Whether the tail exponent α and 1 + 1/a from the rank-decay fit disagree beyond both intervals (the intervals
    [α ± 1.96 s.e.] and [1 + 1/a_hi, 1 + 1/a_lo] do not overlap): the spectrum is not one pure power law."""
    lo_a, hi_a = rank.interval
    implied = (1.0 + 1.0 / hi_a, 1.0 + 1.0 / lo_a) if lo_a > 0 else (1.0 + 1.0 / hi_a, np.inf)
    lo, hi = tail.interval
    return bool(hi < implied[0] or lo > implied[1])
