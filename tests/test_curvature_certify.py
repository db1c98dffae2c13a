"""The matrix-free certificate (overparam.diagnostics.certify with dense_limit=0): exact μ, L and M = 0 on a
quadratic, the known M of a cubic, the product budget respected and reported, progress on long steps."""

import copy
import math

import numpy as np
import pytest
import torch

from overparam.diagnostics import certify
from test_convex_neighborhoods import _Point


def _problem(n=40, c=0.0, seed=0):
    """loss = ½θᵀAθ + (c/6)(vᵀθ)³ at θ = 0: ∇² = A + c(vᵀθ)vvᵀ, so μ, L are A's extremes and M = c exactly."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ev = np.linspace(1.0, 5.0, n)
    A = torch.from_numpy((Q * ev) @ Q.T)
    A = 0.5 * (A + A.T)
    v = torch.from_numpy(rng.standard_normal(n))
    v /= v.norm()
    loss = lambda out, _: 0.5 * out @ A @ out + c / 6 * (v @ out) ** 3  # noqa: E731
    z = torch.zeros(1, 1, dtype=torch.float64)
    return _Point(torch.zeros(n, dtype=torch.float64)), loss, z, ev


def test_quadratic_exact_mu_L_and_zero_lipschitz():
    model, loss, z, ev = _problem()
    cert = certify(model, loss, z, z, dense_limit=0, seed=0)
    assert cert.mu == pytest.approx(ev[0], rel=1e-10) and cert.L == pytest.approx(ev[-1], rel=1e-10)
    assert cert.hessian_lipschitz == 0.0 and math.isinf(cert.radius) and cert.ball_check_passed
    assert 0 < cert.products <= cert.max_products == 300
    assert any("estimate from" in n and "not a bound" in n for n in cert.notes)


def test_cubic_known_lipschitz_constant_and_ball():
    c = 4.0
    model, loss, z, ev = _problem(c=c)
    seen = []
    cert = certify(model, loss, z, z, dense_limit=0, seed=0, progress=lambda *a: seen.append(a))
    assert cert.mu == pytest.approx(ev[0], rel=1e-10) and cert.L == pytest.approx(ev[-1], rel=1e-10)
    # −∇λ_min ∝ ±v, where ‖H(θ') − H(θ)‖ = c|vᵀ(θ' − θ)|: the secant there is c (to the difference's rounding)
    assert cert.hessian_lipschitz == pytest.approx(c, rel=1e-6)
    assert cert.radius == pytest.approx(ev[0] / (2 * c), rel=1e-6)
    # λ_min on the ball ≥ μ − M r = μ/2 exactly for this loss
    assert cert.ball_check_passed and cert.ball_min_eigenvalue >= ev[0] / 2 - 1e-9
    assert cert.products <= 300 and seen and seen[-1][1] == cert.products and seen[-1][2] == 300
    assert cert.secants >= 9


@pytest.mark.parametrize("budget", [12, 60, 120])
def test_product_budget_is_respected_and_said(budget):
    model, loss, z, ev = _problem(c=4.0)
    cert = certify(model, loss, z, z, dense_limit=0, seed=0, max_products=budget)
    assert cert.products <= budget and cert.max_products == budget
    assert any(f"{cert.products} Hessian-vector products of a budget of {budget}" in n for n in cert.notes)
    if budget < 100:  # too small for every stage: the stage that ran out says so
        assert any("spent" in n for n in cert.notes)
    else:  # the whole certificate (9 secants at δ, the refinement, the ball check) within 120 products: M = c
        assert not any("spent" in n for n in cert.notes) and cert.hessian_lipschitz == pytest.approx(4.0, rel=1e-6)
    if cert.secants == 0:  # no secant paid for: no M, no radius, no certificate
        assert math.isnan(cert.hessian_lipschitz) and not cert.ball_check_passed


def test_float32_model_at_a_positive_definite_point_finishes_within_budget():
    """Softmax regression with ridge in float32 (positive definite everywhere, M > 0): the refinement that once ran
    past 100 000 products stops within the budget, and μ, L agree with the dense float64 Hessian."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 10)
    X, y = torch.randn(256, 20), torch.randint(0, 10, (256,))
    ridge = 1e-2

    class Ridge(torch.nn.Module):  # the penalty in the model's output, so that the loss sees the parameters
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x), sum((p ** 2).sum() for p in self.inner.parameters())

    def loss(out, t):
        return torch.nn.functional.cross_entropy(out[0], t) + ridge / 2 * out[1]
    model = Ridge(lin)
    cert = certify(model, loss, X, y, dense_limit=0, seed=0, max_products=400)
    dense = certify(copy.deepcopy(model).double(), loss, X.double(), y, seed=0)  # 210 parameters: the dense path
    assert cert.positive_definite and cert.mu == pytest.approx(dense.mu, rel=1e-4)
    assert cert.L == pytest.approx(dense.L, rel=1e-5)
    assert cert.products <= 400 and math.isfinite(cert.radius) and cert.radius > 0
    assert cert.hessian_lipschitz == pytest.approx(dense.hessian_lipschitz, rel=0.1)
