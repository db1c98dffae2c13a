"""Bad inputs at every public door, and unusual-but-valid ones that must work.

``BAD``: for each public function of ``op.theory``, ``op.problems``, ``op.solvers``, ``op.diagnostics`` and
``op.linalg`` (the modules checked with :mod:`overparam.validation`), inputs of each kind — wrong shapes, NaN/inf,
empty, zero or negative sizes, a rank above the dimensions, unknown names, wrong types, mixed devices — each must
raise one ``ValueError`` line that starts with the named parameter. ``VALID``: float32, NumPy, Python sequences,
integer arrays, mixed dtypes, NumPy or torch Generators as seeds and a far starting point must work and give the
numbers of the float64 torch path (or of an independent computation) to the stated tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import overparam as op

th, pb, sv, dg, la = op.theory, op.problems, op.solvers, op.diagnostics, op.linalg
NAN, INF = float("nan"), float("inf")
SPEC, B = [1.0, 0.5, 0.25, 0.125], [0.5, 0.5, 0.5, 0.5]


# --- small objects the cases act on (built on first use, seeded) ---------------------------------------------------
def _xy(n: int = 20, p: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal(n)


def _path() -> sv.RidgePath:
    return sv.RidgePath.fit(*_xy())


def _net(d: int = 2, m: int = 3, dtype=torch.float64) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return pb.shallow_net(d, m, "tanh", dtype)


def _data(n: int = 10, d: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, 1, generator=g, dtype=torch.float64)


def _hess() -> dg.HessianOperator:
    return dg.HessianOperator(_net(), torch.nn.MSELoss(), *_data())


def _sensing(m: int = 60, n1: int = 6, n2: int = 5):
    g = 0
    A = pb.make_operator("gaussian", m, n1, n2, g)
    L, R = pb.low_rank_truth(n1, n2, 2, 2.0, 1)
    return A, pb.measure(A, L, R), (L, R)


def _nan_net() -> torch.nn.Sequential:
    net = _net()
    with torch.no_grad():
        net[0].weight[0, 0] = NAN
    return net


def _quad(ps):
    return 0.5 * ((ps[0] - 1.0) ** 2).sum()


def _cuda_tensor(x):
    return torch.as_tensor(x).cuda()


CUDA = torch.cuda.is_available()

# (id, thunk, parameter the message must start with)
BAD: list[tuple[str, object, str]] = [
    # theory.ridge
    ("de-nan-target", lambda: th.deterministic_equivalent(SPEC, [0.5, NAN, 0.5, 0.5], 1.0, 0.1, 10), "target_coefficients"),
    ("de-inf-target", lambda: th.deterministic_equivalent(SPEC, [0.5, INF, 0.5, 0.5], 1.0, 0.1, 10), "target_coefficients"),
    ("de-empty-spectrum", lambda: th.deterministic_equivalent([], [], 1.0, 0.1, 10), "spectrum"),
    ("de-2d-spectrum", lambda: th.deterministic_equivalent(np.eye(3), np.eye(3), 1.0, 0.1, 10), "spectrum"),
    ("de-shape-mismatch", lambda: th.deterministic_equivalent(SPEC, B[:3], 1.0, 0.1, 10), "target_coefficients"),
    ("de-nan-spectrum", lambda: th.deterministic_equivalent([1.0, NAN, 0.5, 0.1], B, 1.0, 0.1, 10), "spectrum"),
    ("de-zero-eigenvalue", lambda: th.deterministic_equivalent([1.0, 0.0, 0.5, 0.1], B, 1.0, 0.1, 10), "spectrum"),
    ("de-negative-lam", lambda: th.deterministic_equivalent(SPEC, B, 1.0, [-1.0, 0.1], 10), "lam"),
    ("de-nan-lam", lambda: th.deterministic_equivalent(SPEC, B, 1.0, NAN, 10), "lam"),
    ("de-negative-noise", lambda: th.deterministic_equivalent(SPEC, B, -1.0, 0.1, 10), "sigma2"),
    ("de-zero-n", lambda: th.deterministic_equivalent(SPEC, B, 1.0, 0.1, 0), "n"),
    ("de-fractional-n", lambda: th.deterministic_equivalent(SPEC, B, 1.0, 0.1, 2.5), "n"),
    ("de-string-spectrum", lambda: th.deterministic_equivalent("abc", B, 1.0, 0.1, 10), "spectrum"),
    ("de-ragged-spectrum", lambda: th.deterministic_equivalent([[1.0], [1.0, 2.0]], B, 1.0, 0.1, 10), "spectrum"),
    ("lam-theory-negative-tau", lambda: th.lambda_for_train_error_theory(SPEC, B, 1.0, -1.0, 10), "tau"),
    ("lam-theory-unattainable", lambda: th.lambda_for_train_error_theory(SPEC, B, 1.0, 100.0, 10), "tau"),
    ("threshold-negative-noise", lambda: th.powerlaw_interpolation_threshold(1.5, 2 / 3, sigma2=-1), "sigma2"),
    ("threshold-alpha-1", lambda: th.powerlaw_interpolation_threshold(1.0, 2 / 3), "alpha"),
    ("threshold-gamma-above-1", lambda: th.powerlaw_interpolation_threshold(1.5, 1.5), "gamma"),
    ("threshold-alpha-str", lambda: th.powerlaw_interpolation_threshold("1.5", 0.5), "alpha"),
    ("tradeoff-tau-above-sigma2", lambda: th.powerlaw_tradeoff(1.5, 2 / 3, [0.5, 1.0]), "tau"),
    ("tradeoff-tau-zero", lambda: th.powerlaw_tradeoff(1.5, 2 / 3, 0.0), "tau"),
    ("tradeoff-tau-empty", lambda: th.powerlaw_tradeoff(1.5, 2 / 3, []), "tau"),
    ("tradeoff-zero-noise", lambda: th.powerlaw_tradeoff(1.5, 2 / 3, 0.5, sigma2=0.0), "sigma2"),
    # theory.sensing
    ("dof-rank-above-dims", lambda: th.degrees_of_freedom(3, 4, 5), "r"),
    ("dof-zero-n1", lambda: th.degrees_of_freedom(0, 4, 1), "n1"),
    ("phase-rank-above-dims", lambda: th.nuclear_phase_transition(3, 4, 5), "r"),
    ("phase-negative-r", lambda: th.nuclear_phase_transition(3, 4, -1), "r"),
    ("imbalance-1d", lambda: th.imbalance(np.ones(3), np.ones((3, 2))), "U"),
    ("imbalance-width", lambda: th.imbalance(np.ones((3, 2)), np.ones((4, 3))), "V"),
    ("imbalance-nan", lambda: th.imbalance(np.ones((3, 2)), np.full((4, 2), NAN)), "V"),
    ("bound-increment-negative-mu", lambda: th.imbalance_bound_increment(np.ones((3, 2)), np.ones((4, 2)), -1), "mu"),
    # theory.newton
    ("step-bound-negative-r", lambda: th.step_bound([-1.0], 0.1, 1.0, 1.0), "r"),
    ("step-bound-zero-l", lambda: th.step_bound([0.1], 0.1, 1.0, 0.0), "l"),
    ("step-bound-nan-eps0", lambda: th.step_bound([0.1], NAN, 1.0, 1.0), "eps0"),
    ("iterations-zero-eps", lambda: th.iterations_to(0.0, 1.0, 0.1, 1.0, 10.0), "eps"),
    ("iterations-zero-max-iter", lambda: th.iterations_to(1e-3, 1.0, 0.1, 1.0, 10.0, max_iter=0), "max_iter"),
    ("cost-zero-n", lambda: th.step_cost_ratio(0, 10, 100, 50), "n"),
    ("cost-negative-omega", lambda: th.step_cost_ratio(1000, 10, 100, 50, omega=-1), "omega"),
    # problems.linear_regression
    ("spectrum-zero-p", lambda: pb.powerlaw_spectrum(0, 1.5), "p"),
    ("spectrum-negative-alpha", lambda: pb.powerlaw_spectrum(10, -1.0), "alpha"),
    ("problem-zero-gamma", lambda: pb.powerlaw_problem(100, 1.5, 0.0, 1.0), "gamma"),
    ("problem-negative-noise", lambda: pb.powerlaw_problem(100, 1.5, 0.5, -1.0), "sigma2"),
    ("problem-unknown-device", lambda: pb.powerlaw_problem(100, 1.5, 0.5, 1.0, device="tpu"), "device"),
    ("lrp-zero-eigenvalue", lambda: pb.LinearRegressionProblem(torch.tensor([1.0, 0.0]), 1.0), "spectrum"),
    ("lrp-nan-spectrum", lambda: pb.LinearRegressionProblem([1.0, NAN], 1.0), "spectrum"),
    ("lrp-negative-noise", lambda: pb.LinearRegressionProblem([1.0, 0.5], -1.0), "sigma2"),
    ("lrp-design-zero-n", lambda: pb.LinearRegressionProblem([1.0, 0.5], 1.0).design(0, 0), "n"),
    ("lrp-design-bad-seed", lambda: pb.LinearRegressionProblem([1.0, 0.5], 1.0).design(5, "x"), "g"),
    ("lrp-labels-shape", lambda: pb.LinearRegressionProblem([1.0, 0.5], 1.0).labels(np.ones((3, 2)), [1.0], 0),
     "beta_star"),
    # problems.matrix_sensing
    ("operator-unknown-kind", lambda: pb.make_operator("foo", 10, 3, 3, 0), "kind"),
    ("operator-zero-m", lambda: pb.make_operator("gaussian", 0, 3, 3, 0), "m"),
    ("operator-fractional-n1", lambda: pb.make_operator("gaussian", 10, 2.5, 3, 0), "n1"),
    ("operator-string-seed", lambda: pb.make_operator("gaussian", 10, 3, 3, "x"), "g"),
    ("operator-negative-seed", lambda: pb.make_operator("gaussian", 10, 3, 3, -1), "g"),
    ("operator-int-dtype", lambda: pb.make_operator("gaussian", 10, 3, 3, 0, torch.int32), "dtype"),
    ("truth-rank-above-dims", lambda: pb.low_rank_truth(3, 4, 5, 2.0, 0), "r"),
    ("truth-kappa-below-1", lambda: pb.low_rank_truth(3, 4, 2, 0.5, 0), "kappa"),
    ("truth-no-seed", lambda: pb.low_rank_truth(3, 4, 2, 2.0, None), "g"),
    ("measure-shapes", lambda: pb.measure(_sensing()[0], np.ones((5, 2)), np.ones((5, 2))), "R"),
    ("measure-negative-noise", lambda: pb.measure(_sensing()[0], *_sensing()[2], noise=-1.0, g=0), "noise"),
    ("measure-noise-without-seed", lambda: pb.measure(_sensing()[0], *_sensing()[2], noise=0.1), "g"),
    ("measure-not-an-operator", lambda: pb.measure(np.eye(3), np.ones((3, 1)), np.ones((3, 1))), "op"),
    # problems.shallow_net
    ("net-unknown-activation", lambda: pb.shallow_net(2, 3, "foo"), "act"),
    ("net-zero-width", lambda: pb.shallow_net(2, 0, "tanh"), "m"),
    ("net-int-dtype", lambda: pb.shallow_net(2, 3, "tanh", torch.int64), "dtype"),
    ("random-problem-negative-noise", lambda: pb.random_problem(2, 10, 2, "tanh", 0, noise=-1.0), "noise"),
    ("random-problem-zero-n", lambda: pb.random_problem(2, 0, 2, "tanh", 0), "n"),
    # solvers.gradient
    ("minimize-zero-lr", lambda: sv.minimize(_quad, [np.zeros(3)], lr=0.0), "lr"),
    ("minimize-unknown-method", lambda: sv.minimize(_quad, [np.zeros(3)], lr=0.1, method="foo"), "method"),
    ("minimize-zero-steps", lambda: sv.minimize(_quad, [np.zeros(3)], lr=0.1, max_steps=0), "max_steps"),
    ("minimize-no-params", lambda: sv.minimize(_quad, [], lr=0.1), "params"),
    ("minimize-nan-start", lambda: sv.minimize(_quad, [np.array([0.0, NAN])], lr=0.1), "params[0]"),
    ("minimize-objective-not-callable", lambda: sv.minimize(3.0, [np.zeros(3)], lr=0.1), "objective"),
    ("minimize-betas", lambda: sv.minimize(_quad, [np.zeros(3)], lr=0.1, method="adam", betas=(1.0, 0.9)), "betas"),
    ("minimize-direction-missing", lambda: sv.minimize(_quad, [np.zeros(3)], lr=0.1, method="direction"),
     "direction"),
    ("minimize-negative-momentum", lambda: sv.minimize(_quad, [np.zeros(3)], lr=0.1, momentum=-0.5), "momentum"),
    ("armijo-shrink-1", lambda: sv.armijo_step(lambda t: t, torch.tensor(1.0), torch.tensor(-1.0), shrink=1.0),
     "shrink"),
    ("armijo-zero-start", lambda: sv.armijo_step(lambda t: t, torch.tensor(1.0), torch.tensor(-1.0), start=0.0),
     "start"),
    # solvers.factorized
    ("fgd-negative-steps", lambda: sv.factorized_gd(*_sensing()[:2], 3, 1e-3, 0, steps=-5), "steps"),
    ("fgd-y-shape", lambda: sv.factorized_gd(_sensing()[0], np.ones(7), 3, 1e-3, 0), "y"),
    ("fgd-y-nan", lambda: sv.factorized_gd(_sensing()[0], np.full(60, NAN), 3, 1e-3, 0), "y"),
    ("fgd-zero-width", lambda: sv.factorized_gd(*_sensing()[:2], 0, 1e-3, 0), "k"),
    ("fgd-zero-alpha", lambda: sv.factorized_gd(*_sensing()[:2], 3, 0.0, 0), "alpha"),
    ("fgd-width-below-rank", lambda: sv.factorized_gd(*_sensing()[:2], 1, 1e-3, 0, truth=_sensing()[2]), "k"),
    ("fgd-init-shapes", lambda: sv.factorized_gd(*_sensing()[:2], 3, 1e-3, 0, init=(np.ones((6, 2)), np.ones((5, 2)))),
     "init"),
    ("fgd-negative-mu", lambda: sv.factorized_gd(*_sensing()[:2], 3, 1e-3, 0, mu=-1.0), "mu"),
    ("fgd-not-an-operator", lambda: sv.factorized_gd(np.eye(3), np.ones(3), 3, 1e-3, 0), "op"),
    ("gram-negative-lam", lambda: sv.gram_factorized_gd(*_sensing(36, 6, 6)[:2], 4, -1.0, 0), "lam"),
    ("gram-unknown-method", lambda: sv.gram_factorized_gd(*_sensing(36, 6, 6)[:2], 4, 0.1, 0, method="foo"), "method"),
    ("gram-non-square", lambda: sv.gram_factorized_gd(*_sensing()[:2], 4, 0.1, 0), "op"),
    # solvers.module
    ("fit-no-params", lambda: sv.fit_module(torch.nn.Tanh(), torch.nn.MSELoss(), *_data(), lr=0.1), "model"),
    ("fit-nan-inputs", lambda: sv.fit_module(_net(), torch.nn.MSELoss(), np.full((10, 2), NAN), _data()[1], lr=0.1),
     "inputs"),
    ("fit-length-mismatch", lambda: sv.fit_module(_net(), torch.nn.MSELoss(), _data()[0], _data()[1][:5], lr=0.1),
     "targets"),
    ("fit-empty", lambda: sv.fit_module(_net(), torch.nn.MSELoss(), np.zeros((0, 2)), np.zeros((0, 1)), lr=0.1),
     "inputs"),
    ("fit-loss-not-callable", lambda: sv.fit_module(_net(), "mse", *_data(), lr=0.1), "loss_fn"),
    ("polish-zero-damping", lambda: sv.newton_polish(_net(), torch.nn.MSELoss(), *_data(), damping=0.0), "damping"),
    ("polish-zero-steps", lambda: sv.newton_polish(_net(), torch.nn.MSELoss(), *_data(), max_steps=0), "max_steps"),
    ("batched-newton-1d", lambda: sv.batched_damped_newton(lambda t: t.sum(-1), np.zeros(3), lambda t: t), "theta"),
    ("batched-newton-not-callable", lambda: sv.batched_damped_newton(None, np.zeros((2, 3)), lambda t: t), "losses"),
    # solvers.ridge
    ("ridge-nan-X", lambda: sv.RidgePath.fit(np.full((5, 3), NAN), np.ones(5)), "X"),
    ("ridge-y-length", lambda: sv.RidgePath.fit(*(lambda X, y: (X, y[:-1]))(*_xy())), "y"),
    ("ridge-empty", lambda: sv.RidgePath.fit(np.zeros((0, 3)), np.zeros(0)), "X"),
    ("ridge-3d-X", lambda: sv.RidgePath.fit(np.ones((2, 3, 4)), np.ones(2)), "X"),
    ("ridge-negative-rtol", lambda: sv.RidgePath.fit(*_xy(), rtol=-1.0), "rtol"),
    ("ridge-train-error-negative", lambda: _path().train_error(-1.0), "lam"),
    ("ridge-train-error-nan", lambda: _path().train_error(NAN), "lam"),
    ("ridge-coef-negative", lambda: _path().coef(-1.0), "lam"),
    ("ridge-norm2-negative", lambda: _path().norm2([0.1, -1.0]), "lam"),
    ("ridge-tau-nan", lambda: _path().lambda_for_train_error(NAN), "tau"),
    ("ridge-tau-unattainable", lambda: _path().lambda_for_train_error(1e9), "tau"),
    ("ridge-at-tau-not-a-problem", lambda: sv.ridge_at_tau("p", 10, [0.1], 0, 1), "prob"),
    ("ridge-at-tau-zero-reps", lambda: sv.ridge_at_tau(pb.powerlaw_problem(10, 1.5, 0.5, 1.0), 10, [0.1], 0, 0),
     "reps"),
    ("ridge-at-tau-negative-tau", lambda: sv.ridge_at_tau(pb.powerlaw_problem(10, 1.5, 0.5, 1.0), 10, [-0.1], 0, 1),
     "taus"),
    # diagnostics.hessian
    ("hessian-zero-batch", lambda: dg.HessianOperator(_net(), torch.nn.MSELoss(), *_data(), batch_size=0),
     "batch_size"),
    ("hessian-empty", lambda: dg.HessianOperator(_net(), torch.nn.MSELoss(), np.zeros((0, 2)), np.zeros((0, 1))),
     "inputs"),
    ("hessian-nan-targets", lambda: dg.HessianOperator(_net(), torch.nn.MSELoss(), _data()[0], np.full((10, 1), NAN)),
     "targets"),
    ("hessian-length-mismatch", lambda: dg.HessianOperator(_net(), torch.nn.MSELoss(), _data()[0], _data()[1][:3]),
     "targets"),
    ("hessian-not-a-module", lambda: dg.HessianOperator(lambda x: x, torch.nn.MSELoss(), *_data()), "model"),
    ("hessian-loss-not-scalar", lambda: dg.HessianOperator(_net(), lambda a, b: a - b, *_data()), "loss_fn"),
    # linalg.curvature
    ("ggn-pattern-matches-nothing", lambda: la.GGNOperator(_net(), torch.nn.MSELoss(), *_data(), param_filter="nope.*"),
     "param_filter"),
    ("hessian-filter-not-callable", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), *_data(), param_filter=3),
     "param_filter"),
    ("hessian-unknown-reduction", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), *_data(), reduction="avg"),
     "reduction"),
    ("hessian-one-shot-iterator", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), iter([_data()])), "inputs"),
    ("hessian-loader-with-batch-size", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), [_data()], batch_size=2),
     "batch_size"),
    ("hessian-batches-not-pairs", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), [_data()[0]]), "inputs"),
    ("hessian-tensor-without-targets", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), _data()[0]), "targets"),
    ("ggn-dict-length-mismatch", lambda: la.GGNOperator(_net(), torch.nn.MSELoss(), {"input": _data()[0][:3]},
                                                        _data()[1]), "inputs"),
    ("ggn-empty-loader", lambda: la.GGNOperator(_net(), torch.nn.MSELoss(), []), "inputs"),
    ("check-deterministic-negative-rtol", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), *_data())
     .check_deterministic(rtol=-1.0), "rtol"),
    ("operator-wrong-vector-length", lambda: la.HessianOperator(_net(), torch.nn.MSELoss(), *_data()) @ np.ones(3),
     "x"),
    ("certify-empty", lambda: dg.certify(_net(), torch.nn.MSELoss(), [], []), "inputs"),
    ("certify-zero-ball", lambda: dg.certify(_net(), torch.nn.MSELoss(), *_data(), n_ball=0), "n_ball"),
    ("certify-negative-delta", lambda: dg.certify(_net(), torch.nn.MSELoss(), *_data(), delta=-1.0), "delta"),
    ("eigen-unknown-which", lambda: dg.extreme_eigenvalues(_hess(), which="middle"), "which"),
    ("eigen-zero-k", lambda: dg.extreme_eigenvalues(_hess(), k=0), "k"),
    ("eigen-not-an-operator", lambda: dg.extreme_eigenvalues(np.eye(3)), "H"),
    ("eigen-bad-seed", lambda: dg.extreme_eigenvalues(_hess(), seed="a"), "seed"),
    ("lanczos-not-an-operator", lambda: dg.lanczos(np.eye(3)), "H"),
    ("lanczos-negative-k", lambda: dg.lanczos(_hess(), k_top=-1), "k_top"),
    ("lanczos-no-end", lambda: dg.lanczos(_hess(), k_top=0, k_bottom=0), "k_top"),
    ("lanczos-zero-budget", lambda: dg.lanczos(_hess(), max_products=0), "max_products"),
    ("lanczos-unknown-test", lambda: dg.lanczos(_hess(), test="gap"), "test"),
    ("lanczos-bad-start", lambda: dg.lanczos(_hess(), v0=np.zeros(3)), "v0"),
    ("hutchinson-zero-probes", lambda: dg.hutchinson(_hess(), n_probe=0), "n_probe"),
    ("hutchpp-too-few-products", lambda: dg.hutchpp(_hess(), n_products=3), "n_products"),
    ("certify-zero-budget", lambda: dg.certify(_net(), torch.nn.MSELoss(), *_data(), max_products=0),
     "max_products"),
    ("density-zero-probes", lambda: dg.spectral_density(_hess(), n_probe=0), "n_probe"),
    ("density-one-grid-point", lambda: dg.spectral_density(_hess(), grid=1), "grid"),
    ("density-negative-sigma", lambda: dg.spectral_density(_hess(), sigma=-1.0), "sigma"),
    # diagnostics.redundancy
    ("redundancy-nan-weight", lambda: dg.find_redundancy(_nan_net()), "model"),
    ("redundancy-negative-tol", lambda: dg.find_redundancy(_net(), tol=-1.0), "tol"),
    ("redundancy-unknown-activation", lambda: dg.find_redundancy(_net(), "foo"), "activation"),
    ("redundancy-not-a-shallow-net", lambda: dg.find_redundancy(torch.nn.Linear(2, 1)), "model"),
    ("slopes-theta-length", lambda: dg.neuron_slopes(np.zeros(5), np.ones((4, 2)), 3, "tanh"), "theta"),
    ("slopes-unknown-activation", lambda: dg.neuron_slopes(np.zeros(13), np.ones((4, 2)), 3, "foo"), "act"),
    ("split-theta-length", lambda: dg.split_neuron(np.zeros(5), 2, 3, False), "theta"),
    ("split-flipped-not-bool", lambda: dg.split_neuron(np.zeros(13), 2, 3, "yes"), "flipped"),
    ("zero-threshold-zero-n", lambda: dg.zero_eigenvalue_threshold(0, 10), "n"),
    ("zero-threshold-int-dtype", lambda: dg.zero_eigenvalue_threshold(10, 10, torch.int32), "dtype"),
    ("zero-count-negative-rel", lambda: dg.zero_eigenvalue_count([1.0, 0.0], -1.0), "rel"),
    ("zero-count-nan", lambda: dg.zero_eigenvalue_count([1.0, NAN], 1e-9), "eigenvalues"),
    ("zero-count-2d", lambda: dg.zero_eigenvalue_count(np.eye(2), 1e-9), "eigenvalues"),
    # diagnostics.norms
    ("norm-growth-one-size", lambda: dg.norm_growth(lambda X, y: X[0], *_xy(), sizes=[10]), "sizes"),
    ("norm-growth-size-above-n", lambda: dg.norm_growth(lambda X, y: X[0], *_xy(), sizes=[10, 50]), "sizes"),
    ("norm-growth-y-length", lambda: dg.norm_growth(lambda X, y: X[0], _xy()[0], _xy()[1][:5], sizes=[5, 10]), "y"),
    ("norm-growth-nan-X", lambda: dg.norm_growth(lambda X, y: X[0], np.full((20, 3), NAN), np.ones(20), [5, 10]), "X"),
    ("norm-growth-fit-not-callable", lambda: dg.norm_growth(None, *_xy(), sizes=[5, 10]), "fit"),
    ("balance-width", lambda: dg.factor_balance(np.ones((3, 2)), np.ones((4, 3))), "V"),
    ("balance-nan", lambda: dg.factor_balance(np.full((3, 2), NAN), np.ones((4, 2))), "U"),
    ("balance-1d", lambda: dg.factor_balance(np.ones(3), np.ones((4, 2))), "U"),
    ("chain-one-layer", lambda: dg.linear_chain_balance(torch.nn.Linear(2, 3)), "module"),
    ("chain-nan-weight", lambda: dg.linear_chain_balance(torch.nn.Sequential(
        torch.nn.Linear(2, 3), torch.nn.Linear(3, 1)).apply(lambda m: torch.nn.init.constant_(m.weight, NAN)
                                                             if isinstance(m, torch.nn.Linear) else None)), "module"),
    ("chain-not-a-module", lambda: dg.linear_chain_balance([np.eye(2)]), "module"),
    # diagnostics.spectrum
    ("powerlaw-unknown-kind", lambda: dg.powerlaw_exponent(np.arange(1, 50.0) ** -1.5, kind="foo"), "kind"),
    ("powerlaw-nan", lambda: dg.powerlaw_exponent([1.0, NAN] * 20), "data"),
    ("powerlaw-empty", lambda: dg.powerlaw_exponent([]), "data"),
    ("powerlaw-3d", lambda: dg.powerlaw_exponent(np.ones((2, 2, 2))), "data"),
    ("powerlaw-negative-spectrum", lambda: dg.powerlaw_exponent(-np.arange(1, 50.0) ** -1.5), "data"),
    ("powerlaw-too-few", lambda: dg.powerlaw_exponent([1.0, 0.5, 0.25]), "data"),
    ("powerlaw-zero-boot", lambda: dg.powerlaw_exponent(np.arange(1, 50.0) ** -1.5, n_boot=0), "n_boot"),
    ("powerlaw-window-reversed", lambda: dg.powerlaw_exponent(np.arange(1, 50.0) ** -1.5, window=(20, 3)), "window"),
    ("powerlaw-window-beyond", lambda: dg.powerlaw_exponent(np.arange(1, 50.0) ** -1.5, window=(1, 500)), "window"),
    ("powerlaw-matrix-not-square", lambda: dg.powerlaw_exponent(np.ones((5, 3)), kind="matrix"), "data"),
    ("tail-too-few", lambda: dg.tail_exponent([1.0, 2.0, 3.0]), "eigenvalues"),
    ("tail-negative", lambda: dg.tail_exponent(-np.arange(1, 20.0)), "eigenvalues"),
    ("tail-nan", lambda: dg.tail_exponent([1.0, NAN] * 10), "eigenvalues"),
    ("tail-min-tail-two", lambda: dg.tail_exponent(np.arange(1, 20.0), min_tail=2), "min_tail"),
    # diagnostics.weights and checkup
    ("weight-layers-not-a-module", lambda: dg.weight_layers([np.eye(2)]), "model"),
    ("block-unknown-activation", lambda: dg.block_redundancy(_net()[0], "foo", _net()[2], _data()[0]), "activation"),
    ("block-first-not-linear", lambda: dg.block_redundancy(torch.nn.Tanh(), "tanh", _net()[2], _data()[0]), "first"),
    ("block-widths-do-not-chain", lambda: dg.block_redundancy(_net()[0], "tanh", torch.nn.Linear(5, 1).double(),
                                                              _data()[0]), "second"),
    ("block-inputs-width", lambda: dg.block_redundancy(_net()[0], "tanh", _net()[2], np.ones((4, 5))), "block_inputs"),
    ("block-inputs-nan", lambda: dg.block_redundancy(_net()[0], "tanh", _net()[2], np.full((4, 2), NAN)),
     "block_inputs"),
    ("block-negative-tol", lambda: dg.block_redundancy(_net()[0], "tanh", _net()[2], _data()[0], tol=-1.0), "tol"),
    ("checkup-not-a-module", lambda: dg.checkup(lambda x: x, torch.nn.MSELoss(), *_data()), "model"),
    ("checkup-nan-inputs", lambda: dg.checkup(_net(), torch.nn.MSELoss(), np.full((10, 2), NAN), _data()[1]), "inputs"),
    ("checkup-shapes-do-not-fit", lambda: dg.checkup(_net(), torch.nn.MSELoss(), np.ones((10, 5)), _data()[1]),
     "inputs"),
    ("checkup-length-mismatch", lambda: dg.checkup(_net(), torch.nn.MSELoss(), _data()[0], _data()[1][:4]), "targets"),
    ("checkup-loss-not-scalar", lambda: dg.checkup(_net(), lambda a, b: a - b, *_data()), "loss_fn"),
    ("checkup-negative-noise", lambda: dg.checkup(_net(), torch.nn.MSELoss(), *_data(), noise_level=-1.0),
     "noise_level"),
    ("monitor-zero-patience", lambda: dg.TrainingMonitor(patience=0), "patience"),
    ("monitor-negative-noise", lambda: dg.TrainingMonitor(noise_level=-1.0), "noise_level"),
    ("monitor-step-nan-error", lambda: dg.TrainingMonitor().step(_net(), NAN), "train_err"),
    ("checkup-unknown-device", lambda: dg.checkup(_net(), torch.nn.MSELoss(), *_data(), device="tpu"), "device"),
]

#: mixed devices need a GPU; run where torch sees one
BAD_CUDA: list[tuple[str, object, str]] = [
    ("ridge-mixed-devices", lambda: sv.RidgePath.fit(_cuda_tensor(_xy()[0]), torch.as_tensor(_xy()[1])), "y"),
    ("hessian-data-on-other-device", lambda: dg.HessianOperator(_net(), torch.nn.MSELoss(),
                                                                *(_cuda_tensor(t) for t in _data())), "inputs"),
    ("fgd-y-on-other-device", lambda: sv.factorized_gd(_sensing()[0], _cuda_tensor(_sensing()[1]), 3, 1e-3, 0), "y"),
]


def _one_line_error(thunk, param: str) -> str:
    with pytest.raises(ValueError) as info:
        thunk()
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{param}: "), msg
    assert "got " in msg or "exceeds" in msg, msg  # what was given
    return msg


@pytest.mark.parametrize("thunk, param", [pytest.param(t, p, id=i) for i, t, p in BAD])
def test_bad_input_is_refused_in_one_line(thunk, param):
    _one_line_error(thunk, param)


@pytest.mark.skipif(not CUDA, reason="mixed devices need a GPU")
@pytest.mark.parametrize("thunk, param", [pytest.param(t, p, id=i) for i, t, p in BAD_CUDA])
def test_mixed_devices_are_refused(thunk, param):
    _one_line_error(thunk, param)


def test_every_public_callable_has_a_bad_input_case():
    """Each callable in the five layers' ``__all__`` appears in ``BAD`` or ``OTHER_BRANCHES`` or is a plain data
    class / constant, so a new public function cannot skip the table."""
    import inspect
    src = inspect.getsource(inspect.getmodule(test_every_public_callable_has_a_bad_input_case))
    data_only = {"SolverResult", "STATUSES", "Certificate", "RedundancyReport", "TailFit", "BlockRedundancy",
                 "CheckupReport", "Finding", "LanczosResult", "TraceEstimate"}
    owned_elsewhere = {"QuadraticNetProblem"}  # a data class of a problem made by make_problem
    bases = {"LinearOperator"}  # an abstract base: its doors are its subclasses' (each in the table)
    table = src[src.index("BAD: list"):src.index("BAD_CUDA: list")] + src[src.index("OTHER_BRANCHES: list"):]
    missing = [f"{mod.__name__}.{name}" for mod in (th, pb, sv, dg, la) for name in mod.__all__
               if name not in data_only | owned_elsewhere | bases
               and f".{name}(" not in table and f".{name}." not in table]
    assert not missing, missing


# --- unusual but valid: the same numbers as the float64 torch path -------------------------------------------------
def _ridge_numbers(X, y):
    p = sv.RidgePath.fit(X, y)
    coef = p.coef(0.05)
    coef = coef.cpu().numpy() if isinstance(coef, torch.Tensor) else coef
    return np.concatenate([coef, np.atleast_1d(p.train_error([0.0, 0.05, 1.0])), np.atleast_1d(p.norm2([0.05]))])


def _ref_ridge():
    X, y = _xy()
    return _ridge_numbers(torch.as_tensor(X), torch.as_tensor(y))


def _ridge32():
    X, y = _xy()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    return _ridge_numbers(X32, y32), _ridge_numbers(torch.as_tensor(X32.astype(float)), torch.as_tensor(y32.astype(float)))


def _de(spec, b, lam):
    d = th.deterministic_equivalent(spec, b, 1.0, lam, 10)
    return np.concatenate([np.ravel(d.test_error), np.ravel(d.train_error), np.ravel(d.norm2)])


def _hessian_dense(inputs, targets, dtype=torch.float64):
    return dg.HessianOperator(_net(dtype=dtype), torch.nn.MSELoss(), inputs, targets).dense().double().numpy()


def _far_start():
    res = sv.minimize(_quad, [np.full(4, 1e6)], lr=0.5, max_steps=200, grad_tol=1e-9)
    assert res.status == "converged", res.message
    return res.x[0].numpy(), np.ones(4)


def _operator_from(seed):
    return pb.make_operator("gaussian", 12, 3, 4, seed).A.numpy()


def _np_generator_operator():
    a = pb.make_operator("rank_one", 12, 3, 4, np.random.default_rng(5))
    b = pb.make_operator("rank_one", 12, 3, 4, np.random.default_rng(5))
    return a.a.numpy(), b.a.numpy()


def _fit_module_numpy_float32():
    X, y = _data()
    out = []
    for inputs, targets, dtype in ((X.numpy(), y.numpy(), torch.float32), (X.float(), y.float(), torch.float32)):
        net = _net(dtype=dtype)
        res = sv.fit_module(net, torch.nn.MSELoss(), inputs, targets, lr=0.05, max_steps=20)
        out.append(np.array(res.history["loss"]))
    return out


# (id, thunk returning (value, reference), rtol, atol)
VALID: list[tuple[str, object, float, float]] = [
    ("ridge-numpy", lambda: (_ridge_numbers(*_xy()), _ref_ridge()), 1e-12, 1e-14),
    ("ridge-sequences", lambda: (_ridge_numbers(*(a.tolist() for a in _xy())), _ref_ridge()), 1e-12, 1e-14),
    # float32 data is computed in float64: the same numbers as float64 data holding the float32-rounded values
    ("ridge-float32", _ridge32, 1e-12, 1e-14),
    ("ridge-mixed-dtypes", lambda: (_ridge_numbers(torch.as_tensor(_xy()[0]), _xy()[1].astype(np.float32)),
                                    _ridge_numbers(_xy()[0], _xy()[1].astype(np.float32).astype(float))), 1e-12, 1e-14),
    ("ridge-lambda-inf", lambda: (np.array([_path().train_error(INF), _path().norm2(INF)]),
                                  np.array([np.mean(_xy()[1] ** 2), 0.0])), 1e-12, 1e-14),
    ("de-torch-float32", lambda: (_de(torch.tensor(SPEC, dtype=torch.float32), B, [0.0, 0.1]),
                                  _de(np.array(SPEC), np.array(B), [0.0, 0.1])), 1e-12, 0.0),
    ("de-integer-spectrum", lambda: (_de([4, 2, 1, 1], [1, 1, 1, 1], 0.1), _de([4.0, 2.0, 1.0, 1.0], [1.0] * 4, 0.1)),
     1e-12, 0.0),
    ("step-bound-list", lambda: (th.step_bound([0.1, 0.01], [0.1, 0.2], 1.0, 10.0),
                                 2 * (np.array([0.1, 0.2]) + np.array([0.1, 0.01]) / (10.0 - np.array([0.1, 0.01])))
                                 * np.array([0.1, 0.01])), 1e-12, 0.0),
    ("imbalance-numpy-vs-torch", lambda: (th.imbalance(np.ones((3, 2)), np.eye(4, 2)).numpy(),
                                          (torch.ones(3, 2).T @ torch.ones(3, 2) - torch.eye(2)).double().numpy()),
     1e-12, 0.0),
    ("minimize-far-start", _far_start, 0.0, 1e-8),
    ("operator-int-seed-is-backend-generator", lambda: (_operator_from(3), pb.make_operator(
        "gaussian", 12, 3, 4, op.backend.generator(3)).A.numpy()), 0.0, 0.0),
    ("operator-numpy-generator", _np_generator_operator, 0.0, 0.0),
    ("hessian-numpy-inputs", lambda: (_hessian_dense(*(t.numpy() for t in _data())), _hessian_dense(*_data())),
     1e-12, 1e-14),
    # a float32 model keeps float32: its Hessian from NumPy float64 data equals the one from float32 tensors
    ("hessian-float32-model", lambda: (_hessian_dense(*(t.numpy() for t in _data()), dtype=torch.float32),
                                       _hessian_dense(*(t.float() for t in _data()), dtype=torch.float32)), 0.0, 0.0),
    ("fit-module-numpy-float32", _fit_module_numpy_float32, 0.0, 0.0),
    ("eigen-numpy-seed", lambda: (dg.extreme_eigenvalues(_hess(), k=1, seed=np.random.default_rng(0))["largest"],
                                  np.linalg.eigvalsh(_hess().dense().numpy())[-1:]), 1e-8, 1e-10),
    ("powerlaw-torch-vs-numpy", lambda: (
        np.array([dg.powerlaw_exponent(torch.tensor(np.arange(1, 200.0) ** -1.5, dtype=torch.float32),
                                       n_boot=20).exponent]),
        np.array([dg.powerlaw_exponent(np.arange(1, 200.0).astype(np.float32).astype(float) ** -1.5,
                                       n_boot=20).exponent])), 1e-5, 0.0),
    ("balance-numpy-vs-torch", lambda: (dg.factor_balance(np.eye(3, 2), 2 * np.eye(4, 2)).singular_values,
                                        dg.factor_balance(torch.eye(3, 2, dtype=torch.float64),
                                                          2 * torch.eye(4, 2, dtype=torch.float64)).singular_values),
     0.0, 0.0),
    ("zero-count-numpy", lambda: (np.array([dg.zero_eigenvalue_count(np.array([1.0, 1e-12, -1e-13]), 1e-9)]),
                                  np.array([2])), 0.0, 0.0),
]


@pytest.mark.parametrize("thunk, rtol, atol", [pytest.param(t, r, a, id=i) for i, t, r, a in VALID])
def test_unusual_but_valid_input_gives_the_float64_numbers(thunk, rtol, atol):
    value, reference = thunk()
    np.testing.assert_allclose(np.asarray(value, dtype=float), np.asarray(reference, dtype=float), rtol=rtol,
                               atol=atol)


# The nuclear-route and approximate-Newton modules (theory.quadratic_erm, problems.quadratic_net,
# problems.softmax_regression, solvers.nuclear/newton/sketch), written on their own branches and merged
OTHER_BRANCHES: list[tuple[str, object, str]] = [
    ("predict-negative-alpha", lambda: th.predict(-1.0, 0.5, 0.1, 0.1), "alpha"),
    ("predict-nan-alpha", lambda: th.predict([0.5, NAN], 0.5, 0.1, 0.1), "alpha"),
    ("predict-empty-alpha", lambda: th.predict([], 0.5, 0.1, 0.1), "alpha"),
    ("predict-negative-noise", lambda: th.predict(1.0, 0.5, 0.1, -0.1), "noise"),
    ("predict-negative-lam", lambda: th.predict(1.0, 0.5, -0.1, 0.1), "lam"),
    ("learned-spectrum-zero-kappa", lambda: th.learned_spectrum(1.0, 0.0, 0.1, 0.1), "kappa_star"),
    ("recovery-threshold-nan", lambda: th.perfect_recovery_threshold(NAN), "kappa_star"),
    ("bayes-threshold-negative", lambda: th.bayes_optimal_threshold(-1.0), "kappa_star"),
    ("quadrature-negative-delta2", lambda: th.spectrum_quadrature(0.5, -1.0), "delta2"),
    ("make-problem-unknown-design", lambda: pb.make_problem(10, 1.0, 0.5, 0.1, 0, design="foo"), "design"),
    ("make-problem-zero-d", lambda: pb.make_problem(0, 1.0, 0.5, 0.1, 0), "d"),
    ("make-problem-numpy-seed", lambda: pb.make_problem(10, -1.0, 0.5, 0.1, np.random.default_rng(0)), "alpha"),
    ("psd-rank-nan", lambda: pb.psd_rank(np.full((3, 3), NAN)), "S"),
    ("psd-rank-not-square", lambda: pb.psd_rank(np.ones((3, 2))), "S"),
    ("quadratic-net-zero-width", lambda: pb.QuadraticNet(5, 0), "m"),
    ("softmax-unknown-activation", lambda: pb.SoftmaxRegression(np.ones((4, 2)), np.ones(4), np.ones(4),
                                                                activation="foo"), "activation"),
    ("softmax-nan-C", lambda: pb.SoftmaxRegression(np.full((4, 2), NAN), np.ones(4), np.ones(2)), "C"),
    ("make-instance-zero-n", lambda: pb.make_instance(0, 5, 0), "n"),
    ("solve-unknown-method", lambda: sv.solve(pb.make_instance(50, 5, 0)[0], np.zeros(5), "foo"), "method"),
    ("solve-x0-shape", lambda: sv.solve(pb.make_instance(50, 5, 0)[0], np.zeros(3), "newton"), "x0"),
    ("sampled-hessian-zero-s", lambda: sv.SampledHessian(pb.make_instance(50, 5, 0)[0], 0), "s"),
    ("nuclear-negative-lam", lambda: sv.nuclear_least_squares(_sensing()[0], _sensing()[1], -1.0), "lam"),
    ("nuclear-y-nan", lambda: sv.nuclear_least_squares(_sensing()[0], np.full(60, NAN), 0.1), "y"),
    ("interpolator-wrong-width", lambda: sv.TraceInterpolator(torch.zeros(3, 7, dtype=torch.float64)), "B"),
    ("min-trace-y-nan", lambda: sv.min_trace_interpolation(torch.eye(6, dtype=torch.float64)[:3],
                                                          torch.full((3,), NAN, dtype=torch.float64)), "y"),
    ("recovery-negative-rtol", lambda: sv.recovery_threshold(sv.TraceInterpolator(torch.eye(6, dtype=torch.float64)),
                                                             torch.zeros(6, dtype=torch.float64),
                                                             torch.eye(3, dtype=torch.float64), rtol=-1.0), "rtol"),
    ("convex-recovery-zero-stages", lambda: sv.convex_recovery(*_sensing()[:2], stages=0), "stages"),
    ("powerlaw-spectrum-negative-gamma", lambda: pb.powerlaw_teacher_spectrum(10, -1.0), "gamma"),
    ("powerlaw-spectrum-zero-q0", lambda: pb.powerlaw_teacher_spectrum(10, 1.5, q0=0.0), "q0"),
    ("powerlaw-teacher-zero-d", lambda: pb.powerlaw_teacher(0, 1.5, 0), "d"),
    ("powerlaw-teacher-bad-seed", lambda: pb.powerlaw_teacher(5, 1.5, "x"), "g"),
    ("data-dominated-zero-n", lambda: pb.make_data_dominated(0, 5, 0), "n"),
    ("curvature-report-x-shape", lambda: pb.curvature_report(pb.make_instance(50, 5, 0)[0], np.zeros(3)), "x"),
]


@pytest.mark.parametrize("thunk, param", [pytest.param(t, p, id=i) for i, t, p in OTHER_BRANCHES])
def test_bad_input_is_refused_in_one_line_nuclear_and_newton(thunk, param):
    _one_line_error(thunk, param)
