"""Norm diagnostics: how fast an estimator's norm grows with the sample size, factor balance, effective rank.

``norm_growth`` fits an estimator on nested subsamples of a practitioner's data (the first n rows of one random
permutation, for each n) and reports the exponent b of ‖θ‖² ∝ n^b. A model that nearly interpolates (training MSE
below ``interp_tol`` · Var(y)) and whose norm grows faster than linearly (b > ``fast_exponent``) is a near-interpolator
in the sense of Wang, Sonthalia and Hu (2024): its norm, and with it its sensitivity, keeps growing as data arrive.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..analysis import loglog_slope
from ..validation import (NON_NEGATIVE, POSITIVE_INT, Array, IsCallable, InstanceOf, Interval, Real, Seed, check,
                          validate_params)

_RTOL = Interval(Real, 0, 1, closed="left")


class NearInterpolatorWarning(UserWarning):
    """The model nearly interpolates its training data and its norm grows fast with n."""


def _parameter_norm2(model: Any) -> float:
    """‖θ‖²: all parameters of a ``torch.nn.Module``, ``coef_`` of a scikit-learn estimator, or an array/tensor."""
    if isinstance(model, torch.nn.Module):
        return float(sum((p.detach().double() ** 2).sum() for p in model.parameters()))
    if hasattr(model, "coef_"):
        return float(np.sum(np.asarray(model.coef_, dtype=float) ** 2))
    if isinstance(model, torch.Tensor):
        return float((model.detach().double() ** 2).sum())
    return float(np.sum(np.asarray(model, dtype=float) ** 2))


def _predict(model: Any, X: Any) -> np.ndarray:
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            Xt = X if isinstance(X, torch.Tensor) else torch.as_tensor(X)
            p = next(model.parameters())
            return model(Xt.to(p.dtype)).detach().cpu().double().numpy().reshape(len(Xt), -1).squeeze(-1)
    if hasattr(model, "predict"):
        return np.asarray(model.predict(X), dtype=float)
    beta = model.detach().cpu().numpy() if isinstance(model, torch.Tensor) else np.asarray(model, dtype=float)
    Xn = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, dtype=float)
    return Xn @ beta


@dataclass(frozen=True)
class NormGrowth:
    sizes: np.ndarray  # (k,) the subsample sizes n
    norm2: np.ndarray  # (k,) ‖θ‖² fitted on the first n rows
    train_error: np.ndarray  # (k,) training MSE at each n
    exponent: float  # b in ‖θ‖² ∝ n^b (log-log least squares)
    relative_train_error: float  # training MSE / Var(y) at the largest n
    near_interpolator: bool  # nearly interpolates and b > fast_exponent


@validate_params({"fit": IsCallable(), "X": Array(2, keep_float32=True), "y": Array(1, keep_float32=True, shape=("X",)),
                  "sizes": Array(1), "seed": Seed(), "predict": [None, IsCallable()], "interp_tol": NON_NEGATIVE,
                  "fast_exponent": Interval(Real, None, None)})
def norm_growth(fit: Callable[[Any, Any], Any], X: Any, y: Any, sizes: Sequence[int], seed: int = 0,
                predict: Callable[[Any, Any], Any] | None = None, interp_tol: float = 0.2,
                fast_exponent: float = 1.0) -> NormGrowth:
    """Fit ``fit(X[:n], y[:n])`` on nested subsamples and fit the norm-growth exponent.

    ``fit`` returns a torch module, a scikit-learn estimator or a coefficient vector; ``predict(model, X)`` defaults
    to calling the module, ``.predict``, or X @ β. Warns :class:`NearInterpolatorWarning` when the model nearly
    interpolates and its norm grows faster than n^``fast_exponent``. X (n, p) and y (n,) are handed to ``fit`` as
    given (NumPy, or torch on its device; sequences become NumPy arrays; y follows X's kind).
    """
    n_all = len(y)
    sizes = sorted({check("sizes", s, POSITIVE_INT) for s in sizes.tolist()})
    if len(sizes) < 2:
        raise ValueError(f"sizes: must hold at least two distinct subsample sizes (got {sizes})")
    if sizes[-1] > n_all:
        raise ValueError(f"sizes: largest size {sizes[-1]} exceeds the {n_all} rows of X")
    if isinstance(X, torch.Tensor) and not isinstance(y, torch.Tensor):
        y = torch.as_tensor(y, device=X.device)
    elif not isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor):
        y = y.cpu().numpy()
    elif isinstance(X, torch.Tensor) and y.device != X.device:
        raise ValueError(f"y: must be on X's device {X.device} (got {y.device})")
    perm = np.random.default_rng(seed).permutation(n_all)
    idx_t = torch.as_tensor(perm) if isinstance(X, torch.Tensor) else perm
    Xp, yp = X[idx_t], y[idx_t]
    yn = yp.detach().cpu().double().numpy() if isinstance(yp, torch.Tensor) else np.asarray(yp, dtype=float)
    norms, errs = [], []
    for n in sizes:
        model = fit(Xp[:n], yp[:n])
        norms.append(_parameter_norm2(model))
        pred = (predict or _predict)(model, Xp[:n])
        pred = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred, dtype=float)
        errs.append(float(np.mean((pred.reshape(-1) - yn[:n]) ** 2)))
    b = loglog_slope(sizes, norms)
    rel = errs[-1] / max(float(np.var(yn[: sizes[-1]])), 1e-300)
    near = rel < interp_tol and b > fast_exponent
    if near:
        warnings.warn(f"near-interpolator: training MSE is {rel:.3g} of Var(y) and ‖θ‖² grows like n^{b:.2f}; expect "
                      "the norm (and sensitivity to perturbations) to keep growing with more data",
                      NearInterpolatorWarning, stacklevel=2)
    return NormGrowth(np.asarray(sizes), np.asarray(norms), np.asarray(errs), b, rel, near)


# --- factor balance and effective rank --------------------------------------------------------------------------
@dataclass(frozen=True)
class FactorReport:
    """Balance and rank of a product UVᵀ (or of a chain of linear layers)."""

    imbalance: list[float]  # ‖UᵀU − VᵀV‖_op per adjacent pair (one entry for a pair of factors)
    relative_imbalance: list[float]  # the same divided by max(‖U‖²_op, ‖V‖²_op)
    singular_values: np.ndarray  # of the product, decreasing
    stable_rank: float  # ‖M‖_F² / ‖M‖²_op
    effective_rank: int  # number of singular values above rtol · σ_max
    entropy_rank: float  # exp of the entropy of σ_i/Σσ (Roy & Vetterli's effective rank)


@validate_params({"M": Array(2, to="torch"), "rtol": _RTOL})
def effective_rank(M: Any, rtol: float = 1e-3) -> tuple[np.ndarray, float, int, float]:
    """(singular values, stable rank, count above rtol·σ_max, entropy effective rank) of a matrix (float64)."""
    t = M
    s = torch.linalg.svdvals(t).cpu().numpy()
    if s[0] == 0:
        return s, 0.0, 0, 0.0
    p = s / s.sum()
    p = p[p > 0]
    return s, float((s**2).sum() / s[0] ** 2), int((s > rtol * s[0]).sum()), float(np.exp(-(p * np.log(p)).sum()))


@validate_params({"U": Array(2, to="torch"), "V": Array(2, to="torch"), "rtol": _RTOL})
def factor_balance(U: Any, V: Any, rtol: float = 1e-3) -> FactorReport:
    """Balance ‖UᵀU − VᵀV‖_op and effective rank of UVᵀ for factors U (n1, k), V (n2, k) — e.g. LoRA's B and Aᵀ
    (NumPy, torch or sequences; float64)."""
    V = V.to(U.device)
    if U.shape[1] != V.shape[1]:
        raise ValueError(f"V: factors must be (n1, k) and (n2, k) with the same k; got {tuple(U.shape)}, "
                         f"{tuple(V.shape)}")
    imb = float(torch.linalg.matrix_norm(U.T @ U - V.T @ V, ord=2))
    scale = max(float(torch.linalg.matrix_norm(U, ord=2)) ** 2, float(torch.linalg.matrix_norm(V, ord=2)) ** 2, 1e-300)
    s, stable, eff, ent = effective_rank(U @ V.T, rtol)
    return FactorReport([imb], [imb / scale], s, stable, eff, ent)


@validate_params({"module": InstanceOf(torch.nn.Module, what="torch.nn.Module"), "rtol": _RTOL})
def linear_chain_balance(module: torch.nn.Module, rtol: float = 1e-3) -> FactorReport:
    """Balance of each adjacent pair of ``nn.Linear`` layers (in order) of ``module``: ‖W_{i+1}ᵀW_{i+1} − W_iW_iᵀ‖_op,
    the quantity gradient flow conserves for a deep linear network; and the effective rank of the product W_L⋯W_1."""
    layers = [m.weight.detach().double() for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if len(layers) < 2:
        raise ValueError(f"module: needs at least two nn.Linear layers (got {len(layers)})")
    imbs, rels = [], []
    for i, W in enumerate(layers):
        if not bool(torch.isfinite(W).all()):
            raise ValueError(f"module: contains NaN or inf in nn.Linear layer {i}; must be finite (got "
                             f"{int((~torch.isfinite(W)).sum())} of {W.numel()} weights non-finite)")
    prod = layers[0]
    for W1, W2 in zip(layers, layers[1:]):
        if W2.shape[1] != W1.shape[0]:
            raise ValueError(f"module: layer shapes {tuple(W1.shape)} and {tuple(W2.shape)} do not chain")
        D = W2.T @ W2 - W1 @ W1.T
        imb = float(torch.linalg.matrix_norm(D, ord=2))
        imbs.append(imb)
        rels.append(imb / max(float(torch.linalg.matrix_norm(W1, ord=2)) ** 2,
                              float(torch.linalg.matrix_norm(W2, ord=2)) ** 2, 1e-300))
        prod = W2 @ prod
    s, stable, eff, ent = effective_rank(prod, rtol)
    return FactorReport(imbs, rels, s, stable, eff, ent)
