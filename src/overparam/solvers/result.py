"""The result every solver returns: the iterate, the per-step history, and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: converged: the stopping rule's tolerance was reached; max_steps: the step budget ran out first; diverged: the loss
#: became non-finite or exploded; stalled: no step along the direction decreased the loss
STATUSES = ("converged", "max_steps", "diverged", "stalled")


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
        return self.status == "converged"

    def last(self, name: str) -> float:
        return self.history[name][-1]
