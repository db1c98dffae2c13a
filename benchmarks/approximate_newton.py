"""Wall time to ‖∇L‖ ≤ tol·‖∇L(0)‖ for softmax two-layer regression: our Newton methods against scipy and torchmin.

Every method sees the same dense C (one float64 array, shared by NumPy and torch without a copy) and the same
objective, scaled by 1/‖∇L(0)‖ for the external solvers so that their absolute tolerances mean what ours do (the loss
itself is O(1/n)). Methods: exact Newton, Newton-CG with the adaptive CG tolerance (Eisenstat–Walker), approximate
Newton with leverage-score sampling (scores reused) at three sample sizes (ε₀ = ⅛, ¼, ½), the same sampled Hessian
as the preconditioner of CG on the exact Hessian-vector product (approx_newton_cg; also with one preconditioner
built at x = 0 for the whole run, ``lag=0``, uniform at the three ε₀ and leverage at ¼), uniform sampling at the same
three and a CountSketch Newton sketch (all ours, damped steps); scipy L-BFGS-B (closed-form gradient), trust-ncg and
trust-krylov (our O(nnz) Hessian-vector product); torchmin (pytorch-minimize) L-BFGS and Newton-CG on autodiff of the
plain torch loss.

Threads pinned to one (BLAS, OpenMP, torch), best of ``--repeats`` wall times (a method whose first run exceeds
``--slow`` seconds runs once: the ``runs`` column says so), the 1-minute load average before each method, the
iterations and the gradient norm each reached (float64 solvers that stop on a step or loss criterion may stop above
the target: the ``reached`` column says whether it was met). Results: benchmarks/results/approximate_newton.{json,md,
csv,png}.

    python benchmarks/approximate_newton.py [--ns 100000 1000000] [--d 100] [--tol 1e-8]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import minimize as sp_minimize  # noqa: E402

from _common import RESULTS, write  # noqa: E402
from overparam.problems.softmax_regression import curvature_report, make_data_dominated, make_instance  # noqa: E402
from overparam.backend import pin_threads  # noqa: E402
from overparam.solvers.newton import solve  # noqa: E402

pin_threads(1)  # torch, BLAS and OpenMP: one thread each
FAMILIES = {"easy": make_instance, "data-dominated": make_data_dominated}


def ours(method: str, **kw):
    def run(prob, x0, tol, g0):
        res = solve(prob, x0, method, grad_tol=tol * g0, max_iter=200, **kw)
        return res.x, res.steps, res.status
    return run


class OutOfTime(Exception):
    """Raised by a callback when a run exceeds its time budget (the last iterate is kept)."""


def budget_callback(budget: float, last: dict):
    """A callback that keeps the latest iterate and stops the run after ``budget`` seconds."""
    t0 = time.perf_counter()

    def cb(x, *_):
        last["x"] = torch.as_tensor(np.asarray(x.detach() if isinstance(x, torch.Tensor) else x, dtype=float))
        last["it"] = last.get("it", 0) + 1
        if time.perf_counter() - t0 > budget:
            raise OutOfTime
    return cb


def scipy_method(name: str, budget: float):
    def run(prob, x0, tol, g0):
        def fun(x):
            xt = torch.from_numpy(x)
            st = prob.state(xt)
            return st.loss / g0, prob.grad(xt, st).numpy() / g0

        def hessp(x, v):
            return prob.hvp(torch.from_numpy(x), torch.from_numpy(v)).numpy() / g0

        last: dict = {"x": x0}
        cb = budget_callback(budget, last)
        try:
            if name == "L-BFGS-B":  # gtol bounds the largest gradient entry: tol/√d bounds the norm by tol
                opts = {"gtol": tol / math.sqrt(prob.d), "ftol": 0.0, "maxiter": 20000, "maxcor": 20}
                r = sp_minimize(fun, x0.numpy(), jac=True, method=name, options=opts, callback=cb)
            else:
                r = sp_minimize(fun, x0.numpy(), jac=True, hessp=hessp, method=name,
                                options={"gtol": tol, "maxiter": 2000}, callback=cb)
        except OutOfTime:
            return last["x"], last["it"], f"stopped at the {budget:g} s budget"
        return torch.from_numpy(r.x), r.nit, str(r.message)[:50]
    return run


def torchmin_method(name: str, budget: float):
    def run(prob, x0, tol, g0):
        from torchmin import minimize as tm_minimize

        def f(x):
            return prob.torch_loss(x) / g0

        opts = ({"gtol": tol / math.sqrt(prob.d), "xtol": 1e-14, "history_size": 20} if name == "l-bfgs"
                else {"xtol": 1e-14 / prob.d})
        last: dict = {"x": x0}
        try:
            r = tm_minimize(f, x0.clone(), method=name, max_iter=20000 if name == "l-bfgs" else 200, options=opts,
                            callback=budget_callback(budget, last))
        except OutOfTime:
            return last["x"], last["it"], f"stopped at the {budget:g} s budget"
        return r.x.detach(), int(r.nit), str(r.message)[:50]
    return run


def methods(budget: float) -> dict:
    return {
        "exact Newton": ours("newton"),
        "Newton-CG, adaptive tol (ours)": ours("newton_cg", cg_tol="adaptive"),
        "approx. Newton, leverage, eps0 = 0.125": ours("approx_newton", eps0=0.125),
        "approx. Newton, leverage, eps0 = 0.25": ours("approx_newton", eps0=0.25),
        "approx. Newton, leverage, eps0 = 0.5": ours("approx_newton", eps0=0.5),
        "approx. Newton-PCG, leverage, eps0 = 0.5": ours("approx_newton_cg", eps0=0.5),
        "approx. Newton-PCG, uniform, eps0 = 0.125, built once": ours("approx_newton_cg", eps0=0.125,
                                                                     scheme="uniform", lag=0),
        "approx. Newton-PCG, uniform, eps0 = 0.25, built once": ours("approx_newton_cg", eps0=0.25, scheme="uniform",
                                                                    lag=0),
        "approx. Newton-PCG, uniform, eps0 = 0.5, built once": ours("approx_newton_cg", eps0=0.5, scheme="uniform",
                                                                   lag=0),
        "approx. Newton-PCG, leverage, eps0 = 0.25, built once": ours("approx_newton_cg", eps0=0.25, lag=0),
        "approx. Newton, uniform, eps0 = 0.125": ours("approx_newton", eps0=0.125, scheme="uniform"),
        "approx. Newton, uniform, eps0 = 0.25": ours("approx_newton", eps0=0.25, scheme="uniform"),
        "approx. Newton, uniform, eps0 = 0.5": ours("approx_newton", eps0=0.5, scheme="uniform"),
        "approx. Newton, CountSketch, eps0 = 0.25": ours("approx_newton", eps0=0.25, scheme="countsketch"),
        "scipy L-BFGS-B": scipy_method("L-BFGS-B", budget),
        "scipy trust-ncg (our hvp)": scipy_method("trust-ncg", budget),
        "scipy trust-krylov (our hvp)": scipy_method("trust-krylov", budget),
        "torchmin l-bfgs (autodiff)": torchmin_method("l-bfgs", budget),
        "torchmin newton-cg (autodiff)": torchmin_method("newton-cg", budget),
    }


def timed(run, prob, x0, tol, g0, repeats: int, slow: float):
    best, out, runs = math.inf, None, 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run(prob, x0, tol, g0)
        best, runs = min(best, time.perf_counter() - t0), runs + 1
        if best > slow:
            break
    return best, runs, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slow", type=float, default=25.0)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds after which an external solver is stopped")
    ap.add_argument("--families", nargs="+", default=list(FAMILIES))
    ap.add_argument("--skip", nargs="*", default=[], help="method names to leave out")
    ap.add_argument("--skip-large", nargs="*", default=[], help="method names to leave out at the largest n")
    ap.add_argument("--figure-only", action="store_true", help="redraw the figure from the results JSON")
    ap.add_argument("--name", default="approximate_newton", help="results file name (.md, .json, .csv, .png)")
    args = ap.parse_args()
    if args.figure_only:
        figure(json.loads((RESULTS / f"{args.name}.json").read_text())["rows"], args.name)
        return
    rows, skipped = [], []
    for family in args.families:
        for n in args.ns:
            prob, _ = FAMILIES[family](n, args.d, 0, "softplus")
            x0 = torch.zeros(args.d, dtype=torch.float64)
            g0 = float(prob.grad(x0).norm())
            x_star = solve(prob, x0, "newton", grad_tol=1e-12 * g0, max_iter=50).x
            report = curvature_report(prob, x_star) if n <= 100_000 else {}
            ref = None
            for name, run in methods(args.budget).items():
                if name in args.skip or (n == max(args.ns) and name in args.skip_large):
                    continue
                load = os.getloadavg()[0]
                try:
                    secs, runs, (x, its, status) = timed(run, prob, x0, args.tol, g0, args.repeats, args.slow)
                except ValueError as e:  # a sample of s ≥ n rows: sampling cannot save work at this n
                    if not str(e).startswith("s: "):
                        raise
                    skipped.append(f"{name} at n = {n:g} ({str(e).split(';')[0]})")
                    print("skipped:", skipped[-1], flush=True)
                    continue
                gn = float(prob.grad(x).norm()) / g0
                ref = secs if name == "exact Newton" else ref
                rows.append({"family": family, "n": n, "d": args.d, "method": name, "seconds": secs, "runs": runs,
                             "iterations": int(its), "grad_rel": gn, "reached": gn <= args.tol * 1.0001,
                             "dist_to_x_star": float((x - x_star).norm()) / float(x_star.norm()),
                             "exact_newton_over_this": ref / secs if ref else float("nan"), "load_1min": load,
                             "status": str(status), **{k: round(v, 3) for k, v in report.items()}})
                print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
            del prob
    notes = (f"Dense C, d = {args.d}, softplus; target ‖∇L‖ ≤ {args.tol:g}·‖∇L(0)‖ from x = 0; best of "
             f"{args.repeats} wall times (one run when the first took > {args.slow:g} s: column runs; external solvers stopped after "
             f"{args.budget:g} s: status says so), one thread "
             "for BLAS/OpenMP/torch; load_1min = the 1-minute load average before the method (2 cores shared with "
             "other jobs). 'reached' says whether the method met the target (float64 solvers stopping on a step, "
             "loss or iteration criterion may stop above it). kappa_H, data_to_reg, leverage_max: "
             "overparam.problems.softmax_regression.curvature_report at x* (n ≤ 1e5 only)."
             + (f" Not run at n = {max(args.ns)} (to keep the run short): {', '.join(args.skip_large)}."
                if args.skip_large else "")
             + (f" Not run: {'; '.join(sorted(set(skipped)))}." if skipped else ""))
    write(args.name, rows, notes)
    with open(RESULTS / f"{args.name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    figure(rows, args.name)


def figure(rows: list[dict], name: str = "approximate_newton") -> None:
    """One panel per (family, n): seconds per method (log scale), each panel labelled with its own methods."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    groups = sorted({(r["family"], r["n"]) for r in rows})
    cols = min(2, len(groups))
    nrow = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(5.5 * cols, 3.6 * nrow), squeeze=False)
    for ax, (fam, n) in zip(axes.ravel(), groups):
        rs = [r for r in rows if r["family"] == fam and r["n"] == n]
        colors = ["C1" if "approx" in r["method"] else ("C7" if "scipy" in r["method"] or "torchmin" in r["method"]
                                                          else "C0") for r in rs]
        bars = ax.barh(range(len(rs)), [r["seconds"] for r in rs], color=colors,
                       edgecolor=["k" if r["reached"] else "r" for r in rs], linewidth=1.2)
        ax.bar_label(bars, fmt="%.3g s", fontsize=6, padding=2)  # a panel within one decade has no log tick labels
        secs = [r["seconds"] for r in rs]
        ax.set_xlim(0.5 * min(secs), 1.8 * max(secs))  # room for the labels
        ax.set_yticks(range(len(rs)), [r["method"] for r in rs], fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"{fam}, n = {n:.0e}, d = {rs[0]['d']}", fontsize=9)
        ax.set_xlabel("seconds, best of runs (red edge: target not reached)", fontsize=7)
        ax.invert_yaxis()
    for ax in axes.ravel()[len(groups):]:
        ax.axis("off")
    fig.tight_layout(w_pad=3.0)
    fig.savefig(RESULTS / f"{name}.png", dpi=110, bbox_inches="tight")  # the longest method names


if __name__ == "__main__":
    main()
