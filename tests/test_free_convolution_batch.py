"""A teacher spectrum's α grid solved at once: the contour integrals (S6)–(S8) of theory/free_convolution.py against
the real-line u-panels, their δ²-derivatives against central differences, the subordination's residual on the
contour, and the whole-grid fixed point against the one-α-at-a-time solver."""

import numpy as np
import pytest

from overparam.problems.quadratic_net import powerlaw_teacher_spectrum
from overparam.theory import _wishart_batch as wb
from overparam.theory import free_convolution as fc
from overparam.theory import quadratic_erm as qe

POWER = powerlaw_teacher_spectrum(400, 1.5, q0=1.0)
KEYS = ("A0", "A1", "A2", "H0", "H1")


@pytest.fixture
def fine_panels(monkeypatch):
    """The real-line u-panels refined to 96 nodes and 8 equal cuts per component (integrals within ~1e-12 of their
    limit at the (t, θ) used here), an independent quadrature to hold the contour integrals against."""
    monkeypatch.setattr(fc, "_NODES", np.polynomial.legendre.leggauss(96)[0])
    monkeypatch.setattr(fc, "_WEIGHTS", np.polynomial.legendre.leggauss(96)[1])
    monkeypatch.setattr(fc, "_PANELS", 8)


def real_line(spec: fc.DiscreteSpectrum, t: float, theta: float) -> dict:
    Q = qe._SpectrumLaw.of(spec, t).above(theta)
    return {"A0": Q.w.sum(), "A1": Q.w @ Q.x, "A2": Q.w @ Q.x**2, "H0": Q.w @ Q.h, "H1": Q.w @ (Q.x * Q.h)}


def test_contour_integrals_against_the_real_line(fine_panels):
    """∫_{x>θ} x^k ρ_Y and ∫_{x>θ} x^k h ρ_Y by (S7) on a grid of (t, θ) at once — θ inside the bulk, near its top,
    above it among the isolated bumps of the power law's top eigenvalues, and below the support — equal the refined
    real-line quadrature to 1e-10 (measured ≤ 5e-12)."""
    spec = fc.DiscreteSpectrum.of(POWER)
    t = np.array([0.198, 0.0734, 0.00908, 0.02, 0.05, 0.3])
    theta = np.array([0.331, 0.0868, 0.0092, 0.3, 0.01, 1.5])
    M, ok = fc.moments_above(spec, t, theta)
    assert ok.all()
    for i in range(len(t)):
        ref = real_line(spec, t[i], theta[i])
        for k in KEYS:
            assert M[k][i] == pytest.approx(ref[k], abs=1e-10), (i, k)
    below, _ = fc.moments_below(spec, np.array([0.05]), np.array([-2.0]))  # nothing below the support
    assert max(abs(below[k][0]) for k in KEYS) < 1e-13


def test_subordination_residual_on_the_contour():
    """Along Γ, every node's ω solves (S6) H(ω) = ω + t·G_S(ω) = z to 1e-12 relative, in ℂ⁺, and G_Y = (z − ω)/t
    is a Stieltjes transform there (Im G_Y < 0, |G_Y| ≤ 1/Im z)."""
    spec = fc.DiscreteSpectrum.of(POWER)
    t, theta = np.array([0.01, 0.1]), np.array([0.02, 0.5])
    z, _ = fc.contour(spec, t, theta)
    omega, _, ok = fc.subordination(z, spec, t)
    assert ok.all()
    H = omega + t[:, None] * (spec.w / (omega[..., None] - spec.s)).sum(-1)
    assert np.abs(H - z).max() <= 1e-12 * np.abs(z).max()
    assert (omega.imag >= 0).all()  # = 0 only at the node beside L, on the real line left of the support
    G = (z - omega) / t[:, None]
    off = z.imag > 0
    assert (G.imag <= 0).all() and (np.abs(G[off]) <= 1 / z.imag[off] * (1 + 1e-12)).all()


@pytest.mark.parametrize("teacher", ["wishart", "spectrum"])
def test_delta2_derivatives_against_central_differences(teacher):
    """The δ²-derivatives of the sums of g², g·x and g·h at fixed θ ((S8) on the contour; implicit differentiation
    of the cubic for the Wishart teacher) against central differences with step 1e-5·δ² (their error ~1e-9
    relative): 1e-6 relative to the largest."""
    moments = wb._wishart_moments(0.5) if teacher == "wishart" else wb.spectrum_moments(fc.DiscreteSpectrum.of(POWER))
    d2, th = np.array([0.3, 0.05, 0.0214, 0.005]), np.array([0.2, 0.05, 0.0217, 0.001])
    M, ok = moments(d2, th)
    assert ok.all()
    e = 1e-5
    (Mp, _), (Mm, _) = moments(d2 * (1 + e), th), moments(d2 * (1 - e), th)
    for k in ("g2", "gx", "gh"):
        fd = (Mp[k] / Mp["mass"] - Mm[k] / Mm["mass"]) / (2 * e * d2)
        np.testing.assert_allclose(M["dt_" + k], fd, atol=1e-6 * np.abs(fd).max(), err_msg=k)


def count_evaluations(monkeypatch) -> list[int]:
    """Record the number of α points of every evaluation of the whole-grid solver's residuals (``_state``)."""
    calls: list[int] = []
    orig = wb._state

    def counting(moments, alpha, *args):
        calls.append(len(alpha))
        return orig(moments, alpha, *args)
    monkeypatch.setattr(wb, "_state", counting)
    return calls


def test_spectrum_grid_equals_one_at_a_time(fine_panels, monkeypatch):
    """100 α of a 400-atom power law in one batch (every point converged) equal the one-α-at-a-time solver on the
    refined real-line panels at three α to 1e-8 relative (δ², θ, MSE; measured ≤ 2e-10) and 1e-10 absolute (rank
    fraction); and in few passes: at most 6 evaluations per α."""
    alphas = np.geomspace(0.2, 3.0, 100)
    teacher = qe._teacher(None, POWER)
    calls = count_evaluations(monkeypatch)
    d2, th, order, done = wb.solve_law(alphas, teacher.moments, teacher.Q0, 0.1, 0.1)
    monkeypatch.undo()
    assert done.all() and sum(calls) <= 6 * len(alphas)
    for i in (0, 50, 99):
        d2_1, th_1, op = qe._solve_one(float(alphas[i]), teacher, 0.1, 0.1, float(d2[i]))
        assert d2[i] == pytest.approx(d2_1, rel=1e-8)
        assert th[i] == pytest.approx(th_1, rel=1e-8)
        assert order["mse"][i] == pytest.approx(op.mse, rel=1e-8)
        assert order["rank_fraction"][i] == pytest.approx(op.rank_fraction, abs=1e-10)


def test_noiseless_spectrum_grid_converges():
    """Δ = 0, λ = 1e-3 (MSE down to ~1e-5, where MSE = Q0 − 2m + q loses digits to rounding): every α is solved by
    the batch, each to its fixed point — δ² = (2·MSE + Δ)/(4α) and θ = λ/(2(2α − D)) hold to 1e-8 relative."""
    alphas = np.geomspace(0.2, 3.0, 24)
    teacher = qe._teacher(None, POWER)
    d2, th, order, done = wb.solve_law(alphas, teacher.moments, teacher.Q0, 1e-3, 0.0)
    assert done.all()
    np.testing.assert_allclose(2 * order["mse"] / (4 * alphas), d2, rtol=1e-8)
    np.testing.assert_allclose(1e-3 / (2 * (2 * alphas - order["D"])), th, rtol=1e-8)
