"""Softmax regression: closed forms against autodiff, leverage-score sampling, Newton-type solvers, theory."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from overparam.diagnostics.curvature_path import hessian_lipschitz, lambda_min, spectral_error
from overparam.problems.softmax_regression import ACTIVATIONS, SoftmaxRegression, make_instance
from overparam.solvers.newton import SampledHessian, conjugate_gradient, solve
from overparam.solvers.sketch import leverage_scores, sample_rows, samples_for
from overparam.theory.newton import iterations_to, step_bound


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("density", [None, 0.3])
def test_gradient_hessian_hvp_against_autodiff(activation, density):
    prob, x0 = make_instance(200, 9, 0, activation, density)
    x = torch.from_numpy(0.6 * x0 + 0.05)
    g_auto = torch.func.grad(prob.torch_loss)(x)
    H_auto = torch.func.hessian(prob.torch_loss)(x)
    assert prob.loss(x) == pytest.approx(float(prob.torch_loss(x)), rel=1e-12)
    torch.testing.assert_close(prob.grad(x), g_auto, rtol=1e-10, atol=1e-10 * float(g_auto.abs().max()))
    torch.testing.assert_close(prob.hessian(x), H_auto, rtol=1e-10, atol=1e-10 * float(H_auto.abs().max()))
    v = torch.randn(9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(prob.hvp(x, v), H_auto @ v, rtol=1e-10, atol=1e-10 * float((H_auto @ v).abs().max()))


def test_leverage_scores_and_sampler_accuracy():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4000, 20)) * np.exp(rng.standard_normal((4000, 1)))  # non-uniform row norms
    exact = leverage_scores(A, sketch=False)
    assert exact.sum() == pytest.approx(20, rel=1e-10)
    approx = leverage_scores(A, sketch=True, k2=64, seed=1)
    assert np.median(np.abs(approx / exact - 1)) < 0.3  # JL with k2 = 64: ~±20 % per score
    # sampled Gram matrix: spectral accuracy ε₀ shrinks like 1/√s
    H = torch.from_numpy(A.T @ A)
    errs = []
    for s in (200, 800, 3200):
        e = []
        for rep in range(4):
            idx, w = sample_rows(exact, s, 20, np.random.default_rng(rep))
            At = A[idx] * np.sqrt(w)[:, None]
            e.append(spectral_error(H, torch.from_numpy(At.T @ At)))
        errs.append(np.mean(e))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.25 and errs[0] / errs[2] == pytest.approx(4.0, rel=0.35)  # 16× the samples, 4× the accuracy
    assert samples_for(0.5, 20) == math.ceil(20 * math.log(20) / 0.25)


def test_local_convergence_small_instance():
    prob, _ = make_instance(3000, 15, 2, "gelu", 0.3)
    x0 = torch.zeros(15, dtype=torch.float64)
    x_star = solve(prob, x0, "newton", grad_tol=0.0, max_iter=8).x
    errs = {}
    for method, kw in (("newton", {}), ("newton_cg", {}), ("approx_newton", {"s": 300})):
        res = solve(prob, x0, method, grad_tol=0.0, max_iter=10,
                    record=lambda ps: {"err": float((ps[0] - x_star).norm())}, **kw)
        errs[method] = res.history["err"]
        assert min(res.history["err"]) < 1e-11, method
    e = errs["approx_newton"]
    assert all(e[t + 1] < 0.2 * e[t] for t in range(4))  # linear at a good rate
    assert errs["newton"][2] < errs["newton"][1] ** 1.5  # quadratic
    by_eps = solve(prob, x0, "approx_newton", eps0=0.5, grad_tol=0.0, max_iter=12)
    assert by_eps.history["s"] == [float(samples_for(0.5, 15))]
    assert float((by_eps.x - x_star).norm()) < 1e-11
    gd = solve(prob, x0, "gd", grad_tol=0.0, max_iter=20, lr=1e3)
    assert gd.history["loss"][-1] < gd.history["loss"][0] and not gd.history["loss_increases"]


def test_path_diagnostics():
    prob, _ = make_instance(1000, 8, 3, "softplus")
    xs = [torch.zeros(8, dtype=torch.float64) + 0.1 * k for k in range(3)]
    Hs = [prob.hessian(x) for x in xs]
    assert all(lambda_min(H) > 0 for H in Hs)
    # known constant: H(x) = A + c(vᵀx)vvᵀ has ‖H(x) − H(x')‖ = c|vᵀ(x − x')|, so along v the estimate is exactly c
    A = torch.diag(torch.arange(1.0, 4.0, dtype=torch.float64))
    v = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3
    c = 2.5
    pts = [t * v for t in (0.0, 0.3, 1.1)] + [torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64)]
    assert hessian_lipschitz(pts, [A + c * float(v @ x) * torch.outer(v, v) for x in pts]) == pytest.approx(c, rel=1e-12)
    H = Hs[0]
    assert spectral_error(H, 1.1 * H) == pytest.approx(0.1, rel=1e-10)
    sampler = SampledHessian(prob, 200, seed=0)
    assert spectral_error(H, sampler(xs[0])) < 0.5


def test_cg_solves_spd():
    A = torch.randn(12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    A = A @ A.T + torch.eye(12, dtype=torch.float64)
    b = torch.ones(12, dtype=torch.float64)
    torch.testing.assert_close(conjugate_gradient(lambda v: A @ v, b, 1e-13), torch.linalg.solve(A, b))


def test_theory_bound():
    assert float(step_bound(0.1, 0.1, 1.0, 1.0)) == pytest.approx(2 * (0.1 + 0.1 / 0.9) * 0.1)
    assert math.isinf(float(step_bound(2.0, 0.1, 1.0, 1.0)))
    n = iterations_to(1e-10, 0.1, 0.1, 1.0, 1.0)
    assert 8 <= n <= 16  # roughly log(1e9)/log(1/0.2..0.4)
    assert math.isinf(iterations_to(1e-10, 0.1, 0.6, 1.0, 1.0))  # 2ε₀ > 1: no contraction


def test_bad_inputs():
    C = np.ones((5, 3))
    with pytest.raises(ValueError, match="^b: must have shape"):
        SoftmaxRegression(C, np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="^w: weights must be ≥ 0"):
        SoftmaxRegression(C, np.ones(5), -np.ones(5))
    Cn = C.copy()
    Cn[0, 0] = np.nan
    with pytest.raises(ValueError, match="^C: contains NaN"):
        SoftmaxRegression(Cn, np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="^C: contains NaN"):
        SoftmaxRegression(sp.csr_matrix(Cn), np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="^activation:"):
        SoftmaxRegression(C, np.ones(5), np.ones(5), activation="tanh")
    prob, _ = make_instance(100, 10, 0)
    with pytest.raises(ValueError, match="^s: 5 sampled rows are fewer than d = 10"):
        SampledHessian(prob, 5)
    with pytest.raises(ValueError, match="^x: must have shape"):
        prob.loss(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="^method:"):
        solve(prob, torch.zeros(10, dtype=torch.float64), "bfgs")


def test_study_at_test_scale(tmp_path):
    from overparam.pipeline import reproduce
    from overparam.sweep.executors import SerialExecutor
    out = reproduce(["approximate-newton"], "test", tmp_path, SerialExecutor(), quiet=True)
    by = {v.claim.split(":")[0]: v for v in out.verdicts}
    assert by["every point of the sweep finished"].passed
    for key in ("approximate Newton reaches ‖x_t − x*‖ ≤ 1e-10 within the iterations the one-step bound implies",
                "λ_min(∇²L) stays positive along every path",
                "measured ε₀ scales like √(d log d / s)"):
        assert by[key].passed, by[key]
    for name in ("convergence", "lambda_min", "time_per_iteration", "eps0_vs_s"):
        assert (tmp_path / "figures" / "approximate-newton" / f"{name}.png").is_file()
