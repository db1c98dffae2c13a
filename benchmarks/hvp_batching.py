"""Hessian products of k = 10 vectors at once, ``HessianOperator @ V``: batched with autograd's batched gradients
(vmap) against a loop of vector-Jacobian products over one shared graph and against k separate products, on the MLP of
benchmarks/hessian_eigenvalues.py (float32, N = 1024 samples in one batch). Rounds interleaved, best of 3, threads
pinned (1 on the CPU); the machine's load before and after recorded. The operator's default (``vmap=None``) is
whichever this benchmark finds faster on the device kind: the loop on a CPU, the batch on a GPU.

    python benchmarks/hvp_batching.py [--device cpu|cuda] [--widths 305 988]   # 305 ≈ 1e5, 988 ≈ 1e6, 3150 ≈ 1e7
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from _common import write
from overparam.backend import pin_threads
from overparam.linalg import HessianOperator


def mlp(width: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                               torch.nn.Tanh(), torch.nn.Linear(width, 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--widths", type=int, nargs="+", default=[305, 988])
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    pin_threads(1)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def timed(f):
        sync()
        t = time.perf_counter()
        out = f()
        sync()
        return time.perf_counter() - t, out

    rows = []
    for width in args.widths:
        net = mlp(width).to(args.device)
        g = torch.Generator().manual_seed(1)
        X = torch.randn(1024, 20, generator=g).to(args.device)
        y = torch.randn(1024, 1, generator=g).to(args.device)
        Hv = HessianOperator(net, torch.nn.MSELoss(), X, y, vmap=True)
        Hl = HessianOperator(net, torch.nn.MSELoss(), X, y, vmap=False)
        V = torch.randn(Hv.dim, args.k, generator=g).to(args.device)
        load0 = os.getloadavg()[0]
        tasks = {"batched (vmap)": lambda: Hv @ V, "loop, shared graph": lambda: Hl @ V,
                 "separate products": lambda: torch.stack([Hl @ V[:, j] for j in range(args.k)], 1),
                 "one gradient": Hl.gradient}
        best, outs = {n: float("inf") for n in tasks}, {}
        for _ in range(3):
            for name, f in tasks.items():
                t, outs[name] = timed(f)
                best[name] = min(best[name], t)
        ref = outs["loop, shared graph"]
        for name, t in best.items():
            diff = float((outs[name] - ref).norm() / ref.norm()) if name != "one gradient" else float("nan")
            rows.append({"device": args.device, "params": Hv.dim, "k": args.k, "method": name, "best_of_3_s": t,
                         "ratio_to_loop": t / best["loop, shared graph"], "rel_diff_to_loop": diff,
                         "load_before": load0, "load_after": os.getloadavg()[0]})
            print(rows[-1], flush=True)
    write(f"hvp_batching_{'cuda' if cuda else 'cpu'}", rows,
          f"H @ V for V with k = {args.k} columns, float32 MLP, N = 1024; best of 3, rounds interleaved, threads pinned.")


if __name__ == "__main__":
    main()
