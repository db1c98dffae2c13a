"""A training monitor for a plain PyTorch loop: watch the weight norm and the validation error together.

The near-interpolator result (Wang, Sonthalia & Hu 2024) says that once the training error is below the noise level,
the weight norm keeps growing (like n^a with the data) while the validation error no longer improves. The monitor
records, per call of :meth:`TrainingMonitor.step`, ‖θ‖² (all parameters), the training and validation errors and the
largest relative factor imbalance ‖UᵀU − VᵀV‖/max(‖U‖², ‖V‖²) over LoRA pairs, linear chains and ReLU pairs
(:func:`.weights.balance_table`), and warns (:class:`.norms.NearInterpolatorWarning`, once) when the training error is
below ``noise_level`` while the norm has grown at each of the last ``patience`` steps.

    monitor = TrainingMonitor(noise_level=0.25)
    for epoch in range(epochs):
        ...  # one epoch of training
        monitor.step(model, train_err, val_err)
    monitor.save("history.csv")  # plotted by `overparam diagnose --history history.csv`
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import torch

from ..validation import NON_NEGATIVE, POSITIVE_INT, InstanceOf, Interval, Real, check, validate_params
from .norms import NearInterpolatorWarning
from .weights import balance_table

COLUMNS = ["step", "weight_norm2", "train_error", "val_error", "max_relative_imbalance"]
_ERROR = Interval(Real, None, None)


class TrainingMonitor:
    """Per-step record of ‖θ‖², training and validation error and factor balance (module docstring)."""

    @validate_params({"noise_level": [None, NON_NEGATIVE], "patience": POSITIVE_INT, "balance_every": POSITIVE_INT})
    def __init__(self, noise_level: float | None = None, patience: int = 3, balance_every: int = 1):
        self.noise_level, self.patience, self.balance_every = noise_level, patience, balance_every
        self.rows: list[dict[str, float]] = []
        self.warned_at: int | None = None

    def step(self, model: torch.nn.Module, train_err: float, val_err: float | None = None) -> None:
        """Record one step (an epoch, or every few updates) of ``model`` with its errors (floats or 0-d tensors)."""
        check("model", model, InstanceOf(torch.nn.Module, what="torch.nn.Module"))
        train = check("train_err", train_err, _ERROR)
        val = math.nan if val_err is None else check("val_err", val_err, _ERROR)
        k = len(self.rows)
        with torch.no_grad():
            norm2 = float(sum((p.detach().double() ** 2).sum() for p in model.parameters()))
        imbalance = self._imbalance(model) if k % self.balance_every == 0 else math.nan
        self.rows.append({"step": k, "weight_norm2": norm2, "train_error": train, "val_error": val,
                          "max_relative_imbalance": imbalance})
        self._maybe_warn()

    @staticmethod
    def _imbalance(model: torch.nn.Module) -> float:
        table = balance_table(model)
        return float(table["relative_imbalance"].max()) if len(table) else math.nan

    def norm_growing(self) -> bool:
        """‖θ‖² grew at each of the last ``patience`` steps."""
        norms = [r["weight_norm2"] for r in self.rows[-self.patience - 1:]]
        return len(norms) == self.patience + 1 and all(b > a for a, b in zip(norms, norms[1:]))

    def _maybe_warn(self) -> None:
        last = self.rows[-1]
        if (self.warned_at is None and self.noise_level is not None and last["train_error"] < self.noise_level
                and self.norm_growing()):
            self.warned_at = int(last["step"])
            warnings.warn(f"step {self.warned_at}: training error {last['train_error']:.3g} is below the noise level "
                          f"{self.noise_level:.3g} and ‖θ‖² has grown for {self.patience} steps "
                          f"(now {last['weight_norm2']:.4g}): the model is fitting noise; watch the validation error",
                          NearInterpolatorWarning, stacklevel=2)

    @property
    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def save(self, path: str | Path) -> Path:
        """Write the history as CSV (with the noise level in a column) and return the path."""
        path = Path(path)
        df = self.history
        df["noise_level"] = math.nan if self.noise_level is None else self.noise_level
        df.to_csv(path, index=False)
        return path
