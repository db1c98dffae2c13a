"""Quadratic networks: operator, convex twin, equivalence with GD on W, and the asymptotic theory."""

import math

import numpy as np
import pytest
import torch

from overparam.backend import generator
from overparam.problems.quadratic_net import GOEDesign, QuadraticFeatures, QuadraticNet, make_problem, teacher
from overparam.solvers.factorized import gram_factorized_gd
from overparam.solvers.nuclear import nuclear_least_squares
from overparam.studies.nuclear_route import convex_fit, rank_of
from overparam.theory.quadratic_erm import (bayes_optimal_threshold, perfect_recovery_threshold, predict,
                                            spectrum_quadrature, support)


@pytest.mark.parametrize("design", ["quadratic", "goe"])
def test_operator_adjoint_and_second_moments(design):
    g = generator(0)
    prob = make_problem(7, 3.0, 0.5, 0.0, g, design)
    S = torch.randn(7, 7, generator=g, dtype=torch.float64)
    S = S + S.T
    r = torch.randn(prob.n, generator=g, dtype=torch.float64)
    assert float(prob.op.forward(S) @ r) == pytest.approx(float((S * prob.op.adjoint(r)).sum()), rel=1e-12)
    # E⟨Z, M⟩² = 2‖M‖²_F/d for both designs: the basis of test_error's closed form
    big = make_problem(6, 400.0, 0.5, 0.0, generator(1), design)
    M = torch.randn(6, 6, generator=g, dtype=torch.float64)
    M = M + M.T
    emp = float((big.op.forward(M) ** 2).mean())
    assert emp == pytest.approx(2 * float((M * M).sum()) / 6, rel=0.05)


def test_network_module_matches_operator():
    net = QuadraticNet(6, 4)
    X = torch.randn(9, 6, dtype=torch.float64)
    torch.testing.assert_close(net(X), QuadraticFeatures(X).forward(net.S()), rtol=1e-12, atol=1e-12)


def test_convex_twin_against_cvxpy():
    cp = pytest.importorskip("cvxpy")
    d, lam = 6, 0.2
    prob = make_problem(d, 2.0, 0.5, 0.1, generator(2), "quadratic")
    res = nuclear_least_squares(prob.op, prob.y, lam / d, psd=True, weight=2 / d**2, tol=1e-11, max_iter=100000)
    X = prob.op.X.numpy()
    S = cp.Variable((d, d), PSD=True)
    pred = (cp.sum(cp.multiply(X @ S, X), axis=1) - cp.trace(S)) / math.sqrt(d)
    obj = cp.sum_squares(prob.y.numpy() - pred) / d**2 + lam / d * cp.trace(S)
    cp.Problem(cp.Minimize(obj)).solve(solver=cp.SCS, eps=1e-10, max_iters=200000)
    assert prob.objective(res.x, lam) == pytest.approx(float(obj.value), rel=1e-6)
    assert np.abs(res.x.numpy() - S.value).max() < 1e-4


def test_gd_on_W_reaches_the_convex_objective_when_wide_enough():
    d, lam = 8, 0.1
    prob = make_problem(d, 1.0, 0.5, 0.1, generator(3), "quadratic")
    res = nuclear_least_squares(prob.op, prob.y, lam / d, psd=True, weight=2 / d**2, tol=1e-12, max_iter=100000)
    rank, _ = rank_of(res.x)
    P = prob.objective(res.x, lam)
    for m, should_match in ((d, True), (max(1, rank - 2), False)):
        gd = gram_factorized_gd(prob.op, prob.y, m, lam / d, generator(4), weight=2 / d**2, steps=30000,
                                grad_tol=1e-13)
        W = gd.x[0]
        gap = (prob.objective(W.T @ W / math.sqrt(m * d), lam) - P) / P
        assert gap >= -1e-10
        assert (gap <= 1e-6) == should_match, (m, rank, gap)


def test_spectrum_quadrature_moments():
    for kappa, d2 in ((0.5, 0.1), (2.0, 0.3), (0.2, 0.01)):
        Q = spectrum_quadrature(kappa, d2)
        assert Q.w.sum() == pytest.approx(1.0, abs=1e-12)
        assert Q.w @ Q.x == pytest.approx(math.sqrt(kappa), rel=1e-6)  # Tr S*/d
        assert Q.w @ Q.x**2 == pytest.approx(1 + kappa + d2, rel=1e-6)  # Q0 + δ²
    assert len(support(0.2, 0.01)) == 2  # the smoothed atom at 0 separates from the bulk


def test_theory_against_convex_solves_goe():
    # d = 40, 2 seeds: finite-size and sampling error of a few per cent
    alpha, kappa, lam, noise = 1.0, 0.5, 0.1, 0.1
    th = predict(alpha, kappa, lam, noise)
    sims = [convex_fit(40, alpha, kappa, lam, noise, s, "goe") for s in range(2)]
    test = np.mean([p.test_error(r.x) for p, r in sims])
    train = np.mean([p.train_error(r.x) for p, r in sims])
    rank = np.mean([rank_of(r.x)[0] / 40 for _, r in sims])
    assert test == pytest.approx(float(th.test_error), rel=0.05)
    assert train == pytest.approx(float(th.train_error), rel=0.10)
    assert rank == pytest.approx(float(th.rank_fraction), abs=0.06)


def test_prediction_shapes_and_thresholds():
    p = predict(np.array([0.5, 1.0, 2.0]), 0.5, 0.1, 0.1)
    assert p.test_error.shape == (3,) and np.all(np.diff(p.test_error) < 0)
    assert np.all(p.train_error < p.test_error)
    ks = np.array([0.1, 0.3, 0.6, 0.9])
    assert np.all(perfect_recovery_threshold(ks) >= bayes_optimal_threshold(ks))
    assert float(perfect_recovery_threshold(1.5)) == 0.5
    # the noiseless, nearly unregularized test error collapses past α_PR
    a_pr = float(perfect_recovery_threshold(0.3))
    below, above = predict([0.8 * a_pr, 1.2 * a_pr], 0.3, 1e-3, 0.0).test_error
    assert below > 1e-2 and above < 1e-3


def test_bad_inputs():
    with pytest.raises(ValueError, match="^kappa_star:"):
        predict(1.0, 0.0, 0.1, 0.1)
    with pytest.raises(ValueError, match="^alpha:"):
        predict([1.0, -1.0], 0.5, 0.1, 0.1)
    with pytest.raises(ValueError, match="^lam:"):
        predict(1.0, 0.5, -0.1, 0.1)
    with pytest.raises(ValueError, match="^noise:"):
        predict(1.0, 0.5, 0.1, -0.1)
    with pytest.raises(ValueError, match="^kappa_star:"):
        perfect_recovery_threshold(-1.0)
    with pytest.raises(ValueError, match="^kappa_star:"):
        teacher(5, -0.5, generator(0))
    with pytest.raises(ValueError, match="^m:"):
        QuadraticNet(5, 0)
    with pytest.raises(ValueError, match="^design:"):
        make_problem(5, 1.0, 0.5, 0.1, generator(0), "fourier")
    prob = make_problem(5, 1.0, 0.5, 0.1, generator(0))
    with pytest.raises(ValueError, match="^m:"):
        gram_factorized_gd(prob.op, prob.y, 0, 0.1, generator(0))


def test_study_at_test_scale(tmp_path):
    from overparam.pipeline import reproduce
    from overparam.sweep.executors import SerialExecutor
    out = reproduce(["nuclear-route"], "test", tmp_path, SerialExecutor(), quiet=True)
    by = {v.claim.split(":")[0]: v for v in out.verdicts}
    assert by["every point of the sweep finished"].passed
    eq = [v for v in out.verdicts if v.claim.startswith(("GD on W", "below that width"))]
    assert len(eq) == 2 and all(v.passed for v in eq)
    for name in ("errors_vs_alpha", "rank_fraction_vs_alpha", "recovery", "thresholds", "equivalence"):
        assert (tmp_path / "figures" / "nuclear-route" / f"{name}.png").is_file()
