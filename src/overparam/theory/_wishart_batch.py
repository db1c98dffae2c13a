"""The nuclear route's fixed point for the Wishart teacher, solved for a whole α grid at once.

Same equations and the same quadrature as :mod:`.quadratic_erm` (its module docstring), arranged so that one NumPy pass
serves every α:

- the support of ρ_Y at each δ²_a from the roots of the cubic's discriminant (a quartic in z, leading coefficient
  1/κ* > 0, so ρ_Y > 0 between the 1st–2nd and the 3rd–4th real roots), found for all α at once as the eigenvalues of a
  stack of 4 × 4 companion matrices;
- panels cut at −2δ, 0, 2δ, 4δ and θ as in ``_quadrature`` (zero-width panels dropped), Gauss–Legendre nodes in
  x = c − r cos t, G_Y at every node of every α in one call; per-α sums by ``np.bincount``;
- a joint Newton iteration on u = (log δ², log θ) for the residuals

      R₁ = log T − log δ²,  T = (2·MSE + Δ)/(4α),        R₂ = log(2θ(2α − D)/λ),

  with the Jacobian exact: the θ-column from d/dθ of the order parameters at fixed δ² (dq/dθ = −2∫g, dm/dθ =
  −∫(x − 2δ²h)1{x>θ}, dD/dθ = −2∫h1{x>θ}, the boundary terms vanish since g(θ) = 0), the δ²-column from ∂G/∂δ² at
  each node (implicit differentiation of the cubic); steps halved until ‖R‖ decreases.

The same iteration serves a teacher given by its eigenvalues (:func:`spectrum_moments`: the integrals by contour
integration, :func:`.free_convolution.moments_above`), so that any teacher's α grid is one batch.

α points where this does not reach ``tol`` (or the support is not two or four real roots) are returned as not done,
for the caller's one-at-a-time solver.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.interpolate import CubicSpline

from . import free_convolution as fc

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)  # per panel, as in .quadratic_erm
_T = 0.5 * math.pi * (_NODES + 1)
_WT = 0.5 * math.pi * _WEIGHTS
_COS, _SIN = np.cos(_T), np.sin(_T)
_COARSE = 12  # α points solved from a cold start before the rest of a long grid
_MAX_STEP = 3.0  # largest Newton step in log δ² and log θ (the line search halves it where needed)
# a point whose residual stops decreasing (its rounding floor: MSE = Q0 − 2m + q loses digits when MSE ≪ Q0, e.g.
# 1e-10 at MSE ~ 1e-5 in the noiseless regime) is accepted at max|R| ≤ 1e-8, the final check of ``_solve_one``
_ACCEPT = 1e-8


def _real_root(B: np.ndarray, C: np.ndarray, E: np.ndarray, newton: int = 2) -> np.ndarray:
    """A real root of G³ + B G² + C G + E (Cardano where one root is real, the trigonometric form where all three
    are), polished by Newton steps."""
    p, q = C - B * B / 3, 2 * B**3 / 27 - B * C / 3 + E
    disc = q * q / 4 + p**3 / 27
    sq = np.sqrt(np.maximum(disc, 0.0))
    t = np.cbrt(-q / 2 + sq) + np.cbrt(-q / 2 - sq)
    three = disc < 0
    if three.any():
        pm = np.minimum(p[three], -1e-300)
        arg = np.clip(1.5 * q[three] / pm * np.sqrt(-3 / pm), -1.0, 1.0)
        t[three] = 2 * np.sqrt(-pm / 3) * np.cos(np.arccos(arg) / 3)
    r = t - B / 3
    for _ in range(newton):
        f, df = ((r + B) * r + C) * r + E, (3 * r + 2 * B) * r + C
        r = np.where(df != 0, r - f / np.where(df != 0, df, 1.0), r)
    return r


def stieltjes(x: np.ndarray, kappa: float, delta2: np.ndarray) -> np.ndarray:
    """G_Y(x + i0) for points x, each with its own δ² (arrays of one shape; complex, Im ≤ 0 inside the support): the
    root with the largest |Im G| of the cubic −(δ²/√κ*) G³ + (z/√κ* + δ²) G² − (z + (1 − κ*)/√κ*) G + 1 = 0. Its
    real root r is found in closed form; the other two have product P = −E/r and sum s = (C − P)/r (Vieta; −B − r
    where r is small), a complex-conjugate pair s/2 ± (i/2)√(4P − s²) inside the support (real outside, Im G = 0)."""
    sk = math.sqrt(kappa)
    a = -delta2 / sk
    B, C, E = (x / sk + delta2) / a, -(x + (1 - kappa) / sk) / a, 1.0 / a
    r = _real_root(B, C, E)
    safe = np.where(r != 0, r, 1.0)
    P = np.where(r != 0, -E / safe, C)
    s = np.where(r * r > np.abs(P), (C - P) / safe, -B - r)
    disc = 4 * P - s * s
    return s / 2 + np.where(disc > 0, -0.5j * np.sqrt(np.maximum(disc, 0.0)), 0.5 * np.sqrt(np.maximum(-disc, 0.0)))


def _pmul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Products of polynomials stored row-wise (lowest degree first): (A, i) × (A, j) → (A, i + j − 1)."""
    out = np.zeros((p.shape[0], p.shape[1] + q.shape[1] - 1))
    for i in range(p.shape[1]):
        out[:, i:i + q.shape[1]] += p[:, i:i + 1] * q
    return out


def discriminant(kappa: float, delta2: np.ndarray) -> np.ndarray:
    """Coefficients (lowest degree first), one row per δ², of the cubic's discriminant 18abcd − 4b³d + b²c² − 4ac³ −
    27a²d² as a quartic in z, for a = −δ²/√κ*, b = δ² + z/√κ*, c = −(1 − κ*)/√κ* − z, d = 1: shape (A, 5)."""
    A = len(delta2)
    sk = math.sqrt(kappa)
    one = np.ones((A, 1))
    a = (-delta2 / sk)[:, None]
    b = np.concatenate([delta2[:, None], one / sk], 1)
    c = np.concatenate([one * (-(1 - kappa) / sk), -one], 1)
    bb, cc = _pmul(b, b), _pmul(c, c)
    disc = np.zeros((A, 5))
    for t in (18 * _pmul(_pmul(a, b), c), -4 * _pmul(bb, b), _pmul(bb, cc), -4 * _pmul(a, _pmul(cc, c)),
              -27 * _pmul(a, a)):
        disc[:, :t.shape[1]] += t
    return disc


def support(kappa: float, delta2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, dip, ok): the support's intervals [lo_j, hi_j], shapes (A, 2) (a zero-width second interval where
    there is one), the real part of the complex root pair (A,) (:func:`.quadratic_erm.dips`; the first root where all
    four are real), and ``ok`` (A,) false where the quartic has not two or four distinct real roots."""
    A = len(delta2)
    disc = discriminant(kappa, delta2)
    comp = np.zeros((A, 4, 4))
    comp[:, 1:, :3] = np.eye(3)
    comp[:, :, 3] = -disc[:, :4] / disc[:, 4:5]
    roots = np.linalg.eigvals(comp)
    real = np.abs(roots.imag) < 1e-9 * (1 + np.abs(roots))
    n_real = real.sum(1)
    r = np.sort(np.where(real, roots.real, np.inf), 1)
    ok = (n_real == 2) | (n_real == 4)
    four = n_real == 4
    lo = np.stack([r[:, 0], np.where(four, r[:, 2], r[:, 1])], 1)
    hi = np.stack([r[:, 1], np.where(four, r[:, 3], r[:, 1])], 1)
    lo, hi = np.where(ok[:, None], lo, 0.0), np.where(ok[:, None], hi, 0.0)
    dip = np.where(four | ~ok, lo[:, 0], roots.real[np.arange(A), np.argmax(~real, 1)])
    return lo, hi, dip, ok


def _panels(lo: np.ndarray, hi: np.ndarray, dip: np.ndarray, delta2: np.ndarray, theta: np.ndarray):
    """Panels (owner α, a, b, above θ) of the support cut at −2δ, 0, 2δ, 4δ, the dip and θ; zero-width panels
    dropped."""
    delta = np.sqrt(delta2)
    cuts = np.stack([-2 * delta, 0 * delta, 2 * delta, 4 * delta, dip, theta], 1)  # (A, 6)
    owners, As, Bs = [], [], []
    for j in range(lo.shape[1]):
        l, h = lo[:, j:j + 1], hi[:, j:j + 1]
        edges = np.sort(np.concatenate([l, np.clip(cuts, l, h), h], 1), 1)  # (A, 7)
        a, b = edges[:, :-1], edges[:, 1:]
        keep = b > a
        owner = np.broadcast_to(np.arange(len(lo))[:, None], a.shape)
        owners.append(owner[keep]), As.append(a[keep]), Bs.append(b[keep])
    owner, a, b = np.concatenate(owners), np.concatenate(As), np.concatenate(Bs)
    return owner, a, b, a >= theta[owner]


def _moments(kappa: float, delta2: np.ndarray, theta: np.ndarray, lo: np.ndarray, hi: np.ndarray,
             dip: np.ndarray) -> dict:
    """Per-α sums over the support (``mass``) and over [θ, ∞) (the rest) of the quadrature weights times 1, g, g²,
    g·x, g·h, h and x (g = x − θ): everything the residuals and their θ-derivatives need; and the δ²-derivatives at
    fixed θ of the sums of g², g·x and g·h (``dt_g2``, ``dt_gx``, ``dt_gh``): ∂G/∂δ² = −P_δ²/P_G at each node for the
    cubic P(G) = aG³ + bG² + cG + 1 of :func:`stieltjes` (P_δ² = −G³/√κ* + G², P_G = 3aG² + 2bG + c), with ρ_Y = −Im G/π
    and h = Re G (the support's ends, where ρ_Y = 0, and the panels' inner cuts add no boundary terms)."""
    A = len(delta2)
    owner, a, b, up = _panels(lo, hi, dip, delta2, theta)
    c, r = 0.5 * (a + b), 0.5 * (b - a)
    x = c[:, None] - r[:, None] * _COS
    d2 = np.broadcast_to(delta2[owner][:, None], x.shape)
    G = stieltjes(x, kappa, d2)
    jac = _WT * r[:, None] * _SIN / math.pi
    w = jac * np.abs(G.imag)
    h = G.real

    def per_alpha(v: np.ndarray, mask=None) -> np.ndarray:
        rows = v.sum(1) if mask is None else v[mask].sum(1)
        return np.bincount(owner if mask is None else owner[mask], weights=rows, minlength=A)

    g = x - theta[owner][:, None]
    out = {"mass": per_alpha(w)}
    for key, f in (("w", w), ("g", w * g), ("g2", w * g * g), ("gx", w * g * x), ("gh", w * g * h), ("h", w * h),
                   ("x", w * x)):
        out[key] = per_alpha(f, up)
    sk = math.sqrt(kappa)
    xu, Gu, gu, wu, hu, ju = x[up], G[up], g[up], w[up], h[up], jac[up]
    d2u = d2[up]
    PG = (3 * (-d2u / sk) * Gu + 2 * (xu / sk + d2u)) * Gu - (xu + (1 - kappa) / sk)
    with np.errstate(divide="ignore", invalid="ignore"):
        dG = np.nan_to_num(-(Gu * Gu * (1 - Gu / sk)) / PG)
    dw = -ju * dG.imag  # ∂ρ_Y/∂δ² times the node weight (Im G ≤ 0 on the support)
    for key, f in (("dt_g2", dw * gu * gu), ("dt_gx", dw * gu * xu), ("dt_gh", gu * (dw * hu + wu * dG.real))):
        out[key] = np.bincount(owner[up], weights=f.sum(1), minlength=A)
    return out


def _wishart_moments(kappa: float):
    """``moments(δ², θ) -> (sums, ok)`` of the Wishart teacher (:func:`_moments` on the cubic's support)."""
    def moments(delta2: np.ndarray, theta: np.ndarray) -> tuple[dict, np.ndarray]:
        lo, hi, dip, ok = support(kappa, delta2)
        return _moments(kappa, delta2, theta, lo, hi, dip), ok
    return moments


def spectrum_moments(spec):
    """``moments(δ², θ) -> (sums, ok)`` of a teacher given by its eigenvalues (``free_convolution.DiscreteSpectrum``):
    the integrals above θ of :func:`.free_convolution.moments_above` (exact total mass 1) arranged as :func:`_moments`'
    sums, with their δ²-derivatives (``dt_g2``, ``dt_gx``, ``dt_gh``) for an exact Jacobian."""
    def moments(delta2: np.ndarray, theta: np.ndarray) -> tuple[dict, np.ndarray]:
        M, ok = fc.moments_above(spec, delta2, theta)
        A0, A1, A2, H0, H1 = (M[k] for k in ("A0", "A1", "A2", "H0", "H1"))
        dA0, dA1, dA2, dH0, dH1 = (M[k] for k in ("dA0", "dA1", "dA2", "dH0", "dH1"))
        out = {"mass": np.ones_like(A0), "w": A0, "g": A1 - theta * A0, "g2": A2 - 2 * theta * A1 + theta**2 * A0,
               "gx": A2 - theta * A1, "gh": H1 - theta * H0, "h": H0, "x": A1,
               "dt_g2": dA2 - 2 * theta * dA1 + theta**2 * dA0, "dt_gx": dA2 - theta * dA1, "dt_gh": dH1 - theta * dH0}
        return out, ok
    return moments


def _state(moments, alpha, lam, noise, Q0, u):
    """Residuals R (A, 2), the Jacobian's columns dR/d(log θ) and dR/d(log δ²) (A, 2 each), the order parameters
    and ``ok`` at u = (log δ², log θ)."""
    delta2, theta = np.exp(u[:, 0]), np.exp(u[:, 1])
    M, ok = moments(delta2, theta)
    mass = np.where(M["mass"] > 0, M["mass"], 1.0)
    q, m, D = M["g2"] / mass, (M["gx"] - 2 * delta2 * M["gh"]) / mass, 2 * M["gh"] / mass
    mse = Q0 - 2 * m + q
    T = (2 * mse + noise) / (4 * alpha)
    F = 2 * theta * (2 * alpha - D)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = np.stack([np.log(T) - u[:, 0], np.log(F / lam)], 1)
        dq, dm, dD = -2 * M["g"] / mass, -(M["x"] - 2 * delta2 * M["h"]) / mass, -2 * M["h"] / mass
        dT = 2 * (-2 * dm + dq) / (4 * alpha)
        dF = 2 * (2 * alpha - D) - 2 * theta * dD
        J_theta = np.stack([dT / T, dF / F], 1) * theta[:, None]
        # d/dδ² at fixed θ (the mass is 1 at every δ²): m = gx − 2δ²·gh, so dm = d(gx) − 2gh − 2δ²·d(gh)
        tq, tD = M["dt_g2"] / mass, 2 * M["dt_gh"] / mass
        tm = (M["dt_gx"] - 2 * M["gh"] - 2 * delta2 * M["dt_gh"]) / mass
        tT = 2 * (-2 * tm + tq) / (4 * alpha)
        J_delta = np.stack([delta2 * tT / T - 1.0, -delta2 * tD / (2 * alpha - D)], 1)
    ok &= np.isfinite(R).all(1) & (T > 0) & (F > 0)
    order = {"mse": mse, "D": D, "rank_fraction": M["w"] / mass, "trace": M["g"] / mass}
    return R, J_theta, J_delta, order, ok


def _newton(alpha: np.ndarray, moments, lam: float, noise: float, Q0: float, u: np.ndarray, tol: float,
            max_iter: int) -> tuple[np.ndarray, dict, np.ndarray]:
    """Damped joint Newton from u (A, 2) = (log δ², log θ); returns (u, order parameters, done)."""
    u = u.copy()
    R, Jt, Jd, order, ok = _state(moments, alpha, lam, noise, Q0, u)
    for _ in range(40):  # a start with 2α − D(θ) ≤ 0: raise θ (D decreases to 0 as θ grows)
        bad = np.nonzero(~ok)[0]
        if not len(bad):
            break
        u[bad, 1] += math.log(2.0)
        Rb, Jb, Jdb, ob, okb = _state(moments, alpha[bad], lam, noise, Q0, u[bad])
        R[bad], Jt[bad], Jd[bad], ok[bad] = Rb, Jb, Jdb, okb
        for key in order:
            order[key][bad] = ob[key]
    live = ok & (np.abs(R).max(1) > tol)
    for _ in range(max_iter):
        if not live.any():
            break
        idx = np.nonzero(live)[0]
        J = np.stack([Jd[idx], Jt[idx]], 2)  # (k, 2, 2): columns d/d(log δ²), d/d(log θ)
        det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
        det = np.where(det != 0, det, 1e-300)
        step = -np.stack([J[:, 1, 1] * R[idx, 0] - J[:, 0, 1] * R[idx, 1],
                          -J[:, 1, 0] * R[idx, 0] + J[:, 0, 0] * R[idx, 1]], 1) / det[:, None]
        step = np.clip(step, -_MAX_STEP, _MAX_STEP)
        norm0 = np.abs(R[idx]).max(1)
        t = np.ones(len(idx))
        pending = np.ones(len(idx), bool)
        accepted = np.zeros(len(idx), bool)
        for _ in range(12):  # halve the step where the residual does not decrease
            k = idx[pending]
            trial = u[k] + t[pending, None] * step[pending]
            Rn, Jn, Jdn, on, okn = _state(moments, alpha[k], lam, noise, Q0, trial)
            better = okn & (np.abs(Rn).max(1) < norm0[pending])
            accepted[np.nonzero(pending)[0][better]] = True
            acc = k[better]
            u[acc], R[acc], Jt[acc], Jd[acc] = trial[better], Rn[better], Jn[better], Jdn[better]
            for key in order:
                order[key][acc] = on[key][better]
            still = np.nonzero(pending)[0][~better]
            still = still[norm0[still] > _ACCEPT]  # an acceptable point that does not decrease is at its floor
            pending[:] = False
            pending[still] = True
            t[still] *= 0.5
            if not pending.any():
                break
        live[idx[~accepted]] = False  # no decrease along the Newton direction: give up here
        live &= np.abs(R).max(1) > tol
    return u, order, ok & (np.abs(R).max(1) <= _ACCEPT)


def solve(alpha: np.ndarray, kappa: float, lam: float, noise: float, tol: float = 1e-11,
          max_iter: int = 40) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """(δ², θ, order parameters, done) for every α (arrays of shape (A,)) of the Wishart teacher (κ*, Q0 = 1 + κ*):
    :func:`solve_law` with :func:`_wishart_moments`."""
    return solve_law(alpha, _wishart_moments(kappa), 1.0 + kappa, lam, noise, tol, max_iter)


def solve_law(alpha: np.ndarray, moments, Q0: float, lam: float, noise: float, tol: float = 1e-11,
              max_iter: int = 40) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """(δ², θ, order parameters, done) for every α (arrays of shape (A,)) of a teacher given by its ``moments(δ², θ)``
    (:func:`_wishart_moments`, :func:`spectrum_moments`) and Q0 = ∫ s² dρ_S*; ``done`` false where the batch did not
    reach max|R| ≤ tol, or ≤ 1e-8 where the residual stopped decreasing (its entries are then meaningless).

    Starts: δ² = (2Q0 + Δ)/(4α) (the zero estimator's error) and θ = λ/(4α) (D = 0); points that do not converge
    from there are started again from the solution at the nearest converged α (in log α), wave after wave while
    that helps: continuation along the grid, each wave one batch."""
    alpha = np.asarray(alpha, dtype=float)
    u = np.stack([np.log((2 * Q0 + noise) / (4 * alpha)), np.log(lam / (4 * alpha))], 1)
    coarse = np.zeros(len(alpha), bool)
    if len(alpha) > 2 * _COARSE:  # a coarse grid first; the others start from its solutions, interpolated in log α
        la = np.log(alpha)
        coarse[np.unique(np.abs(la[None, :] - np.linspace(la.min(), la.max(), _COARSE)[:, None]).argmin(1))] = True
        uc, _, dc = _newton(alpha[coarse], moments, lam, noise, Q0, u[coarse], tol, max_iter)
        if dc.sum() >= 2:
            lc, ucd = la[coarse][dc], uc[dc]
            o = np.argsort(lc)
            u = CubicSpline(lc[o], ucd[o])(la) if len(lc) >= 4 else np.stack([np.interp(la, lc[o], ucd[o, j]) for j in range(2)], 1)
            u[np.nonzero(coarse)[0][dc]] = ucd
    u, order, done = _newton(alpha, moments, lam, noise, Q0, u, tol, max_iter)
    while done.any() and not done.all():
        todo, have = np.nonzero(~done)[0], np.nonzero(done)[0]
        near = have[np.abs(np.log(alpha[have])[None, :] - np.log(alpha[todo])[:, None]).argmin(1)]
        u2, o2, d2 = _newton(alpha[todo], moments, lam, noise, Q0, u[near], tol, max_iter)
        if not d2.any():
            break
        u[todo], done[todo] = u2, d2
        for key in order:
            order[key][todo] = o2[key]
    return np.exp(u[:, 0]), np.exp(u[:, 1]), order, done
