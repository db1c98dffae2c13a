"""Ridge regression along a whole path of penalties from one thin SVD.

For X = U diag(s) Vᵀ (thin SVD, r = min(n, p) singular values) and the objective

    (1/n) ‖Xβ − y‖² + λ ‖β‖²,

the minimizer is β_λ = V diag(s_i / (s_i² + nλ)) Uᵀ y. With c = Uᵀy and f_i = nλ/(s_i² + nλ):

    train(λ) = (1/n) [ Σ_i f_i² c_i² + ‖y‖² − ‖c‖² ],        ‖β_λ‖² = Σ_i s_i² c_i² / (s_i² + nλ)².

train(λ) increases from train(0⁺) (0 when X has full row rank, the minimum-norm interpolator) to ‖y‖²/n (β = 0);
:meth:`RidgePath.lambda_for_train_error` inverts it by a root-find in log λ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq

from ..problems.linear_regression import LinearRegressionProblem, check_xy
from ..validation import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Array, InstanceOf, Interval, Real, Seed, check, \
    validate_params

#: a penalty λ ∈ [0, ∞] (∞: β = 0, what :meth:`RidgePath.lambda_for_train_error` returns at τ = ‖y‖²/n)
_LAM = Interval(Real, 0, math.inf, closed="both")
#: λ for the vectorized methods: a scalar or an array of penalties in [0, ∞]
_LAMS = Array(elements=_LAM, finite=False, to="numpy")


@dataclass
class RidgePath:
    """Ridge solutions for any λ ≥ 0 from one SVD of X (n, p), computed in float64 whatever the input's dtype.
    :meth:`coef` returns a NumPy array when :meth:`fit` was given NumPy arrays or sequences, a tensor otherwise."""

    U: torch.Tensor  # (n, r)
    s: torch.Tensor  # (r,)
    Vh: torch.Tensor  # (r, p)
    c: torch.Tensor  # (r,) = Uᵀ y
    y_norm2: float
    n: int
    numpy_out: bool = False

    @classmethod
    def fit(cls, X, y, rtol: float | None = None) -> "RidgePath":
        """One thin SVD of X (n, p) for labels y (n,) (NumPy, torch on any device, or sequences; float64);
        singular values below ``rtol``·s_max (default: machine precision × max(n, p)) are dropped (they are
        numerically zero and would only add rounding noise to the minimum-norm solution)."""
        numpy_in = not isinstance(X, torch.Tensor)
        X, y = check_xy(X, y)
        rtol = check("rtol", rtol, [None, Interval(Real, 0, 1)])
        path = cls.from_svd(*thin_svd(X, rtol), y)
        path.numpy_out = numpy_in
        return path

    @classmethod
    def from_svd(cls, U: torch.Tensor, s: torch.Tensor, Vh: torch.Tensor, y: torch.Tensor) -> "RidgePath":
        """The path for labels ``y`` (n,) on a design already decomposed by :func:`thin_svd`: O(n r) work, so one
        SVD serves many label vectors."""
        return cls(U, s, Vh, U.T @ y, float(y @ y), int(U.shape[0]))

    def _shrink(self, lam: float) -> torch.Tensor:
        return self.s**2 / (self.s**2 + self.n * lam)

    @validate_params({"lam": _LAM})
    def coef(self, lam: float) -> torch.Tensor | np.ndarray:
        """β_λ, shape (p,); λ = 0 gives the minimum-norm least-squares solution."""
        beta = self.Vh.T @ (self.s / (self.s**2 + self.n * lam) * self.c)
        return beta.cpu().numpy() if self.numpy_out else beta

    @validate_params({"lam": _LAMS})
    def train_error(self, lam: float | np.ndarray) -> np.ndarray | float:
        """(1/n)‖Xβ_λ − y‖² for a scalar or an array of λ ≥ 0 (vectorized)."""
        return self._train_error(lam)

    def _train_error(self, lam: float | np.ndarray) -> np.ndarray | float:
        """:meth:`train_error` without the checks at the door (the root-finder's many calls)."""
        lam_t = torch.as_tensor(np.atleast_1d(lam), dtype=self.s.dtype, device=self.s.device)
        s2 = self.s**2
        f = 1.0 / (1.0 + s2 / (self.n * lam_t[:, None]))  # nλ/(s² + nλ), also at λ = 0 and λ = ∞
        c2 = self.c**2
        out = ((f**2 * c2).sum(-1) + self.y_norm2 - c2.sum()) / self.n
        out = out.clamp_min(0.0).cpu().numpy()
        return float(out[0]) if np.ndim(lam) == 0 else out

    @validate_params({"lam": _LAMS})
    def norm2(self, lam: float | np.ndarray) -> np.ndarray | float:
        """‖β_λ‖² for a scalar or an array of λ ≥ 0 (vectorized)."""
        lam_t = torch.as_tensor(np.atleast_1d(lam), dtype=self.s.dtype, device=self.s.device)
        s2 = self.s**2
        out = (s2 * self.c**2 / (s2 + self.n * lam_t[:, None]) ** 2).sum(-1).cpu().numpy()
        return float(out[0]) if np.ndim(lam) == 0 else out

    @property
    def train_error_bounds(self) -> tuple[float, float]:
        """(train(0⁺), train(∞) = ‖y‖²/n): the attainable training errors."""
        return float(self.train_error(0.0)), self.y_norm2 / self.n

    @validate_params({"tau": NON_NEGATIVE, "xtol": POSITIVE})
    def lambda_for_train_error(self, tau: float, xtol: float = 1e-12) -> float:
        """The λ ≥ 0 whose training error equals ``tau`` (root of the monotone curve, in log λ).

        Edge values: τ = train(0⁺) gives 0.0 (the minimum-norm interpolator); τ = ‖y‖²/n gives ``inf`` (β = 0).
        ``ValueError`` naming ``tau`` outside [train(0⁺), ‖y‖²/n].
        """
        return lambda_for_target(self._train_error, tau, self.train_error_bounds, self.s, self.n, xtol)


def thin_svd(X: torch.Tensor, rtol: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD X = U diag(s) Vh, dropping singular values ≤ rtol·s_max (default eps·max(n, p))."""
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    if not len(s):
        return U, s, Vh
    tol = (rtol if rtol is not None else torch.finfo(X.dtype).eps * max(X.shape)) * float(s[0])
    keep = s > tol
    return U[:, keep], s[keep], Vh[keep]


def lambda_for_target(train_error, tau: float, bounds: tuple[float, float], s: torch.Tensor, n: int,
                      xtol: float = 1e-12) -> float:
    """Root-find λ with ``train_error(λ) = tau`` on log λ, given the attainable ``bounds`` of the curve.

    Shared by :class:`RidgePath` and by refit-per-λ baselines (the benchmark), so both do the same search.
    """
    tau = check("tau", tau, NON_NEGATIVE)
    lo, hi = bounds
    span = max(hi, 1e-300)
    if tau < lo - 1e-12 * span or tau > hi + 1e-12 * span:
        raise ValueError(f"tau: must lie in [{lo:.6g}, {hi:.6g}] (training error of the interpolator and of β = 0),"
                         f" got {tau:.6g}")
    if tau <= lo + 1e-12 * span:
        return 0.0
    if tau >= hi - 1e-12 * span:
        return math.inf
    s2 = (s**2).cpu().numpy() / n
    # train(λ) moves between λ ≈ s²_min/n and s²_max/n; bracket widely around them
    a = math.log(max(float(s2.min()), 1e-300)) - 40.0
    b = math.log(float(s2.max())) + 40.0
    return float(math.exp(brentq(lambda t: float(train_error(math.exp(t))) - tau, a, b, xtol=xtol, maxiter=500)))


@validate_params({"prob": InstanceOf(LinearRegressionProblem), "n": POSITIVE_INT,
                  "taus": Array(1, elements=NON_NEGATIVE, to="numpy"), "g": Seed(to="torch", device_of="prob"),
                  "reps": POSITIVE_INT})
def ridge_at_tau(prob: LinearRegressionProblem, n: int, taus: list[float], g: torch.Generator | int,
                 reps: int) -> dict[str, list[float]]:
    """Ridge held at training error τ: one design X (n × p) drawn from ``prob``, then ``reps`` draws of (β*, ε);
    for each τ the λ̂ with (1/n)‖y − Xβ̂_λ‖² = τ (:meth:`RidgePath.lambda_for_train_error`), and the mean over
    draws of λ̂, ‖β̂‖², the test error, and the standard error of ‖β̂‖² (``norm2_sem``); lists of len(taus)."""
    X = prob.design(n, g)
    U, s, Vh = thin_svd(X)
    lam, norm2, test = (np.zeros((reps, len(taus))) for _ in range(3))
    for r in range(reps):
        beta_star = prob.target(g)
        path = RidgePath.from_svd(U, s, Vh, prob.labels(X, beta_star, g))
        for j, tau in enumerate(taus):
            lam[r, j] = path.lambda_for_train_error(tau)
            norm2[r, j] = path.norm2(lam[r, j])
            test[r, j] = float(prob.test_error(path.coef(lam[r, j]), beta_star))
    return {"lam": lam.mean(0).tolist(), "norm2": norm2.mean(0).tolist(), "test_error": test.mean(0).tolist(),
            "norm2_sem": (norm2.std(0) / math.sqrt(reps)).tolist()}
