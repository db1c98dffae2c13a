"""The contract every study follows: parts, each with a grid, a run of one point and claims.

A study is one paper's claims made checkable. It declares

- ``parts()``: the experiments it is made of, each a :class:`Part` with ``points(scale)`` (JSON-serialisable
  parameter dicts, each fully specifying one run, its ``seed`` included), ``run(point) -> dict[str, float | list]``
  and its :class:`~overparam.claims.Claim` s;
- ``theory_model``: the object every claim's ``evaluate(results, theory)`` is handed as ``theory`` (a namespace of
  calls into :mod:`overparam.theory`), so that a test can hand in a perturbed theory and watch the verdicts fail;
- ``figures(results)``: ``dict[name, matplotlib Figure]`` from the results table.

The pipeline judges the claims (:func:`overparam.claims.judge`); a study never decides pass or fail itself.
``results`` is the store's table for the study's finished points: one row per point, parameters and metrics as
columns (see :meth:`overparam.sweep.store.Store.results`), ``part`` naming the experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

import pandas as pd

from ..claims import Claim, Verdict, judge

SCALES: tuple[str, ...] = ("test", "quick", "paper")


@dataclass
class Part:
    """One experiment of a study: ``points(scale)`` (without the ``part`` key, which the study adds),
    ``run(point) -> metrics`` and the claims judged on its rows."""

    name: str
    points: Callable[[str], list[dict[str, Any]]]
    run: Callable[[dict[str, Any]], dict[str, Any]]
    claims: list[Claim] = field(default_factory=list)


@dataclass
class Study:
    """Base class: subclasses set ``name``, ``claim``, ``theory_model`` and implement ``parts`` and ``figures``."""

    name: ClassVar[str] = ""
    claim: ClassVar[str] = ""
    #: bump when a change alters the numbers ``run`` returns (part of every point's key)
    version: ClassVar[str] = "1"
    #: handed to every claim's ``evaluate`` as ``theory``
    theory_model: ClassVar[Any] = None
    #: devices ``run`` honours; asked for another, the study runs on the first of these (and says so)
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    options: dict[str, Any] = field(default_factory=dict)

    def parts(self) -> list[Part]:
        return []

    def _parts(self) -> dict[str, Part]:
        return {p.name: p for p in self.parts()}

    def points(self, scale: str) -> list[dict[str, Any]]:
        """Every part's points at ``scale``, each tagged with its part's name."""
        return [dict(part=p.name, **pt) for p in self.parts() for pt in p.points(scale)]

    def run(self, point: dict[str, Any]) -> dict[str, Any]:
        """Run one point with the part it names."""
        parts = self._parts()
        name = point.get("part")
        if name not in parts:
            raise ValueError(f"part: unknown part {name!r} of study {self.name!r}; known: {', '.join(parts)}")
        return parts[name].run(point)

    def claims(self) -> list[Claim]:
        """Every part's claims (each bound to its part), then the study-wide ones of :meth:`extra_claims`."""
        return [replace(c, part=p.name) if c.part is None else c for p in self.parts() for c in p.claims] \
            + self.extra_claims()

    def extra_claims(self) -> list[Claim]:
        """Claims that read several parts' rows (``part`` left None): none by default."""
        return []

    def judge(self, results: pd.DataFrame, scale: str | None = None, theory: Any = None) -> list[Verdict]:
        """Every claim judged on ``results`` against ``theory`` (default: :attr:`theory_model`)."""
        theory = self.theory_model if theory is None else theory
        return [judge(self.name, c, results, theory, scale) for c in self.claims()]

    def figures(self, results: pd.DataFrame) -> dict[str, Any]:
        return {}
