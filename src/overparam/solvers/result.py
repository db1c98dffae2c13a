"""The result every solver returns: the iterate, the per-step history, and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("converged", "max_steps", "diverged", "stopped")


@dataclass
class SolverResult:
    """``x``: the final iterate (a tensor or a list of tensors); ``history``: name -> list of recorded values
    (``step`` holds the step numbers they were recorded at); ``status`` one of :data:`STATUSES`; ``message``
    says why in words (the tolerance reached, or the step size that diverged)."""

    x: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    status: str = "max_steps"
    steps: int = 0
    message: str = ""

    @property
    def converged(self) -> bool:
        return self.status in ("converged", "stopped")

    def last(self, name: str) -> float:
        return self.history[name][-1]
