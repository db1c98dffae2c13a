"""One first-order loop (gradient descent, heavy-ball momentum, Adam) with recording and divergence detection.

    θ_{t+1} = θ_t − μ · update_t,   update_t = ∇L(θ_t) (gd), momentum buffer (momentum), Adam's moments (adam).

Every first-order solver in overparam runs through :func:`minimize`: it records what the caller asks for every
``record_every`` steps, stops on ‖∇L‖ ≤ ``grad_tol`` or when ``stop`` says so, and reports divergence (a non-finite
or exploding loss) with the step size that caused it instead of returning garbage.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from ..validation import (NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, IsCallable, Integral, Interval, Options, Real,
                          check, validate_params)
from .result import SolverResult

METHODS = ("gd", "momentum", "adam", "direction")
_UNIT = Interval(Real, 0, 1, closed="left")  # [0, 1): momentum, Adam's β's


def _params(params) -> list[torch.Tensor]:
    """The starting point as a list of tensors: one array or a sequence of arrays (NumPy, torch or sequences; float32
    kept, integers to float64), each finite and non-empty."""
    if isinstance(params, (torch.Tensor, np.ndarray)):
        params = [params]
    if not isinstance(params, (list, tuple)) or not params:
        raise ValueError(f"params: must be a non-empty list of arrays or tensors (got {type(params).__name__})")
    return [check(f"params[{i}]", p, Array(to="torch", keep_float32=True)) for i, p in enumerate(params)]


@validate_params({"loss_at": IsCallable(), "start": POSITIVE, "c": Interval(Real, 0, 1), "shrink": Interval(Real, 0, 1),
                  "max_halvings": Interval(Integral, 0, None, "left")})
def armijo_step(loss_at: Callable[[torch.Tensor], torch.Tensor], L0: torch.Tensor, slope: torch.Tensor, *,
                start: float = 1.0, c: float = 1e-4, shrink: float = 0.5,
                max_halvings: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Backtracking (Armijo) step along a descent direction d, for one problem or a batch of independent ones.

    ``L0`` (shape () or (B,)): the loss at θ; ``slope``: ∇L(θ)ᵀd (same shape); ``loss_at(t)`` the loss at θ + t·d
    for a step tensor t of that shape. Each problem halves its t from ``start`` until

        L(θ + t d) ≤ L0 + c·t·slope + 8ε|L0|,

    the last term accepting a decrease within float64 rounding of L (near a minimizer the true decrease ~‖∇L‖² is
    below what L resolves). Returns (t, accepted): ``accepted`` False where no t ≥ start·shrink^max_halvings worked.
    """
    L0 = torch.as_tensor(L0, dtype=torch.float64) if not isinstance(L0, torch.Tensor) else L0
    if not L0.is_floating_point():
        L0 = L0.double()
    eps = torch.finfo(L0.dtype).eps
    step = torch.full_like(L0, float(start))
    ok = torch.zeros_like(L0, dtype=torch.bool)
    for _ in range(max_halvings + 1):
        ok = loss_at(step) <= L0 + c * step * slope + 8 * eps * L0.abs()
        if bool(ok.all()):
            break
        step = torch.where(ok, step, shrink * step)
    return step, ok


@validate_params({"objective": IsCallable(), "lr": POSITIVE, "method": Options(METHODS), "max_steps": POSITIVE_INT,
                  "grad_tol": NON_NEGATIVE, "momentum": _UNIT, "record_every": POSITIVE_INT,
                  "divergence_factor": POSITIVE, "adam_eps": POSITIVE,
                  **{k: [None, IsCallable()] for k in ("record", "stop", "grad", "on_step", "direction")}})
def minimize(objective: Callable[[Sequence[torch.Tensor]], torch.Tensor], params: Sequence[torch.Tensor], *,
             lr: float, method: str = "gd", max_steps: int = 1000, grad_tol: float = 0.0, momentum: float = 0.9,
             record: Callable[[Sequence[torch.Tensor]], dict[str, float]] | None = None, record_every: int = 1,
             stop: Callable[[int, float, Sequence[torch.Tensor]], bool] | None = None,
             grad: Callable[[Sequence[torch.Tensor]], tuple[torch.Tensor, list[torch.Tensor]]] | None = None,
             on_step: Callable[[int, Sequence[torch.Tensor], Sequence[torch.Tensor]], None] | None = None,
             direction: Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], list[torch.Tensor]] | None = None,
             line_search: bool = False, divergence_factor: float = 1e8,
             betas: tuple[float, float] = (0.9, 0.999), adam_eps: float = 1e-8) -> SolverResult:
    """Minimize ``objective(params)`` (a scalar tensor) over the tensors ``params`` (updated in place, copies kept
    out of autograd). ``grad``, when given, returns (loss, gradients) in closed form instead of autograd.

    History: ``step``, ``loss``, ``grad_norm`` and whatever ``record(params)`` returns, every ``record_every`` steps
    and at the last step. ``on_step(t, params, grads)`` is called at every step before the update (for quantities
    that must see every step, e.g. a running sum).

    ``direction(params, grads)`` (method 'direction') gives the step d_t, applied as θ + lr·d_t: Newton-type
    methods pass their (approximate) Newton direction and lr = 1. ``line_search`` backtracks lr by
    :func:`armijo_step`; when no step decreases the loss the run ends with status 'stalled'. A step that increases
    the loss is counted in ``history['loss_increases']`` and named in the message, never hidden.

    Status (:data:`~overparam.solvers.result.STATUSES`): 'converged' (‖∇L‖ ≤ grad_tol, or ``stop`` said so),
    'max_steps', 'diverged' (non-finite or exploding loss), 'stalled' (the line search found no decrease).
    Adam: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − lr·m̂/(√v̂ + ε) with bias-corrected m̂, v̂.
    """
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_UNIT.is_satisfied_by(b) for b in betas)):
        raise ValueError(f"betas: must be two numbers in [0, 1) (got {betas!r})")
    if method == "direction" and direction is None:
        raise ValueError("direction: must be given with method='direction' (got None)")
    method = "direction" if direction is not None else method
    params = [p.detach().clone() for p in _params(params)]
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
            status, message = "converged", f"stop condition met at step {t} (loss {lv:.6g})"
            break
        if t == max_steps:
            break
        with torch.no_grad():
            if method == "direction":
                d = direction(params, grads)
                step = lr
                if line_search:
                    slope = torch.as_tensor(sum(float((g * di).sum()) for g, di in zip(grads, d)), dtype=torch.float64)

                    def loss_at(st: torch.Tensor) -> torch.Tensor:
                        trial = [p + float(st) * di for p, di in zip(params, d)]
                        return torch.as_tensor(float(grad(trial)[0]) if grad is not None else float(objective(trial)),
                                               dtype=torch.float64)
                    st, ok = armijo_step(loss_at, torch.as_tensor(lv, dtype=torch.float64), slope, start=lr)
                    if not bool(ok):
                        status = "stalled"
                        message = (f"stalled at step {t}: no step down to {float(st):.1e} along the direction "
                                   f"decreases the loss (‖∇L‖ = {gnorm:.3g})")
                        break
                    step = float(st)
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
                else:  # adam, bias-corrected moments with β = betas and ε = adam_eps
                    b1, b2 = betas
                    m = state[i].setdefault("m", torch.zeros_like(p))
                    v = state[i].setdefault("v", torch.zeros_like(p))
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    mhat = m / (1 - b1 ** (t + 1))
                    vhat = v / (1 - b2 ** (t + 1))
                    p.sub_(lr * mhat / (vhat.sqrt() + adam_eps))
    if history["step"] and history["step"][-1] != t:
        log(t, lv, gnorm)
    history["loss_increases"] = [float(i) for i in increases]
    if increases:
        message += f"; the loss increased at {len(increases)} step(s), first at step {increases[0]}"
    return SolverResult(params, history, status, t, message)
