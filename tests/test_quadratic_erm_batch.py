"""The nuclear route's Wishart fixed point solved for a whole α grid at once (theory/_wishart_batch.py) against the
one-α-at-a-time solver, and the quadrature's cut at the near-splitting dip of ρ_Y against adaptive quadrature."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from overparam.theory import _wishart_batch as wb
from overparam.theory import quadratic_erm as qe
from test_free_convolution_batch import count_evaluations

CONFIGS = [(0.5, 0.1, 0.1), (2.0, 0.1, 0.1), (0.3, 1e-3, 0.01), (0.1, 0.01, 0.1)]


@pytest.mark.parametrize("kappa,lam,noise", CONFIGS)
def test_batch_equals_one_at_a_time(kappa, lam, noise):
    """Same fixed point as ``_solve_one`` (tolerance 1e-11 on the relative residual in each) to 1e-9 relative."""
    alphas = np.geomspace(0.2, 3.0, 30)
    d2, th, order, done = wb.solve(alphas, kappa, lam, noise)
    assert done.all()
    teacher = qe._teacher(kappa, None)
    for i in range(0, 30, 4):
        d2_1, th_1, op = qe._solve_one(float(alphas[i]), teacher, lam, noise, None)
        assert d2[i] == pytest.approx(d2_1, rel=1e-9)
        assert th[i] == pytest.approx(th_1, rel=1e-9)
        assert order["mse"][i] == pytest.approx(op.mse, rel=1e-9)
        assert order["rank_fraction"][i] == pytest.approx(op.rank_fraction, abs=1e-10)


def test_support_and_dip_against_numpy_roots():
    kappa, delta2 = 0.5, np.array([0.0214, 0.3, 0.001])
    lo, hi, dip, ok = wb.support(kappa, delta2)
    assert ok.all()
    for j, d in enumerate(delta2):
        ivs = qe.support(kappa, float(d))
        got = [(a, b) for a, b in zip(lo[j], hi[j]) if b > a]
        assert np.allclose(got, ivs, rtol=1e-10, atol=1e-12)
        dips = qe.dips(kappa, float(d))
        if len(ivs) == 1 and dips:
            assert dip[j] == pytest.approx(dips[0], rel=1e-10)


def test_dip_cut_matches_adaptive_quadrature():
    """Where ρ_Y nearly splits (κ* = 0.5, δ² = 0.0214: a complex root pair 0.0019 off the axis at x ≈ 0.181), the
    panels cut at the dip give the mass and D = 2∫_θ (x − θ) h dρ_Y to 1e-10 of scipy's adaptive quadrature (without
    the cut they were off by 3e-6 and 6e-5)."""
    kappa, d2, th = 0.5, 0.0213861, 0.021665
    (lo, hi), = qe.support(kappa, d2)
    rho = lambda x: float(qe.spectral_density(np.array([x]), kappa, d2)[0])  # noqa: E731
    h = lambda x: float(qe.stieltjes(np.array([x]), kappa, d2)[0].real)  # noqa: E731
    pts = sorted(qe.dips(kappa, d2) + [th, -2 * math.sqrt(d2), 0.0, 2 * math.sqrt(d2), 4 * math.sqrt(d2)])

    def integral(f, a, b):
        return quad(f, a, b, points=[p for p in pts if a < p < b], limit=2000, epsabs=1e-14, epsrel=1e-13)[0]
    mass = integral(rho, lo, hi)
    D = 2 * integral(lambda x: (x - th) * h(x) * rho(x), th, hi) / mass
    law = qe._Law.of(kappa, d2)
    Q = law.above(th)
    assert law.mass == pytest.approx(mass, abs=1e-10)
    assert 2 * Q.w @ ((Q.x - th) * Q.h) == pytest.approx(D, abs=1e-10)


def test_predict_vectorized_is_fast_and_falls_back(monkeypatch):
    """100 α points in one call: far fewer passes than one α at a time. The count of cubic solves (points × passes)
    stands in for time: at most 6 full-grid passes of nodes (measured 3.9 with the exact Jacobian, 6.6 with the
    finite-difference δ²-column it replaced). Points the batch leaves (the noiseless regime past perfect recovery) go
    to the one-at-a-time solver and come back finite."""
    calls = count_evaluations(monkeypatch)
    alphas = np.geomspace(0.2, 3.0, 100)
    p = qe.predict(alphas, 0.5, 0.1, 0.1)
    monkeypatch.undo()
    assert np.isfinite(p.test_error).all()
    assert len(alphas) <= sum(calls) <= 6 * len(alphas)  # the batch ran, and in few passes
    q = qe.predict([0.25, 0.3], 0.3, 1e-3, 0.0)  # below α_PR(0.3) ≈ 0.33 with Δ = 0
    assert np.isfinite(q.test_error).all()
