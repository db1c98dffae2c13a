"""Curvature of any ``torch.nn.Module`` at its current parameters, as matrix-free symmetric linear operators.

For a model f(x; θ) with output o = f(x; θ), a loss ℓ(o, y) and data split in batches b of n_b samples (N in all),
the full-data loss is

    L(θ) = Σ_b (n_b / N) ℓ_b(θ)   (``reduction="mean"``: each ℓ_b is a mean over its batch, batches of any size)
    L(θ) = Σ_b ℓ_b(θ)             (``reduction="sum"``: each ℓ_b is a sum over its batch),

so the stated reduction is the one ``loss_fn`` uses, and products average (or sum) correctly over batches of unequal
size. The operators, on the parameters chosen by ``param_filter`` (vectors of length ``dim``, in ``named_parameters``
order):

- :class:`HessianOperator`: H v = ∇²_θ L v, by double backward through each batch (the gradient's graph is built once
  per batch and shared by all the vectors of a product; with tensors taken as one batch it is kept between products,
  ``keep_graph``, below).
- :class:`GGNOperator`: the generalized Gauss–Newton G v = Σ_b w_b J_bᵀ H_ℓ,b J_b v, with J_b = ∂o/∂θ on batch b and
  H_ℓ,b = ∂²ℓ_b/∂o²: J v by the double-vjp trick (the vjp u ↦ Jᵀu is linear in u; its vjp is J v), H_ℓ (J v) by
  double backward of ℓ in o, Jᵀ(·) by one vjp. Positive semi-definite whenever ℓ is convex in o.

Data: tensors ``(inputs, targets)`` (optionally cut in ``batch_size`` pieces), ``inputs`` a dict of tensors passed
to the model as keyword arguments (as Hugging Face models take them) with ``targets`` a tensor, or ``inputs`` a
re-iterable of batches ``(x, y)`` (a ``DataLoader``, a list) with ``targets=None``, x a tensor or a dict of tensors.
``param_filter`` is a callable ``(name, parameter) -> bool``, or a shell-style name pattern (``fnmatch``:
``"layers.0.*"``, ``"*.weight"``) or a list of them; a pattern that selects no parameter is refused. Products of
several vectors (``op @ V``, V of shape (dim, k)) build each batch's graph once and run the product's backward
passes on all k vectors at once with autograd's batched gradients (``is_grads_batched``: vmap over the k vectors),
falling back to a loop over the same graph where vmap fails (in-place operations, custom functions that branch on
data); ``vmap=True`` asks for the batched products, ``vmap=False`` for the loop; the default (None) batches on a GPU
and loops on a CPU, where the loop measured faster (H V for k = 10 on the float32 MLP with N = 1024, one thread:
5.3 s looped against 9.1 s batched at 10⁶ parameters, 0.9 s against 1.3 s at 10⁵, load 4–5 on 2 cores).
``keep_graph`` (default: True exactly when the data is tensors taken as one batch): the batch's graph (forward, and
the gradient with its own graph) is built at the first product and every later product is one backward pass through
it (PyHessian keeps its graph the same way): about two gradients' work a product instead of three (top-10 of the
10⁵-parameter MLP of benchmarks/hessian_eigenvalues.py, one thread: 1.66 s against 2.91 s, same 58 products). The
graph holds the activations of all the data until the operator is dropped; ``at(θ)`` builds its own, and a parameter
changed in place after the first product makes the next product fail (autograd's saved-tensor check) rather than
mix old and new. Several batches or a loader rebuild each batch's graph at every product, so memory stays that of
one batch. Products run inside ``sdpa_kernel(SDPBackend.MATH)`` (``eager_attention=True``) so that attention, whose fused
kernels have no double backward, can be differentiated twice, and with TF32 off (``tf32=False``, the default: cuDNN
convolutions and CUDA matmuls in IEEE float32, the flags restored after each product), since torch runs cuDNN
convolutions in TF32 by default: on the 10⁷-parameter CNN of benchmarks/hessian_eigenvalues.py (one H200) TF32 moved
λ_min by 3.8e-4 relative (−0.696252 against −0.696515) and two libraries' products of one vector apart by 4.8e-5
(2.3e-7 in IEEE float32); ``tf32=True`` keeps TF32 (3.5× faster there).
:meth:`HessianOperator.check_deterministic` tells a product that changes from call to call (dropout left on) from one
that does not.
"""

from __future__ import annotations

import contextlib
import fnmatch
from typing import Any, Callable, Iterable, Iterator

import torch
from torch.func import functional_call

from ..validation import (POSITIVE, POSITIVE_INT, Array, InstanceOf, IsCallable, Options, Seed, check, model_data,
                          validate_params)
from .operator import LinearOperator

__all__ = ["HessianOperator", "GGNOperator"]

_PARAMS = {"loss_fn": IsCallable(), "param_filter": [None, IsCallable(), InstanceOf(str, list, tuple,
                                                                                    what="name pattern or list")],
           "batch_size": [None, POSITIVE_INT], "reduction": Options(("mean", "sum")),
           "output_fn": [None, IsCallable()], "eager_attention": InstanceOf(bool),
           "vmap": [None, InstanceOf(bool)], "keep_graph": [None, InstanceOf(bool)], "tf32": InstanceOf(bool)}

Batch = tuple[Any, Any, int]  # (x: tensor or dict of tensors, y, n_b)


def _select(model: torch.nn.Module, param_filter) -> list[tuple[str, torch.nn.Parameter]]:
    """The (name, parameter) pairs ``param_filter`` selects: a callable, a pattern or a list of patterns (fnmatch)."""
    named = list(model.named_parameters())
    if param_filter is None:
        return named
    if callable(param_filter):
        chosen = [(n, p) for n, p in named if param_filter(n, p)]
        if not chosen:
            raise ValueError(f"param_filter: selects none of the model's {len(named)} parameters "
                             f"(got {param_filter!r})")
        return chosen
    patterns = [param_filter] if isinstance(param_filter, str) else list(param_filter)
    for pat in patterns:
        if not isinstance(pat, str):
            raise ValueError(f"param_filter: patterns must be strings (got {pat!r})")
        if not any(fnmatch.fnmatchcase(n, pat) for n, _ in named):
            like = ", ".join(n for n, _ in named[:3])
            raise ValueError(f"param_filter: pattern {pat!r} matches no parameter name (got {pat!r}; names are like "
                             f"{like})")
    return [(n, p) for n, p in named if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]


def _length(x: Any, y: Any) -> int:
    """n_b: the batch's number of samples (first axis of y, else of x or of x's first tensor)."""
    for t in (y, x):
        if isinstance(t, dict):
            t = next(iter(t.values()))
        if isinstance(t, torch.Tensor) and t.ndim > 0:
            return len(t)
    raise ValueError(f"inputs: cannot tell a batch's size (got targets of type {type(y).__name__})")


def _rows(x: Any, i: int, j: int) -> Any:
    return {k: v[i:j] for k, v in x.items()} if isinstance(x, dict) else x[i:j]


@contextlib.contextmanager
def _ieee_float32() -> Iterator[None]:
    """cuDNN convolutions and CUDA matmuls without TF32 for the duration; the caller's flags restored after."""
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    before = [f.allow_tf32 for f in flags]
    for f in flags:
        f.allow_tf32 = False
    try:
        yield
    finally:
        for f, b in zip(flags, before):
            f.allow_tf32 = b


class _ModelCurvature(LinearOperator):
    """What the Hessian and the GGN share: the data, the parameter selection, the weighting over batches."""

    symmetric = True

    @validate_params(_PARAMS)
    def __init__(self, model: torch.nn.Module, loss_fn: Callable, inputs: Any, targets: Any = None,
                 param_filter: Callable | str | list[str] | None = None, batch_size: int | None = None, *,
                 reduction: str = "mean", output_fn: Callable | None = None, eager_attention: bool = True,
                 vmap: bool | None = None, keep_graph: bool | None = None, tf32: bool = False):
        check("model", model, InstanceOf(torch.nn.Module, what="torch.nn.Module"))
        if not list(model.parameters()):
            raise ValueError(f"model: has no parameters (got a {type(model).__name__} without any)")
        named = _select(model, param_filter)
        self.model, self.loss_fn, self.output_fn = model, loss_fn, output_fn
        self.reduction, self.eager_attention, self.tf32 = reduction, eager_attention, tf32
        self.names = [n for n, _ in named]
        self.params = [p.detach() for _, p in named]
        self.frozen = {n: p.detach() for n, p in model.named_parameters() if n not in set(self.names)}
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        self.shape = (self.dim, self.dim)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.vmap = vmap if vmap is not None else self.device.type == "cuda"  # module docstring: the loop on a CPU
        self._set_data(inputs, targets, batch_size)
        self._probe()
        # module docstring: the one batch's graph is kept between products (tensors in a single batch only)
        single = self.loader is None and self.batch_size >= len(self.targets)
        if keep_graph and not single:
            raise ValueError("keep_graph: only for tensors taken as one batch (batch_size None or ≥ the number of "
                             f"samples, {len(self.targets) if self.loader is None else 'not a loader'})")
        self.keep_graph = single if keep_graph is None else keep_graph
        self._kept = None

    # --- data ------------------------------------------------------------------------------------------------------
    def _set_data(self, inputs: Any, targets: Any, batch_size: int | None) -> None:
        self.loader = None
        if targets is None:  # an iterable of (x, y) batches
            if batch_size is not None:
                raise ValueError(f"batch_size: applies to tensors, not to batches from a loader (got {batch_size})")
            if isinstance(inputs, (torch.Tensor, dict, str)) or not isinstance(inputs, Iterable):
                raise ValueError(f"targets: required unless inputs is a loader of (x, y) batches (got None with "
                                 f"inputs of type {type(inputs).__name__})")
            if iter(inputs) is inputs:
                raise ValueError("inputs: must be re-iterable (a DataLoader or a list of batches), products pass over "
                                 f"it many times (got a one-shot {type(inputs).__name__})")
            self.loader, self.inputs, self.targets, self.batch_size = inputs, None, None, None
            return
        if isinstance(inputs, dict):
            self.inputs, self.targets = self._dict_data(inputs, targets)
        else:
            self.inputs, self.targets = model_data(self.model, inputs, targets)
        self.batch_size = batch_size or len(self.targets)

    def _dict_data(self, inputs: dict, targets: Any) -> tuple[dict, torch.Tensor]:
        """Keyword inputs: tensors of one length N (floating ones in the parameters' dtype), targets (N, ...)."""
        if not inputs:
            raise ValueError("inputs: must not be an empty dict (got {})")
        y = check("targets", targets, Array(to="torch", keep_float32=True, integers="keep"))
        x = {k: self._to_model(check(f"inputs[{k!r}]", v, Array(to="torch", keep_float32=True, integers="keep")))
             for k, v in inputs.items()}
        for k, v in x.items():
            if v.ndim == 0 or len(v) != len(y):
                raise ValueError(f"inputs: every entry must have targets' length {len(y)} along its first axis "
                                 f"(got {k!r} of shape {tuple(v.shape)})")
        return x, self._to_model(y)

    def _to_model(self, t: Any) -> Any:
        """A batch's tensor on the parameters' device, floating ones in their dtype; dicts entry by entry."""
        if isinstance(t, dict):
            return {k: self._to_model(v) for k, v in t.items()}
        if isinstance(t, torch.Tensor):
            return t.to(self.device, self.dtype) if t.is_floating_point() else t.to(self.device)
        return t

    def _batches(self) -> Iterator[Batch]:
        """(x, y, n_b) for each batch of the data."""
        if self.loader is None:
            N = len(self.targets)
            for i in range(0, N, self.batch_size):
                j = min(i + self.batch_size, N)
                yield _rows(self.inputs, i, j), self.targets[i:j], j - i
            return
        for batch in self.loader:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(f"inputs: batches must be (x, y) pairs (got a {type(batch).__name__}"
                                 f"{' of length ' + str(len(batch)) if isinstance(batch, (tuple, list)) else ''})")
            x, y = self._to_model(batch[0]), self._to_model(batch[1])
            yield x, y, _length(x, y)

    def _probe(self) -> None:
        """The loss of the first batch (its first two samples, for tensors) must be a scalar."""
        x, y, n = next(iter(self._batches()), (None, None, 0))
        if n == 0:
            raise ValueError(f"inputs: the data yields no batches (got an empty {type(self.loader).__name__})")
        if self.loader is None:
            x, y = _rows(x, 0, min(2, n)), y[: min(2, n)]
        with torch.no_grad(), self._context():
            out = self._output(self.params, x)
            if self.needs_tensor_output and not isinstance(out, torch.Tensor):
                raise ValueError(f"output_fn: needed to map the model's output to a tensor (got a "
                                 f"{type(out).__name__}; pass output_fn=lambda o: o.logits or similar)")
            loss = self.loss_fn(out, y)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ValueError(f"loss_fn: must return a scalar, got shape {tuple(getattr(loss, 'shape', ()))}")

    # --- the model as a function of the selected parameters --------------------------------------------------------
    needs_tensor_output = False

    def _context(self) -> contextlib.ExitStack:
        """What every product, loss and gradient runs inside (module docstring): the math attention kernel
        (``eager_attention``) and IEEE float32 (``tf32=False``)."""
        stack = contextlib.ExitStack()
        if self.eager_attention:
            from torch.nn.attention import SDPBackend, sdpa_kernel
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        if not self.tf32:
            stack.enter_context(_ieee_float32())
        return stack

    def _output(self, params: list[torch.Tensor], x: Any) -> Any:
        """f(x; θ) with θ = ``params``; buffers are copied in training mode so that batch norm's running statistics
        of the user's model are left as they were."""
        state = {**self.frozen, **dict(zip(self.names, params))}
        if self.model.training:
            state.update({n: b.clone() for n, b in self.model.named_buffers()})
        out = (functional_call(self.model, state, (), x) if isinstance(x, dict)
               else functional_call(self.model, state, (x,)))
        return out if self.output_fn is None else self.output_fn(out)

    def _leaves(self) -> list[torch.Tensor]:
        return [p.detach().requires_grad_(True) for p in self.params]

    def _unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [c.view_as(p) for c, p in zip(torch.split(v, self.sizes), self.params)]

    def _flat(self, parts: Iterable[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in parts])

    def _accumulate(self, fn: Callable[[Any, Any], torch.Tensor]) -> torch.Tensor:
        """Σ_b w_b fn(x_b, y_b) with w_b = n_b/N (mean reduction) or 1 (sum)."""
        total, N = None, 0
        with self._context():
            for x, y, n in self._batches():
                r = fn(x, y)
                r = r * n if self.reduction == "mean" else r
                total, N = (r if total is None else total + r), N + n
        return total / N if self.reduction == "mean" else total

    # --- the public face -------------------------------------------------------------------------------------------
    def flat_params(self) -> torch.Tensor:
        """θ, the selected parameters as one vector (dim,)."""
        return self._flat(self.params)

    def at(self, theta: torch.Tensor):
        """The same operator at selected parameters ``theta`` (dim,), without touching the model."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other._kept = None  # a kept graph belongs to the parameters it was built at
        other.params = self._unflatten(torch.as_tensor(theta).to(self.device, self.dtype).detach())
        return other

    def loss(self) -> float:
        """L(θ) over the whole data (module docstring)."""
        with torch.no_grad():
            return float(self._accumulate(lambda x, y: self.loss_fn(self._output(self.params, x), y)))

    def gradient(self) -> torch.Tensor:
        """∇_θ L (dim,)."""
        def one(x, y):
            ps = self._leaves()
            gs = torch.autograd.grad(self.loss_fn(self._output(ps, x), y), ps, allow_unused=True,
                                     materialize_grads=True)
            return self._flat(gs)
        return self._accumulate(one)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """A v for v (dim,)."""
        v = torch.as_tensor(v).to(self.device, self.dtype)
        return self._accumulate(lambda x, y: self._products(x, y, v[:, None])[:, 0])

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """A V for V (dim, k): one graph per batch, the k products batched by vmap (module docstring)."""
        V = torch.as_tensor(V).to(self.device, self.dtype)
        return self._accumulate(lambda x, y: self._products(x, y, V))

    def dense(self, block: int = 64) -> torch.Tensor:
        """The (dim, dim) matrix, by products with ``block`` columns of the identity at a time, symmetrized."""
        A = super().dense(block)
        return 0.5 * (A + A.T)

    def _products(self, x: Any, y: Any, V: torch.Tensor) -> torch.Tensor:
        """The batch's operator times V (dim, k): ``_graph`` once, then its product on all k columns at once
        (autograd's batched gradients, vmap over the k vectors) or one column at a time on the same graph."""
        if self.keep_graph:
            self._kept = self._kept or self._graph(x, y)
            product = self._kept
        else:
            product = self._graph(x, y)
        if V.shape[1] > 1 and self.vmap:
            try:
                return product(V, True)
            except Exception:  # noqa: BLE001 - the model does not allow vmap: the loop below gives the same numbers
                self.vmap = False
        return torch.stack([product(V[:, j], False) for j in range(V.shape[1])], 1)

    def _split(self, V: torch.Tensor, batched: bool) -> list[torch.Tensor]:
        """V (dim,) as per-parameter views, or V (dim, k) as per-parameter (k, *shape) tensors."""
        if not batched:
            return self._unflatten(V)
        return [c.T.reshape(V.shape[1], *p.shape) for c, p in zip(torch.split(V, self.sizes), self.params)]

    def _join(self, parts: Iterable[torch.Tensor], batched: bool) -> torch.Tensor:
        """The inverse of :meth:`_split`: (dim,) or (dim, k)."""
        if not batched:
            return self._flat(parts)
        return torch.cat([t.reshape(t.shape[0], -1) for t in parts], 1).T

    def _graph(self, x: Any, y: Any) -> Callable[[torch.Tensor, bool], torch.Tensor]:
        """The batch's graph, and ``product(V, batched)``: the operator times v (dim,), or V (dim, k) batched."""
        raise NotImplementedError

    @validate_params({"rtol": [None, POSITIVE], "seed": Seed()})
    def check_deterministic(self, rtol: float | None = None, seed: int = 0) -> float:
        """Two products A v with the same random v (and the loss twice) must agree to ``rtol`` (default √eps of the
        dtype: 1.5e-8 in float64, 3.5e-4 in float32); raises ``ValueError`` naming what differed otherwise (dropout
        left on, a shuffling loader that drops or resamples data, nondeterministic kernels). Returns the larger of
        the two relative differences."""
        rtol = rtol if rtol is not None else torch.finfo(self.dtype).eps ** 0.5
        g = torch.Generator().manual_seed(seed)
        v = torch.randn(self.dim, generator=g, dtype=torch.float64).to(self.device, self.dtype)
        l1, l2 = self.loss(), self.loss()
        d_loss = abs(l1 - l2) / max(abs(l1), torch.finfo(self.dtype).tiny)
        self._kept = None
        a = self.matvec(v)
        self._kept = None  # the second product from a graph of its own: a kept one would repeat the first
        b = self.matvec(v)
        d_prod = float((a - b).norm() / a.norm().clamp_min(torch.finfo(self.dtype).tiny))
        for what, d in (("the loss", d_loss), ("products with the same vector", d_prod)):
            if not d <= rtol:
                raise ValueError(f"model: {what} differ between two evaluations (got relative difference {d:.3g} > "
                                 f"rtol {rtol:.3g}); dropout or other randomness left on (model.eval()), or a loader "
                                 "that changes the data between passes?")
        return max(d_loss, d_prod)


class HessianOperator(_ModelCurvature):
    """H = ∇²_θ L(θ) at the model's current parameters (module docstring), a symmetric :class:`LinearOperator`.

    ``HessianOperator(model, loss_fn, inputs, targets=None, param_filter=None, batch_size=None, *, reduction="mean",
    output_fn=None, eager_attention=True, vmap=None, keep_graph=None)``: ``loss_fn(output, y)`` a scalar with the stated
    ``reduction``; ``output_fn`` maps the model's output before the loss (e.g. ``lambda o: o.logits``). Shapes:
    vectors (dim,), matrices (dim, k); products in the parameters' dtype and on their device."""

    def _graph(self, x, y):
        ps = self._leaves()
        loss = self.loss_fn(self._output(ps, x), y)
        gs = torch.autograd.grad(loss, ps, create_graph=True, allow_unused=True, materialize_grads=True)

        def hvp(V: torch.Tensor, batched: bool) -> torch.Tensor:  # H V: the gradient's vjp
            return self._join(torch.autograd.grad(gs, ps, self._split(V, batched), retain_graph=True,
                                                  allow_unused=True, materialize_grads=True,
                                                  is_grads_batched=batched), batched)
        return hvp


class GGNOperator(_ModelCurvature):
    """G = Σ_b w_b J_bᵀ H_ℓ,b J_b, the generalized Gauss–Newton matrix (module docstring), a symmetric
    :class:`LinearOperator`; same arguments as :class:`HessianOperator`. The model's output (after ``output_fn``)
    must be a tensor o, and ``loss_fn(o, y)`` is differentiated twice in o only."""

    needs_tensor_output = True

    def _graph(self, x, y):
        ps = self._leaves()
        out = self._output(ps, x)
        g_out, = torch.autograd.grad(self.loss_fn(out, y), out, create_graph=True)
        u = torch.zeros_like(out, requires_grad=True)
        jt_u = torch.autograd.grad(out, ps, u, create_graph=True, allow_unused=True, materialize_grads=True)

        def ggnvp(V: torch.Tensor, batched: bool) -> torch.Tensor:
            jv, = torch.autograd.grad(jt_u, u, self._split(V, batched), retain_graph=True,
                                      is_grads_batched=batched)  # J v (double vjp)
            hjv, = torch.autograd.grad(g_out, out, jv, retain_graph=True, allow_unused=True, materialize_grads=True,
                                       is_grads_batched=batched)
            return self._join(torch.autograd.grad(out, ps, hjv, retain_graph=True, allow_unused=True,
                                                  materialize_grads=True, is_grads_batched=batched), batched)
        return ggnvp
