"""The contract every study follows: parts, each with a grid, a run of one point and claims.

A study is one paper's claims made checkable. It declares

- ``parts()``: the experiments it is made of, each a :class:`Part` with ``points(scale)`` (JSON-serialisable
  parameter dicts, each fully specifying one run, its ``seed`` included), ``run(point) -> dict[str, float | list]``
  and its :class:`~overparam.claims.Claim` s;
- ``theory_model``: the object every claim's ``evaluate(results, theory)`` is handed as ``theory`` (a namespace of
  calls into :mod:`overparam.theory`), so that a test can hand in a perturbed theory and watch the verdicts fail;
- ``figures(results)``: ``dict[name, matplotlib Figure]`` from the results table;
- ``params`` and ``sweep_part``: the declared parameters (:class:`~overparam.studies.params.Param`) of the part that
  ``overparam sweep`` runs on a user's grid, and ``predict(values)``: the theory at one grid point, which
  ``overparam theory`` tabulates. A study made for a grid (:meth:`Study.for_grid`) finds it in ``options["grid"]``
  and builds its claims for the values given.

The pipeline judges the claims (:func:`overparam.claims.judge`); a study never decides pass or fail itself.
``results`` is the store's table for the study's finished points: one row per point, parameters and metrics as
columns (see :meth:`overparam.sweep.store.Store.results`), ``part`` naming the experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

import pandas as pd

from ..claims import Claim, Verdict, judge
from ..validation import POSITIVE_INT, check
from .params import Grid, Param, make_grid

SCALES: tuple[str, ...] = ("test", "quick", "paper")


@dataclass
class Part:
    """One experiment of a study: ``points(scale)`` (without the ``part`` key, which the study adds),
    ``run(point) -> metrics`` and the claims judged on its rows."""

    name: str
    points: Callable[[str], list[dict[str, Any]]]
    run: Callable[[dict[str, Any]], dict[str, Any]]
    claims: list[Claim] = field(default_factory=list)
    #: a number proportional to a point's compute (e.g. multiply-adds of its dominant loop), which the cost model
    #: (:mod:`overparam.sweep.cost`) scales to seconds from measured runs
    work: Callable[[dict[str, Any]], float] | None = None
    #: bytes of the largest arrays a point holds at once (the interpreter's own footprint is added by the cost model)
    memory: Callable[[dict[str, Any]], float] | None = None


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
    #: the parameters of ``sweep_part`` a user may set (``overparam list STUDY`` shows them)
    params: ClassVar[tuple[Param, ...]] = ()
    #: the part ``overparam sweep`` runs on a user's grid
    sweep_part: ClassVar[str] = ""
    #: the first seed of a sweep's points (seeds ``seed0 … seed0 + seeds − 1``)
    sweep_seed0: ClassVar[int] = 0
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

    # --- a user's grid ----------------------------------------------------------------------------------------------
    def grid(self, settings: dict[str, Any] | None = None, scale: str = "quick", only_theory: bool = False) -> Grid:
        """The declared parameters' values: ``settings`` (name → list of values) where given, else the defaults at
        ``scale``; ``ValueError`` naming a bad or unknown parameter."""
        if not self.params:
            raise ValueError(f"study: {self.name!r} declares no parameters to set")
        return make_grid(self.params, settings or {}, scale, only_theory)

    @property
    def user_grid(self) -> dict[str, list[Any]] | None:
        """The grid this instance was made for (:meth:`for_grid`), or None for the study's own scales."""
        return self.options.get("grid")

    def for_grid(self, grid: Grid) -> "Study":
        """This study with its claims built for ``grid`` (see :attr:`user_grid`)."""
        return replace(self, options=dict(self.options, grid=grid.to_json()))

    def sweep_points(self, grid: Grid, seeds: int) -> list[dict[str, Any]]:
        """The sweep part's points on ``grid``, each at seeds ``sweep_seed0 …``; tagged with the part."""
        seeds = check("seeds", seeds, POSITIVE_INT)
        return [dict(part=self.sweep_part, **self.sweep_point(values, self.sweep_seed0 + s))
                for values in grid.points() for s in range(seeds)]

    def sweep_point(self, values: dict[str, Any], seed: int) -> dict[str, Any]:
        """One point of the sweep part from the declared parameters' values (a study adds what its run needs)."""
        return dict(values, seed=seed)

    def predict(self, values: dict[str, Any]) -> dict[str, float]:
        """The theory's prediction at one grid point (theory parameters only), named as in the Python API."""
        raise NotImplementedError(f"study {self.name!r} has no theory to tabulate")

    def predict_many(self, points: list[dict[str, Any]]) -> list[dict[str, float]]:
        """:meth:`predict` at each of ``points``; a study whose theory is vectorized over a parameter overrides it."""
        return [self.predict(v) for v in points]

    def theory_table(self, grid: Grid) -> pd.DataFrame:
        """One row per grid point: the parameters, then each predicted quantity."""
        points = list(grid.points())
        return pd.DataFrame([dict(v, **p) for v, p in zip(points, self.predict_many(points))])
