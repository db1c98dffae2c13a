"""Study ``implicit-balancing`` (Soltanolkotabi, Stöger, Xie, COLT 2023).

Asymmetric matrix sensing y = 𝒜(X*) with X* ∈ R^{n1×n2} of rank r, dense Gaussian measurements (fewer than n1·n2,
so that interpolators abound), factorized gradient descent on UVᵀ (U (n1, k), V (n2, k)) from U₀ = αŪ, V₀ = αV̄.
Parts of the sweep:

- ``gd``: one run of factorized GD (width k, scale α, a fixed step budget); histories of the test error, the
  imbalance ‖UᵀU − VᵀV‖ and its bound, and the top r + 1 singular values. The α sweep uses k = min(n1, n2); the
  width comparison uses k ∈ {r, 2r, min(n1, n2)} at the smallest α (shared points are run once: same key). A run
  counts as converged when its test error has reached its plateau (``solvers.factorized.plateau_status``).
- ``phase``: one instance with m measurements on a smaller problem, the convex baseline (nuclear-norm least squares
  with a vanishing penalty), a success at relative error ≤ 1e-2. The predicted transition is the statistical
  dimension of the nuclear-norm descent cone (Amelunxen, Lotz, McCoy, Tropp 2014).

The small-initialization analysis gives no sharp exponent for how the error falls with α (the spurious directions
grow by an α-dependent factor during the escape from the origin), so the α claims are one-sided: the fitted power of
α must be positive by three standard errors across seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis import logistic_crossing
from ..backend import generator
from ..claims import Claim, Evidence, mean_sem, slope_with_se
from ..problems.matrix_sensing import GaussianOperator, low_rank_truth, measure
from ..report.figures import loglog, new_figure, plot_points
from ..solvers.factorized import factorized_gd, plateau_status
from ..solvers.nuclear import convex_recovery
from ..theory.sensing import degrees_of_freedom, nuclear_phase_transition, statistical_dimension_finite
from . import register
from .base import Part, Study
from .params import Param, per_scale

SUCCESS = 1e-2  # relative error counted as recovery in the phase-transition part
CONVEX_TOL = 1e-7  # relative duality gap of the convex solve's last stage
#: a GD run has reached its plateau when its test error moved by ≤ 5 % over the last tenth of its steps: a change of
#: 0.05 in log error, small beside the seed-to-seed spread (≈ 0.2) and the α range (ln 10⁴ ≈ 9) the claims fit
PLATEAU_RTOL = 0.05
#: standard errors by which a one-sided slope must clear 0 (a 1-in-740 false alarm for a normal estimate)
K_ONE_SIDED = 3.0

SCALES = {
    "test": dict(n1=16, n2=12, r=2, kappa=2.0, m_mult=3, alphas=[1e-3, 1e-4, 1e-5], steps=800, seeds=2,
                 ph_n1=10, ph_n2=8, ph_ratios=[1.2, 1.8, 2.4], ph_trials=2),
    "quick": dict(n1=30, n2=20, r=2, kappa=2.0, m_mult=4, alphas=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5], steps=1000,
                  seeds=3, ph_n1=16, ph_n2=12, ph_ratios=[1.2, 1.35, 1.5, 1.6, 1.7, 1.8, 1.95, 2.1], ph_trials=12),
    "paper": dict(n1=60, n2=40, r=3, kappa=3.0, m_mult=4, alphas=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7],
                  steps=3000, seeds=5, ph_n1=30, ph_n2=20, ph_ratios=[1.0, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 2.0],
                  ph_trials=30),
}


def instance(n1: int, n2: int, r: int, kappa: float, m: int, seed: int, device: str = "cpu"):
    """Truth factors, dense Gaussian operator and measurements, all from ``seed``."""
    g = generator(seed, device)
    L, R = low_rank_truth(n1, n2, r, kappa, g)
    op = GaussianOperator(m, n1, n2, g)
    return g, (L, R), op, measure(op, L, R)


def rel_error(X, L, R) -> float:
    """‖X − LRᵀ‖_F / ‖LRᵀ‖_F."""
    Xs = L @ R.T
    return float(((X - Xs) ** 2).sum().sqrt() / (Xs ** 2).sum().sqrt())


class SensingTheory:
    """What the claims hold the data against (calls into :mod:`overparam.theory.sensing`)."""

    @staticmethod
    def phase_ratio(n1: int, n2: int, r: int) -> float:
        """δ/(r(n1 + n2)): the statistical dimension on the study's axis m/(r(n1 + n2))."""
        return nuclear_phase_transition(n1, n2, r).ratio

    @staticmethod
    def finite_size_shift(n1: int, n2: int, r: int) -> float:
        """|δ_exact − δ_MP|/(r(n1 + n2)): the quadrature's finite-size error, by seeded Monte Carlo at this size."""
        pt = nuclear_phase_transition(n1, n2, r)
        return abs(statistical_dimension_finite(n1, n2, r, pt.tau) - pt.delta) / (r * (n1 + n2))


# --- the sweep ---------------------------------------------------------------------------------------------------
def gd_points(scale: str) -> list[dict]:
    """The α sweep at k = min(n1, n2) and the narrower widths r, 2r at the smallest α, ``seeds`` each."""
    c = SCALES[scale]
    base = dict(n1=c["n1"], n2=c["n2"], r=c["r"], kappa=c["kappa"], m=c["m_mult"] * c["r"] * (c["n1"] + c["n2"]),
                steps=c["steps"])
    kmax = min(c["n1"], c["n2"])
    pts = [dict(base, k=kmax, alpha=a, seed=s) for a in c["alphas"] for s in range(c["seeds"])]
    return pts + [dict(base, k=k, alpha=min(c["alphas"]), seed=s) for k in (c["r"], 2 * c["r"])
                  for s in range(c["seeds"])]


def phase_points(scale: str) -> list[dict]:
    """``ph_trials`` instances at each m = ratio·r(n1 + n2)."""
    c = SCALES[scale]
    unit = c["r"] * (c["ph_n1"] + c["ph_n2"])
    return [dict(n1=c["ph_n1"], n2=c["ph_n2"], r=c["r"], kappa=c["kappa"], m=int(round(q * unit)), ratio=q,
                 seed=100 + t) for q in c["ph_ratios"] for t in range(c["ph_trials"])]


def run_gd(p: dict) -> dict:
    """Factorized GD from scale α: final error, histories, the largest σ_{r+1}(UVᵀ) seen, status."""
    g, truth, op, y = instance(p["n1"], p["n2"], p["r"], p["kappa"], p["m"], p["seed"], p.get("device", "cpu"))
    res = factorized_gd(op, y, p["k"], p["alpha"], g, steps=p["steps"], truth=truth,
                        record_every=max(1, p["steps"] // 100))
    h = res.history
    keys = ["step", "test_error", "imbalance", "imbalance_bound"] + \
        [f"sv{i}" for i in range(1, p["r"] + 2) if f"sv{i}" in h]
    out = {f"h_{k}": h[k] for k in keys}
    out.update(final_error=h["test_error"][-1], max_imbalance=max(h["imbalance"]),
               gd_status=plateau_status(res, rtol=PLATEAU_RTOL), mu=h["mu"][0])
    sv_next = h.get(f"sv{p['r'] + 1}")
    if sv_next is not None:
        out["max_sv_next"] = max(sv_next)
    return out


def run_phase(p: dict) -> dict:
    """The convex baseline on one instance: relative error, success (≤ SUCCESS), solver status."""
    _, truth, op, y = instance(p["n1"], p["n2"], p["r"], p["kappa"], p["m"], p["seed"], p.get("device", "cpu"))
    res = convex_recovery(op, y, tol=CONVEX_TOL)
    err = rel_error(res.x, *truth)
    return {"convex_error": err, "convex_status": "converged" if res.converged else res.status,
            "convex_success": float(math.isfinite(err) and err <= SUCCESS),
            "m_ratio": p["m"] / (p["r"] * (p["n1"] + p["n2"]))}


# --- the claims --------------------------------------------------------------------------------------------------
def _kmax(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["k"] == np.minimum(df["n1"], df["n2"])]


def power_of_alpha(df: pd.DataFrame, column: str) -> tuple[float, float, int]:
    """Least-squares slope of log ``column`` on log α over every run of the k = min(n1, n2) sweep (y ∝ α^slope),
    its residual standard error and the number of runs."""
    sub = _kmax(df)
    sub = sub[np.isfinite(sub[column].astype(float)) & (sub[column].astype(float) > 0)]
    if sub["alpha"].nunique() < 3:
        return math.nan, math.nan, len(sub)
    slope, se = slope_with_se(np.log(sub["alpha"].astype(float)), np.log(sub[column].astype(float)))
    return slope, se, len(sub)


def _one_sided_power(column: str, what: str):
    def evaluate(df: pd.DataFrame, theory) -> Evidence | None:
        slope, se, n = power_of_alpha(df, column)
        if not math.isfinite(se):
            return None
        return Evidence(slope - K_ONE_SIDED * se, 0.0, se, n, 0.0,
                        f"{what} ∝ α^{slope:.3f} ± {se:.3f} over {df['alpha'].nunique()} values of α")
    return evaluate


def widths_at_smallest_alpha(df: pd.DataFrame, theory) -> Evidence | None:
    """max over narrower widths k of (mean log10 error_k − mean log10 error_kmax) at the smallest α."""
    sub = df[df["alpha"] == df["alpha"].min()]
    kmax = int(min(sub["n1"].iloc[0], sub["n2"].iloc[0]))
    # the recorder's test error is a difference of traces, resolved to √ε ≈ 1.5e-8 (k = r reaches it): clip there
    floor = math.sqrt(np.finfo(float).eps)
    stats = {int(k): mean_sem(np.log10(np.maximum(g["final_error"].astype(float), floor))) for k, g in sub.groupby("k")}
    if kmax not in stats or len(stats) < 2:
        return None
    top = stats.pop(kmax)
    k, (m, se, n) = max(stats.items(), key=lambda kv: kv[1][0])
    detail = ", ".join(f"k={kk}: 10^{v[0]:.2f}" for kk, v in sorted({**stats, kmax: top}.items()))
    return Evidence(m - top[0], 0.0, math.hypot(se, top[1]), min(n, top[2]), 0.0,
                    f"worst k = {k}; mean final error {detail}")


def convex_crossing(df: pd.DataFrame, theory) -> Evidence | None:
    """Logistic-fit 50 % point of convex success on m/(r(n1 + n2)) against the statistical dimension."""
    x50, se = logistic_crossing(df["m_ratio"].astype(float), df["convex_success"].astype(float))
    if not math.isfinite(se):
        return None
    n1, n2, r = int(df["n1"].iloc[0]), int(df["n2"].iloc[0]), int(df["r"].iloc[0])
    return Evidence(x50, theory.phase_ratio(n1, n2, r), se, len(df), theory.finite_size_shift(n1, n2, r),
                    f"{n1}×{n2}, r = {r}, {len(df)} trials")


GD_CLAIMS = [
    Claim("final error falls as a positive power of α (k = min(n1, n2)): fitted exponent − 3 s.e.",
          _one_sided_power("final_error", "final error"),
          "One-sided (the small-init analysis gives no sharp exponent): the least-squares exponent of final error "
          "on α over all runs (seeds × α) must exceed 0 by 3 residual standard errors.",
          comparison="at_least", k=0.0, converged=("gd_status",)),
    Claim("σ_{r+1}(UVᵀ) (max over the run) vanishes as a positive power of α: fitted exponent − 3 s.e.",
          _one_sided_power("max_sv_next", "max σ_{r+1}"),
          "One-sided, as for the error: the exponent of the largest (r+1)-th singular value on α must exceed 0 by "
          "3 residual standard errors (effective rank r as α → 0).",
          comparison="at_least", k=0.0, converged=("gd_status",)),
    Claim("every width r ≤ k < min(n1, n2) recovers at the smallest α at least as well as k = min(n1, n2): "
          "worst log10 error difference",
          widths_at_smallest_alpha,
          "The guarantee holds for every k ≥ r with fewer spurious directions when k is smaller; tolerance 3 standard "
          "errors of the difference of mean log10 errors across seeds.",
          comparison="at_most", k=3.0, converged=("gd_status",)),
]

PHASE_CLAIMS = [
    Claim("convex recovery switches on at the statistical dimension: m/(r(n1+n2)) where the logistic fit of "
          "success crosses 1/2",
          convex_crossing,
          "3 binomial standard errors of the logistic-fit crossing (delta method on the Fisher information, all "
          "trials) plus the measured finite-size error of δ (Monte Carlo δ at this size vs the Marchenko–Pastur "
          "quadrature).",
          k=3.0, converged=("convex_status",)),
]


# --- cost: GD's dominant work is a forward and an adjoint of the dense m × n1·n2 operator per step; the convex
# baseline's is its iterations' passes (absorbed by the fitted constant)
def _gd_work(p: dict) -> float:
    return 2.0 * p["steps"] * p["m"] * p["n1"] * p["n2"]


def _phase_work(p: dict) -> float:
    return float(p["m"] * p["n1"] * p["n2"])


def _memory(p: dict) -> float:
    return 8.0 * p["m"] * p["n1"] * p["n2"]


PARAMS = (
    Param("n1", int, "rows of the truth X* (n1 × n2)", per_scale(SCALES, "n1"), low=2),
    Param("n2", int, "columns of the truth X*", per_scale(SCALES, "n2"), low=2),
    Param("r", int, "rank of the truth", per_scale(SCALES, "r"), low=1),
    Param("m_mult", float, "measurements m = m_mult · r(n1 + n2)", per_scale(SCALES, "m_mult"), low=0,
          closed="neither"),
    Param("kappa", float, "condition number of X*", per_scale(SCALES, "kappa"), low=1, theory=False),
    Param("k", int, "width of the factors U (n1 × k), V (n2 × k); 0 means min(n1, n2)", {s: 0 for s in SCALES},
          low=0, theory=False),
    Param("alpha", float, "initialization scale α", per_scale(SCALES, "alphas"), low=0, closed="neither",
          theory=False),
    Param("steps", int, "gradient steps", per_scale(SCALES, "steps"), low=1, theory=False),
)


class ImplicitBalancing(Study):
    name = "implicit-balancing"
    claim = ("Factorized gradient descent on UVᵀ from a small random start of scale α keeps UᵀU − VᵀV small, recovers "
             "a low-rank X* for any width k ≥ r, stays effectively rank r, and its error shrinks with α.")
    version = "3"
    theory_model = SensingTheory
    params = PARAMS
    sweep_part = "gd"

    def parts(self) -> list[Part]:
        return [Part("gd", gd_points, run_gd, GD_CLAIMS, work=_gd_work, memory=_memory),
                Part("phase", phase_points, run_phase, PHASE_CLAIMS, work=_phase_work, memory=_memory)]

    def sweep_point(self, values: dict, seed: int) -> dict:
        """A ``gd`` point: m from ``m_mult``, k = min(n1, n2) when 0; refuses r or k beyond the dimensions."""
        v = dict(values)
        n1, n2, r = v["n1"], v["n2"], v["r"]
        if r > min(n1, n2):
            raise ValueError(f"r: must be ≤ min(n1, n2) = {min(n1, n2)} (got {r})")
        k = v.pop("k") or min(n1, n2)
        if not r <= k <= min(n1, n2):
            raise ValueError(f"k: must lie in [r, min(n1, n2)] = [{r}, {min(n1, n2)}] (got {k})")
        m = int(round(v.pop("m_mult") * r * (n1 + n2)))
        return dict(v, k=k, m=m, seed=seed)

    def predict(self, values: dict) -> dict:
        """The convex phase transition: statistical dimension δ of the rank-r nuclear-norm descent cone, as
        m/(r(n1 + n2)) (``m_ratio_threshold``) and in measurements; whether m_mult lies above it."""
        ratio = self.theory_model.phase_ratio(values["n1"], values["n2"], values["r"])
        unit = values["r"] * (values["n1"] + values["n2"])
        return dict(m_ratio_threshold=ratio, m_threshold=ratio * unit,
                    m=values["m_mult"] * unit, above_threshold=float(values["m_mult"] > ratio))

    def figures(self, results: pd.DataFrame) -> dict:
        figs = {}
        gd = results[results["part"] == "gd"]
        if len(gd):
            figs.update(self._gd_figures(gd))
        ph = results[results["part"] == "phase"]
        if len(ph):
            figs["success_probability"] = self._phase_figure(ph)
        return figs

    @staticmethod
    def _gd_figures(gd: pd.DataFrame) -> dict:
        figs = {}
        kmax = int(min(gd["n1"].iloc[0], gd["n2"].iloc[0]))
        r = int(gd["r"].iloc[0])
        amin = gd["alpha"].min()
        fig, ax = new_figure()
        for _, row in gd[gd["alpha"] == amin].sort_values("k").drop_duplicates("k").iterrows():
            ax.plot(row["h_step"], np.maximum(row["h_test_error"], 1e-16), label=f"k = {int(row['k'])}")
        ax.set(yscale="log", xlabel="iteration", ylabel="‖UVᵀ − X*‖_F / ‖X*‖_F", title=f"error vs iteration, α = {amin:g}")
        ax.legend()
        figs["error_vs_iteration"] = fig

        fig, ax = new_figure()
        sub = _kmax(gd)
        plot_points(ax, sub, "alpha", "final_error", label=f"final error, k = {kmax}")
        plot_points(ax, sub, "alpha", "max_sv_next", label=f"max σ_{r + 1}(UVᵀ)", marker="s")
        slope, se, _ = power_of_alpha(gd, "final_error")
        xs = np.geomspace(sub["alpha"].min(), sub["alpha"].max(), 50)
        c0 = np.exp(np.mean(np.log(sub["final_error"]) - slope * np.log(sub["alpha"])))
        ax.plot(xs, c0 * xs**slope, "--", lw=1, label=f"fit: α^({slope:.2f} ± {se:.2f})")
        loglog(ax)
        ax.set(xlabel="initialization scale α", ylabel="final relative error", title="error vs α")
        ax.legend()
        figs["error_vs_alpha"] = fig

        fig, ax = new_figure()
        one = sub.sort_values(["alpha", "seed"]).drop_duplicates("alpha")
        for i, (_, row) in enumerate(one.iterrows()):
            ax.plot(row["h_step"], row["h_imbalance"], color=f"C{i}", label=f"α = {row['alpha']:g}")
            ax.plot(row["h_step"], row["h_imbalance_bound"], color=f"C{i}", ls=":", lw=1)
        ax.set(yscale="log", xlabel="iteration", ylabel="‖UᵀU − VᵀV‖_op", title="imbalance (dotted: recursion bound)")
        ax.legend()
        figs["imbalance_vs_iteration"] = fig

        fig, ax = new_figure()
        row = one[one["alpha"] == amin].iloc[0]
        for i in range(1, r + 2):
            key = f"h_sv{i}"
            if key in row and isinstance(row[key], list):
                ax.plot(row["h_step"], row[key], label=f"σ_{i}(UVᵀ)", ls="-" if i <= r else "--")
        ax.axhline(amin, color="grey", ls=":", lw=1, label="α")
        ax.set(yscale="log", xlabel="iteration", ylabel="singular value", title=f"effective rank, k = {kmax}, α = {amin:g}")
        ax.legend()
        figs["singular_values"] = fig
        return figs

    @staticmethod
    def _phase_figure(ph: pd.DataFrame):
        n1, n2, r = int(ph["n1"].iloc[0]), int(ph["n2"].iloc[0]), int(ph["r"].iloc[0])
        fig, ax = new_figure()
        rate = ph.groupby("m_ratio")["convex_success"].agg(["mean", "count"])
        ax.errorbar(rate.index, rate["mean"], yerr=np.sqrt(rate["mean"] * (1 - rate["mean"]) / rate["count"]),
                    fmt="o", ms=4, capsize=2, label="convex (nuclear norm)")
        x50, se = logistic_crossing(ph["m_ratio"], ph["convex_success"])
        if math.isfinite(x50):
            ax.axvspan(x50 - se, x50 + se, color="C0", alpha=0.2, label=f"fitted 1/2 crossing {x50:.2f} ± {se:.2f}")
        pt = nuclear_phase_transition(n1, n2, r)
        ax.axvline(pt.ratio, color="k", ls="--", lw=1, label=f"predicted δ/(r(n1+n2)) = {pt.ratio:.2f}")
        ax.axvline(degrees_of_freedom(n1, n2, r) / (r * (n1 + n2)), color="grey", ls=":", lw=1,
                   label="degrees of freedom")
        ax.set(xlabel="m / (r (n1 + n2))", ylabel=f"P(relative error ≤ {SUCCESS:g})",
               title=f"convex recovery, {n1}×{n2}, r = {r}")
        ax.legend()
        return fig


register(ImplicitBalancing())
