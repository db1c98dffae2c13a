"""One-hidden-layer networks N(x) = Σ_j a_j σ(w_jᵀx + b_j) + c with analytic activations (Benning & Dereich 2025).

The activation registry names each σ with its symmetry, which decides when two neurons with opposite parameters
(w_i, b_i) = −(w_j, b_j) can be merged:

- ``odd``: σ(−z) = −σ(z) (tanh, sin): a_iσ(z) + a_jσ(−z) = (a_i − a_j)σ(z);
- ``sigmoid``: σ(−z) = 1 − σ(z): a_iσ(z) + a_jσ(−z) = (a_i − a_j)σ(z) + a_j (a_j joins c);
- ``linear_odd_part``: σ(z) − σ(−z) = z (softplus, GELU, ReLU): a flipped pair leaves a linear term, which one
  neuron cannot realize, so a single flipped pair is not a redundancy;
- ``antiperiod``: σ(z + T) = −σ(z) (sin, T = π), so neurons whose (w, b) agree up to sign and a shift of b by a
  multiple of T are merged too: a neuron with z_j = ε(z_i + kT) contributes ε(−1)^k a_j σ(z_i);
- ReLU is the non-analytic contrast (positively homogeneous: (w, b, a) ~ (t w, t b, a/t) is a flat direction of every
  neuron).

Parameters of :class:`ShallowNet`: ``hidden.weight`` W (m, d), ``hidden.bias`` b (m,), ``out.weight`` a (1, m),
``out.bias`` c (1,), i.e. ``nn.Sequential(nn.Linear(d, m), activation, nn.Linear(m, 1))`` in shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..validation import NON_NEGATIVE, POSITIVE_INT, Options, Seed, choice, validate_params


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    symmetry: str  # 'odd', 'sigmoid', 'linear_odd_part'
    analytic: bool
    module: Callable[[], torch.nn.Module]
    antiperiod: float | None = None  # T with σ(z + T) = −σ(z), if any


class _Sin(torch.nn.Module):
    def forward(self, x):
        return torch.sin(x)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, "odd", True, torch.nn.Tanh),
    "sin": Activation("sin", torch.sin, "odd", True, _Sin, antiperiod=math.pi),
    "sigmoid": Activation("sigmoid", torch.sigmoid, "sigmoid", True, torch.nn.Sigmoid),
    "softplus": Activation("softplus", torch.nn.functional.softplus, "linear_odd_part", True, torch.nn.Softplus),
    "gelu": Activation("gelu", torch.nn.functional.gelu, "linear_odd_part", True, torch.nn.GELU),
    "relu": Activation("relu", torch.relu, "linear_odd_part", False, torch.nn.ReLU),
}


def activation(name: str) -> Activation:
    return ACTIVATIONS[choice("activation", name, tuple(ACTIVATIONS))]


_DTYPES = Options((torch.float64, torch.float32))


@validate_params({"d": POSITIVE_INT, "m": POSITIVE_INT, "act": Options(tuple(ACTIVATIONS)), "dtype": _DTYPES})
def shallow_net(d: int, m: int, act: str, dtype: torch.dtype = torch.float64) -> torch.nn.Sequential:
    """``nn.Sequential(nn.Linear(d, m), σ, nn.Linear(m, 1))`` in ``dtype`` (float64 or float32), σ named by ``act``
    (:data:`ACTIVATIONS`)."""
    return torch.nn.Sequential(torch.nn.Linear(d, m), activation(act).module(),
                               torch.nn.Linear(m, 1)).to(dtype)


def set_params(net: torch.nn.Sequential, W: torch.Tensor, b: torch.Tensor, a: torch.Tensor, c: float) -> None:
    with torch.no_grad():
        net[0].weight.copy_(W)
        net[0].bias.copy_(b)
        net[2].weight.copy_(a.reshape(1, -1))
        net[2].bias.fill_(float(c))


def get_params(net: torch.nn.Sequential) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    return (net[0].weight.detach().clone(), net[0].bias.detach().clone(), net[2].weight.detach().reshape(-1).clone(),
            float(net[2].bias.detach()))


@validate_params({"d": POSITIVE_INT, "n": POSITIVE_INT, "m_star": POSITIVE_INT, "act": Options(tuple(ACTIVATIONS)),
                  "g": Seed(to="torch"), "smooth": NON_NEGATIVE, "noise": NON_NEGATIVE, "dtype": _DTYPES})
def random_problem(d: int, n: int, m_star: int, act: str, g: torch.Generator | int, smooth: float = 0.3,
                   noise: float = 0.1, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs X (n, d) and fresh random targets y (n,): a random teacher of width m* plus a random smooth
    function (``smooth`` × a random-feature cosine expansion) plus noise, so that 'almost every problem' is sampled.
    ``g``: an int seed, a NumPy or a (CPU) torch Generator."""
    X = torch.randn(n, d, generator=g, dtype=dtype)
    teacher = shallow_net(d, m_star, act, dtype)
    Wt = torch.randn(m_star, d, generator=g, dtype=dtype) / math.sqrt(d) * 1.5
    set_params(teacher, Wt, 0.5 * torch.randn(m_star, generator=g, dtype=dtype),
               torch.randn(m_star, generator=g, dtype=dtype), 0.0)
    F = torch.randn(d, 8, generator=g, dtype=dtype)
    phase = 2 * math.pi * torch.rand(8, generator=g, dtype=dtype)
    coef = torch.randn(8, generator=g, dtype=dtype) / math.sqrt(8)
    with torch.no_grad():
        y = teacher(X).squeeze(-1) + smooth * torch.cos(X @ F + phase) @ coef
    return X, y + noise * torch.randn(n, generator=g, dtype=dtype)


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of a (n, 1) or (n,) output."""
    return ((out.reshape(-1) - target.reshape(-1)) ** 2).mean()


# --- many independent problems at once (the study's "almost every problem") -------------------------------------
def n_params(d: int, m: int) -> int:
    """Parameters of one network: W (m·d), b (m), a (m), c (1)."""
    return m * d + 2 * m + 1


def unpack(theta: torch.Tensor, d: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W (..., m, d), b (..., m), a (..., m), c (...,)) from flat parameters (..., P)."""
    W = theta[..., : m * d].reshape(*theta.shape[:-1], m, d)
    return W, theta[..., m * d: m * d + m], theta[..., m * d + m: m * d + 2 * m], theta[..., -1]


def pack(W: torch.Tensor, b: torch.Tensor, a: torch.Tensor, c: float | torch.Tensor) -> torch.Tensor:
    c = torch.as_tensor(c, dtype=W.dtype).reshape(1)
    return torch.cat([W.reshape(-1), b.reshape(-1), a.reshape(-1), c])


def single_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, m: int, act: str) -> torch.Tensor:
    """Mean squared error of one network with flat parameters ``theta`` on (X (n, d), y (n,))."""
    W, b, a, c = unpack(theta, X.shape[-1], m)
    out = ACTIVATIONS[act].fn(X @ W.T + b) @ a + c
    return ((out - y) ** 2).mean()


def batched_losses(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, m: int, act: str) -> torch.Tensor:
    """Per-problem losses (B,) for parameters (B, P), inputs (B, n, d), targets (B, n)."""
    return torch.vmap(lambda t, x, yy: single_loss(t, x, yy, m, act))(theta, X, y)


def random_batch(act: str, d: int, m: int, n: int, B: int, g: torch.Generator, m_star: int = 3, noise: float = 0.1,
                 smooth: float = 0.3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """B independent problems of :func:`random_problem` (a teacher of width m*) and a random initialization of
    students of width m for each: X (B, n, d), y (B, n), θ₀ (B, P) with W ~ N(0, 1/d), b ~ N(0, 0.01),
    a ~ N(0, 1/m), c = 0."""
    data = [random_problem(d, n, m_star, act, g, smooth=smooth, noise=noise) for _ in range(B)]
    X, y = torch.stack([a for a, _ in data]), torch.stack([b for _, b in data])
    theta0 = torch.cat([torch.randn(B, m * d, generator=g, dtype=torch.float64) / math.sqrt(d),
                        0.1 * torch.randn(B, m, generator=g, dtype=torch.float64),
                        torch.randn(B, m, generator=g, dtype=torch.float64) / math.sqrt(m),
                        torch.zeros(B, 1, dtype=torch.float64)], 1)
    return X, y, theta0


def to_module(theta: torch.Tensor, d: int, m: int, act: str) -> torch.nn.Sequential:
    """The flat parameters of one network as ``nn.Sequential(nn.Linear(d, m), σ, nn.Linear(m, 1))``."""
    net = shallow_net(d, m, act, theta.dtype)
    W, b, a, c = unpack(theta.detach(), d, m)
    set_params(net, W, b, a, float(c))
    return net
