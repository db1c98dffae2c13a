"""Efficient versus redundant neurons of a one-hidden-layer network N(x) = Σ_j a_j σ(w_jᵀx + b_j) + c.

A parameter is redundant when the same function is realized with fewer neurons. Neurons are grouped, within
tolerances, into *classes* that realize one feature up to sign: (w_j, b_j) ≈ (w_i, b_i) (duplicate), ≈ −(w_i, b_i)
for odd or sigmoid-type σ (flipped), or ≈ ±(w_i, b_i + kT) for σ with antiperiod T (shifted, sin: T = π). Each
redundancy is reported with the dimension it adds to the flat manifold of parameters realizing the same function
(the tangent directions that are exactly flat):

| kind        | condition                                          | merge                        | flat dimension |
|-------------|----------------------------------------------------|------------------------------|----------------|
| dead        | a_j ≈ 0                                            | drop neuron j                | d + 1 ((w_j, b_j) free) |
| constant    | w_j ≈ 0                                            | c += a_j σ(b_j), drop j      | 2 ((a_j, b_j) with c); 1 if also dead |
| duplicate   | (w_j, b_j) ≈ (w_i, b_i)                            | a_i += a_j, drop j           | 1 (a_i + a_j fixed) |
| flipped     | (w_j, b_j) ≈ −(w_i, b_i), σ odd                    | a_i −= a_j, drop j           | 1 |
| flipped     | (w_j, b_j) ≈ −(w_i, b_i), σ sigmoid-type           | a_i −= a_j, c += a_j, drop j | 1 |
| shifted     | (w_j, b_j) ≈ ε(w_i, b_i + kT), σ(z + T) = −σ(z)    | a_i += ε(−1)^k a_j, drop j   | 1 |
| cancelling  | a class whose signed output weights sum to ≈ 0     | drop the class               | d + 1 (its common (w, b) moves freely) |

A class of s neurons gives s − 1 entries of duplicate/flipped/shifted (its output weights are free but for their
signed sum). Dead neurons join classes too: a dead copy of a live neuron lies where the dead fibre meets the
duplicate line, and both add their directions. (softplus, GELU and ReLU: a flipped pair leaves a linear term no
single neuron realizes; not a redundancy by itself. ReLU's positive homogeneity is not counted.)
At a critical point these flat directions are zero eigenvalues of the Hessian; a non-generic point may have more
(directions along which the loss grows at fourth order), never fewer. One such case is predicted: at zero residual
(an interpolating minimizer) the Hessian of the mean squared error is (2/n)JᵀJ, and in a class of s live neurons whose
output weights do not cancel, moving the members' (w, b) by δ_j with Σ_j a_j δ_j = 0 keeps the function to first
order: (s − 1)(d + 1) more zero eigenvalues (``zero_residual_kernel`` = flat dimension + these).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..problems.shallow_net import (ACTIVATIONS, activation as get_activation, get_params, n_params, pack, set_params,
                                    shallow_net, unpack)
from ..validation import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, InstanceOf, Options, validate_params

_ACT = Options(tuple(ACTIVATIONS))
_THETA = Array(1, to="torch", keep_float32=True)


def _check_theta(theta: torch.Tensor, d: int, m: int) -> None:
    if theta.shape[0] != n_params(d, m):
        raise ValueError(f"theta: must have m·d + 2m + 1 = {n_params(d, m)} entries for d = {d}, m = {m} "
                         f"(got {theta.shape[0]})")


@dataclass
class Redundancy:
    kind: str  # 'dead', 'constant', 'duplicate', 'flipped'
    neurons: tuple[int, ...]
    flat_dimension: int


@dataclass
class RedundancyReport:
    redundancies: list[Redundancy]
    reduced: torch.nn.Sequential  # realizes the same function with the redundant neurons merged away
    flat_dimension: int
    efficient: bool
    kept: list[int] = field(default_factory=list)
    #: predicted number of zero Hessian eigenvalues if the residual is zero (flat dimension + first-order directions)
    zero_residual_kernel: int = 0


def _activation_name(model: torch.nn.Module, activation: str | torch.nn.Module | None) -> str:
    if isinstance(activation, str):
        return get_activation(activation).name
    mod = activation if activation is not None else model[1]
    for name, act in ACTIVATIONS.items():
        if isinstance(mod, act.module):
            return name
    raise ValueError(f"activation: {type(mod).__name__} is not in the registry ({', '.join(ACTIVATIONS)})")


def _classes(wb: torch.Tensor, candidates: list[int], symmetry: str, antiperiod: float | None,
             tol: float) -> list[list[tuple[int, int, bool, str]]]:
    """Classes of neurons realizing one feature: lists of (j, sign, sigmoid_flip, kind) with the first entry the
    representative (sign +1). Neuron j's feature is sign·σ(z_rep) (+1 − σ(z_rep) folded into c when sigmoid_flip)."""
    classes: list[list[tuple[int, int, bool, str]]] = []
    d = wb.shape[1] - 1
    for j in candidates:
        for cls in classes:
            i = cls[0][0]
            hit = None
            for eps in ((1, -1) if symmetry in ("odd", "sigmoid") or antiperiod else (1,)):
                if float((wb[j, :d] - eps * wb[i, :d]).norm()) > tol:
                    continue
                shift = eps * float(wb[j, d]) - float(wb[i, d])  # ε b_j − b_i = kT
                k = round(shift / antiperiod) if antiperiod else 0
                if abs(shift - k * (antiperiod or 0.0)) > tol:
                    continue
                if eps == -1 and symmetry not in ("odd", "sigmoid"):  # σ(−z) = ±σ(z) needs a sign symmetry
                    continue
                sign = eps * (-1) ** (k % 2) if symmetry == "odd" else eps
                kind = "shifted" if k else ("duplicate" if eps == 1 else "flipped")
                hit = (j, sign, symmetry == "sigmoid" and eps == -1, kind)
                break
            if hit:
                cls.append(hit)
                break
        else:
            classes.append([(j, 1, False, "")])
    return classes


@validate_params({"activation": [None, _ACT, InstanceOf(torch.nn.Module, what="torch.nn.Module activation")],
                  "tol": POSITIVE})
def find_redundancy(model: torch.nn.Sequential, activation: str | torch.nn.Module | None = None,
                    tol: float = 1e-4) -> RedundancyReport:
    """Redundant neurons of ``nn.Sequential(nn.Linear(d, m), σ, nn.Linear(m, 1))`` (module docstring); ``tol`` is
    relative to the largest |a_j| and the largest ‖(w_j, b_j)‖. The reduced network realizes the same function
    with one neuron per class whose signed output weight is not ≈ 0."""
    if not (isinstance(model, torch.nn.Sequential) and len(model) == 3 and isinstance(model[0], torch.nn.Linear)
            and isinstance(model[2], torch.nn.Linear) and model[2].out_features == 1):
        raise ValueError("model: expected nn.Sequential(nn.Linear(d, m), activation, nn.Linear(m, 1)) (got "
                         f"{type(model).__name__})")
    for pname, prm in model.named_parameters():
        bad = int((~torch.isfinite(prm.detach())).sum())
        if bad:
            raise ValueError(f"model: contains NaN or inf in parameter {pname}; must be finite (got {bad} of "
                             f"{prm.numel()} entries non-finite)")
    name = _activation_name(model, activation)
    act = ACTIVATIONS[name]
    W, b, a, c = get_params(model)
    m, d = W.shape
    wb = torch.cat([W, b[:, None]], 1)
    a_tol = tol * (float(a.abs().max()) or 1.0)
    wb_tol = tol * (float(wb.norm(dim=1).max()) or 1.0)
    dead = {j for j in range(m) if abs(float(a[j])) <= a_tol}
    found = [Redundancy("dead", (j,), d + 1) for j in sorted(dead)]
    constant = [j for j in range(m) if float(W[j].norm()) <= wb_tol]
    for j in constant:
        c += float(a[j] * act.fn(b[j]))
        found.append(Redundancy("constant", (j,), 1 if j in dead else 2))
    kept, weights, first_order = [], [], 0
    for cls in _classes(wb, [j for j in range(m) if j not in constant], act.symmetry, act.antiperiod, wb_tol):
        rep = cls[0][0]
        total = 0.0
        for j, sign, sigmoid_flip, kind in cls:
            total += sign * float(a[j])
            if sigmoid_flip:  # a_j σ(−z) = a_j − a_j σ(z)
                c += float(a[j])
            if kind:
                found.append(Redundancy(kind, (rep, j), 1))
        if abs(total) > a_tol:
            kept.append(rep)
            weights.append(total)
            first_order += (sum(j not in dead for j, *_ in cls) - 1) * (d + 1)
        elif any(j not in dead for j, *_ in cls):
            found.append(Redundancy("cancelling", tuple(j for j, *_ in cls), d + 1))
    reduced = shallow_net(d, max(len(kept), 1), name, W.dtype)
    if kept:
        set_params(reduced, W[kept], b[kept], torch.tensor(weights, dtype=W.dtype), c)
    else:  # the function is a constant
        set_params(reduced, torch.zeros(1, d, dtype=W.dtype), torch.zeros(1, dtype=W.dtype),
                   torch.zeros(1, dtype=W.dtype), c)
    flat = sum(r.flat_dimension for r in found)
    return RedundancyReport(found, reduced, flat, not found, kept, flat + first_order)


@validate_params({"theta": _THETA, "X": Array(2, to="torch", keep_float32=True), "m": POSITIVE_INT, "act": _ACT})
def neuron_slopes(theta: torch.Tensor, X: torch.Tensor, m: int, act: str) -> torch.Tensor:
    """max_i |σ'(w_jᵀx_i + b_j)| for each neuron j: (m,) from flat parameters θ (P,) and inputs X (n, d). A neuron
    whose slope is ≈ 0 at every data point is numerically constant on the data (saturated)."""
    _check_theta(theta, X.shape[-1], m)
    X = X.to(theta.device, theta.dtype)
    W, b, _, _ = unpack(theta.detach(), X.shape[-1], m)
    z = (X @ W.T + b).requires_grad_(True)
    (slope,) = torch.autograd.grad(ACTIVATIONS[act].fn(z).sum(), z)
    return slope.abs().amax(0)


@validate_params({"theta": _THETA, "d": POSITIVE_INT, "m": POSITIVE_INT, "flipped": InstanceOf(bool)})
def split_neuron(theta: torch.Tensor, d: int, m: int, flipped: bool) -> torch.Tensor:
    """Width m + 1 flat parameters realizing the same function as θ (width m): neuron 0 split into two copies
    (a₀ → 0.3a₀, 0.7a₀; a duplicate, flat dimension 1), or, when ``flipped``, a copy with (−w₀, −b₀) and output weights
    (a₀ + s, s), s = 0.4a₀ + 0.3: (a₀ + s)σ(z) + sσ(−z) = a₀σ(z) for odd σ (a flipped pair, flat dimension 1)."""
    _check_theta(theta, d, m)
    W, b, a, c = unpack(theta, d, m)
    if flipped:
        s = 0.4 * float(a[0]) + 0.3
        W2, b2 = torch.cat([W, -W[:1]]), torch.cat([b, -b[:1]])
        a2 = torch.cat([a[:1] + s, a[1:], torch.tensor([s], dtype=a.dtype)])
    else:
        W2, b2 = torch.cat([W, W[:1]]), torch.cat([b, b[:1]])
        a2 = torch.cat([0.3 * a[:1], a[1:], 0.7 * a[:1]])
    return pack(W2, b2, a2, c)


@validate_params({"n": POSITIVE_INT, "n_params": POSITIVE_INT, "dtype": Options((torch.float64, torch.float32))})
def zero_eigenvalue_threshold(n: int, n_params: int, dtype: torch.dtype = torch.float64) -> float:
    """Relative size n·P·ε below which a Hessian eigenvalue of a mean loss over n data and P parameters is zero to
    working precision: each Hessian entry is a sum of n terms, each rounded to ε relative to the largest, and a
    backward-stable symmetric eigensolver adds O(P·ε·‖H‖) — so |λ| ≤ n·P·ε·λ_max is indistinguishable from 0."""
    return float(n * n_params * torch.finfo(dtype).eps)


@validate_params({"eigenvalues": Array(1, to="torch", keep_float32=True), "rel": NON_NEGATIVE})
def zero_eigenvalue_count(eigenvalues: torch.Tensor, rel: float) -> int:
    """Eigenvalues (any array, 1-D) with |λ| ≤ rel·max|λ|."""
    return int((eigenvalues.abs() <= rel * eigenvalues.abs().max()).sum())


# --- redundancy inside any model: Linear–activation–Linear blocks ---------------------------------------------------
#: flat dimension a unit of each kind adds (d inputs, k outputs of the block), and its merge rule
BLOCK_KINDS = {
    "zero output weight": ("‖A[:, j]‖ ≈ 0", "drop unit j", "d + 1 ((w_j, b_j) free)"),
    "zero input weight": ("‖w_j‖ ≈ 0", "c += A[:, j] σ(b_j), drop j", "k + 1 ((A[:, j], b_j) with c)"),
    "dead on the data": ("σ(w_jᵀx + b_j) constant on every data point", "c += A[:, j] σ(z_j), drop j",
                         "k + d + 1 for ReLU (A[:, j] and, locally, (w_j, b_j)); k otherwise"),
    "duplicate": ("(w_j, b_j) ≈ (w_i, b_i)", "A[:, i] += A[:, j], drop j", "k (A[:, i] + A[:, j] fixed)"),
    "sign-twin": ("(w_j, b_j) ≈ −(w_i, b_i), σ odd (or sigmoid)", "A[:, i] −= A[:, j] (sigmoid: c += A[:, j]), drop j",
                  "k"),
}


@dataclass
class BlockUnit:
    kind: str  # a key of BLOCK_KINDS
    units: tuple[int, ...]  # (j,) or (i, j): j is merged into i
    distance: float  # the relative distance that was compared with the tolerance
    flat_dimension: int


@dataclass
class BlockRedundancy:
    """Redundant units of one block x ↦ A σ(W x + b) + c (W: m × d, A: k × m) and the merged block."""

    name: str  # '<first>→<second>'
    activation: str
    width: int  # m
    reduced_width: int
    units: list[BlockUnit]
    tolerance: float
    first: torch.nn.Linear  # the merged layers
    second: torch.nn.Linear
    flat_dimension: int = 0

    @property
    def efficient(self) -> bool:
        return not self.units


def sequential_blocks(model: torch.nn.Module) -> list[tuple[str, torch.nn.Sequential, int, str]]:
    """(name, parent Sequential, index of the first Linear, activation name) of every Linear, activation, Linear
    run of consecutive children of an ``nn.Sequential`` in ``model``, with the activation in the registry."""
    out = []
    for name, seq in model.named_modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        kids = list(seq)
        for i in range(len(kids) - 2):
            if isinstance(kids[i], torch.nn.Linear) and isinstance(kids[i + 2], torch.nn.Linear):
                act = next((n for n, a in ACTIVATIONS.items() if isinstance(kids[i + 1], a.module)), None)
                if act is not None and kids[i + 2].in_features == kids[i].out_features:
                    out.append((name, seq, i, act))
    return out


def _merge(first: torch.nn.Linear, second: torch.nn.Linear, keep: list[int], A: torch.Tensor,
           c: torch.Tensor) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """New layers of width len(keep) with the given output weights A (k × m) and output bias c (k,)."""
    dtype, dev = first.weight.dtype, first.weight.device
    lin1 = torch.nn.Linear(first.in_features, len(keep), bias=first.bias is not None).to(dev, dtype)
    lin2 = torch.nn.Linear(len(keep), second.out_features, bias=True).to(dev, dtype)
    with torch.no_grad():
        lin1.weight.copy_(first.weight[keep])
        if first.bias is not None:
            lin1.bias.copy_(first.bias[keep])
        lin2.weight.copy_(A[:, keep].to(dtype))
        lin2.bias.copy_(c.to(dtype))
    return lin1, lin2


def _pairs(wb: torch.Tensor, live: list[int], odd: bool, scale: float, tol: float) -> list[tuple[int, int, str, float]]:
    """(i, j, kind, relative distance): unit j a duplicate (or sign-twin) of an earlier representative i (the first
    within tolerance, duplicates before sign-twins). Distances of all pairs at once: O(m²d) in one product."""
    if not live:
        return []
    x = wb[live]
    dist = {"duplicate": torch.cdist(x, x) / scale}
    if odd:
        dist["sign-twin"] = torch.cdist(x, -x) / scale
    is_rep = torch.zeros(len(live), dtype=torch.bool, device=wb.device)
    out = []
    for jj, j in enumerate(live):
        hit = None
        for kind, D in dist.items():
            ok = torch.nonzero(is_rep[:jj] & (D[jj, :jj] <= tol)).flatten()
            if len(ok):
                ii = int(ok[0])
                hit = (live[ii], j, kind, float(D[jj, ii]))
                break
        if hit:
            out.append(hit)
        else:
            is_rep[jj] = True
    return out


@validate_params({"first": InstanceOf(torch.nn.Linear), "second": InstanceOf(torch.nn.Linear),
                  "activation": _ACT, "block_inputs": Array(2, to="torch", keep_float32=True), "tol": POSITIVE})
def block_redundancy(first: torch.nn.Linear, activation: str, second: torch.nn.Linear, block_inputs: torch.Tensor,
                     tol: float = 1e-3, name: str = "") -> BlockRedundancy:
    """Redundant units of the block x ↦ second(σ(first(x))) on the data ``block_inputs`` (n, d) it sees, and the
    merged block (:data:`BLOCK_KINDS`: kind, condition, merge, flat dimension). Distances are relative: ‖A[:, j]‖ to
    max_i ‖A[:, i]‖, ‖w_j‖ and ‖(w_j, b_j) ∓ (w_i, b_i)‖ to max_i ‖(w_i, b_i)‖, the spread of σ(z_j) over the data
    to the largest spread of any unit; each is a redundancy when ≤ ``tol``."""
    if second.in_features != first.out_features:
        raise ValueError(f"second: must take the {first.out_features} outputs of first (got in_features = "
                         f"{second.in_features})")
    if block_inputs.shape[1] != first.in_features:
        raise ValueError(f"block_inputs: must have first.in_features = {first.in_features} columns (got shape "
                         f"{tuple(block_inputs.shape)})")
    act = ACTIVATIONS[activation]
    W = first.weight.detach().double()
    m, d = W.shape
    b = first.bias.detach().double() if first.bias is not None else torch.zeros(m, dtype=W.dtype, device=W.device)
    A = second.weight.detach().double().clone()
    c = (second.bias.detach().double().clone() if second.bias is not None
         else torch.zeros(A.shape[0], dtype=W.dtype, device=W.device))
    k = A.shape[0]
    wb = torch.cat([W, b[:, None]], 1)
    with torch.no_grad():
        h = act.fn(block_inputs.to(W.device, W.dtype) @ W.T + b)  # (n, m)
    spread = (h.amax(0) - h.amin(0))
    a_scale = float(A.norm(dim=0).max()) or 1.0
    wb_scale = float(wb.norm(dim=1).max()) or 1.0
    s_scale = float(spread.max()) or 1.0
    units: list[BlockUnit] = []
    gone: set[int] = set()
    for j in range(m):
        r_out, r_in, r_dead = float(A[:, j].norm()) / a_scale, float(W[j].norm()) / wb_scale, float(spread[j]) / s_scale
        if r_out <= tol:
            units.append(BlockUnit("zero output weight", (j,), r_out, d + 1))
        elif r_in <= tol:
            c += A[:, j] * act.fn(b[j])
            units.append(BlockUnit("zero input weight", (j,), r_in, k + 1))
        elif r_dead <= tol:
            c += A[:, j] * h[:, j].mean()
            units.append(BlockUnit("dead on the data", (j,), r_dead, k + d + 1 if activation == "relu" else k))
        else:
            continue
        gone.add(j)
    odd = act.symmetry in ("odd", "sigmoid")
    for i, j, kind, dist in _pairs(wb, [j for j in range(m) if j not in gone], odd, wb_scale, tol):
        sign = 1.0 if kind == "duplicate" else -1.0
        A[:, i] += sign * A[:, j]
        if kind == "sign-twin" and act.symmetry == "sigmoid":  # a σ(−z) = a − a σ(z)
            c += A[:, j]
        units.append(BlockUnit(kind, (i, j), dist, k))
        gone.add(j)
    keep = [j for j in range(m) if j not in gone] or [0]
    if len(keep) == 1 and keep[0] in gone:  # every unit redundant: one unit with zero output weight stays
        A[:, 0] = 0.0
    lin1, lin2 = _merge(first, second, keep, A, c)
    return BlockRedundancy(name, activation, m, len(keep), units, tol, lin1, lin2,
                           sum(u.flat_dimension for u in units))
