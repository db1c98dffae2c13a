"""What a practitioner runs on their own model and data.

``certify(model, loss_fn, inputs, targets)`` and ``find_redundancy(model, activation)`` are the two entry points of the
strongly-convex-neighbourhood health check; see also :mod:`.spectrum`, :mod:`.norms`, :mod:`.curvature_path`.
"""

from .hessian import Certificate, HessianOperator, certify, extreme_eigenvalues, spectral_density
from .lanczos import LanczosResult, lanczos
from .trace import TraceEstimate, hutchinson, hutchpp
from .norms import factor_balance, linear_chain_balance, norm_growth
from .spectrum import powerlaw_exponent
from .redundancy import (RedundancyReport, find_redundancy, neuron_slopes, split_neuron, zero_eigenvalue_count,
                         zero_eigenvalue_threshold)

__all__ = ["Certificate", "HessianOperator", "certify", "extreme_eigenvalues", "spectral_density",
           "lanczos", "LanczosResult", "hutchinson", "hutchpp", "TraceEstimate",
           "RedundancyReport", "find_redundancy", "neuron_slopes", "split_neuron", "zero_eigenvalue_count",
           "zero_eigenvalue_threshold", "norm_growth", "factor_balance", "linear_chain_balance", "powerlaw_exponent"]
