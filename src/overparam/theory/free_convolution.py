"""Free convolution of a discrete spectrum with the semicircle, by subordination (Biane 1997).

ρ_S = Σ_k w_k δ_{s_k} (distinct atoms s_1 < … < s_N, weights w_k > 0 summing to 1), σ_t the semicircle law of
variance t (on [−2√t, 2√t]); ρ_Y = ρ_S ⊞ σ_t is the eigenvalue law of Y = S + √t·Z, Z a GOE matrix (semicircle on
[−2, 2]). Its Stieltjes transform G_Y(z) = ∫ dρ_Y(x)/(z − x) is subordinate to G_S (Biane, *On the free convolution
with a semi-circular distribution*, Indiana Univ. Math. J. 46 (1997), and Pastur's equation):

    (S1)  G_Y(z) = G_S(ω(z)),   ω(z) = z − t·G_Y(z),   G_S(ω) = Σ_k w_k/(ω − s_k),

so z = H(ω) := ω + t·G_S(ω). On the real line write ω(x + i0) = u + iv, v ≥ 0. Biane's Lemma 2 / Prop. 2:

    (S2)  v(u) = the v ≥ 0 with  Σ_k w_k/((u − s_k)² + v²) = 1/t   where f(u) := Σ_k w_k/(u − s_k)² > 1/t, else 0;
    (S3)  x = ψ(u) := u + t·Σ_k w_k (u − s_k)/((u − s_k)² + v(u)²)   is an increasing homeomorphism of ℝ;
    (S4)  ρ_Y(ψ(u)) = v(u)/(π t),   Re G_Y(ψ(u)) = (ψ(u) − u)/t.

So supp ρ_Y = ψ({u : f(u) > 1/t}) (closure). Between two atoms f is convex (a sum of w/(u − s)²) with a single
minimum u*_k (the root of Σ w_k/(u − s_k)³ = 0, independent of t); the gap (s_k, s_{k+1}) opens a gap of ρ_Y iff
f(u*_k) < 1/t, and then its two ends are the roots of f(u) = 1/t on each side of u*_k. Outside [s_1, s_N] f is
monotone, giving the outer edges. Every connected component (every "bump") of ρ_Y is found this way — the isolated
top eigenvalues of a power-law teacher each give their own.

**Integrals** ∫ F dρ_Y are computed in u: ∫ F(x) ρ_Y(x) dx = ∫ F(ψ(u)) (v/(πt)) ψ'(u) du with (differentiating
H(u + iv(u)) ∈ ℝ, writing ω = u + iv)

    (S5)  ψ'(u) = 2t (v² F₄ + F₃²/F₄),   F₄ = Σ w_k/|ω − s_k|⁴,   F₃ = Σ w_k (u − s_k)/|ω − s_k|⁴,

finite and positive up to the edges, where v ∝ √(u − u_edge): the substitution u = c − r cos τ with Gauss–Legendre
nodes in τ makes the integrand smooth. Panels end at the component's edges, at the atoms next to a gap that is
nearly open (where v dips) and are otherwise of equal length.

**Off the real line, for a whole grid of (t, θ) at once** (what the fixed point of :mod:`.quadratic_erm` needs: integrals
of ρ_Y and of h·ρ_Y = −Im(G_Y²)/(2π) below a cut θ). For Im z > 0, ω(z) is the unique root in ℂ⁺ of

    (S6)  H(ω) := ω + t·G_S(ω) = z      (Im H(ω) = Im ω·(1 − t Σ w_k/|ω − s_k|²), so a root with Im ω > 0 lies in
                                          Biane's domain, where H is a bijection onto ℂ⁺),

and G_Y(z) = (z − ω)/t. Since G_Y is analytic in ℂ⁺, continuous up to ℝ, and real left of the support, for a
polynomial P and L < inf supp ρ_Y

    (S7)  ∫_{x<θ} P ρ_Y dx = −(1/π) Im ∫_Γ P(z) G_Y(z) dz,   ∫_{x<θ} P h ρ_Y dx = −(1/(2π)) Im ∫_Γ P(z) G_Y(z)² dz,

Γ any path from L to θ through ℂ⁺ (here half an ellipse, tanh–sinh nodes in its angle, which cluster at θ where G_Y
is only as smooth as ρ_Y is near θ). ω is followed along Γ by Newton steps on (S6) from the top of the ellipse (where
the iteration G ← G_S(z − tG) contracts by ≤ 1/4), each node started from its neighbour's root. At fixed z,

    (S8)  ∂G_Y/∂t = −G_Y·G_S'(ω)/(1 + t·G_S'(ω))     (differentiating G = G_S(z − tG)).

The integrals above θ are the whole line's minus these: ∫ρ_Y = 1, ∫x ρ_Y = m₁, ∫x² ρ_Y = m₂ + t (the semicircle's only
free cumulant is t), ∫h ρ_Y = 0 and ∫x h ρ_Y = 1/2 (h = π·Hilbert transform of ρ_Y: ∫∫ρ(x)ρ(y)·x/(x − y) =
½∫∫ρρ by antisymmetry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..validation import finite_array

# per panel: 64 nodes (32 left the fixed point of a 400-atom power law off by up to 1.5e-5 in the MSE, against
# 2e-9 at 64 and the contour integrals (S7); the moments of the test suite move by ≤ 3e-10 from 64 to 96 nodes)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_PANELS = 4  # equal panels per component besides the cuts at nearly open gaps
_NEAR = 16.0  # a gap with f(u*) < _NEAR/t is "nearly open": its atoms end panels
# tanh–sinh nodes on the contour Γ of (S7): k·h for |k| ≤ 30, h = 0.107 (at 100 α of a 400-atom power law the
# integrals move by ≤ 2e-13 from n = 30 to n = 80; 5e-11 at n = 24, 1e-9 at n = 20)
_TS_N, _TS_H = 30, 3.2 / 30


@dataclass(frozen=True)
class DiscreteSpectrum:
    """Distinct atoms ``s`` (sorted, shape (N,)), weights ``w`` (sum 1) and, per gap between neighbours, the
    minimiser ``gap_u`` of f(u) = Σ w/(u − s)² and ``gap_f`` = f(gap_u) (shape (N − 1,)); they do not depend on t
    and are computed on first use (the real-line panels need them, the contour integrals (S7) do not)."""

    s: np.ndarray
    w: np.ndarray

    @cached_property
    def gap_u(self) -> np.ndarray:
        return _gap_minima(self.s, self.w)

    @cached_property
    def gap_f(self) -> np.ndarray:
        return _f(self.gap_u, self.s, self.w)

    @classmethod
    def of(cls, eigenvalues, name: str = "teacher_spectrum") -> "DiscreteSpectrum":
        """From eigenvalues (repeats merge into one atom with their multiplicity). ``ValueError('name: …')`` for an
        empty array or a NaN/inf entry."""
        ev = np.asarray(eigenvalues.detach().cpu() if hasattr(eigenvalues, "detach") else eigenvalues, dtype=float)
        ev = ev.ravel()
        if ev.size == 0:
            raise ValueError(f"{name}: must hold at least one eigenvalue (got an empty array)")
        finite_array(name, ev)
        s, counts = np.unique(ev, return_counts=True)
        return cls(s, counts / counts.sum())

    @property
    def mean(self) -> float:
        return float(self.w @ self.s)

    @property
    def second_moment(self) -> float:
        """∫ s² dρ_S (= ‖S‖²_F/d for the eigenvalues of S)."""
        return float(self.w @ self.s**2)


def _f(u: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """f(u) = Σ_k w_k/(u − s_k)², vectorized over u."""
    with np.errstate(divide="ignore"):
        return (w / (u[..., None] - s) ** 2).sum(-1)


def _bisect(g, lo: np.ndarray, hi: np.ndarray, iters: int = 80) -> np.ndarray:
    """Vectorized bisection for g(lo) > 0 > g(hi) (either orientation of lo < hi)."""
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        pos = g(mid) > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return 0.5 * (lo + hi)


def _gap_minima(s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Root of Σ w_k/(u − s_k)³ on each (s_k, s_{k+1}): it decreases from +∞ to −∞ there (its derivative is
    −3Σ w/(u − s)⁴ < 0), so bisection on the fraction p ∈ (0, 1) of the gap finds it."""
    if len(s) < 2:
        return np.empty(0)
    a, b = s[:-1], s[1:]

    def g(p):
        return (w / ((a + p * (b - a))[:, None] - s) ** 3).sum(-1)
    p = _bisect(g, np.zeros_like(a), np.ones_like(a), iters=60)
    return a + p * (b - a)


def support_u(spec: DiscreteSpectrum, t: float) -> list[tuple[float, float]]:
    """The components {u : f(u) > 1/t} (S2), as closed intervals in u, sorted."""
    s, w = spec.s, spec.w
    level = 1.0 / t
    open_gaps = np.flatnonzero(spec.gap_f < level)

    def g(u):
        return _f(u, s, w) - level
    # outer edges: f < 1/t beyond √t from the extreme atoms (f ≤ 1/(u − s)² there)
    left = _bisect(lambda u: -g(u), np.array([s[0] - 1.01 * math.sqrt(t)]), np.array([s[0]]))[0]
    right = _bisect(g, np.array([s[-1]]), np.array([s[-1] + 1.01 * math.sqrt(t)]))[0]
    ends = _bisect(g, s[open_gaps], spec.gap_u[open_gaps])  # f decreases from +∞ to f(u*) < 1/t
    starts = _bisect(lambda u: -g(u), spec.gap_u[open_gaps], s[open_gaps + 1])
    lows, highs = [left, *starts.tolist()], [*ends.tolist(), right]
    return [(float(a), float(b)) for a, b in zip(lows, highs)]


def imag_omega(u: np.ndarray, spec: DiscreteSpectrum, t: float) -> np.ndarray:
    """v(u) of (S2) (0 outside the components), vectorized over u: Newton on y = v² for
    φ(y) = 1/Σ w/((u − s)² + y) − t, increasing and concave in y (a weighted harmonic mean of (u − s)² + y), so
    Newton from y = 0 (where φ < 0 inside) rises monotonically to the root; stops at |φ| ≤ 1e-14·t (8 steps
    typically)."""
    u = np.asarray(u, dtype=float)
    a = (u[..., None] - spec.s) ** 2
    k = a.argmin(-1)
    # at an atom (a = 0) the root is ≥ t·w_k (φ(y) ≤ y/w_k − t): start at half of that, still below the root
    y = np.where(np.take_along_axis(a, k[..., None], -1)[..., 0] == 0, 0.5 * t * spec.w[k], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = _f(u, spec.s, spec.w) > 1.0 / t
        for _ in range(100):
            r = spec.w / (a + y[..., None])
            S1, S2 = r.sum(-1), (r * r / spec.w).sum(-1)
            phi = 1.0 / S1 - t
            active = inside & (phi < -1e-14 * t)
            if not active.any():
                break
            y = y + np.where(active, np.nan_to_num(-phi * S1 * S1 / S2), 0.0)
    return np.sqrt(np.maximum(y, 0.0))


def psi(u: np.ndarray, spec: DiscreteSpectrum, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(x = ψ(u) of (S3), v(u)), vectorized over u."""
    v = imag_omega(u, spec, t)
    du = np.asarray(u, dtype=float)[..., None] - spec.s
    with np.errstate(divide="ignore", invalid="ignore"):
        x = u + t * np.nan_to_num((spec.w * du / (du**2 + v[..., None] ** 2))).sum(-1)
    return x, v


def _dpsi(u: np.ndarray, v: np.ndarray, spec: DiscreteSpectrum, t: float) -> np.ndarray:
    """ψ'(u) of (S5), vectorized over u (with v = v(u))."""
    du = u[..., None] - spec.s
    m4 = spec.w / (du**2 + v[..., None] ** 2) ** 2
    F4, F3 = m4.sum(-1), (m4 * du).sum(-1)
    return 2 * t * (v * v * F4 + F3 * F3 / F4)


def _panel(a, b, spec: DiscreteSpectrum, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes x, weights (of ρ_Y dx), h = Re G_Y and the nodes u on the u-panels [a, b] (S4, S5); ``a``, ``b``
    scalars or arrays of P panels (nodes then shaped (P, K))."""
    tau = 0.5 * math.pi * (_NODES + 1)
    a, b = np.asarray(a, dtype=float)[..., None], np.asarray(b, dtype=float)[..., None]
    c, r = 0.5 * (a + b), 0.5 * (b - a)
    u = c - r * np.cos(tau)
    x, v = psi(u, spec, t)
    w = 0.5 * math.pi * _WEIGHTS * r * np.sin(tau) * v / (math.pi * t) * _dpsi(u, v, spec, t)
    return x, w, (x - u) / t, u


def _breaks(a: float, b: float, spec: DiscreteSpectrum, t: float) -> list[float]:
    """Panel ends in the component [a, b]: its ends, the atoms beside a nearly open gap, and equal cuts."""
    inside = (spec.gap_u > a) & (spec.gap_u < b) & (spec.gap_f < _NEAR / t)
    k = np.flatnonzero(inside)
    near = np.concatenate([spec.s[k], spec.s[k + 1]]) if len(k) else np.empty(0)
    n_eq = _PANELS if np.count_nonzero((spec.s > a) & (spec.s < b)) > 1 else 1  # one panel for a lone atom
    pts = np.unique(np.concatenate([[a, b], np.linspace(a, b, n_eq + 1), near]))
    return pts[(pts >= a) & (pts <= b)].tolist()


@dataclass(frozen=True)
class Panel:
    """A u-panel [u_lo, u_hi] of one component, its image [x_lo, x_hi] and its nodes."""

    u_lo: float
    u_hi: float
    x_lo: float
    x_hi: float
    x: np.ndarray
    w: np.ndarray
    h: np.ndarray
    u: np.ndarray


def panels(spec: DiscreteSpectrum, t: float) -> list[Panel]:
    """Quadrature panels covering supp ρ_Y, sorted in x (all nodes computed in one batch)."""
    lo, hi = [], []
    for a, b in support_u(spec, t):
        br = _breaks(a, b, spec, t)
        lo += br[:-1]
        hi += br[1:]
    lo, hi = np.asarray(lo), np.asarray(hi)
    xe = psi(np.concatenate([lo, hi]), spec, t)[0]
    x, w, h, u = _panel(lo, hi, spec, t)
    n = len(lo)
    return [Panel(float(lo[i]), float(hi[i]), float(xe[i]), float(xe[n + i]), x[i], w[i], h[i], u[i])
            for i in range(n)]


def inverse_psi(x: float, p: Panel, spec: DiscreteSpectrum, t: float) -> float:
    """u = ψ⁻¹(x) inside panel ``p`` (x_lo ≤ x ≤ x_hi): interpolation on the panel's nodes, then safeguarded Newton
    steps with ψ' of (S5) (ψ increases, so the bracket [u_lo, u_hi] shrinks around the root)."""
    lo, hi = p.u_lo, p.u_hi
    u = float(np.interp(x, np.concatenate([[p.x_lo], p.x, [p.x_hi]]), np.concatenate([[lo], p.u, [hi]])))
    for _ in range(50):
        xu, v = psi(np.array([u]), spec, t)
        f = float(xu[0]) - x
        if abs(f) <= 1e-14 * max(1.0, abs(x)):
            break
        lo, hi = (u, hi) if f < 0 else (lo, u)
        step = f / float(_dpsi(np.array([u]), v, spec, t)[0])
        u = u - step if lo < u - step < hi else 0.5 * (lo + hi)
    return u


def cut_panel(p: Panel, theta: float, spec: DiscreteSpectrum, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (x, w, h) of the part of panel ``p`` above x = θ (x_lo < θ < x_hi)."""
    return _panel(inverse_psi(theta, p, spec, t), p.u_hi, spec, t)[:3]


def support(spec: DiscreteSpectrum, t: float) -> list[tuple[float, float]]:
    """supp ρ_Y as x-intervals: the images of the u-components under ψ (at their ends v = 0, ψ(u) = u + t G_S(u))."""
    out = []
    for a, b in support_u(spec, t):
        xa, xb = psi(np.array([a, b]), spec, t)[0]
        out.append((float(xa), float(xb)))
    return out


def stieltjes_at(u: np.ndarray, spec: DiscreteSpectrum, t: float) -> np.ndarray:
    """G_Y(ψ(u) + i0) = G_S(u + i v(u)) (S1), complex, vectorized over u."""
    v = imag_omega(u, spec, t)
    return (spec.w / ((np.asarray(u)[..., None] + 1j * v[..., None]) - spec.s)).sum(-1)


def density(x: np.ndarray, spec: DiscreteSpectrum, t: float) -> np.ndarray:
    """ρ_Y(x) (S4), vectorized over x: u = ψ⁻¹(x) by bisection on each component, v(u)/(πt); 0 off the support."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    out = np.zeros_like(x)
    for (ua, ub), (xa, xb) in zip(support_u(spec, t), support(spec, t)):
        k = (x > xa) & (x < xb)
        if k.any():
            u = _bisect(lambda uu: x[k] - psi(uu, spec, t)[0], np.full(k.sum(), ua), np.full(k.sum(), ub), 64)
            out[k] = imag_omega(u, spec, t) / (math.pi * t)
    return out


# --- off the real line: (S6)–(S8), vectorized over a grid of (t, θ) ---------------------------------------------
def _tanh_sinh(n: int = _TS_N, h: float = _TS_H) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes τ ∈ (0, 1), 1 − τ (accurate where τ → 1) and weights of the tanh–sinh rule on [0, 1], shape (2n + 1,)."""
    k = np.arange(-n, n + 1) * h
    a = 0.5 * math.pi * np.sinh(k)
    return 0.5 * (1 + np.tanh(a)), 0.5 * np.exp(-a) / np.cosh(a), 0.25 * math.pi * h * np.cosh(k) / np.cosh(a) ** 2


def contour(spec: DiscreteSpectrum, t: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights dz (shape (A, K)) of Γ in (S7): the upper half of the ellipse from L = min(s₁ − 2√t, θ) −
    √t/2 (left of supp ρ_Y ⊂ [s₁ − 2√t, s_N + 2√t]) to θ, z = c − r cos πτ + i·b sin πτ, b = max(r, 2√t)."""
    tau, rest, wt = _tanh_sinh()
    sq = np.sqrt(t)
    L = np.minimum(spec.s[0] - 2 * sq, theta) - 0.5 * sq
    c, r = 0.5 * (L + theta), 0.5 * (theta - L)
    b = np.maximum(r, 2 * sq)
    sin = np.where(tau > 0.5, np.sin(math.pi * rest), np.sin(math.pi * tau))  # from 1 − τ near θ: no cancellation
    cos = np.where(tau > 0.5, -np.cos(math.pi * rest), np.cos(math.pi * tau))
    z = c[:, None] - r[:, None] * cos + 1j * b[:, None] * sin
    dz = math.pi * (r[:, None] * sin + 1j * b[:, None] * cos) * wt
    return z, dz


def _newton_omega(omega: np.ndarray, z: np.ndarray, spec: DiscreteSpectrum, t: np.ndarray,
                  max_iter: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton steps on H(ω) = z of (S6), shapes (A,), until every step is ≤ 1e-12·(1 + |ω|) (then, converging
    quadratically, ω is exact to rounding): (ω, H'(ω) = 1 + t·G_S'(ω) at the last iterate, converged)."""
    for _ in range(max_iter):
        d = 1.0 / (omega[:, None] - spec.s)
        Hp = 1.0 - t * ((d * d) @ spec.w)
        step = (omega + t * (d @ spec.w) - z) / Hp
        omega = omega - step
        small = np.abs(step) <= 1e-12 * (1 + np.abs(omega))
        if small.all():
            break
    return omega, Hp, small


def subordination(z: np.ndarray, spec: DiscreteSpectrum, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ω(z) of (S6) along each row of z (A, K), a path in ℂ⁺ whose middle node has Im z ≥ 2√t: (ω, H'(ω), ok) with ok
    (A,) false where Newton did not converge at a node or its root left ℂ⁺. The middle node from the contraction
    G ← G_S(z − tG) (20 steps: Im ω ≥ Im z ≥ 2√t, so t|G_S'| ≤ 1/4), then Newton; the others in turn towards both
    ends, each from its neighbour's root plus Δz/H'(ω)."""
    A, K = z.shape
    omega, Hp = np.empty((A, K), complex), np.empty((A, K), complex)
    ok = np.ones(A, bool)
    mid = K // 2
    G = 1.0 / z[:, mid]
    for _ in range(20):
        G = (1.0 / ((z[:, mid] - t * G)[:, None] - spec.s)) @ spec.w
    for order in ([mid], range(mid + 1, K), range(mid - 1, -1, -1)):
        prev = mid
        for k in order:
            start = z[:, k] - t * G if k == mid else omega[:, prev] + (z[:, k] - z[:, prev]) / Hp[:, prev]
            omega[:, k], Hp[:, k], conv = _newton_omega(start, z[:, k], spec, t)
            ok &= conv & (omega[:, k].imag >= -1e-12 * (1 + np.abs(omega[:, k])))
            prev = k
    return omega, Hp, ok


def moments_below(spec: DiscreteSpectrum, t, theta) -> tuple[dict, np.ndarray]:
    """For each (t_a, θ_a) (arrays (A,)): ∫_{x<θ} x^k ρ_Y (``A0``, ``A1``, ``A2``) and ∫_{x<θ} x^k h ρ_Y (``H0``,
    ``H1``) by (S7), their t-derivatives at fixed θ (``dA0`` … ``dH1``, by (S8)), and ``ok`` (A,)."""
    t, theta = np.asarray(t, dtype=float), np.asarray(theta, dtype=float)
    z, dz = contour(spec, t, theta)
    omega, Hp, ok = subordination(z, spec, t)
    tt = t[:, None]
    G = (z - omega) / tt
    dG = -G * (Hp - 1.0) / (tt * Hp)  # (S8): t·G_S'(ω) = H'(ω) − 1
    out = {}
    for k in range(3):
        zk = z**k * dz
        out[f"A{k}"], out[f"dA{k}"] = (-(zk * f).sum(1).imag / math.pi for f in (G, dG))
    for k in range(2):
        zk = z**k * dz
        out[f"H{k}"], out[f"dH{k}"] = (-(zk * f).sum(1).imag / (2 * math.pi) for f in (G * G, 2 * G * dG))
    return out, ok & np.isfinite(omega).all(1)


def moments_above(spec: DiscreteSpectrum, t, theta) -> tuple[dict, np.ndarray]:
    """The same integrals over x > θ: the whole line's (module docstring: 1, m₁, m₂ + t, 0, 1/2) minus
    :func:`moments_below`; t-derivatives likewise (only ∫x²ρ_Y's total depends on t, by 1)."""
    below, ok = moments_below(spec, t, theta)
    t = np.asarray(t, dtype=float)
    total = {"A0": 1.0, "A1": spec.mean, "A2": spec.second_moment + t, "H0": 0.0, "H1": 0.5,
             "dA0": 0.0, "dA1": 0.0, "dA2": 1.0, "dH0": 0.0, "dH1": 0.0}
    return {k: total[k] - v for k, v in below.items()}, ok
