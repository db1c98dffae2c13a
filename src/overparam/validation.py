"""Checks at the door, one mechanism: declarative constraints per parameter, in the spirit of scikit-learn's
``validate_params``.

A public function declares what each parameter may be::

    @validate_params({"lam": Interval(Real, 0, None, closed="left"),
                      "X": Array(ndim=2, to="torch"),
                      "y": Array(ndim=1, to="torch", same_length_as="X"),
                      "method": Options({"gd", "adam"}),
                      "g": Seed(to="torch")})
    def fit(X, y, lam, method="gd", g=0): ...

and every refusal is one ``ValueError`` line that starts with the parameter's name, says what is allowed and what was
given: ``"lam: must be ≥ 0 (got -1.0)"``, ``"X: must be finite (got 1 NaN or inf of 12 entries)"``,
``"method: must be one of 'adam', 'gd' (got 'foo')"``. A list of constraints means "any of these" (``None`` in the
list admits ``None``). Constraints are checked in the order of the dict, so ``same_length_as`` sees the other
argument already converted. :func:`check` applies one constraint inside a function body (for values computed there);
:func:`positive`, :func:`positive_int`, :func:`in_range`, :func:`finite_array` and :func:`choice` are shorthands
for the common ones.

**Arrays as users hold them** (:class:`Array`): NumPy arrays, torch tensors (CPU or a GPU) and Python sequences are
accepted. The dtype rule: integers and booleans are converted to floating point, and the result is **float64 by
default**; a float32 input stays float32 only where the constraint says ``keep_float32=True`` (a function whose
docstring promises to work in its input's precision). ``to="torch"`` returns a tensor on the input's device (CPU
for NumPy and sequences), ``to="numpy"`` a NumPy array, ``to=None`` only checks. NaN or inf in a data argument is
refused (``finite=True``, the default), never propagated; empty arrays are refused unless ``non_empty=False``.

**Seeds** (:class:`Seed`): an int, a NumPy ``Generator`` or a torch ``Generator`` wherever randomness is drawn;
``Seed(to="int")`` hands the function an int (a Generator gives one draw from itself), ``Seed(to="torch")`` a
torch ``Generator`` (an int seeds a fresh CPU one exactly as :func:`overparam.backend.generator` does).
"""

from __future__ import annotations

import functools
import inspect
import math
from numbers import Integral, Real
from typing import Any, Callable, Iterable

import numpy as np
import torch

__all__ = ["validate_params", "check", "Interval", "Options", "Array", "Seed", "InstanceOf", "IsCallable",
           "positive", "positive_int", "in_range", "finite_array", "choice", "model_data", "Integral", "Real",
           "POSITIVE", "NON_NEGATIVE", "POSITIVE_INT", "NON_NEGATIVE_INT"]


def _fmt(x: float) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"


def _given(value: Any) -> str:
    """What was given, short: arrays by shape and dtype, everything else by repr (cut at 60 characters)."""
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim > 0:
        return f"{type(value).__name__} of shape {tuple(value.shape)}, dtype {value.dtype}"
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


class Constraint:
    """One admissible kind of value. ``convert(name, value, args)`` returns the (converted) value or raises
    ``ValueError`` whose message, after ``name: ``, says what is allowed and what was given."""

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            self.convert("_", value, {})
            return True
        except ValueError:
            return False

    def convert(self, name: str, value: Any, args: dict[str, Any]) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class _NoneConstraint(Constraint):
    def convert(self, name, value, args):
        if value is not None:
            raise ValueError(f"{name}: must be None (got {_given(value)})")
        return None

    def describe(self) -> str:
        return "None"


class Interval(Constraint):
    """A number of ``kind`` (``Real`` or ``Integral``) in an interval; ``low``/``high`` None for unbounded;
    ``closed`` in {'left', 'right', 'both', 'neither'}. Booleans and NaN are refused; an ``Integral`` accepts a float
    with an integer value (3.0). Returns a Python float or int."""

    def __init__(self, kind: type, low: float | None, high: float | None, closed: str = "neither"):
        if kind not in (Real, Integral):
            raise TypeError("Interval: kind must be numbers.Real or numbers.Integral")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed: must be one of left, right, both, neither (got {closed!r})")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def _bounds_text(self) -> str:
        lc, rc = self.closed in ("left", "both"), self.closed in ("right", "both")
        if self.high is None and self.low is None:
            return ""
        if self.high is None:
            return f"{'≥' if lc else '>'} {_fmt(self.low)}"
        if self.low is None:
            return f"{'≤' if rc else '<'} {_fmt(self.high)}"
        return f"in {'[' if lc else '('}{_fmt(self.low)}, {_fmt(self.high)}{']' if rc else ')'}"

    def describe(self) -> str:
        infinite = self.high == math.inf and self.closed in ("right", "both")
        what = "an integer" if self.kind is Integral else "a number" if infinite else "a finite number"
        b = self._bounds_text()
        return f"{what} {b}" if b else what

    def _number(self, name: str, value: Any) -> float | int:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        elif isinstance(value, np.ndarray) and value.size == 1 and value.ndim == 0:
            value = value.item()
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number)):
            raise ValueError(f"{name}: must be {self.describe()} (got {_given(value)})")
        if self.kind is Integral:
            if isinstance(value, (Integral, np.integer)):
                return int(value)
            v = float(value)
            if not v.is_integer():
                raise ValueError(f"{name}: must be {self.describe()} (got {value!r})")
            return int(v)
        v = float(value)
        if math.isnan(v) or (math.isinf(v) and not self.contains(v)):
            raise ValueError(f"{name}: must be {self.describe()} (got {v})")
        return v

    def contains(self, v):
        """Whether ``v`` (a number or a NumPy array, elementwise) lies in the interval."""
        lc, rc = self.closed in ("left", "both"), self.closed in ("right", "both")
        lo_ok = True if self.low is None else (v >= self.low if lc else v > self.low)
        hi_ok = True if self.high is None else (v <= self.high if rc else v < self.high)
        return lo_ok & hi_ok

    def convert(self, name, value, args):
        v = self._number(name, value)
        if not self.contains(v):
            what = "an integer " if self.kind is Integral else ""
            raise ValueError(f"{name}: must be {what}{self._bounds_text()} (got {v})")
        return v


class Options(Constraint):
    """One of a set of names (``which``, ``kind``, ``method``…)."""

    def __init__(self, values: Iterable[Any]):
        self.values = tuple(values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def convert(self, name, value, args):
        try:
            ok = value in self.values
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"{name}: must be {self.describe()} (got {_given(value)})")
        return value


class InstanceOf(Constraint):
    """An instance of one of ``types`` (``what`` names it in the message)."""

    def __init__(self, *types: type, what: str | None = None):
        self.types = types
        self.what = what or " or ".join(t.__name__ for t in types)

    def describe(self) -> str:
        return f"a {self.what}"

    def convert(self, name, value, args):
        if not isinstance(value, self.types):
            raise ValueError(f"{name}: must be {self.describe()} (got {type(value).__name__})")
        return value


class IsCallable(Constraint):
    """A callable."""

    def describe(self) -> str:
        return "a callable"

    def convert(self, name, value, args):
        if not callable(value):
            raise ValueError(f"{name}: must be a callable (got {_given(value)})")
        return value


class Seed(Constraint):
    """A seed: an int ≥ 0, a NumPy ``Generator`` or a torch ``Generator`` (module docstring). ``to`` is 'int' or
    'torch'; ``device_of`` names an argument whose device a torch generator made from an int or NumPy generator is
    placed on."""

    def __init__(self, to: str = "int", device_of: str | None = None):
        if to not in ("int", "torch"):
            raise ValueError(f"to: must be one of int, torch (got {to!r})")
        self.to, self.device_of = to, device_of

    def describe(self) -> str:
        return "an int ≥ 0, a numpy.random.Generator or a torch.Generator"

    def convert(self, name, value, args):
        if isinstance(value, torch.Generator):
            if self.to == "torch":
                return value
            return int(torch.randint(0, 2**62, (1,), generator=value, device=value.device))
        if isinstance(value, np.random.Generator):
            seed = int(value.integers(0, 2**62))
        elif isinstance(value, (Integral, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 0:
            seed = int(value)
        else:
            raise ValueError(f"{name}: must be {self.describe()} (got {_given(value)})")
        if self.to == "int":
            return seed
        dev = _device_of(args.get(self.device_of)) if self.device_of else torch.device("cpu")
        return torch.Generator(device=dev).manual_seed(seed)


def _device_of(x: Any) -> torch.device:
    if isinstance(x, torch.Tensor):
        return x.device
    if isinstance(x, torch.Generator):
        return x.device
    dev = getattr(x, "device", None)
    return dev if isinstance(dev, torch.device) else torch.device("cpu")


def _dims_text(ndim: int | tuple[int, ...]) -> str:
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    return " or ".join(f"{d}-D" for d in dims)


class Array(Constraint):
    """An array: NumPy array, torch tensor or Python sequence of numbers (module docstring for the dtype rule).

    ``ndim`` an int or a tuple of admissible ranks; ``shape`` a tuple whose entries are ints, None (any) or the
    name of another argument whose length that axis must equal; ``finite`` refuses NaN and inf; ``non_empty``
    refuses zero entries; ``same_length_as`` names an argument whose first axis this one's must equal (and whose
    device it must share, for tensors); ``elements`` an :class:`Interval` every entry must lie in; ``to`` 'numpy',
    'torch' or None (check only); ``keep_float32`` keeps a float32 input in float32; ``integers='keep'`` keeps an
    integer array as it is (class labels)."""

    def __init__(self, ndim: int | tuple[int, ...] | None = None, *, shape: tuple | None = None, finite: bool = True,
                 non_empty: bool = True, same_length_as: str | None = None, elements: Interval | None = None,
                 to: str | None = None, keep_float32: bool = False, integers: str = "float"):
        self.ndim, self.shape, self.finite, self.non_empty = ndim, shape, finite, non_empty
        self.same_length_as, self.elements, self.to = same_length_as, elements, to
        self.keep_float32, self.integers = keep_float32, integers

    def describe(self) -> str:
        return f"a {_dims_text(self.ndim) + ' ' if self.ndim is not None else ''}array (NumPy, torch or a sequence)"

    def _as_array(self, name: str, value: Any) -> np.ndarray | torch.Tensor:
        if isinstance(value, torch.Tensor):
            if value.is_sparse:
                raise ValueError(f"{name}: must be a dense array (got a sparse tensor)")
            if value.is_complex():
                raise ValueError(f"{name}: must be real (got dtype {value.dtype})")
            return value.detach()
        if isinstance(value, (str, bytes, dict, set)) or value is None or callable(value):
            raise ValueError(f"{name}: must be {self.describe()} (got {_given(value)})")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            raise ValueError(f"{name}: must be {self.describe()} (got a ragged or non-numeric sequence)") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name}: must be {self.describe()} of numbers (got dtype {arr.dtype})")
        if np.iscomplexobj(arr):
            raise ValueError(f"{name}: must be real (got dtype {arr.dtype})")
        return arr

    def _float(self, arr):
        """The dtype rule: float64, or float32 kept where promised; integers to float unless kept."""
        is_t = isinstance(arr, torch.Tensor)
        floating = arr.is_floating_point() if is_t else np.issubdtype(arr.dtype, np.floating)
        if not floating and self.integers == "keep":
            return arr
        if arr.dtype == (torch.float64 if is_t else np.float64):
            return arr
        if self.keep_float32 and arr.dtype == (torch.float32 if is_t else np.float32):
            return arr
        return arr.to(torch.float64) if is_t else arr.astype(np.float64, copy=False)

    def convert(self, name, value, args):
        arr = self._float(self._as_array(name, value))
        shape = tuple(arr.shape)
        if self.ndim is not None:
            dims = (self.ndim,) if isinstance(self.ndim, int) else tuple(self.ndim)
            if len(shape) not in dims:
                raise ValueError(f"{name}: must be {_dims_text(self.ndim)} (got shape {shape})")
        if self.shape is not None:
            self._check_shape(name, shape, args)
        if self.non_empty and math.prod(shape) == 0:
            raise ValueError(f"{name}: must not be empty (got shape {shape})")
        if self.same_length_as is not None and self.same_length_as in args:
            other = args[self.same_length_as]
            if len(shape) == 0 or len(other) != shape[0]:
                raise ValueError(f"{name}: must have {self.same_length_as}'s length {len(other)} along its first axis "
                                 f"(got shape {shape})")
        if self.finite:
            _check_finite(name, arr)
        if self.elements is not None:
            self._check_elements(name, arr)
        return self._to(name, arr, args)

    def _check_shape(self, name: str, shape: tuple, args: dict[str, Any]) -> None:
        want = []
        for s in self.shape:
            want.append(len(args[s]) if isinstance(s, str) and s in args else s if not isinstance(s, str) else None)
        if len(want) != len(shape) or any(w is not None and w != g for w, g in zip(want, shape)):
            txt = "(" + ", ".join("any" if w is None else str(w) for w in want) + ("," if len(want) == 1 else "") + ")"
            raise ValueError(f"{name}: must have shape {txt} (got shape {shape})")

    def _check_elements(self, name: str, arr) -> None:
        vals = arr.detach().cpu().double().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr, dtype=float)
        bad = vals[~self.elements.contains(vals)]
        if bad.size:
            more = f" and {bad.size - 1} more" if bad.size > 1 else ""
            raise ValueError(f"{name}: every entry must be {self.elements._bounds_text()} (got {bad[0]:g}{more})")

    def _to(self, name: str, arr, args: dict[str, Any]):
        if self.to == "numpy":
            return arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
        if self.to == "torch":
            t = arr if isinstance(arr, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(arr))
            ref = self.same_length_as or next((s for s in (self.shape or ()) if isinstance(s, str)), None)
            if ref is not None and isinstance(args.get(ref), torch.Tensor):
                dev = args[ref].device
                if isinstance(arr, torch.Tensor) and arr.device != dev:
                    raise ValueError(f"{name}: must be on {ref}'s device {dev} (got {arr.device})")
                t = t.to(dev)
            return t
        return arr


def _check_finite(name: str, x: Any) -> None:
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point() or x.is_complex()) or bool(torch.isfinite(x).all()):
            return
        bad = int((~torch.isfinite(x)).sum())
    else:
        a = np.asarray(x)
        if not np.issubdtype(a.dtype, np.inexact) or np.isfinite(a).all():
            return
        bad = int((~np.isfinite(a)).sum())
    if bad:
        total = math.prod(x.shape)
        raise ValueError(f"{name}: contains NaN or inf; must be finite (got {bad} of {total} entries non-finite)")


def _as_constraints(spec: Any) -> list[Constraint]:
    items = spec if isinstance(spec, list) else [spec]
    return [_NoneConstraint() if c is None else c for c in items]


def check(name: str, value: Any, spec: Constraint | list, args: dict[str, Any] | None = None) -> Any:
    """Apply ``spec`` (a constraint, or a list of them meaning any-of) to ``value``; return the converted value or
    raise one ``ValueError`` line starting with ``name``."""
    cons = _as_constraints(spec)
    errors = []
    for c in cons:
        try:
            return c.convert(name, value, args or {})
        except ValueError as e:
            errors.append(str(e))
    if len(cons) == 1:
        raise ValueError(errors[0])
    allowed = " or ".join(c.describe() for c in cons)
    raise ValueError(f"{name}: must be {allowed} (got {_given(value)})")


def validate_params(constraints: dict[str, Constraint | list]) -> Callable:
    """Decorator: check (and convert) the named arguments of a function or method by their constraints before the
    body runs (module docstring). Arguments left at their defaults are checked too."""
    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        unknown = set(constraints) - set(sig.parameters)
        if unknown:
            raise TypeError(f"validate_params: {fn.__qualname__} has no parameter(s) {sorted(unknown)}")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{fn.__name__}(): {e}") from None
            bound.apply_defaults()
            for name, spec in constraints.items():
                bound.arguments[name] = check(name, bound.arguments[name], spec, bound.arguments)
            return fn(*bound.args, **bound.kwargs)

        wrapper.__signature__ = sig  # type: ignore[attr-defined]
        wrapper.parameter_constraints = constraints  # type: ignore[attr-defined]
        return wrapper
    return deco


def model_data(model: torch.nn.Module, inputs: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Data for a ``torch.nn.Module``: ``inputs`` (N, ...) and ``targets`` (N, ...) as tensors (NumPy, torch or
    sequences), finite and non-empty, with the same N. Inputs (integers included) and floating targets take the dtype
    of the model's parameters (a float32 model gets float32 data); integer targets (class labels) are kept, and so are
    integer inputs of a model with an ``nn.Embedding`` (token indices). NumPy data moves to the parameters' device; a
    tensor on another device is refused."""
    check("model", model, InstanceOf(torch.nn.Module, what="torch.nn.Module"))
    p = next(model.parameters(), None)
    if p is None:
        raise ValueError(f"model: has no parameters (got a {type(model).__name__} without any)")
    indices = any(isinstance(m, torch.nn.Embedding) for m in model.modules())
    x = check("inputs", inputs, Array(to="torch", keep_float32=True, integers="keep" if indices else "float"))
    y = check("targets", targets, Array(to="torch", keep_float32=True, integers="keep", same_length_as="inputs"),
              {"inputs": x})
    out = []
    for name, t, given in (("inputs", x, inputs), ("targets", y, targets)):
        if isinstance(given, torch.Tensor) and given.device.type != p.device.type:
            raise ValueError(f"{name}: must be on the model's device {p.device} (got {given.device})")
        out.append(t.to(p.device, p.dtype) if t.is_floating_point() else t.to(p.device))
    return out[0], out[1]


#: the constraints most parameters need
POSITIVE = Interval(Real, 0, None, closed="neither")
NON_NEGATIVE = Interval(Real, 0, None, closed="left")
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
NON_NEGATIVE_INT = Interval(Integral, 0, None, closed="left")


# --- shorthands on top of the mechanism (kept for every caller) ----------------------------------------------------
def positive_int(name: str, value: Any) -> int:
    """``value`` as an int ≥ 1, else ``ValueError('name: must be an integer ≥ 1 (got ...)')``."""
    return check(name, value, Interval(Integral, 1, None, closed="left"))


def positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (≥ 0 with ``allow_zero``), else ``ValueError('name: must be > 0 (got ...)')``."""
    return check(name, value, Interval(Real, 0, None, closed="left" if allow_zero else "neither"))


def in_range(name: str, value: Any, low: float, high: float, closed: str = "neither") -> float:
    """``value`` as a float inside (low, high); ``closed`` in {'neither', 'left', 'right', 'both'}."""
    return check(name, value, Interval(Real, low, high, closed=closed))


def finite_array(name: str, x: Any) -> None:
    """Raise ``ValueError('name: contains NaN or inf ...')`` when the array, tensor or sparse matrix ``x`` does."""
    if isinstance(x, torch.Tensor) and x.is_sparse:
        x = x.coalesce().values()
    elif hasattr(x, "tocsr"):  # scipy sparse: its stored entries
        x = x.data
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        x = np.asarray(x, dtype=float)
    _check_finite(name, x)


def choice(name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``allowed``, else ``ValueError('name: must be one of ...')``."""
    return check(name, value, Options(allowed))
