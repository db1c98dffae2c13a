import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
# worker processes (spawned pools, Dask) import the toy study through the plugin variable
os.environ["OVERPARAM_PLUGINS"] = ",".join(filter(None, [os.environ.get("OVERPARAM_PLUGINS", ""), "toy_study"]))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH", "")]))

import toy_study  # noqa: E402,F401  (registers the study here too)


@pytest.fixture
def toy_env(monkeypatch, tmp_path):
    """Clean toy-study switches for one test; returns a setter."""
    for k in ("TOY_SLEEP", "TOY_LOG", "TOY_DIE_ONCE", "TOY_WRONG_THEORY", "TOY_FAIL"):
        monkeypatch.delenv(k, raising=False)

    def set_(**kw):
        for k, v in kw.items():
            monkeypatch.setenv(k, str(v))
    return set_
