import math

import pytest
import torch

from overparam.solvers.gradient import armijo_step, minimize
from overparam.solvers.module import fit_module


def _quadratic():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 6, generator=g, dtype=torch.float64)
    H = A @ A.T + torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    return H, b, lambda ps: 0.5 * ps[0] @ H @ ps[0] - b @ ps[0]


def test_gd_converges_to_the_solution_of_a_quadratic():
    H, b, f = _quadratic()
    L = float(torch.linalg.eigvalsh(H)[-1])
    res = minimize(f, [torch.zeros(6, dtype=torch.float64)], lr=1 / L, max_steps=20000, grad_tol=1e-10)
    assert res.status == "converged" and res.last("grad_norm") <= 1e-10
    torch.testing.assert_close(res.x[0], torch.linalg.solve(H, b), rtol=1e-8, atol=1e-9)


def test_adam_and_momentum_match_torch_optim():
    H, b, f = _quadratic()
    for method, make in (("adam", lambda p: torch.optim.Adam([p], lr=0.05)),
                         ("momentum", lambda p: torch.optim.SGD([p], lr=0.01, momentum=0.9))):
        lr = 0.05 if method == "adam" else 0.01
        res = minimize(f, [torch.ones(6, dtype=torch.float64)], lr=lr, method=method, max_steps=50)
        p = torch.ones(6, dtype=torch.float64, requires_grad=True)
        opt = make(p)
        for _ in range(50):
            opt.zero_grad()
            f([p]).backward()
            opt.step()
        torch.testing.assert_close(res.x[0], p.detach(), rtol=1e-10, atol=1e-12)


def test_divergence_is_reported_with_the_step_size():
    H, b, f = _quadratic()
    L = float(torch.linalg.eigvalsh(H)[-1])
    res = minimize(f, [torch.ones(6, dtype=torch.float64)], lr=3 / L, max_steps=5000)
    assert res.status == "diverged" and f"lr = {3 / L:g}" in res.message


def test_bad_inputs_name_the_parameter():
    H, b, f = _quadratic()
    with pytest.raises(ValueError, match="^lr:"):
        minimize(f, [torch.ones(6)], lr=-1.0)
    with pytest.raises(ValueError, match="^method:"):
        minimize(f, [torch.ones(6)], lr=0.1, method="lbfgs")
    with pytest.raises(ValueError, match="^max_steps:"):
        minimize(f, [torch.ones(6)], lr=0.1, max_steps=0)
    with pytest.raises(ValueError, match="^model:"):
        fit_module(torch.nn.ReLU(), lambda o, t: o.sum(), torch.ones(2), torch.ones(2), lr=0.1)


def test_fit_module_stops_on_condition_and_writes_back():
    torch.manual_seed(0)
    X = torch.randn(20, 3, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    net = torch.nn.Linear(3, 1).double()
    res = fit_module(net, lambda o, t: ((o.squeeze(-1) - t) ** 2).mean(), X, y, lr=0.05, method="adam",
                     max_steps=5000, stop=lambda t, loss, ps: loss < 1e-6)
    assert res.status == "converged" and "stop condition met" in res.message
    assert float(((net(X).squeeze(-1) - y) ** 2).mean()) < 1e-6
    assert math.isclose(res.last("loss"), float(((net(X).squeeze(-1) - y) ** 2).mean()), rel_tol=1e-6)


def test_adam_with_its_betas_and_eps_matches_torch_optim_adam():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(6, 4, generator=g, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x0 = torch.randn(4, generator=g, dtype=torch.float64)
    res = minimize(lambda ps: ((A @ ps[0] - b) ** 2).sum(), [x0], lr=0.05, method="adam", max_steps=25,
                   betas=(0.8, 0.99), adam_eps=1e-6)
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    for _ in range(25):
        opt.zero_grad()
        ((A @ x - b) ** 2).sum().backward()
        opt.step()
    assert torch.allclose(res.x[0], x.detach(), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="betas"):
        minimize(lambda ps: (ps[0] ** 2).sum(), [x0], lr=0.1, method="adam", betas=(1.0, 0.9))


def test_armijo_step_on_a_quadratic_batch():
    # L(θ) = ½aθ² along d = −aθ: L(θ + t d) = ½aθ²(1 − a t)², accepted once (1 − a t)² ≤ 1 − 2·1e-4·a t;
    # halving from t = 1 gives t = 1 for a = 1 and t = 0.5 for a = 3 (t = 1 overshoots to 4× the loss)
    a = torch.tensor([1.0, 3.0], dtype=torch.float64)
    th = torch.tensor([2.0, 2.0], dtype=torch.float64)
    d = -a * th
    step, ok = armijo_step(lambda t: 0.5 * a * (th + t * d) ** 2, 0.5 * a * th ** 2, (a * th) * d)
    assert ok.all() and step.tolist() == [1.0, 0.5]


def test_a_direction_that_never_descends_stalls():
    x0 = torch.tensor([1.0], dtype=torch.float64)
    res = minimize(lambda ps: (ps[0] ** 2).sum(), [x0], lr=1.0, direction=lambda ps, gs: [gs[0]],  # ascent
                   line_search=True, max_steps=10)
    assert res.status == "stalled" and not res.converged and "no step" in res.message
