"""The checkup against WeightWatcher, and its cost at ~1e5 and ~1e6 parameters.

Part 1, tail exponents: the density-tail exponent α of WᵀW for each layer of a small MLP, ours
(:func:`overparam.diagnostics.tail_exponent`: continuous power-law MLE, xmin by least KS distance over every
eigenvalue, no upper cut) against WeightWatcher's ``analyze()`` ``alpha`` on the same layers. Two layers have a
planted spectrum (singular values σ_k ∝ k^−a/2, so λ_k = σ_k² ∝ k^−a and the density tail is α = 1 + 1/a), two are
PyTorch's default random initialization (a Marchenko–Pastur bulk, no power law: both tools return some large α).

Part 2, cost: ``checkup`` (every section) on MLPs of ~1e5 and ~1e6 parameters, float32, n rows of data; seconds per
section, threads pinned, best of ``--repeat`` (default 1: the 1e6 run takes minutes), the machine's load recorded.

    python benchmarks/checkup.py [--device cpu|cuda] [--sizes 1e5 1e6] [--n 1000] [--repeat 1] [--skip-ww]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from _common import write
from overparam.backend import pin_threads
from overparam.diagnostics import checkup, tail_exponent

PLANTED = {"planted a=1.0": 1.0, "planted a=2.0": 2.0}


def _planted(out: int, inp: int, a: float, seed: int) -> torch.Tensor:
    """W = U diag(k^(−a/2)) Vᵀ with random orthogonal U, V: the eigenvalues of WᵀW are k^−a exactly."""
    g = torch.Generator().manual_seed(seed)
    r = min(out, inp)
    U, _ = torch.linalg.qr(torch.randn(out, r, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(inp, r, generator=g, dtype=torch.float64))
    return (U * torch.arange(1, r + 1, dtype=torch.float64) ** (-a / 2)) @ V.T


def ww_model() -> tuple[torch.nn.Module, list[str]]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128))
    with torch.no_grad():
        net[2].weight.copy_(_planted(512, 512, 1.0, 1))
        net[4].weight.copy_(_planted(256, 512, 2.0, 2))
    return net, ["random init (784×512)", "planted a=1.0", "planted a=2.0", "random init (256×128)"]


def compare_ww() -> list[dict]:
    import weightwatcher as ww
    net, labels = ww_model()
    details = ww.WeightWatcher(model=net).analyze(min_evals=10)
    rows = []
    for (_, d), label, lin in zip(details.iterrows(), labels, [m for m in net if isinstance(m, torch.nn.Linear)]):
        s = torch.linalg.svdvals(lin.weight.detach().double()).numpy()
        ours = tail_exponent(s**2)
        lo, hi = ours.interval
        truth = 1 + 1 / PLANTED[label] if label in PLANTED else float("nan")
        rows.append({"layer": label, "theory_alpha": truth, "ours_alpha": ours.alpha, "ours_lo": lo, "ours_hi": hi,
                     "ours_xmin": ours.xmin, "ours_n_tail": ours.n_tail, "ww_alpha": float(d["alpha"]),
                     "ww_xmin": float(d["xmin"]), "ww_num_pl_spikes": int(d.get("num_pl_spikes", -1)),
                     "ww_D": float(d["D"])})
    return rows


def mlp(size: str, d: int, device: str) -> torch.nn.Module:
    """~1e5: d → 300 → 300 → 1; ~1e6: d → 1000 → 200 → 1 (tanh)."""
    torch.manual_seed(0)
    h1, h2 = (300, 300) if size == "1e5" else (1000, 200)
    return torch.nn.Sequential(torch.nn.Linear(d, h1), torch.nn.Tanh(), torch.nn.Linear(h1, h2), torch.nn.Tanh(),
                               torch.nn.Linear(h2, 1)).to(device)


def time_checkup(size: str, n: int, device: str, repeat: int) -> dict:
    d = 100 if size == "1e5" else 784
    net = mlp(size, d, device)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, d, generator=g) * torch.arange(1, d + 1.0) ** -0.5
    y = torch.randn(n, 1, generator=g)
    best, rep = None, None
    for _ in range(repeat):
        t = time.perf_counter()
        rep = checkup(net, torch.nn.MSELoss(), X, y, device=device, progress=False)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    row = {"size": size, "params": sum(p.numel() for p in net.parameters()), "n": n, "device": device,
           "seconds_best": best, "load_1min": os.getloadavg()[0]}
    row.update({f"s_{k}": v for k, v in rep.timings.items()})
    row["curvature_method"] = rep.curvature.get("method", "")
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", nargs="*", default=["1e5", "1e6"], choices=["1e5", "1e6"], help="none: skip the cost")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-ww", action="store_true")
    args = ap.parse_args()
    pin_threads(args.threads)
    if not args.skip_ww:
        rows = compare_ww()
        write("checkup_vs_weightwatcher", rows, NOTES_WW)
        for r in rows:
            print(r)
    rows = [time_checkup(s, args.n, args.device, args.repeat) for s in args.sizes]
    if not rows:
        return
    write(f"checkup_cost_{args.device}", rows, f"checkup() on MLPs, float32, n = {args.n}, {args.threads} thread(s), "
          f"best of {args.repeat}; load_1min is the 1-minute load average after the run.")
    for r in rows:
        print(r)


NOTES_WW = ("Density-tail exponent α of the eigenvalues of WᵀW per layer: ours (continuous MLE, xmin by least KS "
            "distance over all eigenvalues, interval α ± 1.96 (α − 1)/√n_tail) against WeightWatcher 0.7's analyze() "
            "alpha on the same layers. theory_alpha = 1 + 1/a for the planted layers (λ_k = k^−a exactly); random-init "
            "layers have a Marchenko–Pastur bulk and no power law, so any α there is a fit to the bulk's upper edge. "
            "Where both fit the same tail the two agree to rounding (same estimator, same xmin rule). They differ on "
            "the random 784×512 layer only: WeightWatcher's least-KS xmin leaves 9 eigenvalues in the tail (α = 34.9, "
            "its own standard error (α − 1)/√9 = 11); ours requires at least 10 (min_tail) and picks a tail of 105 "
            "(α = 4.7 ± 0.7); with min_tail=3 ours returns WeightWatcher's 34.93 exactly. Neither is a power law there.")

if __name__ == "__main__":
    main()
