"""Top-10 and bottom Hessian eigenvalues of MLPs with ~1e4 and ~1e5 parameters: overparam's Lanczos on
Hessian-vector products against curvlinops (+ scipy eigsh) and PyHessian (power iteration with deflation).

Time ratios from one run; eigenvalues checked against each other (largest relative difference to ours). float32
(PyHessian draws float32 vectors). PyHessian computes no smallest eigenvalue; its row for 'bottom' is absent.

    python benchmarks/hessian_eigenvalues.py [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.sparse.linalg import eigsh

from _common import write
from overparam.diagnostics import HessianOperator, extreme_eigenvalues


def mlp(width: int, device: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                               torch.nn.Tanh(), torch.nn.Linear(width, 1)).to(device)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--widths", type=int, nargs="+", default=[90, 305])  # ≈ 1e4 and 1e5 parameters
    args = ap.parse_args()
    rows = []
    for width in args.widths:
        net = mlp(width, args.device)
        g = torch.Generator().manual_seed(1)
        X = torch.randn(512, 20, generator=g).to(args.device)
        y = torch.randn(512, 1, generator=g).to(args.device)
        loss = torch.nn.MSELoss()
        n_params = sum(p.numel() for p in net.parameters())
        H = HessianOperator(net, loss, X, y)
        t0 = time.perf_counter()
        ours = extreme_eigenvalues(H, k=10, which="largest", tol=1e-6)["largest"]
        t_top = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours_min = extreme_eigenvalues(H, k=1, which="smallest", tol=1e-6)["smallest"]
        t_bot = time.perf_counter() - t0
        rows.append({"params": n_params, "task": "top-10", "tool": "overparam (eigsh on HVP)", "seconds": t_top,
                     "ratio_to_ours": 1.0, "max_rel_diff_to_ours": 0.0, "values": f"{ours[-1]:.5g} … {ours[0]:.5g}"})
        rows.append({"params": n_params, "task": "bottom-1", "tool": "overparam (eigsh on HVP)", "seconds": t_bot,
                     "ratio_to_ours": 1.0, "max_rel_diff_to_ours": 0.0, "values": f"{ours_min[0]:.5g}"})
        try:
            from curvlinops import HessianLinearOperator
            op = HessianLinearOperator(net, loss, [p for p in net.parameters()], [(X, y)],
                                       check_deterministic=False).to_scipy()
            t0 = time.perf_counter()
            cl = np.sort(eigsh(op, k=10, which="LA", tol=1e-6, return_eigenvectors=False))
            t = time.perf_counter() - t0
            rows.append({"params": n_params, "task": "top-10", "tool": "curvlinops + scipy eigsh", "seconds": t,
                         "ratio_to_ours": t / t_top, "max_rel_diff_to_ours": float(np.max(np.abs(cl / ours - 1))),
                         "values": f"{cl[-1]:.5g} … {cl[0]:.5g}"})
            t0 = time.perf_counter()
            clm = eigsh(op, k=1, which="SA", tol=1e-6, return_eigenvectors=False)
            t = time.perf_counter() - t0
            rows.append({"params": n_params, "task": "bottom-1", "tool": "curvlinops + scipy eigsh", "seconds": t,
                         "ratio_to_ours": t / t_bot, "max_rel_diff_to_ours": float(abs(clm[0] / ours_min[0] - 1)),
                         "values": f"{clm[0]:.5g}"})
        except Exception as exc:  # noqa: BLE001
            rows.append({"params": n_params, "task": "top-10", "tool": "curvlinops", "seconds": float("nan"),
                         "ratio_to_ours": float("nan"), "max_rel_diff_to_ours": float("nan"),
                         "values": f"failed: {type(exc).__name__}: {exc}"[:80]})
        try:
            from pyhessian import hessian as PyHessian
            hc = PyHessian(net, loss, data=(X, y), cuda=args.device == "cuda")
            t0 = time.perf_counter()
            ph, _ = hc.eigenvalues(maxIter=200, tol=1e-4, top_n=10)
            t = time.perf_counter() - t0
            ph = np.sort(np.asarray(ph, dtype=float))
            rows.append({"params": n_params, "task": "top-10", "tool": "PyHessian power iteration", "seconds": t,
                         "ratio_to_ours": t / t_top, "max_rel_diff_to_ours": float(np.max(np.abs(ph / ours - 1))),
                         "values": f"{ph[-1]:.5g} … {ph[0]:.5g}"})
        except Exception as exc:  # noqa: BLE001
            rows.append({"params": n_params, "task": "top-10", "tool": "PyHessian", "seconds": float("nan"),
                         "ratio_to_ours": float("nan"), "max_rel_diff_to_ours": float("nan"),
                         "values": f"failed: {type(exc).__name__}: {exc}"[:80]})
        for r in rows[-5:]:
            print(r, flush=True)
    write(f"hessian_eigenvalues_{args.device}", rows,
          "Tanh MLP 20 → w → w → 1, 512 samples, MSE, float32. eigsh tol 1e-6; PyHessian maxIter 200, tol 1e-4. One run.")


if __name__ == "__main__":
    main()
