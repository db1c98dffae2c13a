"""Curvature of any ``torch.nn.Module`` at its current parameters: the Hessian as a matrix-free linear operator.

- :class:`HessianOperator`: H v by double backward (Hessian-vector products) of ``loss_fn(model(inputs), targets)``,
  summed over mini-batches when ``batch_size`` is given (the full-data Hessian, computed in pieces), restricted to the
  parameters chosen by ``param_filter(name, parameter)``; ``H @ v``, ``.dense()``, ``.to_scipy()`` (a
  ``scipy.sparse.linalg.LinearOperator``). Algorithms are kept apart from it:
- :func:`extreme_eigenvalues`: Lanczos (ARPACK's implicitly restarted Lanczos via ``eigsh``) on H v for the k largest and
  k smallest eigenvalues;
- :func:`spectral_density`: stochastic Lanczos quadrature (Ubaru, Chen, Saad 2017): Gaussian-broadened density from
  ``n_probe`` Rademacher probes and ``n_steps`` Lanczos steps each;
- :func:`certify`: μ = λ_min, L = λ_max, condition number, an estimate of the Hessian's Lipschitz constant M near the
  point (secants ‖H(θ') − H(θ)‖_op/‖θ' − θ‖ over random directions and the direction that lowers λ_min fastest, refined
  at the certified radius), the radius μ/(2M) of the ball on which the loss is μ/2-strongly convex (since
  λ_min(H(θ')) ≥ μ − M‖θ' − θ‖), and a check of that by sampling points in the ball.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from torch.func import functional_call

from ..validation import (NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, IsCallable, InstanceOf, Integral,
                          Interval, Options, Seed, model_data, validate_params)

#: what every entry point on a model takes besides the model and data (checked by :func:`model_data`)
_MODEL_PARAMS = {"loss_fn": IsCallable(), "param_filter": [None, IsCallable()], "batch_size": [None, POSITIVE_INT]}


class HessianOperator:
    """H = ∇²_θ loss_fn(model(inputs), targets) at the model's current parameters, as a linear operator.

    Shapes: ``inputs`` (N, ...), ``targets`` (N, ...); vectors have length ``self.shape[0]`` = number of selected
    parameters, in ``named_parameters`` order. Runs on the parameters' device and dtype.
    """

    @validate_params(_MODEL_PARAMS)
    def __init__(self, model: torch.nn.Module, loss_fn: Callable, inputs: torch.Tensor, targets: torch.Tensor,
                 param_filter: Callable[[str, torch.nn.Parameter], bool] | None = None,
                 batch_size: int | None = None):
        if isinstance(model, torch.nn.Module) and not list(model.parameters()):
            raise ValueError(f"model: has no parameters (got a {type(model).__name__} without any)")
        inputs, targets = model_data(model, inputs, targets)
        named = [(n, p) for n, p in model.named_parameters() if param_filter is None or param_filter(n, p)]
        if not named:
            raise ValueError("model: has no parameters that param_filter selects (got none of "
                             f"{len(list(model.parameters()))})")
        self.model, self.loss_fn = model, loss_fn
        self.inputs, self.targets = inputs, targets
        self.names = [n for n, _ in named]
        self.params = [p.detach() for _, p in named]
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        self.shape = (self.dim, self.dim)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.batch_size = batch_size or len(inputs)
        probe = self._loss(self.params, inputs[: min(2, len(inputs))], targets[: min(2, len(targets))])
        if probe.ndim != 0:
            raise ValueError(f"loss_fn: must return a scalar, got shape {tuple(probe.shape)}")

    def _loss(self, flat_params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(functional_call(self.model, dict(zip(self.names, flat_params)), (x,)), y)

    def _unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [c.view_as(p) for c, p in zip(torch.split(v, self.sizes), self.params)]

    def at(self, theta: torch.Tensor) -> "HessianOperator":
        """The same operator at parameters ``theta`` (a flat vector), without touching the model."""
        other = object.__new__(HessianOperator)
        other.__dict__.update(self.__dict__)
        other.params = self._unflatten(theta.to(self.dtype).to(self.device))
        return other

    def flat_params(self) -> torch.Tensor:
        return torch.cat([p.reshape(-1) for p in self.params])

    def gradient(self) -> torch.Tensor:
        g = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for x, y, w in self._batches():
            ps = [p.clone().requires_grad_(True) for p in self.params]
            gs = torch.autograd.grad(self._loss(ps, x, y), ps)
            g += w * torch.cat([t.reshape(-1) for t in gs])
        return g

    def _batches(self) -> Iterable[tuple[torch.Tensor, torch.Tensor, float]]:
        """Mini-batches with weights len(batch)/N, so that a mean loss sums back to the full-data loss."""
        N = len(self.inputs)
        for i in range(0, N, self.batch_size):
            x, y = self.inputs[i:i + self.batch_size], self.targets[i:i + self.batch_size]
            yield x, y, (len(x) / N if self.batch_size < N else 1.0)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """H v (v of length ``dim``)."""
        v = torch.as_tensor(v, dtype=self.dtype, device=self.device)
        vs = self._unflatten(v)
        out = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for x, y, w in self._batches():
            ps = [p.clone().requires_grad_(True) for p in self.params]
            gs = torch.autograd.grad(self._loss(ps, x, y), ps, create_graph=True)
            hv = torch.autograd.grad(gs, ps, grad_outputs=vs)
            out += w * torch.cat([t.reshape(-1) for t in hv])
        return out

    __matmul__ = matvec

    def dense(self) -> torch.Tensor:
        """The full (dim, dim) Hessian, by torch.func.hessian for the whole data (or columns of H v in batches)."""
        if self.batch_size >= len(self.inputs):
            flat = self.flat_params()
            H = torch.func.hessian(lambda t: self._loss(self._unflatten(t), self.inputs, self.targets))(flat)
            return 0.5 * (H + H.T)
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        H = torch.stack([self.matvec(e) for e in eye], 1)
        return 0.5 * (H + H.T)

    def to_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (float64 NumPy in and out)."""
        from scipy.sparse.linalg import LinearOperator
        return LinearOperator(self.shape, dtype=np.float64,
                              matvec=lambda v: self.matvec(torch.from_numpy(np.asarray(v).ravel())).cpu().double().numpy())


_OPERATOR = InstanceOf(HessianOperator)


@validate_params({"H": _OPERATOR, "k": POSITIVE_INT, "which": Options(("both", "largest", "smallest")),
                  "tol": NON_NEGATIVE, "seed": Seed()})
def extreme_eigenvalues(H: HessianOperator, k: int = 1, which: str = "both", tol: float = 1e-10,
                        seed: int = 0) -> dict[str, np.ndarray]:
    """The k largest ('LA') and/or k smallest ('SA') eigenvalues by Lanczos on H v; sorted increasingly. ``which``:
    'both', 'largest' or 'smallest' (the keys of the result); ``seed`` an int, NumPy or torch Generator."""
    from scipy.sparse.linalg import eigsh
    if k >= H.dim:
        ev = torch.linalg.eigvalsh(H.dense()).cpu().numpy()
        full = {"smallest": ev[:k], "largest": ev[-k:]}
        return {key: v for key, v in full.items() if which in ("both", key)}
    v0 = np.random.default_rng(seed).standard_normal(H.dim)
    out = {}
    op = H.to_scipy()
    if which in ("both", "largest"):
        out["largest"] = np.sort(eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False))
    if which in ("both", "smallest"):
        out["smallest"] = np.sort(eigsh(op, k=k, which="SA", tol=tol, v0=v0, return_eigenvectors=False))
    return out


def _lanczos(matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos with full reorthogonalization: the tridiagonal (alpha, beta) of ``steps`` steps from v0."""
    V = [v0 / v0.norm()]
    alpha, beta = [], []
    for j in range(steps):
        w = matvec(V[-1])
        a = float(w @ V[-1])
        w = w - a * V[-1] - (beta[-1] * V[-2] if beta else 0.0)
        for u in V:  # full reorthogonalization
            w = w - float(w @ u) * u
        alpha.append(a)
        b = float(w.norm())
        if b < 1e-12 or j == steps - 1:
            break
        beta.append(b)
        V.append(w / b)
    return np.asarray(alpha), np.asarray(beta[: len(alpha) - 1])


@validate_params({"H": _OPERATOR, "n_probe": POSITIVE_INT, "n_steps": POSITIVE_INT, "sigma": [None, POSITIVE],
                  "grid": Interval(Integral, 2, None, "left"), "seed": Seed()})
def spectral_density(H: HessianOperator, n_probe: int = 10, n_steps: int = 60, sigma: float | None = None,
                     grid: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: (grid, density) of the Hessian's eigenvalues, Gaussian-broadened by ``sigma``
    (default: 1 % of the spectral range)."""
    from scipy.linalg import eigh_tridiagonal
    g = torch.Generator(device="cpu").manual_seed(seed)
    nodes, weights = [], []
    for _ in range(n_probe):
        v = (torch.randint(0, 2, (H.dim,), generator=g) * 2 - 1).to(H.dtype).to(H.device)
        a, b = _lanczos(H.matvec, v, min(n_steps, H.dim))
        theta, vec = eigh_tridiagonal(a, b) if len(a) > 1 else (a, np.ones((1, 1)))
        nodes.append(theta)
        weights.append(vec[0] ** 2 / n_probe)
    nodes, weights = np.concatenate(nodes), np.concatenate(weights)
    lo, hi = nodes.min(), nodes.max()
    sigma = sigma or 0.01 * max(hi - lo, 1e-12)
    xs = np.linspace(lo - 5 * sigma, hi + 5 * sigma, grid)
    dens = (weights[None, :] * np.exp(-0.5 * ((xs[:, None] - nodes[None, :]) / sigma) ** 2)).sum(1)
    return xs, dens / (sigma * math.sqrt(2 * math.pi))


@dataclass
class Certificate:
    """What :func:`certify` found. ``eigenvalues``: all of them (small models) or the extremes."""

    mu: float
    L: float
    condition_number: float
    hessian_lipschitz: float
    radius: float
    eigenvalues: np.ndarray
    positive_definite: bool
    gradient_norm: float
    ball_min_eigenvalue: float  # least λ_min(H) seen at points sampled in the ball
    ball_check_passed: bool  # every sampled point had λ_min ≥ μ/2
    notes: list[str] = field(default_factory=list)


def _lambda_min_and_vector(op: HessianOperator, dense: torch.Tensor | None, tol: float,
                           seed: int) -> tuple[float, torch.Tensor]:
    """λ_min(H) and a unit eigenvector: dense ``eigh`` when ``dense`` is given, else ARPACK on H v."""
    if dense is not None:
        ev, vec = torch.linalg.eigh(dense)
        return float(ev[0]), vec[:, 0]
    from scipy.sparse.linalg import eigsh
    v0 = np.random.default_rng(seed).standard_normal(op.dim)
    ev, vec = eigsh(op.to_scipy(), k=1, which="SA", tol=tol, v0=v0)
    return float(ev[0]), torch.from_numpy(vec[:, 0]).to(op.dtype).to(op.device)


def _lambda_min_gradient(op: HessianOperator, v: torch.Tensor, eps: float) -> torch.Tensor:
    """∇_θ (vᵀ H(θ) v) = D³L(θ)[v, v, ·] by a central difference of gradients,
    (∇L(θ + εv) + ∇L(θ − εv) − 2∇L(θ)) / ε²: for a simple eigenvalue λ_min with unit eigenvector v, the gradient of
    λ_min(θ); its opposite is the direction in which strong convexity is lost fastest."""
    theta = op.flat_params()
    return (op.at(theta + eps * v).gradient() + op.at(theta - eps * v).gradient() - 2 * op.gradient()) / eps ** 2


@validate_params({**_MODEL_PARAMS, "dense_limit": NON_NEGATIVE_INT, "n_directions": POSITIVE_INT,
                  "delta": [None, POSITIVE], "n_ball": POSITIVE_INT, "refine": NON_NEGATIVE_INT, "seed": Seed(),
                  "eig_tol": NON_NEGATIVE})
def certify(model: torch.nn.Module, loss_fn: Callable, inputs: torch.Tensor, targets: torch.Tensor, *,
            param_filter: Callable | None = None, batch_size: int | None = None, dense_limit: int = 2000,
            n_directions: int = 8, delta: float | None = None, n_ball: int = 8, refine: int = 3, seed: int = 0,
            eig_tol: float = 1e-10) -> Certificate:
    """Strong-convexity certificate at the model's current parameters (module docstring). Dense eigenvalues when the
    model has ≤ ``dense_limit`` parameters, Lanczos extremes otherwise.

    M is estimated as the largest ‖H(θ + δu) − H(θ)‖₂/δ over ``n_directions`` random unit u and the direction
    u* = −∇λ_min(θ)/‖∇λ_min(θ)‖ (:func:`_lambda_min_gradient`), then refined for up to ``refine`` rounds by the secants
    ‖H(θ') − H(θ)‖₂/r at points θ' = θ + r·u on the sphere of the current radius r = μ/(2M) (u* and ``n_ball`` random
    u): M grows to the largest secant seen, r shrinks, until no secant exceeds M. It remains an estimate from samples,
    not a bound. The ball check evaluates λ_min at those sphere points and at ``n_ball`` uniform points inside."""
    H = HessianOperator(model, loss_fn, inputs, targets, param_filter, batch_size)
    rng = np.random.default_rng(seed)
    power_rng = np.random.default_rng(seed + 1)  # power iterations draw apart: both paths sample the same points
    theta = H.flat_params()
    small = H.dim <= dense_limit

    def unit() -> torch.Tensor:
        u = torch.from_numpy(rng.standard_normal(H.dim)).to(H.dtype).to(H.device)
        return u / u.norm()

    def secant(u: torch.Tensor, dist: float) -> tuple[float, torch.Tensor | None]:
        """‖H(θ + dist·u) − H(θ)‖₂ / dist (dense, or power iteration on the difference), and the dense Hessian at
        θ + dist·u when the model is small (None otherwise), so that the ball check need not build it again."""
        Hu = H.at(theta + dist * u)
        if small:
            Hud = Hu.dense()
            return float(torch.linalg.matrix_norm(Hud - Hd, ord=2)) / dist, Hud
        w = torch.from_numpy(power_rng.standard_normal(H.dim)).to(H.dtype).to(H.device)
        diff = 0.0
        for _ in range(30):
            w = Hu.matvec(w) - H.matvec(w)
            diff = float(w.norm())
            w /= max(diff, 1e-300)
        return diff / dist, None

    def lambda_min_at(t: torch.Tensor, dense: torch.Tensor | None = None) -> float:
        if small:
            return float(torch.linalg.eigvalsh(H.at(t).dense() if dense is None else dense)[0])
        return _lambda_min_and_vector(H.at(t), None, eig_tol, seed)[0]

    Hd = H.dense() if small else None  # the dense Hessian at θ, once
    if small:  # one eigendecomposition gives every eigenvalue and the eigenvector of λ_min
        evals, evecs = torch.linalg.eigh(Hd)
        mu, L, vmin, ev = float(evals[0]), float(evals[-1]), evecs[:, 0], evals.cpu().numpy()
    else:
        mu, vmin = _lambda_min_and_vector(H, None, eig_tol, seed)
        L = float(extreme_eigenvalues(H, k=1, which="largest", tol=eig_tol, seed=seed)["largest"][0])
        ev = np.array([mu, L])
    scale = float(theta.norm()) or 1.0
    delta = delta or 1e-4 * scale
    directions = [unit() for _ in range(n_directions)]
    if mu > 0:
        g3 = _lambda_min_gradient(H, vmin, 1e-3 * scale)
        if float(g3.norm()) > 0:
            directions.insert(0, -g3 / g3.norm())
    M = max(secant(u, delta)[0] for u in directions)
    notes = []
    radius = mu / (2 * M) if mu > 0 and M > 0 else (math.inf if mu > 0 else 0.0)
    ball_min, ok = math.inf, mu > 0
    if mu > 0 and math.isfinite(radius):
        sphere = directions[:1] + [unit() for _ in range(n_ball)]
        at_radius: list[torch.Tensor | None] = [None] * len(sphere)  # dense Hessians on the final sphere, if seen
        for _ in range(refine):
            seen = [secant(u, radius) for u in sphere]
            worst = max(m for m, _ in seen)
            if worst <= M:
                at_radius = [h for _, h in seen]
                break
            M, radius = worst, mu / (2 * worst)
        else:
            notes.append(f"M still grew after {refine} refinement rounds: the radius may be optimistic")
        inside = [u * radius * rng.random() ** (1.0 / H.dim) for u in (unit() for _ in range(n_ball))]
        ball_min = min([lambda_min_at(theta + radius * u, h) for u, h in zip(sphere, at_radius)]
                       + [lambda_min_at(theta + x) for x in inside])
        ok = ball_min >= mu / 2
    if mu <= 0:
        notes.append("not positive definite: no strongly convex ball (zero or negative curvature directions)")
    g = float(H.gradient().norm())
    return Certificate(mu, L, (L / mu) if mu > 0 else math.inf, M, radius, ev, mu > 0, g, ball_min, bool(ok), notes)
