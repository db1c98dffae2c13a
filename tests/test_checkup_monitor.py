"""The training monitor: it records what it is given, warns once when the training error is below the noise while the
norm grows, and stays quiet otherwise."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import overparam as op
from overparam.diagnostics.norms import NearInterpolatorWarning


def _overfit(noise_level: float, steps: int = 40) -> tuple[op.diagnostics.TrainingMonitor, list[warnings.WarningMessage]]:
    """A wide linear model (p = 60 > n = 30) fitted by gradient descent to pure-noise targets of variance 0.25:
    the training error falls towards 0 (below the noise) while ‖θ‖² grows."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 60, dtype=torch.float64, generator=g)
    y = 0.5 * torch.randn(30, 1, dtype=torch.float64, generator=g)
    Xv = torch.randn(30, 60, dtype=torch.float64, generator=g)
    yv = 0.5 * torch.randn(30, 1, dtype=torch.float64, generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(60, 8, bias=False), torch.nn.Linear(8, 1, bias=False)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    mon = op.diagnostics.TrainingMonitor(noise_level=noise_level, patience=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X), y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                mon.step(model, torch.nn.functional.mse_loss(model(X), y),
                         float(torch.nn.functional.mse_loss(model(Xv), yv)))
    return mon, [w for w in caught if issubclass(w.category, NearInterpolatorWarning)]


def test_monitor_warns_once_when_below_noise_with_growing_norm(tmp_path):
    mon, caught = _overfit(0.25)
    h = mon.history
    assert len(h) == 40 and list(h.step) == list(range(40))
    assert len(caught) == 1
    k = mon.warned_at
    # at the warning: below the noise, norm grew at each of the 3 steps before; never earlier
    assert h.train_error[k] < 0.25 and all(np.diff(h.weight_norm2[k - 3:k + 1]) > 0)
    earlier = [j for j in range(3, k) if h.train_error[j] < 0.25 and all(np.diff(h.weight_norm2[j - 3:j + 1]) > 0)]
    assert earlier == []
    back = pd.read_csv(mon.save(tmp_path / "h.csv"))
    assert list(back.columns[:5]) == list(h.columns) and back.noise_level[0] == 0.25
    np.testing.assert_allclose(back.weight_norm2, h.weight_norm2, rtol=1e-12)


def test_monitor_quiet_when_training_error_stays_above_the_noise():
    mon, caught = _overfit(1e-6, steps=15)
    assert caught == [] and mon.warned_at is None


def test_monitor_records_balance_of_consecutive_layers():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
        model[1].weight.copy_(torch.tensor([[2.0, 0.0]]))
    mon = op.diagnostics.TrainingMonitor()
    mon.step(model, 1.0)
    # W2ᵀW2 − W1W1ᵀ = diag(4 − 1, 0 − 1): norm 3, relative to max(‖W2‖², ‖W1‖²) = 4
    assert mon.history.max_relative_imbalance[0] == pytest.approx(0.75, rel=1e-12)
    assert math.isnan(mon.history.val_error[0]) and mon.history.weight_norm2[0] == pytest.approx(6.0)


def test_monitor_bad_inputs():
    mon = op.diagnostics.TrainingMonitor()
    with pytest.raises(ValueError, match="^train_err: "):
        mon.step(torch.nn.Linear(2, 1), float("nan"))
    with pytest.raises(ValueError, match="^model: "):
        mon.step("not a model", 1.0)
    with pytest.raises(ValueError, match="^patience: "):
        op.diagnostics.TrainingMonitor(patience=0)
