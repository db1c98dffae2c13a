"""A study's declared parameters, the grids a user gives on the command line, and their validation.

Every study declares the parameters of the part that ``overparam sweep`` runs (its ``sweep_part``) as :class:`Param`
s: name, type, default per scale, allowed range or choices, one line of meaning, and whether the theory depends on it.
``overparam list STUDY`` shows them; ``overparam theory`` and ``overparam sweep`` take ``--set NAME=VALUES`` with

    VALUES = a,b,c              the values listed
           | start:stop:num     num values from start to stop, evenly spaced (both ends included)
           | start:stop:num:log num values from start to stop, evenly spaced in log

and every value is checked here, at the door, with a one-line error that names the parameter.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..validation import Constraint, InstanceOf, Integral, Interval, Options, Real, check


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    ``default`` maps each scale to the value (or list of values) the study uses there; ``low``/``high`` bound a
    number (``closed`` in {'both', 'left', 'right', 'neither'}, as :class:`overparam.validation.Interval`);
    ``choices`` lists the allowed strings; ``theory``
    says whether the theory's prediction depends on the parameter (``overparam theory`` grids only those)."""

    name: str
    kind: type
    help: str
    default: Mapping[str, Any]
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    choices: tuple[str, ...] | None = None
    theory: bool = True

    @property
    def constraint(self) -> Constraint:
        """The parameter's check in :mod:`overparam.validation` (the library's one mechanism)."""
        if self.choices:
            return Options(self.choices)
        if self.kind is str:
            return InstanceOf(str)
        return Interval(Integral if self.kind is int else Real, self.low, self.high, self.closed)

    def allowed(self) -> str:
        """The allowed values in words, e.g. 'a finite number > 0' or 'one of 'goe', 'quadratic''."""
        return self.constraint.describe()

    def check(self, value: Any) -> Any:
        """``value`` (a number, or its text from the command line) checked by :attr:`constraint`;
        ``ValueError('NAME: must be ... (got ...)')`` otherwise."""
        if self.kind is not str and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{self.name}: must be {self.allowed()} (got {value!r})") from None
        return check(self.name, value, self.constraint)

    def defaults(self, scale: str) -> list[Any]:
        """The values the study uses at ``scale``, as a list."""
        v = self.default[scale]
        return list(v) if isinstance(v, (list, tuple)) else [v]

    def describe(self) -> str:
        """One line for ``overparam list STUDY``: name, type, allowed values, defaults per scale, meaning."""
        per_scale = ", ".join(f"{s}: {_fmt(self.defaults(s))}" for s in self.default)
        return f"{self.name} ({self.kind.__name__}; {self.allowed()}) — {self.help} [{per_scale}]" + \
            ("" if self.theory else " (simulation only)")


def _fmt(values: list[Any]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def parse_values(text: str) -> list[str]:
    """``a,b,c`` | ``start:stop:num`` | ``start:stop:num:log`` as a list of value strings (numbers formatted with
    17 significant digits, so that ``1:2:3`` gives '1', '1.5', '2'). ``ValueError`` for a malformed range."""
    text = text.strip()
    if ":" not in text:
        vals = [v.strip() for v in text.split(",")]
        if not text or any(not v for v in vals):
            raise ValueError(f"empty value in {text!r}; give a,b,c or start:stop:num[:log]")
        return vals
    fields = text.split(":")
    if len(fields) not in (3, 4) or (len(fields) == 4 and fields[3] != "log"):
        raise ValueError(f"range {text!r} must be start:stop:num or start:stop:num:log")
    try:
        start, stop, num = float(fields[0]), float(fields[1]), int(fields[2])
    except ValueError:
        raise ValueError(f"range {text!r} must be start:stop:num with numbers and a whole num") from None
    if num < 1:
        raise ValueError(f"range {text!r}: num must be ≥ 1 (got {num})")
    if len(fields) == 4:
        if start <= 0 or stop <= 0:
            raise ValueError(f"range {text!r}: a log range needs start and stop > 0")
        grid = np.geomspace(start, stop, num)
    else:
        grid = np.linspace(start, stop, num)
    return [f"{x:.17g}" if not float(x).is_integer() else str(int(x)) for x in grid]


@dataclass(frozen=True)
class Grid:
    """Values per parameter (each a non-empty list, checked) in declaration order."""

    values: dict[str, list[Any]] = field(default_factory=dict)

    def points(self) -> list[dict[str, Any]]:
        """The Cartesian product of the values, one dict per combination."""
        names = list(self.values)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.values.values())]

    def to_json(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self.values.items()}


def settings_from_cli(items: Iterable[str], params: Sequence[Param] = ()) -> dict[str, list[str]]:
    """``["alpha=0.5,1", "d=40"]`` → ``{"alpha": ["0.5", "1"], "d": ["40"]}``; ``ValueError`` for a malformed item.

    A range (``start:stop:num[:log]``) of a declared integer parameter is rounded to integers (duplicates dropped),
    so that ``n=100:1000:4:log`` gives 100, 215, 464, 1000; a listed value is taken as written."""
    kinds = {p.name: p.kind for p in params}
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{item!r} must be NAME=VALUES, e.g. alpha=0.5,1,2 or alpha=0.1:3:20:log")
        try:
            vals = parse_values(values)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if kinds.get(name) is int and ":" in values:
            vals = list(dict.fromkeys(str(int(round(float(v)))) for v in vals))
        out[name] = vals
    return out


def make_grid(params: Sequence[Param], settings: Mapping[str, Sequence[Any]], scale: str,
              only_theory: bool = False) -> Grid:
    """Every declared parameter's values: ``settings`` where given (checked), else the defaults at ``scale``.

    ``only_theory`` keeps the parameters the theory depends on. An unknown name is refused with the known ones."""
    known = {p.name: p for p in params}
    for name in settings:
        if name not in known:
            raise ValueError(f"{name}: unknown parameter; known: {', '.join(known) or 'none'}")
        if only_theory and not known[name].theory:
            raise ValueError(f"{name}: the theory does not depend on it (simulation only); theory parameters: "
                             f"{', '.join(p.name for p in params if p.theory)}")
    values = {}
    for p in params:
        if only_theory and not p.theory:
            continue
        given = settings.get(p.name)
        vals = [p.check(v) for v in given] if given is not None else p.defaults(scale)
        if not vals:
            raise ValueError(f"{p.name}: no values given")
        values[p.name] = list(dict.fromkeys(vals))  # duplicates would run the same point twice
    return Grid(values)


def per_scale(scales: Mapping[str, Mapping[str, Any]], key: str) -> dict[str, Any]:
    """``{scale: scales[scale][key]}``: a Param's defaults read from a study's table of scales (one source)."""
    return {s: c[key] for s, c in scales.items()}
