"""Sharp asymptotics of the nuclear route: ERM of quadratic networks = trace-penalized PSD matrix sensing.

Source: V. Erba, E. Troiani, L. Zdeborová, F. Krzakala, *The Nuclear Route: Sharp Asymptotics of ERM in
Overparameterized Quadratic Networks*, arXiv:2505.17958 (2025): the equivalence with nuclear-norm sensing, the
spectral-denoising effective problem, the fixed point and the perfect-recovery threshold. The paper's equation numbers
differ between its versions (v1–v3), so the equations are labelled here, (Q1)–(Q6), and cited by those labels;
the subordination equations for a general teacher are (S1)–(S5) of :mod:`.free_convolution` (Biane 1997).

What is implemented (reconstructed from the model of :mod:`overparam.problems.quadratic_net` and checked in the tests
and the study against direct convex solves on the GOE design; the paper's own constants may differ by fixed factors):

**Effective problem.** Spectral denoising Y = S* + δZ, Z a GOE matrix (semicircle on [−2, 2]), estimated by
Ŝ = (Y − θI)₊ (eigenvalues shifted by θ and clipped at 0). The eigenvalue law of Y is ρ_Y = ρ_{S*} ⊞ semicircle(δ²);
G_Y is its Stieltjes transform, h(x) = Re G_Y(x + i0), ρ_Y(x) = |Im G_Y(x + i0)|/π and g(x) = (x − θ)₊. For the
Gaussian teacher (eigenvalues of S* = √κ*·Marchenko–Pastur of ratio 1/κ*) G solves the cubic

    (Q1)  −(δ²/√κ*) G³ + (z/√κ* + δ²) G² − (z + (1 − κ*)/√κ*) G + 1 = 0,

taking the root with the largest |Im G|. The support of ρ_Y is where the cubic's discriminant (a quartic in z) is
negative; integrals over each interval use x = c − r cos t and Gauss–Legendre nodes in t, which absorb the
square-root edges; each interval is cut into panels at −2δ, 0, 2δ, 4δ, at the real parts of the discriminant's complex
roots (where ρ_Y nearly splits in two, a dip) and, for integrals of (x − θ)₊ or 1{x > θ},
at θ, so that no panel integrates a kink, a step or the narrow bump of the teacher's smoothed atom at 0.

**Any teacher.** For a teacher given by the eigenvalues of S* (``teacher_spectrum``), ρ_Y is the free convolution
of their empirical law with the semicircle of variance δ², computed by subordination (Biane 1997; equations (S1)–(S5)
of :mod:`.free_convolution`): G_Y(z) = G_{S*}(z − δ²G_Y(z)), the support found component by component (every bump),
integrals on panels in the subordination variable u; Q0 = ∫ s² dρ_{S*}. Everything below is unchanged.

**Order parameters** (m here is the overlap, not the width):

    (Q2)  q = ∫ g² dρ_Y,   m = ∫ g(x)(x − 2δ²h(x)) dρ_Y,   D = 2 ∫ g h dρ_Y,   MSE = Q0 − 2m + q,

Q0 = ‖S*‖²_F/d (= 1 + κ* for the Wishart teacher).

**Fixed point** in (δ², θ), (Q3):  δ² = (2·MSE + Δ)/(4α),  θ = λ/(2(2α − D)),  and Σ = D/(4(2α − D));
for each δ² the θ-equation is solved exactly (bracketed root), and δ² by secant steps on log δ² (falling back to a
damped iteration and a bracketed root polish); ``RuntimeError`` when it does not converge.

**Outputs** (Q4): test error 2·MSE + Δ; training error (2·MSE + Δ)(1 − D/(2α))²; rank fraction ρ_Y((θ, ∞)) (the width
m/d a student needs for the equivalence); Tr Ŝ/d = ∫ g dρ_Y; (Q5) the spectrum of Ŝ (an atom at 0 and ρ_Y shifted
by θ).

**Perfect recovery** (Δ = 0, λ → 0⁺), (Q6): α_PR(κ*) = κ* − κ*²/2 + min_{τ≥0} [κ*(1 − κ*)τ²/2 +
((1 − κ*)²/2) ∫_τ^2 (x − τ)² dσ_sc(x)] for κ* < 1 and 1/2 for κ* ≥ 1 (dσ_sc the semicircle density on [−2, 2]);
the Bayes-optimal threshold is κ* − κ*²/2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as npp
from scipy.integrate import quad
from scipy.optimize import brentq, minimize_scalar

from ..validation import POSITIVE, Array, validate_params, positive
from . import _wishart_batch
from . import free_convolution as fc

# per panel; 64 nodes (96 before: 100-α curves at four (κ*, λ, Δ) move by ≤ 1e-10 relative, the nodes cost a third less)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)


# --- the spectrum of Y = S* + δZ ---------------------------------------------------------------------------------
def stieltjes(x: np.ndarray, kappa: float, delta2: float) -> np.ndarray:
    """G_Y(x + i0) on the real line (complex; Im ≤ 0 inside the support), vectorized over x: the root of the cubic
    (Q1) with the largest |Im G| (closed form, :func:`._wishart_batch.stieltjes`)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    return _wishart_batch.stieltjes(x, kappa, np.full_like(x, delta2))


def _discriminant(kappa: float, delta2: float) -> np.ndarray:
    """Coefficients (lowest degree first) of the cubic's discriminant, a quartic in z
    (:func:`._wishart_batch.discriminant`)."""
    return _wishart_batch.discriminant(kappa, np.array([float(delta2)]))[0]


def _disc_roots(kappa: float, delta2: float) -> tuple[np.ndarray, np.ndarray]:
    """The quartic discriminant's coefficients and roots."""
    disc = _discriminant(kappa, delta2)
    return disc, npp.polyroots(disc)


def dips(kappa: float, delta2: float) -> list[float]:
    """Real parts of the discriminant's complex roots: where ρ_Y nearly splits into two intervals (a complex pair
    close to the axis), the density dips almost to 0 over a width of the order of the imaginary part, which
    Gauss–Legendre nodes resolve only when a panel ends there (without that cut, at κ* = 0.5, δ² = 0.0214 the mass
    is off by 3e-6 and D by 6e-5 against adaptive quadrature)."""
    roots = _disc_roots(kappa, delta2)[1]
    return sorted({float(r.real) for r in roots if abs(r.imag) >= 1e-9 * (1 + abs(r))})


def support(kappa: float, delta2: float) -> list[tuple[float, float]]:
    """Intervals where ρ_Y > 0: where the cubic's discriminant (a quartic in z) is negative."""
    disc, roots = _disc_roots(kappa, delta2)
    r = np.sort(np.real(roots[np.abs(roots.imag) < 1e-9 * (1 + np.abs(roots))]))
    pts = np.unique(np.round(r, 14))
    mids = 0.5 * (pts[:-1] + pts[1:])
    return [(float(lo), float(hi)) for lo, hi, v in zip(pts[:-1], pts[1:], npp.polyval(mids, disc)) if v < 0]


@dataclass(frozen=True)
class Quadrature:
    """Nodes x, weights w (∫ f dρ_Y ≈ Σ w f(x)) and h(x) = Re G_Y at the nodes."""

    x: np.ndarray
    w: np.ndarray
    h: np.ndarray


def _nodes_on(lo: float, hi: float, kappa: float, delta2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unnormalised nodes, weights and Re G_Y on [lo, hi] ⊂ supp ρ_Y: x = c − r cos t, Gauss–Legendre in t ∈ [0, π].

    ∫_lo^hi f(x) ρ_Y(x) dx = ∫_0^π f(x(t)) ρ_Y(x(t)) r sin t dt; the Jacobian r sin t cancels the square-root edges,
    and at an interior end (a split point) the integrand stays smooth in t."""
    t = 0.5 * math.pi * (_NODES + 1)
    wt = 0.5 * math.pi * _WEIGHTS
    c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
    x = c - r * np.cos(t)
    G = stieltjes(x, kappa, delta2)
    return x, wt * r * np.sin(t) * np.abs(G.imag) / math.pi, G.real


def _quadrature(kappa: float, delta2: float, above: float, mass: float,
                intervals: list[tuple[float, float]], splits: list[float]) -> Quadrature:
    """Nodes on supp ρ_Y ∩ [above, ∞) (``intervals`` = the support), each interval cut at ``above``, weights divided
    by ``mass``. Panels also end at −2δ, 0, 2δ and 4δ: for κ* < 1 the teacher's atom at 0 (mass 1 − κ*), smoothed by
    the semicircle of radius 2δ, is a narrow bump that one panel over the whole interval resolves only to ~1e-4; and at
    the near-splitting dips of ρ_Y (``splits``, :func:`dips`, found once per law)."""
    xs, ws, hs = [np.empty(0)], [np.empty(0)], [np.empty(0)]
    delta = math.sqrt(delta2)
    inner = sorted([-2 * delta, 0.0, 2 * delta, 4 * delta] + splits)
    for lo, hi in intervals:
        lo = max(lo, above)
        cuts = [lo] + [c for c in inner if lo < c < hi] + [hi]
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b > a:
                x, w, h = _nodes_on(a, b, kappa, delta2)
                xs.append(x), ws.append(w), hs.append(h)
    return Quadrature(np.concatenate(xs), np.concatenate(ws) / mass, np.concatenate(hs))


@dataclass(frozen=True)
class _Law:
    """ρ_Y at one (κ*, δ²): its support, total quadrature mass (≈ 1) and the quadrature on the whole support."""

    kappa: float
    delta2: float
    intervals: list[tuple[float, float]]
    splits: list[float]
    mass: float
    full: Quadrature

    @classmethod
    def of(cls, kappa: float, delta2: float) -> "_Law":
        intervals, splits = support(kappa, delta2), dips(kappa, delta2)
        full = _quadrature(kappa, delta2, -math.inf, 1.0, intervals, splits)
        mass = float(full.w.sum())  # ≈ 1; renormalised so that the total mass is exactly 1
        return cls(kappa, delta2, intervals, splits, mass, Quadrature(full.x, full.w / mass, full.h))

    def above(self, theta: float) -> Quadrature:
        """Nodes on supp ρ_Y ∩ [θ, ∞), the support cut at θ."""
        return _quadrature(self.kappa, self.delta2, theta, self.mass, self.intervals, self.splits)


@dataclass(frozen=True)
class _SpectrumLaw:
    """ρ_Y = ρ_{S*} ⊞ semicircle(δ²) for a discrete teacher spectrum (:mod:`.free_convolution`, subordination): the
    same interface as :class:`_Law`, on the u-panels of the free convolution."""

    spec: fc.DiscreteSpectrum
    delta2: float
    panels: list
    mass: float
    full: Quadrature

    @classmethod
    def of(cls, spec: fc.DiscreteSpectrum, delta2: float) -> "_SpectrumLaw":
        ps = fc.panels(spec, delta2)
        x, w, h = (np.concatenate([getattr(p, k) for p in ps]) for k in ("x", "w", "h"))
        mass = float(w.sum())
        return cls(spec, delta2, ps, mass, Quadrature(x, w / mass, h))

    @property
    def intervals(self) -> list[tuple[float, float]]:
        return fc.support(self.spec, self.delta2)

    def above(self, theta: float) -> Quadrature:
        """Nodes on supp ρ_Y ∩ [θ, ∞): the panels above θ whole, the one holding θ cut at ψ⁻¹(θ)."""
        xs, ws, hs = [np.empty(0)], [np.empty(0)], [np.empty(0)]
        for p in self.panels:
            if p.x_lo >= theta:
                xs.append(p.x), ws.append(p.w), hs.append(p.h)
            elif p.x_hi > theta:
                x, w, h = fc.cut_panel(p, theta, self.spec, self.delta2)
                xs.append(x), ws.append(w), hs.append(h)
        return Quadrature(np.concatenate(xs), np.concatenate(ws) / self.mass, np.concatenate(hs))


@validate_params({"kappa": POSITIVE, "delta2": POSITIVE})
def spectrum_quadrature(kappa: float, delta2: float, above: float | None = None) -> Quadrature:
    """Quadrature for ρ_Y = ρ_{S*} ⊞ semicircle(δ²), renormalised to total mass 1; with ``above`` = θ, only for its
    part on [θ, ∞), the support cut at θ so that integrals of (x − θ)₊ and of the step 1{x > θ} are integrals of
    smooth functions (nodes on the whole support integrate the kink or the step with an error up to half a node
    weight, ≈ 0.016 for the rank fraction at κ* = 0.3)."""
    law = _Law.of(kappa, delta2)
    return law.full if above is None else law.above(above)


def spectral_density(x: np.ndarray, kappa: float, delta2: float) -> np.ndarray:
    """ρ_Y(x) = |Im G_Y(x + i0)|/π, vectorized over x (0 outside the support)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    return np.abs(stieltjes(x, kappa, delta2).imag) / math.pi


@dataclass(frozen=True)
class OrderParameters:
    q: float
    m: float
    D: float
    mse: float
    rank_fraction: float
    trace: float


def order_parameters(kappa: float, delta2: float, theta: float) -> OrderParameters:
    """q, m, D, MSE (Q2), ρ_Y((θ, ∞)) and ∫ g dρ_Y for the denoiser g(x) = (x − θ)₊ at noise δ²."""
    return _order_from(spectrum_quadrature(kappa, delta2, above=theta), delta2, theta, 1.0 + kappa)


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


def _order_from(Q: Quadrature, delta2: float, theta: float, Q0: float) -> OrderParameters:
    """The order parameters from a quadrature ``Q`` of ρ_Y on [θ, ∞) (``spectrum_quadrature(…, above=θ)``):
    q = ∫ g², m = ∫ g(x − 2δ²h), D = 2∫ g h, MSE = Q0 − 2m + q, ρ_Y((θ, ∞)) = Σ w and Tr Ŝ/d = ∫ g, g = (x − θ)₊."""
    g = np.maximum(Q.x - theta, 0.0)
    q = float(Q.w @ g**2)
    m = float(Q.w @ (g * (Q.x - 2 * delta2 * Q.h)))
    D = float(2 * Q.w @ (g * Q.h))
    return OrderParameters(q, m, D, Q0 - 2 * m + q, float(Q.w.sum()), float(Q.w @ g))


def _root_of(F, lo: float, hi: float) -> float:
    return brentq(F, lo, hi, xtol=1e-15, rtol=1e-13, maxiter=500)


def _theta_for(law: _Law, alpha: float, lam: float) -> float:
    """θ solving θ = λ/(2(2α − D(θ))), i.e. F(θ) = 2θ(2α − D(θ)) − λ = 0; F(0) = −λ < 0 and F grows without
    bound (D(θ) → 0 as θ → ∞), so a bracketed root exists. D(θ) = 2∫_θ^∞ (x − θ) h dρ_Y on nodes cut at θ; the
    root is first located with the (cheap, kinked) quadrature on the whole support and then refined in a bracket
    around it."""
    Q = law.full

    def F0(th: float) -> float:
        return 2 * th * (2 * alpha - float(2 * Q.w @ (np.maximum(Q.x - th, 0.0) * Q.h))) - lam

    def F(th: float) -> float:
        A = law.above(th)
        return 2 * th * (2 * alpha - float(2 * A.w @ ((A.x - th) * A.h))) - lam
    hi = max(lam / (4 * alpha), 1e-12)
    while F0(hi) <= 0 or F(hi) <= 0:
        hi *= 2
        if hi > 1e12:
            raise RuntimeError("lam: no threshold θ satisfies θ = λ/(2(2α − D))")
    th0 = _root_of(F0, 0.0, hi)
    th = _theta_newton(law, alpha, lam, th0)
    if th is not None:
        return th
    lo_b, hi_b = th0 * (1 - 1e-3), min(th0 * (1 + 1e-3), hi)
    if F(lo_b) < 0 < F(hi_b):
        return _root_of(F, lo_b, hi_b)
    return _root_of(F, 0.0, hi)


def _theta_newton(law, alpha: float, lam: float, th: float, steps: int = 8) -> float | None:
    """Newton steps on F(θ) = 2θ(2α − D(θ)) − λ from θ₀ with the exact slope F'(θ) = 2(2α − D) + 4θ∫_θ^∞ h dρ_Y
    (dD/dθ = −2∫_θ^∞ h dρ_Y: the derivative of (x − θ)₊ is −1{x > θ}), each on nodes cut at θ; None unless it
    converges to |Δθ| ≤ 1e-14·θ with θ > 0 (the caller then brackets)."""
    for _ in range(steps):
        A = law.above(th)
        D = float(2 * A.w @ ((A.x - th) * A.h))
        slope = 2 * (2 * alpha - D) + 4 * th * float(A.w @ A.h)
        if not slope > 0:
            return None
        step = (2 * th * (2 * alpha - D) - lam) / slope
        th -= step
        if not th > 0:
            return None
        if abs(step) <= 1e-14 * th:
            return th
    return None


@dataclass(frozen=True)
class _Teacher:
    """What the fixed point needs of a teacher: the law of Y at δ², Q0 = ∫ s² dρ_{S*} and a label for messages."""

    law_of: object  # callable δ² → _Law | _SpectrumLaw
    Q0: float
    label: str
    moments: object  # callable (δ², θ) arrays → (sums, ok), for the whole-grid solver (:mod:`._wishart_batch`)


def _teacher(kappa_star, teacher_spectrum) -> _Teacher:
    """Exactly one of κ* (the Wishart teacher, Q0 = 1 + κ*) and the eigenvalues of S* (Q0 = Σ s²/d)."""
    if (kappa_star is None) == (teacher_spectrum is None):
        got = "both" if kappa_star is not None else "neither"
        raise ValueError(f"teacher_spectrum: give exactly one of kappa_star and teacher_spectrum (got {got})")
    if kappa_star is not None:
        k = positive("kappa_star", kappa_star)
        return _Teacher(lambda d2: _Law.of(k, d2), 1.0 + k, f"κ* = {k:g}", _wishart_batch._wishart_moments(k))
    spec = fc.DiscreteSpectrum.of(teacher_spectrum, "teacher_spectrum")
    positive("teacher_spectrum", spec.s[0], allow_zero=True)  # S* ⪰ 0: its smallest eigenvalue
    return _Teacher(lambda d2: _SpectrumLaw.of(spec, d2), spec.second_moment,
                    f"a teacher spectrum of {len(spec.s)} atoms", _wishart_batch.spectrum_moments(spec))


def _secant(r, x0: float, tol: float, max_iter: int = 30) -> tuple[float, bool]:
    """Secant steps on r(x) = log T(eˣ) − x (x = log δ²) from x0 and x0 + r(x0) (one fixed-point step); returns
    (δ², converged). Steps are capped at 1 in log δ²; a caller falls back to the damped iteration when it stalls."""
    try:
        r0 = r(x0)
        x1 = x0 + max(-1.0, min(1.0, r0))
        for _ in range(max_iter):
            r1 = r(x1)
            if abs(r1) <= tol:
                return math.exp(x1), True
            if r1 == r0:
                break
            step = -r1 * (x1 - x0) / (r1 - r0)
            x0, r0, x1 = x1, r1, x1 + max(-1.0, min(1.0, step))
    except (RuntimeError, ValueError, OverflowError):
        pass
    return math.exp(x0), False


def _solve_one(alpha: float, teacher: _Teacher, lam: float, noise: float, start: float | None,
               damping: float = 0.7, max_iter: int = 300, tol: float = 1e-11) -> tuple[float, float, OrderParameters]:
    """Fixed point in δ² (θ solved exactly for each δ²): damped iteration (from a cold start), then a bracketed
    root polish in log δ² (directly from a warm start)."""
    def T(d2: float) -> tuple[float, float, OrderParameters]:
        law = teacher.law_of(d2)
        th = _theta_for(law, alpha, lam)
        op = _order_from(law.above(th), d2, th, teacher.Q0)
        return (2 * op.mse + noise) / (4 * alpha), th, op

    where = f"α = {alpha:g}, {teacher.label}, λ = {lam:g}, Δ = {noise:g}"
    d2 = start if start is not None else (2 * teacher.Q0 + noise) / (4 * alpha)
    d2, done = _secant(lambda x: math.log(T(math.exp(x))[0]) - x, math.log(d2), tol)
    for _ in range(max_iter if not done and start is None else 0):  # a warm start (the previous α) goes straight to the polish
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
            raise RuntimeError(f"alpha: the fixed point did not converge at {where}")
        x0 = brentq(res, lo, hi, xtol=1e-14, maxiter=500)
        d2 = math.exp(x0)
    nd2, th, op = T(d2)
    if abs(nd2 - d2) > 1e-8 * d2:
        raise RuntimeError(f"alpha: the fixed point did not converge at {where} (residual {abs(nd2 - d2):.2e})")
    if 2 * alpha - op.D <= 0:
        raise RuntimeError(f"alpha: 2α − D = {2 * alpha - op.D:.3g} ≤ 0 at the fixed point ({where})")
    return d2, th, op


@validate_params({"alpha": Array(elements=POSITIVE, to="numpy")})
def predict(alpha, kappa_star: float | None = None, lam: float | None = None, noise: float | None = None,
            teacher_spectrum=None) -> Prediction:
    """Asymptotic errors of ERM (module docstring: the fixed point (Q3) of (Q2), outputs (Q4)), vectorized over
    ``alpha`` (the whole grid at once by a joint Newton iteration, :mod:`._wishart_batch`, for a teacher spectrum on
    contour integrals, (S6)–(S8) of :mod:`.free_convolution`; points it leaves one α at a time in increasing α with
    warm starts), for the Wishart teacher of width κ*d (``kappa_star``) or any teacher given by the eigenvalues of S*
    (``teacher_spectrum``, array or tensor, in the problem's normalization: for the Wishart teacher those of
    W*ᵀW*/√(m* d); Q0 = ∫ s² dρ_{S*}; ρ_Y by subordination, :mod:`.free_convolution`). Exactly one of the two.
    ``ValueError`` naming the parameter for α ≤ 0, κ* ≤ 0, λ ≤ 0, Δ < 0, a negative/NaN eigenvalue or an empty
    spectrum; ``RuntimeError`` when the fixed point does not converge."""
    teacher = _teacher(kappa_star, teacher_spectrum)
    lam = positive("lam", lam)
    noise = positive("noise", noise, allow_zero=True)
    alphas = np.atleast_1d(np.asarray(alpha, dtype=float))
    if np.any(~np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alpha: must be finite and > 0 (got {alphas.min():g})")
    flat = alphas.ravel()
    mse, D, rank, trace = (np.empty_like(flat) for _ in range(4))
    d2s, ths = np.empty_like(flat), np.empty_like(flat)
    done = np.zeros(len(flat), bool)
    # the whole grid at once (:mod:`._wishart_batch`); what it leaves, one at a time
    d2s[:], ths[:], o, done = _wishart_batch.solve_law(flat, teacher.moments, teacher.Q0, lam, noise)
    mse[:], D[:], rank[:], trace[:] = o["mse"], o["D"], o["rank_fraction"], o["trace"]
    start = None
    for i in np.argsort(flat):
        if done[i]:
            start = d2s[i]
            continue
        d2s[i], ths[i], op = _solve_one(float(flat[i]), teacher, lam, noise, start)
        start = d2s[i]
        mse[i], D[i], rank[i], trace[i] = op.mse, op.D, op.rank_fraction, op.trace
    test = 2 * mse + noise
    out = {"mse": mse, "test_error": test, "train_error": test * (1 - D / (2 * flat)) ** 2, "rank_fraction": rank,
           "Sigma": D / (4 * (2 * flat - D)), "trace": trace, "delta2": d2s, "theta": ths}
    shape = np.shape(alpha)
    return Prediction(**{k: v.reshape(shape) for k, v in out.items()})


def learned_spectrum(alpha: float, kappa_star: float | None = None, lam: float | None = None,
                     noise: float | None = None, teacher_spectrum=None) -> tuple[np.ndarray, np.ndarray, float]:
    """The eigenvalue law of Ŝ = (Y − θ)₊ (Q5): (eigenvalues, quadrature weights) of its continuous part and the
    atom at
    0, for the Wishart teacher (``kappa_star``) or a teacher spectrum (exactly one, as in :func:`predict`)."""
    teacher = _teacher(kappa_star, teacher_spectrum)
    p = predict(alpha, kappa_star, lam, noise, teacher_spectrum)
    Q = teacher.law_of(float(p.delta2)).above(float(p.theta))
    return Q.x - float(p.theta), Q.w, float(1 - Q.w.sum())


def learned_spectrum_cdf(x, alpha: float, kappa_star: float | None = None, lam: float | None = None,
                         noise: float | None = None, teacher_spectrum=None) -> np.ndarray:
    """P(eigenvalue of Ŝ ≤ x) = 1 − ρ_Y((θ + x, ∞)) for x ≥ 0 (Ŝ = (Y − θ)₊, so its atom at 0 is ρ_Y((−∞, θ])),
    vectorized over x; each mass on nodes cut at θ + x."""
    teacher = _teacher(kappa_star, teacher_spectrum)
    p = predict(alpha, kappa_star, lam, noise, teacher_spectrum)
    law = teacher.law_of(float(p.delta2))
    xs = np.atleast_1d(np.asarray(x, dtype=float))
    return np.array([1.0 - float(law.above(float(p.theta) + max(v, 0.0)).w.sum()) for v in xs]).reshape(np.shape(x))


# --- perfect recovery ------------------------------------------------------------------------------------------
def _semicircle_tail(tau: float) -> float:
    """∫_τ^2 (x − τ)² dσ_sc(x), σ_sc(x) = √(4 − x²)/(2π)."""
    if tau >= 2:
        return 0.0
    return quad(lambda x: (x - tau) ** 2 * math.sqrt(max(4 - x * x, 0.0)) / (2 * math.pi), max(tau, -2.0), 2.0,
                epsabs=1e-13)[0]


def perfect_recovery_threshold(kappa_star) -> np.ndarray:
    """α_PR(κ*) of (Q6) in the module docstring, vectorized over κ* > 0."""
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


@validate_params({"kappa_star": Array(elements=POSITIVE, to="numpy")})
def bayes_optimal_threshold(kappa_star) -> np.ndarray:
    """The Bayes-optimal perfect-recovery threshold κ* − κ*²/2 for κ* < 1, 1/2 beyond (no Bayes-optimal error
    formula is implemented: the study shows ERM beside this threshold, it does not claim a Bayes-optimal error)."""
    k = np.minimum(np.asarray(kappa_star, dtype=float), 1.0)
    return k - k * k / 2
