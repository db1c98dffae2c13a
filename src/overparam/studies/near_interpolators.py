"""Study ``near-interpolators`` (Wang, Sonthalia, Hu, AISTATS 2024).

Ridge regression on x = Σ^{1/2}z with λ_i = i^−α and p = n/γ features: held at training error τ < σ², the weight norm
grows like n^α, and test error trades against training error along an exact curve.

Parts of the sweep (``part`` in each point):

- ``norm``: α ∈ {1.25, 2.5}, γ = 2/3, τ = 0.2, n log-spaced over a decade. One design X per seed (one SVD); on it
  ``reps`` draws of (β*, ε), each with λ̂ chosen so the training error is τ: their mean ‖β̂‖² (the expectation the
  theory speaks of; the draws of the target and noise dominate its spread, the design adds ~5 %).
- ``tradeoff``: n ≈ 1000 (quick), τ across (0.05, 1), test error (exact population risk) against τ.
- ``network``: a one-hidden-layer ReLU net trained by full-batch Adam until its training MSE < τ; ‖θ‖² against n,
  shown in a figure and not judged (no theory predicts it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..analysis import loglog_slope as fit_slope
from ..backend import generator
from ..claims import Claim, Evidence, line_fit, mean_sem, pooled_mean, slope_with_se
from ..problems.linear_regression import powerlaw_problem
from ..report.figures import aggregate, loglog, new_figure, plot_points, plot_theory
from ..solvers.module import fit_module
from ..solvers.ridge import ridge_at_tau as solve_at_tau
from ..theory.ridge import powerlaw_tradeoff
from . import register
from .base import Part, Study
from .params import Param, per_scale

GAMMA, SIGMA2, TAU = 2 / 3, 1.0, 0.2
ALPHAS = (1.25, 2.5)
TRADEOFF_ALPHA = 1.5

SCALES = {
    #        norm n grid                     seeds reps  tradeoff n  taus seeds reps  net n              seeds width
    "test": dict(ns=[100, 200, 400], seeds=2, reps=8, n_trade=200, n_tau=6, t_seeds=2, t_reps=8,
                 net_ns=[16, 32], net_seeds=1, width=32),
    "quick": dict(ns=[178, 316, 562, 1000], seeds=12, reps=64, n_trade=1000, n_tau=12, t_seeds=6, t_reps=8,
                  net_ns=[50, 100, 200, 400], net_seeds=2, width=64),
    "paper": dict(ns=[100, 178, 316, 562, 1000, 1778, 3162], seeds=16, reps=64, n_trade=3000, n_tau=20,
                  t_seeds=8, t_reps=32, net_ns=[50, 100, 200, 400, 800, 1600], net_seeds=4, width=256),
}


TAU_MAX = 0.85  # ‖y‖²/n ≈ σ² + 10·Σλ_i/p is only a little above σ² = 1: larger τ is not always attainable


def taus(n_tau: int) -> list[float]:
    """τ grid across (0.05, 1): n_tau values from 0.05 to 0.85."""
    return [round(float(t), 6) for t in np.linspace(0.05, TAU_MAX, n_tau)]


def ridge_at_tau(n: int, alpha: float, tau_list: list[float], seed: int, reps: int, device: str) -> dict:
    """:func:`overparam.solvers.ridge.ridge_at_tau` on the study's power-law problem."""
    return solve_at_tau(powerlaw_problem(n, alpha, GAMMA, SIGMA2, device=device), n, tau_list,
                        generator(seed, device), reps)


def theory_at_tau(n: int, alpha: float, tau: float) -> dict:
    """The deterministic equivalent at training error τ on the study's power-law problem."""
    return powerlaw_problem(n, alpha, GAMMA, SIGMA2).theory_at_tau(n, tau)


class RidgeTheory:
    """What the claims hold the data against: the deterministic equivalent at the λ whose predicted training error
    is τ (:func:`theory_at_tau`, calls into :mod:`overparam.theory.ridge`)."""

    @staticmethod
    def norm2(n: int, alpha: float, tau: float) -> float:
        """E‖β̂‖² at training error τ."""
        return theory_at_tau(n, alpha, tau)["norm2"]

    @staticmethod
    def test_error(n: int, alpha: float, tau: float) -> float:
        """The population risk at training error τ."""
        return theory_at_tau(n, alpha, tau)["test_error"]


def norm_points(scale: str) -> list[dict]:
    c = SCALES[scale]
    return [{"alpha": a, "n": n, "tau": TAU, "seed": s, "reps": c["reps"]}
            for a in ALPHAS for n in c["ns"] for s in range(c["seeds"])]


def tradeoff_points(scale: str) -> list[dict]:
    c = SCALES[scale]
    return [{"alpha": TRADEOFF_ALPHA, "n": c["n_trade"], "taus": taus(c["n_tau"]), "seed": 1000 + s,
             "reps": c["t_reps"]} for s in range(c["t_seeds"])]


def network_points(scale: str) -> list[dict]:
    c = SCALES[scale]
    return [{"alpha": ALPHAS[0], "n": n, "tau": TAU, "seed": 2000 + s, "width": c["width"]}
            for n in c["net_ns"] for s in range(c["net_seeds"])]


def run_norm(point: dict) -> dict:
    r = ridge_at_tau(point["n"], point["alpha"], [point["tau"]], point["seed"], point["reps"],
                     point.get("device", "cpu"))
    return {k: v[0] for k, v in r.items()}


def run_tradeoff(point: dict) -> dict:
    return ridge_at_tau(point["n"], point["alpha"], point["taus"], point["seed"], point["reps"],
                        point.get("device", "cpu"))


def run_network(point: dict) -> dict:
    """One-hidden-layer ReLU net, full-batch Adam until training MSE < τ."""
    n, tau, device = point["n"], point["tau"], point.get("device", "cpu")
    prob = powerlaw_problem(n, point["alpha"], GAMMA, SIGMA2, device=device)
    g = generator(point["seed"], device)
    X = prob.design(n, g)
    beta_star = prob.target(g)
    y = prob.labels(X, beta_star, g)
    torch.manual_seed(point["seed"])
    net = torch.nn.Sequential(torch.nn.Linear(prob.p, point["width"]), torch.nn.ReLU(),
                              torch.nn.Linear(point["width"], 1)).to(dtype=X.dtype, device=X.device)
    norm0 = sum(float((p.detach() ** 2).sum()) for p in net.parameters())

    def mse(out, target):
        return ((out.squeeze(-1) - target) ** 2).mean()

    res = fit_module(net, mse, X, y, method="adam", lr=1e-3, max_steps=20000,
                     stop=lambda t, loss, ps: loss < tau, record_every=100)
    Xt = prob.design(2000, g)
    yt = prob.labels(Xt, beta_star, g)
    with torch.no_grad():
        test = float(mse(net(Xt), yt))
        train = float(mse(net(X), y))
    return {"norm2": sum(float((p.detach() ** 2).sum()) for p in net.parameters()), "norm2_init": norm0,
            "train_error": train, "test_error": test, "steps": res.steps, "reached_tau": float(train < tau),
            "fit_status": "converged" if train < tau else res.status}


# --- the claims ----------------------------------------------------------------------------------------------------
def equal_weight_pooled(ratios, sems) -> tuple[float, float]:
    """Pooled ratio with equal weights, its standard error √(Σ sᵢ²)/N: the norms are skewed across seeds, so a
    point's standard error grows with its mean and inverse-variance weights would bias the pooled ratio low."""
    sems = np.asarray(sems, float)
    return pooled_mean(ratios, np.full(len(sems), math.sqrt(np.mean(sems ** 2))))


def _seed_stats(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, standard error across seeds and count of ``column`` at each n."""
    rows = [(int(n),) + mean_sem(g[column].astype(float)) for n, g in df.groupby("n")]
    return pd.DataFrame(rows, columns=["n", "mean", "sem", "count"]).sort_values("n")


def finite_n_fit(df: pd.DataFrame, alpha: float, theory, tau: float = TAU
                 ) -> tuple[pd.DataFrame, float, float, float, float]:
    """sim/DE = a + c/n fitted over the n grid (equal weights, the seeds' RMS standard error): the deterministic
    equivalent is exact as n → ∞ and off by O(1/n) relative at finite n. Returns (table, a, s.e. of a, c, s.e. of c):
    a = r̄ − c·x̄ (x = 1/n), Var a = σ²/N + x̄² Var c."""
    st = _seed_stats(df[(df["alpha"] == alpha) & np.isclose(df["tau"], tau)], "norm2")
    de = np.array([theory.norm2(int(n), alpha, tau) for n in st["n"]])
    st = st.assign(ratio=st["mean"] / de, ratio_se=st["sem"] / de)
    if len(st) < 3:
        return st, math.nan, math.nan, math.nan, math.nan
    x = 1.0 / st["n"].to_numpy(float)
    sig = math.sqrt(float(np.mean(st["ratio_se"] ** 2)))
    c, c_se, a, a_se = line_fit(x, st["ratio"], np.full(len(st), sig))
    return st, a, a_se, c, c_se


def _norm_ratio(alpha: float, tau: float):
    def evaluate(df: pd.DataFrame, theory) -> Evidence | None:
        st, a, a_se, c, c_se = finite_n_fit(df, alpha, theory, tau)
        if not math.isfinite(a_se):
            return None
        return Evidence(a, 1.0, a_se, int(st["count"].sum()), 0.0,
                        f"sim/DE from {st['ratio'].iloc[0]:.3f} (n = {int(st['n'].iloc[0])}) to "
                        f"{st['ratio'].iloc[-1]:.3f} (n = {int(st['n'].iloc[-1])}); fitted finite-n term "
                        f"({c:.1f} ± {c_se:.1f})/n")
    return evaluate


def _norm_slope(alpha: float, tau: float):
    def evaluate(df: pd.DataFrame, theory) -> Evidence | None:
        # the finite-n term is measured against the reference deterministic equivalent (RidgeTheory), not the theory
        # under test: an allowance measured once from the data, which a perturbed theory must not widen
        st, a, _, c, _ = finite_n_fit(df, alpha, RidgeTheory, tau)
        if not math.isfinite(c):
            return None
        # equal weights (the RMS relative standard error at every n), for the reason given in equal_weight_pooled
        x = np.log(st["n"].to_numpy(float))
        rel = np.full(len(st), math.sqrt(np.mean((st["sem"] / st["mean"]) ** 2)))
        slope, se = slope_with_se(x, np.log(st["mean"]), rel)
        de = [theory.norm2(int(n), alpha, tau) for n in st["n"]]
        pred, _ = slope_with_se(x, np.log(de), rel)
        # the measured finite-n term c/n of the ratio bends the log-log slope by the slope of log(a + c/n)
        bias, _ = slope_with_se(x, np.log(np.maximum(a + c / st["n"].to_numpy(float), 1e-12)), rel)
        return Evidence(slope, pred, se, int(st["count"].sum()), bias,
                        f"n from {int(st['n'].min())} to {int(st['n'].max())}; the n → ∞ limit is α = {alpha}")
    return evaluate


def tradeoff_ratio(df: pd.DataFrame, theory) -> Evidence | None:
    """Pooled sim/DE test error over the τ grid (seeds' standard errors at each τ)."""
    if len(df) < 2:
        return None
    n, ts = int(df["n"].iloc[0]), np.asarray(df["taus"].iloc[0], float)
    test = np.stack([np.asarray(v, float) for v in df["test_error"]])
    mean, sem = test.mean(0), test.std(0, ddof=1) / math.sqrt(len(test))
    de = np.array([theory.test_error(n, TRADEOFF_ALPHA, t) for t in ts])
    ratio, se = equal_weight_pooled(mean / de, sem / de)
    worst = int(np.argmax(np.abs(mean / de - 1)))
    return Evidence(ratio, 1.0, se, len(test), 1.0 / n,
                    f"{len(ts)} values of τ, {len(test)} seeds; largest deviation {mean[worst] / de[worst] - 1:+.3f} "
                    f"at τ = {ts[worst]:.3g}")


_DE_BIAS = ("plus the deterministic equivalent's own finite-n error, O(1/n) relative (taken as 1/n at the smallest n)")


def _norm_claims(alphas=ALPHAS, taus=(TAU,)) -> list[Claim]:
    """The claims on the ``norm`` rows, one pair per (α, τ) of the grid (the study's own, or a user's sweep)."""
    out = []
    for a, tau in ((a, t) for a in alphas for t in taus):
        out.append(Claim(
            f"mean ‖β̂‖² matches the deterministic equivalent (α = {a}, τ = {tau}): sim/DE extrapolated to n → ∞",
            _norm_ratio(a, tau),
            "3 standard errors of the intercept a of sim/DE = a + c/n fitted over the n grid (seeds' spread at each "
            "n): the DE's O(1/n) finite-n error is measured by the fit and extrapolated out."))
        out.append(Claim(
            f"‖β̂‖² grows like n^α (α = {a}{'' if tau == TAU else f', τ = {tau}'}): fitted log-log slope against "
            "the DE's slope over the same n", _norm_slope(a, tau),
            "3 standard errors of the slope (seeds' spread at each n) plus the measured finite-n bias: the slope that "
            "the c/n term of sim/DE (fitted against the reference DE) adds over the same n grid."))
    return out


TRADEOFF_CLAIMS = [Claim(
    f"test error against training error follows the deterministic equivalent (α = {TRADEOFF_ALPHA}): pooled "
    "sim/DE over τ", tradeoff_ratio,
    "3 standard errors of the equal-weight pooled ratio (seeds' spread at each τ), " + _DE_BIAS + ".")]


# --- cost: one SVD of the n × p design (p = n/γ) per seed dominates: n²·p multiply-adds; then reps solves of n
def _norm_work(p: dict) -> float:
    return p["n"] ** 3 / GAMMA + p.get("reps", 1) * p["n"] ** 2


def _norm_memory(p: dict) -> float:
    # the n × p design, its SVD factors and LAPACK's workspace: about 7 such arrays at once (85 MB measured above
    # the interpreter at n = 1000 against 86 MB from this formula)
    return 8.0 * 7 * p["n"] ** 2 / GAMMA


def _tradeoff_work(p: dict) -> float:
    return _norm_work(p) * len(p["taus"])


def _network_work(p: dict) -> float:
    return p["n"] * p["n"] / GAMMA * p["width"]  # one epoch's forward-backward; the steps taken vary


PARAMS = (
    Param("alpha", float, "spectral decay: covariance eigenvalues λ_i = i^−α", {s: list(ALPHAS) for s in SCALES},
          low=1, closed="neither"),
    Param("n", int, "number of samples (p = n/γ features, γ = 2/3)", per_scale(SCALES, "ns"), low=10),
    Param("tau", float, "training error held fixed, below the noise σ² = 1", {s: TAU for s in SCALES}, low=0,
          high=TAU_MAX, closed="neither"),
    Param("reps", int, "draws of (β*, ε) per design, averaged", per_scale(SCALES, "reps"), low=1, theory=False),
)


class NearInterpolators(Study):
    name = "near-interpolators"
    claim = ("Ridge held at training error τ < σ² on power-law data (λ_i = i^−α, p = n/γ) has ‖β̂‖² growing like n^α, "
             "and its test error follows an exact curve in the training error.")
    version = "2"
    theory_model = RidgeTheory
    params = PARAMS
    sweep_part = "norm"

    def parts(self) -> list[Part]:
        # the network has no theory: it is shown (figure network_norm_vs_n), not judged
        g = self.user_grid
        claims = _norm_claims(g["alpha"], g["tau"]) if g else _norm_claims()
        return [Part("norm", norm_points, run_norm, claims, work=_norm_work, memory=_norm_memory),
                Part("tradeoff", tradeoff_points, run_tradeoff, TRADEOFF_CLAIMS, work=_tradeoff_work,
                     memory=_norm_memory),
                Part("network", network_points, run_network, [], work=_network_work, memory=_norm_memory)]

    def predict(self, values: dict) -> dict:
        """E‖β̂‖², test error and the limit constant ‖β‖²/n^α at training error τ (deterministic equivalent)."""
        t = theory_at_tau(int(values["n"]), values["alpha"], values["tau"])
        lim = float(powerlaw_tradeoff(values["alpha"], GAMMA, values["tau"], SIGMA2).norm2_over_n_alpha)
        return dict(lam=float(t["lam"]), norm2=float(t["norm2"]), test_error=float(t["test_error"]),
                    norm2_over_n_alpha=lim)

    @staticmethod
    def _norm_table(results):
        df = results[results["part"] == "norm"].copy()
        df["norm2"] = df["norm2"].astype(float)
        return df

    def figures(self, results) -> dict:
        figs = {}
        df = self._norm_table(results)
        fig, ax = new_figure()
        tau = float(df["tau"].iloc[0]) if len(df) else TAU
        for i, a in enumerate(sorted(df["alpha"].unique()) if len(df) else ALPHAS):
            color = ("C0", "C3", "C2", "C1", "C4")[i % 5]
            sub = df[(df["alpha"] == a) & np.isclose(df["tau"], tau)]
            if not len(sub):
                continue
            plot_points(ax, sub, "n", "norm2", label=f"simulation α = {a}", color=color)
            ns = np.unique(np.geomspace(sub["n"].min(), sub["n"].max(), 12).astype(int))
            plot_theory(ax, ns, [theory_at_tau(int(n), a, tau)["norm2"] for n in ns],
                        label=f"deterministic equivalent α = {a}", color=color)
            lim = float(powerlaw_tradeoff(a, GAMMA, tau, SIGMA2).norm2_over_n_alpha)
            plot_theory(ax, ns, lim * ns.astype(float) ** a, label=f"limit n^α·{lim:.3g}", color=color, style=":")
        loglog(ax)
        ax.set(xlabel="n", ylabel="‖β̂‖²", title=f"norm at training error τ = {tau:g}")
        ax.legend()
        figs["norm_vs_n"] = fig

        tr = results[results["part"] == "tradeoff"]
        if len(tr):
            n, ts = int(tr["n"].iloc[0]), np.asarray(tr["taus"].iloc[0])
            test = np.stack([np.asarray(v, float) for v in tr["test_error"]])
            fig, ax = new_figure()
            ax.errorbar(ts, test.mean(0), yerr=test.std(0) / math.sqrt(len(test)), fmt="o", ms=4, capsize=2,
                        label=f"simulation n = {n}")
            fine = np.linspace(ts.min(), ts.max(), 40)
            plot_theory(ax, fine, [theory_at_tau(n, TRADEOFF_ALPHA, t)["test_error"] for t in fine],
                        label=f"deterministic equivalent n = {n}")
            lim = powerlaw_tradeoff(TRADEOFF_ALPHA, GAMMA, fine, SIGMA2)
            plot_theory(ax, lim.train_error, lim.test_error, label="n → ∞ limit", style="--")
            ax.set(xlabel="training error τ", ylabel="test error", title=f"trade-off (α = {TRADEOFF_ALPHA}, γ = 2/3)")
            ax.legend()
            figs["tradeoff"] = fig

        net = results[results["part"] == "network"]
        if len(net):
            fig, ax = new_figure()
            plot_points(ax, net, "n", "norm2", label="‖θ‖² after fitting to τ")
            plot_points(ax, net, "n", "norm2_init", label="‖θ‖² at initialization", marker="s")
            sub = aggregate(net, "n", "norm2")
            slope = fit_slope(sub["n"], sub["mean"])
            loglog(ax)
            ax.set(xlabel="n", ylabel="‖θ‖²",
                   title=f"ReLU network, fitted slope {slope:.2f}")
            ax.legend()
            figs["network_norm_vs_n"] = fig
        return figs


register(NearInterpolators())
