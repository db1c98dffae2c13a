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

__all__ = ["__version__", "RESULTS_VERSION"]
