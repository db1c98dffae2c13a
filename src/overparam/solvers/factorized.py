"""Factorized gradient descent for matrix sensing, X = UVᵀ, on the one loop of :mod:`.gradient`.

Loss and its gradients in closed form (E = 𝒜*(y − 𝒜(UVᵀ)), never formed for the rank-one and entry operators):

    L(U, V) = ½ ‖𝒜(UVᵀ) − y‖²,   ∇_U L = −E V,   ∇_V L = −Eᵀ U,

from U₀ = α·Ū, V₀ = α·V̄ with Ū (n1, k), V̄ (n2, k) of i.i.d. N(0, 1/k) entries. The default step size is
μ = ``step_scale`` / ‖𝒜*(y)‖_op (‖𝒜*(y)‖ ≈ ‖X*‖ for an isotropic operator).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..problems.matrix_sensing import SensingOperator
from ..theory.sensing import bound_increment, imbalance
from ..validation import (NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, InstanceOf, Interval, Options, Real, Seed, check,
                          positive, positive_int, validate_params)
from .gradient import METHODS, minimize
from .result import SolverResult


def small_init(n1: int, n2: int, k: int, alpha: float, g: torch.Generator,
               dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """U₀ = α·Ū, V₀ = α·V̄ with i.i.d. N(0, 1/k) entries; shapes (n1, k), (n2, k)."""
    k = positive_int("k", k)
    alpha = positive("alpha", alpha)
    U = torch.randn(n1, k, generator=g, device=g.device, dtype=dtype) * (alpha / math.sqrt(k))
    V = torch.randn(n2, k, generator=g, device=g.device, dtype=dtype) * (alpha / math.sqrt(k))
    return U, V


def _default_step(op: SensingOperator, y: torch.Tensor, step_scale: float = 0.25) -> float:
    """μ = step_scale / ‖𝒜*(y)‖_op."""
    return step_scale / float(torch.linalg.matrix_norm(op.adjoint(y), ord=2))


def sensing_loss_and_grad(op: SensingOperator, y: torch.Tensor):
    """(loss, [∇_U, ∇_V]) of ½‖𝒜(UVᵀ) − y‖² in closed form."""
    def grad(ps):
        U, V = ps
        res = y - op.forward_factored(U, V)
        return 0.5 * (res @ res), [-op.adjoint_right(res, V), -op.adjoint_left(res, U)]
    return grad


def _factor_metrics(L: torch.Tensor | None, R: torch.Tensor | None, n_sv: int) -> Callable:
    """A recorder of (U, V): relative test error ‖UVᵀ − LRᵀ‖_F/‖LRᵀ‖_F, imbalance ‖UᵀU − VᵀV‖_op, the top
    ``n_sv`` singular values of UVᵀ, and the largest principal angle (radians) between the top-r column/row spaces
    of UVᵀ and those of X* = LRᵀ. Uses k×k and r×k products only (UVᵀ is never formed)."""
    Xs2 = None if L is None else float(torch.trace((L.T @ L) @ (R.T @ R)))
    QL = None if L is None else torch.linalg.qr(L)[0]
    QR = None if R is None else torch.linalg.qr(R)[0]

    def record(ps) -> dict[str, float]:
        U, V = ps
        Qu, Ru = torch.linalg.qr(U)
        Qv, Rv = torch.linalg.qr(V)
        core = Ru @ Rv.T
        Pu, s, Pvh = torch.linalg.svd(core)
        out = {"imbalance": float(torch.linalg.matrix_norm(U.T @ U - V.T @ V, ord=2))}
        for i in range(min(n_sv, len(s))):
            out[f"sv{i + 1}"] = float(s[i])
        if L is not None:
            r = L.shape[1]
            cross = float(torch.trace((L.T @ U) @ (V.T @ R)))
            uv2 = float(torch.trace((U.T @ U) @ (V.T @ V)))
            out["test_error"] = math.sqrt(max(uv2 - 2 * cross + Xs2, 0.0) / Xs2)
            left = Qu @ Pu[:, :r]
            right = Qv @ Pvh.T[:, :r]
            cos_l = torch.linalg.svdvals(QL.T @ left).clamp(max=1.0)
            cos_r = torch.linalg.svdvals(QR.T @ right).clamp(max=1.0)
            out["angle_col"] = float(torch.arccos(cos_l.min()))
            out["angle_row"] = float(torch.arccos(cos_r.min()))
        return out
    return record


def _labels(op: SensingOperator, y: torch.Tensor) -> torch.Tensor:
    """y (m,) on the operator's device and in its dtype (float32 kept when the operator is float32)."""
    if y.shape != (op.m,):
        raise ValueError(f"y: must have shape ({op.m},) like the operator's m (got shape {tuple(y.shape)})")
    if y.device.type != torch.device(op.device).type:
        raise ValueError(f"y: must be on the operator's device {op.device} (got {y.device})")
    return y.to(op.device, op.dtype)


def _factor_pair(name: str, pair, rows: tuple[int, int], width: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two factors (n1, w), (n2, w) as tensors, w = ``width`` when given."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise ValueError(f"{name}: must be a pair of factors (L, R) (got {type(pair).__name__})")
    A, B = (check(name, t, Array(2, to="torch", keep_float32=True)) for t in pair)
    w = A.shape[1] if width is None else width
    if A.shape != (rows[0], w) or B.shape != (rows[1], w):
        raise ValueError(f"{name}: factors must have shapes ({rows[0]}, {'r' if width is None else w}) and "
                         f"({rows[1]}, {'r' if width is None else w}) (got {tuple(A.shape)}, {tuple(B.shape)})")
    return A, B


_SENSING_PARAMS = {"op": InstanceOf(SensingOperator, what="SensingOperator (see problems.make_operator)"),
                   "y": Array(1, to="torch", keep_float32=True), "g": Seed(to="torch", device_of="y")}


@validate_params({**_SENSING_PARAMS, "k": POSITIVE_INT, "alpha": POSITIVE, "mu": [None, POSITIVE],
                  "steps": POSITIVE_INT, "record_every": POSITIVE_INT, "n_sv": [None, POSITIVE_INT],
                  "stop_rel_loss": NON_NEGATIVE})
def factorized_gd(op: SensingOperator, y: torch.Tensor, k: int, alpha: float, g: torch.Generator | int, *,
                  mu: float | None = None, steps: int = 1000, record_every: int = 1,
                  truth: tuple[torch.Tensor, torch.Tensor] | None = None, n_sv: int | None = None,
                  stop_rel_loss: float = 0.0, init: tuple[torch.Tensor, torch.Tensor] | None = None) -> SolverResult:
    """Gradient descent on (U, V) for ½‖𝒜(UVᵀ) − y‖² from the small random start (module docstring).

    ``truth`` = (L, R) factors of X* enables test error and angles in the history; ``n_sv`` singular values of UVᵀ
    are recorded (default r + 1, or k). Stops early when the loss falls below ``stop_rel_loss``·½‖y‖².
    Returns a :class:`SolverResult` with x = [U, V]; status 'diverged' names the step size that caused it.
    ``y`` (m,) as NumPy, torch or a sequence; ``g`` an int seed, a NumPy or a torch Generator.
    """
    y = _labels(op, y)
    if truth is not None:
        truth = tuple(t.to(op.device, y.dtype) for t in _factor_pair("truth", truth, (op.n1, op.n2), None))
        if k < truth[0].shape[1]:
            raise ValueError(f"k: the factor width {k} is below the rank r = {truth[0].shape[1]} of the truth; must be "
                             f"≥ {truth[0].shape[1]} (got {k})")
    if init is not None:
        init = tuple(t.to(op.device, y.dtype) for t in _factor_pair("init", init, (op.n1, op.n2), k))
    mu = _default_step(op, y) if mu is None else mu
    U0, V0 = init if init is not None else small_init(op.n1, op.n2, k, alpha, g, y.dtype)
    r = truth[0].shape[1] if truth is not None else k
    rec = _factor_metrics(*(truth or (None, None)), n_sv or min(r + 1, k))
    thresh = stop_rel_loss * 0.5 * float(y @ y)
    stop = (lambda t, loss, ps: loss <= thresh) if stop_rel_loss > 0 else None
    # the a-posteriori imbalance bound of theory.sensing: ‖Δ_0‖ + μ² Σ_{s<t} max(‖E_sV_s‖², ‖E_sᵀU_s‖²),
    # accumulated at every step from the gradients (∇_U = −EV, ∇_V = −EᵀU)
    acc = {"bound": float(torch.linalg.matrix_norm(imbalance(U0, V0), ord=2))}

    def on_step(t, ps, grads):
        acc["bound"] += bound_increment(grads[0], grads[1], mu)

    def record(ps):
        return {**rec(ps), "imbalance_bound": acc["bound"]}

    res = minimize(lambda ps: None, [U0, V0], lr=mu, method="gd", max_steps=steps, record=record,
                   record_every=record_every, stop=stop, grad=sensing_loss_and_grad(op, y), on_step=on_step)
    res.history["mu"] = [mu]
    return res


def _overrides(op: SensingOperator, name: str) -> bool:
    """Whether ``op``'s class implements ``name`` itself (the base class's factored forms form the d × d matrix)."""
    return getattr(type(op), name) is not getattr(SensingOperator, name)


def gram_loss_and_grad(op: SensingOperator, y: torch.Tensor, lam: float, weight: float = 1.0):
    """(F(W), ∇_W F) for F(W) = (w/2)‖𝒜(S) − y‖² + lam·Tr S, S = WᵀW/c, c = √(md), W (m, d):

        ∇_S = w 𝒜*(𝒜S − y) + lam·I,    ∇_W = (2/c) W ∇_S = (2/c) (∇_S Wᵀ)ᵀ.

    On the factors U = Wᵀ/√c when the operator has them and they are cheaper (3m < 2d): 𝒜(UUᵀ) in n·d·m and
    ∇_S Wᵀ = w 𝒜*(r) Wᵀ + lam Wᵀ in 2·n·d·m (``forward_factored``, ``adjoint_right``), against 2·n·d² dense."""
    d = op.n1

    def grad(ps):
        W = ps[0]
        m = W.shape[0]
        c = math.sqrt(m * d)
        if 3 * m < 2 * d and _overrides(op, "forward_factored") and _overrides(op, "adjoint_right"):
            U = W.T / math.sqrt(c)
            r = op.forward_factored(U, U) - y
            GW = weight * op.adjoint_right(r, W.T) + lam * W.T
            trace = float((U * U).sum())
        else:
            S = W.T @ W / c
            r = op.forward(S) - y
            GS = weight * op.adjoint(r)
            GW = (0.5 * (GS + GS.T)) @ W.T + lam * W.T
            trace = float(torch.trace(S))
        return 0.5 * weight * (r @ r) + lam * trace, [(2.0 / c) * GW.T]
    return grad


def _lbfgs(grad, W0: torch.Tensor, steps: int, grad_tol: float, stop_loss: float | None = None,
           history_size: int = 20, block: int = 25) -> SolverResult:
    """L-BFGS with a strong-Wolfe line search (``torch.optim.LBFGS``, its memory kept across blocks of ``block``
    iterations) on the closed-form gradient. Stops when ‖∇‖₂ ≤ grad_tol ('converged'), F ≤ ``stop_loss``
    ('converged'), after ``steps`` iterations ('max_steps'), or when a block makes no progress: the line search
    finds no decrease within rounding ('stalled'). History per block: loss, grad_norm, evaluations (gradient calls)."""
    W = W0.clone()
    opt = torch.optim.LBFGS([W], lr=1.0, max_iter=block, max_eval=2 * block, tolerance_grad=grad_tol / math.sqrt(
        W.numel()), tolerance_change=0.0, history_size=history_size, line_search_fn="strong_wolfe")
    calls = {"n": 0}

    def closure():
        loss, (g,) = grad([W])
        W.grad = g.contiguous()
        calls["n"] += 1
        return loss

    hist: dict[str, list[float]] = {"step": [], "loss": [], "grad_norm": [], "evaluations": []}
    it, status, why = 0, "max_steps", f"iteration budget {steps} spent"
    while it < steps:
        before = it
        opt.step(closure)
        it = int(opt.state[W].get("n_iter", 0))
        loss, (g,) = grad([W])
        gnorm = float(g.norm())
        for k, v in (("step", it), ("loss", float(loss)), ("grad_norm", gnorm), ("evaluations", calls["n"])):
            hist[k].append(v)
        if not (math.isfinite(float(loss)) and math.isfinite(gnorm)):
            return SolverResult([W], hist, "diverged", it, "L-BFGS: non-finite loss or gradient")
        if gnorm <= grad_tol:
            status, why = "converged", f"‖∇‖ = {gnorm:.2e} ≤ grad_tol = {grad_tol:g}"
            break
        if stop_loss is not None and float(loss) <= stop_loss:
            status, why = "converged", f"F = {float(loss):.12g} ≤ stop_loss = {stop_loss:.12g}"
            break
        if it - before < block and (len(hist["loss"]) > 1 and hist["loss"][-1] >= hist["loss"][-2]):
            status, why = "stalled", f"no decrease of F within rounding at ‖∇‖ = {gnorm:.2e}"
            break
    return SolverResult([W], hist, status, it, f"L-BFGS, {it} iterations, {calls['n']} gradient calls: {why}")


@validate_params({**_SENSING_PARAMS, "m": POSITIVE_INT, "lam": NON_NEGATIVE, "weight": POSITIVE, "lr": [None, POSITIVE],
                  "method": Options(METHODS[:3] + ("lbfgs",)), "steps": POSITIVE_INT, "grad_tol": NON_NEGATIVE,
                  "init_scale": POSITIVE, "record_every": POSITIVE_INT, "stop_loss": [None, Interval(Real, None, None)]})
def gram_factorized_gd(op: SensingOperator, y: torch.Tensor, m: int, lam: float, g: torch.Generator | int, *,
                       weight: float = 1.0, lr: float | None = None, method: str = "momentum", steps: int = 5000,
                       grad_tol: float = 0.0, init_scale: float = 1.0, record_every: int = 50,
                       stop_loss: float | None = None) -> SolverResult:
    """Gradient descent on W (m, d) for F(W) = (w/2)‖𝒜(S) − y‖² + lam·Tr S with S = WᵀW/√(md) (the quadratic
    network's ERM; any width m, including m < rank of the convex minimizer), gradient :func:`gram_loss_and_grad`.

    W₀ has i.i.d. N(0, init_scale²) entries. ``method``: 'gd', 'momentum', 'adam' (the first-order loop, default step
    1.5/L with ‖∇²‖ ≈ 4 w ‖𝒜‖² ‖S₀‖/√(md), a heuristic; divergence is reported with the step size; history: loss,
    grad_norm, trace and rank of S) or 'lbfgs': L-BFGS with a strong-Wolfe line search, no step size to choose
    (``steps`` its iterations; history: loss, grad_norm, evaluations; ``stop_loss`` stops it once F reaches that
    value, e.g. a convex minimum's (1 + 1e-6)). L-BFGS is what reaches the convex minimizer's
    objective at d ≥ 100 in minutes: near a low-rank minimizer F is ill-conditioned in W (the smallest kept
    eigenvalues of S set its slow directions) and a fixed step pays the full condition number.
    """
    y = _labels(op, y)
    if op.n1 != op.n2:
        raise ValueError(f"op: must act on square d × d matrices S (got {op.n1} × {op.n2})")
    d = op.n1
    c = math.sqrt(m * d)
    W0 = init_scale * torch.randn(m, d, generator=g, device=g.device, dtype=y.dtype)
    grad = gram_loss_and_grad(op, y, lam, weight)
    if method == "lbfgs":
        return _lbfgs(grad, W0, steps, grad_tol, stop_loss)

    if lr is None:
        S0 = W0.T @ W0 / c
        L = 4 * weight * op.norm_estimate() ** 2 * float(torch.linalg.matrix_norm(S0, ord=2)) * m / c + 2 * lam / c
        lr = 1.5 / L

    def record(ps):
        S = ps[0].T @ ps[0] / c
        ev = torch.linalg.eigvalsh(S)
        return {"trace": float(ev.sum()), "rank": float((ev > 1e-6 * ev[-1].clamp_min(1e-300)).sum())}

    return minimize(lambda ps: None, [W0], lr=lr, method=method, max_steps=steps, grad_tol=grad_tol, record=record,
                    record_every=record_every, grad=grad)


def plateau_status(res: SolverResult, key: str = "test_error", window: float = 0.1, rtol: float = 1e-2,
                   atol: float = 1e-7) -> str:
    """A fixed-budget run's status as a string: "diverged" as the solver said; "converged" when it stopped on its
    criterion or when the recorded ``key`` moved by at most rtol·|h_end| + atol over the last ``window`` fraction of
    the history (it reached its plateau; atol ≈ 7√ε covers the resolution of :func:`_factor_metrics`' test error, a
    difference of traces resolved to a few √ε); "max_steps" otherwise."""
    if res.status == "diverged" or res.converged:
        return "diverged" if res.status == "diverged" else "converged"
    h = res.history.get(key, [])
    if len(h) < 2 or not all(math.isfinite(v) for v in h[-2:]):
        return res.status
    start = h[min(len(h) - 2, int(len(h) * (1 - window)))]
    return "converged" if abs(h[-1] - start) <= rtol * abs(h[-1]) + atol else "max_steps"
