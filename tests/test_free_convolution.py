"""Free convolution with the semicircle by subordination, and the nuclear-route theory for any teacher spectrum."""

import math

import numpy as np
import pytest
import torch

from overparam.backend import generator
from overparam.problems.quadratic_net import make_problem, powerlaw_teacher, powerlaw_teacher_spectrum
from overparam.theory import free_convolution as fc
from overparam.theory.quadratic_erm import _SpectrumLaw, learned_spectrum, predict


def mp_atoms(kappa: float, N: int) -> np.ndarray:
    """N eigenvalues of the Wishart teacher's limit law, √κ*·Marchenko–Pastur(ratio 1/κ*) with its atom at 0 for
    κ* < 1: midpoint quantiles of the continuous part, rescaled so that Σ s²/N = Q0 = 1 + κ* exactly."""
    c = 1 / kappa
    a, b = (1 - math.sqrt(c)) ** 2, (1 + math.sqrt(c)) ** 2
    n_cont = int(round(min(kappa, 1.0) * N))
    x = a + (b - a) * (1 - np.cos(np.linspace(0, math.pi, 20001))) / 2
    dens = np.sqrt(np.maximum((b - x) * (x - a), 0)) / (2 * math.pi * c * x)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
    q = math.sqrt(kappa) * np.interp((np.arange(n_cont) + 0.5) / n_cont, cdf / cdf[-1], x)
    s = np.concatenate([np.zeros(N - n_cont), q])
    return s * math.sqrt((1 + kappa) / np.mean(s**2))


def mass_above(spec: fc.DiscreteSpectrum, t: float, x: float) -> float:
    return float(_SpectrumLaw.of(spec, t).above(x).w.sum())


POWER = powerlaw_teacher_spectrum(400, 1.5, q0=1.0)


@pytest.mark.parametrize("kappa,alpha", [(0.5, 1.0), (2.0, 0.5)])
def test_wishart_given_as_a_spectrum_agrees_with_kappa_star(kappa, alpha):
    """400 quantile atoms of the Wishart teacher's law against the cubic of κ*: relative 5e-4. Measured: ≤ 1e-4 at
    κ* = 0.5 (the discretized law's higher moments differ at O(N^−1.5)), ~1e-6 at κ* = 2."""
    lam, noise = 0.1, 0.1
    p = predict(alpha, None, lam, noise, teacher_spectrum=mp_atoms(kappa, 400))
    q = predict(alpha, kappa, lam, noise)
    for f in ("test_error", "train_error", "rank_fraction", "trace", "delta2", "theta", "Sigma"):
        assert float(getattr(p, f)) == pytest.approx(float(getattr(q, f)), rel=5e-4), f


@pytest.mark.parametrize("t", [0.3, 0.05, 0.005])
def test_moments_of_the_convolved_density(t):
    """Mass 1, mean m1, second moment m2 + t and third m3 + 3t·m1 (the semicircle's free cumulants: only κ2 = t)
    of the quadrature on the u-panels, to 1e-8."""
    spec = fc.DiscreteSpectrum.of(POWER)
    x, w = (np.concatenate([getattr(p, k) for p in fc.panels(spec, t)]) for k in ("x", "w"))
    m = [float(spec.w @ spec.s**k) for k in range(4)]
    assert w.sum() == pytest.approx(1.0, abs=1e-8)
    assert w @ x == pytest.approx(m[1], abs=1e-8)
    assert w @ x**2 == pytest.approx(m[2] + t, abs=1e-8)
    assert w @ x**3 == pytest.approx(m[3] + 3 * t * m[1], abs=1e-8)


def test_one_atom_gives_the_shifted_semicircle():
    """ρ_S = δ_c: ρ_Y is the semicircle of radius 2√t around c, in closed form (support and density to 1e-10)."""
    c, t = 0.7, 0.2
    spec = fc.DiscreteSpectrum.of(np.full(5, c))
    (lo, hi), = fc.support(spec, t)
    assert (lo, hi) == pytest.approx((c - 2 * math.sqrt(t), c + 2 * math.sqrt(t)), abs=1e-10)
    x = np.linspace(lo, hi, 9)[1:-1]
    exact = np.sqrt(4 * t - (x - c) ** 2) / (2 * math.pi * t)
    np.testing.assert_allclose(fc.density(x, spec, t), exact, atol=1e-10)


def test_subordination_fixed_point_on_the_real_line():
    """At nodes u inside the support, G = G_S(u + iv(u)) satisfies (S1) at x = ψ(u): G = Σ w/(x − tG − s) to 1e-10,
    with −Im G/π = ρ_Y(x) = v/(πt) and Re G = (x − u)/t."""
    spec, t = fc.DiscreteSpectrum.of(POWER), 0.05
    p = fc.panels(spec, t)[1]
    u = p.u
    x, v = fc.psi(u, spec, t)
    G = fc.stieltjes_at(u, spec, t)
    rhs = (spec.w / ((x - t * G)[:, None] - spec.s)).sum(1)
    assert np.abs(G - rhs).max() < 1e-10 * np.abs(G).max()
    np.testing.assert_allclose(-G.imag, v / t, rtol=1e-10)
    np.testing.assert_allclose(G.real, (x - u) / t, rtol=1e-9, atol=1e-12)


def test_subordination_against_eigenvalues_of_S_plus_delta_Z():
    """Y = S* + √t·Z at N = 1000, S* with power-law eigenvalues (γ = 1.5) in a random basis: (i) each isolated
    component of supp ρ_Y has mass 1/N and, where both its gaps are wider than 0.05 (≫ an outlier's fluctuation
    √(2t/N) ≈ 0.004), holds exactly one eigenvalue between the gaps' midpoints: every bump is found; (ii) the
    fraction of eigenvalues above x against ρ_Y((x, ∞)) to 3e-3 at five x (an eigenvalue count fluctuates by O(1)
    eigenvalue, 1e-3 of N, and its finite-N bias is O(1/N))."""
    N, t = 1000, 0.01
    S = powerlaw_teacher(N, 1.5, generator(3), q0=1.0).numpy()
    g = np.random.default_rng(4)
    A = g.standard_normal((N, N))
    ev = np.linalg.eigvalsh(S + math.sqrt(t) * (A + A.T) / math.sqrt(2 * N))
    spec = fc.DiscreteSpectrum.of(powerlaw_teacher_spectrum(N, 1.5, q0=1.0))
    comps = fc.support(spec, t)
    law = _SpectrumLaw.of(spec, t)
    edges = [-np.inf] + [0.5 * (a[1] + b[0]) for a, b in zip(comps[:-1], comps[1:])] + [np.inf]
    gaps = [0.0] + [b[0] - a[1] for a, b in zip(comps[:-1], comps[1:])] + [np.inf]
    checked = 0
    for k, (lo, hi) in enumerate(comps[1:], start=1):
        mass = float(law.above(lo).w.sum() - law.above(hi).w.sum())
        assert N * mass == pytest.approx(1.0, abs=1e-6)
        if min(gaps[k], gaps[k + 1]) > 0.05:
            assert np.sum((ev > edges[k]) & (ev < edges[k + 1])) == 1
            checked += 1
    assert checked >= 5, (len(comps), checked)
    for x in np.quantile(ev, [0.1, 0.3, 0.5, 0.7, 0.9]):
        assert np.mean(ev > x) == pytest.approx(float(law.above(x).w.sum()), abs=3e-3)


def test_fixed_point_residual_for_a_teacher_spectrum():
    """At the returned (δ², θ): δ² = (2·MSE + Δ)/(4α) and θ = λ/(2(2α − D)) recomputed from the order parameters
    of a fresh quadrature, to 1e-8 relative."""
    alpha, lam, noise = 0.8, 0.05, 0.2
    p = predict(alpha, None, lam, noise, teacher_spectrum=POWER)
    d2, th = float(p.delta2), float(p.theta)
    Q = _SpectrumLaw.of(fc.DiscreteSpectrum.of(POWER), d2).above(th)
    g = Q.x - th
    q, m, D = Q.w @ g**2, Q.w @ (g * (Q.x - 2 * d2 * Q.h)), 2 * Q.w @ (g * Q.h)
    mse = float(np.mean(POWER**2)) - 2 * m + q
    assert (2 * mse + noise) / (4 * alpha) == pytest.approx(d2, rel=1e-8)
    assert lam / (2 * (2 * alpha - D)) == pytest.approx(th, rel=1e-8)
    assert float(p.test_error) == pytest.approx(2 * mse + noise, rel=1e-10)
    x, w, atom = learned_spectrum(alpha, None, lam, noise, teacher_spectrum=POWER)
    assert atom == pytest.approx(1 - float(p.rank_fraction), abs=1e-12) and np.all(x >= 0)
    assert float(w @ x) == pytest.approx(float(p.trace), rel=1e-10)


def test_powerlaw_teacher_normalization():
    s = powerlaw_teacher_spectrum(50, 1.2, q0=2.0)
    assert float(s @ s) / 50 == pytest.approx(2.0, rel=1e-12)
    np.testing.assert_allclose(s[1:] / s[0], np.arange(2, 51) ** -1.2, rtol=1e-12)
    r = powerlaw_teacher_spectrum(50, 1.2, q0=2.0, rank=10)
    assert np.count_nonzero(r) == 10 and float(r @ r) / 50 == pytest.approx(2.0, rel=1e-12)
    S = powerlaw_teacher(50, 1.2, generator(0), q0=2.0, rank=10)
    torch.testing.assert_close(S, S.T)
    np.testing.assert_allclose(np.sort(torch.linalg.eigvalsh(S).numpy()), np.sort(r), atol=1e-12)
    assert float((S * S).sum()) / 50 == pytest.approx(2.0, rel=1e-12)
    prob = make_problem(50, 0.5, None, 0.1, generator(1), "goe", S_star=S)
    assert prob.S_star is not None and prob.n == 1250


@pytest.mark.parametrize("kwargs,match", [
    (dict(kappa_star=0.5, teacher_spectrum=[1.0, 2.0]), "^teacher_spectrum: give exactly one.*both"),
    (dict(), "^teacher_spectrum: give exactly one.*neither"),
    (dict(teacher_spectrum=[1.0, -0.1]), "^teacher_spectrum: must be ≥ 0"),
    (dict(teacher_spectrum=[1.0, float("nan")]), "^teacher_spectrum: contains NaN"),
    (dict(teacher_spectrum=[]), "^teacher_spectrum: must hold at least one"),
])
def test_bad_teacher_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        predict(1.0, lam=0.1, noise=0.1, **kwargs)
    with pytest.raises(ValueError, match=match):
        learned_spectrum(1.0, lam=0.1, noise=0.1, **kwargs)


def test_bad_powerlaw_inputs():
    with pytest.raises(ValueError, match="^rank:"):
        powerlaw_teacher_spectrum(10, 1.0, rank=11)
    with pytest.raises(ValueError, match="^q0:"):
        powerlaw_teacher_spectrum(10, 1.0, q0=0.0)
    with pytest.raises(ValueError, match="^S_star: give exactly one"):
        make_problem(10, 1.0, 0.5, 0.1, generator(0), S_star=torch.eye(10, dtype=torch.float64))
    with pytest.raises(ValueError, match="^S_star: must have shape"):
        make_problem(10, 1.0, None, 0.1, generator(0), S_star=torch.eye(9, dtype=torch.float64))


# values of predict(...) computed with the code before the any-teacher rewrite (one α grid per configuration)
BEFORE = [
    ((0.25, 0.5, 1.0), 0.5, 0.1, 0.1, dict(
        test_error=(0.9557249015612913, 0.28861080947432727, 0.1594133775659973),
        train_error=(0.015741682615625682, 0.029841785462783273, 0.05962713321174542),
        rank_fraction=(0.432370169101736, 0.5985230403578577, 0.6723345854577899),
        theta=(0.7791855230658719, 0.15549409422470514, 0.04087713276876677))),
    ((0.25, 0.5, 1.0), 2.0, 0.1, 0.5, dict(
        test_error=(3.8743268506433015, 2.0219426583383004, 0.9515948463796713),
        train_error=(0.016063748473152627, 0.0672929705229716, 0.2544474535014066),
        rank_fraction=(0.473129503133139, 0.7460668185079722, 0.9092527333027497),
        theta=(1.5530115317068072, 0.2740750941059125, 0.048346717714031984))),
    ((0.2, 0.29, 0.34), 0.3, 1e-3, 0.0, dict(
        test_error=(0.5390686223465488, 0.04803699412934703, 0.00012349499571273626),
        train_error=(2.028836314024192e-06, 2.8799181528408246e-06, 1.686605011179763e-06),
        rank_fraction=(0.3945168691986514, 0.49430133685577093, 0.4782848213414903),
        theta=(0.6443302705531303, 0.11133708592151145, 0.006291860399333305))),
]


@pytest.mark.parametrize("alphas,kappa,lam,noise,ref", BEFORE)
def test_wishart_predictions_unchanged(alphas, kappa, lam, noise, ref):
    """The faster solver (secant on log δ², Newton on θ) returns the earlier values to 1e-8 relative."""
    p = predict(np.array(alphas), kappa, lam, noise)
    for f, v in ref.items():
        np.testing.assert_allclose(getattr(p, f), v, rtol=1e-8, err_msg=f)


def test_learned_spectrum_cdf_against_the_quadrature():
    """P(eig Ŝ ≤ x): the atom at 0 at x = 0, 1 above the support, and the cumulative quadrature weight in between
    (to within one node's weight)."""
    from overparam.theory.quadratic_erm import learned_spectrum_cdf
    args = (0.8, None, 0.1, 0.1)
    spec = powerlaw_teacher_spectrum(80, 1.5)
    x, w, atom = learned_spectrum(*args, teacher_spectrum=spec)
    F = learned_spectrum_cdf([0.0, float(np.median(x)), x.max() + 1.0], *args, teacher_spectrum=spec)
    assert F[0] == pytest.approx(atom, abs=1e-12) and F[2] == pytest.approx(1.0, abs=1e-12)
    below = atom + w[x <= np.median(x)].sum()
    assert F[1] == pytest.approx(below, abs=w.max())
