"""Checks at the door: each raises ``ValueError`` whose message starts with the parameter's name."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int ≥ 1, else ``ValueError('name: ...')``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name}: must be a positive integer (got {value!r})")
    if value < 1:
        raise ValueError(f"{name}: must be a positive integer (got {value})")
    return int(value)


def positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (≥ 0 with ``allow_zero``), else ``ValueError('name: ...')``."""
    v = _finite(name, value)
    if v < 0 or (v == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be {bound} (got {v})")
    return v


def in_range(name: str, value: Any, low: float, high: float, closed: str = "neither") -> float:
    """``value`` as a float inside (low, high); ``closed`` in {'neither', 'left', 'right', 'both'}."""
    v = _finite(name, value)
    lo_ok = v >= low if closed in ("left", "both") else v > low
    hi_ok = v <= high if closed in ("right", "both") else v < high
    if not (lo_ok and hi_ok):
        lb = "[" if closed in ("left", "both") else "("
        rb = "]" if closed in ("right", "both") else ")"
        raise ValueError(f"{name}: must lie in {lb}{low}, {high}{rb} (got {v})")
    return v


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number (got {value!r})") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite (got {v})")
    return v


def finite_array(name: str, x: Any) -> None:
    """Raise ``ValueError`` when the array or tensor ``x`` holds NaN or inf."""
    if isinstance(x, torch.Tensor):
        if x.is_sparse:
            x = x.coalesce().values()
        ok = bool(torch.isfinite(x).all())
    else:
        data = getattr(x, "data", x) if hasattr(x, "tocsr") else x
        ok = bool(np.isfinite(np.asarray(data)).all())
    if not ok:
        raise ValueError(f"{name}: contains NaN or inf")


def choice(name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``allowed``, else ``ValueError('name: must be one of ...')``."""
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {', '.join(allowed)} (got {value!r})")
    return value
