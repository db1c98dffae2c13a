"""One first-order loop (gradient descent, heavy-ball momentum, Adam) with recording and divergence detection.

    θ_{t+1} = θ_t − μ · update_t,   update_t = ∇L(θ_t) (gd), momentum buffer (momentum), Adam's moments (adam).

Every first-order solver in overparam runs through :func:`minimize`: it records what the caller asks for every
``record_every`` steps, stops on ‖∇L‖ ≤ ``grad_tol`` or when ``stop`` says so, and reports divergence (a non-finite
or exploding loss) with the step size that caused it instead of returning garbage.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from ..validation import choice, positive, positive_int
from .result import SolverResult

METHODS = ("gd", "momentum", "adam", "direction")


def minimize(objective: Callable[[Sequence[torch.Tensor]], torch.Tensor], params: Sequence[torch.Tensor], *,
             lr: float, method: str = "gd", max_steps: int = 1000, grad_tol: float = 0.0, momentum: float = 0.9,
             record: Callable[[Sequence[torch.Tensor]], dict[str, float]] | None = None, record_every: int = 1,
             stop: Callable[[int, float, Sequence[torch.Tensor]], bool] | None = None,
             grad: Callable[[Sequence[torch.Tensor]], tuple[torch.Tensor, list[torch.Tensor]]] | None = None,
             on_step: Callable[[int, Sequence[torch.Tensor], Sequence[torch.Tensor]], None] | None = None,
             direction: Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], list[torch.Tensor]] | None = None,
             line_search: bool = False, divergence_factor: float = 1e8) -> SolverResult:
    """Minimize ``objective(params)`` (a scalar tensor) over the tensors ``params`` (updated in place, copies kept
    out of autograd). ``grad``, when given, returns (loss, gradients) in closed form instead of autograd.

    History: ``step``, ``loss``, ``grad_norm`` and whatever ``record(params)`` returns, every ``record_every`` steps
    and at the last step. ``on_step(t, params, grads)`` is called at every step before the update (for quantities
    that must see every step, e.g. a running sum).

    ``direction(params, grads)`` (method 'direction') gives the step d_t, applied as θ + lr·d_t: Newton-type
    methods pass their (approximate) Newton direction and lr = 1. ``line_search`` backtracks lr (halving, Armijo
    constant 1e-4) until the loss decreases enough. A step that increases the loss is counted in
    ``history['loss_increases']`` and named in the message, never hidden.
    """
    lr = positive("lr", lr)
    method = choice("method", "direction" if direction is not None else method, METHODS)
    max_steps = positive_int("max_steps", max_steps)
    record_every = positive_int("record_every", record_every)
    params = [p.detach().clone() for p in params]
    state: list[dict[str, torch.Tensor]] = [{} for _ in params]
    history: dict[str, list[float]] = {"step": [], "loss": [], "grad_norm": []}
    loss0 = None
    status, message, t = "max_steps", f"reached max_steps = {max_steps}", 0
    increases: list[int] = []
    prev_loss = math.inf

    def value_and_grad(ps: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if grad is not None:
            return grad(ps)
        leaves = [p.requires_grad_(True) for p in ps]
        loss = objective(leaves)
        grads = torch.autograd.grad(loss, leaves)
        for p in leaves:
            p.requires_grad_(False)
        return loss.detach(), list(grads)

    def log(step: int, loss: float, gnorm: float) -> None:
        history["step"].append(step)
        history["loss"].append(loss)
        history["grad_norm"].append(gnorm)
        if record is not None:
            for k, v in record(params).items():
                history.setdefault(k, []).append(float(v))

    for t in range(max_steps + 1):
        loss, grads = value_and_grad(params)
        lv = float(loss)
        gnorm = math.sqrt(sum(float((g * g).sum()) for g in grads))
        loss0 = lv if loss0 is None else loss0
        if lv > prev_loss:
            increases.append(t)
        prev_loss = lv
        if not math.isfinite(lv) or not math.isfinite(gnorm) or lv > loss0 + divergence_factor * max(abs(loss0), 1.0):
            log(t, lv, gnorm)
            status = "diverged"
            message = f"diverged at step {t} with step size lr = {lr:g} (loss {lv:.3g} from {loss0:.3g}); lower lr"
            break
        if t % record_every == 0:
            log(t, lv, gnorm)
        if gnorm <= grad_tol:
            status, message = "converged", f"‖∇L‖ = {gnorm:.3g} ≤ grad_tol = {grad_tol:g} at step {t}"
            break
        if on_step is not None:
            on_step(t, params, grads)
        if stop is not None and stop(t, lv, params):
            status, message = "stopped", f"stop condition met at step {t} (loss {lv:.6g})"
            break
        if t == max_steps:
            break
        with torch.no_grad():
            if method == "direction":
                d = direction(params, grads)
                step = lr
                if line_search:
                    slope = sum(float((g * di).sum()) for g, di in zip(grads, d))
                    while step > 1e-12:
                        trial = [p + step * di for p, di in zip(params, d)]
                        trial_loss = float(grad(trial)[0]) if grad is not None else float(objective(trial))
                        # decrease within rounding of the loss counts: near a minimizer the true decrease
                        # (~‖∇L‖²) is below what float64 resolves in L
                        if trial_loss <= lv + 1e-4 * step * slope + 8 * torch.finfo(torch.float64).eps * abs(lv):
                            break
                        step *= 0.5
                for p, di in zip(params, d):
                    p.add_(step * di)
                continue
            for i, (p, g) in enumerate(zip(params, grads)):
                if method == "gd":
                    p.sub_(lr * g)
                elif method == "momentum":
                    buf = state[i].setdefault("buf", torch.zeros_like(p))
                    buf.mul_(momentum).add_(g)
                    p.sub_(lr * buf)
                else:  # adam, β = (0.9, 0.999), ε = 1e-8, bias-corrected
                    m = state[i].setdefault("m", torch.zeros_like(p))
                    v = state[i].setdefault("v", torch.zeros_like(p))
                    m.mul_(0.9).add_(g, alpha=0.1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    mhat = m / (1 - 0.9 ** (t + 1))
                    vhat = v / (1 - 0.999 ** (t + 1))
                    p.sub_(lr * mhat / (vhat.sqrt() + 1e-8))
    if history["step"] and history["step"][-1] != t:
        log(t, lv, gnorm)
    history["loss_increases"] = [float(i) for i in increases]
    if increases:
        message += f"; the loss increased at {len(increases)} step(s), first at step {increases[0]}"
    return SolverResult(params, history, status, t, message)
