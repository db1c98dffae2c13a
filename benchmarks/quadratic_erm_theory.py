"""Wall time of the nuclear-route theory, ``overparam.theory.quadratic_erm.predict``, on an α curve: the Wishart
teacher (κ*) and a power-law teacher given as its eigenvalues (free convolution by subordination). Best of 3,
threads pinned to 1, the machine's load average recorded beside each number. The Wishart rows are also timed with
two earlier solvers loaded from git into this run, so that the ratios come from one run: the first wave's (commit
b1f3878, a damped iteration per α; NaN where it stops with a convergence error somewhere on the grid) and the
one-α-at-a-time secant solver that the whole-grid Newton iteration replaced (commit 67d6ad2).

    OMP_NUM_THREADS=1 python benchmarks/quadratic_erm_theory.py [--n-alpha 100] [--n-alpha-spectrum 10] [--atoms 400]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from overparam.backend import pin_threads

from _common import write
from overparam.problems.quadratic_net import powerlaw_teacher_spectrum
from overparam.theory.quadratic_erm import predict


BEFORE = "b1f3878"  # the first wave's solver
ONE_AT_A_TIME = "67d6ad2"  # the secant solver, one α at a time


def previous_predict(commit: str = BEFORE):
    """``predict`` of theory/quadratic_erm.py at ``commit``, imported as a module of the installed package."""
    src = subprocess.run(["git", "show", f"{commit}:src/overparam/theory/quadratic_erm.py"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parent).stdout
    path = Path(tempfile.mkdtemp()) / f"quadratic_erm_{commit}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"overparam.theory._quadratic_erm_{commit}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.predict


def best_of(f, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-alpha", type=int, default=100)
    ap.add_argument("--n-alpha-spectrum", type=int, default=10)
    ap.add_argument("--atoms", type=int, default=400)
    args = ap.parse_args()
    pin_threads(1)  # torch, BLAS and OpenMP: one thread each
    lam, noise = 0.1, 0.1
    rows = []
    before = previous_predict()
    one_at_a_time = previous_predict(ONE_AT_A_TIME)
    for kappa in (0.5, 2.0):
        alphas = np.geomspace(0.2, 3.0, args.n_alpha)
        t = best_of(lambda: predict(alphas, kappa, lam, noise))
        t1 = best_of(lambda: one_at_a_time(alphas, kappa, lam, noise))
        diff1 = float(np.max(np.abs(predict(alphas, kappa, lam, noise).test_error
                                    / one_at_a_time(alphas, kappa, lam, noise).test_error - 1)))
        try:
            t0 = best_of(lambda: before(alphas, kappa, lam, noise))
            diff = float(np.max(np.abs(predict(alphas, kappa, lam, noise).test_error
                                       / before(alphas, kappa, lam, noise).test_error - 1)))
        except RuntimeError as e:  # the earlier solver's damped iteration did not converge somewhere on the grid
            print(f"before: {e}")
            t0, diff = float("nan"), float("nan")
        rows.append({"teacher": f"Wishart κ* = {kappa:g}", "n_alpha": len(alphas), "best_of_3_s": t,
                     "one_at_a_time_s": t1, "speedup_vs_one_at_a_time": t1 / t,
                     "max_rel_diff_to_one_at_a_time": diff1, "before_s": t0, "speedup": t0 / t,
                     "max_rel_diff_test_error": diff, "per_alpha_s": t / len(alphas),
                     "load_1min": os.getloadavg()[0]})
        print(rows[-1])
    spec = powerlaw_teacher_spectrum(args.atoms, 1.5, q0=1.0)
    alphas = np.geomspace(0.2, 3.0, args.n_alpha_spectrum)
    t = best_of(lambda: predict(alphas, None, lam, noise, teacher_spectrum=spec))
    rows.append({"teacher": f"power law γ = 1.5, {args.atoms} atoms", "n_alpha": len(alphas), "best_of_3_s": t,
                 "one_at_a_time_s": t, "speedup_vs_one_at_a_time": 1.0, "max_rel_diff_to_one_at_a_time": 0.0,
                 "before_s": float("nan"), "speedup": float("nan"), "max_rel_diff_test_error": float("nan"),
                 "per_alpha_s": t / len(alphas), "load_1min": os.getloadavg()[0]})
    print(rows[-1])
    write("quadratic_erm_theory", rows, f"predict(α, …, λ = {lam}, Δ = {noise}) on a geometric α grid in [0.2, 3], "
          "the Wishart teacher's whole grid at once (joint Newton on (log δ², log θ), vectorized over α), the power-law "
          "teacher one α at a time in increasing α with warm starts. Best of 3, OMP/torch "
          "threads = 1, CPU; load_1min is the 1-minute load average after the runs (the machine is shared).")


if __name__ == "__main__":
    main()
