"""What a practitioner runs on their own model and data.

``certify(model, loss_fn, inputs, targets)`` and ``find_redundancy(model, activation)`` are the two entry points of the
strongly-convex-neighbourhood health check; ``checkup(model, loss_fn, inputs, targets)`` puts every diagnostic
together (per-layer table, findings, JSON); see also :mod:`.spectrum`, :mod:`.norms`, :mod:`.curvature_path` and
:mod:`.krylov` (the Lanczos recurrence behind ``lanczos``, ``extreme_eigenvalues`` and ``spectral_density``).
"""

from .hessian import Certificate, HessianOperator, certify, extreme_eigenvalues, spectral_density
from .krylov import LanczosResult, lanczos
from .trace import TraceEstimate, hutchinson, hutchpp
from .norms import factor_balance, linear_chain_balance, norm_growth
from .spectrum import TailFit, powerlaw_exponent, tail_exponent
from .redundancy import (BlockRedundancy, RedundancyReport, block_redundancy, find_redundancy, neuron_slopes,
                         split_neuron, zero_eigenvalue_count, zero_eigenvalue_threshold)
from .weights import weight_layers
from .checkup import CheckupReport, Finding, checkup
from .monitor import TrainingMonitor

__all__ = ["Certificate", "HessianOperator", "certify", "extreme_eigenvalues", "spectral_density",
           "lanczos", "LanczosResult", "hutchinson", "hutchpp", "TraceEstimate",
           "RedundancyReport", "find_redundancy", "neuron_slopes", "split_neuron", "zero_eigenvalue_count",
           "zero_eigenvalue_threshold", "norm_growth", "factor_balance", "linear_chain_balance", "powerlaw_exponent",
           "TailFit", "tail_exponent", "BlockRedundancy", "block_redundancy", "weight_layers", "CheckupReport",
           "Finding", "checkup", "TrainingMonitor"]
