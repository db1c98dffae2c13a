"""matplotlib helpers shared by every study: theory as lines, simulation as points with error bars."""

from __future__ import annotations

import io
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# legible at the report's width: a panel is shown at about 500 px, so 9 pt text stays ≥ 12 px high
plt.rcParams.update({"font.size": 9, "legend.fontsize": 8, "axes.titlesize": 10, "axes.labelsize": 9})


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.6, height: float = 3.4, **kw: Any):
    """A figure with ``nrows × ncols`` axes of the given panel size; returns (fig, axes array, squeezed)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             constrained_layout=True, **kw)
    return fig, axes.ravel() if axes.size > 1 else axes[0, 0]


def aggregate(df: pd.DataFrame, x: str, y: str, by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean, standard error and count of ``y`` for each value of ``x`` (and of the ``by`` columns), NaNs dropped."""
    keys = [*by, x]
    sub = df[keys + [y]].dropna(subset=[y])
    g = sub.groupby(keys, sort=True)[y]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["sem"] = out["std"].fillna(0.0) / np.sqrt(out["count"].clip(lower=1))
    return out


def plot_points(ax, df: pd.DataFrame, x: str, y: str, label: str | None = None, color: Any = None,
                marker: str = "o") -> None:
    """Simulation: mean of ``y`` over repeats at each ``x``, error bars of ±1 standard error."""
    agg = aggregate(df, x, y)
    ax.errorbar(agg[x], agg["mean"], yerr=agg["sem"], fmt=marker, ms=4, capsize=2.5, color=color,
                label=label, lw=1)


def plot_theory(ax, x: Any, y: Any, label: str | None = None, color: Any = None, style: str = "-") -> None:
    """Theory: a line."""
    ax.plot(x, y, style, color=color, label=label, lw=1.6)


def png_bytes(fig, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def loglog(ax, x: bool = True, y: bool = True) -> None:
    """Logarithmic axes without the crowded minor tick labels."""
    from matplotlib.ticker import NullFormatter
    if x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if y:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())


def theory_grid_figure(table: pd.DataFrame, params: Sequence[str], title: str = ""):
    """``overparam theory --plot``: a panel per predicted quantity against the first parameter with several values
    (log axes where every value is positive and they span more than a decade), a line per combination of the others."""
    outputs = [c for c in table.columns if c not in params]
    varied = [p for p in params if table[p].nunique() > 1]
    x = varied[0] if varied else params[0]
    others = [p for p in varied if p != x]
    fig, axes = new_figure(ncols=min(3, len(outputs)), nrows=-(-len(outputs) // 3), width=3.6, height=2.9)
    axes = np.atleast_1d(axes)
    groups = table.groupby(others) if others else [((), table)]
    for ax, col in zip(axes, outputs):
        for key, sub in groups:
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{p} = {v:g}" if isinstance(v, float) else f"{p} = {v}" for p, v in zip(others, key))
            sub = sub.sort_values(x)
            ax.plot(sub[x], sub[col], "-o" if len(sub) < 8 else "-", ms=3, lw=1.4, label=label or None)
        xs, ys = table[x], table[col].astype(float)
        numeric = pd.api.types.is_numeric_dtype(xs)
        loglog(ax, x=bool(numeric and (xs > 0).all() and xs.max() > 10 * xs.min()),
               y=bool((ys > 0).all() and ys.max() > 10 * ys.min()))
        ax.set(xlabel=x, ylabel=col)
    for ax in axes[len(outputs):]:
        ax.set_visible(False)
    if others and len(groups) > 1:
        axes[0].legend()
    if title:
        fig.suptitle(f"{title}: theory")
    return fig
