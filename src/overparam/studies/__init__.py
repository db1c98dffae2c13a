"""Registry of studies: the built-in five, plus any registered by plugins.

Plugins: a module named in the environment variable ``OVERPARAM_PLUGINS`` (comma-separated import paths) is imported
and may call :func:`register`; so may a package exposing an ``overparam.studies`` entry point. Worker processes import
the same plugins, so a plugin study runs on the process pool and on Dask alike.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from .base import SCALES, Study, Verdict

_REGISTRY: dict[str, Study] = {}
_BUILTIN = (
    "overparam.studies.near_interpolators",
    "overparam.studies.implicit_balancing",
    "overparam.studies.approximate_newton",
    "overparam.studies.convex_neighborhoods",
    "overparam.studies.nuclear_route",
)
_loaded = False


def register(study: Study) -> Study:
    """Add ``study`` (an instance) to the registry under ``study.name``; returns it."""
    if not study.name:
        raise ValueError("study.name: must be a non-empty string")
    _REGISTRY[study.name] = study
    return study


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a study not written yet
            if exc.name != mod:
                raise
    for mod in filter(None, (m.strip() for m in os.environ.get("OVERPARAM_PLUGINS", "").split(","))):
        importlib.import_module(mod)
    for ep in entry_points(group="overparam.studies"):
        obj = ep.load()
        if isinstance(obj, Study) and obj.name not in _REGISTRY:
            register(obj)


def all_studies() -> dict[str, Study]:
    """Every registered study by name, built-ins first."""
    _load()
    return dict(_REGISTRY)


def get(name: str) -> Study:
    """The study called ``name``; ``ValueError`` naming the known ones otherwise."""
    studies = all_studies()
    if name not in studies:
        raise ValueError(f"study: unknown study {name!r}; known: {', '.join(studies) or 'none'}")
    return studies[name]


__all__ = ["SCALES", "Study", "Verdict", "register", "all_studies", "get"]
