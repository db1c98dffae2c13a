"""Curvature along an optimization path: positive definiteness, Hessian-Lipschitz estimate, spectral accuracy.

- ``lambda_min(H)``: the smallest eigenvalue of a dense Hessian;
- ``spectral_error(H, H_tilde)`` = ‖H^{-1/2} H̃ H^{-1/2} − I‖_op (the ε₀ of a (1 ± ε₀) approximation), through the
  Cholesky factor H = LLᵀ;
- ``hessian_lipschitz(points, hessians)`` = max over pairs ‖H_i − H_j‖_op / ‖x_i − x_j‖: an empirical lower estimate of
  the Lipschitz constant M.
"""

from __future__ import annotations

import itertools

import torch


def lambda_min(H: torch.Tensor) -> float:
    return float(torch.linalg.eigvalsh(0.5 * (H + H.T))[0])


def spectral_error(H: torch.Tensor, H_tilde: torch.Tensor) -> float:
    """‖H^{-1/2} H̃ H^{-1/2} − I‖_op for symmetric positive definite H."""
    L = torch.linalg.cholesky(0.5 * (H + H.T))
    X = torch.linalg.solve_triangular(L, H_tilde, upper=False)
    X = torch.linalg.solve_triangular(L, X.T, upper=False)
    ev = torch.linalg.eigvalsh(0.5 * (X + X.T))
    return float(torch.max((ev - 1).abs()))


def hessian_lipschitz(points: list[torch.Tensor], hessians: list[torch.Tensor], min_dist: float = 1e-8) -> float:
    """max_{i<j} ‖H_i − H_j‖_op / ‖x_i − x_j‖ over pairs farther apart than ``min_dist``."""
    best = 0.0
    for (xi, Hi), (xj, Hj) in itertools.combinations(zip(points, hessians), 2):
        dist = float((xi - xj).norm())
        if dist > min_dist:
            best = max(best, float(torch.linalg.matrix_norm(Hi - Hj, ord=2)) / dist)
    return best
