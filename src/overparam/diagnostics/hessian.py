"""Curvature of any ``torch.nn.Module`` at its current parameters: the Hessian as a matrix-free linear operator.

- :class:`HessianOperator`: H v by double backward (Hessian-vector products) of ``loss_fn(model(inputs), targets)``,
  summed over mini-batches when ``batch_size`` is given (the full-data Hessian, computed in pieces), restricted to the
  parameters chosen by ``param_filter(name, parameter)``; ``H @ v``, ``.dense()``, ``.to_scipy()`` (a
  ``scipy.sparse.linalg.LinearOperator``). Algorithms are kept apart from it:
- :func:`extreme_eigenvalues`: the k largest and k smallest eigenvalues from one thick-restart Lanczos run on H v
  (:mod:`.lanczos`), with residual bounds and the number of products;
- :func:`spectral_density`: stochastic Lanczos quadrature (Ubaru, Chen, Saad 2017) on the same recurrence:
  Gaussian-broadened density from ``n_probe`` Rademacher probes and ``n_steps`` Lanczos steps each;
- :func:`certify`: μ = λ_min, L = λ_max, condition number, an estimate of the Hessian's Lipschitz constant M near the
  point (secants ‖H(θ') − H(θ)‖_op/‖θ' − θ‖ over random directions and the direction that lowers λ_min fastest, refined
  at the certified radius), the radius μ/(2M) of the ball on which the loss is μ/2-strongly convex (since
  λ_min(H(θ')) ≥ μ − M‖θ' − θ‖), and a check of that by sampling points in the ball; on large models within a
  stated budget of Hessian-vector products (``max_products``), reported in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..validation import (NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, IsCallable, Integral, Interval,
                          Options, Seed, validate_params)
from ..linalg.curvature import _PARAMS as _OPERATOR_PARAMS
from ..linalg.curvature import HessianOperator
from .krylov import OPERATOR, lanczos, lanczos_quadrature, rademacher, size

#: what every entry point on a model takes besides the model and data: as the Hessian operator takes them
_MODEL_PARAMS = {k: _OPERATOR_PARAMS[k] for k in ("loss_fn", "param_filter", "batch_size")}


_OPERATOR = OPERATOR  # any square operator with matvec, shape (or dim), dtype and device


@validate_params({"H": _OPERATOR, "k": POSITIVE_INT, "which": Options(("both", "largest", "smallest")),
                  "tol": NON_NEGATIVE, "seed": Seed()})
def extreme_eigenvalues(H: HessianOperator, k: int = 1, which: str = "both", tol: float = 1e-10,
                        seed: int = 0) -> dict[str, np.ndarray | int]:
    """The k largest and/or k smallest eigenvalues, sorted increasingly, from one thick-restart Lanczos run on H v
    (:func:`overparam.diagnostics.lanczos`; both ends share one Krylov space). ``which``: 'both', 'largest' or
    'smallest' (the keys of the result); ``tol``: relative residual ‖H y − θ y‖ ≤ tol·|θ|; ``seed`` an int, NumPy or
    torch Generator. Also returned: ``largest_residuals`` / ``smallest_residuals`` (the residual bounds) and
    ``products`` (Hessian-vector products used; 0 when k ≥ dim and the dense Hessian is decomposed instead)."""
    n = size(H)
    if k >= n:
        ev = torch.linalg.eigvalsh(H.dense()).cpu().numpy()
        full = {"smallest": ev[:k], "largest": ev[-k:]}
        out = {key: v for key, v in full.items() if which in ("both", key)}
        return {**out, **{f"{key}_residuals": np.zeros(len(v)) for key, v in out.items()}, "products": 0}
    res = lanczos(H, k_top=k if which != "smallest" else 0, k_bottom=k if which != "largest" else 0, tol=tol,
                  seed=seed)
    out: dict[str, np.ndarray | int] = {}
    if which in ("both", "largest"):
        out["largest"], out["largest_residuals"] = res.largest, res.largest_residuals
    if which in ("both", "smallest"):
        out["smallest"], out["smallest_residuals"] = res.smallest, res.smallest_residuals
    out["products"] = res.products
    return out


@validate_params({"H": _OPERATOR, "n_probe": POSITIVE_INT, "n_steps": POSITIVE_INT, "sigma": [None, POSITIVE],
                  "grid": Interval(Integral, 2, None, "left"), "seed": Seed()})
def spectral_density(H: HessianOperator, n_probe: int = 10, n_steps: int = 60, sigma: float | None = None,
                     grid: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature (Ubaru, Chen, Saad 2017): (grid, density) of the eigenvalues,
    φ(x) = Σ_probes Σ_i (w_i / (n·n_probe)) N(x; θ_i, σ²) with (θ_i, w_i) the Gauss rule of Rademacher probe z
    (:func:`overparam.diagnostics.krylov.lanczos_quadrature`, ``n_steps`` products each), broadened by ``sigma``
    (default: 1 % of the spectral range)."""
    n = size(H)
    g = torch.Generator(device="cpu").manual_seed(seed)
    nodes, weights = [], []
    for _ in range(n_probe):
        v = rademacher(n, 1, g, H.device)[:, 0]
        theta, w = lanczos_quadrature(H, v, n_steps)
        nodes.append(theta)
        weights.append(w / (n * n_probe))
    nodes, weights = np.concatenate(nodes), np.concatenate(weights)
    lo, hi = nodes.min(), nodes.max()
    sigma = sigma or 0.01 * max(hi - lo, 1e-12)
    xs = np.linspace(lo - 5 * sigma, hi + 5 * sigma, grid)
    dens = (weights[None, :] * np.exp(-0.5 * ((xs[:, None] - nodes[None, :]) / sigma) ** 2)).sum(1)
    return xs, dens / (sigma * math.sqrt(2 * math.pi))


@dataclass
class Certificate:
    """What :func:`certify` found. ``eigenvalues``: all of them (small models) or the extremes. ``hessian_lipschitz``
    is an estimate from ``secants`` sampled secants, not a bound. ``products``: Hessian-vector products spent on the
    matrix-free path (0 on the dense path), within ``max_products``."""

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
    products: int = 0
    max_products: int | None = None
    secants: int = 0


class _Budget:
    """Hessian-vector products spent by the matrix-free certificate against ``limit``; reports each long step to
    ``progress(stage, products, limit)``. :meth:`stage` caps what a stage may spend: a stage ends by the cumulative
    share ``_SHARES[stage]`` of the limit, so products an earlier stage left unspent go to the later ones."""

    def __init__(self, limit: int, progress: Callable[[str, int, int], None] | None):
        self.limit, self.spent, self.progress, self.stop = limit, 0, progress, limit

    def stage(self, name: str) -> None:
        self.stop = max(self.spent, int(_SHARES[name] * self.limit))

    def left(self) -> int:
        return min(self.limit, self.stop) - self.spent

    def spend(self, products: int, stage: str) -> None:
        self.spent += products
        if self.progress is not None:
            self.progress(stage, self.spent, self.limit)


def _print_progress(stage: str, products: int, limit: int) -> None:
    """The default progress line on stderr (``certify(..., progress=True)``)."""
    import sys
    print(f"certify: {stage} ({products}/{limit} Hessian-vector products)", file=sys.stderr, flush=True)


class _Difference:
    """H(θ') − H(θ) as an operator (two Hessian-vector products per product)."""

    def __init__(self, Ha: HessianOperator, Hb: HessianOperator):
        self.Ha, self.Hb = Ha, Hb
        self.dim, self.dtype, self.device = Ha.dim, Ha.dtype, Ha.device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.Ha.matvec(v) - self.Hb.matvec(v)


#: Lanczos settings of the matrix-free certificate: a secant's ‖H(θ') − H(θ)‖₂ from at most 5 Lanczos steps on the
#: difference (10 Hessian-vector products; stopped early at a relative residual of 1e-2, where its Ritz value is within
#: ~1e-4 relative, r²/gap): the extreme Ritz value of a few steps is a lower estimate of the norm, as the secant itself
#: is of M. λ_min at a ball point, warm-started from θ's bottom Ritz vector, to 1e-3 in at most 15 products (a Ritz
#: value, so an upper estimate of λ_min there).
_SECANT_TOL, _SECANT_PRODUCTS, _BALL_TOL, _BALL_PRODUCTS = 1e-2, 5, 1e-3, 15
#: the cumulative share of ``max_products`` by which each stage of the matrix-free certificate ends (unspent products
#: roll over): μ and L by Lanczos 35 %, the secants at δ to 70 %, the refinement along −∇λ_min to 80 %, the ball check
#: to 100 %. At the default budget of 300: 105 products for the extremes, 9 secants of 10 products at δ, 3 refinement
#: secants, and ≥ 60 products for the ball check (4 points of ≤ 15).
_SHARES = {"extremes": 0.35, "secants": 0.7, "refinement": 0.8, "ball": 1.0}


def _norm_free(D: _Difference, budget: _Budget, seed: int, stage: str) -> float | None:
    """‖D‖₂ = max(|λ_max|, |λ_min|) of the symmetric difference by Lanczos on both ends; None when the budget cannot
    pay for a few products."""
    cap = min(_SECANT_PRODUCTS, budget.left() // 2)
    if cap < 3:
        return None
    res = lanczos(D, k_top=1, k_bottom=1, tol=_SECANT_TOL, max_products=cap, seed=seed)
    budget.spend(2 * res.products, stage)
    return float(max(abs(res.largest[0]), abs(res.smallest[0])))


def _lambda_min_free(H: HessianOperator, v0: torch.Tensor, budget: _Budget, seed: int, stage: str) -> float | None:
    """λ_min(H) by Lanczos warm-started from ``v0``; None when the budget cannot pay for a few products."""
    cap = min(_BALL_PRODUCTS, budget.left())
    if cap < 3:
        return None
    res = lanczos(H, k_top=0, k_bottom=1, tol=_BALL_TOL, max_products=cap, v0=v0, seed=seed)
    budget.spend(res.products, stage)
    return float(res.smallest[0])


def _lambda_min_gradient(op: HessianOperator, v: torch.Tensor, eps: float) -> torch.Tensor:
    """∇_θ (vᵀ H(θ) v) = D³L(θ)[v, v, ·] by a central difference of gradients,
    (∇L(θ + εv) + ∇L(θ − εv) − 2∇L(θ)) / ε²: for a simple eigenvalue λ_min with unit eigenvector v, the gradient of
    λ_min(θ); its opposite is the direction in which strong convexity is lost fastest."""
    theta = op.flat_params()
    return (op.at(theta + eps * v).gradient() + op.at(theta - eps * v).gradient() - 2 * op.gradient()) / eps ** 2


def _extremes_free(H: HessianOperator, tol: float, budget: _Budget, seed: int,
                   notes: list[str]) -> tuple[float, float, torch.Tensor]:
    """μ = λ_min, L = λ_max and λ_min's unit eigenvector from one Lanczos run, with at most 35 % of the budget
    (``_SHARES``),
    stopped by the value test (the eigenvalues' estimated error ≤ tol·|θ|: μ and L are what the certificate uses)."""
    def tick(products: int, *_: object) -> None:
        if budget.progress is not None and products % 10 == 0:
            budget.progress("λ_min and λ_max by Lanczos", budget.spent + products, budget.limit)

    budget.stage("extremes")
    res = lanczos(H, k_top=1, k_bottom=1, tol=tol, max_products=max(3, budget.left()), seed=seed,
                  vectors=True, callback=tick, test="value")
    budget.spend(res.products, "λ_min and λ_max by Lanczos")
    if not res.converged:
        notes.append(f"λ_min, λ_max not converged to {tol:.1e} in {res.products} products (residuals "
                     f"{res.smallest_residuals[0]:.2e}, {res.largest_residuals[0]:.2e})")
    v = res.smallest_vectors[:, 0]
    return float(res.smallest[0]), float(res.largest[0]), (v / v.norm()).to(H.dtype)


def _secant_directions(H: HessianOperator, unit: Callable[[], torch.Tensor], n_directions: int,
                       delta: float | None, mu: float, vmin: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    """The secant step δ (default 1e-4‖θ‖) and the directions: ``n_directions`` random unit vectors, preceded, at a
    positive definite point, by −∇λ_min/‖∇λ_min‖ (:func:`_lambda_min_gradient` with ε = 1e-3‖θ‖)."""
    scale = float(H.flat_params().norm()) or 1.0
    directions = [unit() for _ in range(n_directions)]
    if mu > 0:
        g3 = _lambda_min_gradient(H, vmin, 1e-3 * scale)
        if float(g3.norm()) > 0:
            directions.insert(0, -g3 / g3.norm())
    return delta or 1e-4 * scale, directions


def _unit_sampler(H: HessianOperator, rng: np.random.Generator) -> Callable[[], torch.Tensor]:
    """Uniform random unit vectors of length H.dim from ``rng`` (NumPy draws, so both paths sample the same points)."""
    def unit() -> torch.Tensor:
        u = torch.from_numpy(rng.standard_normal(H.dim)).to(H.dtype).to(H.device)
        return u / u.norm()
    return unit


@validate_params({**_MODEL_PARAMS, "dense_limit": NON_NEGATIVE_INT, "n_directions": POSITIVE_INT,
                  "delta": [None, POSITIVE], "n_ball": POSITIVE_INT, "refine": NON_NEGATIVE_INT, "seed": Seed(),
                  "eig_tol": NON_NEGATIVE, "max_products": POSITIVE_INT, "progress": [None, Options((True, False)),
                                                                                       IsCallable()]})
def certify(model: torch.nn.Module, loss_fn: Callable, inputs: torch.Tensor, targets: torch.Tensor, *,
            param_filter: Callable | None = None, batch_size: int | None = None, dense_limit: int = 2000,
            n_directions: int = 8, delta: float | None = None, n_ball: int = 8, refine: int = 3, seed: int = 0,
            eig_tol: float = 1e-10, max_products: int = 300,
            progress: bool | Callable[[str, int, int], None] | None = None) -> Certificate:
    """Strong-convexity certificate at the model's current parameters (module docstring). Dense eigenvalues when the
    model has ≤ ``dense_limit`` parameters, Lanczos otherwise.

    M is estimated as the largest ‖H(θ + δu) − H(θ)‖₂/δ over ``n_directions`` random unit u and the direction
    u* = −∇λ_min(θ)/‖∇λ_min(θ)‖ (:func:`_lambda_min_gradient`), then refined for up to ``refine`` rounds by the secants
    ‖H(θ') − H(θ)‖₂/r at points θ' = θ + r·u on the sphere of the current radius r = μ/(2M) (u* and ``n_ball`` random
    u): M grows to the largest secant seen, r shrinks, until no secant exceeds M. It remains an estimate from samples,
    not a bound. The ball check evaluates λ_min at those sphere points and at ``n_ball`` uniform points inside (the
    dense path; the matrix-free path below refines along u* only and checks the ball at fewer points).

    Matrix-free path (more than ``dense_limit`` parameters), within ``max_products`` Hessian-vector products in all
    (a product of a difference of Hessians counts two; the 3 gradients for ∇λ_min are not counted), in stages that
    each end by a share of the budget (``_SHARES``; unspent products roll over): μ, L and λ_min's eigenvector from one
    thick-restart Lanczos run on both ends (35 %; estimated relative error of the values max(eig_tol, 1e3·ε of the
    model's dtype)); the secants at δ, each ‖H(θ + δu) − H(θ)‖₂ from ≤ 5 Lanczos steps on the difference (to 70 %);
    the refinement along u* only, one secant per round (to 80 %); the ball check at the sphere point θ + r·u* and
    ``n_ball`` uniform points inside, each λ_min by ≤ 15 Lanczos steps warm-started from θ's bottom Ritz vector (the
    rest). Where a stage's share runs out it stops and ``notes`` says so; ``Certificate.products`` is what was spent.
    M stays an estimate from the sampled secants (``notes`` says so), never a bound. ``progress``: True prints each
    step's product count to stderr; a callable gets ``(stage, products, max_products)``.
    """
    H = HessianOperator(model, loss_fn, inputs, targets, param_filter, batch_size)
    if H.dim <= dense_limit:
        return _certify_dense(H, n_directions, delta, n_ball, refine, seed)
    report = _print_progress if progress is True else (progress or None)
    # a residual below 1e3·ε·|θ| buys nothing a float32 product can resolve (the eigenvalue's error is ~ r²/gap)
    return _certify_free(H, n_directions, delta, n_ball, refine, seed, max(eig_tol, 1e3 * torch.finfo(H.dtype).eps),
                         _Budget(max_products, report))


def _certify_dense(H: HessianOperator, n_directions: int, delta: float | None, n_ball: int, refine: int,
                   seed: int) -> Certificate:
    """The certificate from dense Hessians (small models): every eigenvalue, exact secant norms."""
    rng = np.random.default_rng(seed)
    theta = H.flat_params()
    unit = _unit_sampler(H, rng)

    def secant(u: torch.Tensor, dist: float) -> tuple[float, torch.Tensor]:
        """‖H(θ + dist·u) − H(θ)‖₂ / dist and the dense Hessian at θ + dist·u (for the ball check)."""
        Hud = H.at(theta + dist * u).dense()
        return float(torch.linalg.matrix_norm(Hud - Hd, ord=2)) / dist, Hud

    def lambda_min_at(t: torch.Tensor, dense: torch.Tensor | None = None) -> float:
        return float(torch.linalg.eigvalsh(H.at(t).dense() if dense is None else dense)[0])

    Hd = H.dense()  # the dense Hessian at θ, once; one eigendecomposition gives every eigenvalue and λ_min's vector
    evals, evecs = torch.linalg.eigh(Hd)
    mu, L, vmin, ev = float(evals[0]), float(evals[-1]), evecs[:, 0], evals.cpu().numpy()
    delta, directions = _secant_directions(H, unit, n_directions, delta, mu, vmin)
    M = max(secant(u, delta)[0] for u in directions)
    n_secants = len(directions)
    notes = []
    radius = mu / (2 * M) if mu > 0 and M > 0 else (math.inf if mu > 0 else 0.0)
    ball_min, ok = math.inf, mu > 0
    if mu > 0 and math.isfinite(radius):
        sphere = directions[:1] + [unit() for _ in range(n_ball)]
        at_radius: list[torch.Tensor | None] = [None] * len(sphere)  # dense Hessians on the final sphere, if seen
        for _ in range(refine):
            seen = [secant(u, radius) for u in sphere]
            n_secants += len(seen)
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
    return _finish(H, mu, L, M, radius, ev, ball_min, ok, notes, 0, None, n_secants)


def _finish(H: HessianOperator, mu: float, L: float, M: float, radius: float, ev: np.ndarray, ball_min: float,
            ok: bool, notes: list[str], products: int, limit: int | None, n_secants: int) -> Certificate:
    """The Certificate, with the notes every path shares."""
    if mu <= 0:
        notes.append("not positive definite: no strongly convex ball (zero or negative curvature directions)")
    notes.append(f"hessian_lipschitz: an estimate from {n_secants} sampled secants, not a bound")
    g = float(H.gradient().norm())
    return Certificate(mu, L, (L / mu) if mu > 0 else math.inf, M, radius, ev, mu > 0, g, ball_min, bool(ok), notes,
                       products, limit, n_secants)


def _certify_free(H: HessianOperator, n_directions: int, delta: float | None, n_ball: int, refine: int, seed: int,
                  tol: float, budget: _Budget) -> Certificate:
    """The certificate from Hessian-vector products only, within ``budget`` (:func:`certify`)."""
    rng = np.random.default_rng(seed)
    theta = H.flat_params()
    notes: list[str] = []
    unit = _unit_sampler(H, rng)

    def secants(us: list[torch.Tensor], dist: float, stage: str) -> list[float]:
        """‖H(θ + dist·u) − H(θ)‖₂ / dist for each u, as many as the budget pays for."""
        out = []
        for i, u in enumerate(us):
            norm = _norm_free(_Difference(H.at(theta + dist * u), H), budget, seed + 1, f"{stage} {i + 1}/{len(us)}")
            if norm is None:
                break
            out.append(norm / dist)
        return out

    mu, L, vmin = _extremes_free(H, tol, budget, seed, notes)
    ev = np.array([mu, L])
    delta, directions = _secant_directions(H, unit, n_directions, delta, mu, vmin)
    budget.stage("secants")
    seen = secants(directions, delta, "secant at δ")
    n_secants = len(seen)
    M = max(seen, default=math.nan)  # no secant paid for: M unknown, and with it the radius
    if n_secants < len(directions):
        notes.append(f"product budget {budget.limit} spent after {n_secants} of {len(directions)} secants at δ")
    radius = mu / (2 * M) if mu > 0 and M > 0 else (math.inf if mu > 0 and M == 0 else 0.0)
    ball_min, ok = math.inf, mu > 0 and n_secants > 0
    if mu > 0 and math.isfinite(radius) and radius > 0:
        M, radius, n_refined = _refine_free(directions[0], mu, M, radius, refine, secants, budget, notes)
        n_secants += n_refined
        budget.stage("ball")
        inside = [u * radius * rng.random() ** (1.0 / H.dim) for u in (unit() for _ in range(n_ball))]
        points = [theta + radius * directions[0]] + [theta + x for x in inside]
        lams = []
        for i, t in enumerate(points):
            lam = _lambda_min_free(H.at(t), vmin, budget, seed, f"ball check {i + 1}/{len(points)}")
            if lam is None:
                notes.append(f"product budget {budget.limit} spent: ball check at {len(lams)} of {len(points)} points")
                break
            lams.append(lam)
        ball_min = min(lams, default=math.inf)
        ok = bool(lams) and ball_min >= mu / 2
    notes.append(f"matrix-free: {budget.spent} Hessian-vector products of a budget of {budget.limit} (a difference "
                 f"product counts two; the 3 gradients of ∇λ_min not counted)")
    return _finish(H, mu, L, M, radius, ev, ball_min, ok, notes, budget.spent, budget.limit, n_secants)


def _refine_free(u: torch.Tensor, mu: float, M: float, radius: float, refine: int, secants: Callable,
                 budget: _Budget, notes: list[str]) -> tuple[float, float, int]:
    """Up to ``refine`` rounds of the secant at the current radius along u = −∇λ_min/‖∇λ_min‖ (the direction in which
    the bottom Ritz pair's eigenvalue falls fastest): M ← max(M, ‖H(θ + r u) − H(θ)‖₂/r), r ← μ/(2M), until the secant
    no longer exceeds M. Returns (M, r, secants taken)."""
    budget.stage("refinement")
    taken = 0
    for r in range(refine):
        seen = secants([u], radius, f"refinement {r + 1}, secant")
        taken += len(seen)
        if not seen:
            notes.append(f"product budget {budget.limit} spent in refinement round {r + 1}: the radius may be "
                         f"optimistic")
            return M, radius, taken
        if seen[0] <= M:
            return M, radius, taken
        M, radius = seen[0], mu / (2 * seen[0])
    if refine:
        notes.append(f"M still grew after {refine} refinement rounds: the radius may be optimistic")
    return M, radius, taken
