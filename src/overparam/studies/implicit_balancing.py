"""Study ``implicit-balancing`` (Soltanolkotabi, Stöger, Xie, COLT 2023).

Asymmetric matrix sensing y = 𝒜(X*) with X* ∈ R^{n1×n2} of rank r, dense Gaussian measurements, factorized gradient
descent on UVᵀ (U (n1, k), V (n2, k)) from U₀ = αŪ, V₀ = αV̄. Parts of the sweep:

- ``gd``: one run of factorized GD (width k, scale α); histories of the test error, the imbalance ‖UᵀU − VᵀV‖ and its
  bound, and the top r + 1 singular values. The α sweep uses k = min(n1, n2); the width comparison uses k ∈ {r, 2r,
  min(n1, n2)} at the smallest α (shared points are run once: same parameters, same key).
- ``phase``: one instance with m measurements on a smaller problem; factorized GD with k = r and k = min(n1, n2), and
  the convex baseline (nuclear-norm least squares with a vanishing penalty), each counted a success at relative error
  ≤ 1e-2. The predicted transition is the statistical dimension of the nuclear-norm descent cone.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..backend import generator
from ..problems.matrix_sensing import GaussianOperator, low_rank_truth, measure
from ..report.figures import loglog, new_figure, plot_points
from ..solvers.factorized import factorized_gd
from ..solvers.nuclear import nuclear_least_squares
from ..analysis import loglog_slope as powerlaw_slope
from ..theory.sensing import degrees_of_freedom, nuclear_phase_transition
from . import register
from .base import Study, Verdict

SUCCESS = 1e-2  # relative error counted as recovery in the phase-transition part

SCALES = {
    "test": dict(n1=16, n2=12, r=2, kappa=2.0, m_mult=10, alphas=[1e-1, 1e-2, 1e-3, 1e-4], steps=600, seeds=1,
                 ph_n1=12, ph_n2=8, ph_ratios=[0.75, 1.5, 2.5], ph_trials=2, ph_steps=600),
    "quick": dict(n1=60, n2=40, r=2, kappa=2.0, m_mult=10, alphas=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6], steps=1500,
                  seeds=1, ph_n1=30, ph_n2=20, ph_ratios=[0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0], ph_trials=5,
                  ph_steps=1500),
    "paper": dict(n1=200, n2=150, r=3, kappa=3.0, m_mult=10, alphas=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7],
                  steps=4000, seeds=3, ph_n1=60, ph_n2=40, ph_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0],
                  ph_trials=20, ph_steps=3000),
}


def instance(n1: int, n2: int, r: int, kappa: float, m: int, seed: int, device: str = "cpu"):
    """Truth factors, dense Gaussian operator and measurements, all from ``seed``."""
    g = generator(seed, device)
    L, R = low_rank_truth(n1, n2, r, kappa, g)
    op = GaussianOperator(m, n1, n2, g)
    return g, (L, R), op, measure(op, L, R)


def convex_recovery(op, y, lam_final_rel: float = 1e-5, stages: int = 6, max_iter: int = 600):
    """Nuclear-norm least squares with the penalty driven to lam_final_rel·‖𝒜*y‖ by warm-started continuation
    (approximates min ‖X‖_* subject to 𝒜(X) = y)."""
    top = float(torch.linalg.matrix_norm(op.adjoint(y), ord=2))
    X, res = None, None
    L = op.norm_estimate() ** 2 * 1.01
    for lam in np.geomspace(0.5 * top, lam_final_rel * top, stages):
        res = nuclear_least_squares(op, y, float(lam), X0=X, max_iter=max_iter, tol=1e-9, L=L)
        X = res.x
    return res


def rel_error(X: torch.Tensor, L: torch.Tensor, R: torch.Tensor) -> float:
    Xs = L @ R.T
    return float(torch.linalg.norm(X - Xs) / torch.linalg.norm(Xs))


class ImplicitBalancing(Study):
    name = "implicit-balancing"
    claim = ("Factorized gradient descent on UVᵀ from a small random start of scale α keeps UᵀU − VᵀV small, recovers "
             "a low-rank X* for any width k ≥ r, stays effectively rank r, and its error shrinks with α.")
    version = "1"

    def points(self, scale: str) -> list[dict]:
        c = SCALES[scale]
        base = dict(part="gd", n1=c["n1"], n2=c["n2"], r=c["r"], kappa=c["kappa"],
                    m=c["m_mult"] * c["r"] * (c["n1"] + c["n2"]), steps=c["steps"])
        kmax = min(c["n1"], c["n2"])
        pts = [dict(base, k=kmax, alpha=a, seed=s) for a in c["alphas"] for s in range(c["seeds"])]
        pts += [dict(base, k=k, alpha=min(c["alphas"]), seed=s) for k in (c["r"], 2 * c["r"])
                for s in range(c["seeds"])]
        unit = c["r"] * (c["ph_n1"] + c["ph_n2"])
        pts += [dict(part="phase", n1=c["ph_n1"], n2=c["ph_n2"], r=c["r"], kappa=c["kappa"], m=int(round(q * unit)),
                     ratio=q, steps=c["ph_steps"], alpha=1e-4, seed=100 + t)
                for q in c["ph_ratios"] for t in range(c["ph_trials"])]
        return pts

    def run(self, point: dict) -> dict:
        dev = point.get("device", "cpu")
        p = point
        g, truth, op, y = instance(p["n1"], p["n2"], p["r"], p["kappa"], p["m"], p["seed"], dev)
        if p["part"] == "gd":
            res = factorized_gd(op, y, p["k"], p["alpha"], g, steps=p["steps"], truth=truth,
                                record_every=max(1, p["steps"] // 150))
            h = res.history
            keys = ["step", "loss", "test_error", "imbalance", "imbalance_bound"] + \
                   [f"sv{i}" for i in range(1, p["r"] + 2) if f"sv{i}" in h]
            out = {f"h_{k}": h[k] for k in keys}
            out.update(final_error=h["test_error"][-1], max_imbalance=max(h["imbalance"]),
                       max_imbalance_over_bound=max(a / b for a, b in zip(h["imbalance"], h["imbalance_bound"])),
                       gd_status=res.status, mu=h["mu"][0])
            sv_next = h.get(f"sv{p['r'] + 1}")
            if sv_next is not None:
                out["max_sv_next"] = max(sv_next)
            return out
        kmax = min(p["n1"], p["n2"])
        out = {}
        for name, k in (("gd_k_r", p["r"]), ("gd_k_max", kmax)):
            res = factorized_gd(op, y, k, p["alpha"], g, steps=p["steps"], truth=truth, record_every=p["steps"])
            out[f"{name}_error"] = res.history["test_error"][-1]
        conv = convex_recovery(op, y)
        out["convex_error"] = rel_error(conv.x, *truth)
        out["convex_status"] = conv.status
        for key in ("gd_k_r", "gd_k_max", "convex"):
            e = out[f"{key}_error"]
            out[f"{key}_success"] = float(math.isfinite(e) and e <= SUCCESS)
        return out

    def theory(self, n1: int, n2: int, r: int):
        """The predicted phase transition (statistical dimension) and the degrees of freedom."""
        return nuclear_phase_transition(n1, n2, r)

    # --- analysis ------------------------------------------------------------------------------------------------
    @staticmethod
    def _gd(results: pd.DataFrame) -> pd.DataFrame:
        return results[results["part"] == "gd"]

    def verdicts(self, results: pd.DataFrame) -> list[Verdict]:
        out = []
        gd = self._gd(results)
        amin = gd["alpha"].min()
        kmax = int(min(gd["n1"].iloc[0], gd["n2"].iloc[0]))
        r = int(gd["r"].iloc[0])
        widths = gd[gd["alpha"] == amin].groupby("k")["final_error"].max()
        worst = float(widths.max())
        out.append(self.verdict(f"every width k ∈ {{{', '.join(str(int(k)) for k in widths.index)}}} reaches relative "
                                f"error ≤ 1e-3 at α = {amin:g}: worst final error", worst, 1e-3, "≤ predicted",
                                worst <= 1e-3, ", ".join(f"k={int(k)}: {v:.2e}" for k, v in widths.items())))
        sweep = gd[gd["k"] == kmax].groupby("alpha")["final_error"].mean().sort_index()
        slope = powerlaw_slope(sweep.index, sweep.values)
        monotone = bool(np.all(np.diff(sweep.values) > 0))
        decades = math.log10(sweep.index.max() / sweep.index.min())
        out.append(self.verdict(f"final error decreases monotonically as α shrinks ({decades:.0f} decades, k = {kmax}): "
                                "fitted log-log slope", slope, "> 0 (a positive power of α)", "monotone",
                                monotone and slope > 0, "errors: " + ", ".join(f"{v:.1e}" for v in sweep.values)))
        ratio = float(gd["max_imbalance_over_bound"].max())
        out.append(self.verdict("‖UᵀU − VᵀV‖ stays within the bound of the exact imbalance recursion, every run: "
                                "max over runs and steps of imbalance / bound", ratio, 1.0, "≤ predicted",
                                ratio <= 1.0 + 1e-9, f"largest imbalance seen {gd['max_imbalance'].max():.2e}"))
        eff = gd[gd["k"] == kmax]
        c = float((eff["max_sv_next"] / eff["alpha"]).max())
        out.append(self.verdict(f"σ_{r + 1}(UVᵀ) stays O(α) for k = {kmax}: max over α and steps of σ_{r + 1}/α",
                                c, 1.0, "≤ 1 (constant C = 1)", c <= 1.0))
        ph = results[results["part"] == "phase"]
        if len(ph):
            n1, n2 = int(ph["n1"].iloc[0]), int(ph["n2"].iloc[0])
            pred = nuclear_phase_transition(n1, n2, r).ratio
            emp = self._crossing(ph.groupby("ratio")["convex_success"].mean())
            out.append(self.verdict(f"convex recovery switches on at the statistical dimension ({n1}×{n2}, r = {r}): "
                                    "m/(r(n1+n2)) where success crosses 1/2", emp, pred, "±25 % relative",
                                    math.isfinite(emp) and abs(emp / pred - 1) <= 0.25))
        return out

    @staticmethod
    def _crossing(rate: pd.Series) -> float:
        """First ratio at which the success rate crosses 1/2 (linear interpolation); NaN if it never does."""
        x, y = rate.index.to_numpy(float), rate.to_numpy(float)
        for i in range(1, len(x)):
            if y[i - 1] < 0.5 <= y[i]:
                return float(x[i - 1] + (0.5 - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
        return float(x[0]) if len(y) and y[0] >= 0.5 else float("nan")

    def figures(self, results: pd.DataFrame) -> dict:
        figs = {}
        gd = self._gd(results)
        kmax = int(min(gd["n1"].iloc[0], gd["n2"].iloc[0]))
        r = int(gd["r"].iloc[0])
        amin = gd["alpha"].min()

        fig, ax = new_figure()
        for _, row in gd[gd["alpha"] == amin].sort_values("k").drop_duplicates("k").iterrows():
            ax.plot(row["h_step"], np.maximum(row["h_test_error"], 1e-16), label=f"k = {int(row['k'])}")
        ax.axhline(1e-3, color="grey", ls=":", lw=1, label="1e-3")
        ax.set(yscale="log", xlabel="iteration", ylabel="‖UVᵀ − X*‖_F / ‖X*‖_F", title=f"error vs iteration, α = {amin:g}")
        ax.legend(fontsize=7)
        figs["error_vs_iteration"] = fig

        fig, ax = new_figure()
        sub = gd[gd["k"] == kmax]
        plot_points(ax, sub, "alpha", "final_error", label=f"final error, k = {kmax}")
        agg = sub.groupby("alpha")["final_error"].mean()
        slope = powerlaw_slope(agg.index, agg.values)
        xs = np.geomspace(agg.index.min(), agg.index.max(), 20)
        c0 = np.exp(np.mean(np.log(agg.values) - slope * np.log(agg.index)))
        ax.plot(xs, c0 * xs**slope, "--", lw=1, label=f"fit: slope {slope:.2f}")
        loglog(ax)
        ax.set(xlabel="initialization scale α", ylabel="final relative error", title="error vs α")
        ax.legend(fontsize=7)
        figs["error_vs_alpha"] = fig

        fig, ax = new_figure()
        for i, (_, row) in enumerate(sub.sort_values("alpha").iterrows()):
            ax.plot(row["h_step"], row["h_imbalance"], color=f"C{i}", label=f"α = {row['alpha']:g}")
            ax.plot(row["h_step"], row["h_imbalance_bound"], color=f"C{i}", ls=":", lw=1)
        ax.set(yscale="log", xlabel="iteration", ylabel="‖UᵀU − VᵀV‖_op", title="imbalance (dotted: recursion bound)")
        ax.legend(fontsize=6)
        figs["imbalance_vs_iteration"] = fig

        fig, ax = new_figure()
        row = sub[sub["alpha"] == amin].iloc[0]
        for i in range(1, r + 2):
            key = f"h_sv{i}"
            if key in row and isinstance(row[key], list):
                ax.plot(row["h_step"], row[key], label=f"σ_{i}(UVᵀ)", ls="-" if i <= r else "--")
        ax.axhline(amin, color="grey", ls=":", lw=1, label="α")
        ax.set(yscale="log", xlabel="iteration", ylabel="singular value", title=f"effective rank, k = {kmax}, α = {amin:g}")
        ax.legend(fontsize=7)
        figs["singular_values"] = fig

        ph = results[results["part"] == "phase"]
        if len(ph):
            n1, n2 = int(ph["n1"].iloc[0]), int(ph["n2"].iloc[0])
            fig, ax = new_figure()
            for key, label in (("convex_success", "convex (nuclear norm)"), ("gd_k_r_success", f"GD, k = r = {r}"),
                               ("gd_k_max_success", f"GD, k = {min(n1, n2)}")):
                rate = ph.groupby("ratio")[key].mean()
                ax.plot(rate.index, rate.values, "o-", ms=4, label=label)
            pt = nuclear_phase_transition(n1, n2, r)
            ax.axvline(pt.ratio, color="k", ls="--", lw=1, label=f"predicted δ/(r(n1+n2)) = {pt.ratio:.2f}")
            ax.axvline(degrees_of_freedom(n1, n2, r) / (r * (n1 + n2)), color="grey", ls=":", lw=1,
                       label="degrees of freedom")
            ax.set(xlabel="m / (r (n1 + n2))", ylabel=f"P(relative error ≤ {SUCCESS:g})",
                   title=f"recovery, {n1}×{n2}, r = {r}")
            ax.legend(fontsize=7)
            figs["success_probability"] = fig
        return figs


register(ImplicitBalancing())
