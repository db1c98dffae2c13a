"""The public face: ``import overparam as op`` reaches every layer, and each layer's ``__all__`` holds what it names."""

import importlib

import pytest

import overparam as op


@pytest.mark.parametrize("layer", ["theory", "problems", "solvers", "diagnostics", "linalg", "claims", "studies"])
def test_every_name_in_a_layers_all_exists(layer):
    mod = getattr(op, layer)
    assert mod is importlib.import_module(f"overparam.{layer}")
    assert mod.__all__ and all(hasattr(mod, name) for name in mod.__all__)
    assert len(set(mod.__all__)) == len(mod.__all__)


def test_top_level_names():
    assert callable(op.reproduce) and callable(op.build_report)
    assert set(op.__all__) >= {"theory", "problems", "solvers", "diagnostics", "claims", "studies", "reproduce"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        op.nope
