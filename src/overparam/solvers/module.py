"""Train a plain ``torch.nn.Module`` with the one loop of :mod:`overparam.solvers.gradient`."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.func import functional_call

from .gradient import minimize
from .result import SolverResult


def fit_module(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               inputs: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> SolverResult:
    """Full-batch minimization of ``loss_fn(model(inputs), targets)`` over the model's parameters.

    ``kwargs`` go to :func:`~overparam.solvers.gradient.minimize` (lr, method, max_steps, stop, …); the model's
    parameters are overwritten with the result's.
    """
    names = [n for n, _ in model.named_parameters()]
    if not names:
        raise ValueError("model: has no parameters to train")

    def objective(ps):
        return loss_fn(functional_call(model, dict(zip(names, ps)), (inputs,)), targets)

    res = minimize(objective, [p.detach() for p in model.parameters()], **kwargs)
    with torch.no_grad():
        for p, new in zip(model.parameters(), res.x):
            p.copy_(new)
    return res
