"""Both ends of a symmetric operator's spectrum from one Krylov space: thick-restart Lanczos (Wu & Simon 2000).

Any symmetric operator works that has ``matvec(v)`` (or ``@``), a size (``shape`` (n, n) or ``dim``), ``dtype`` and
``device``: the library's Hessian and GGN operators, the linear-operator base, a wrapped dense matrix. Products run
in the operator's dtype (float32, say); the basis, the projection and every inner product are float64.

The recurrence (full reorthogonalization, classical Gram–Schmidt twice): with an orthonormal basis V_j = [v_1 … v_j],

    w = H v_j,   h = V_jᵀ w,   w ← w − V_j h (twice),   T[:j, j] = h,   β_j = ‖w‖,   v_{j+1} = w / β_j,

so that H V_j = V_j T_j + β_j v_{j+1} e_jᵀ with T_j = V_jᵀ H V_j symmetric (tridiagonal until a restart). A Ritz
pair (θ, y = V_j s) of T_j has the residual ‖H y − θ y‖ = β_j |s_j| (in exact arithmetic; the products' own rounding
adds about ε_dtype·‖H‖). When the basis holds ``max_basis`` vectors it restarts thick: the Ritz vectors of both ends
are kept (V ← V S_kept, T ← diag(θ_kept)), v_{j+1} continues the recurrence, and the Gram–Schmidt coefficients of the
next product rebuild the arrowhead coupling β_j s_j exactly. A breakdown (β_j ≈ 0: an invariant subspace) continues
from a random vector orthogonal to the basis, so that repeated eigenvalues are found as often as they occur.

When only values are asked for (``vectors=False``), the steps before the first restart reorthogonalize partially
(Simon 1984): the three-term recurrence alone, with the estimates ω_k ≈ v_{j+1}ᵀv_k carried by Simon's recurrence
(:meth:`_Krylov._omega_step`, with ε the products' precision), and a full pass (for this vector and the next) only
when some |ω_k| would exceed √ε. Semi-orthogonality keeps the Ritz values accurate to about ε‖H‖ (what full
reorthogonalization gives) while most steps skip the pass, whose cost grows with the basis (at 10⁵ parameters: top-10
2.91 s against 3.21 s, λ_min 6.72 s against 7.17 s, same products and values). If a full pass finds the basis less
orthogonal than estimated (10√ε; near an invariant subspace, where β_j is small), the run goes on with full passes.
Ritz vectors (``vectors=True``) always come from a fully reorthogonalized basis: semi-orthogonality would leave their
residuals at √ε‖H‖ rather than the recurrence's bound.

Stopping: the requested Ritz values at each end are converged when e ≤ tol · max(|θ|, 1e-8‖T‖) (a relative test,
with a floor so that an eigenvalue at 0 can converge), or when ``max_products`` products are spent. ``test="residual"``
(default): e = r = ‖H y − θ y‖, ARPACK's test; some eigenvalue lies within r of θ. ``test="value"``: e = min(r, r²/g)
with g the distance from θ to the nearest other Ritz value on either side less that value's residual
(:func:`_value_errors`), the estimate of |θ − λ| that the Kato–Temple bound gives when g is the gap to the rest of the
spectrum; g from Ritz values can overstate that gap while an eigenvalue near θ has not yet been found, so this test
is an estimate, not a bound: it stops when the eigenvalue (not yet the vector) is accurate.

:func:`lanczos_quadrature` runs the same recurrence without restarts for stochastic Lanczos quadrature (the nodes and
weights of the Gauss rule of the probe's spectral measure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from ..validation import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT, Options, Seed, validate_params
from ..validation import Constraint, _given

_EPS = float(np.finfo(np.float64).eps)


class OperatorLike(Constraint):
    """A square linear operator: has ``matvec`` and a size (``shape`` (n, n) or ``dim``), ``dtype`` and ``device``."""

    def describe(self) -> str:
        return "a linear operator with matvec, shape (or dim), dtype and device"

    def convert(self, name, value, args):
        ok = callable(getattr(value, "matvec", None)) and all(hasattr(value, a) for a in ("dtype", "device")) \
            and (hasattr(value, "dim") or len(getattr(value, "shape", ())) == 2)
        if not ok:
            raise ValueError(f"{name}: must be {self.describe()} (got {_given(value)})")
        return value


OPERATOR = OperatorLike()


def size(H: Any) -> int:
    """n for an operator of shape (n, n) (``shape`` or ``dim``)."""
    shape = getattr(H, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) == 2 else int(H.dim)


def rademacher(n: int, k: int, gen: torch.Generator, device: Any,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(n, k) entries ±1 (exact in any float ``dtype``: the same numbers in float32 and float64), drawn on
    ``device``: by ``gen`` where it lives there (the same numbers as an integer draw converted), else by a generator
    there seeded from ``gen`` (no n × k integer temporary and no host-to-device copy: at n = 10⁷ on a GPU that copy
    dominated Hutch++)."""
    device = torch.device(device)
    if device != gen.device:
        gen = torch.Generator(device).manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
    return torch.randint(0, 2, (n, k), generator=gen, device=device, dtype=dtype).mul_(2.0).sub_(1.0)


class Counted:
    """``H`` with a product count: ``matvec`` takes (n,) tensors and returns them in ``dtype`` (float64 unless asked),
    running the product in H.dtype."""

    def __init__(self, H: Any):
        self.H, self.n, self.products = H, size(H), 0

    def matvec(self, v: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        self.products += 1
        return self.H.matvec(v.to(self.H.dtype)).to(dtype)

    def matmat(self, V: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """H V for V (n, k), returned in ``dtype``: the operator's batched ``matmat`` where it has one (k products),
        else column by column. With V and ``dtype`` both H.dtype nothing is converted (no copies)."""
        if not callable(getattr(self.H, "matmat", None)):
            return torch.stack([self.matvec(V[:, i], dtype) for i in range(V.shape[1])], 1)
        self.products += V.shape[1]
        return self.H.matmat(V.to(self.H.dtype)).to(dtype)


@dataclass
class LanczosResult:
    """What :func:`lanczos` found. Values increase; ``*_residuals[i]`` = ‖H y_i − θ_i y_i‖ (the recurrence's bound);
    ``*_vectors`` (n, k) float64 Ritz vectors when asked for, else None. ``products``: matrix-vector products used."""

    largest: np.ndarray
    smallest: np.ndarray
    largest_residuals: np.ndarray
    smallest_residuals: np.ndarray
    largest_vectors: torch.Tensor | None
    smallest_vectors: torch.Tensor | None
    products: int
    converged: bool
    restarts: int
    norm_estimate: float  # max |θ| over all Ritz values: a lower estimate of ‖H‖₂


class _Krylov:
    """The basis V (rows, float64), the projection T = VᵀHV and the unnormalized next vector of the recurrence."""

    def __init__(self, op: Counted, capacity: int, v0: torch.Tensor, gen: torch.Generator, partial: bool = False):
        self.op, self.gen, self.partial = op, gen, partial
        # the rounding the recurrence carries: the products' precision (float32 products: 1.2e-7), not float64's
        self.eps = max(_EPS, float(torch.finfo(op.H.dtype).eps))
        # rows are written before they are read (only V[:j + 1] is ever used): no zero fill of (capacity + 1)·n
        self.V = torch.empty(capacity + 1, op.n, dtype=torch.float64, device=v0.device)
        self.T = np.zeros((capacity, capacity))
        self.j = 0  # basis vectors whose product has been taken
        self.V[0] = v0 / v0.norm()
        self.beta = 0.0
        self.local = False  # whether H v_j couples only to v_{j-1}, v_j (no restart or breakdown just before)
        self.tridiagonal = True  # no restart and no breakdown yet: T is tridiagonal (up to reorthogonalization terms)
        # Simon's estimates ω_k ≈ v_jᵀv_k (k ≤ j) for the newest vector and ω'_k for the one before (partial
        # reorthogonalization, module docstring); ``full_passes`` counts the steps that ran the full pass
        self.omega, self.omega_prev = np.zeros(capacity + 2), np.zeros(capacity + 2)
        self.omega[0] = 1.0
        self.reorth_next, self.full_passes = False, 0

    def _orthogonalize(self, w: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """w − V_k V_kᵀ w by classical Gram–Schmidt twice; the coefficients summed."""
        B = self.V[:k]
        h = B @ w
        w = w - h @ B
        h2 = B @ w
        return w - h2 @ B, h + h2

    def step(self) -> None:
        """One product: column j of T, β_j, and v_{j+1} (a fresh random direction after a breakdown)."""
        j = self.j
        w = self.op.matvec(self.V[j])
        if self.local:  # the three-term recurrence, then a full reorthogonalization pass where it is due
            a = float(self.V[j] @ w)
            w = w - a * self.V[j] - self.beta * self.V[j - 1]
            pro = self.partial and self.tridiagonal  # partial reorthogonalization (module docstring)
            # a pass is due without PRO, as the second of Simon's two passes, or when the estimates say so
            due = not pro or self.reorth_next or self._omega_step(j, a, float(w.norm()))
            if due:  # one classical Gram–Schmidt pass against the whole basis (half the reads of V)
                B = self.V[: j + 1]
                h = B @ w
                w = w - h @ B
                self.full_passes += 1
                if pro:  # Simon: the next vector is orthogonalized too, then the estimates restart
                    lost = float(h[: j - 1].abs().max()) / max(float(w.norm()), 1e-300) if j > 1 else 0.0
                    if lost > 10 * self.eps ** 0.5:  # the estimates missed a loss: full passes from here on
                        self.partial = False
                    self._orthogonal(j, advance=self.reorth_next)  # _omega_step advanced them otherwise
                    self.reorth_next = not self.reorth_next
            else:
                h = torch.zeros(j + 1, dtype=torch.float64, device=w.device)
            h[j] += a
            h[j - 1] += self.beta
        else:  # first step, or right after a restart or breakdown: v_j couples to every earlier vector
            w, h = self._orthogonalize(w, j + 1)
            self.full_passes += 1
            self.tridiagonal = self.tridiagonal and j == 0
            self._orthogonal(j, advance=True)
        hn = h.cpu().numpy()
        self.T[: j + 1, j] = hn
        self.T[j, : j + 1] = hn
        self.beta = float(w.norm())
        self.j = j + 1
        if self.j >= self.op.n:
            return
        scale = float(np.abs(self.T[: j + 1, : j + 1]).max()) or 1.0
        self.local = self.beta > 1e-12 * scale
        if not self.local:  # invariant subspace: go on from a random orthogonal direction
            self.beta = 0.0
            r = torch.randn(self.op.n, generator=self.gen, dtype=torch.float64).to(self.V.device)
            w, _ = self._orthogonalize(r, self.j)
            w, _ = self._orthogonalize(w, self.j)
            self.V[self.j] = w / w.norm()
        else:
            self.V[self.j] = w / self.beta

    def _orthogonal(self, j: int, advance: bool) -> None:
        """Simon's estimates after v_{j+1} was orthogonalized against v_0 … v_j: ω_k = ε for k ≤ j and 1 for itself;
        ``advance``: the newest vector's estimates move to ω' first (when :meth:`_omega_step` has not moved them)."""
        if advance:
            self.omega_prev, self.omega = self.omega, np.zeros_like(self.omega)
        self.omega[: j + 1], self.omega[j + 1] = self.eps, 1.0

    def _omega_step(self, j: int, a: float, beta: float) -> bool:
        """Advance Simon's recurrence to the estimates ω_k ≈ v_{j+1}ᵀv_k of the next vector, given α_j = ``a`` and
        β_j = ``beta`` (the norm of the vector before normalization):

            β_j ω_{j+1,k} = β_k ω_{j,k+1} + (α_k − α_j) ω_{j,k} + β_{k−1} ω_{j,k−1} − β_{j−1} ω_{j−1,k} ± ε(β_k + β_j),

        with ε the products' precision (:attr:`eps`), ω_{j+1,j} = ε√n (the recurrence's own local orthogonality) and
        ω_{j+1,j+1} = 1. True when some |ω_{j+1,k}| exceeds √ε: the basis is about to lose semi-orthogonality and the
        full pass is due."""
        if beta <= 0.0:
            return True
        eps, T, om, op = self.eps, self.T, self.omega, self.omega_prev
        alpha = np.diag(T)[:j]
        betas = np.append(T[np.arange(j - 1), np.arange(1, j)], self.beta)  # β_k couples v_k, v_{k+1}; k < j
        term = betas * om[1: j + 1] + (alpha - a) * om[:j] - self.beta * op[:j]
        term[1:] += betas[:-1] * om[: j - 1]
        new = np.zeros_like(om)
        new[:j] = (term + np.copysign(eps * (np.abs(betas) + beta), term)) / beta
        new[j], new[j + 1] = eps * self.op.n ** 0.5, 1.0
        self.omega_prev, self.omega = om, new
        return bool(np.abs(new[: j + 1]).max() > eps ** 0.5)

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values θ (increasing), coefficient vectors S (j, j) and residuals β_j |S[j−1, :]|; T by the
        tridiagonal solver while it is tridiagonal (no restart yet: O(j²) instead of a dense eigh's O(j³))."""
        j = self.j
        T = self.T[:j, :j]
        if self.tridiagonal and j > 1:
            theta, S = eigh_tridiagonal(np.diag(T).copy(), np.diag(T, 1).copy())
        else:
            theta, S = np.linalg.eigh(T)
        return theta, S, self.beta * np.abs(S[j - 1, :])

    def vectors(self, S: np.ndarray) -> torch.Tensor:
        """Ritz vectors V_jᵀ S, (n, k)."""
        return self.V[: self.j].T @ torch.from_numpy(S).to(self.V)

    def restart(self, theta: np.ndarray, S: np.ndarray, keep: np.ndarray) -> None:
        """Thick restart: V ← Ritz vectors ``keep``, T ← diag(θ_keep), the next vector kept as v_{k+1}."""
        k, nxt = len(keep), self.V[self.j].clone()
        self.V[:k] = (torch.from_numpy(np.ascontiguousarray(S[:, keep].T)).to(self.V) @ self.V[: self.j])
        self.V[k] = nxt
        self.T[:] = 0.0
        self.T[np.arange(k), np.arange(k)] = theta[keep]
        self.j = k
        self.local = self.tridiagonal = False


def _start(n: int, v0: Any, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    if v0 is None:
        return torch.randn(n, generator=gen, dtype=torch.float64).to(device)
    v = torch.as_tensor(v0).to(device=device, dtype=torch.float64).reshape(-1)
    if v.numel() != n or not bool(torch.isfinite(v).all()) or float(v.norm()) == 0.0:
        raise ValueError(f"v0: must be a finite nonzero vector of length {n} (got shape {tuple(v.shape)})")
    return v


def _ends(theta: np.ndarray, k_top: int, k_bottom: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the k_bottom smallest and the k_top largest Ritz values, disjoint when few Ritz values exist."""
    j = len(theta)
    bottom = np.arange(min(k_bottom, j))
    top = np.arange(max(j - k_top, len(bottom) if k_bottom else 0), j)
    return bottom, top


@validate_params({"H": OPERATOR, "k_top": NON_NEGATIVE_INT, "k_bottom": NON_NEGATIVE_INT, "tol": NON_NEGATIVE,
                  "max_products": [None, POSITIVE_INT], "max_basis": [None, POSITIVE_INT], "seed": Seed(to="torch"),
                  "test": Options(("residual", "value"))})
def lanczos(H: Any, k_top: int = 1, k_bottom: int = 1, tol: float = 1e-6, max_products: int | None = None,
            max_basis: int | None = None, v0: Any = None, seed: int = 0, vectors: bool = False,
            callback: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
            test: str = "residual") -> LanczosResult:
    """The ``k_top`` largest and ``k_bottom`` smallest eigenvalues of a symmetric operator H from one thick-restart
    Lanczos run (module docstring), with residual bounds ‖H y − θ y‖ and, if ``vectors``, the Ritz vectors.

    ``tol``: relative error at which a requested Ritz value counts as converged, of the residual (``test``
    'residual') or of the value's estimate min(r, r²/gap) ('value'; module docstring). ``max_products`` (default
    20·n, at most 10 000): products of H allowed. ``max_basis`` (default min(n, max(160, 4(k_top + k_bottom) + 20,
    min(4·n^⅓, 600))), fewer where that would take more than a quarter of the device's free memory:
    :func:`_default_basis`): vectors kept before a thick restart; memory is (max_basis + 1)·n float64 (3.2 GB at
    n = 10⁶). ``v0``: start vector (a warm start,
    e.g. the previous eigenvector), else Gaussian from ``seed``. ``callback(products, theta, residuals)`` after each
    convergence check (progress on long runs).
    """
    n = size(H)
    if k_top + k_bottom == 0:
        raise ValueError("k_top: k_top + k_bottom must be ≥ 1 (got 0 and 0)")
    if k_top + k_bottom > n:
        raise ValueError(f"k_top: k_top + k_bottom must be ≤ n = {n} (got {k_top} + {k_bottom})")
    op = Counted(H)
    device = getattr(H, "device", torch.device("cpu"))
    budget = max_products or min(20 * n, 10_000)
    cap = min(n, max_basis or _default_basis(n, k_top + k_bottom, device), budget)  # no more vectors than products
    cap = max(cap, min(n, k_top + k_bottom + 2))
    kry = _Krylov(op, cap, _start(n, v0, seed, device), seed, partial=not vectors)
    restarts = 0
    while True:
        kry.step()
        full = kry.j == cap
        theta, S, res = kry.ritz()
        bottom, top = _ends(theta, k_top, k_bottom)
        want = np.concatenate([bottom, top])
        floor = 1e-8 * float(np.abs(theta).max())
        err = res[want] if test == "residual" else _value_errors(theta, res, want)
        done = bool(np.all(err <= tol * np.maximum(np.abs(theta[want]), floor))) and len(want) == k_top + k_bottom
        if callback is not None:
            callback(op.products, theta[want], res[want])
        if done or op.products >= budget or (kry.j == n and cap == n):
            break
        if full:
            keep = _kept(len(theta), k_top, k_bottom, cap)
            kry.restart(theta, S, keep)
            restarts += 1
    Y = kry.vectors(S[:, want]) if vectors else None
    nb = len(bottom)
    return LanczosResult(theta[top], theta[bottom], res[top], res[bottom],
                         None if Y is None else Y[:, nb:], None if Y is None else Y[:, :nb],
                         op.products, done, restarts, float(np.abs(theta).max()))


#: vectors of the default basis before a restart, at least. A restart throws away Krylov directions that later
#: products must rebuild: λ_min of the 10⁶-parameter MLP of benchmarks/hessian_eigenvalues.py took 568 products with
#: restarts at 160 vectors, where one unrestarted run's value test stops after 364 (0.39 s a product against 0.48 s)
DEFAULT_BASIS = 160
#: the default grows with the operator as 4·n^⅓ (400 vectors, 3.2 GB, at n = 10⁶), up to MAX_DEFAULT_BASIS: after a
#: restart each convergence check is a dense eigh of T, about 9j³ flops, which at j = 4·n^⅓ is 576·n, less than one
#: Hessian-vector product of a model over a batch of more than about 100 samples; small operators keep 160, where
#: the eigh would outweigh their products. Where products are cheap the rule favours products over time: on one H200
#: (the 10⁷-parameter MLP, 7 ms a product) λ_min took 567 products in 14.1 s with the default (465 vectors, a quarter
#: of free memory) and 613 in 9.0 s with 160: 10 s of the 14 went to the Lanczos arithmetic (float64 passes over up
#: to 465 vectors of 10⁷, a dense eigh on the host after the restart), where the products took 4 s
MAX_DEFAULT_BASIS = 600


def _default_basis(n: int, k: int, device: torch.device) -> int:
    """max(DEFAULT_BASIS, 4k + 20, min(4·n^⅓, MAX_DEFAULT_BASIS)) vectors, fewer where (vectors + 1)·n float64 would
    take more than a quarter of the device's free memory (at least k + 10: a thick restart needs room beyond the
    kept Ritz vectors)."""
    want = max(DEFAULT_BASIS, 4 * k + 20, min(round(4 * n ** (1 / 3)), MAX_DEFAULT_BASIS))
    free = _free_bytes(device)
    fits = int(0.25 * free / (8 * n)) - 1 if free else want
    return max(min(want, fits), k + 10)


def _free_bytes(device: torch.device) -> int | None:
    """Free memory of the device in bytes (CUDA: mem_get_info plus what torch's caching allocator holds unused, so
    that a second run finds the room the first one freed and picks the same basis; CPU: MemAvailable of
    /proc/meminfo); None if unknown."""
    try:
        if torch.device(device).type == "cuda":
            dev = torch.device(device)
            cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
            return int(torch.cuda.mem_get_info(dev)[0]) + int(cached)
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, RuntimeError, StopIteration, ValueError):
        return None


def _value_errors(theta: np.ndarray, res: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """min(r_i, r_i²/g_i) with g_i = min over the adjacent Ritz values j = i ± 1 (θ increasing) of |θ_i − θ_j| − r_j:
    the distance to the nearest other Ritz value on each side less that value's own residual (an unconverged
    neighbour shrinks the gap, so the estimate stays cautious); r_i itself where g_i ≤ 0 or θ_i has no neighbour yet.

    Only the adjacent values enter: g stands in for the distance to the next eigenvalue, and a Ritz value further
    out says where some eigenvalue lies, not that one lies nearer than the adjacent one. Taking the minimum over all
    of them (as before) let unconverged values deeper in the spectrum hold the test back: on the 10⁶-parameter MLP
    of benchmarks/hessian_eigenvalues.py (no restart), the third-smallest (r₃ = 2.4e-4 at 3e-4 from θ₁) kept g small
    until 504 products, where the adjacent gap stops at 364 with θ₁ 1.3e-8 from λ_min (the target was 1e-6)."""
    out = np.empty(len(idx))
    for k, i in enumerate(idx):
        near = [j for j in (i - 1, i + 1) if 0 <= j < len(theta)]
        g = min(float(abs(theta[j] - theta[i]) - res[j]) for j in near) if near else 0.0
        out[k] = min(res[i], res[i] ** 2 / g) if g > 0 else res[i]
    return out


def _kept(j: int, k_top: int, k_bottom: int, cap: int) -> np.ndarray:
    """Ritz pairs kept at a thick restart: the requested ones and as many again at each end requested, about half
    the basis in all (Wu & Simon keep about half), so that the next cycle starts from the converging directions."""
    extra = max(1, (cap // 2 - k_top - k_bottom) // ((k_top > 0) + (k_bottom > 0)))
    nb = min(j, k_bottom + extra) if k_bottom else 0
    nt = min(j - nb, k_top + extra) if k_top else 0
    return np.concatenate([np.arange(nb), np.arange(j - nt, j)]).astype(int)


def lanczos_quadrature(H: Any, v0: torch.Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature of the spectral measure of H at v0 from ``steps`` Lanczos steps (no restart, partial
    reorthogonalization: a pass over the basis only where Simon's estimates call for one; at 10⁵ parameters SLQ's
    4 × 40 steps took 2.50 s against 2.72 s with a pass every step): nodes θ_i (the Ritz values) and weights
    ‖v0‖²·(s_i)₁² with Σ weights = ‖v0‖², so that v0ᵀ f(H) v0 ≈ Σ_i w_i f(θ_i)."""
    op = Counted(H)
    steps = min(steps, op.n)
    gen = torch.Generator().manual_seed(0)
    v0 = v0.to(torch.float64)
    kry = _Krylov(op, steps, v0, gen, partial=True)
    while kry.j < steps:
        kry.step()
        if kry.beta == 0.0:  # invariant subspace: the rule is exact with the nodes found so far
            break
    theta, S = np.linalg.eigh(kry.T[: kry.j, : kry.j])
    return theta, float(v0 @ v0) * S[0, :] ** 2


def residual_norms(H: Any, theta: np.ndarray, Y: torch.Tensor) -> np.ndarray:
    """‖H y_i − θ_i y_i‖ by products (a check of the recurrence's bound; costs one product per column)."""
    op = Counted(H)
    return np.array([float((op.matvec(Y[:, i]) - float(theta[i]) * Y[:, i]).norm()) for i in range(Y.shape[1])])

