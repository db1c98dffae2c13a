"""The minimum-trace PSD interpolator (λ → 0⁺ of the nuclear route): against cvxpy, its certificate, and the
bisection that locates the recovery threshold."""

import math

import numpy as np
import pytest
import torch

from overparam.backend import generator
from overparam.problems.quadratic_net import make_problem
from overparam.solvers.nuclear_interp import (TraceInterpolator, design_matrix, min_trace_interpolation,
                                              recovery_threshold, smat, svec)


def test_svec_is_an_isometry_and_smat_inverts_it():
    g = generator(0)
    S = torch.randn(6, 6, generator=g, dtype=torch.float64)
    S = S + S.T
    assert float(svec(S).norm()) == pytest.approx(float(S.norm()), rel=1e-14)
    torch.testing.assert_close(smat(svec(S), 6), S, rtol=0, atol=1e-14)


@pytest.mark.parametrize("design", ["goe", "quadratic"])
def test_design_matrix_reproduces_the_operator(design):
    prob = make_problem(5, 2.0, 0.4, 0.0, generator(1), design)
    S = torch.randn(5, 5, generator=generator(2), dtype=torch.float64)
    S = S + S.T
    torch.testing.assert_close(design_matrix(prob.op) @ svec(S), prob.op.forward(S), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("design,noise", [("goe", 0.5), ("quadratic", 0.0), ("quadratic", 0.3)])
def test_min_trace_interpolation_against_cvxpy(design, noise):
    cp = pytest.importorskip("cvxpy")
    d = 6
    prob = make_problem(d, 8 / 36, 0.5, noise, generator(3), design)  # n = 8 measurements, p = 21 unknowns
    res = min_trace_interpolation(prob.op, prob.y, tol=1e-9, max_iter=50000)
    assert res.status == "converged", res.message
    B = design_matrix(prob.op).numpy()
    S = cp.Variable((d, d), PSD=True)
    iu = np.triu_indices(d)
    scale = np.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))
    cons = [B @ cp.multiply(S[iu], scale) == prob.y.numpy()]
    cp.Problem(cp.Minimize(cp.trace(S)), cons).solve(solver=cp.SCS, eps=1e-11, max_iters=500000)
    assert float(torch.trace(res.x)) == pytest.approx(float(np.trace(S.value)), rel=1e-6)
    if design == "goe":  # one minimizer; for the features xxᵀ − I of this tiny draw only the optimal value agrees
        assert np.abs(res.x.numpy() - S.value).max() < 1e-4
    # the certificate: feasible, PSD, dual nearly feasible, gap closed
    assert res.history["infeasibility"][-1] <= 1e-8 and res.history["dual_infeasibility"][-1] <= 1e-8
    assert abs(res.history["gap"][-1]) <= 1e-8
    assert float(torch.linalg.eigvalsh(res.x)[0]) >= -1e-12


def test_noiseless_solve_recovers_the_teacher_well_above_threshold():
    d = 16
    prob = make_problem(d, 0.45, 0.1, 0.0, generator(4), "goe")  # α_PR(0.1) ≈ 0.16
    res = min_trace_interpolation(prob.op, prob.y)
    assert res.converged
    assert float((res.x - prob.S_star).norm() / prob.S_star.norm()) < 1e-5


def test_bisection_finds_the_smallest_recovering_sample_size():
    d = 8
    p = d * (d + 1) // 2
    prob = make_problem(d, p / d**2, 0.25, 0.0, generator(5), "goe")
    interp = TraceInterpolator(prob.op)
    out = recovery_threshold(interp, prob.y, prob.S_star)
    k = out["k_success"]
    assert out["k_fail"] == k - 1 and out["solves"] <= math.ceil(math.log2(p))
    err = lambda j: float((interp.solve(prob.y[:j], j).x - prob.S_star).norm() / prob.S_star.norm())  # noqa: E731
    assert err(k) <= 1e-3 < err(k - 1)
    assert err(min(k + 3, p)) <= 1e-3 and err(max(k - 3, 1)) > 1e-3  # monotone around it (nested rows)


def test_bad_inputs():
    prob = make_problem(5, 0.4, 0.5, 0.0, generator(6), "goe")
    interp = TraceInterpolator(prob.op)
    with pytest.raises(ValueError, match="^tol: must be > 0"):
        interp.solve(prob.y, tol=-1.0)
    with pytest.raises(ValueError, match="^y: must have k"):
        interp.solve(prob.y[:3], 4)
    with pytest.raises(ValueError, match="^y:"):
        interp.solve(prob.y * float("nan"))
    with pytest.raises(ValueError, match="^interp: needs a square design"):
        recovery_threshold(interp, prob.y, prob.S_star)
    with pytest.raises(ValueError, match="^B: at most p"):
        TraceInterpolator(torch.zeros(20, 15, dtype=torch.float64))
