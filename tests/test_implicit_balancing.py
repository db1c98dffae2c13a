"""Matrix sensing operators, factorized GD, the nuclear-norm solver, sensing theory and factor diagnostics."""

import math

import numpy as np
import pytest
import torch

from overparam.backend import generator
from overparam.diagnostics.norms import factor_balance, linear_chain_balance
from overparam.problems.matrix_sensing import (GaussianOperator, low_rank_truth, make_operator, measure)
from overparam.analysis import crossing, logistic_crossing
from overparam.solvers.factorized import factorized_gd, plateau_status, sensing_loss_and_grad, small_init
from overparam.solvers.nuclear import convex_recovery, nuclear_least_squares, psd_shift, svt
from overparam.solvers.result import SolverResult
from overparam.theory.sensing import (imbalance, imbalance_increment, nuclear_phase_transition,
                                      statistical_dimension_finite)


@pytest.mark.parametrize("kind", ["gaussian", "rank_one", "entries"])
def test_adjointness_and_factored_forms(kind):
    g = generator(0)
    op = make_operator(kind, 50, 7, 5, g)
    X = torch.randn(7, 5, generator=g, dtype=torch.float64)
    z = torch.randn(50, generator=g, dtype=torch.float64)
    lhs, rhs = float(op.forward(X) @ z), float((X * op.adjoint(z)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12)
    U = torch.randn(7, 3, generator=g, dtype=torch.float64)
    V = torch.randn(5, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(op.forward_factored(U, V), op.forward(U @ V.T), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.adjoint_right(z, V), op.adjoint(z) @ V, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.adjoint_left(z, U), op.adjoint(z).T @ U, rtol=1e-12, atol=1e-12)


def test_closed_form_gradient_matches_autograd():
    g = generator(1)
    op = make_operator("rank_one", 40, 6, 4, g)
    y = torch.randn(40, generator=g, dtype=torch.float64)
    U = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    V = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    loss = 0.5 * ((op.forward(U @ V.T) - y) ** 2).sum()
    gU, gV = torch.autograd.grad(loss, [U, V])
    val, (cU, cV) = sensing_loss_and_grad(op, y)([U.detach(), V.detach()])
    assert float(val) == pytest.approx(float(loss), rel=1e-12)
    torch.testing.assert_close(cU, gU, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(cV, gV, rtol=1e-11, atol=1e-12)


def test_imbalance_recursion_to_rounding():
    g = generator(2)
    L, R = low_rank_truth(9, 6, 2, 2.0, g)
    op = GaussianOperator(80, 9, 6, g)
    y = measure(op, L, R)
    U, V = small_init(9, 6, 6, 0.5, g)
    mu = 0.2
    for _ in range(5):
        E = op.adjoint(y - op.forward(U @ V.T))
        U1, V1 = U + mu * E @ V, V + mu * E.T @ U
        torch.testing.assert_close(imbalance(U1, V1) - imbalance(U, V), imbalance_increment(U, V, E, mu),
                                   rtol=1e-9, atol=1e-13)
        U, V = U1, V1


@pytest.mark.parametrize("kind", ["gaussian", "rank_one"])
def test_factorized_gd_recovers_and_stays_balanced(kind):
    g = generator(3)
    n1, n2, r = 20, 14, 2
    L, R = low_rank_truth(n1, n2, r, 2.0, g)
    op = make_operator(kind, 12 * r * (n1 + n2), n1, n2, g)
    res = factorized_gd(op, measure(op, L, R), min(n1, n2), 1e-5, g, steps=1500, truth=(L, R), record_every=10)
    h = res.history
    assert h["test_error"][-1] < 1e-3
    assert all(a <= b * (1 + 1e-9) for a, b in zip(h["imbalance"], h["imbalance_bound"]))
    assert max(h["sv3"]) < 10 * 1e-5 * math.sqrt(min(n1, n2))  # the (r+1)-th singular value stays tiny
    assert h["angle_col"][-1] < 1e-3 and h["angle_row"][-1] < 1e-3


def test_divergence_names_the_step_size():
    g = generator(4)
    L, R = low_rank_truth(8, 6, 1, 1.0, g)
    op = GaussianOperator(60, 8, 6, g)
    res = factorized_gd(op, measure(op, L, R), 6, 0.5, g, mu=50.0, steps=200)
    assert res.status == "diverged" and "lr = 50" in res.message


def test_bad_inputs():
    g = generator(5)
    with pytest.raises(ValueError, match="^r: rank 9 exceeds"):
        low_rank_truth(8, 6, 9, 1.0, g)
    with pytest.raises(ValueError, match="^m:"):
        GaussianOperator(0, 8, 6, g)
    with pytest.raises(ValueError, match="^kind:"):
        make_operator("fourier", 10, 8, 6, g)
    L, R = low_rank_truth(8, 6, 3, 1.0, g)
    op = GaussianOperator(30, 8, 6, g)
    y = measure(op, L, R)
    with pytest.raises(ValueError, match="^k: the factor width 2 is below the rank r = 3"):
        factorized_gd(op, y, 2, 1e-3, g, truth=(L, R))
    bad = y.clone()
    bad[0] = float("nan")
    with pytest.raises(ValueError, match="^y: contains NaN"):
        factorized_gd(op, bad, 4, 1e-3, g)
    with pytest.raises(ValueError, match="^alpha:"):
        factorized_gd(op, y, 4, -1.0, g)
    with pytest.raises(ValueError, match="^X: must have shape"):
        op.forward(torch.zeros(3, 3, dtype=torch.float64))


def test_proximal_maps():
    g = generator(6)
    X = torch.randn(6, 4, generator=g, dtype=torch.float64)
    Y, r = svt(X, 0.7)
    s, s2 = torch.linalg.svdvals(X), torch.linalg.svdvals(Y)
    np.testing.assert_allclose(s2[:r].numpy(), (s - 0.7).clamp_min(0)[:r].numpy(), atol=1e-12)
    S = X @ X.T - 1.5 * torch.eye(6, dtype=torch.float64)
    P, rp = psd_shift(S, 0.3)
    np.testing.assert_allclose(torch.linalg.eigvalsh(P).numpy(),
                               np.sort((torch.linalg.eigvalsh(S) - 0.3).clamp_min(0).numpy()), atol=1e-10)
    assert rp == int(((torch.linalg.eigvalsh(S) - 0.3) > 0).sum())


@pytest.mark.parametrize("psd", [False, True])
def test_nuclear_solver_against_cvxpy(psd):
    cp = pytest.importorskip("cvxpy")
    g = generator(7)
    n1, n2 = (6, 6) if psd else (7, 5)
    op = GaussianOperator(30, n1, n2, g)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    lam = 0.4
    res = nuclear_least_squares(op, y, lam, psd=psd, tol=1e-10, max_iter=50000)
    A = op.A.numpy() / math.sqrt(op.m)
    X = cp.Variable((n1, n2), PSD=True) if psd else cp.Variable((n1, n2))
    pen = cp.trace(X) if psd else cp.normNuc(X)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ cp.vec(X, order="C") - y.numpy()) + lam * pen))
    prob.solve(solver=cp.SCS, eps=1e-10, max_iters=200000)
    ours = res.history["objective"][-1]
    assert ours == pytest.approx(prob.value, rel=1e-6)
    assert np.abs(res.x.numpy() - X.value).max() < 1e-4
    assert res.history["gap"][-1] >= -1e-9


def test_statistical_dimension_against_monte_carlo():
    n1, n2, r = 24, 16, 2
    pt = nuclear_phase_transition(n1, n2, r)
    assert pt.dof == r * (n1 + n2 - r) and pt.dof < pt.delta < n1 * n2
    rng = np.random.default_rng(0)
    vals = []
    for _ in range(1500):
        G = rng.standard_normal((n1, n2))
        s = np.linalg.svd(G[r:, r:], compute_uv=False)
        vals.append(np.sum((G[:r, :r] - pt.tau * np.eye(r)) ** 2) + np.sum(G[:r, r:] ** 2) + np.sum(G[r:, :r] ** 2)
                    + np.sum(np.maximum(s - pt.tau, 0) ** 2))
    # the quadrature uses the Marchenko–Pastur limit; at these sizes it is within ~1 % of the exact expectation
    assert np.mean(vals) == pytest.approx(pt.delta, rel=0.02)
    # the seeded finite-size expectation agrees with this independent Monte Carlo to its standard error (×4)
    fin = statistical_dimension_finite(n1, n2, r, pt.tau, draws=1500, seed=1)
    assert abs(fin - np.mean(vals)) < 4 * np.std(vals) / math.sqrt(1500) * math.sqrt(2)


def test_factor_diagnostics():
    g = torch.Generator().manual_seed(8)
    Q, _ = torch.linalg.qr(torch.randn(10, 3, generator=g, dtype=torch.float64))
    P, _ = torch.linalg.qr(torch.randn(7, 3, generator=g, dtype=torch.float64))
    s = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    rep = factor_balance(Q * s.sqrt(), P * s.sqrt())  # balanced by construction
    assert rep.imbalance[0] < 1e-12 and rep.effective_rank == 3
    np.testing.assert_allclose(rep.singular_values[:3], [3, 2, 1], rtol=1e-12)
    rep2 = factor_balance(Q * s, P)
    assert rep2.imbalance[0] == pytest.approx(8.0, rel=1e-10)  # ‖diag(s²) − I‖ = 9 − 1
    # gradient descent with a small step keeps W2ᵀW2 − W1W1ᵀ nearly constant (conserved by gradient flow)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8, bias=False), torch.nn.Linear(8, 4, bias=False)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.1)
    before = linear_chain_balance(net).imbalance[0]
    X = torch.randn(64, 5, dtype=torch.float64)
    Y = X @ torch.randn(5, 4, dtype=torch.float64)
    opt = torch.optim.SGD(net.parameters(), lr=0.02)
    for _ in range(3000):
        opt.zero_grad()
        ((net(X) - Y) ** 2).mean().backward()
        opt.step()
    after = linear_chain_balance(net)
    assert ((net(X) - Y) ** 2).mean().item() < 1e-3  # it learned
    assert abs(after.imbalance[0] - before) < 0.05 * max(after.singular_values[0], 1)
    with pytest.raises(ValueError, match="^module: needs at least two"):
        linear_chain_balance(torch.nn.Linear(3, 3))


def test_imbalance_stays_within_the_recursion_bound_every_step():
    """‖UᵀU − VᵀV‖ ≤ ‖Δ₀‖ + μ² Σ max(‖EV‖², ‖EᵀU‖²): a triangle inequality on the exact recursion, so it holds by
    construction — checked here (to rounding) rather than claimed by the study."""
    g = generator(9)
    L, R = low_rank_truth(16, 12, 2, 2.0, g)
    op = GaussianOperator(3 * 2 * 28, 16, 12, g)
    for alpha in (1e-1, 1e-3):
        h = factorized_gd(op, measure(op, L, R), 12, alpha, g, steps=300, truth=(L, R), record_every=1).history
        assert all(a <= b * (1 + 1e-9) for a, b in zip(h["imbalance"], h["imbalance_bound"]))


def test_crossing_by_interpolation_and_by_logistic_fit():
    assert crossing([1.0, 2.0, 3.0], [0.0, 0.25, 0.75]) == pytest.approx(2.5)
    assert crossing([1.0, 2.0], [0.6, 0.9]) == 1.0 and math.isnan(crossing([1.0, 2.0], [0.1, 0.2]))
    # trials drawn from a known logistic curve centred at 1.5: the fit finds the centre within 3 standard errors,
    # and its standard error matches the spread of the estimate over independent repetitions (within 30 %)
    rng = np.random.default_rng(0)
    x = np.repeat(np.linspace(1.0, 2.0, 9), 12)
    est = []
    for _ in range(200):
        s = (rng.random(len(x)) < 1 / (1 + np.exp(-(x - 1.5) / 0.08))).astype(float)
        est.append(logistic_crossing(x, s))
    est = np.array(est)
    assert abs(est[0, 0] - 1.5) < 3 * est[0, 1]
    assert np.std(est[:, 0]) == pytest.approx(np.median(est[:, 1]), rel=0.3)
    assert all(math.isnan(v) for v in logistic_crossing([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1]))  # separable


def test_convex_recovery_is_exact_above_the_transition_and_not_below():
    n1, n2, r = 16, 12, 2
    pt = nuclear_phase_transition(n1, n2, r)
    errs = {}
    for q in (0.7, 1.4):
        g = generator(10)
        L, R = low_rank_truth(n1, n2, r, 2.0, g)
        op = GaussianOperator(int(q * pt.delta), n1, n2, g)
        res = convex_recovery(op, measure(op, L, R), tol=1e-7)
        assert res.converged
        errs[q] = float(torch.linalg.norm(res.x - L @ R.T) / torch.linalg.norm(L @ R.T))
    assert errs[1.4] < 1e-2 and errs[0.7] > 0.1


def test_plateau_status():
    flat = SolverResult(None, {"test_error": list(np.linspace(1.0, 0.99, 100))})
    moving = SolverResult(None, {"test_error": list(np.geomspace(1.0, 1e-3, 100))})
    assert plateau_status(flat, rtol=0.05) == "converged" and plateau_status(moving, rtol=0.05) == "max_steps"
    assert plateau_status(SolverResult(None, {"test_error": [1e-3] * 9 + [0.0]})) == "max_steps"
    assert plateau_status(SolverResult(None, {"test_error": [2e-8] * 9 + [0.0]})) == "converged"  # at resolution
    assert plateau_status(SolverResult(None, {}, status="diverged")) == "diverged"


# --- the study's claims on its recorded quick-scale run -----------------------------------------------------------
def _judge(df=None, theory=None):
    from study_results import load
    from overparam.studies import get
    study = get("implicit-balancing")
    return {v.claim: v for v in study.judge(load("implicit-balancing") if df is None else df, "quick", theory)}


def _by_start(verdicts, start):
    return next(v for name, v in verdicts.items() if name.startswith(start))


def test_quick_scale_claims_pass():
    verdicts = _judge()
    assert len(verdicts) == 4 and all(v.status == "pass" for v in verdicts.values()), verdicts


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_statistical_dimension_off_by_ten_percent_fails(factor):
    from overparam.studies.implicit_balancing import SensingTheory

    class Perturbed(SensingTheory):
        @staticmethod
        def phase_ratio(n1, n2, r):
            return factor * SensingTheory.phase_ratio(n1, n2, r)

    v = _by_start(_judge(theory=Perturbed), "convex recovery")
    assert v.status == "fail", v


def test_error_and_sv_claims_fail_when_alpha_does_not_matter():
    """The one-sided α claims can fail: give every α the errors of the largest α (the seeds' spread kept)."""
    from study_results import load
    df = load("implicit-balancing")
    gd = (df["part"] == "gd") & (df["k"] == 20)
    top = df[gd & (df["alpha"] == df.loc[gd, "alpha"].max())].set_index("seed")
    for col in ("final_error", "max_sv_next"):
        df.loc[gd, col] = top.loc[df.loc[gd, "seed"], col].to_numpy()
    verdicts = _judge(df)
    assert _by_start(verdicts, "final error falls").status == "fail"
    assert _by_start(verdicts, "σ_{r+1}").status == "fail"


def test_widths_claim_fails_when_a_narrow_width_does_worse():
    """Raise k = 2r's errors at the smallest α tenfold (one decade): the widths claim fails."""
    from study_results import load
    df = load("implicit-balancing")
    df.loc[(df["part"] == "gd") & (df["k"] == 4), "final_error"] *= 10.0
    assert _by_start(_judge(df), "every width").status == "fail"


def test_study_at_test_scale(tmp_path):
    from overparam.pipeline import reproduce
    from overparam.sweep.executors import SerialExecutor
    out = reproduce(["implicit-balancing"], "test", tmp_path, SerialExecutor(), quiet=True)
    assert all(v.passed for v in out.verdicts), [v for v in out.verdicts if not v.passed]
    for name in ("error_vs_iteration", "error_vs_alpha", "imbalance_vs_iteration", "singular_values",
                 "success_probability"):
        assert (tmp_path / "figures" / "implicit-balancing" / f"{name}.png").is_file()
