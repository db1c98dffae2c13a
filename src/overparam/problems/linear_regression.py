"""Linear regression with a given covariance spectrum (near-interpolators study).

Model (Wang, Sonthalia, Hu 2024): features x = Σ^{1/2} z ∈ R^p with z ~ N(0, I_p) and Σ = diag(λ_1, …, λ_p) (we work
in Σ's eigenbasis, so the target's coordinates there are β* itself), targets y = ⟨x, β*⟩ + ε with ε ~ N(0, σ²).
The built-in spectrum is the power law λ_i = i^−α; the paper's target is β* = √10 · N(0, I_p)/√p.

Shapes: X (n, p), y (n,), beta_star (p,), spectrum (p,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..backend import default_dtype, resolve_device
from ..validation import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, Seed, check, validate_params

#: a data set (X (n, p), y (n,)) as users hold it: NumPy, torch or sequences, converted to float64 tensors
XY_PARAMS = {"X": Array(2, to="torch"), "y": Array(1, shape=("X",), to="torch")}


@validate_params({"p": POSITIVE_INT, "alpha": POSITIVE})
def powerlaw_spectrum(p: int, alpha: float) -> np.ndarray:
    """λ_i = i^−α for i = 1..p, shape (p,)."""
    return np.arange(1, p + 1, dtype=float) ** (-alpha)


@dataclass
class LinearRegressionProblem:
    """Gaussian design with diagonal covariance ``spectrum`` (p,), targets β* = √snr · N(0, I_p)/√p, noise σ²."""

    spectrum: torch.Tensor  # (p,)
    sigma2: float
    snr: float = 10.0

    def __post_init__(self) -> None:
        self.spectrum = check("spectrum", self.spectrum, Array(1, elements=POSITIVE, to="torch"))
        self.sigma2 = check("sigma2", self.sigma2, NON_NEGATIVE)
        self.snr = check("snr", self.snr, NON_NEGATIVE)

    @property
    def p(self) -> int:
        return int(self.spectrum.shape[0])

    @property
    def device(self) -> torch.device:
        return self.spectrum.device

    @validate_params({"n": POSITIVE_INT, "g": Seed(to="torch", device_of="self")})
    def design(self, n: int, g: torch.Generator | int) -> torch.Tensor:
        """X = Z Σ^{1/2}, shape (n, p), Z with i.i.d. N(0, 1) entries from ``g`` (a fresh call: a fresh test set)."""
        z = torch.randn(n, self.p, generator=g, device=self.spectrum.device, dtype=self.spectrum.dtype)
        return z * self.spectrum.sqrt()

    @validate_params({"g": Seed(to="torch", device_of="self")})
    def target(self, g: torch.Generator | int) -> torch.Tensor:
        """β* = √snr · N(0, I_p)/√p, shape (p,); E b_i² = snr/p (see :meth:`target_coefficients`)."""
        return np.sqrt(self.snr) * torch.randn(self.p, generator=g, device=self.spectrum.device,
                                               dtype=self.spectrum.dtype) / np.sqrt(self.p)

    def target_coefficients(self) -> np.ndarray:
        """√E b_i² for each eigen-direction: what the deterministic equivalent takes for a random target."""
        return np.full(self.p, np.sqrt(self.snr / self.p))

    @validate_params({"X": Array(2, to="torch"), "beta_star": Array(1, to="torch"),
                      "g": Seed(to="torch", device_of="X")})
    def labels(self, X: torch.Tensor, beta_star: torch.Tensor, g: torch.Generator | int) -> torch.Tensor:
        """y = X β* + ε, ε ~ N(0, σ² I_n), shape (n,); X (n, p), β* (p,)."""
        if X.shape[1] != beta_star.shape[0]:
            raise ValueError(f"beta_star: must have shape ({X.shape[1]},) to match X (got {tuple(beta_star.shape)})")
        eps = torch.randn(X.shape[0], generator=g, device=X.device, dtype=X.dtype)
        return X @ beta_star + np.sqrt(self.sigma2) * eps

    @validate_params({"n": POSITIVE_INT, "tau": POSITIVE})
    def theory_at_tau(self, n: int, tau: float) -> dict[str, float]:
        """The deterministic equivalent of ridge on n samples at the λ whose predicted training error is τ:
        ``lam``, E‖β̂‖² (``norm2``) and the population risk (``test_error``), from
        :func:`overparam.theory.ridge.deterministic_equivalent` with this problem's spectrum and target."""
        from ..theory.ridge import deterministic_equivalent, lambda_for_train_error_theory
        spec, b = self.spectrum.cpu().numpy(), self.target_coefficients()
        lam = lambda_for_train_error_theory(spec, b, self.sigma2, tau, n)
        de = deterministic_equivalent(spec, b, self.sigma2, lam, n)
        return {"lam": lam, "norm2": float(de.norm2), "test_error": float(de.test_error)}

    def test_error(self, beta: torch.Tensor, beta_star: torch.Tensor) -> torch.Tensor:
        """Exact population risk E(y − ⟨x, β⟩)² = (β − β*)ᵀ Σ (β − β*) + σ² (no test sample needed); β (..., p)."""
        beta = check("beta", beta, Array(to="torch")).to(self.spectrum)
        beta_star = check("beta_star", beta_star, Array(to="torch")).to(self.spectrum)
        if beta.shape[-1] != self.p or beta_star.shape[-1] != self.p:
            raise ValueError(f"beta: must have {self.p} entries in its last axis like the spectrum (got "
                             f"{tuple(beta.shape)} and beta_star {tuple(beta_star.shape)})")
        d = beta - beta_star
        return (self.spectrum * d * d).sum(-1) + self.sigma2


@validate_params({"n": POSITIVE_INT, "alpha": POSITIVE, "gamma": POSITIVE, "sigma2": NON_NEGATIVE,
                  "snr": NON_NEGATIVE})
def powerlaw_problem(n: int, alpha: float, gamma: float, sigma2: float,
                     device: str | torch.device | None = None, snr: float = 10.0) -> LinearRegressionProblem:
    """The paper's setting: p = round(n/γ) features with λ_i = i^−α, noise σ², target norm² ≈ snr.

    ``gamma`` < 1 is the overparameterized regime.
    """
    dev = resolve_device(device)
    p = max(1, int(round(n / gamma)))
    spectrum = torch.as_tensor(powerlaw_spectrum(p, alpha), device=dev, dtype=default_dtype(dev))
    return LinearRegressionProblem(spectrum, sigma2, snr)


def check_xy(X, y) -> tuple[torch.Tensor, torch.Tensor]:
    """A data set as float64 tensors: 2-D X (n, p), 1-D y (n,), no NaN or inf, non-empty (:data:`XY_PARAMS`)."""
    X = check("X", X, XY_PARAMS["X"])
    return X, check("y", y, XY_PARAMS["y"], {"X": X})
