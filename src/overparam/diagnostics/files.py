"""Models and data from files, for ``overparam diagnose``.

Models: a ``torch.export`` program (``.pt2``; its ``.module()``), a TorchScript file (``torch.jit.load``), a
safetensors state dict (``.safetensors``) loaded into the module that ``factory`` (``pkg.mod:function``) returns, or
``pkg.mod:function`` itself (a function returning the model; the current directory is importable). Data: ``.npz``,
``.pt`` (a dict saved with ``torch.save``, read with ``weights_only=True``) or ``.safetensors``, holding arrays named
``inputs`` (n, ...) and ``targets`` (n, ...). Every refusal is one ``ValueError`` line naming ``model``, ``module``
or ``data``.
"""

from __future__ import annotations

import importlib
import re
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

DATA_KEYS = ("inputs", "targets")
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _from_spec(name: str, spec: str) -> Callable[[], Any]:
    """The function named by ``pkg.mod:function``."""
    mod_name, fn_name = spec.split(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{name}: cannot import {spec!r} ({_first_line(exc)})") from None
    if not callable(fn):
        raise ValueError(f"{name}: {spec!r} is not a function (got {type(fn).__name__})")
    return fn


def _module(name: str, obj: Any, spec: str) -> torch.nn.Module:
    if not isinstance(obj, torch.nn.Module):
        raise ValueError(f"{name}: {spec!r} must give a torch.nn.Module (got {type(obj).__name__})")
    if not list(obj.parameters()):
        raise ValueError(f"{name}: {spec!r} gives a module without parameters (got {type(obj).__name__})")
    return obj


def load_model(model: str, module: str | None = None) -> torch.nn.Module:
    """The model named by ``model`` (module docstring); ``module`` the factory for a safetensors state dict."""
    path = Path(model)
    if not path.exists():
        if _SPEC.match(model):
            return _module("model", _from_spec("model", model)(), model)
        raise ValueError(f"model: no such file, and not a 'pkg.mod:function' (got {model!r})")
    if path.is_dir():
        raise ValueError(f"model: is a folder; give a .pt2, TorchScript or .safetensors file (got {model!r})")
    if path.suffix == ".safetensors":
        return _state_dict_model(path, module)
    if path.suffix == ".pt2":
        try:
            return _module("model", torch.export.load(str(path)).module(), model)
        except (RuntimeError, ValueError, KeyError, zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"model: not a torch.export program ({_first_line(exc)}; got {model!r})") from None
    try:
        return _module("model", torch.jit.load(str(path), map_location="cpu"), model)
    except (RuntimeError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"model: not a TorchScript, torch.export (.pt2) or safetensors file ({_first_line(exc)}; "
                         f"got {model!r})") from None


def _state_dict_model(path: Path, module: str | None) -> torch.nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if module is None or not _SPEC.match(module):
        raise ValueError(f"module: a safetensors state dict needs --module pkg.mod:factory, the function that builds "
                         f"the empty model (got {module!r})")
    net = _module("module", _from_spec("module", module)(), module)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"model: not a safetensors file ({_first_line(exc)}; got {str(path)!r})") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"model: the state dict does not fit {module!r} ({_first_line(exc)})") from None
    return net


def load_data(data: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) from a .npz, .pt or .safetensors file holding arrays named ``inputs`` and ``targets``."""
    path = Path(data)
    if not path.is_file():
        raise ValueError(f"data: no such file (got {data!r})")
    try:
        arrays = _read_arrays(path)
    except ValueError:
        raise
    except Exception as exc:  # each format's reader raises its own error types on a damaged file
        raise ValueError(f"data: cannot read {path.suffix or 'the'} file ({_first_line(exc)}; got {data!r})") from None
    missing = [k for k in DATA_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"data: must hold arrays named 'inputs' and 'targets' (got keys {sorted(arrays)})")
    return tuple(torch.as_tensor(np.asarray(arrays[k]) if not isinstance(arrays[k], torch.Tensor) else arrays[k])
                 for k in DATA_KEYS)


def _read_arrays(path: Path) -> dict[str, Any]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    if path.suffix == ".pt":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict):
            raise ValueError(f"data: a .pt file must hold a dict with 'inputs' and 'targets' (got {type(obj).__name__})")
        return obj
    raise ValueError(f"data: must be a .npz, .pt or .safetensors file (got {path.name!r})")
