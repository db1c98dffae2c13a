"""Study ``nuclear-route`` (Erba et al. 2025): ERM of quadratic networks, its convex twin and sharp asymptotics.

Parts of the sweep:

- ``errors``: one convex solve (trace-penalized PSD sensing, FISTA with restart, duality-gap stop) at (α, κ*, λ, Δ) on
  the GOE design (d ≥ 50 at the quick scale) or the real quadratic features (the largest d that fits the time):
  test error, training error, rank fraction and spectrum of the minimizer, held against ``theory.quadratic_erm``.
- ``finite_size``: the same solve at one point (κ* = 2, α = 0.5) and smaller d; with the ``errors`` rows at that point
  it measures the 1/d finite-size trend that the claims on ``errors`` allow for.
- ``recovery``: Δ = 0, λ → 0⁺ (λ = 1e-3), α around the perfect-recovery threshold α_PR(κ*), at two d.
- ``powerlaw``: the convex solve with a power-law teacher (eigenvalues ∝ j^−γ in a random basis, ‖S*‖²_F/d = q0,
  GOE design) at two d (80 the largest at the quick scale): errors, rank fraction and the learned spectrum against the
  theory for that teacher's own eigenvalues (free convolution by subordination).
- ``equivalence``: gradient descent on W of width m against the convex minimizer on the same data: it reaches the
  convex objective once m reaches the convex minimizer's rank, and stays above it below; at one d a list of widths,
  at further d and seeds the widths rank − 1, rank and rank + 1 of each draw's own minimizer.
- ``threshold``: exact noiseless solves (min Tr S s.t. 𝒜S = y, S ⪰ 0; :mod:`overparam.solvers.nuclear_interp`) on a
  nested GOE design, the smallest number of samples that recovers S* located by bisection, for κ* = 0.1, 0.3, 0.5 at
  three d (40 the largest at the quick scale): the located α against α_PR(κ*).
- ``interpolator``: the same solver on noisy labels, the minimum-nuclear-norm interpolator (λ → 0⁺) where one exists
  (α below the interpolation threshold): test error and rank fraction against the theory's λ → 0⁺ limit.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from ..backend import generator
from ..claims import Claim, Evidence, line_fit, mean_sem, pooled_mean
from ..problems.quadratic_net import (CHUNK_BYTES, RANK_RTOL, make_problem, powerlaw_teacher, powerlaw_teacher_spectrum,
                                      psd_rank)
from ..report.figures import new_figure, plot_points, plot_theory
from ..solvers.factorized import gram_factorized_gd
from ..solvers.nuclear_interp import TraceInterpolator, min_trace_interpolation, recovery_threshold
from ..theory import quadratic_erm
from .base import Part, Study
from .params import Param, per_scale
from . import register

CONFIGS = [(0.5, 0.1, 0.1), (2.0, 0.1, 0.5)]  # (κ*, λ, Δ)
FINITE_SIZE = dict(kappa=2.0, lam=0.1, noise=0.5, alpha=0.5)  # where the 1/d trend is measured (one of the errors points)
RECOVERY_KAPPA, RECOVERY_LAM = 0.3, 1e-3
EQUIV = dict(kappa=0.5, lam=0.1, noise=0.1, alpha=1.0)
POWERLAW = dict(gamma=1.5, q0=1.0, lam=0.1, noise=0.1)  # teacher eigenvalues ∝ j^−γ, ‖S*‖²_F/d = q0
CONVEX_TOL = 1e-9  # relative duality gap at which the convex solve stops
GD_GRAD_TOL = 1e-13  # ‖∇_W F‖ at which gradient descent on W stops
THRESHOLD_KAPPAS = (0.1, 0.3, 0.5)  # κ* at which α_PR is located by exact noiseless solves
SUCCESS_RTOL = 1e-3  # a noiseless solve recovers S* when ‖Ŝ − S*‖_F/‖S*‖_F ≤ this
THRESHOLD_RESOLUTION = 0.004  # the bisection stops at a bracket this wide in α (⌊0.004·d²⌋ samples, at least 1)
INTERP_TOL = 1e-7  # certificate tolerance of the minimum-trace interpolator (feasibility, dual feasibility, gap)
INTERP_CONFIGS = [(0.5, 0.5), (0.3, 0.1)]  # (κ*, Δ) of the noisy minimum-nuclear-norm interpolator
INTERP_LAM = 1e-5  # the λ at which the theory's λ → 0⁺ limit is read (test: it moves < 2e-4 relative from 1e-4)

SCALES = {
    "test": dict(d_goe=20, d_real=24, alphas=[0.5, 1.0, 2.0], seeds=1, real_seeds=1, configs=CONFIGS,
                 fs_ds=[12, 16], fs_seeds=1, rec_ds=[14, 20], rec_alphas=[0.2, 0.29, 0.42, 0.5], rec_seeds=1, eq_d=10,
                 eq_ms=[2, 4, 10, 20], eq_steps=60000, pl_ds=[12, 20], pl_alphas=[0.5, 1.0], pl_seeds=2),
    "quick": dict(d_goe=60, d_real=80, alphas=[0.25, 0.5, 1.0, 1.5, 2.0, 3.0], seeds=6, real_seeds=2, configs=CONFIGS,
                  fs_ds=[20, 30, 40], fs_seeds=12, rec_ds=[30, 50],
                  rec_alphas=[0.2, 0.25, 0.29, 0.31, 0.34, 0.36, 0.42, 0.5], rec_seeds=2, eq_d=20, eq_ms=[4, 8, 11, 12, 13, 14, 15, 20, 40], eq_steps=60000,
                  pl_ds=[40, 80], pl_alphas=[0.5, 1.0], pl_seeds=3),
    # paper: the real quadratic features at the paper's d = 400 (n = α d² up to 320 000, X 1 GB in float64), α ≤ 2
    "paper": dict(d_goe=100, d_real=400, alphas=[0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0], seeds=8,
                  real_alphas=[0.25, 0.5, 1.0, 1.5, 2.0], real_seeds=2, configs=CONFIGS, fs_ds=[40, 60], fs_seeds=8, rec_ds=[60, 100],
                  rec_alphas=[0.2, 0.25, 0.29, 0.31, 0.34, 0.36, 0.42, 0.5], rec_seeds=4, eq_d=40,
                  eq_ms=[5, 10, 20, 25, 30, 40, 80], eq_steps=200000, pl_ds=[60, 120], pl_alphas=[0.25, 0.5, 1.0, 2.0],
                  pl_seeds=4),
}


# sizes of the threshold, interpolator and extended equivalence parts and of the real features' finite-size rows
EXTRA = {
    "test": dict(thr_ds=[6, 10, 12], thr_seeds=1, thr_iters=5000, ip_ds=[10, 14], ip_alphas=[0.1, 0.2], ip_seeds=2, eq_more_ds=[8],
                 eq_more_seeds=[301], eq_offsets=[-1, 0], fs_real_ds=[12, 16], fs_real_seeds=1),
    "quick": dict(thr_ds=[20, 30, 40], thr_seeds=4, thr_iters=20000, ip_ds=[30, 50], ip_alphas=[0.1, 0.2], ip_seeds=6,
                  eq_more_ds=[10, 14], eq_more_seeds=[301, 302], eq_offsets=[-1, 0, 1], fs_real_ds=[24, 40],
                  fs_real_seeds=4),
    "paper": dict(thr_ds=[40, 60, 80], thr_seeds=8, thr_iters=20000, ip_ds=[50, 80], ip_alphas=[0.05, 0.1, 0.15, 0.2, 0.25],
                  ip_seeds=8, eq_more_ds=[20, 30], eq_more_seeds=[301, 302, 303], eq_offsets=[-2, -1, 0, 1, 3],
                  fs_real_ds=[40, 80, 160], fs_real_seeds=4),
}


# --- theory handed to the claims ------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _predict(alphas: tuple[float, ...], kappa: float | None, lam: float, noise: float,
             spectrum: tuple[float, ...] | None = None) -> quadratic_erm.Prediction:
    return quadratic_erm.predict(np.asarray(alphas), kappa, lam, noise,
                                 teacher_spectrum=None if spectrum is None else np.asarray(spectrum))


class QuadraticERMTheory:
    """``overparam.theory.quadratic_erm`` as the claims call it (a test subclasses it with a perturbation)."""

    @staticmethod
    def predict(alpha, kappa_star: float | None, lam: float, noise: float,
                teacher_spectrum=None) -> quadratic_erm.Prediction:
        a = np.atleast_1d(np.asarray(alpha, dtype=float))
        spec = None if teacher_spectrum is None else tuple(np.asarray(teacher_spectrum, dtype=float).tolist())
        return _predict(tuple(a.tolist()), None if kappa_star is None else float(kappa_star), float(lam),
                        float(noise), spec)

    @staticmethod
    def perfect_recovery_threshold(kappa_star) -> np.ndarray:
        return quadratic_erm.perfect_recovery_threshold(kappa_star)

    @staticmethod
    def learned_spectrum(alpha: float, kappa_star: float | None, lam: float, noise: float, teacher_spectrum=None):
        return quadratic_erm.learned_spectrum(alpha, kappa_star, lam, noise, teacher_spectrum)

    @staticmethod
    def learned_spectrum_cdf(x, alpha: float, kappa_star: float | None, lam: float, noise: float,
                             teacher_spectrum=None) -> np.ndarray:
        return quadratic_erm.learned_spectrum_cdf(x, alpha, kappa_star, lam, noise, teacher_spectrum)

    @staticmethod
    def width_needed(rank: int) -> int:
        """GD on W of width m reaches the convex twin's minimum iff m ≥ rank of the convex minimizer."""
        return int(rank)


# --- runs -------------------------------------------------------------------------------------------------------------
def _convex_metrics(p: dict) -> tuple[object, object, dict]:
    g = generator(p["seed"], p.get("device", "cpu"))
    if "gamma" in p:  # a power-law teacher in a random basis, drawn first from the same generator
        S = powerlaw_teacher(p["d"], p["gamma"], g, q0=p["q0"])
        prob = make_problem(p["d"], p["alpha"], None, p["noise"], g, p["design"], S_star=S)
    else:
        prob = make_problem(p["d"], p["alpha"], p["kappa"], p["noise"], g, p["design"])
    res = prob.convex_twin(p["lam"], tol=CONVEX_TOL)
    rank, ev = psd_rank(res.x)
    out = {"test_error": prob.test_error(res.x), "train_error": prob.train_error(res.x), "rank": rank,
           "rank_fraction": rank / p["d"], "trace": float(ev.sum()) / p["d"],
           "objective": res.history["objective"][-1], "convex_status": str(res.status), "convex_steps": res.steps}
    return prob, res, out | {"_ev": ev}


def run_convex(p: dict) -> dict:
    """One convex solve: errors, rank and (for the first seed of each design) the spectrum of the minimizer."""
    _, _, out = _convex_metrics(p)
    ev = out.pop("_ev")
    if (p.get("part") == "errors" and p["seed"] in (0, 100)) or p.get("part") == "powerlaw":
        out["eigenvalues"] = ev.tolist()
    return out


def run_equivalence(p: dict) -> dict:
    """The convex solve and GD on W of width m on the same data; relative objective gap (F(S_W) − F(Ŝ))/F(Ŝ).
    The width is ``m``, or rank(Ŝ) + ``m_offset`` (at least 1) of this draw's convex minimizer; ``width`` records it."""
    prob, res, out = _convex_metrics(p)
    out.pop("_ev")
    d = p["d"]
    m = p["m"] if "m" in p else max(1, out["rank"] + p["m_offset"])
    out["width"] = m
    gd = gram_factorized_gd(prob.op, prob.y, m, p["lam"] / d, generator(p["seed"] + 1, p.get("device", "cpu")),
                            weight=2.0 / d**2, steps=p["steps"], grad_tol=GD_GRAD_TOL, record_every=p["steps"])
    W = gd.x[0]
    S_w = prob.student_gram(W)
    gd_obj = prob.objective(S_w, p["lam"])
    out.update(gd_objective=gd_obj, gd_status=str(gd.status), gd_steps=gd.steps, w_norm=float(torch.linalg.norm(W)),
               objective_gap=(gd_obj - out["objective"]) / abs(out["objective"]),
               predictor_gap=float(torch.linalg.norm(S_w - res.x) / torch.linalg.norm(res.x)))
    return out


def run_threshold(p: dict) -> dict:
    """The smallest number of samples n_c whose exact noiseless solve recovers S* (relative error ≤ SUCCESS_RTOL),
    by bisection on the leading rows of one GOE design of p = d(d+1)/2 rows (``recovery_threshold``, to a bracket
    of ⌊THRESHOLD_RESOLUTION·d²⌋ samples, each solve at most ``admm_iters`` ADMM iterations); the located α_c is the
    bracket's midpoint over d², ``alpha_halfwidth`` its half-width."""
    d = p["d"]
    g = generator(p["seed"], p.get("device", "cpu"))
    prob = make_problem(d, d * (d + 1) / 2 / d**2, p["kappa"], 0.0, g, "goe")
    out = recovery_threshold(TraceInterpolator(prob.op), prob.y, prob.S_star, SUCCESS_RTOL,
                             resolution=max(1, int(THRESHOLD_RESOLUTION * d * d)), tol=INTERP_TOL,
                             max_iter=p["admm_iters"])
    return {"alpha_c": (out["k_fail"] + out["k_success"]) / (2 * d**2),
            "alpha_halfwidth": (out["k_success"] - out["k_fail"]) / (2 * d**2), "n_success": out["k_success"],
            "solves": out["solves"], "admm_steps": out["steps"], "unconverged_solves": out["unconverged"],
            "error_fail": out["error_fail"], "error_success": out["error_success"],
            "threshold_status": "converged" if out["unconverged"] == 0 else "max_steps"}


def run_interpolator(p: dict) -> dict:
    """The minimum-trace PSD interpolator of noisy labels (λ → 0⁺): errors, rank and trace, and its certificate."""
    g = generator(p["seed"], p.get("device", "cpu"))
    prob = make_problem(p["d"], p["alpha"], p["kappa"], p["noise"], g, "goe")
    res = min_trace_interpolation(prob.op, prob.y, tol=INTERP_TOL)
    rank, ev = psd_rank(res.x)
    return {"test_error": prob.test_error(res.x), "train_error": prob.train_error(res.x), "rank": rank,
            "rank_fraction": rank / p["d"], "trace": float(ev.sum()) / p["d"], "interp_status": str(res.status),
            "interp_steps": res.steps}


def _threshold_points(scale: str) -> list[dict]:
    c = EXTRA[scale]
    return [dict(design="goe", d=d, kappa=k, noise=0.0, admm_iters=c["thr_iters"], seed=800 + s)
            for k in THRESHOLD_KAPPAS for d in c["thr_ds"] for s in range(c["thr_seeds"])]


def _interpolator_points(scale: str) -> list[dict]:
    c = EXTRA[scale]
    return [dict(design="goe", d=d, alpha=a, kappa=k, lam=INTERP_LAM, noise=noise, seed=700 + s)
            for k, noise in INTERP_CONFIGS for d in c["ip_ds"] for a in c["ip_alphas"] for s in range(c["ip_seeds"])]


def _error_points(scale: str) -> list[dict]:
    c, pts = SCALES[scale], []
    for kappa, lam, noise in c["configs"]:
        for a in c["alphas"]:
            pts += [dict(design="goe", d=c["d_goe"], alpha=a, kappa=kappa, lam=lam, noise=noise, seed=s)
                    for s in range(c["seeds"])]
            if a in c.get("real_alphas", c["alphas"]):
                pts += [dict(design="quadratic", d=c["d_real"], alpha=a, kappa=kappa, lam=lam, noise=noise,
                             seed=100 + s) for s in range(c["real_seeds"])]
    return pts


def _finite_size_points(scale: str) -> list[dict]:
    c, e = SCALES[scale], EXTRA[scale]
    return [dict(design="goe", d=d, seed=400 + s, **FINITE_SIZE) for d in c["fs_ds"] for s in range(c["fs_seeds"])] + [
        dict(design="quadratic", d=d, seed=500 + s, **FINITE_SIZE) for d in e["fs_real_ds"]
        for s in range(e["fs_real_seeds"])]


def _recovery_points(scale: str) -> list[dict]:
    c = SCALES[scale]
    return [dict(design="goe", d=d, alpha=a, kappa=RECOVERY_KAPPA, lam=RECOVERY_LAM, noise=0.0, seed=200 + s)
            for d in c["rec_ds"] for a in c["rec_alphas"] for s in range(c["rec_seeds"])]


def _powerlaw_points(scale: str) -> list[dict]:
    c = SCALES[scale]
    return [dict(design="goe", d=d, alpha=a, seed=600 + s, **POWERLAW) for d in c["pl_ds"] for a in c["pl_alphas"]
            for s in range(c["pl_seeds"])]


def _equivalence_points(scale: str) -> list[dict]:
    c, e = SCALES[scale], EXTRA[scale]
    return [dict(design="quadratic", d=c["eq_d"], m=m, steps=c["eq_steps"], seed=300, **EQUIV) for m in c["eq_ms"]] + [
        dict(design="quadratic", d=d, m_offset=o, steps=c["eq_steps"], seed=s, **EQUIV) for d in e["eq_more_ds"]
        for s in e["eq_more_seeds"] for o in e["eq_offsets"]]


# --- evidence ---------------------------------------------------------------------------------------------------------
def _grouped_ratio(goe: pd.DataFrame, theory, col: str, additive: bool = False
                   ) -> tuple[list[float], list[float], list[str]]:
    """Per (κ*, λ, Δ, α): the seed mean and its standard error of sim/theory (or sim − theory when ``additive``).

    A rank fraction is a multiple of 1/d: its rounding, uniform on ±1/(2d), adds variance 1/(12 d²) per seed, kept in
    the standard error so that a group whose seeds all agree still has a finite one."""
    means, sems, where = [], [], []
    keys = ["d", "gamma", "q0", "lam", "noise"] if "gamma" in goe and goe["gamma"].notna().all() else \
        ["kappa", "lam", "noise"]
    for key, sub in goe.groupby(keys):
        alphas = np.sort(sub["alpha"].unique())
        th = dict(zip(alphas, np.atleast_1d(getattr(_theory_at(theory, dict(zip(keys, key)), alphas), col))))
        label = f"d = {key[0]:g}" if "gamma" in keys else f"κ* = {key[0]:g}"
        for a, g in sub.groupby("alpha"):
            v = g[col].to_numpy() - th[a] if additive else g[col].to_numpy() / th[a]
            m, s, n = mean_sem(v)
            if additive:
                s = math.sqrt((s if math.isfinite(s) else 0.0) ** 2 + 1.0 / (12 * float(g["d"].iloc[0]) ** 2 * n))
            means.append(m), sems.append(s), where.append(f"{label}, α = {a:g}")
    return means, sems, where


def _theory_at(theory, c: dict, alphas: np.ndarray):
    """The theory's prediction for one group of rows: the Wishart teacher (κ*) or the power-law teacher of the rows
    (its exact eigenvalues at their d, ``powerlaw_teacher_spectrum``)."""
    if "gamma" in c:
        spec = powerlaw_teacher_spectrum(int(c["d"]), float(c["gamma"]), q0=float(c["q0"]))
        return theory.predict(alphas, None, c["lam"], c["noise"], teacher_spectrum=spec)
    return theory.predict(alphas, c["kappa"], c["lam"], c["noise"])


def _finite_size_trend(results: pd.DataFrame, theory, col: str, additive: bool = False, at: dict = FINITE_SIZE,
                       design: str = "goe") -> tuple[float, float, float, float, list[int]] | None:
    """Weighted fit of the deviation from theory at ``at`` (κ*, λ, Δ, α; default ``FINITE_SIZE``) against 1/d:
    dev(d) = c + b/d, over every row of ``design`` at that point whatever its part.

    Returns (c, s.e. of c, b, s.e. of b, the d's); None with fewer than three sizes."""
    fs = results[(results["design"] == design) & np.isclose(results["kappa"], at["kappa"])
                 & np.isclose(results["lam"], at["lam"]) & np.isclose(results["noise"], at["noise"])
                 & np.isclose(results["alpha"], at["alpha"])]
    rows = []
    for d, g in fs.groupby("d"):
        m, s, _ = _grouped_ratio(g, theory, col, additive)
        if len(m) and math.isfinite(s[0]) and s[0] > 0:
            rows.append((1.0 / d, m[0] - (0.0 if additive else 1.0), s[0], int(d)))
    if len(rows) < 3:
        return None
    x, y, s, ds = (np.array(v) for v in zip(*rows))
    b, se_b, c, se_c = line_fit(x, y, s)
    return c, se_c, b, se_b, [int(d) for d in ds]


def _errors_vs_theory(col: str, additive: bool = False, at: dict = FINITE_SIZE, design: str = "goe"):
    """Evidence: pooled seed-mean deviation of ``col`` from theory over α and configs (rows of ``design`` in the
    ``errors`` part at their largest d), with the finite-size bias allowance |b|/d, b the 1/d slope of the same
    design measured at ``at`` (its own uncertainty is judged by the extrapolation claims)."""
    def evaluate(results: pd.DataFrame, theory) -> Evidence | None:
        goe = results[(results["part"] == "errors") & (results["design"] == design)]
        goe = goe[goe["d"] == goe["d"].max()] if len(goe) else goe
        trend = _finite_size_trend(results, theory, col, additive, at, design)
        if not len(goe) or trend is None:
            return None
        means, sems, where = _grouped_ratio(goe, theory, col, additive)
        pooled, se = pooled_mean(means, sems)
        d = float(goe["d"].iloc[0])
        _, _, b, se_b, ds = trend
        base = 0.0 if additive else 1.0
        worst = int(np.nanargmax(np.abs((np.array(means) - base) / np.array(sems))))
        return Evidence(pooled, base, se, len(means), bias=abs(b) / d,
                        detail=f"d = {d:g}, {len(means)} (κ*, α) groups; finite-size bias |b|/d = {abs(b) / d:.4f} "
                               f"(b = {b:.3f} ± {se_b:.3f} from d = {ds}); farthest group {where[worst]}: "
                               f"{means[worst]:.4f} ± {sems[worst]:.4f}")
    return evaluate


def _extrapolation(col: str, additive: bool = False, at: dict = FINITE_SIZE):
    """Evidence: the deviation from theory at ``at`` extrapolated to d → ∞ (intercept of the 1/d fit)."""
    def evaluate(results: pd.DataFrame, theory) -> Evidence | None:
        trend = _finite_size_trend(results, theory, col, additive, at)
        if trend is None:
            return None
        c, se_c, b, se_b, ds = trend
        base = 0.0 if additive else 1.0
        return Evidence(base + c, base, se_c, len(ds), detail=f"slope in 1/d: {b:.3f} ± {se_b:.3f}, d = {ds}")
    return evaluate


def _pooled_at_largest_d(col: str, additive: bool = False):
    """Evidence: pooled seed-mean ratio sim/theory (difference when ``additive``) of ``col`` at the largest d of
    a part's rows (power-law teacher: each d held against the theory for its own d eigenvalues); bias allowance:
    the shift of the
    pooled deviation between the two d, extrapolated as 1/d to what is left at the largest,
    |dev(d₂) − dev(d₁)|·(1/d₂)/(1/d₁ − 1/d₂)."""
    def evaluate(results: pd.DataFrame, theory) -> Evidence | None:
        ds = sorted(results["d"].unique())
        if len(ds) < 2:
            return None
        dev = {}
        for d in (ds[0], ds[-1]):
            means, sems, where = _grouped_ratio(results[results["d"] == d], theory, col, additive)
            dev[d] = (*pooled_mean(means, sems), means, sems, where)
        d1, d2 = float(ds[0]), float(ds[-1])
        big, small = dev[ds[-1]], dev[ds[0]]
        shift = abs(big[0] - small[0]) * (1 / d2) / (1 / d1 - 1 / d2)
        worst = int(np.nanargmax(np.abs(np.array(big[2]) - (0.0 if additive else 1.0)) / np.array(big[3])))
        return Evidence(big[0], 0.0 if additive else 1.0, big[1], len(big[2]), bias=shift,
                        detail=f"d = {d2:g}: {big[0]:.4f} ± {big[1]:.4f}; d = {d1:g}: {small[0]:.4f} ± {small[1]:.4f}; "
                               f"finite-d allowance {shift:.4f}; farthest group {big[4][worst]}: "
                               f"{big[2][worst]:.4f} ± {big[3][worst]:.4f}")
    return evaluate


CDF_LEVELS = (0.6, 0.7, 0.8, 0.9)  # where the learned spectrum's CDF is compared: the predicted quantiles of Ŝ


def _spectrum_cdf_deviation(results: pd.DataFrame, theory) -> Evidence | None:
    """Evidence: the empirical CDF of the eigenvalues of Ŝ (each seed at the largest d) minus the predicted one,
    at the predicted 60/70/80/90 % quantiles of the law of Ŝ; per (α, level) the seed mean and s.e. (with the
    1/(12d²) rounding of a count), pooled over α and levels by inverse variance."""
    d = int(results["d"].max())
    big = results[(results["d"] == d) & results["eigenvalues"].apply(lambda v: isinstance(v, list))]
    if not len(big):
        return None
    c = POWERLAW
    spec = powerlaw_teacher_spectrum(d, c["gamma"], q0=c["q0"])
    means, sems, where = [], [], []
    for a, g in big.groupby("alpha"):
        x, w, atom = theory.learned_spectrum(float(a), None, c["lam"], c["noise"], teacher_spectrum=spec)
        cum = atom + np.cumsum(w)
        pts = np.interp(CDF_LEVELS, cum, x)  # where the predicted CDF reaches each level (nodes: ≈)
        F_th = theory.learned_spectrum_cdf(pts, float(a), None, c["lam"], c["noise"], teacher_spectrum=spec)
        for level, xj, fj in zip(CDF_LEVELS, pts, F_th):
            dev = [float(np.mean(np.asarray(ev) <= xj)) - fj for ev in g["eigenvalues"]]
            m, s, n = mean_sem(dev)
            s = math.sqrt((s if math.isfinite(s) else 0.0) ** 2 + 1.0 / (12 * d**2 * n))
            means.append(m), sems.append(s), where.append(f"α = {a:g}, level {level:g}")
    pooled, se = pooled_mean(means, sems)
    worst = int(np.nanargmax(np.abs(np.array(means)) / np.array(sems)))
    return Evidence(pooled, 0.0, se, len(means), detail=f"d = {d}; farthest: {where[worst]}: {means[worst]:.4f} ± "
                    f"{sems[worst]:.4f}")


def _transition(results: pd.DataFrame) -> tuple[float, float, float, float] | None:
    """(midpoint, half-width) of the bracket [last α with mean test error > 1e-2, first larger α with < 1e-3]."""
    agg = results.groupby("alpha")["test_error"].mean().sort_index()
    failed = agg[agg > 1e-2].index
    if not len(failed):
        return None
    lo = float(failed.max())
    ok = agg[(agg < 1e-3) & (agg.index > lo)].index
    if not len(ok):
        return None
    hi = float(ok.min())
    return 0.5 * (lo + hi), 0.5 * (hi - lo), lo, hi


def _recovery_evidence(results: pd.DataFrame, theory) -> Evidence | None:
    """Measured transition at the largest d vs α_PR(κ*): tolerance = half the bracket (grid resolution) plus the
    finite-d shift left at the largest d, (mid(d₂) − mid(d₁))·(1/d₂)/(1/d₁ − 1/d₂) assuming a 1/d shift."""
    ds = sorted(results["d"].unique())
    tr = {d: _transition(results[results["d"] == d]) for d in ds}
    big = tr[ds[-1]]
    a_pr = float(theory.perfect_recovery_threshold(RECOVERY_KAPPA))
    if big is None:
        return Evidence(math.nan, a_pr, n=len(results), detail=f"no bracket at d = {ds[-1]}")
    shift = 0.0
    if len(ds) > 1 and tr[ds[0]] is not None:
        d1, d2 = float(ds[0]), float(ds[-1])
        shift = abs(big[0] - tr[ds[0]][0]) * (1 / d2) / (1 / d1 - 1 / d2)
    brackets = ", ".join(f"d = {d:g}: [{t[2]:g}, {t[3]:g}]" for d, t in tr.items() if t is not None)
    return Evidence(big[0], a_pr, n=int(results["alpha"].nunique()), bias=big[1] + shift,
                    detail=f"brackets {brackets}; finite-d shift allowance {shift:.4f}")


def _threshold_trend(results: pd.DataFrame, kappa: float) -> tuple[list, list, list, list] | None:
    """Per d (ascending): the seed mean of the located α_c at κ*, its standard error and seed count; None with
    fewer than two d whose standard error is defined."""
    rows = results[np.isclose(results["kappa"], kappa)]
    per_d = [(int(d), *mean_sem(g["alpha_c"])) for d, g in rows.groupby("d")]
    per_d = [r for r in per_d if math.isfinite(r[2]) and r[2] > 0]
    return None if len(per_d) < 2 else [list(v) for v in zip(*per_d)]


def _threshold_slope(ds, means, sems) -> tuple[float, float, float, float]:
    """(b, s.e. of b, c, s.e. of c) of α_c(d) = c + b/d: the weighted fit over three or more d, the line through
    two (s.e. propagated from the two seed means)."""
    x = 1.0 / np.asarray(ds, float)
    if len(ds) >= 3:
        return line_fit(x, means, sems)
    b = (means[1] - means[0]) / (x[1] - x[0])
    se_b = math.hypot(sems[0], sems[1]) / abs(x[1] - x[0])
    c = means[1] - b * x[1]
    return b, se_b, c, math.hypot(sems[1], x[1] * se_b)


def _threshold_evidence(kappa: float):
    """Evidence: the seed mean of the located α_c at the largest d against α_PR(κ*), with its standard error and a
    finite-size bias allowance |b|/d_max (b the slope of α_c in 1/d measured over the part's d) plus the bisection's
    resolution (half its final bracket)."""
    def evaluate(results: pd.DataFrame, theory) -> Evidence | None:
        tr = _threshold_trend(results, kappa)
        if tr is None:
            return None
        ds, means, sems, ns = tr
        b, se_b, c, se_c = _threshold_slope(ds, means, sems)
        a_pr = float(theory.perfect_recovery_threshold(kappa))
        half = float(results.loc[results["d"] == ds[-1], "alpha_halfwidth"].max())
        bias = abs(b) / ds[-1] + half
        per_d = ", ".join(f"d = {d}: {m:.4f} ± {s:.4f}" for d, m, s in zip(ds, means, sems))
        return Evidence(means[-1], a_pr, sems[-1], ns[-1], bias=bias,
                        detail=f"{per_d}; slope in 1/d b = {b:.3f} ± {se_b:.3f}, allowance |b|/d = "
                               f"{abs(b) / ds[-1]:.4f}; d → ∞ intercept {c:.4f} ± {se_c:.4f}")
    return evaluate


def _threshold_extrapolation(results: pd.DataFrame, theory) -> Evidence | None:
    """Evidence: the d → ∞ intercepts of α_c(d) = c + b/d over α_PR(κ*), pooled over κ* by inverse variance."""
    ratios, ses, where = [], [], []
    for kappa in sorted(results["kappa"].unique()):
        tr = _threshold_trend(results, kappa)
        if tr is None:
            continue
        _, _, c, se_c = _threshold_slope(*tr[:3])
        a_pr = float(theory.perfect_recovery_threshold(kappa))
        ratios.append(c / a_pr), ses.append(se_c / a_pr)
        where.append(f"κ* = {kappa:g}: c = {c:.4f} ± {se_c:.4f} (α_PR = {a_pr:.4f})")
    if not ratios:
        return None
    pooled, se = pooled_mean(ratios, ses)
    return Evidence(pooled, 1.0, se, len(ratios), detail="; ".join(where))


def _width(results: pd.DataFrame) -> pd.Series:
    """The width GD ran at: ``width`` (recorded by the run), else the point's ``m``."""
    return results["width"].fillna(results["m"]) if "width" in results and "m" in results else \
        results["width"] if "width" in results else results["m"]


def _needed(results: pd.DataFrame, theory) -> pd.Series:
    """Per row, the width the theory says GD needs: from the rank of the convex minimizer of the row's own draw."""
    return results["rank"].astype(int).map(theory.width_needed)


def _gd_floor(eq: pd.DataFrame) -> np.ndarray:
    """What the stopping rules leave unresolved, relative to F(Ŝ): the convex solve's duality gap
    CONVEX_TOL·max(1, F) and the first-order change grad_tol·‖W‖_F of F along the path to GD's limit."""
    F = eq["objective"].abs().to_numpy()
    return (CONVEX_TOL * np.maximum(1.0, F) + GD_GRAD_TOL * eq["w_norm"].to_numpy()) / F


def _draws(rows: pd.DataFrame) -> str:
    """'d = 20, seed 300: rank 13, widths [...]; …' for the report."""
    return "; ".join(f"d = {int(d)}, seed {int(s)}: rank {int(g['rank'].iloc[0])}, widths "
                     f"{sorted(int(w) for w in _width(g))}" for (d, s), g in rows.groupby(["d", "seed"]))


def _wide_enough(results: pd.DataFrame, theory) -> Evidence | None:
    """Largest relative objective gap over every (d, seed) draw and width m ≥ the width needed for that draw."""
    above = results[(_width(results) >= _needed(results, theory)).to_numpy()]
    if not len(above):
        return None
    i = int(np.argmax(above["objective_gap"].to_numpy()))
    return Evidence(float(above["objective_gap"].iloc[i]), 0.0, n=len(above), bias=float(_gd_floor(above)[i]),
                    detail=f"{_draws(above)}; predictor gap ‖S_W − Ŝ‖/‖Ŝ‖ ≤ {above['predictor_gap'].max():.1e}")


def _too_narrow(results: pd.DataFrame, theory) -> Evidence | None:
    """Smallest relative objective gap over every draw and width m below the width needed for that draw."""
    below = results[(_width(results) < _needed(results, theory)).to_numpy()]
    if not len(below):
        return None
    i = int(np.argmin(below["objective_gap"].to_numpy()))
    return Evidence(float(below["objective_gap"].iloc[i]), float(_gd_floor(below)[i]), n=len(below),
                    detail=_draws(below))


# --- cost: an iteration of the convex solve is one forward and one adjoint pass. Over the GOE design (n = α d²
# symmetric d × d matrices held as upper triangles) they are matrix-vector products, n·d² multiply-adds bound by memory
# traffic; over the real features (n × d held) they are products X·A (A the d × r factors of the iterate) and
# Xᵀdiag(r)X, ≤ 2·n·d² multiply-adds at matrix-product speed, which grows with d. Measured per multiply-add against
# the GOE design's (one thread, benchmarks/nuclear_floor.py and the quick-scale sizes): 0.36 at d = 80, 0.075 at
# d = 400 (3.1 s per iteration at n = 160 000, against 1.6 ns·α d⁴ for a GOE iteration), i.e. ≈ 0.36·80/d
# (REAL_PASS_COST at REAL_PASS_D, falling as 1/d). GD on W adds steps passes of n·d·m.
REAL_PASS_COST, REAL_PASS_D = 0.36, 80
# Iterations of the convex solve (gradient-scheme restart, gap CONVEX_TOL), measured on quick-scale points (median over
# the two (κ*, λ, Δ), both designs, seeds; d = 60…200, no trend in d): they fall steeply with α, so a point's work,
# α d⁴ per iteration, is nearly flat in α. Noiseless recovery (λ = 1e-3) has its own table. Interpolated in log α.
ITER_ALPHAS = (0.2, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
ITERS = (900, 660, 375, 110, 78, 57, 42)
ITERS_RECOVERY_ALPHAS = (0.2, 0.25, 0.29, 0.31, 0.34, 0.42, 0.5)
ITERS_RECOVERY = (3500, 2950, 2700, 2050, 950, 290, 205)
# the shipped cost model's seconds per unit of work were fitted on a run whose solves took, weighted by their work,
# 214 iterations on average (function-value restart): work is counted in units of that many iterations
ITERS_CALIBRATION = 214.0


def _iterations(p: dict) -> float:
    """Expected iterations of the convex solve at the point's α (log-log interpolation of the measured tables)."""
    xs, ys = (ITERS_RECOVERY_ALPHAS, ITERS_RECOVERY) if p.get("lam", 1.0) < 0.01 else (ITER_ALPHAS, ITERS)
    return float(np.exp(np.interp(np.log(p["alpha"]), np.log(xs), np.log(ys))))


def _pass_work(p: dict) -> float:
    """One iteration's work: α d⁴ (GOE), scaled by the real features' relative pass cost."""
    if p.get("design", "goe") == "quadratic":
        return p["alpha"] * p["d"] ** 4 * REAL_PASS_COST * min(1.0, REAL_PASS_D / p["d"])
    return p["alpha"] * p["d"] ** 4


def _work(p: dict) -> float:
    return _pass_work(p) * _iterations(p) / ITERS_CALIBRATION


def _memory(p: dict) -> float:
    """GOE: the stored design and its generation, 8·n·d² bytes (measured, tests/test_research.py). Real features:
    X (8·n·d) plus the solver's handful of n-vectors and one block of rows (``CHUNK_BYTES``)."""
    n = p["alpha"] * p["d"] ** 2
    if p.get("design", "goe") == "goe":
        return 8.0 * n * p["d"] ** 2
    return 8.0 * n * (p["d"] + 8) + CHUNK_BYTES


def _interp_memory(p: dict) -> float:
    """The design B (n × p, n ≤ p = d(d+1)/2 rows), its QR factor Q of the same size and R (n × n): 24·p² bytes at
    most (the threshold's square design)."""
    p_dim = p["d"] * (p["d"] + 1) / 2
    n = p_dim if "alpha" not in p else min(p_dim, p["alpha"] * p["d"] ** 2)
    return 8.0 * (2 * n * p_dim + n * n)


def _equivalence_work(p: dict) -> float:
    """The convex solve plus GD's steps at width m (rank + offset: about 0.6·d at the EQUIV point, the theory's
    rank fraction there)."""
    m = p["m"] if "m" in p else 0.6 * p["d"] + p["m_offset"]
    return _pass_work(p) * (1.0 + p["steps"] * m / p["d"])


def _threshold_work(p: dict) -> float:
    """⌈log₂ p⌉ ADMM solves on up to p = d(d+1)/2 rows: 2·n·p multiply-adds an iteration, some 10³ iterations."""
    p_dim = p["d"] * (p["d"] + 1) / 2
    return math.ceil(math.log2(p_dim)) * 1e3 * p_dim**2


def _interpolator_work(p: dict) -> float:
    """One ADMM solve, 2·n·p multiply-adds an iteration (n = α d², p = d(d+1)/2), some 10³ iterations."""
    return 1e3 * p["alpha"] * p["d"] ** 2 * p["d"] * (p["d"] + 1)


PARAMS = (
    Param("design", str, "sensing design: GOE matrices (the theory's) or real quadratic features xxᵀ",
          {s: "goe" for s in SCALES}, choices=("goe", "quadratic"), theory=False),
    Param("d", int, "input dimension (the theory is its d → ∞ limit)", per_scale(SCALES, "d_goe"), low=4,
          theory=False),
    Param("alpha", float, "sample ratio α = n/d²", per_scale(SCALES, "alphas"), low=0, closed="neither"),
    Param("kappa", float, "teacher width ratio κ* = m*/d", {s: CONFIGS[0][0] for s in SCALES}, low=0,
          closed="neither"),
    Param("lam", float, "weight decay λ", {s: CONFIGS[0][1] for s in SCALES}, low=0, closed="neither"),
    Param("noise", float, "label noise variance Δ", {s: CONFIGS[0][2] for s in SCALES}, low=0),
)


K_POOLED = 3.0  # a handful of claims, each pooled over 12 groups: 3 s.e. is a 1-in-370 false alarm per claim


class NuclearRoute(Study):
    name = "nuclear-route"
    claim = ("ERM with square loss and weight decay on a quadratic-activation network equals trace-penalized PSD "
             "matrix sensing on S = WᵀW/√(md) once m ≥ rank; its train/test errors follow sharp formulas in α = n/d², "
             "and noiseless teachers are recovered above α_PR(κ*).")
    version = "5"
    theory_model = QuadraticERMTheory
    params = PARAMS
    sweep_part = "errors"

    def predict(self, values: dict) -> dict:
        """Train and test error, rank fraction of the minimizer (``theory.quadratic_erm.predict``) and α_PR(κ*)."""
        p = self.theory_model.predict(values["alpha"], values["kappa"], values["lam"], values["noise"])
        return dict(train_error=float(p.train_error[0]), test_error=float(p.test_error[0]),
                    rank_fraction=float(p.rank_fraction[0]),
                    alpha_pr=float(self.theory_model.perfect_recovery_threshold(values["kappa"])))

    def predict_many(self, points: list[dict]) -> list[dict]:
        """:meth:`predict` at every point, one theory call per (κ*, λ, Δ) with all its α at once (the Wishart
        teacher's fixed point is solved for a whole α grid together)."""
        groups: dict[tuple, list[int]] = {}
        for i, v in enumerate(points):
            groups.setdefault((v["kappa"], v["lam"], v["noise"]), []).append(i)
        out: list[dict] = [{} for _ in points]
        for (kappa, lam, noise), idx in groups.items():
            p = self.theory_model.predict([points[i]["alpha"] for i in idx], kappa, lam, noise)
            alpha_pr = float(self.theory_model.perfect_recovery_threshold(kappa))
            for j, i in enumerate(idx):
                out[i] = dict(train_error=float(p.train_error[j]), test_error=float(p.test_error[j]),
                              rank_fraction=float(p.rank_fraction[j]), alpha_pr=alpha_pr)
        return out

    def parts(self) -> list[Part]:
        cost = dict(work=_work, memory=_memory)
        return [
            Part("errors", _error_points, run_convex, **cost),
            Part("finite_size", _finite_size_points, run_convex, **cost),
            Part("recovery", _recovery_points, run_convex, work=_work, memory=_memory, claims=[Claim(
                f"noiseless recovery switches on at α_PR(κ* = {RECOVERY_KAPPA}): midpoint of the last α with test "
                "error > 1e-2 and the first with < 1e-3, at the largest d", _recovery_evidence,
                "Half the bracket (the α grid's resolution) plus the finite-d shift measured between the two d and "
                "extrapolated as 1/d; no seed error (k = 0).", k=0.0, converged=("convex_status",))]),
            Part("powerlaw", _powerlaw_points, run_convex, [
                Claim(f"{label} of the convex minimizer with a power-law teacher (eigenvalues ∝ j^−"
                      f"{POWERLAW['gamma']:g}, random basis, GOE design) against the free-convolution theory: pooled "
                      f"{'difference' if additive else 'ratio'} over α at the largest d", _pooled_at_largest_d(col, additive),
                      f"{K_POOLED:g} s.e. of the pooled seed-mean {'difference' if additive else 'ratio'} plus the "
                      "finite-d allowance measured between the two d (the shift of the pooled deviation, "
                      "extrapolated as 1/d to the largest d).", k=K_POOLED, converged=("convex_status",))
                for col, additive, label in (("test_error", False, "test error"),
                                             ("train_error", False, "training error"),
                                             ("rank_fraction", True, "rank fraction"))] + [
                Claim("learned spectrum with the power-law teacher: empirical CDF of the eigenvalues of Ŝ minus the "
                      "predicted CDF of ρ_Ŝ at its 60/70/80/90 % quantiles, pooled over α and levels (largest d)",
                      _spectrum_cdf_deviation,
                      f"{K_POOLED:g} s.e. of the pooled seed-mean CDF difference (s.e. includes the 1/(12d²) "
                      "rounding of an eigenvalue count); no finite-d allowance (the rank fraction's, the CDF at 0⁺, is "
                      "judged above).", k=K_POOLED, converged=("convex_status",))], **cost),
            Part("equivalence", _equivalence_points, run_equivalence, [
                Claim("GD on W with m ≥ rank of the convex minimizer reaches the convex objective: largest relative "
                      "objective gap", _wide_enough,
                      "Floor from the stopping rules: the convex solve's relative duality gap 1e-9·max(1, F)/F plus "
                      "GD's first-order residual grad_tol·‖W‖_F/F (grad_tol = 1e-13).", comparison="at_most", k=0.0,
                      min_n=1, converged=("convex_status", "gd_status")),
                Claim("below that width (m < rank) it cannot: smallest relative objective gap exceeds what the "
                      "stopping rules resolve", _too_narrow,
                      "Predicted: above the floor the stopping rules leave unresolved (convex duality gap 1e-9·max(1, "
                      "F)/F plus grad_tol·‖W‖_F/F); no seed error.", comparison="at_least", k=0.0, min_n=1,
                      converged=("convex_status", "gd_status")),
            ], work=_equivalence_work, memory=_memory),
            Part("threshold", _threshold_points, run_threshold, [
                Claim(f"α_PR(κ* = {k:g}): the smallest α whose exact noiseless solve (min Tr S s.t. 𝒜S = y, S ⪰ 0) "
                      "recovers S* (relative error ≤ 1e-3), located by bisection at the largest d, seed mean",
                      _threshold_evidence(k),
                      f"{K_POOLED:g} s.e. of the seed mean plus the finite-size bias |b|/d measured by the part (b the "
                      "slope of α_c in 1/d, weighted fit over its d) plus the bisection's resolution (half its final "
                      "bracket, ≤ 0.002 in α).",
                      k=K_POOLED, converged=("threshold_status",)) for k in THRESHOLD_KAPPAS] + [
                Claim("α_PR(κ*) at κ* = " + ", ".join(f"{k:g}" for k in THRESHOLD_KAPPAS) + ": the d → ∞ intercepts "
                      "of the located α_c (weighted fit in 1/d) over α_PR, pooled over κ*", _threshold_extrapolation,
                      f"{K_POOLED:g} s.e. of the inverse-variance pooled ratio (seed errors propagated through each "
                      "fit); no bias: the fit removes the 1/d term.", k=K_POOLED,
                      converged=("threshold_status",))], work=_threshold_work, memory=_interp_memory),
            Part("interpolator", _interpolator_points, run_interpolator, [
                Claim(f"{label} of the minimum-nuclear-norm interpolator (λ → 0⁺, noisy labels, GOE design) against "
                      f"the theory's λ → 0⁺ limit (read at λ = {INTERP_LAM:g}): pooled "
                      f"{'difference' if additive else 'ratio'} over α and (κ*, Δ) at the largest d",
                      _pooled_at_largest_d(col, additive),
                      f"{K_POOLED:g} s.e. of the pooled seed-mean {'difference' if additive else 'ratio'} plus the "
                      "finite-d allowance measured between the two d (the shift of the pooled deviation, "
                      "extrapolated as 1/d to the largest d); the theory at λ = 1e-5 is its λ → 0⁺ limit to < 2e-4.",
                      k=K_POOLED, converged=("interp_status",))
                for col, additive, label in (("test_error", False, "test error"),
                                             ("rank_fraction", True, "rank fraction"))],
                work=_interpolator_work, memory=_interp_memory),
        ]

    def _finite_size_at(self) -> dict:
        """Where the 1/d trend is measured: ``FINITE_SIZE``, or on a user's grid its first (κ*, λ, Δ, α) over the
        d's given (at least three are needed; with fewer the claims that read the trend are not judged)."""
        g = self.user_grid
        return FINITE_SIZE if g is None else {k: g[k][0] for k in ("kappa", "lam", "noise", "alpha")}

    def extra_claims(self) -> list[Claim]:
        """Claims on the ``errors`` rows that also read the ``finite_size`` rows (the measured 1/d trend)."""
        at = self._finite_size_at()
        fs = f"κ* = {at['kappa']:g}, α = {at['alpha']:g}"
        pooled = [
            Claim("test error of the convex minimizer (GOE design): pooled ratio to the theory over α and (κ*, λ, Δ)",
                  _errors_vs_theory("test_error", at=at),
                  f"{K_POOLED:g} s.e. of the inverse-variance pooled seed-mean ratio plus the finite-size bias |b|/d, "
                  f"b the slope in 1/d measured at {fs} over the d's run there.", k=K_POOLED,
                  converged=("convex_status",)),
            Claim("training error of the convex minimizer (GOE design): pooled ratio to the theory over α and "
                  "(κ*, λ, Δ)", _errors_vs_theory("train_error", at=at),
                  f"{K_POOLED:g} s.e. of the pooled ratio plus the training error's finite-size bias |b|/d, measured "
                  f"(not a literal): b the slope in 1/d fitted at {fs} over the d's run there.", k=K_POOLED,
                  converged=("convex_status",)),
            Claim("rank fraction of the minimizer (GOE design): pooled deviation from ρ_Y((θ, ∞)) over α and "
                  "(κ*, λ, Δ)", _errors_vs_theory("rank_fraction", additive=True, at=at),
                  f"{K_POOLED:g} s.e. of the pooled seed-mean difference (s.e. includes the 1/d rounding of a rank) "
                  f"plus |b|/d, the 1/d trend measured at {fs}.", k=K_POOLED, converged=("convex_status",)),
        ]
        cols = (("test_error", False, "test error"), ("train_error", False, "training error"),
                ("rank_fraction", True, "rank fraction"))
        real = [Claim(f"{label} of the convex minimizer on the real quadratic features xxᵀ − I: pooled "
                      f"{'difference' if additive else 'ratio'} to the (GOE-universal) theory over α and (κ*, λ, Δ) "
                      "at their largest d", _errors_vs_theory(col, additive, at, "quadratic"),
                      f"{K_POOLED:g} s.e. of the pooled seed-mean {'difference' if additive else 'ratio'} plus the "
                      "real "
                      f"features' own finite-size bias |b|/d, b the slope in 1/d of their deviation measured at {fs} "
                      "over the d's run there with that design (not a literal).", k=K_POOLED,
                      converged=("convex_status",)) for col, additive, label in cols]
        return real + [Claim(f"{label} at {fs} (GOE) extrapolated to d → ∞ by a fit in 1/d matches the theory",
                      _extrapolation(col, additive, at), f"{K_POOLED:g} s.e. of the weighted fit's intercept (seed errors "
                      "propagated); no bias: the extrapolation removes the 1/d term.", k=K_POOLED,
                      converged=("convex_status",)) for col, additive, label in cols] + pooled

    # --- figures -------------------------------------------------------------------------------------------------
    def figures(self, results: pd.DataFrame) -> dict:
        figs = {}
        err = results[results["part"] == "errors"]
        groups = list(err.groupby(["kappa", "lam", "noise"]))
        th = QuadraticERMTheory
        if groups:
            fig, axes = new_figure(ncols=len(groups))
            axes = np.atleast_1d(axes)
            for ax, ((kappa, lam, noise), sub) in zip(axes, groups):
                grid = np.linspace(sub["alpha"].min() * 0.9, sub["alpha"].max() * 1.05, 120)
                p = th.predict(grid, kappa, lam, noise)
                plot_theory(ax, grid, p.test_error, label="test (theory)", color="C0")
                plot_theory(ax, grid, p.train_error, label="train (theory)", color="C1")
                for design, marker in (("goe", "o"), ("quadratic", "s")):
                    s = sub[sub["design"] == design]
                    if len(s):
                        dd = int(s["d"].iloc[0])
                        plot_points(ax, s, "alpha", "test_error", label=f"test, {design} d={dd}", color="C0",
                                    marker=marker)
                        plot_points(ax, s, "alpha", "train_error", label=f"train, {design} d={dd}", color="C1",
                                    marker=marker)
                ax.set(xlabel="α = n/d²", ylabel="error", title=f"κ* = {kappa}, λ = {lam}, Δ = {noise}")
                ax.legend()
            figs["errors_vs_alpha"] = fig

            fig, axes = new_figure(ncols=len(groups))
            axes = np.atleast_1d(axes)
            for ax, ((kappa, lam, noise), sub) in zip(axes, groups):
                grid = np.linspace(sub["alpha"].min() * 0.9, sub["alpha"].max() * 1.05, 120)
                plot_theory(ax, grid, th.predict(grid, kappa, lam, noise).rank_fraction, label="theory ρ_Y((θ, ∞))")
                for design, marker in (("goe", "o"), ("quadratic", "s")):
                    s = sub[sub["design"] == design]
                    if len(s):
                        plot_points(ax, s, "alpha", "rank_fraction", label=f"{design}, d = {int(s['d'].iloc[0])}",
                                    marker=marker)
                ax.set(xlabel="α", ylabel="rank(Ŝ)/d", title=f"κ* = {kappa}, λ = {lam}, Δ = {noise}")
                ax.legend()
            figs["rank_fraction_vs_alpha"] = fig

            (kappa, lam, noise), sub = groups[0]
            if "eigenvalues" in sub:
                one = sub[(sub["design"] == "goe") & sub["eigenvalues"].apply(lambda v: isinstance(v, list))]
                if len(one):
                    figs["learned_spectrum"] = self._spectrum_figure(one, kappa, lam, noise)

        rec = results[results["part"] == "recovery"]
        if len(rec):
            fig, ax = new_figure()
            for i, (d, r) in enumerate(rec.groupby("d")):
                plot_points(ax, r, "alpha", "test_error", label=f"simulation, GOE d = {int(d)}", color=f"C{i}")
            grid = np.linspace(rec["alpha"].min(), rec["alpha"].max(), 120)
            try:
                plot_theory(ax, grid, th.predict(grid, RECOVERY_KAPPA, RECOVERY_LAM, 0.0).test_error,
                            label=f"theory, λ = {RECOVERY_LAM:g}")
            except RuntimeError:
                pass
            ax.axvline(float(th.perfect_recovery_threshold(RECOVERY_KAPPA)), color="k", ls="--", lw=1, label="α_PR")
            ax.axvline(float(quadratic_erm.bayes_optimal_threshold(RECOVERY_KAPPA)), color="grey", ls=":", lw=1,
                       label="Bayes-optimal κ* − κ*²/2")
            ax.set(yscale="log", xlabel="α", ylabel="test error", title=f"noiseless recovery, κ* = {RECOVERY_KAPPA}")
            ax.legend()
            figs["recovery"] = fig

        fig, ax = new_figure()
        ks = np.linspace(0.02, 1.5, 150)
        plot_theory(ax, ks, th.perfect_recovery_threshold(ks), label="α_PR(κ*) (ERM, λ → 0⁺)")
        plot_theory(ax, ks, quadratic_erm.bayes_optimal_threshold(ks), label="κ* − κ*²/2 (Bayes-optimal)",
                    style="--")
        ax.set(xlabel="κ*", ylabel="α", title="perfect-recovery thresholds")
        ax.legend()
        figs["thresholds"] = fig

        pl = results[results["part"] == "powerlaw"]
        if len(pl):
            figs["powerlaw_teacher"] = self._powerlaw_figure(pl)
            if "eigenvalues" in pl:
                figs["powerlaw_learned_spectrum"] = self._powerlaw_cdf_figure(pl)

        eq = results[results["part"] == "equivalence"]
        if len(eq):
            figs["equivalence"] = self._equivalence_figure(eq)
        thr = results[results["part"] == "threshold"]
        if len(thr):
            figs["threshold_bisection"] = self._threshold_figure(thr)
        ip = results[results["part"] == "interpolator"]
        if len(ip):
            figs["interpolator"] = self._interpolator_figure(ip)
        real = results[(results["design"] == "quadratic") & results["part"].isin(["errors", "finite_size"])]
        if len(real):
            figs["real_features_finite_size"] = self._real_trend_figure(results, self._finite_size_at())
        if len(err):
            figs["tuned_lambda"] = self._tuned_lambda_figure(err)
        return figs

    @staticmethod
    def _equivalence_figure(eq: pd.DataFrame):
        """Relative objective gap of GD on W against width − rank(Ŝ), one line per (d, seed) draw, with the
        stopping rules' floor."""
        fig, ax = new_figure()
        eq = eq.assign(width=_width(eq).to_numpy())
        for i, ((d, s), e) in enumerate(eq.groupby(["d", "seed"])):
            e = e.sort_values("width")
            x = e["width"] - e["rank"]
            ax.plot(x, np.maximum(e["objective_gap"], 1e-17), "o-", color=f"C{i}",
                    label=f"d = {int(d)}, seed {int(s)} (rank {int(e['rank'].iloc[0])})")
            ax.plot(x, _gd_floor(e), ":", color=f"C{i}", lw=0.8)
        ax.axvline(0, color="k", ls="--", lw=1, label="m = rank of the convex minimizer")
        ax.set(yscale="log", xlabel="width m − rank(Ŝ)", ylabel="relative objective gap (floor dotted)",
               title="GD on W vs the convex twin")
        ax.legend(fontsize=7)
        return fig

    @staticmethod
    def _threshold_figure(thr: pd.DataFrame):
        """Left: the located α_c (seed mean ± s.e.) per d against α_PR(κ*) and the Bayes-optimal κ* − κ*²/2.
        Right: α_c against 1/d per κ*, the weighted fit α_c = c + b/d, and α_PR at 1/d = 0."""
        th = QuadraticERMTheory
        fig, (ax, bx) = new_figure(ncols=2)
        ks = np.linspace(0.05, 0.6, 80)
        plot_theory(ax, ks, th.perfect_recovery_threshold(ks), label="α_PR(κ*) (theory)", color="k")
        plot_theory(ax, ks, quadratic_erm.bayes_optimal_threshold(ks), label="κ* − κ*²/2 (Bayes-optimal)",
                    color="grey", style="--")
        for i, (d, g) in enumerate(thr.groupby("d")):
            plot_points(ax, g, "kappa", "alpha_c", label=f"bisection, d = {int(d)}", color=f"C{i}")
        ax.set(xlabel="κ*", ylabel="α", title="exact noiseless recovery threshold")
        ax.legend(fontsize=7)
        for i, kappa in enumerate(sorted(thr["kappa"].unique())):
            tr = _threshold_trend(thr, kappa)
            if tr is None:
                continue
            ds, means, sems, _ = tr
            b, _, c, _ = _threshold_slope(ds, means, sems)
            x = 1.0 / np.asarray(ds, float)
            bx.errorbar(x, means, yerr=sems, fmt="o", color=f"C{i}", ms=4, capsize=2.5, label=f"κ* = {kappa:g}")
            xx = np.linspace(0, x.max() * 1.05, 20)
            bx.plot(xx, c + b * xx, ":", color=f"C{i}", lw=1)
            bx.plot([0], [float(th.perfect_recovery_threshold(kappa))], "*", color=f"C{i}", ms=9)
        bx.set(xlabel="1/d", ylabel="located α_c", title="finite-size trend (★: α_PR)")
        if bx.get_legend_handles_labels()[0]:
            bx.legend(fontsize=7)
        return fig

    @staticmethod
    def _interpolator_figure(ip: pd.DataFrame):
        """Test error of the minimum-trace interpolator of noisy labels against α, per (κ*, Δ), with the theory's
        λ → 0⁺ limit."""
        groups = list(ip.groupby(["kappa", "noise"]))
        fig, axes = new_figure(ncols=len(groups))
        for ax, ((kappa, noise), g) in zip(np.atleast_1d(axes), groups):
            grid = np.linspace(0.04, 0.26, 23)
            plot_theory(ax, grid, QuadraticERMTheory.predict(grid, kappa, INTERP_LAM, noise).test_error,
                        label=f"theory, λ → 0⁺ (λ = {INTERP_LAM:g})", color="k")
            for i, (d, s) in enumerate(g.groupby("d")):
                plot_points(ax, s, "alpha", "test_error", label=f"min-trace interpolator, d = {int(d)}",
                            color=f"C{i}")
            ax.set(xlabel="α", ylabel="test error", title=f"interpolating noisy labels, κ* = {kappa:g}, Δ = {noise:g}")
            ax.legend(fontsize=7)
        return fig

    @staticmethod
    def _real_trend_figure(results: pd.DataFrame, at: dict):
        """Test and training error over theory at ``at`` (κ*, λ, Δ, α) against 1/d for both designs, with each
        design's weighted 1/d fit (what the claims on the real features allow for)."""
        fig, axes = new_figure(ncols=2)
        for ax, col in zip(axes, ("test_error", "train_error")):
            for i, design in enumerate(("goe", "quadratic")):
                rows = results[(results["design"] == design) & np.isclose(results["kappa"], at["kappa"])
                               & np.isclose(results["lam"], at["lam"]) & np.isclose(results["noise"], at["noise"])
                               & np.isclose(results["alpha"], at["alpha"])]
                pts = [(1.0 / d, *_grouped_ratio(g, QuadraticERMTheory, col)[:2]) for d, g in rows.groupby("d")]
                if not pts:
                    continue
                x, m, s = (np.array([v[0] for v in pts]), np.array([v[1][0] for v in pts]),
                           np.array([v[2][0] for v in pts]))
                ax.errorbar(x, m, yerr=s, fmt="os"[i], color=f"C{i}", ms=4, capsize=2.5, label=design)
                trend = _finite_size_trend(results, QuadraticERMTheory, col, at=at, design=design)
                if trend is not None:
                    xx = np.linspace(0, x.max() * 1.05, 20)
                    ax.plot(xx, 1 + trend[0] + trend[2] * xx, ":", color=f"C{i}", lw=1)
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set(xlabel="1/d", ylabel=f"{col.replace('_', ' ')} / theory",
                   title=f"κ* = {at['kappa']:g}, α = {at['alpha']:g}, λ = {at['lam']:g}, Δ = {at['noise']:g}")
            ax.legend(fontsize=7)
        return fig

    @staticmethod
    def _tuned_lambda_figure(err: pd.DataFrame):
        """Shown, not claimed: the theory's test error with λ tuned for it (minimum over a log grid of λ) against α,
        beside the fixed λ of the simulations (points) and the perfect-recovery thresholds; the library has no
        Bayes-optimal error formula for this model, only its threshold κ* − κ*²/2 (Δ = 0)."""
        (kappa, lam, noise), sub = next(iter(err[err["design"] == "goe"].groupby(["kappa", "lam", "noise"])))
        grid = np.linspace(sub["alpha"].min() * 0.9, sub["alpha"].max() * 1.05, 40)
        curves = []
        for lam_j in np.logspace(-3, 1, 9):
            try:
                curves.append(QuadraticERMTheory.predict(grid, kappa, float(lam_j), noise).test_error)
            except RuntimeError:
                continue
        fig, ax = new_figure()
        plot_theory(ax, grid, QuadraticERMTheory.predict(grid, kappa, lam, noise).test_error,
                    label=f"theory, λ = {lam:g}", color="C0")
        plot_theory(ax, grid, np.min(curves, axis=0), label="theory, λ tuned (best of 1e-3 … 10)", color="C3",
                    style="--")
        plot_points(ax, sub, "alpha", "test_error", label=f"convex solves, λ = {lam:g}", color="C0")
        ax.axhline(noise, color="grey", lw=0.8, ls=":", label="Δ (noise floor)")
        ax.axvline(float(QuadraticERMTheory.perfect_recovery_threshold(kappa)), color="k", ls="--", lw=1,
                   label="α_PR(κ*)")
        ax.axvline(float(quadratic_erm.bayes_optimal_threshold(kappa)), color="grey", ls="--", lw=1,
                   label="Bayes-optimal threshold (Δ = 0)")
        ax.set(yscale="log", xlabel="α", ylabel="test error",
               title=f"tuned weight decay, κ* = {kappa:g}, Δ = {noise:g}")
        ax.legend(fontsize=7)
        return fig

    @staticmethod
    def _powerlaw_figure(pl: pd.DataFrame):
        """Test and training error against α for the power-law teacher: simulation at each d, theory for the
        eigenvalues at the largest d (line) and the smallest (dotted)."""
        fig, ax = new_figure()
        grid = np.linspace(pl["alpha"].min() * 0.8, pl["alpha"].max() * 1.1, 8)
        c = POWERLAW
        for j, d in enumerate(sorted(pl["d"].unique())):
            p = QuadraticERMTheory.predict(grid, None, c["lam"], c["noise"],
                                           teacher_spectrum=powerlaw_teacher_spectrum(int(d), c["gamma"], c["q0"]))
            style = "-" if d == pl["d"].max() else ":"
            plot_theory(ax, grid, p.test_error, label=f"test (theory, d = {int(d)})", color="C0", style=style)
            plot_theory(ax, grid, p.train_error, label=f"train (theory, d = {int(d)})", color="C1", style=style)
            sub = pl[pl["d"] == d]
            marker = "os"[j % 2]
            plot_points(ax, sub, "alpha", "test_error", label=f"test, d = {int(d)}", color="C0", marker=marker)
            plot_points(ax, sub, "alpha", "train_error", label=f"train, d = {int(d)}", color="C1", marker=marker)
        ax.set(xlabel="α = n/d²", ylabel="error", title=f"power-law teacher γ = {c['gamma']:g}, λ = {c['lam']}, "
               f"Δ = {c['noise']}")
        ax.legend()
        return fig

    @staticmethod
    def _powerlaw_cdf_figure(pl: pd.DataFrame):
        """CDF of the eigenvalues of Ŝ (all seeds at the largest d, pooled) against the predicted CDF of ρ_Ŝ, one
        curve per α, with the levels where the claim compares them."""
        d = int(pl["d"].max())
        c = POWERLAW
        spec = powerlaw_teacher_spectrum(d, c["gamma"], q0=c["q0"])
        fig, ax = new_figure()
        big = pl[(pl["d"] == d) & pl["eigenvalues"].apply(lambda v: isinstance(v, list))]
        for i, (a, g) in enumerate(big.groupby("alpha")):
            ev = np.sort(np.concatenate([np.asarray(v) for v in g["eigenvalues"]]))
            ev = np.where(ev > RANK_RTOL * ev.max(), ev, 0.0)
            ax.step(ev, np.arange(1, len(ev) + 1) / len(ev), where="post", color=f"C{i}", alpha=0.6,
                    label=f"simulation α = {a:g} ({len(g)} seeds)")
            x = np.linspace(0.0, ev.max(), 80)
            F = QuadraticERMTheory.learned_spectrum_cdf(x, float(a), None, c["lam"], c["noise"], teacher_spectrum=spec)
            plot_theory(ax, x, F, label=f"theory α = {a:g}", color=f"C{i}")
        for level in CDF_LEVELS:
            ax.axhline(level, color="grey", lw=0.5, ls=":")
        top = float(np.quantile(np.concatenate([np.asarray(v) for v in big["eigenvalues"]]), 0.97))
        ax.set(xlim=(-0.02 * top, top), xlabel="eigenvalue of Ŝ (up to the 97 % quantile)", ylabel="CDF",
               title=f"learned spectrum, power-law teacher, d = {d}")
        ax.legend()
        return fig

    @staticmethod
    def _spectrum_figure(one: pd.DataFrame, kappa: float, lam: float, noise: float):
        """Histogram of the minimizer's nonzero eigenvalues against ρ_Y(x + θ) on x > 0, the continuous part of the
        learned spectrum (its atom at 0 in the legend)."""
        row = one.sort_values("alpha").iloc[len(one) // 2]
        ev = np.asarray(row["eigenvalues"])
        alpha = float(row["alpha"])
        p = QuadraticERMTheory.predict(alpha, kappa, lam, noise)
        _, _, atom = QuadraticERMTheory.learned_spectrum(alpha, kappa, lam, noise)
        theta, d2 = float(p.theta[0]), float(p.delta2[0])
        top = max(hi for _, hi in quadratic_erm.support(kappa, d2)) - theta
        x = np.linspace(0.0, top, 300)
        fig, ax = new_figure()
        pos = ev[ev > RANK_RTOL * ev.max()]
        counts, edges = np.histogram(pos, bins=20)  # normalised by d, so that it integrates to 1 − (atom at 0)
        ax.stairs(counts / (len(ev) * np.diff(edges)), edges, fill=True, alpha=0.5,
                  label=f"simulation (d = {int(row['d'])}), nonzero part")
        ax.plot(x, quadratic_erm.spectral_density(x + theta, kappa, d2), label=f"theory; atom at 0 of mass {atom:.2f}")
        ax.set(xlabel="eigenvalue of Ŝ", ylabel="density", title=f"learned spectrum, α = {alpha:g}")
        ax.legend()
        return fig


register(NuclearRoute())
