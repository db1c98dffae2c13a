"""Linear operators: one base for the library's matrix-free maps, and curvature of any ``torch.nn.Module``.

- :class:`LinearOperator`: ``@`` on vectors and matrices, ``.T`` / ``adjoint()``, ``dense()``, ``to_scipy()``,
  ``cast()`` (float32 products under float64 arithmetic), dtype and device. The sensing operators of
  ``overparam.problems`` and the softmax design ``Matrix`` are ones too.
- :class:`HessianOperator`, :class:`GGNOperator`: the Hessian and the generalized Gauss–Newton matrix of a loss over
  tensors, dict batches or a data loader, per layer or block by name pattern, with batched products.
"""

from .curvature import GGNOperator, HessianOperator
from .operator import LinearOperator

__all__ = ["LinearOperator", "HessianOperator", "GGNOperator"]
