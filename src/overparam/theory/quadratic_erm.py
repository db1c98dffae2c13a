"""Sharp asymptotics of the nuclear route: ERM of quadratic networks = trace-penalized PSD matrix sensing.

What is implemented (reconstructed from the model of :mod:`overparam.problems.quadratic_net` and checked in the tests
and the study against direct convex solves on the GOE design; the paper's own constants may differ by fixed factors):

**Effective problem.** Spectral denoising Y = S* + δZ, Z a GOE matrix (semicircle on [−2, 2]), estimated by
Ŝ = (Y − θI)₊ (eigenvalues shifted by θ and clipped at 0). The eigenvalue law of Y is ρ_Y = ρ_{S*} ⊞ semicircle(δ²);
G_Y is its Stieltjes transform, h(x) = Re G_Y(x + i0), ρ_Y(x) = |Im G_Y(x + i0)|/π and g(x) = (x − θ)₊. For the
Gaussian teacher (eigenvalues of S* = √κ*·Marchenko–Pastur of ratio 1/κ*) G solves the cubic

    −(δ²/√κ*) G³ + (z/√κ* + δ²) G² − (z + (1 − κ*)/√κ*) G + 1 = 0,

taking the root with the largest |Im G|. The support of ρ_Y is where the cubic's discriminant (a quartic in z) is
negative; integrals over each interval use x = c − r cos t and Gauss–Legendre nodes in t, which absorb the
square-root edges.

**Order parameters** (m here is the overlap, not the width):

    q = ∫ g² dρ_Y,   m = ∫ g(x)(x − 2δ²h(x)) dρ_Y,   D = 2 ∫ g h dρ_Y,   MSE = Q0 − 2m + q,   Q0 = ‖S*‖²_F/d = 1 + κ*.

**Fixed point** in (δ², θ):  δ² = (2·MSE + Δ)/(4α),  θ = λ/(2(2α − D)),  and Σ = D/(4(2α − D));
for each δ² the θ-equation is solved exactly (bracketed root), and δ² by damped iteration followed by a bracketed
root polish; ``RuntimeError`` when it does not converge.

**Outputs**: test error 2·MSE + Δ; training error (2·MSE + Δ)(1 − D/(2α))²; rank fraction ρ_Y((θ, ∞)) (the width
m/d a student needs for the equivalence); Tr Ŝ/d = ∫ g dρ_Y; the spectrum of Ŝ (an atom at 0 and ρ_Y shifted by θ).

**Perfect recovery** (Δ = 0, λ → 0⁺): α_PR(κ*) = κ* − κ*²/2 + min_{τ≥0} [κ*(1 − κ*)τ²/2 +
((1 − κ*)²/2) ∫_τ^2 (x − τ)² dσ_sc(x)] for κ* < 1 and 1/2 for κ* ≥ 1 (dσ_sc the semicircle density on [−2, 2]);
the Bayes-optimal threshold is κ* − κ*²/2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import Polynomial as P
from scipy.integrate import quad
from scipy.optimize import brentq, minimize_scalar

from ..validation import positive

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(160)


# --- the spectrum of Y = S* + δZ ---------------------------------------------------------------------------------
def _cubic_coeffs(z: np.ndarray, kappa: float, delta2: float) -> np.ndarray:
    """Coefficients (highest first) of the cubic in G, one row per z; shape (len(z), 4)."""
    sk = math.sqrt(kappa)
    z = np.asarray(z, dtype=float)
    return np.stack([np.full_like(z, -delta2 / sk), z / sk + delta2, -(z + (1 - kappa) / sk), np.ones_like(z)], 1)


def stieltjes(x: np.ndarray, kappa: float, delta2: float) -> np.ndarray:
    """G_Y(x + i0) on the real line (complex; Im ≤ 0 inside the support), vectorized over x."""
    c = _cubic_coeffs(x, kappa, delta2)
    comp = np.zeros((len(c), 3, 3))
    comp[:, 0, :] = -c[:, 1:] / c[:, :1]
    comp[:, 1, 0] = comp[:, 2, 1] = 1.0
    roots = np.linalg.eigvals(comp)
    pick = np.argmax(np.abs(roots.imag), axis=1)
    G = roots[np.arange(len(x)), pick]
    return np.where(G.imag > 0, np.conj(G), G)


def support(kappa: float, delta2: float) -> list[tuple[float, float]]:
    """Intervals where ρ_Y > 0: where the cubic's discriminant (a quartic in z) is negative."""
    sk = math.sqrt(kappa)
    a, b = P([-delta2 / sk]), P([delta2, 1 / sk])
    c, d = P([-(1 - kappa) / sk, -1.0]), P([1.0])
    disc = 18 * a * b * c * d - 4 * b**3 * d + b**2 * c**2 - 4 * a * c**3 - 27 * a**2 * d**2
    r = np.sort(np.real(disc.roots()[np.abs(disc.roots().imag) < 1e-9 * (1 + np.abs(disc.roots()))]))
    pts = np.unique(np.round(r, 14))
    out = []
    for lo, hi in zip(pts[:-1], pts[1:]):
        if disc((lo + hi) / 2) < 0:
            out.append((float(lo), float(hi)))
    return out


@dataclass(frozen=True)
class Quadrature:
    """Nodes x, weights w (∫ f dρ_Y ≈ Σ w f(x)) and h(x) = Re G_Y at the nodes."""

    x: np.ndarray
    w: np.ndarray
    h: np.ndarray


def spectrum_quadrature(kappa: float, delta2: float) -> Quadrature:
    """Quadrature for ρ_Y = ρ_{S*} ⊞ semicircle(δ²)."""
    xs, ws, hs = [], [], []
    t = 0.5 * math.pi * (_NODES + 1)
    wt = 0.5 * math.pi * _WEIGHTS
    for lo, hi in support(kappa, delta2):
        c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
        x = c - r * np.cos(t)
        G = stieltjes(x, kappa, delta2)
        xs.append(x)
        ws.append(wt * r * np.sin(t) * np.abs(G.imag) / math.pi)
        hs.append(G.real)
    x, w, h = np.concatenate(xs), np.concatenate(ws), np.concatenate(hs)
    return Quadrature(x, w / w.sum(), h)  # renormalise the (≈ 1) total mass


@dataclass(frozen=True)
class OrderParameters:
    q: float
    m: float
    D: float
    mse: float
    rank_fraction: float
    trace: float


def order_parameters(kappa: float, delta2: float, theta: float) -> OrderParameters:
    """q, m, D, MSE, ρ_Y((θ, ∞)) and ∫ g dρ_Y for the denoiser g(x) = (x − θ)₊ at noise δ²."""
    return _order_from(spectrum_quadrature(kappa, delta2), delta2, theta, kappa)


# --- the fixed point -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """Arrays shaped like ``alpha``."""

    mse: np.ndarray
    test_error: np.ndarray
    train_error: np.ndarray
    rank_fraction: np.ndarray
    Sigma: np.ndarray
    trace: np.ndarray
    delta2: np.ndarray
    theta: np.ndarray


def _order_from(Q: Quadrature, delta2: float, theta: float, kappa: float) -> OrderParameters:
    g = np.maximum(Q.x - theta, 0.0)
    q = float(Q.w @ g**2)
    m = float(Q.w @ (g * (Q.x - 2 * delta2 * Q.h)))
    D = float(2 * Q.w @ (g * Q.h))
    return OrderParameters(q, m, D, 1.0 + kappa - 2 * m + q, float(Q.w @ (Q.x > theta)), float(Q.w @ g))


def _theta_for(Q: Quadrature, alpha: float, lam: float) -> float:
    """θ solving θ = λ/(2(2α − D(θ))), i.e. F(θ) = 2θ(2α − D(θ)) − λ = 0; F(0) = −λ < 0 and F grows without
    bound (D(θ) → 0 as θ → ∞), so a bracketed root exists."""
    def F(th: float) -> float:
        D = float(2 * Q.w @ (np.maximum(Q.x - th, 0.0) * Q.h))
        return 2 * th * (2 * alpha - D) - lam
    hi = max(lam / (4 * alpha), 1e-12)
    while F(hi) <= 0:
        hi *= 2
        if hi > 1e12:
            raise RuntimeError("lam: no threshold θ satisfies θ = λ/(2(2α − D))")
    return brentq(F, 0.0, hi, xtol=1e-15, rtol=1e-13, maxiter=500)


def _solve_one(alpha: float, kappa: float, lam: float, noise: float, start: float | None,
               damping: float = 0.7, max_iter: int = 300, tol: float = 1e-11) -> tuple[float, float, OrderParameters]:
    """Fixed point in δ² (θ solved exactly for each δ²): damped iteration, then a bracketed root polish."""
    def T(d2: float) -> tuple[float, float, OrderParameters]:
        Q = spectrum_quadrature(kappa, d2)
        th = _theta_for(Q, alpha, lam)
        op = _order_from(Q, d2, th, kappa)
        return (2 * op.mse + noise) / (4 * alpha), th, op

    d2 = start if start is not None else (2 * (1 + kappa) + noise) / (4 * alpha)
    for _ in range(max_iter):
        nd2 = T(d2)[0]
        if abs(nd2 - d2) <= tol * d2:
            d2 = nd2
            break
        d2 = max((1 - damping) * d2 + damping * nd2, 1e-14)
    res = lambda x: T(math.exp(x))[0] - math.exp(x)  # noqa: E731
    x0 = math.log(d2)
    if abs(res(x0)) > tol * d2:
        lo, hi = x0 - 0.05, x0 + 0.05
        for _ in range(60):
            if res(lo) * res(hi) < 0:
                break
            lo, hi = lo - 0.25, hi + 0.25
        else:
            raise RuntimeError(f"alpha: the fixed point did not converge at α = {alpha:g}, κ* = {kappa:g}, "
                               f"λ = {lam:g}, Δ = {noise:g}")
        x0 = brentq(res, lo, hi, xtol=1e-14, maxiter=500)
        d2 = math.exp(x0)
    nd2, th, op = T(d2)
    if abs(nd2 - d2) > 1e-8 * d2:
        raise RuntimeError(f"alpha: the fixed point did not converge at α = {alpha:g}, κ* = {kappa:g}, λ = {lam:g}, "
                           f"Δ = {noise:g} (residual {abs(nd2 - d2):.2e})")
    if 2 * alpha - op.D <= 0:
        raise RuntimeError(f"alpha: 2α − D = {2 * alpha - op.D:.3g} ≤ 0 at the fixed point (α = {alpha:g})")
    return d2, th, op


def predict(alpha, kappa_star: float, lam: float, noise: float) -> Prediction:
    """Asymptotic errors of ERM (module docstring), vectorized over ``alpha`` (solved in increasing α with warm
    starts). ``ValueError`` naming the parameter for α ≤ 0, κ* ≤ 0, λ ≤ 0 or Δ < 0; ``RuntimeError`` when the fixed
    point does not converge."""
    kappa_star = positive("kappa_star", kappa_star)
    lam = positive("lam", lam)
    noise = positive("noise", noise, allow_zero=True)
    alphas = np.atleast_1d(np.asarray(alpha, dtype=float))
    if np.any(~np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alpha: must be finite and > 0 (got {alphas.min():g})")
    order = np.argsort(alphas)
    out = {k: np.empty_like(alphas) for k in ("mse", "test_error", "train_error", "rank_fraction", "Sigma", "trace",
                                              "delta2", "theta")}
    start = None
    for i in order:
        a = float(alphas[i])
        d2, th, op = _solve_one(a, kappa_star, lam, noise, start)
        start = d2
        test = 2 * op.mse + noise
        out["mse"][i], out["test_error"][i] = op.mse, test
        out["train_error"][i] = test * (1 - op.D / (2 * a)) ** 2
        out["rank_fraction"][i], out["trace"][i] = op.rank_fraction, op.trace
        out["Sigma"][i] = op.D / (4 * (2 * a - op.D))
        out["delta2"][i], out["theta"][i] = d2, th
    shape = np.shape(alpha)
    return Prediction(**{k: v.reshape(shape) for k, v in out.items()})


def learned_spectrum(alpha: float, kappa_star: float, lam: float, noise: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The eigenvalue law of Ŝ: (eigenvalues, quadrature weights) of its continuous part and the atom at 0."""
    p = predict(alpha, kappa_star, lam, noise)
    Q = spectrum_quadrature(kappa_star, float(p.delta2))
    keep = Q.x > float(p.theta)
    return Q.x[keep] - float(p.theta), Q.w[keep], float(1 - Q.w[keep].sum())


# --- perfect recovery ------------------------------------------------------------------------------------------
def _semicircle_tail(tau: float) -> float:
    """∫_τ^2 (x − τ)² dσ_sc(x), σ_sc(x) = √(4 − x²)/(2π)."""
    if tau >= 2:
        return 0.0
    return quad(lambda x: (x - tau) ** 2 * math.sqrt(max(4 - x * x, 0.0)) / (2 * math.pi), max(tau, -2.0), 2.0,
                epsabs=1e-13)[0]


def perfect_recovery_threshold(kappa_star) -> np.ndarray:
    """α_PR(κ*) of the module docstring, vectorized over κ* > 0."""
    ks = np.atleast_1d(np.asarray(kappa_star, dtype=float))
    if np.any(~np.isfinite(ks)) or np.any(ks <= 0):
        raise ValueError(f"kappa_star: must be finite and > 0 (got {ks.min():g})")
    out = np.empty_like(ks)
    for i, k in enumerate(ks):
        if k >= 1:
            out[i] = 0.5
            continue
        f = lambda t: k * (1 - k) * t * t / 2 + (1 - k) ** 2 / 2 * _semicircle_tail(t)  # noqa: E731
        res = minimize_scalar(f, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-12})
        out[i] = k - k * k / 2 + min(res.fun, f(0.0))
    return out.reshape(np.shape(kappa_star))


def bayes_optimal_threshold(kappa_star) -> np.ndarray:
    """κ* − κ*²/2 for κ* < 1, 1/2 beyond."""
    k = np.minimum(np.asarray(kappa_star, dtype=float), 1.0)
    return k - k * k / 2
