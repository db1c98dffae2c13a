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
from ..validation import finite_array, positive, positive_int


def powerlaw_spectrum(p: int, alpha: float) -> np.ndarray:
    """λ_i = i^−α for i = 1..p, shape (p,)."""
    p = positive_int("p", p)
    alpha = positive("alpha", alpha)
    return np.arange(1, p + 1, dtype=float) ** (-alpha)


@dataclass
class LinearRegressionProblem:
    """Gaussian design with diagonal covariance ``spectrum`` (p,), targets β* = √snr · N(0, I_p)/√p, noise σ²."""

    spectrum: torch.Tensor  # (p,)
    sigma2: float
    snr: float = 10.0

    @property
    def p(self) -> int:
        return int(self.spectrum.shape[0])

    def design(self, n: int, g: torch.Generator) -> torch.Tensor:
        """X = Z Σ^{1/2}, shape (n, p), Z with i.i.d. N(0, 1) entries from ``g`` (a fresh call: a fresh test set)."""
        n = positive_int("n", n)
        z = torch.randn(n, self.p, generator=g, device=self.spectrum.device, dtype=self.spectrum.dtype)
        return z * self.spectrum.sqrt()

    def target(self, g: torch.Generator) -> torch.Tensor:
        """β* = √snr · N(0, I_p)/√p, shape (p,); E b_i² = snr/p (see :meth:`target_coefficients`)."""
        return np.sqrt(self.snr) * torch.randn(self.p, generator=g, device=self.spectrum.device,
                                               dtype=self.spectrum.dtype) / np.sqrt(self.p)

    def target_coefficients(self) -> np.ndarray:
        """√E b_i² for each eigen-direction: what the deterministic equivalent takes for a random target."""
        return np.full(self.p, np.sqrt(self.snr / self.p))

    def labels(self, X: torch.Tensor, beta_star: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """y = X β* + ε, ε ~ N(0, σ² I_n), shape (n,)."""
        eps = torch.randn(X.shape[0], generator=g, device=X.device, dtype=X.dtype)
        return X @ beta_star + np.sqrt(self.sigma2) * eps

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
        """Exact population risk E(y − ⟨x, β⟩)² = (β − β*)ᵀ Σ (β − β*) + σ² (no test sample needed)."""
        d = beta - beta_star
        return (self.spectrum * d * d).sum(-1) + self.sigma2


def powerlaw_problem(n: int, alpha: float, gamma: float, sigma2: float,
                     device: str | torch.device | None = None, snr: float = 10.0) -> LinearRegressionProblem:
    """The paper's setting: p = round(n/γ) features with λ_i = i^−α, noise σ², target norm² ≈ snr.

    ``gamma`` < 1 is the overparameterized regime.
    """
    n = positive_int("n", n)
    gamma = positive("gamma", gamma)
    sigma2 = positive("sigma2", sigma2, allow_zero=True)
    dev = resolve_device(device)
    p = max(1, int(round(n / gamma)))
    spectrum = torch.as_tensor(powerlaw_spectrum(p, alpha), device=dev, dtype=default_dtype(dev))
    return LinearRegressionProblem(spectrum, sigma2, snr)


def check_xy(X: torch.Tensor, y: torch.Tensor) -> None:
    """Validate a data set: 2-D X, 1-D y of matching length, no NaN or inf."""
    if X.ndim != 2:
        raise ValueError(f"X: must be 2-D (n, p), got shape {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y: must have shape ({X.shape[0]},) to match X, got {tuple(y.shape)}")
    finite_array("X", X)
    finite_array("y", y)
