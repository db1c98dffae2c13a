"""Per-layer weight statistics of any ``torch.nn.Module``: norms, ranks and both power-law exponents of WᵀW.

Layers are the modules that hold a weight matrix: ``nn.Linear`` (W, out × in), convolutions (out × in·k₁·k₂…, the
kernel flattened), ``nn.Embedding`` (num × dim), and, in an exported or scripted graph where module types are gone, any
module whose ``weight`` is 2-D ("matrix") or has ≥ 3 dimensions ("conv-like", flattened the same way). Every other
module that holds parameters is listed as skipped, with the reason. For each layer:

- ‖W‖_F, ‖W‖₂, stable rank ‖W‖_F²/‖W‖₂², entropy effective rank (Roy & Vetterli);
- the **density-tail exponent** α of the eigenvalues λ_i = σ_i² of WᵀW (p(λ) ∝ λ^−α, :func:`.spectrum.tail_exponent`)
  with xmin, KS distance and standard error;
- the **rank-decay exponent** a (λ_k ∝ k^−a, :func:`.spectrum.powerlaw_exponent`);
- whether the two disagree beyond their intervals.

Balance, the quantity gradient flow conserves: ‖UᵀU − VᵀV‖₂ of each LoRA/PEFT pair (B, A) found by name (``lora_A``
/ ``lora_B``: ΔW = BA, U = B, V = Aᵀ) and of each pair of ``nn.Linear`` layers adjacent in an ``nn.Sequential`` (a
linear chain W₂W₁: U = W₂, V = W₁ᵀ), absolute and relative to max(‖U‖₂², ‖V‖₂²); through a ReLU between them, the
per-unit balance max_j |‖(w_j, b_j)‖² − ‖A[:, j]‖²|. Pairs through other activations conserve nothing and are not
listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..validation import InstanceOf, validate_params
from .norms import effective_rank, factor_balance
from .spectrum import exponents_disagree, powerlaw_exponent, tail_exponent

_CONV = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d,
         torch.nn.ConvTranspose3d)
#: least number of eigenvalues for either power-law fit
MIN_EIGENVALUES = 10


@dataclass(frozen=True)
class WeightLayer:
    name: str  # module name
    kind: str  # 'linear', 'conv', 'embedding', 'matrix', 'conv-like'
    matrix: torch.Tensor  # the weight as a matrix (rows = output units / embeddings), detached


def _module_kind(module: torch.nn.Module) -> str | None:
    """'linear', 'conv', 'embedding' by type; by the ``weight`` shape where the type is gone (exported or scripted
    graphs: the original name if TorchScript kept it); None when the module holds no weight matrix."""
    if isinstance(module, torch.nn.Linear):
        return "linear"
    if isinstance(module, _CONV):
        return "conv"
    if isinstance(module, torch.nn.Embedding):
        return "embedding"
    original = getattr(module, "original_name", "")
    if original in ("Linear", "Embedding") or original.startswith("Conv"):
        return original.lower().rstrip("123d").replace("convtranspose", "conv")
    w = module._parameters.get("weight") if hasattr(module, "_parameters") else None
    if w is None and original:  # a ScriptModule keeps its parameters apart from _parameters
        w = dict(module.named_parameters(recurse=False)).get("weight")
    generic = type(module) is torch.nn.Module or not type(module).__module__.startswith("torch.nn.modules")
    if isinstance(w, torch.Tensor) and generic:  # a graph's plain holder, a scripted or a user-defined module
        return "matrix" if w.ndim == 2 else "conv-like" if w.ndim >= 3 else None
    return None


def _skip_reason(module: torch.nn.Module) -> str:
    shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in module.named_parameters(recurse=False))
    return f"{getattr(module, 'original_name', '') or type(module).__name__} holds no weight matrix ({shapes})"


@validate_params({"model": InstanceOf(torch.nn.Module, what="torch.nn.Module")})
def weight_layers(model: torch.nn.Module) -> tuple[list[WeightLayer], list[tuple[str, str]]]:
    """The layers of ``model`` with a weight matrix (module docstring), and (name, reason) of every other module
    that holds parameters of its own."""
    layers, skipped = [], []
    for name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        if not own:
            continue
        kind = _module_kind(module)
        if kind is None:
            skipped.append((name or "(root)", _skip_reason(module)))
            continue
        W = own["weight"].detach()
        if kind == "conv" and isinstance(module, _CONV[3:]):  # transposed: weight is in × out × k…
            W = W.transpose(0, 1)
        layers.append(WeightLayer(name or "(root)", kind, W.reshape(W.shape[0], -1)))
    return layers, skipped


def _fits(eigenvalues: np.ndarray, seed: int) -> dict[str, float | str | bool]:
    """Both power-law fits of a spectrum, NaN with a note where it has too few positive eigenvalues."""
    row: dict[str, float | str | bool] = {}
    positive = eigenvalues[eigenvalues > eigenvalues.max() * 1e-12] if eigenvalues.max() > 0 else eigenvalues[:0]
    if len(positive) < MIN_EIGENVALUES:
        row["note"] = f"{len(positive)} positive eigenvalues: too few for a power-law fit (needs {MIN_EIGENVALUES})"
        return row
    tail = tail_exponent(positive)
    rank = powerlaw_exponent(np.sort(positive)[::-1], n_boot=100, seed=seed)
    lo, hi = rank.interval
    row.update(tail_alpha=tail.alpha, tail_alpha_se=tail.standard_error, tail_xmin=tail.xmin, tail_ks=tail.ks_distance,
               tail_n=tail.n_tail, rank_decay_a=rank.exponent, rank_decay_lo=lo, rank_decay_hi=hi,
               exponents_disagree=exponents_disagree(rank, tail), note="")
    return row


def layer_row(layer: WeightLayer, seed: int = 0) -> tuple[dict, np.ndarray]:
    """One row of the per-layer table (module docstring) and the eigenvalues σ_i² of WᵀW, decreasing."""
    W = layer.matrix.double()
    s, stable, _, entropy = effective_rank(W)
    ev = s**2
    row = {"layer": layer.name, "kind": layer.kind, "shape": "×".join(map(str, W.shape)), "params": W.numel(),
           "frobenius_norm": float(math.sqrt(ev.sum())), "spectral_norm": float(s[0]), "stable_rank": stable,
           "effective_rank": entropy}
    row.update(_fits(ev, seed))
    return row, ev


def layer_table(layers: list[WeightLayer], seed: int = 0, progress=None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The per-layer table (one row per layer) and each layer's eigenvalues of WᵀW; ``progress(i, n, name)`` is
    called before each layer."""
    rows, spectra = [], {}
    for i, layer in enumerate(layers):
        if progress:
            progress(i, len(layers), layer.name)
        row, ev = layer_row(layer, seed)
        rows.append(row)
        spectra[layer.name] = ev
    return pd.DataFrame(rows), spectra


def _balance_row(kind: str, names: tuple[str, str], U: torch.Tensor, V: torch.Tensor) -> dict:
    rep = factor_balance(U.double(), V.double())
    return {"pair": " · ".join(names), "kind": kind, "imbalance": rep.imbalance[0],
            "relative_imbalance": rep.relative_imbalance[0], "product_stable_rank": rep.stable_rank}


def lora_pairs(model: torch.nn.Module) -> list[tuple[str, str, torch.Tensor, torch.Tensor]]:
    """(name of A, name of B, A (r, in), B (out, r)) for each parameter whose name holds ``lora_A`` and whose
    ``lora_B`` counterpart exists (PEFT's layout, ΔW = B A)."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    out = []
    for name, A in params.items():
        if "lora_A" in name and name.endswith("weight"):
            other = name.replace("lora_A", "lora_B")
            B = params.get(other)
            if B is not None and A.ndim == 2 and B.ndim == 2 and B.shape[1] == A.shape[0]:
                out.append((name, other, A, B))
    return out


#: activations σ with σ(tz) = tσ(z) for t > 0: a unit's ‖(w_j, b_j)‖² − ‖A[:, j]‖² is conserved by gradient flow
HOMOGENEOUS = (torch.nn.ReLU, torch.nn.LeakyReLU)


def _chained_pairs(model: torch.nn.Module) -> list[tuple[str, str, torch.nn.Linear, torch.nn.Linear, bool]]:
    """(name₁, name₂, first, second, through_relu) for Linear, Linear and Linear, ReLU-like, Linear runs of consecutive
    children of an ``nn.Sequential``: the pairs whose balance gradient flow conserves (as a matrix for a linear
    chain, per unit through a positively homogeneous activation). Other activations conserve no balance."""
    out = []
    for name, seq in model.named_modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        kids, pre = list(seq), f"{name}." if name else ""
        for i, first in enumerate(kids):
            if not isinstance(first, torch.nn.Linear):
                continue
            for gap, relu in ((1, False), (2, True)):
                if i + gap < len(kids) and isinstance(kids[i + gap], torch.nn.Linear) and \
                        (not relu or isinstance(kids[i + 1], HOMOGENEOUS)) and \
                        kids[i + gap].in_features == first.out_features:
                    out.append((f"{pre}{i}", f"{pre}{i + gap}", first, kids[i + gap], relu))
    return out


def _unit_balance_row(names: tuple[str, str], first: torch.nn.Linear, second: torch.nn.Linear) -> dict:
    """max_j |‖(w_j, b_j)‖² − ‖A[:, j]‖²| through a ReLU, relative to the largest of those squared norms."""
    W = first.weight.detach().double()
    inn = (W**2).sum(1) + (first.bias.detach().double() ** 2 if first.bias is not None else 0.0)
    out = (second.weight.detach().double() ** 2).sum(0)
    imb = float((inn - out).abs().max())
    return {"pair": " · ".join(names), "kind": "through ReLU (per unit)", "imbalance": imb,
            "relative_imbalance": imb / max(float(inn.max()), float(out.max()), 1e-300), "product_stable_rank": math.nan}


def balance_table(model: torch.nn.Module) -> pd.DataFrame:
    """Balance of LoRA (B, A) pairs and of the chained pairs of :func:`_chained_pairs` (module docstring)."""
    rows = [_balance_row("lora", (b, a), B, A.T) for a, b, A, B in lora_pairs(model)]
    for n1, n2, first, second, relu in _chained_pairs(model):
        rows.append(_unit_balance_row((n2, n1), first, second) if relu else
                    _balance_row("linear chain", (n2, n1), second.weight.detach(), first.weight.detach().T))
    return pd.DataFrame(rows, columns=["pair", "kind", "imbalance", "relative_imbalance", "product_stable_rank"])
