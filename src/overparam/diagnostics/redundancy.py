"""Efficient versus redundant neurons of a one-hidden-layer network N(x) = Σ_j a_j σ(w_jᵀx + b_j) + c.

A parameter is redundant when the same function is realized with fewer neurons. Detected, within tolerances:

| kind        | condition                                  | merge                                  | flat dimension |
|-------------|--------------------------------------------|----------------------------------------|----------------|
| dead        | a_j ≈ 0                                    | drop neuron j                           | d + 1 (w_j, b_j free) |
| constant    | w_j ≈ 0                                    | c += a_j σ(b_j), drop j                 | 2 ((a_j, b_j) with c) |
| duplicate   | (w_i, b_i) ≈ (w_j, b_j)                    | a_i += a_j, drop j                      | 1 (a_i + a_j fixed) |
| flipped     | (w_i, b_i) ≈ −(w_j, b_j), σ odd            | a_i −= a_j, drop j                      | 1 |
| flipped     | (w_i, b_i) ≈ −(w_j, b_j), σ sigmoid-type   | a_i −= a_j, c += a_j, drop j            | 1 |

(softplus, GELU and ReLU: a flipped pair leaves a linear term no single neuron realizes; not a redundancy by itself.)
The flat dimension is that of the manifold of parameters realizing the same function through the redundancy, the
number of zero Hessian eigenvalues it forces at a critical point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..problems.shallow_net import ACTIVATIONS, activation as get_activation, get_params, set_params, shallow_net


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


def _activation_name(model: torch.nn.Module, activation: str | torch.nn.Module | None) -> str:
    if isinstance(activation, str):
        return get_activation(activation).name
    mod = activation if activation is not None else model[1]
    for name, act in ACTIVATIONS.items():
        if isinstance(mod, act.module):
            return name
    raise ValueError(f"activation: {type(mod).__name__} is not in the registry ({', '.join(ACTIVATIONS)})")


def find_redundancy(model: torch.nn.Sequential, activation: str | torch.nn.Module | None = None,
                    tol: float = 1e-4) -> RedundancyReport:
    """Redundant neurons of ``nn.Sequential(nn.Linear(d, m), σ, nn.Linear(m, 1))`` (module docstring); ``tol`` is
    relative to the largest |a_j| and the largest ‖(w_j, b_j)‖."""
    if not (isinstance(model, torch.nn.Sequential) and len(model) == 3 and isinstance(model[0], torch.nn.Linear)
            and isinstance(model[2], torch.nn.Linear) and model[2].out_features == 1):
        raise ValueError("model: expected nn.Sequential(nn.Linear(d, m), activation, nn.Linear(m, 1))")
    name = _activation_name(model, activation)
    act = ACTIVATIONS[name]
    W, b, a, c = get_params(model)
    m, d = W.shape
    wb = torch.cat([W, b[:, None]], 1)
    a_scale = float(a.abs().max()) or 1.0
    wb_scale = float(wb.norm(dim=1).max()) or 1.0
    alive = list(range(m))
    found: list[Redundancy] = []
    a = a.clone()
    for j in list(alive):
        if abs(float(a[j])) <= tol * a_scale:
            found.append(Redundancy("dead", (j,), d + 1))
            alive.remove(j)
    for j in list(alive):
        if float(W[j].norm()) <= tol * wb_scale:
            c += float(a[j] * act.fn(b[j]))
            found.append(Redundancy("constant", (j,), 2))
            alive.remove(j)
    changed = True
    while changed:
        changed = False
        for ii, i in enumerate(alive):
            for j in alive[ii + 1:]:
                if float((wb[i] - wb[j]).norm()) <= tol * wb_scale:
                    a[i] += a[j]
                    found.append(Redundancy("duplicate", (i, j), 1))
                elif act.symmetry in ("odd", "sigmoid") and float((wb[i] + wb[j]).norm()) <= tol * wb_scale:
                    a[i] -= a[j]
                    if act.symmetry == "sigmoid":
                        c += float(a[j])
                    found.append(Redundancy("flipped", (i, j), 1))
                else:
                    continue
                alive.remove(j)
                changed = True
                break
            if changed:
                break
    reduced = shallow_net(d, max(len(alive), 1), name, W.dtype)
    if alive:
        set_params(reduced, W[alive], b[alive], a[alive], c)
    else:  # the function is a constant
        set_params(reduced, torch.zeros(1, d, dtype=W.dtype), torch.zeros(1, dtype=W.dtype),
                   torch.zeros(1, dtype=W.dtype), c)
    flat = sum(r.flat_dimension for r in found)
    return RedundancyReport(found, reduced, flat, not found, alive)
