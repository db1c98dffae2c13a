"""Ridge path, deterministic equivalents, the power-law limit, the study, and the spectrum / norm diagnostics."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from overparam.backend import generator
from overparam.diagnostics.norms import NearInterpolatorWarning, norm_growth
from overparam.diagnostics.spectrum import powerlaw_exponent
from overparam.problems.linear_regression import powerlaw_problem
from overparam.solvers.ridge import RidgePath, ridge_at_tau
from overparam.theory.ridge import (deterministic_equivalent, powerlaw_I, powerlaw_interpolation_threshold,
                                    powerlaw_J, powerlaw_tradeoff)


def _data(n, alpha=1.5, gamma=2 / 3, seed=0):
    prob = powerlaw_problem(n, alpha, gamma, 1.0)
    g = generator(seed)
    X = prob.design(n, g)
    beta = prob.target(g)
    return prob, X, prob.labels(X, beta, g), beta


@pytest.mark.parametrize("gamma", [2 / 3, 2.0])  # p > n and p < n
def test_svd_path_matches_direct_solve(gamma):
    prob, X, y, _ = _data(60, gamma=gamma)
    path = RidgePath.fit(X, y)
    n, p = X.shape
    for lam in (1e-4, 1e-2, 1.0):
        beta = torch.linalg.solve(X.T @ X / n + lam * torch.eye(p, dtype=X.dtype), X.T @ y / n)
        torch.testing.assert_close(path.coef(lam), beta, rtol=1e-7, atol=1e-9)
        assert path.train_error(lam) == pytest.approx(float(((X @ beta - y) ** 2).mean()), rel=1e-9)
        assert path.norm2(lam) == pytest.approx(float(beta @ beta), rel=1e-9)
    lams = np.array([1e-3, 1e-1])
    np.testing.assert_allclose(path.train_error(lams), [path.train_error(l) for l in lams], rtol=1e-12)
    torch.testing.assert_close(path.coef(0.0), torch.linalg.pinv(X) @ y, rtol=1e-6, atol=1e-8)


def test_lambda_for_train_error_and_its_edges():
    _, X, y, _ = _data(80)
    path = RidgePath.fit(X, y)
    lo, hi = path.train_error_bounds
    assert lo < 1e-12 and hi == pytest.approx(float(y @ y) / 80)
    for tau in (1e-6, 0.2, 0.5, 0.9 * hi):
        lam = path.lambda_for_train_error(tau)
        assert path.train_error(lam) == pytest.approx(tau, rel=1e-9)
    assert path.lambda_for_train_error(0.0) == 0.0
    assert path.lambda_for_train_error(hi) == math.inf
    for bad in (-0.1, 1.01 * hi, float("nan")):
        with pytest.raises(ValueError, match="^tau:"):
            path.lambda_for_train_error(bad)


def test_bad_data_is_refused():
    _, X, y, _ = _data(20)
    Xn = X.clone()
    Xn[0, 0] = float("nan")
    with pytest.raises(ValueError, match="^X: contains NaN"):
        RidgePath.fit(Xn, y)
    with pytest.raises(ValueError, match="^y: must have shape"):
        RidgePath.fit(X, y[:-1])
    with pytest.raises(ValueError, match="^X: must be 2-D"):
        RidgePath.fit(y, y)
    with pytest.raises(ValueError, match="^n:"):
        powerlaw_problem(0, 1.5, 0.5, 1.0)
    with pytest.raises(ValueError, match="^alpha: must be > 1"):
        powerlaw_tradeoff(0.9, 0.5, 0.2)
    with pytest.raises(ValueError, match="^gamma:"):
        powerlaw_tradeoff(1.5, 1.5, 0.2)
    with pytest.raises(ValueError, match="^tau:"):
        powerlaw_tradeoff(1.5, 0.5, 1.2)
    with pytest.raises(ValueError, match="^lam:"):
        deterministic_equivalent(np.ones(3), np.ones(3), 1.0, -1.0, 10)


def test_hypergeometric_closed_forms_against_quadrature():
    a, g = 1.7, 0.6
    for k in (1e-3, 0.3, 4.0, 300.0):
        assert powerlaw_I(k, a, g) == pytest.approx(quad(lambda t: 1 / (1 + k * t**a), 0, 1 / g)[0], rel=1e-9)
        assert powerlaw_J(k, a, g) == pytest.approx(quad(lambda t: 1 / (1 + k * t**a) ** 2, 0, 1 / g)[0], rel=1e-9)


def test_powerlaw_curve_is_consistent():
    th = powerlaw_interpolation_threshold(1.5, 2 / 3)
    assert powerlaw_I(th.k_crit, 1.5, 2 / 3) == pytest.approx(1.0, abs=1e-10)
    taus = np.linspace(0.05, 0.95, 100)
    tr = powerlaw_tradeoff(1.5, 2 / 3, taus)
    np.testing.assert_allclose(tr.train_error, taus, rtol=1e-9)
    assert np.all(np.diff(tr.test_error) < 0)  # more training error, less test error
    assert tr.test_error[0] < th.test_error  # the ridgeless end is the worst
    assert np.all(tr.k > th.k_crit)


def test_deterministic_equivalent_approaches_the_powerlaw_limit():
    # at large n the finite-n equivalent with the paper's target converges to the n → ∞ formulas
    a, g, tau, n = 1.5, 2 / 3, 0.3, 20000
    lim = powerlaw_tradeoff(a, g, tau)
    prob = powerlaw_problem(n, a, g, 1.0)
    de = deterministic_equivalent(prob.spectrum.numpy(), prob.target_coefficients(), 1.0,
                                  float(lim.penalty) * n ** (-a), n)
    assert float(de.train_error) == pytest.approx(tau, rel=0.02)
    assert float(de.test_error) == pytest.approx(float(lim.test_error), rel=0.02)
    assert float(de.norm2) / n**a == pytest.approx(float(lim.norm2_over_n_alpha), rel=0.05)


def test_simulation_against_deterministic_equivalent_small_n():
    # n = 300: finite-size bias of the norm is ~2-4 %, sampling error ~3 % (8 designs × 16 draws)
    n, a = 300, 1.5
    prob = powerlaw_problem(n, a, 2 / 3, 1.0)
    sims = [ridge_at_tau(prob, n, [0.1, 0.5], generator(s), 16) for s in range(8)]
    for j, tau in enumerate((0.1, 0.5)):
        th = prob.theory_at_tau(n, tau)
        assert np.mean([s["test_error"][j] for s in sims]) == pytest.approx(th["test_error"], rel=0.03)
        assert np.mean([s["norm2"][j] for s in sims]) == pytest.approx(th["norm2"], rel=0.12)
        assert np.mean([s["lam"][j] for s in sims]) == pytest.approx(th["lam"], rel=0.10)


@pytest.mark.parametrize("alpha", [1.1, 1.5, 2.0, 3.0])
def test_spectrum_exponent_recovered(alpha):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 300)) * np.sqrt(np.arange(1, 301.0) ** -alpha)
    fit = powerlaw_exponent(X, n_boot=20)
    assert fit.exponent == pytest.approx(alpha, abs=0.05)
    assert fit.interval[0] <= fit.exponent <= fit.interval[1]
    assert fit.tail_exponent == pytest.approx(1 + 1 / fit.exponent)
    noisy = np.arange(1, 2001.0) ** -alpha * np.exp(0.1 * rng.standard_normal(2000))
    assert powerlaw_exponent(noisy, n_boot=20).exponent == pytest.approx(alpha, abs=0.05)
    K = X.T @ X / 2000  # a covariance matrix is taken as a matrix
    assert powerlaw_exponent(K, n_boot=5).exponent == pytest.approx(fit.exponent, abs=1e-8)


def test_norm_growth_flags_the_interpolator_and_not_strong_ridge():
    prob = powerlaw_problem(400, 2.0, 2 / 3, 1.0)
    g = generator(3)
    X = prob.design(400, g)
    y = prob.labels(X, prob.target(g), g)
    sizes = [50, 100, 200, 400]

    def interpolator(Xs, ys):
        return RidgePath.fit(Xs[:, :600], ys).coef(0.0)  # p = 600 features for every n: interpolates

    with pytest.warns(NearInterpolatorWarning):
        res = norm_growth(interpolator, X, y, sizes)
    assert res.near_interpolator and res.exponent > 1 and res.relative_train_error < 1e-10

    def strong_ridge(Xs, ys):
        return RidgePath.fit(Xs, ys).coef(1.0)

    with warnings.catch_warnings():
        warnings.simplefilter("error", NearInterpolatorWarning)
        res = norm_growth(strong_ridge, X, y, sizes)
    assert not res.near_interpolator
    with pytest.raises(ValueError, match="^sizes:"):
        norm_growth(strong_ridge, X, y, [10, 1000])


def test_study_at_test_scale(tmp_path):
    from overparam.pipeline import reproduce
    from overparam.sweep.executors import SerialExecutor
    out = reproduce(["near-interpolators"], "test", tmp_path, SerialExecutor(), quiet=True)
    assert out.passed, [v for v in out.verdicts if not v.passed]
    slopes = [v for v in out.verdicts if "fitted log-log slope" in v.claim]
    # at n ≤ 400 the deterministic equivalent's slope is already within 0.1 of α
    assert [round(v.predicted, 1) for v in slopes] == [1.2, 2.5]
    assert all(abs(v.measured - v.predicted) < 0.3 for v in slopes)
    for name in ("norm_vs_n", "tradeoff", "network_norm_vs_n"):
        assert (tmp_path / "figures" / "near-interpolators" / f"{name}.png").stat().st_size > 5000


# --- the study's claims on its recorded quick-scale run -------------------------------------------------------------
def _judge(theory=None):
    from study_results import load
    from overparam.studies import get
    return get("near-interpolators").judge(load("near-interpolators"), "quick", theory)


def test_quick_scale_claims_pass():
    verdicts = _judge()
    assert len(verdicts) == 5 and all(v.status == "pass" for v in verdicts), verdicts


def _perturbed(norm_factor=1.0, alpha_factor=1.0, test_factor=1.0):
    from overparam.studies.near_interpolators import RidgeTheory

    class Perturbed(RidgeTheory):
        @staticmethod
        def norm2(n, alpha, tau):
            return norm_factor * RidgeTheory.norm2(n, alpha * alpha_factor, tau)

        @staticmethod
        def test_error(n, alpha, tau):
            return test_factor * RidgeTheory.test_error(n, alpha, tau)
    return Perturbed


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_norm_off_by_five_percent_fails(factor):
    """The deterministic equivalent of ‖β̂‖² scaled by ±5 %: both pooled-ratio claims fail."""
    bad = [v for v in _judge(_perturbed(norm_factor=factor)) if v.claim.startswith("mean ‖β̂‖²")]
    assert len(bad) == 2 and all(v.status == "fail" for v in bad), bad


@pytest.mark.parametrize("factor", [1.05])
def test_alpha_off_by_five_percent_fails_the_slopes(factor):
    """α raised by 5 % in the theory: both slope claims fail (the DE's slope moves by ≈ 0.05·α). (α lowered by 5 % is
    caught at α = 2.5 only: at α = 1.25 the shift, 0.06, is about the measured finite-n bias allowance.)"""
    bad = [v for v in _judge(_perturbed(alpha_factor=factor)) if "fitted log-log slope" in v.claim]
    assert len(bad) == 2 and all(v.status == "fail" for v in bad), bad


@pytest.mark.parametrize("factor", [0.97, 1.03])
def test_tradeoff_off_by_three_percent_fails(factor):
    bad = [v for v in _judge(_perturbed(test_factor=factor)) if v.claim.startswith("test error against")]
    assert len(bad) == 1 and bad[0].status == "fail", bad
