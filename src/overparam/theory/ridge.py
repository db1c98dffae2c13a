"""What theory predicts for ridge regression: deterministic equivalents and the power-law limit. No sampling.

**Deterministic equivalent** (any spectrum λ_i of Σ, target coordinates b_i of β* in Σ's eigenbasis, noise σ², n
samples, ridge objective (1/n)‖Xβ − y‖² + λ‖β‖²). The effective regularization κ > 0 solves

    λ = κ (1 − df1(κ)/n),    df1(κ) = Σ_i λ_i/(λ_i + κ),   df2(κ) = Σ_i λ_i²/(λ_i + κ)²,

and then

    test error  R = (κ² Σ_i λ_i b_i²/(λ_i + κ)² + σ²) / (1 − df2/n)        (includes the noise σ²)
    bias        = κ² Σ_i λ_i b_i²/(λ_i + κ)² / (1 − df2/n),   variance = σ² df2/n / (1 − df2/n)
    train error = (λ/κ)² R
    E‖β̂‖²      = Σ_i λ_i² b_i²/(λ_i + κ)² + (Σ_i λ_i/(λ_i + κ)²)/n · R.

For p > n, λ → 0⁺ gives the minimum-norm interpolator: κ solves df1(κ) = n.

**Power-law limit** (λ_i = i^−α, α > 1, p = n/γ, n → ∞, κ = k n^−α, and any target of bounded norm): with

    I(k) = ∫₀^{1/γ} dt/(1 + k t^α) = (1/γ) ₂F₁(1, 1/α; 1 + 1/α; −k γ^−α),
    J(k) = ∫₀^{1/γ} dt/(1 + k t^α)² = (1/γ) ₂F₁(2, 1/α; 1 + 1/α; −k γ^−α),

test error σ²/(1 − J), train error σ²(1 − I)²/(1 − J), penalty λ = k(1 − I) n^−α and
E‖β̂‖² ≈ n^α σ²(I − J)/(k(1 − J)). The curve runs over k ≥ k_crit, I(k_crit) = 1 (ridgeless interpolation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import hyp2f1

from ..validation import (NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, Interval, Real, check, validate_params)

#: the parameters shared by the deterministic-equivalent functions
_DE_PARAMS = {"spectrum": Array(1, elements=POSITIVE, to="numpy"),
              "target_coefficients": Array(shape=("spectrum",), to="numpy"),
              "sigma2": NON_NEGATIVE, "n": POSITIVE_INT}
_POWERLAW_PARAMS = {"alpha": Interval(Real, 1, None), "gamma": Interval(Real, 0, 1)}


@dataclass(frozen=True)
class DeterministicEquivalent:
    """Arrays shaped like ``lam``."""

    kappa: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    norm2: np.ndarray
    bias: np.ndarray
    variance: np.ndarray


def _kappa(spectrum: np.ndarray, lam: float, n: int) -> float:
    """Solve λ = κ(1 − df1(κ)/n) for κ > 0 (unique root; see module docstring)."""
    def g(log_k: float) -> float:
        k = math.exp(log_k)
        return k * (1.0 - float(np.sum(spectrum / (spectrum + k))) / n) - lam

    k_hi = lam + float(spectrum.sum()) / n  # κ ≤ λ + Σλ_i/n
    a = math.log(max(k_hi, 1e-300)) - 80.0
    if g(a) >= 0:  # p ≤ n and λ = 0: κ → 0
        return 0.0 if lam == 0 else math.exp(a)
    return math.exp(brentq(g, a, math.log(k_hi) + 1e-12, xtol=1e-14, rtol=1e-14, maxiter=500))


@validate_params({**_DE_PARAMS, "lam": Array(elements=NON_NEGATIVE, to="numpy")})
def deterministic_equivalent(spectrum, target_coefficients, sigma2: float, lam, n: int) -> DeterministicEquivalent:
    """Deterministic equivalent of ridge (module docstring), vectorized over ``lam``.

    spectrum (p,) of Σ's eigenvalues, each > 0; target_coefficients (p,) the b_i (pass √E b_i² for a random target);
    sigma2 ≥ 0 the noise variance; lam a scalar or array of penalties ≥ 0; n the sample size. Any array type
    (NumPy, torch, sequence), computed in float64; results are NumPy arrays shaped like ``lam``.
    """
    spec, b2 = spectrum, target_coefficients ** 2
    lam_arr = np.atleast_1d(lam)
    out = {k: np.empty_like(lam_arr) for k in ("kappa", "train_error", "test_error", "norm2", "bias", "variance")}
    for j, lj in enumerate(lam_arr):
        k = _kappa(spec, float(lj), n)
        w = spec / (spec + k)
        df2 = float(np.sum(w**2))
        denom = 1.0 - df2 / n
        bias_num = k**2 * float(np.sum(spec * b2 / (spec + k) ** 2))
        test = (bias_num + sigma2) / denom
        out["kappa"][j] = k
        out["test_error"][j] = test
        out["bias"][j] = bias_num / denom
        out["variance"][j] = sigma2 * df2 / n / denom
        out["train_error"][j] = (lj / k) ** 2 * test if k > 0 else 0.0
        out["norm2"][j] = float(np.sum(w**2 * b2)) + float(np.sum(spec / (spec + k) ** 2)) / n * test
    shape = lam.shape
    return DeterministicEquivalent(**{k: v.reshape(shape) for k, v in out.items()})


@validate_params({**_DE_PARAMS, "tau": POSITIVE})
def lambda_for_train_error_theory(spectrum, target_coefficients, sigma2: float, tau: float, n: int) -> float:
    """The penalty λ at which the deterministic equivalent's training error equals ``tau`` > 0 (``ValueError``
    naming ``tau`` when no λ attains it)."""
    def f(log_l: float) -> float:
        return float(deterministic_equivalent(spectrum, target_coefficients, sigma2, math.exp(log_l), n)
                     .train_error) - tau
    spec = spectrum
    lo, hi = math.log(spec.min() * 1e-8), math.log(spec.sum() * 1e4)
    if f(lo) > 0 or f(hi) < 0:
        raise ValueError(f"tau: must be a training error the deterministic equivalent attains on λ ∈ "
                         f"[{math.exp(lo):.3g}, {math.exp(hi):.3g}] (got {tau:.4g})")
    return math.exp(brentq(f, lo, hi, xtol=1e-12, maxiter=500))


# --- power-law limit -------------------------------------------------------------------------------------------
def powerlaw_I(k, alpha: float, gamma: float) -> np.ndarray:
    """I(k) = ∫₀^{1/γ} dt/(1 + k t^α), closed form through ₂F₁; vectorized over k ≥ 0."""
    T = 1.0 / gamma
    return T * hyp2f1(1.0, 1.0 / alpha, 1.0 + 1.0 / alpha, -np.asarray(k, dtype=float) * T**alpha)


def powerlaw_J(k, alpha: float, gamma: float) -> np.ndarray:
    """J(k) = ∫₀^{1/γ} dt/(1 + k t^α)², closed form through ₂F₁; vectorized over k ≥ 0."""
    T = 1.0 / gamma
    return T * hyp2f1(2.0, 1.0 / alpha, 1.0 + 1.0 / alpha, -np.asarray(k, dtype=float) * T**alpha)


@dataclass(frozen=True)
class Threshold:
    k_crit: float
    test_error: float


@validate_params({**_POWERLAW_PARAMS, "sigma2": NON_NEGATIVE})
def powerlaw_interpolation_threshold(alpha: float, gamma: float, sigma2: float = 1.0) -> Threshold:
    """k_crit with I(k_crit) = 1 (ridgeless interpolation) and its test error σ²/(1 − J(k_crit)); α > 1,
    γ ∈ (0, 1), σ² ≥ 0."""
    f = lambda lk: float(powerlaw_I(math.exp(lk), alpha, gamma)) - 1.0  # noqa: E731 (decreasing in k)
    lo, hi = -60.0, 60.0
    k = math.exp(brentq(f, lo, hi, xtol=1e-14, maxiter=500))
    return Threshold(k, sigma2 / (1.0 - float(powerlaw_J(k, alpha, gamma))))


@dataclass(frozen=True)
class Tradeoff:
    """Arrays shaped like ``tau``."""

    k: np.ndarray
    penalty: np.ndarray  # k(1 − I); the ridge λ is penalty · n^−α
    train_error: np.ndarray
    test_error: np.ndarray
    norm2_over_n_alpha: np.ndarray


@validate_params({**_POWERLAW_PARAMS, "sigma2": POSITIVE, "tau": Array(to="numpy")})
def powerlaw_tradeoff(alpha: float, gamma: float, tau, sigma2: float = 1.0) -> Tradeoff:
    """The asymptotic train/test trade-off at training errors ``tau`` ∈ (0, σ²) (vectorized over tau; arrays shaped
    like ``tau``)."""
    taus = np.atleast_1d(check("tau", tau, Array(elements=Interval(Real, 0, sigma2))))
    k_crit = powerlaw_interpolation_threshold(alpha, gamma).k_crit

    def train(lk: float) -> float:
        k = math.exp(lk)
        I, J = float(powerlaw_I(k, alpha, gamma)), float(powerlaw_J(k, alpha, gamma))
        return sigma2 * (1 - I) ** 2 / (1 - J)

    ks = np.empty_like(taus)
    lo = math.log(k_crit)
    for j, t in enumerate(taus):
        hi = lo + 1.0
        while train(hi) < t:
            hi += 2.0
        ks[j] = math.exp(brentq(lambda lk: train(lk) - t, lo, hi, xtol=1e-13, maxiter=500))
    I, J = powerlaw_I(ks, alpha, gamma), powerlaw_J(ks, alpha, gamma)
    shape = tau.shape
    return Tradeoff(ks.reshape(shape), (ks * (1 - I)).reshape(shape),
                    (sigma2 * (1 - I) ** 2 / (1 - J)).reshape(shape), (sigma2 / (1 - J)).reshape(shape),
                    (sigma2 * (I - J) / (ks * (1 - J))).reshape(shape))
