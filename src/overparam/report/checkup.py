"""``checkup.html``: one self-contained page for a :class:`overparam.diagnostics.CheckupReport` (figures as embedded PNG,
the report's styling): findings, the data's sample ratios and spectrum, the per-layer table with each layer's ESD and
its fitted tail, the balance of factor pairs, the certificate and the Hessian density, the redundancy of each block,
near-interpolation, and a training history when one is given."""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from typing import Any

import numpy as np
import pandas as pd

from .figures import loglog, new_figure, png_bytes
from .html import CSS, _fmt

#: layers drawn in the ESD panel (the largest by parameter count when there are more)
MAX_ESD_PANELS = 12


def _img(name: str, png: bytes) -> str:
    b64 = base64.b64encode(png).decode()
    return (f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption>{html.escape(name)}</figcaption></figure>")


def _table(df: pd.DataFrame) -> str:
    if df is None or not len(df):
        return "<p class='muted'>none</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in df.itertuples(index=False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def _kv(d: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in d.items()
                   if not isinstance(v, (dict, list, np.ndarray)))
    return f"<table>{rows}</table>"


# --- figures ------------------------------------------------------------------------------------------------------
def rank_figure(spectra: dict[str, np.ndarray], fits: dict[str, dict]):
    """λ_k against k (log-log) for the data and feature spectra, with the fitted k^−a over the fit window."""
    fig, ax = new_figure()
    for name, lam in spectra.items():
        k = np.arange(1, len(lam) + 1)
        pos = lam > 0
        ax.plot(k[pos], lam[pos], ".", ms=3, label=f"{name} spectrum")
        f = fits.get(name, {})
        if "rank_decay_a" in f:
            k0, k1 = f["rank_window"]
            ks = np.arange(k0, k1 + 1)
            a = f["rank_decay_a"]
            c = np.exp(np.mean(np.log(lam[ks - 1]) + a * np.log(ks)))
            ax.plot(ks, c * ks ** -a, "-", lw=1.4, label=f"{name}: rank decay a = {a:.3f}")
    loglog(ax)
    ax.set(xlabel="rank k", ylabel="eigenvalue λ_k of XᵀX/n", title="data spectrum (λ_k ∝ k^−a)")
    ax.legend()
    return fig


def esd_figure(layers: pd.DataFrame, spectra: dict[str, np.ndarray]):
    """Per layer: the empirical density of the eigenvalues of WᵀW on log bins, with the fitted tail λ^−α above xmin."""
    rows = layers.sort_values("params", ascending=False).head(MAX_ESD_PANELS) if len(layers) else layers
    n = max(len(rows), 1)
    fig, axes = new_figure(ncols=min(3, n), nrows=-(-n // 3), width=3.4, height=2.7)
    axes = np.atleast_1d(axes)
    for ax, row in zip(axes, rows.to_dict("records")):
        lam = spectra[row["layer"]]
        lam = lam[lam > lam.max() * 1e-12] if lam.max() > 0 else lam[:0]
        ax.set_title(f"{row['layer']} ({row['shape']})")
        if len(lam) < 2:
            ax.text(0.5, 0.5, "too few eigenvalues", ha="center", transform=ax.transAxes)
            continue
        bins = np.geomspace(lam.min(), lam.max() * 1.0001, max(8, min(40, len(lam) // 3)))
        dens, edges = np.histogram(lam, bins=bins, density=True)
        mid = np.sqrt(edges[1:] * edges[:-1])
        ax.plot(mid[dens > 0], dens[dens > 0], "o", ms=3, label="ESD")
        alpha = row.get("tail_alpha", math.nan)
        if alpha == alpha:
            xmin = row["tail_xmin"]
            xs = np.geomspace(xmin, lam.max(), 30)
            frac = row["tail_n"] / len(lam)  # the tail holds this share of the eigenvalues
            ax.plot(xs, frac * (alpha - 1) / xmin * (xs / xmin) ** -alpha, "-", lw=1.4, label=f"tail α = {alpha:.2f}")
            ax.axvline(xmin, color="0.6", lw=0.8, ls=":")
        loglog(ax)
        ax.set(xlabel="λ of WᵀW", ylabel="density")
        ax.legend()
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    return fig


def density_figure(xs: np.ndarray, dens: np.ndarray):
    fig, ax = new_figure()
    ax.plot(xs, dens, "-", lw=1.2)
    ax.set(xlabel="Hessian eigenvalue", ylabel="density (stochastic Lanczos quadrature)", title="Hessian spectral density")
    ax.set_yscale("symlog", linthresh=max(float(dens.max()) * 1e-4, 1e-300))
    return fig


def history_figure(history: pd.DataFrame):
    """Training history: errors (with the noise level) and ‖θ‖² against the step, and the factor imbalance."""
    fig, axes = new_figure(ncols=2, width=4.2, height=3.0)
    ax = axes[0]
    ax.plot(history["step"], history["train_error"], "-", label="training error")
    if "val_error" in history and history["val_error"].notna().any():
        ax.plot(history["step"], history["val_error"], "-", label="validation error")
    if "noise_level" in history and history["noise_level"].notna().any():
        ax.axhline(float(history["noise_level"].dropna().iloc[0]), color="0.5", ls="--", lw=1, label="noise level")
    ax.set(xlabel="step", ylabel="error")
    ax.set_yscale("log")
    ax.legend()
    ax2 = ax.twinx()
    ax2.plot(history["step"], history["weight_norm2"], "k:", lw=1.2)
    ax2.set_ylabel("‖θ‖² (dotted)")
    axes[1].plot(history["step"], history["max_relative_imbalance"], "-")
    axes[1].set(xlabel="step", ylabel="largest relative imbalance", title="factor balance")
    return fig


def figures(report, history: pd.DataFrame | None = None) -> dict[str, bytes]:
    """The page's figures as PNG bytes, by caption."""
    out: dict[str, bytes] = {}
    sp = report.spectra
    data_sp = {k: sp[k] for k in ("input", "features") if k in sp}
    if data_sp:
        fits = {"input": report.data.get("input_spectrum", {}), "features": report.data.get("feature_spectrum", {})}
        out["data spectrum with the fitted rank decay"] = png_bytes(rank_figure(data_sp, fits))
    if len(report.layers):
        out["ESD of WᵀW per layer with the fitted density tail"] = png_bytes(esd_figure(report.layers, sp["layers"]))
    if "hessian_density" in sp:
        out["Hessian spectral density"] = png_bytes(density_figure(*sp["hessian_density"]))
    if history is not None and len(history):
        out["training history"] = png_bytes(history_figure(history))
    return out


# --- the page -----------------------------------------------------------------------------------------------------
def _findings_html(findings) -> str:
    if not findings:
        return "<p class='pass'>no finding crossed its threshold</p>"
    rows = "".join(f"<tr><td>{html.escape(f.section)}</td><td>{html.escape(f.message)}</td><td>{_fmt(f.measured)}</td>"
                   f"<td>{_fmt(f.threshold)}</td><td>{html.escape(f.source)}</td></tr>" for f in findings)
    return ("<table><tr><th>section</th><th>finding</th><th>measured</th><th>threshold</th><th>result</th></tr>"
            f"{rows}</table>")


def _redundancy_html(blocks: list[dict]) -> str:
    if not blocks:
        return "<p class='muted'>no Linear–activation–Linear block found in an nn.Sequential</p>"
    parts = []
    for b in blocks:
        parts.append(f"<h3>{html.escape(b['block'])} ({html.escape(b['activation'])})</h3>")
        parts.append(_kv({k: v for k, v in b.items() if k != "units"}))
        parts.append(_table(pd.DataFrame(b["units"])) if b["units"] else "<p class='pass'>efficient: no redundant unit</p>")
    return "".join(parts)


def render(report, title: str = "overparam checkup", history: pd.DataFrame | None = None,
           source: str = "") -> str:
    """The checkup page as a string."""
    figs = figures(report, history)
    d = report.data
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='muted'>{html.escape(source)} &middot; generated {dt.datetime.now().isoformat(timespec='seconds')}"
             "</p>", "<h2>findings</h2>", _findings_html(report.findings), "<h2>data</h2>",
             _kv({k: v for k, v in d.items() if not isinstance(v, dict)})]
    for key in ("input_spectrum", "feature_spectrum"):
        if key in d:
            parts.append(f"<h3>{key.replace('_', ' ')}</h3>" + _kv(d[key]))
    if "data spectrum with the fitted rank decay" in figs:
        parts.append(_img("data spectrum with the fitted rank decay", figs["data spectrum with the fitted rank decay"]))
    parts += ["<h2>weights</h2>", _table(report.layers)]
    if report.skipped:
        parts.append("<h3>skipped</h3>" + _table(pd.DataFrame(report.skipped, columns=["layer", "reason"])))
    key = "ESD of WᵀW per layer with the fitted density tail"
    if key in figs:
        parts.append(_img(key, figs[key]))
    parts += ["<h3>balance of factor pairs</h3>", _table(report.balance), "<h2>curvature</h2>"]
    c = report.curvature
    if c:
        parts.append(f"<p>{html.escape(c.get('wording', c.get('skipped', '')))}</p>")
        parts.append(_kv(c))
        if c.get("layer_top_eigenvalue"):
            parts.append(_table(pd.DataFrame(list(c["layer_top_eigenvalue"].items()),
                                             columns=["layer", "top Hessian eigenvalue of its block"])))
    else:
        parts.append("<p class='muted'>not computed</p>")
    if "Hessian spectral density" in figs:
        parts.append(_img("Hessian spectral density", figs["Hessian spectral density"]))
    parts += ["<h2>redundancy</h2>", _redundancy_html(report.redundancy), "<h2>near-interpolation</h2>",
              _kv(report.near_interpolation)]
    if "training history" in figs:
        parts += ["<h2>training history</h2>", _img("training history", figs["training history"])]
    parts.append("<h2>timings (s)</h2>" + _kv(report.timings) + "</body></html>")
    return "\n".join(parts)


def render_history(history: pd.DataFrame, title: str = "overparam training history") -> str:
    """A page with the training history alone (``overparam diagnose --history FILE`` without a model)."""
    png = png_bytes(history_figure(history))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{_img('training history', png)}"
            f"{_table(history.tail(20))}</body></html>")


# --- `overparam diagnose`: from files to checkup.html and checkup.json ------------------------------------------
class DiagnoseError(ValueError):
    """A bad input of ``overparam diagnose``: ``param`` ('model', 'data', 'param-filter', …) and a one-line message."""

    def __init__(self, param: str, message: str):
        self.param, self.message = param, message
        super().__init__(f"{param}: {message}")


def param_filter_from(patterns: str | None, model) -> Any:
    """A ``param_filter(name, p)`` from comma-separated glob patterns on parameter names; None for all. A pattern that
    matches no parameter is refused (naming some of the parameters there are)."""
    import fnmatch
    if not patterns:
        return None
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    names = [n for n, _ in model.named_parameters()]
    for pat in pats:
        if not any(fnmatch.fnmatchcase(n, pat) for n in names):
            shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
            raise DiagnoseError("param-filter", f"{pat!r} matches no parameter (the model's are {shown})")
    return lambda name, p: any(fnmatch.fnmatchcase(name, pat) for pat in pats)


def _loss_and_targets(loss: str, model, inputs, targets):
    """The loss function and the targets shaped for it, after a dry run of the model on two rows."""
    import torch
    p = next(model.parameters())
    try:
        with torch.no_grad():
            out = model(inputs[:2].to(p.device, p.dtype) if inputs.is_floating_point() else inputs[:2].to(p.device))
    except Exception as exc:  # whatever the model raises on inputs it cannot take
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("; a torch.export program needs a dynamic batch dimension: export with dynamic_shapes="
                "({0: torch.export.Dim('batch')},)") if "Guard failed" in why else ""
        raise DiagnoseError("data", f"inputs of shape {tuple(inputs.shape)} do not fit the model ({why}){hint}") from None
    if not isinstance(out, torch.Tensor):
        raise DiagnoseError("model", f"must return a tensor (got {type(out).__name__})")
    if loss == "cross_entropy":
        if targets.is_floating_point() and not torch.equal(targets, targets.round()):
            raise DiagnoseError("data", "--loss cross_entropy needs integer class labels as targets (got non-integer "
                                        "values)")
        return torch.nn.CrossEntropyLoss(), targets.long().reshape(len(targets))
    per_row = out.shape[1:]
    if tuple(targets.shape[1:]) != tuple(per_row):
        if targets[0].numel() != out[0].numel():
            raise DiagnoseError("data", f"targets of shape {tuple(targets.shape)} do not fit the model's outputs of "
                                        f"shape (n, {', '.join(map(str, per_row))})")
        targets = targets.reshape(len(targets), *per_row)
    return torch.nn.MSELoss(), targets


def _write_atomically(out, files: dict[str, str]) -> None:
    """Write ``files`` (name → text) into a fresh folder next to ``out``, then move each into ``out``: a failure
    leaves nothing half-written there."""
    import os
    import shutil
    import tempfile
    from pathlib import Path
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DiagnoseError("out", f"{str(out)!r} is a file; give a folder (it is created when missing)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkup-", dir=out.parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        out.mkdir(exist_ok=True)
        for name in files:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_history(path) -> pd.DataFrame:
    """A training history written by :meth:`TrainingMonitor.save` (CSV)."""
    from pathlib import Path
    from ..diagnostics.monitor import COLUMNS
    p = Path(path)
    if not p.is_file():
        raise DiagnoseError("history", f"no such file (got {str(path)!r})")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DiagnoseError("history", f"not a CSV file ({str(exc).strip().splitlines()[0]}; got {str(path)!r})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DiagnoseError("history", f"must have the columns TrainingMonitor.save writes; missing {missing} (got "
                                       f"{list(df.columns)[:8]})")
    return df


def diagnose(model: str | None, data: str | None, out, *, module: str | None = None, device: str = "cpu",
             param_filter: str | None = None, loss: str = "mse", noise_level: float | None = None,
             history: str | None = None, progress: bool = True) -> tuple[Any, Any]:
    """Load, check, run the checkup and write ``checkup.html`` and ``checkup.json`` into ``out`` (the history alone:
    ``history.html``). Returns (report or None, out). Every bad input raises :class:`DiagnoseError` before anything
    is written."""
    import torch
    from ..diagnostics import checkup
    from ..diagnostics.files import load_data, load_model

    hist = read_history(history) if history else None
    if model is None and data is None:
        if hist is None:
            raise DiagnoseError("model", "give MODEL and DATA, or --history FILE")
        _write_atomically(out, {"history.html": render_history(hist)})
        return None, out
    if model is None or data is None:
        raise DiagnoseError("data" if data is None else "model", "MODEL and DATA go together (got one of them)")
    if device == "cuda" and not torch.cuda.is_available():
        raise DiagnoseError("device", "'cuda' was asked for but torch sees no GPU")
    try:
        net = load_model(model, module)
        inputs, targets = load_data(data)
    except ValueError as exc:
        name, _, msg = str(exc).partition(": ")
        raise DiagnoseError(name, msg) from None
    for name, t in (("inputs", inputs), ("targets", targets)):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise DiagnoseError("data", f"{name} must be finite (got {int((~torch.isfinite(t)).sum())} NaN or inf of "
                                        f"{t.numel()} entries)")
    if len(inputs) != len(targets):
        raise DiagnoseError("data", f"inputs and targets must have the same number of rows (got {len(inputs)} and "
                                    f"{len(targets)})")
    loss_fn, targets = _loss_and_targets(loss, net, inputs, targets)
    pf = param_filter_from(param_filter, net)
    try:
        rep = checkup(net, loss_fn, inputs, targets, noise_level=noise_level, param_filter=pf, device=device,
                      progress=progress)
    except ValueError as exc:
        name, _, msg = str(exc).partition(": ")
        raise DiagnoseError("data" if name in ("inputs", "targets") else name, msg or str(exc)) from None
    page = render(rep, history=hist, source=f"model {model} · data {data}")
    _write_atomically(out, {"checkup.html": page, "checkup.json": rep.to_json()})
    return rep, out
