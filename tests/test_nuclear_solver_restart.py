"""The convex solver's restart schemes and step rule: every variant reaches the minimizer of the original solver
(function-value restart, fixed step) within the stopping tolerance, and the restarts and backtracks are counted
(issue: the nuclear route at paper scale, iteration count)."""

import pytest
import torch

from overparam.backend import generator
from overparam.problems.matrix_sensing import low_rank_truth, make_operator, measure
from overparam.problems.quadratic_net import make_problem
from overparam.solvers.nuclear import RESTARTS, nuclear_least_squares

VARIANTS = [dict(restart="gradient"), dict(restart="none"), dict(restart="gradient", step_growth=1.2),
            dict(restart="function", step_growth=1.2)]


def psd_problem(d=20, alpha=1.0, seed=0):
    prob = make_problem(d, alpha, 0.5, 0.1, generator(seed), "quadratic")
    return prob.op, prob.y, 0.1 / d, 2.0 / d**2


def sensing_problem(seed=1):
    op = make_operator("gaussian", 300, 12, 10, generator(seed))
    L, R = low_rank_truth(12, 10, 3, 2.0, generator(seed + 1))
    return op, measure(op, L, R, noise=0.05, g=generator(seed + 2)), 0.5, 1.0


@pytest.mark.parametrize("psd", [True, False])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_every_variant_reaches_the_reference_minimizer(psd, variant):
    # reference: function-value restart with a fixed step (the solver before the gradient scheme); both stopped at a
    # relative duality gap of 1e-11, so their objectives agree to 2e-11 relative and the minimizers (strongly convex
    # here: n ≥ d(d+1)/2, resp. m ≥ n1·n2 on the Gaussian design) to √(2 · 2e-11 · P / μ) ~ 1e-5 relative
    op, y, lam, w = psd_problem() if psd else sensing_problem()
    ref = nuclear_least_squares(op, y, lam, psd=psd, weight=w, tol=1e-11, max_iter=20000, restart="function")
    res = nuclear_least_squares(op, y, lam, psd=psd, weight=w, tol=1e-11, max_iter=20000, **variant)
    assert ref.converged and res.converged, (ref.message, res.message)
    P_ref, P = ref.history["objective"][-1], res.history["objective"][-1]
    assert abs(P - P_ref) <= 2e-11 * max(1.0, abs(P_ref))
    assert float((res.x - ref.x).norm() / ref.x.norm()) < 1e-5
    # counts are cumulative and recorded at every check
    for key in ("restarts", "backtracks"):
        h = res.history[key]
        assert len(h) == len(res.history["step"]) and h == sorted(h)
    if variant["restart"] == "none":
        assert res.history["restarts"][-1] == 0
    if variant.get("step_growth", 1.0) == 1.0:
        assert res.history["backtracks"][-1] == 0  # the 1.1 × power estimate of L is never too small here


def test_gradient_restart_takes_fewer_iterations_and_passes():
    # measured at d = 30, α = 1 (seed 2): the gradient scheme restarts and converges in about half the function
    # scheme's iterations, at one forward and one adjoint per iteration (no redone steps)
    op, y, lam, w = psd_problem(d=30, seed=2)
    fn = nuclear_least_squares(op, y, lam, psd=True, weight=w, tol=1e-9, max_iter=5000, restart="function")
    gr = nuclear_least_squares(op, y, lam, psd=True, weight=w, tol=1e-9, max_iter=5000, restart="gradient")
    assert fn.converged and gr.converged
    assert gr.history["restarts"][-1] > 0
    assert gr.steps <= 0.75 * fn.steps, (gr.steps, fn.steps)
    # passes: 12 for the power estimate of L, one adjoint at X0 = 0, then 2 per iteration
    assert gr.history["passes"][-1] == 12 + 1 + 2 * gr.steps


def test_step_growth_tries_longer_steps_and_backtracks():
    op, y, lam, w = psd_problem(d=16, seed=3)
    res = nuclear_least_squares(op, y, lam, psd=True, weight=w, tol=1e-9, max_iter=5000, step_growth=1.5)
    assert res.converged
    assert res.history["backtracks"][-1] > 0
    # every try beyond the first costs one forward
    assert res.history["passes"][-1] == 12 + 1 + 2 * res.steps + res.history["backtracks"][-1]


def test_bad_restart_options():
    op, y, lam, w = psd_problem(d=6)
    assert RESTARTS == ("gradient", "function", "none")
    with pytest.raises(ValueError, match="^restart:"):
        nuclear_least_squares(op, y, lam, psd=True, restart="sometimes")
    with pytest.raises(ValueError, match="^step_growth:"):
        nuclear_least_squares(op, y, lam, psd=True, step_growth=0.5)


def test_study_work_counts_the_measured_iterations():
    # the nuclear-route plan: a point's work is one iteration's work times the iterations measured at its α (table
    # nodes exact, log-log interpolation between them), in units of the calibration run's 214 iterations; the
    # equivalence part's work (GD's steps) does not depend on the convex solve's iterations
    from overparam.studies import nuclear_route as nr
    p = dict(design="quadratic", d=400, alpha=1.0, lam=0.1)
    assert nr._iterations(p) == pytest.approx(110)
    assert nr._work(p) == pytest.approx(nr._pass_work(p) * 110 / nr.ITERS_CALIBRATION)
    mid = nr._iterations(dict(p, alpha=2 ** -0.5))  # halfway between α = 0.5 and 1 in log α
    assert mid == pytest.approx((375 * 110) ** 0.5)
    assert nr._iterations(dict(p, alpha=0.25, lam=nr.RECOVERY_LAM)) == pytest.approx(2950)
    eq = dict(design="quadratic", d=20, alpha=1.0, lam=0.1, m=8, steps=1000)
    assert nr._equivalence_work(eq) == pytest.approx(20**4 * nr.REAL_PASS_COST * (1 + 1000 * 8 / 20))
