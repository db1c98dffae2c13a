"""Factorized GD step: rank-one measurements (never forming A_i) against dense Gaussian ones, as n grows.

Time per gradient step (median of 20 after 3 warm-up steps) and the operator's memory, n1 = n2 = n, r = 2, k = 2r,
m = 5·r·(n1 + n2). The dense operator stores m·n1·n2 numbers and is skipped once that passes --dense-limit-gb.

    python benchmarks/sensing_operators.py [--device cpu|cuda] [--sizes 50 100 200 400 1000 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import write
from overparam.backend import generator
from overparam.problems.matrix_sensing import GaussianOperator, RankOneOperator, low_rank_truth, measure
from overparam.solvers.factorized import sensing_loss_and_grad, small_init


def step_time(op, y, U, V, device: str) -> float:
    grad = sensing_loss_and_grad(op, y)
    times = []
    for i in range(23):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        _, (gU, gV) = grad([U, V])
        U, V = U - 1e-3 * gU, V - 1e-3 * gV
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400, 1000, 2000])
    ap.add_argument("--dense-limit-gb", type=float, default=2.0)
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        r, k = 2, 4
        m = 5 * r * 2 * n
        for name, cls in (("rank_one", RankOneOperator), ("dense", GaussianOperator)):
            mem = (m * n * n if name == "dense" else m * 2 * n) * 8
            if mem > args.dense_limit_gb * 2**30:
                rows.append({"n": n, "m": m, "operator": name, "step_ms": float("nan"), "operator_MB": mem / 2**20,
                             "note": "skipped: over memory limit"})
                continue
            g = generator(0, args.device)
            L, R = low_rank_truth(n, n, r, 2.0, g)
            op = cls(m, n, n, g)
            y = measure(op, L, R)
            U, V = small_init(n, n, k, 1e-2, g)
            t = step_time(op, y, U, V, args.device)
            rows.append({"n": n, "m": m, "operator": name, "step_ms": 1e3 * t, "operator_MB": mem / 2**20, "note": ""})
            print(rows[-1], flush=True)
            del op
    write(f"sensing_operators_{args.device}", rows,
          "Time per factorized-GD step (closed-form gradient, float64) and operator memory; rank-one operator applied "
          "through (a_iᵀU)(b_iᵀV), dense operator through its m × n1·n2 matrix. One run.")


if __name__ == "__main__":
    main()
