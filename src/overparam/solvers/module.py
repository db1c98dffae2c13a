"""Train a plain ``torch.nn.Module`` with the one loop of :mod:`overparam.solvers.gradient`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.func import functional_call

from ..problems.shallow_net import batched_losses, single_loss
from ..validation import (NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, IsCallable, check, model_data,
                          validate_params)
from .gradient import armijo_step, minimize
from .result import SolverResult

_FIT_PARAMS = {"loss_fn": IsCallable()}


@validate_params(_FIT_PARAMS)
def fit_module(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               inputs: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> SolverResult:
    """Full-batch minimization of ``loss_fn(model(inputs), targets)`` over the model's parameters.

    ``inputs``/``targets`` as :func:`~overparam.validation.model_data` takes them (NumPy, torch, sequences; in the
    model's dtype). ``kwargs`` go to :func:`~overparam.solvers.gradient.minimize` (lr, method, max_steps, stop, …);
    the model's parameters are overwritten with the result's.
    """
    if isinstance(model, torch.nn.Module) and not list(model.parameters()):
        raise ValueError(f"model: has no parameters to train (got a {type(model).__name__} without any)")
    inputs, targets = model_data(model, inputs, targets)
    names = [n for n, _ in model.named_parameters()]

    def objective(ps):
        return loss_fn(functional_call(model, dict(zip(names, ps)), (inputs,)), targets)

    res = minimize(objective, [p.detach() for p in model.parameters()], **kwargs)
    with torch.no_grad():
        for p, new in zip(model.parameters(), res.x):
            p.copy_(new)
    return res


def _shifted_newton_direction(H: torch.Tensor, g: torch.Tensor, damping: float) -> torch.Tensor:
    """d = −(H + μI)⁻¹g for Hessians H (..., P, P) and gradients g (..., P), with μ = −λ_min(H) + damping·max|H|
    wherever λ_min ≤ damping·max|H| (so d is a descent direction away from a minimizer) and μ = 0 elsewhere (exact
    Newton)."""
    H = 0.5 * (H + H.transpose(-1, -2))
    lmin = torch.linalg.eigvalsh(H)[..., 0]
    scale = H.abs().amax(dim=(-1, -2))
    mu = torch.where(lmin <= damping * scale, -lmin + damping * scale + 1e-300, torch.zeros_like(lmin))
    eye = torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)
    return -torch.linalg.solve(H + mu[..., None, None] * eye, g.unsqueeze(-1)).squeeze(-1)


@validate_params({**_FIT_PARAMS, "grad_tol": NON_NEGATIVE, "max_steps": POSITIVE_INT, "damping": POSITIVE,
                  "record": [None, IsCallable()]})
def newton_polish(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  inputs: torch.Tensor, targets: torch.Tensor, *, grad_tol: float = 1e-10, max_steps: int = 200,
                  damping: float = 1e-8, line_search: bool = True, record: Callable | None = None) -> SolverResult:
    """Damped Newton on all parameters of a small model (dense Hessian by ``torch.func.hessian``): the direction of
    :func:`_shifted_newton_direction`, backtracking line search (``line_search=False``: full steps, pure Newton where
    the Hessian is positive definite), stop on ‖∇L‖ ≤ grad_tol. Same loop as every other solver."""
    inputs, targets = model_data(model, inputs, targets)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def unflat(t: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: c.view(s) for n, c, s in zip(names, torch.split(t, sizes), shapes)}

    def f(t: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, unflat(t), (inputs,)), targets)

    def direction(ps, gs):
        return [_shifted_newton_direction(torch.func.hessian(f)(ps[0]), gs[0], damping)]

    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    res = minimize(lambda ps: f(ps[0]), [theta], lr=1.0, max_steps=max_steps, grad_tol=grad_tol,
                   direction=direction, line_search=line_search, record=record)
    with torch.no_grad():
        for p, new in zip(model.parameters(), torch.split(res.x[0], sizes)):
            p.copy_(new.view_as(p))
    return res


@validate_params({"losses": IsCallable(), "theta": Array(2, to="torch", keep_float32=True), "hessians": IsCallable(),
                  "grad_tol": NON_NEGATIVE, "max_steps": POSITIVE_INT, "damping": POSITIVE})
def batched_damped_newton(losses: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor,
                          hessians: Callable[[torch.Tensor], torch.Tensor], *, grad_tol: float = 1e-10,
                          max_steps: int = 100, damping: float = 1e-10) -> SolverResult:
    """Damped Newton on B independent problems at once: parameters (B, P), ``losses(theta) -> (B,)``,
    ``hessians(theta) -> (B, P, P)``. Each problem takes d_b = −(H_b + μ_b I)⁻¹g_b (:func:`_shifted_newton_direction`)
    and its own backtracking (Armijo, to float64 resolution); the run stops when every ‖g_b‖ ≤ grad_tol.
    The one loop of :func:`~overparam.solvers.gradient.minimize` runs it (the loss it sees is Σ_b L_b, whose gradient
    holds each g_b). ``history['grad_norm_max']`` is max_b ‖g_b‖ per step."""
    worst: dict[str, float] = {"g": math.inf}

    def direction(ps, gs):
        th, g = ps[0], gs[0]
        d = _shifted_newton_direction(hessians(th), g, damping)
        step, _ = armijo_step(lambda t: losses(th + t[:, None] * d), losses(th), (g * d).sum(-1))
        return [step[:, None] * d]

    def on_step(t, ps, gs):
        worst["g"] = float(gs[0].norm(dim=-1).max())

    def record(ps):
        return {"grad_norm_max": worst["g"]}

    res = minimize(lambda ps: losses(ps[0]).sum(), [theta], lr=1.0, max_steps=max_steps, direction=direction,
                   on_step=on_step, stop=lambda t, loss, ps: worst["g"] <= grad_tol, record=record)
    res.x = res.x[0]
    return res


@dataclass
class ShallowBatch:
    """B trained shallow networks: parameters θ (B, P), ‖∇L_b‖ (B,), dense Hessians (B, P, P) and each problem's
    solver status ("converged" where ‖∇L_b‖ ≤ grad_tol, "diverged" where it is not finite, else "max_steps")."""

    theta: torch.Tensor
    grad_norm: torch.Tensor
    hessian: torch.Tensor
    status: list[str]


def train_shallow_batch(X: torch.Tensor, y: torch.Tensor, theta0: torch.Tensor, m: int, act: str, *,
                        adam_steps: int, newton_steps: int, lr: float = 0.02,
                        grad_tol: float = 1e-10) -> ShallowBatch:
    """Students of width m on B problems (X (B, n, d), y (B, n)) from θ₀ (B, P): full-batch Adam on Σ_b L_b, then
    :func:`batched_damped_newton` until every ‖∇L_b‖ ≤ grad_tol; L_b = (1/n)Σ_i (N_θ(x_i) − y_i)²."""
    def losses(th: torch.Tensor) -> torch.Tensor:
        return batched_losses(th, X, y, m, act)

    def one(t: torch.Tensor, x: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return single_loss(t, x, yy, m, act)

    def hess(th: torch.Tensor) -> torch.Tensor:
        return torch.vmap(torch.func.hessian(one))(th, X, y)

    theta = minimize(lambda ps: losses(ps[0]).sum(), [theta0], lr=lr, method="adam", max_steps=adam_steps).x[0]
    theta = batched_damped_newton(losses, theta, hess, max_steps=newton_steps, grad_tol=grad_tol).x
    gnorm = torch.vmap(torch.func.grad(one))(theta, X, y).norm(dim=-1)
    status = ["converged" if g <= grad_tol else "max_steps" if math.isfinite(g) else "diverged"
              for g in gnorm.tolist()]
    return ShallowBatch(theta, gnorm, hess(theta), status)
