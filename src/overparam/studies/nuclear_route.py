"""Study ``nuclear-route`` (Erba et al. 2025): ERM of quadratic networks, its convex twin and sharp asymptotics.

Parts of the sweep:

- ``errors``: one convex solve (trace-penalized PSD sensing, FISTA with restart, duality-gap stop) at (α, κ*, λ, Δ) on
  the GOE design (d ≥ 50 at the quick scale) or the real quadratic features (the largest d that fits the time):
  test error, training error, rank fraction and spectrum of the minimizer, held against ``theory.quadratic_erm``.
- ``recovery``: Δ = 0, λ → 0⁺ (λ = 1e-3), α around the perfect-recovery threshold α_PR(κ*).
- ``equivalence``: gradient descent on W of width m against the convex minimizer on the same data: the relative
  objective gap is ≤ 1e-6 once m reaches the convex minimizer's rank, and stays above it below.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..backend import generator
from ..problems.quadratic_net import make_problem
from ..report.figures import new_figure, plot_points, plot_theory
from ..solvers.factorized import gram_factorized_gd
from ..solvers.nuclear import nuclear_least_squares
from ..theory.quadratic_erm import (bayes_optimal_threshold, learned_spectrum, perfect_recovery_threshold, predict)
from . import register
from .base import Study, Verdict

CONFIGS = [(0.5, 0.1, 0.1), (2.0, 0.1, 0.5)]  # (κ*, λ, Δ)
RECOVERY_KAPPA, RECOVERY_LAM = 0.3, 1e-3
EQUIV = dict(kappa=0.5, lam=0.1, noise=0.1, alpha=1.0)
RANK_TOL = 1e-6  # eigenvalues above RANK_TOL·λ_max count towards the rank

SCALES = {
    "test": dict(d_goe=20, d_real=24, alphas=[0.5, 1.0, 2.0], seeds=1, real_seeds=1, configs=CONFIGS[:1],
                 rec_d=20, rec_alphas=[0.2, 0.29, 0.42, 0.5], rec_seeds=1, eq_d=10, eq_ms=[2, 4, 10, 20], eq_steps=20000),
    "quick": dict(d_goe=60, d_real=80, alphas=[0.25, 0.5, 1.0, 1.5, 2.0, 3.0], seeds=6, real_seeds=2, configs=CONFIGS,
                  rec_d=50, rec_alphas=[0.2, 0.25, 0.29, 0.36, 0.42, 0.5], rec_seeds=2, eq_d=20,
                  eq_ms=[4, 8, 12, 16, 20, 40], eq_steps=60000),
    "paper": dict(d_goe=100, d_real=200, alphas=[0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0], seeds=8,
                  real_seeds=4, configs=CONFIGS, rec_d=100, rec_alphas=[0.2, 0.25, 0.29, 0.31, 0.34, 0.36, 0.42, 0.5],
                  rec_seeds=4, eq_d=40, eq_ms=[5, 10, 20, 25, 30, 40, 80], eq_steps=200000),
}


def convex_fit(d: int, alpha: float, kappa: float, lam: float, noise: float, seed: int, design: str,
               device: str = "cpu", tol: float = 1e-9, max_iter: int = 20000):
    """The problem and the convex minimizer of (1/d²)‖y − 𝒜S‖² + (λ/d)Tr S over S ⪰ 0."""
    prob = make_problem(d, alpha, kappa, noise, generator(seed, device), design)
    res = nuclear_least_squares(prob.op, prob.y, lam / d, psd=True, weight=2.0 / d**2, tol=tol, max_iter=max_iter)
    return prob, res


def rank_of(S: torch.Tensor) -> tuple[int, np.ndarray]:
    ev = torch.linalg.eigvalsh(0.5 * (S + S.T)).cpu().numpy()
    return int((ev > RANK_TOL * max(ev.max(), 1e-300)).sum()), ev


class NuclearRoute(Study):
    name = "nuclear-route"
    claim = ("ERM with square loss and weight decay on a quadratic-activation network equals trace-penalized PSD "
             "matrix sensing on S = WᵀW/√(md) once m ≥ rank; its train/test errors follow sharp formulas in α = n/d², "
             "and noiseless teachers are recovered above α_PR(κ*).")
    version = "1"

    def points(self, scale: str) -> list[dict]:
        c = SCALES[scale]
        pts = []
        for kappa, lam, noise in c["configs"]:
            for a in c["alphas"]:
                pts += [dict(part="errors", design="goe", d=c["d_goe"], alpha=a, kappa=kappa, lam=lam, noise=noise,
                             seed=s) for s in range(c["seeds"])]
                pts += [dict(part="errors", design="quadratic", d=c["d_real"], alpha=a, kappa=kappa, lam=lam,
                             noise=noise, seed=100 + s) for s in range(c["real_seeds"])]
        pts += [dict(part="recovery", design="goe", d=c["rec_d"], alpha=a, kappa=RECOVERY_KAPPA, lam=RECOVERY_LAM,
                     noise=0.0, seed=200 + s) for a in c["rec_alphas"] for s in range(c["rec_seeds"])]
        pts += [dict(part="equivalence", design="quadratic", d=c["eq_d"], m=m, steps=c["eq_steps"], seed=300, **EQUIV)
                for m in c["eq_ms"]]
        return pts

    def run(self, point: dict) -> dict:
        p, dev = point, point.get("device", "cpu")
        prob, res = convex_fit(p["d"], p["alpha"], p["kappa"], p["lam"], p["noise"], p["seed"], p["design"], dev)
        S = res.x
        rank, ev = rank_of(S)
        out = {"test_error": prob.test_error(S), "train_error": prob.train_error(S), "rank": rank,
               "rank_fraction": rank / p["d"], "trace": float(ev.sum()) / p["d"],
               "objective": res.history["objective"][-1], "convex_status": res.status, "convex_steps": res.steps}
        if p["part"] == "errors" and p["seed"] in (0, 100):
            out["eigenvalues"] = ev.tolist()
        if p["part"] == "equivalence":
            d = p["d"]
            gd = gram_factorized_gd(prob.op, prob.y, p["m"], p["lam"] / d, generator(p["seed"] + 1, dev),
                                    weight=2.0 / d**2, steps=p["steps"], grad_tol=1e-13, record_every=p["steps"])
            W = gd.x[0]
            S_w = W.T @ W / math.sqrt(p["m"] * d)
            out.update(gd_objective=prob.objective(S_w, p["lam"]), gd_status=gd.status, gd_steps=gd.steps,
                       objective_gap=(prob.objective(S_w, p["lam"]) - out["objective"]) / abs(out["objective"]),
                       predictor_gap=float(torch.linalg.norm(S_w - S) / torch.linalg.norm(S)))
        return out

    def theory(self, alpha, kappa_star: float, lam: float, noise: float):
        """``overparam.theory.quadratic_erm.predict``."""
        return predict(alpha, kappa_star, lam, noise)

    # --- analysis ------------------------------------------------------------------------------------------------
    @staticmethod
    def _errors(results: pd.DataFrame) -> pd.DataFrame:
        return results[results["part"] == "errors"]

    def _deviation(self, df: pd.DataFrame, col: str, theory_col: str) -> tuple[float, str]:
        worst, where = 0.0, ""
        for (kappa, lam, noise), sub in df.groupby(["kappa", "lam", "noise"]):
            agg = sub.groupby("alpha")[col].mean()
            th = getattr(predict(agg.index.to_numpy(), kappa, lam, noise), theory_col)
            dev = np.abs(agg.to_numpy() / th - 1)
            i = int(np.argmax(dev))
            if dev[i] > worst:
                worst, where = float(dev[i]), f"κ* = {kappa}, λ = {lam}, Δ = {noise}, α = {agg.index[i]}"
        return worst, where

    def verdicts(self, results: pd.DataFrame) -> list[Verdict]:
        out = []
        err = self._errors(results)
        goe, real = err[err["design"] == "goe"], err[err["design"] == "quadratic"]
        d_goe = int(goe["d"].iloc[0]) if len(goe) else 0
        # the training error carries a finite-size bias ∝ 1/d (measured at κ* = 2, α = 0.5: −9 %, −5 %, −3 %, −1.6 %
        # at d = 40, 60, 100, 140), so at the quick scale's d = 60 it is held to 8 %; the test error to 5 %
        for col, tol in (("test_error", 0.05), ("train_error", 0.08)):
            dev, where = self._deviation(goe, col, col)
            out.append(self.verdict(f"{col.replace('_', ' ')} of the convex minimizer matches the asymptotic theory "
                                    f"(GOE design, d = {d_goe}): largest relative deviation over α and (κ*, λ, Δ)",
                                    dev, 0.0, f"≤ {tol:g}", dev <= tol, f"worst at {where}"))
        if len(real):
            dev, where = self._deviation(real, "test_error", "test_error")
            out.append(self.verdict(f"finite-size gap of the real quadratic features (d = {int(real['d'].iloc[0])}): "
                                    "largest relative deviation of the test error from the theory", dev, 0.0,
                                    "≤ 0.25 (finite-size, reported)", dev <= 0.25, f"worst at {where}"))
        worst = 0.0
        for (kappa, lam, noise), sub in goe.groupby(["kappa", "lam", "noise"]):
            agg = sub.groupby("alpha")["rank_fraction"].mean()
            th = predict(agg.index.to_numpy(), kappa, lam, noise).rank_fraction
            worst = max(worst, float(np.max(np.abs(agg.to_numpy() - th))))
        out.append(self.verdict("rank fraction of the minimizer matches ρ_Y((θ, ∞)) (GOE): largest absolute deviation",
                                worst, 0.0, "≤ 0.05", worst <= 0.05))
        rec = results[results["part"] == "recovery"]
        if len(rec):
            a_pr = float(perfect_recovery_threshold(RECOVERY_KAPPA))
            agg = rec.groupby("alpha")["test_error"].mean().sort_index()
            failed = agg[agg > 1e-2].index
            ok = agg[agg < 1e-3].index
            lo = float(failed.max()) if len(failed) else float("nan")
            hi = float(ok[ok > lo].min()) if len(ok[ok > lo]) else float("nan")
            passed = math.isfinite(lo) and math.isfinite(hi) and lo < a_pr < hi and hi / lo <= 1.3
            out.append(self.verdict(f"noiseless recovery switches on at α_PR(κ* = {RECOVERY_KAPPA}): midpoint of the "
                                    "last α with test error > 1e-2 and the first with < 1e-3", 0.5 * (lo + hi), a_pr,
                                    "α_PR inside, bracket ≤ 30 % wide", passed, f"bracket [{lo:g}, {hi:g}]"))
        eq = results[results["part"] == "equivalence"]
        if len(eq):
            rank = int(eq["rank"].iloc[0])
            above = eq[eq["m"] >= rank]
            below = eq[eq["m"] < rank]
            worst = float(above["objective_gap"].max()) if len(above) else float("nan")
            out.append(self.verdict(f"GD on W with m ≥ rank {rank} of the convex minimizer reaches the convex objective: "
                                    "largest relative objective gap", worst, 1e-6, "≤ predicted",
                                    math.isfinite(worst) and worst <= 1e-6,
                                    f"predictor gap ‖S_W − S‖/‖S‖ ≤ {above['predictor_gap'].max():.1e}"))
            if len(below):
                least = float(below["objective_gap"].min())
                out.append(self.verdict(f"below that width (m < {rank}) it cannot: smallest relative objective gap",
                                        least, 1e-6, "> predicted", least > 1e-6))
        return out

    def figures(self, results: pd.DataFrame) -> dict:
        figs = {}
        err = self._errors(results)
        groups = list(err.groupby(["kappa", "lam", "noise"]))
        if groups:
            fig, axes = new_figure(ncols=len(groups))
            axes = np.atleast_1d(axes)
            for ax, ((kappa, lam, noise), sub) in zip(axes, groups):
                grid = np.linspace(sub["alpha"].min() * 0.9, sub["alpha"].max() * 1.05, 60)
                th = predict(grid, kappa, lam, noise)
                plot_theory(ax, grid, th.test_error, label="test (theory)", color="C0")
                plot_theory(ax, grid, th.train_error, label="train (theory)", color="C1")
                for design, marker in (("goe", "o"), ("quadratic", "s")):
                    s = sub[sub["design"] == design]
                    if len(s):
                        dd = int(s["d"].iloc[0])
                        plot_points(ax, s, "alpha", "test_error", label=f"test, {design} d={dd}", color="C0",
                                    marker=marker)
                        plot_points(ax, s, "alpha", "train_error", label=f"train, {design} d={dd}", color="C1",
                                    marker=marker)
                ax.set(xlabel="α = n/d²", ylabel="error", title=f"κ* = {kappa}, λ = {lam}, Δ = {noise}")
                ax.legend(fontsize=6)
            figs["errors_vs_alpha"] = fig

            fig, axes = new_figure(ncols=len(groups))
            axes = np.atleast_1d(axes)
            for ax, ((kappa, lam, noise), sub) in zip(axes, groups):
                grid = np.linspace(sub["alpha"].min() * 0.9, sub["alpha"].max() * 1.05, 60)
                plot_theory(ax, grid, predict(grid, kappa, lam, noise).rank_fraction, label="theory ρ_Y((θ, ∞))")
                for design, marker in (("goe", "o"), ("quadratic", "s")):
                    s = sub[sub["design"] == design]
                    if len(s):
                        plot_points(ax, s, "alpha", "rank_fraction", label=f"{design}, d = {int(s['d'].iloc[0])}",
                                    marker=marker)
                ax.set(xlabel="α", ylabel="rank(Ŝ)/d", title=f"κ* = {kappa}, λ = {lam}, Δ = {noise}")
                ax.legend(fontsize=7)
            figs["rank_fraction_vs_alpha"] = fig

            (kappa, lam, noise), sub = groups[0]
            one = sub[(sub["design"] == "goe") & sub["eigenvalues"].apply(lambda v: isinstance(v, list))]
            if len(one):
                row = one.sort_values("alpha").iloc[len(one) // 2]
                ev = np.asarray(row["eigenvalues"])
                x, w, atom = learned_spectrum(float(row["alpha"]), kappa, lam, noise)
                fig, ax = new_figure()
                pos = ev[ev > RANK_TOL * ev.max()]
                ax.hist(pos, bins=20, density=True, weights=np.full(len(pos), len(pos) / len(ev)), alpha=0.5,
                        label=f"simulation (d = {int(row['d'])}), nonzero part")
                order = np.argsort(x)
                dens = np.gradient(np.cumsum(w[order]), x[order])
                ax.plot(x[order], dens, label=f"theory; atom at 0 of mass {atom:.2f}")
                ax.set(xlabel="eigenvalue of Ŝ", ylabel="density", title=f"learned spectrum, α = {row['alpha']:g}")
                ax.legend(fontsize=7)
                figs["learned_spectrum"] = fig

        rec = results[results["part"] == "recovery"]
        if len(rec):
            fig, ax = new_figure()
            plot_points(ax, rec, "alpha", "test_error", label=f"simulation, GOE d = {int(rec['d'].iloc[0])}")
            grid = np.linspace(rec["alpha"].min(), rec["alpha"].max(), 60)
            try:
                plot_theory(ax, grid, predict(grid, RECOVERY_KAPPA, RECOVERY_LAM, 0.0).test_error,
                            label=f"theory, λ = {RECOVERY_LAM:g}")
            except RuntimeError:
                pass
            ax.axvline(float(perfect_recovery_threshold(RECOVERY_KAPPA)), color="k", ls="--", lw=1, label="α_PR")
            ax.axvline(float(bayes_optimal_threshold(RECOVERY_KAPPA)), color="grey", ls=":", lw=1,
                       label="Bayes-optimal κ* − κ*²/2")
            ax.set(yscale="log", xlabel="α", ylabel="test error", title=f"noiseless recovery, κ* = {RECOVERY_KAPPA}")
            ax.legend(fontsize=7)
            figs["recovery"] = fig

        fig, ax = new_figure()
        ks = np.linspace(0.02, 1.5, 80)
        plot_theory(ax, ks, perfect_recovery_threshold(ks), label="α_PR(κ*) (ERM, λ → 0⁺)")
        plot_theory(ax, ks, bayes_optimal_threshold(ks), label="κ* − κ*²/2 (Bayes-optimal)", style="--")
        ax.set(xlabel="κ*", ylabel="α", title="perfect-recovery thresholds")
        ax.legend(fontsize=7)
        figs["thresholds"] = fig

        eq = results[results["part"] == "equivalence"]
        if len(eq):
            fig, ax = new_figure()
            e = eq.sort_values("m")
            ax.plot(e["m"], np.maximum(e["objective_gap"], 1e-17), "o-", label="(F(W) − F(S*))/F(S*)")
            ax.axvline(int(e["rank"].iloc[0]), color="k", ls="--", lw=1, label="rank of the convex minimizer")
            ax.axhline(1e-6, color="grey", ls=":", lw=1, label="1e-6")
            ax.set(yscale="log", xlabel="width m", ylabel="relative objective gap",
                   title=f"GD on W vs the convex twin, d = {int(e['d'].iloc[0])}")
            ax.legend(fontsize=7)
            figs["equivalence"] = fig
        return figs


register(NuclearRoute())
