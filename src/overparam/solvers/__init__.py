"""How it is learned. Every solver returns a :class:`SolverResult` (the iterate, a status from
``converged | max_steps | diverged | stalled``, the reason in words, a per-step history); the first-order ones share
one loop, :func:`minimize`, built from an update rule, a step rule (:func:`armijo_step`) and a stopping rule."""

from .factorized import factorized_gd, gram_factorized_gd
from .gradient import armijo_step, minimize
from .module import batched_damped_newton, fit_module, newton_polish
from .newton import SampledHessian, solve
from .nuclear import convex_recovery, nuclear_least_squares
from .nuclear_interp import TraceInterpolator, min_trace_interpolation, recovery_threshold
from .result import STATUSES, SolverResult
from .ridge import RidgePath, ridge_at_tau

__all__ = ["SolverResult", "STATUSES", "minimize", "armijo_step", "factorized_gd", "gram_factorized_gd",
           "fit_module", "newton_polish", "batched_damped_newton", "solve", "SampledHessian",
           "nuclear_least_squares", "convex_recovery", "min_trace_interpolation", "TraceInterpolator",
           "recovery_threshold", "RidgePath", "ridge_at_tau"]
