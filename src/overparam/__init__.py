"""overparam: five results of overparameterized-learning theory as measured software.

The flow of data (see ``README.md``)::

    study parameters -> grid of points -> executor -> run one point -> metrics -> store (SQLite)
                                                                theory -> figures + verdicts -> report (HTML)
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("overparam")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

#: Bumped whenever a change alters the numbers a point produces; part of every point's key, so that a
#: store never mixes results of two incompatible versions.
RESULTS_VERSION = "1"

#: the public face: ``import overparam as op`` then ``op.theory``, ``op.problems``, ``op.solvers``,
#: ``op.diagnostics``, ``op.linalg``, ``op.claims``, ``op.studies`` (each with a curated ``__all__``), ``op.reproduce``,
#: ``op.sweep_study`` (a study on your own grid) and ``op.build_report``, the executors a sweep runs on
#: (``op.SerialExecutor``, ``op.LocalExecutor``, ``op.DaskExecutor``) and the results store (``op.Store``).
#: Submodules load on first use, so ``import overparam`` stays cheap (no torch until needed).
_SUBMODULES = ("theory", "problems", "solvers", "diagnostics", "linalg", "claims", "studies", "analysis")
_FUNCTIONS = {"reproduce": "pipeline", "sweep_study": "pipeline", "build_report": "pipeline", "Outcome": "pipeline",
              "Store": "sweep.store", "SerialExecutor": "sweep.executors", "LocalExecutor": "sweep.executors",
              "DaskExecutor": "sweep.executors"}


def __getattr__(name: str):
    import importlib
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f".{_FUNCTIONS[name]}", __name__), name)
    raise AttributeError(f"module 'overparam' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["__version__", "RESULTS_VERSION", *_SUBMODULES, *_FUNCTIONS]
