"""The nuclear route's convex solver against its floor: ms per FISTA iteration vs two n×d×d matmuls, same run.

The convex twin of a quadratic network (real quadratic features, κ* = 0.5, α = n/d², λ = Δ = 0.1) at d in
``--sizes``. Per d, best of ``--repeats`` wall times of

- ``matmul``: one product X @ S, X (n, d), S (d, d) — the floor is two of them (a forward and an adjoint pass);
- ``forward`` / ``factored`` / ``adjoint``: the operator's passes (dense S; S = AAᵀ on the rank of the minimizer;
  Xᵀ diag(r) X);
- ``iteration``: ``nuclear_least_squares`` run for ``--iters`` iterations from the minimizer's neighbourhood (warm
  start at a 20-iteration iterate, so that the rank, hence the factored forward's cost, is the one of a real solve),
  step 1/L fixed, divided by the iterations; it includes the prox's eigendecomposition and the gap check;
- with ``--solve-tol``: the whole solve from zero to that relative duality gap (seconds, iterations, passes,
  restarts).

``--paper-point ALPHA [ALPHA ...]`` times instead what ``overparam reproduce nuclear-route --scale paper`` runs for
one real-features point at d = ``--sizes``' first entry (data drawn, convex solve to the study's gap, errors and rank:
``nuclear_route.run_convex``), one run per α, written to ``nuclear_paper_point_DEVICE``.

Threads pinned (``--threads``, torch + BLAS + OpenMP), the 1-minute load average recorded beside every row (the
development machine is shared). ``--device cuda`` runs the same code on the GPU (synchronized timings) and reports
the matmul's achieved GFLOP/s (``--peak-gflops`` turns it into a fraction of the card's peak).

    python benchmarks/nuclear_floor.py [--sizes 100 200 400] [--alpha 1] [--threads 2] [--device cpu|cuda]
        [--pass-dtype float64|float32] [--solve-tol 1e-7]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from _common import write
from overparam.backend import generator, pin_threads
from overparam.problems.quadratic_net import QuadraticFeatures, make_problem
from overparam.solvers.nuclear import curvature_estimate, nuclear_least_squares

KAPPA, LAM, NOISE = 0.5, 0.1, 0.1


def best_of(f, repeats: int, device: str) -> float:
    """Best wall time of ``repeats`` calls of f (synchronized on CUDA)."""
    best = math.inf
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        f()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def row(d: int, args) -> dict:
    """Timings of one size d (see the module docstring)."""
    prob = make_problem(d, args.alpha, KAPPA, NOISE, generator(0, args.device), "quadratic")
    op = prob.op if args.pass_dtype == "float64" else QuadraticFeatures(prob.op.X, pass_dtype=torch.float32)
    lam, w = LAM / d, 2.0 / d**2
    L = w * curvature_estimate(op) * 1.1
    warm = nuclear_least_squares(op, prob.y, lam, psd=True, weight=w, L=L, max_iter=20, tol=1e-300)
    ev, Q = torch.linalg.eigh(warm.x)
    A = Q[:, ev > 0] * ev[ev > 0].sqrt()
    g = generator(1, args.device)
    S = torch.randn(d, d, generator=g, device=args.device, dtype=torch.float64)
    S = S + S.T
    Xp, Sp = op.X, S.to(op.X.dtype)
    r = torch.randn(prob.n, generator=g, device=args.device, dtype=torch.float64)
    rep, dev = args.repeats, args.device
    load = os.getloadavg()[0]
    t_mm = best_of(lambda: Xp @ Sp, rep, dev)
    t_fwd = best_of(lambda: op.forward(S), rep, dev)
    t_fac = best_of(lambda: op.forward_factored(A, A), rep, dev)
    t_adj = best_of(lambda: op.adjoint(r), rep, dev)
    t_it = best_of(lambda: nuclear_least_squares(op, prob.y, lam, psd=True, weight=w, L=L, X0=warm.x,
                                                 max_iter=args.iters, tol=1e-300), rep, dev) / args.iters
    out = {"d": d, "n": prob.n, "device": dev, "pass_dtype": args.pass_dtype, "threads": torch.get_num_threads(),
           "rank": int(A.shape[1]), "matmul_ms": 1e3 * t_mm, "forward_ms": 1e3 * t_fwd, "factored_ms": 1e3 * t_fac,
           "adjoint_ms": 1e3 * t_adj, "iteration_ms": 1e3 * t_it, "iteration_over_two_matmuls": t_it / (2 * t_mm),
           "matmul_gflops": 2 * prob.n * d * d / t_mm / 1e9}
    if args.peak_gflops:
        out["matmul_fraction_of_peak"] = out["matmul_gflops"] / args.peak_gflops
    if args.solve_tol:
        t0 = time.perf_counter()
        res = nuclear_least_squares(op, prob.y, lam, psd=True, weight=w, tol=args.solve_tol, max_iter=5000)
        if dev == "cuda":
            torch.cuda.synchronize()
        out.update(solve_tol=args.solve_tol, solve_s=time.perf_counter() - t0, solve_iterations=res.steps,
                   solve_passes=res.history["passes"][-1], solve_restarts=res.history["restarts"][-1],
                   solve_status=res.status)
    out["load_1min"] = load
    return out


def paper_point(d: int, alpha: float, args) -> dict:
    """Wall time of one paper-scale ``errors`` point of the study (real features, first seed, first config)."""
    from overparam.studies import nuclear_route
    p = next(q for q in nuclear_route._error_points("paper") if q["design"] == "quadratic" and q["alpha"] == alpha)
    p = dict(p, d=d, device=args.device, part="errors")
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    out = nuclear_route.run_convex(p)
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {"d": d, "alpha": alpha, "n": round(alpha * d * d), "kappa": p["kappa"], "lam": p["lam"],
            "noise": p["noise"], "device": args.device, "threads": torch.get_num_threads(),
            "tol": nuclear_route.CONVEX_TOL, "seconds": seconds, "cpu_seconds": cpu_seconds, "iterations": out["convex_steps"],
            "status": out["convex_status"], "test_error": out["test_error"], "rank": out["rank"], "load_1min": load,
            "load_1min_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--pass-dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--solve-tol", type=float, default=None)
    ap.add_argument("--peak-gflops", type=float, default=None,
                    help="the card's peak GFLOP/s in the pass dtype (for the fraction of peak)")
    ap.add_argument("--name", default=None, help="results file name (default nuclear_floor_DEVICE[_float32])")
    ap.add_argument("--paper-point", type=float, nargs="+", default=None, metavar="ALPHA",
                    help="time the study's paper-scale real-features point(s) at these α instead")
    args = ap.parse_args()
    pin_threads(args.threads)
    if args.paper_point:
        rows = [paper_point(args.sizes[0], a, args) for a in args.paper_point]
        for r in rows:
            print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
        write(args.name or f"nuclear_paper_point_{args.device}", rows, "One paper-scale point of `overparam reproduce "
              "nuclear-route --scale paper` (real quadratic features, first seed and (κ*, λ, Δ)): data drawn, "
              "convex solve to the study's relative duality gap, errors and rank (`nuclear_route.run_convex`); "
              f"wall seconds of one run and the process's CPU seconds (all threads), {args.threads} thread(s) pinned, "
              "1-minute load average before and after (shared 2-core machine: under a load above 2 the wall time "
              "is stretched by the other processes). Goal: ≤ 240 s on 2 CPU threads at d = 400.")
        return
    rows = []
    for d in args.sizes:
        rows.append(row(d, args))
        print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    name = args.name or f"nuclear_floor_{args.device}" + ("_float32" if args.pass_dtype == "float32" else "")
    write(name, rows, f"Convex twin of the quadratic network (real quadratic features, κ* = {KAPPA}, α = {args.alpha:g}, "
          f"λ = Δ = {LAM}): ms per FISTA iteration (one forward on the prox's factors + one adjoint + eigh + gap check "
          f"every 5) against one n×d×d matmul in the same run; best of {args.repeats}, {args.threads} thread(s) "
          "pinned, load_1min = 1-minute load average before the row (shared 2-core machine). Goal: "
          "iteration_over_two_matmuls ≤ 1.3 at d ≥ 200.")


if __name__ == "__main__":
    main()
