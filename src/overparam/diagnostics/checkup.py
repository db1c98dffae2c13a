"""The practitioner's checkup: one call that puts the five results' warnings next to a model and its data.

``checkup(model, loss_fn, inputs, targets)`` measures, in sections,

- **data**: n, d, n/d, n/d², P, n/P; the input spectrum (and the last hidden layer's feature spectrum) with its
  rank-decay exponent a and its density-tail exponent α, each with an interval, and a flag when α ≠ 1 + 1/a
  (:mod:`.data`);
- **weights**: a per-layer table (norms, ranks, both exponents of WᵀW) and the balance of LoRA pairs, linear chains
  and ReLU pairs (:mod:`.weights`);
- **curvature**: the strong-convexity certificate (:func:`.hessian.certify`), the top Hessian eigenvalue of each
  layer's block and the Hessian's spectral density;
- **redundancy**: each Linear–activation–Linear block's redundant units, merged, with the loss change the merge
  makes (:func:`.redundancy.block_redundancy`), the predicted flat dimension against the number of zero Hessian
  eigenvalues when the model is small enough for a dense Hessian;
- **near-interpolation**: the training error against ``noise_level`` and, with ``fit_fn``, the norm-growth exponent of
  refits on nested subsamples against the data's rank-decay exponent (‖θ‖² ∝ n^a, Wang, Sonthalia & Hu 2024);

and turns what crosses a threshold into :class:`.findings.Finding` s: plain words, the measured figure, the threshold,
and the result it comes from (the thresholds are named and explained in :mod:`.findings`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ..validation import NON_NEGATIVE, POSITIVE, InstanceOf, IsCallable, Options, Seed, model_data, validate_params
from .data import feature_inputs, sample_ratios, spectrum_section
from .hessian import HessianOperator, certify, spectral_density
from .krylov import lanczos_quadrature, rademacher
from .norms import norm_growth
from .redundancy import block_redundancy, sequential_blocks, zero_eigenvalue_count, zero_eigenvalue_threshold
from .findings import SOURCES, Finding, findings
from .weights import balance_table, layer_table, weight_layers

__all__ = ["CheckupReport", "Finding", "SOURCES", "checkup"]

#: dense Hessians (all eigenvalues, flat-direction counts) up to this many parameters
DENSE_LIMIT = 2000
#: above DENSE_LIMIT: first the Ritz values of LANCZOS_STEPS Hessian-vector products (a negative one proves "not
#: positive definite" and ends the certificate there), else certify's matrix-free path within CERTIFY_PRODUCTS products
#: (about 2–3 minutes at 10⁶ parameters on 2 CPU cores)
LANCZOS_STEPS = 30
CERTIFY_PRODUCTS = 300


@dataclass
class CheckupReport:
    """What :func:`checkup` found; ``layers`` and ``balance`` are DataFrames, the rest plain data (``spectra`` holds
    the arrays behind the figures: data and feature eigenvalues, each layer's eigenvalues of WᵀW, the Hessian
    density)."""

    data: dict[str, Any]
    layers: pd.DataFrame
    skipped: list[tuple[str, str]]
    balance: pd.DataFrame
    curvature: dict[str, Any]
    redundancy: list[dict[str, Any]]
    near_interpolation: dict[str, Any]
    findings: list[Finding]
    spectra: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN and inf become None; arrays become lists)."""
        return _plain({"data": self.data, "layers": self.layers.to_dict("records"),
                       "skipped": [{"layer": n, "reason": r} for n, r in self.skipped],
                       "balance": self.balance.to_dict("records"), "curvature": self.curvature,
                       "redundancy": self.redundancy, "near_interpolation": self.near_interpolation,
                       "findings": [asdict(f) for f in self.findings], "timings_s": self.timings})

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """A few lines for a terminal: sizes, the per-layer table, the certificate, the findings."""
        d, c = self.data, self.curvature
        lines = [f"data: n = {d['n']}, d = {d['d']}, P = {d['params']}, n/d = {d['n_over_d']:.3g}, "
                 f"n/d² = {d['n_over_d2']:.3g}, n/P = {d['n_over_params']:.3g}"]
        sp = d.get("input_spectrum", {})
        if "rank_decay_a" in sp:
            lines.append(f"input spectrum: rank-decay exponent a = {sp['rank_decay_a']:.3f}, density-tail exponent "
                         f"α = {sp['tail_alpha']:.3f} ± {1.96 * sp['tail_standard_error']:.3f}")
        if len(self.layers):
            cols = [k for k in ("layer", "kind", "shape", "spectral_norm", "stable_rank", "tail_alpha", "rank_decay_a")
                    if k in self.layers]
            lines.append(self.layers[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if "mu" in c:
            lines.append(f"curvature ({c['method']}): μ = {c['mu']:.4g}, L = {c['L']:.4g}; {c['wording']}")
        elif "skipped" in c:
            lines.append(f"curvature skipped: {c['skipped']}")
        lines.extend(f"! [{f.section}] {f.message}" for f in self.findings)
        return "\n".join(lines)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, torch.Tensor):
        return _plain(x.detach().cpu().tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x


class _Progress:
    """One line per step on stderr (``enabled``), with the seconds each section took."""

    def __init__(self, enabled: bool):
        self.enabled, self.timings, self._t, self._name = enabled, {}, time.perf_counter(), None

    def section(self, name: str) -> None:
        self._close()
        self._name, self._t = name, time.perf_counter()
        self.say(f"checkup: {name} …")

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def _close(self) -> None:
        if self._name:
            self.timings[self._name] = time.perf_counter() - self._t

    def done(self) -> dict[str, float]:
        self._close()
        self._name = None
        return self.timings


def _mean_loss(model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor,
               batch: int = 4096) -> float:
    """loss_fn over all rows, in batches weighted by their size (a mean loss)."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            total += float(loss_fn(model(x[i:i + batch]), y[i:i + batch])) * len(x[i:i + batch])
    return total / len(x)


# --- sections ---------------------------------------------------------------------------------------------------
def _data_section(model, inputs, targets, seed: int, progress: _Progress) -> tuple[dict, dict]:
    P = sum(p.numel() for p in model.parameters())
    d = math.prod(inputs.shape[1:]) if inputs.ndim > 1 else 1
    out = sample_ratios(len(inputs), d, P)
    spectra = {}
    if inputs.is_floating_point() and d >= 2:
        progress.say(f"checkup: input spectrum ({d} dimensions, row bootstrap)")
        sp = spectrum_section(inputs, seed)
        spectra["input"] = sp.pop("eigenvalues")
        out["input_spectrum"] = sp
    else:
        out["input_spectrum"] = {"note": "inputs are indices or one-dimensional: no covariance spectrum"}
    feats = feature_inputs(model, inputs)
    if feats is not None:
        progress.say(f"checkup: feature spectrum of the inputs to layer {feats[0]}")
        sp = spectrum_section(feats[1], seed)
        spectra["features"] = sp.pop("eigenvalues")
        out["feature_spectrum"] = {"layer": feats[0], **sp}
    return out, spectra


def _curvature_section(model, loss_fn, inputs, targets, param_filter, layers, progress: _Progress,
                       seed: int) -> tuple[dict, dict]:
    """The certificate (dense up to DENSE_LIMIT parameters; above, the Ritz values of a short Lanczos run, then, unless
    they prove the Hessian indefinite, certify within CERTIFY_PRODUCTS products), per-layer top eigenvalues and the
    spectral density."""
    H = HessianOperator(model, loss_fn, inputs, targets, param_filter, _batch(inputs))
    out: dict[str, Any] = {"params": H.dim}
    ritz = None
    if H.dim > DENSE_LIMIT:
        progress.say(f"checkup: {LANCZOS_STEPS} Lanczos steps on the Hessian of {H.dim} parameters")
        ritz = _ritz(H, LANCZOS_STEPS, seed)
    if ritz is None or ritz[0] > 0:
        progress.say(f"checkup: certificate on {H.dim} parameters")
        out.update(_certificate(model, loss_fn, inputs, targets, param_filter, seed, small=H.dim <= DENSE_LIMIT))
    else:
        out.update(_ritz_summary(ritz, LANCZOS_STEPS))
    top = {}
    for i, lay in enumerate(layers):
        progress.say(f"checkup: top Hessian eigenvalue of layer {i + 1}/{len(layers)} {lay.name}")
        prefix = "" if lay.name == "(root)" else lay.name + "."
        try:
            Hl = HessianOperator(model, loss_fn, inputs, targets,
                                 lambda n, p, pre=prefix: n.startswith(pre) and n.count(".") == pre.count("."),
                                 _batch(inputs))
        except ValueError:
            continue
        top[lay.name] = _top_eigenvalue(Hl, seed)
    out["layer_top_eigenvalue"] = top
    progress.say("checkup: Hessian spectral density (stochastic Lanczos quadrature)")
    small = H.dim <= DENSE_LIMIT
    xs, dens = spectral_density(H, n_probe=8 if small else 4, n_steps=min(40 if small else 20, H.dim), seed=seed)
    return out, {"hessian_density": (xs, dens)}


def _certificate(model, loss_fn, inputs, targets, param_filter, seed: int, small: bool) -> dict[str, Any]:
    cheap = {} if small else {"n_directions": 2, "n_ball": 2, "refine": 1, "eig_tol": 1e-6,
                              "max_products": CERTIFY_PRODUCTS}
    cert = certify(model, loss_fn, inputs, targets, param_filter=param_filter, batch_size=_batch(inputs),
                   seed=seed, **cheap)
    method = "dense" if small else f"thick-restart Lanczos and secants, within {CERTIFY_PRODUCTS} products"
    out = {"method": method, "mu": cert.mu, "L": cert.L,
           "condition_number": cert.condition_number, "hessian_lipschitz": cert.hessian_lipschitz,
           "radius": cert.radius, "positive_definite": cert.positive_definite, "gradient_norm": cert.gradient_norm,
           "ball_min_eigenvalue": cert.ball_min_eigenvalue, "ball_check_passed": cert.ball_check_passed,
           "notes": list(cert.notes), "wording": _wording(cert)}
    if small:
        out["eigenvalues"] = cert.eigenvalues
    return out


def _ritz(H: HessianOperator, steps: int, seed: int) -> np.ndarray:
    """Ritz values (increasing) of ``steps`` Lanczos steps from a Rademacher start: each lies in [λ_min, λ_max]."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = rademacher(H.dim, 1, g, H.device)[:, 0]
    return np.sort(lanczos_quadrature(H, v, min(steps, H.dim))[0])


def _ritz_summary(ritz: np.ndarray, steps: int) -> dict[str, Any]:
    """What Ritz values prove: θ_min < 0 means λ_min ≤ θ_min < 0 (not positive definite, for certain); θ_max ≤ λ_max.
    θ_min > 0 proves nothing about λ_min."""
    lo, hi = float(ritz[0]), float(ritz[-1])
    if lo < 0:
        words = (f"not positive definite: a Lanczos run of {steps} Hessian-vector products found a direction of "
                 f"negative curvature (Ritz value {lo:.3g}, so λ_min ≤ {lo:.3g}); there is no strongly convex ball "
                 "around these parameters")
        pd_ = False
    else:
        words = (f"undetermined within the budget: {steps} Lanczos steps saw no negative curvature (least Ritz value "
                 f"{lo:.3g} ≥ λ_min), which does not prove positive definiteness at this size")
        pd_ = None
    return {"method": f"Lanczos, {steps} steps (Ritz values)", "mu": lo, "L": hi, "mu_is_upper_bound": True,
            "L_is_lower_bound": True, "positive_definite": pd_, "wording": words, "condition_number": math.nan,
            "radius": 0.0 if lo < 0 else math.nan}


def _top_eigenvalue(H: HessianOperator, seed: int) -> float:
    """λ_max of a layer's block: dense when small (a zero block stops ARPACK), the largest Ritz value of a budgeted
    Lanczos run otherwise (a lower bound, converging first since it is an extreme)."""
    if H.dim <= DENSE_LIMIT:
        return float(torch.linalg.eigvalsh(H.dense().detach())[-1])
    return float(_ritz(H, LANCZOS_STEPS, seed)[-1])


def _batch(inputs: torch.Tensor) -> int:
    """Hessian-vector products over the data in batches of at most 1024 rows (memory, not a different Hessian)."""
    return min(len(inputs), 1024)


def _wording(cert) -> str:
    if not cert.positive_definite:
        return ("not positive definite: the Hessian has zero or negative eigenvalues here, so there is no strongly "
                "convex ball around these parameters")
    return (f"positive definite (μ = {cert.mu:.3g}); estimated Hessian-Lipschitz constant M = "
            f"{cert.hessian_lipschitz:.3g} from sampled secants (an estimate, not a bound), so the loss is estimated "
            f"μ/2-strongly convex within radius μ/(2M) = {cert.radius:.3g}; "
            f"{'every' if cert.ball_check_passed else 'not every'} sampled point in that ball had λ_min ≥ μ/2")


def _block_inputs(model, inputs, blocks) -> dict[int, torch.Tensor]:
    """What the first Linear of each block sees on ``inputs`` (forward hooks)."""
    seen: dict[int, torch.Tensor] = {}

    def keep(key: int):
        def hook(mod, args, out) -> None:  # a hook that returned a value would replace the layer's output
            seen.setdefault(key, args[0].detach())
        return hook

    handles = [seq[i].register_forward_hook(keep(b)) for b, (_, seq, i, _) in enumerate(blocks)]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return seen


def _redundancy_section(model, loss_fn, inputs, targets, tol: float, base_loss: float,
                        eigenvalues: np.ndarray | None) -> list[dict]:
    blocks = sequential_blocks(model)
    seen = _block_inputs(model, inputs, blocks)
    out = []
    for b, (name, seq, i, act) in enumerate(blocks):
        if b not in seen:
            continue
        label = f"{name + '.' if name else ''}{i}→{name + '.' if name else ''}{i + 2}"
        rep = block_redundancy(seq[i], act, seq[i + 2], seen[b].reshape(-1, seq[i].in_features), tol, label)
        merged = copy.deepcopy(model)
        target = dict(merged.named_modules())[name] if name else merged
        target[i], target[i + 2] = rep.first, rep.second
        loss = _mean_loss(merged, loss_fn, inputs, targets)
        out.append({"block": label, "activation": act, "width": rep.width, "reduced_width": rep.reduced_width,
                    "tolerance": tol, "units": [asdict(u) for u in rep.units], "flat_dimension": rep.flat_dimension,
                    "efficient": rep.efficient, "loss_before": base_loss, "loss_after_merge": loss,
                    "loss_change": loss - base_loss})
    if out and eigenvalues is not None:
        rel = zero_eigenvalue_threshold(len(inputs), len(eigenvalues))
        measured = zero_eigenvalue_count(np.asarray(eigenvalues), rel)
        for row in out:
            row.update(zero_eigenvalues_measured=measured, zero_eigenvalue_rel_threshold=rel,
                       flat_dimension_all_blocks=sum(r["flat_dimension"] for r in out))
    return out


def _near_interpolation_section(model, loss_fn, inputs, targets, noise_level, fit_fn, train_loss: float,
                                data_a: float, seed: int) -> dict:
    out: dict[str, Any] = {"train_loss": train_loss, "noise_level": noise_level,
                           "below_noise": noise_level is not None and train_loss < noise_level}
    if fit_fn is not None:
        n = len(inputs)
        y = targets.reshape(n) if targets.ndim > 1 and targets[0].numel() == 1 else targets
        if y.ndim != 1 or not y.is_floating_point():
            out["note"] = f"norm growth needs one real target per row (got targets of shape {tuple(targets.shape)})"
            return out
        sizes = sorted({int(round(s)) for s in np.geomspace(max(n // 8, 2), n, 4)})
        ng = norm_growth(fit_fn, inputs.reshape(n, -1), y, sizes, seed=seed)
        out.update(sizes=ng.sizes, norm2=ng.norm2, refit_train_error=ng.train_error, norm_growth_exponent=ng.exponent,
                   relative_train_error=ng.relative_train_error, data_rank_decay_a=data_a)
    return out


# --- the entry point ----------------------------------------------------------------------------------------------
def _on_device(model, inputs, targets, device):
    if device is None:
        return model, inputs, targets
    dev = torch.device(device)
    p = next(model.parameters(), None)
    if p is not None and p.device != dev:
        model = copy.deepcopy(model).to(dev)
    as_t = (lambda t: t.to(dev) if isinstance(t, torch.Tensor) else t)
    return model, as_t(inputs), as_t(targets)


@validate_params({"model": InstanceOf(torch.nn.Module, what="torch.nn.Module"), "loss_fn": IsCallable(), "noise_level": [None, NON_NEGATIVE], "fit_fn": [None, IsCallable()],
                  "param_filter": [None, IsCallable()], "device": [None, Options(("cpu", "cuda"))],
                  "redundancy_tol": POSITIVE, "seed": Seed()})
def checkup(model: torch.nn.Module, loss_fn: Callable, inputs: Any, targets: Any, *, noise_level: float | None = None,
            fit_fn: Callable | None = None, param_filter: Callable | None = None, device: str | None = None,
            progress: bool = True, redundancy_tol: float = 1e-3, curvature: bool = True,
            seed: int = 0) -> CheckupReport:
    """The checkup of ``model`` on ``inputs`` (n, ...) and ``targets`` (n, ...) with a mean loss
    ``loss_fn(model(inputs), targets)`` (module docstring for the sections). ``noise_level``: the noise variance
    the training loss is compared with; ``fit_fn(X, y) → model``: refits for the norm-growth exponent;
    ``param_filter(name, p)``: the parameters the curvature is computed for; ``device``: 'cpu' or 'cuda' (the model is
    copied there, the caller's stays); ``curvature=False`` skips the Hessian work."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no GPU (got device='cuda')")
    model, inputs, targets = _on_device(model, inputs, targets, device)
    indices = _is_integer(inputs)
    inputs, targets = model_data(model, inputs, targets)
    if indices:  # token or category indices (an Embedding's input) stay integers
        inputs = inputs.long()
    base = _check_loss(model, loss_fn, inputs, targets)  # before any progress line: a refusal is one line
    prog = _Progress(progress)
    prog.section("data")
    data, spectra = _data_section(model, inputs, targets, seed, prog)
    prog.section("weights")
    layers, skipped = weight_layers(model)
    table, layer_spectra = layer_table(layers, seed, lambda i, n, name: prog.say(f"checkup: layer {i + 1}/{n} {name}"))
    spectra["layers"] = layer_spectra
    balance = balance_table(model)
    curv: dict[str, Any] = {}
    if curvature:
        prog.section("curvature")
        if indices and not any(isinstance(m, torch.nn.Embedding) for m in model.modules()):
            curv = {"skipped": "integer inputs to a model without an Embedding: the Hessian operator casts them to "
                               "the parameters' dtype; the other sections are computed"}
        elif isinstance(model, torch.jit.ScriptModule):
            curv = {"skipped": "a TorchScript module cannot be called with substituted parameters (torch.func), which "
                               "Hessian-vector products need; save the model with torch.export (.pt2) instead"}
        else:
            with _frozen_except(model, param_filter):
                curv, more = _curvature_section(model, loss_fn, inputs, targets, param_filter, layers, prog, seed)
            spectra.update(more)
    prog.section("redundancy")
    red = _redundancy_section(model, loss_fn, inputs, targets, redundancy_tol, base, curv.get("eigenvalues"))
    prog.section("near-interpolation")
    near = _near_interpolation_section(model, loss_fn, inputs, targets, noise_level, fit_fn, base,
                                       data["input_spectrum"].get("rank_decay_a"), seed)
    found = findings(data, table, balance, curv, red, near)
    return CheckupReport(data, table, skipped, balance, curv, red, near, found, spectra, prog.done())


@contextlib.contextmanager
def _frozen_except(model: torch.nn.Module, param_filter: Callable | None):
    """Parameters that ``param_filter`` leaves out do not require grad for the duration (otherwise products and
    dense Hessians of the selected block carry a graph through them); restored afterwards."""
    if param_filter is None:
        yield
        return
    frozen = [p for n, p in model.named_parameters() if p.requires_grad and not param_filter(n, p)]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _is_integer(x: Any) -> bool:
    """Integer (index) data: a torch tensor or NumPy array of an integer dtype."""
    if isinstance(x, torch.Tensor):
        return not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.integer)


def _check_loss(model, loss_fn, inputs, targets) -> float:
    """The mean training loss; refuses a loss that is not a scalar, or a model whose outputs the loss cannot take."""
    with torch.no_grad():
        try:
            out = loss_fn(model(inputs[:2]), targets[:2])
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:
            raise ValueError(f"inputs: the model and loss cannot take the data ({str(exc).splitlines()[0]}; got "
                             f"inputs of shape {tuple(inputs.shape)}, targets of shape {tuple(targets.shape)})") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 0:
        raise ValueError(f"loss_fn: must return a scalar (got {_shape_of(out)})")
    return _mean_loss(model, loss_fn, inputs, targets)


def _shape_of(x: Any) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
