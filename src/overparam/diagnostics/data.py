"""The data side of a checkup: sample ratios and the spectrum of the inputs (or of features).

For inputs flattened to X (n, d), the second-moment matrix XᵀX/n has eigenvalues λ_1 ≥ … ≥ λ_d. Two exponents are
fitted and named apart (:mod:`.spectrum`):

- the **rank-decay exponent** a, λ_k ∝ k^−a (the one ridge theory uses; the near-interpolator norm grows like n^a),
  with an interval: the row bootstrap's 95 % spread widened on both sides by the finite-sample bias measured by
  halving the rows (:func:`_half_sample_bias`);
- the **density-tail exponent** α, p(λ) ∝ λ^−α (the one WeightWatcher reports), by maximum likelihood with xmin chosen
  by KS distance, interval α ± 1.96 (α − 1)/√n_tail.

For a pure power law α = 1 + 1/a; ``exponents_disagree`` flags when the intervals do not overlap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .spectrum import exponents_disagree, powerlaw_exponent, tail_exponent
from .weights import MIN_EIGENVALUES

#: rows used for the spectrum and its bootstrap (a random subset, seeded, when there are more)
MAX_SPECTRUM_ROWS = 4000
#: multiply-adds allowed for all bootstrap replicates together (each costs about n·min(n, d)·max(n, d)): fewer replicates
#: (at least MIN_BOOT) for wide data, so that 4000 × 2500 inputs take seconds, not a quarter of an hour
BOOT_BUDGET = 2e11
MIN_BOOT = 10


def _rows(x: torch.Tensor, seed: int) -> np.ndarray:
    """Flattened rows (n, d) as float64 NumPy, at most MAX_SPECTRUM_ROWS of them (a seeded random subset)."""
    X = x.detach().reshape(len(x), -1).double().cpu().numpy()
    if len(X) > MAX_SPECTRUM_ROWS:
        X = X[np.sort(np.random.default_rng(seed).choice(len(X), MAX_SPECTRUM_ROWS, replace=False))]
    return X


def spectrum_section(x: torch.Tensor, seed: int = 0, n_boot: int = 100) -> dict[str, Any]:
    """Eigenvalues of XᵀX/n (decreasing) and both exponents (module docstring) of a data or feature matrix x (n, ...);
    the fits are NaN with a ``note`` when fewer than 10 eigenvalues are positive. ``n_boot`` replicates at most,
    fewer for wide data (BOOT_BUDGET; ``boot_replicates`` says how many)."""
    X = _rows(x, seed)
    lam = np.linalg.svd(X, compute_uv=False) ** 2 / len(X)
    out: dict[str, Any] = {"rows_used": len(X), "dimension": X.shape[1], "eigenvalues": lam}
    positive = int(np.sum(lam > lam[0] * 1e-12)) if lam[0] > 0 else 0
    if positive < MIN_EIGENVALUES:
        out["note"] = f"{positive} positive eigenvalues: too few for a power-law fit (needs {MIN_EIGENVALUES})"
        return out
    n_boot = int(min(n_boot, max(MIN_BOOT, BOOT_BUDGET // (len(X) * X.shape[1] * min(X.shape)))))
    rank = powerlaw_exponent(X, kind="data", n_boot=n_boot, seed=seed)
    bias = _half_sample_bias(X, rank, seed)
    lo, hi = rank.interval
    tail = tail_exponent(lam[:positive])
    out.update(boot_replicates=n_boot, rank_decay_a=rank.exponent, rank_decay_interval=[lo - bias, hi + bias], rank_decay_bias=bias,
               rank_window=[rank.k_min, rank.k_max],
               tail_alpha=tail.alpha, tail_interval=list(tail.interval), tail_xmin=tail.xmin,
               tail_ks=tail.ks_distance, tail_n=tail.n_tail, tail_standard_error=tail.standard_error,
               implied_tail_alpha=rank.tail_exponent, exponents_disagree=exponents_disagree(rank, tail), note="")
    return out


def _half_sample_bias(X: np.ndarray, rank, seed: int) -> float:
    """|a(n/2) − a(n)|: the finite-sample bias of the rank-decay fit measured by halving the rows (sample eigenvalues
    spread around the population's by O(√(d/n)), a bias the row bootstrap does not see; for a bias ∝ 1/n, halving n
    doubles it, so the difference estimates its size). Both halves on the same window; their mean is a(n/2)."""
    perm = np.random.default_rng(seed + 1).permutation(len(X))
    half = len(X) // 2
    fits = [powerlaw_exponent(X[idx], kind="data", n_boot=1, seed=seed, window=(rank.k_min, rank.k_max)).exponent
            for idx in (perm[:half], perm[half:2 * half])]
    return abs(float(np.mean(fits)) - rank.exponent)


def sample_ratios(n: int, d: int, n_params: int) -> dict[str, float]:
    """n, d, n/d (the ridge aspect ratio), n/d² (the sample ratio of a quadratic network or of a d × d matrix to
    recover), P and n/P."""
    return {"n": n, "d": d, "n_over_d": n / d, "n_over_d2": n / d**2, "params": n_params, "n_over_params": n / n_params}


def feature_inputs(model: torch.nn.Module, inputs: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """(name, inputs) of the model's last ``Linear``-like layer on ``inputs``: the last hidden features, caught by a
    forward hook; None when the model has no such layer or hooks cannot be attached (scripted modules)."""
    from .weights import weight_layers
    every = weight_layers(model)[0]
    layers = [lay for lay in every if lay.kind in ("linear", "matrix")]
    if not layers or len(every) < 2:  # no layer, or one whose inputs are the data themselves
        return None
    name = layers[-1].name
    module = dict(model.named_modules())[name]
    seen: list[torch.Tensor] = []
    try:
        handle = module.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    except (RuntimeError, AttributeError):
        return None
    try:
        with torch.no_grad():
            model(inputs[:MAX_SPECTRUM_ROWS])
    finally:
        handle.remove()
    if not seen:  # the module is not called (an exported graph runs its operations directly)
        return None
    return name, seen[0]
