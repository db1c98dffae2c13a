"""What theory predicts, in NumPy/SciPy, no sampling; each function cites the equation it implements.

- :mod:`.quadratic_erm` (result 1): sharp asymptotics of ERM on quadratic networks, α = n/d², perfect recovery;
- :mod:`.sensing` (result 2): the imbalance recursion, the nuclear-norm phase transition;
- :mod:`.newton` (result 3): the sampled-Newton one-step bound and its cost model;
- :mod:`.ridge` (result 5): deterministic equivalents of ridge for any spectrum, the power-law limits.
"""

from .newton import iterations_to, step_bound, step_cost_ratio
from .quadratic_erm import (bayes_optimal_threshold, learned_spectrum, perfect_recovery_threshold, predict,
                            spectrum_quadrature)
from .ridge import (deterministic_equivalent, lambda_for_train_error_theory, powerlaw_interpolation_threshold,
                    powerlaw_tradeoff)
from .sensing import degrees_of_freedom, imbalance, imbalance_bound_increment, nuclear_phase_transition

__all__ = ["predict", "learned_spectrum", "perfect_recovery_threshold", "bayes_optimal_threshold",
           "spectrum_quadrature", "imbalance", "imbalance_bound_increment", "degrees_of_freedom",
           "nuclear_phase_transition", "step_bound", "iterations_to", "step_cost_ratio", "deterministic_equivalent",
           "lambda_for_train_error_theory", "powerlaw_interpolation_threshold", "powerlaw_tradeoff"]
