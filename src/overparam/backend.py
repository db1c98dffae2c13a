"""Device and dtype choice, and seeding.

Every random draw in overparam comes from a generator built here from a point's seed, so that the same seed gives
the same numbers on CPU. Work runs in float64 by default so that comparisons with theory are not limited by rounding.
"""

from __future__ import annotations

import numpy as np
import torch

DEVICES = ("cpu", "cuda")


_pinned: int | None = None


def pin_threads(n: int = 1) -> int:
    """Limit this process's numerical libraries to ``n`` threads each: torch (intra-op), and through
    ``threadpoolctl`` every BLAS (OpenBLAS, MKL) and OpenMP runtime loaded now or later in the process.

    Worker processes call it once before their first point: on a 2-core machine two workers with two threads each
    make every timing, and some results, noise. Idempotent; returns ``n``.
    """
    global _pinned
    n = max(1, int(n))
    if _pinned == n:
        return n
    import os
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)  # libraries loaded after this call read these
    torch.set_num_threads(n)
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n)  # the libraries already loaded
    _pinned = n
    return n


def cuda_available() -> bool:
    """Whether a CUDA device can be used by torch on this machine."""
    return bool(torch.cuda.is_available())


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return a ``torch.device`` for ``device`` ('cpu', 'cuda', 'cuda:1', a device, or None for CPU).

    Raises ``ValueError`` naming the parameter when the device is unknown or CUDA is asked for without a GPU.
    """
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device) if not isinstance(device, torch.device) else device
    except (RuntimeError, TypeError):
        raise ValueError(f"device: must be one of {', '.join(DEVICES)} (got {device!r})") from None
    if dev.type not in DEVICES:
        raise ValueError(f"device: must be one of {', '.join(DEVICES)} (got {str(device)!r})")
    if dev.type == "cuda" and not cuda_available():
        raise ValueError("device: 'cuda' was asked for but torch finds no CUDA GPU on this machine")
    return dev


def default_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """float64 everywhere by default: theory checks need it, and GPUs of the H100 class run it well."""
    return torch.float64


def generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed`` (use it for every draw of a point)."""
    dev = resolve_device(device)
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed))
    return g


def rng(seed: int) -> np.random.Generator:
    """A NumPy generator seeded with ``seed``."""
    return np.random.default_rng(int(seed))


def as_tensor(x, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert ``x`` to a tensor on ``device`` in ``dtype`` (float64 by default)."""
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    return torch.as_tensor(x, device=dev, dtype=dtype or default_dtype(dev))
