"""Our accelerated proximal solver against cvxpy (SCS, and Clarabel where it fits) on the same instance.

- ``--problem sensing``: (1/2)‖𝒜(X) − y‖² + lam‖X‖_* with dense Gaussian 𝒜 (implicit-balancing's convex baseline);
- ``--problem psd``: the nuclear route's convex twin, (1/d²)Σ(y − 𝒜S)² + (lam/d) Tr S over S ⪰ 0
  (run once that study's problem module is present).

Time ratio from one run; objectives checked equal (relative difference reported).

    python benchmarks/nuclear_vs_cvxpy.py --problem sensing --sizes 10 20 30
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from _common import write
from overparam.backend import generator
from overparam.problems.matrix_sensing import GaussianOperator, low_rank_truth, measure
from overparam.solvers.nuclear import nuclear_least_squares


def sensing_instance(n: int, seed: int = 0):
    g = generator(seed)
    n1, n2, r = n, max(2, (2 * n) // 3), 2
    L, R = low_rank_truth(n1, n2, r, 2.0, g)
    op = GaussianOperator(3 * r * (n1 + n2), n1, n2, g)
    y = measure(op, L, R, noise=0.05, g=g)
    lam = 0.05 * float(torch.linalg.matrix_norm(op.adjoint(y), ord=2))
    return op, y, lam


def cvxpy_sensing(op, y, lam, solver: str):
    import cvxpy as cp
    A = op.A.numpy() / math.sqrt(op.m)
    X = cp.Variable((op.n1, op.n2))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ cp.vec(X, order="C") - y.numpy()) + lam * cp.normNuc(X)))
    kw = {"eps": 1e-9, "max_iters": 200000} if solver == "SCS" else {}
    t0 = time.perf_counter()
    prob.solve(solver=solver, **kw)
    return time.perf_counter() - t0, float(prob.value), prob.status


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default="sensing", choices=["sensing"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 30])
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        op, y, lam = sensing_instance(n)
        t0 = time.perf_counter()
        res = nuclear_least_squares(op, y, lam, tol=1e-8, max_iter=100000)
        t_ours = time.perf_counter() - t0
        ours = res.history["objective"][-1]
        for solver in ("SCS", "CLARABEL"):
            try:
                t_cvx, val, status = cvxpy_sensing(op, y, lam, solver)
            except Exception as exc:  # noqa: BLE001 - a baseline that cannot run is recorded, not fatal
                rows.append({"n1": op.n1, "n2": op.n2, "m": op.m, "baseline": solver, "overparam_s": t_ours,
                             "baseline_s": float("nan"), "speedup": float("nan"), "rel_objective_diff": float("nan"),
                             "note": f"{type(exc).__name__}"})
                continue
            rows.append({"n1": op.n1, "n2": op.n2, "m": op.m, "baseline": solver, "overparam_s": t_ours,
                         "baseline_s": t_cvx, "speedup": t_cvx / t_ours, "rel_objective_diff": abs(ours - val) / abs(val),
                         "note": f"ours: {res.status}, {res.steps} it; cvxpy: {status}"})
            print(rows[-1], flush=True)
    write(f"nuclear_vs_cvxpy_{args.problem}", rows,
          "Nuclear-norm least squares: overparam's FISTA with restart and duality-gap stop (rel. gap 1e-8) against "
          "cvxpy with SCS (eps 1e-9) and Clarabel, same instance. One run, CPU.")


if __name__ == "__main__":
    main()
