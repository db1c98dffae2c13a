"""Wall and CPU time of the nuclear-route theory, ``overparam.theory.quadratic_erm.predict``, on a 100-point α curve:
the Wishart teacher (κ*) and a power-law teacher given as its eigenvalues (free convolution by subordination), both
solved for the whole grid at once. Best of 3 (wall: time.perf_counter, CPU: time.process_time, each the best of its
own three runs), threads pinned to 1, the machine's load average recorded beside each number (the machine is
shared: CPU time is the steadier figure under load).

The code before the whole-grid spectrum solver (commit f649777: the Wishart grid at once with a finite-difference
Jacobian column; a teacher spectrum one α at a time on real-line u-panels) is run in the same run, from
``git archive`` of that commit in a subprocess, on the same grids: the Wishart curves in full (best of 3), the
power law on its first ``--n-alpha-before`` α of an evenly thinned grid, once (about 3 s of CPU per α), its 100-α
time extrapolated from the time per α.

Where the time went (cProfile, 100 α, λ = Δ = 0.1). Before: the Wishart grid took 659 α-evaluations of the residuals
(6.6 passes: the finite-difference δ²-column cost one pass in two), 60 % of the time in the cubic's closed-form roots
at ~1000 real-line nodes per α; a spectrum took ~11 evaluations of T(δ²) per α (276 at α = 0.2, where the secant
fell back to the damped iteration), each building u-panels (Newton for v(u) at ~1200 nodes × 400 atoms) and cutting
~5 panels at θ (scalar Newton for ψ⁻¹(θ)), plus 0.3 s per call for the gaps' minima of f(u). Now: the Wishart grid 327
evaluations (exact Jacobian, cubic-spline starts, 64 nodes per panel), the cubic's roots still half the time; the
spectrum grid ~305 evaluations of 61 contour nodes per α, 76 % in the Newton steps on ω + tG_S(ω) = z (A × 400
complex reciprocals per step), the gaps' minima no longer computed.

    OMP_NUM_THREADS=1 python benchmarks/quadratic_erm_theory.py [--n-alpha 100] [--atoms 400] [--n-alpha-before 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from overparam.backend import pin_threads

from _common import write
from overparam.problems.quadratic_net import powerlaw_teacher_spectrum
from overparam.theory.quadratic_erm import predict

BEFORE = "f649777"  # the commit before the whole-grid spectrum solver
LAM, NOISE, GAMMA = 0.1, 0.1, 1.5

# run in a subprocess on the earlier commit's source: prints {"case": [wall, cpu, test_error]} as JSON
_RUNNER = """
import json, sys, time
import numpy as np
from overparam.backend import pin_threads
from overparam.theory.quadratic_erm import predict
pin_threads(1)
cases, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
out = {}
for name, (alphas, kappa, spec) in cases.items():
    best = [float("inf"), float("inf")]
    for _ in range(repeats if kappa is not None else 1):
        t0, c0 = time.perf_counter(), time.process_time()
        p = predict(np.array(alphas), kappa, %r, %r, teacher_spectrum=None if spec is None else np.array(spec))
        best = [min(best[0], time.perf_counter() - t0), min(best[1], time.process_time() - c0)]
    out[name] = best + [p.test_error.tolist()]
print(json.dumps(out))
""" % (LAM, NOISE)


def run_before(cases: dict, repeats: int = 3) -> dict:
    """The earlier commit's ``predict`` on ``cases`` ({name: (alphas, κ* or None, spectrum or None)}) in a
    subprocess with that commit's ``src`` first on the path."""
    root = Path(__file__).resolve().parent.parent
    tmp = Path(tempfile.mkdtemp())
    archive = subprocess.run(["git", "archive", BEFORE, "src"], capture_output=True, check=True, cwd=root).stdout
    (tmp / "src.tar").write_bytes(archive)
    with tarfile.open(tmp / "src.tar") as tar:
        tar.extractall(tmp, filter="data")
    env = dict(os.environ, PYTHONPATH=str(tmp / "src"), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(cases), str(repeats)], capture_output=True,
                         text=True, check=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def best_of(f, repeats: int = 3) -> tuple[float, float, object]:
    """(best wall s, best CPU s, last result) of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = f()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-alpha", type=int, default=100)
    ap.add_argument("--atoms", type=int, default=400)
    ap.add_argument("--n-alpha-before", type=int, default=5, help="α points of the power law for the earlier code")
    args = ap.parse_args()
    pin_threads(1)  # torch, BLAS and OpenMP: one thread each
    alphas = np.geomspace(0.2, 3.0, args.n_alpha)
    spec = powerlaw_teacher_spectrum(args.atoms, GAMMA, q0=1.0)
    sub = alphas[np.linspace(0, len(alphas) - 1, args.n_alpha_before).round().astype(int)]
    teachers = {"Wishart κ* = 0.5": (0.5, None), "Wishart κ* = 2": (2.0, None),
                f"power law γ = {GAMMA:g}, {args.atoms} atoms": (None, spec)}
    load0 = os.getloadavg()[0]
    cases = {name: ((sub if s is not None else alphas).tolist(), k, None if s is None else s.tolist())
             for name, (k, s) in teachers.items()}
    before = run_before(cases)
    rows = []
    predict(alphas[:3], 0.5, LAM, NOISE)  # imports and first-call costs out of the timings
    for name, (kappa, s) in teachers.items():
        wall, cpu, p = best_of(lambda: predict(alphas, kappa, LAM, NOISE, teacher_spectrum=s))
        b_wall, b_cpu, b_err = before[name]
        n_b = len(b_err)
        if s is not None:  # the earlier code on a thinned grid: its time per α times n_alpha
            idx = np.searchsorted(alphas, sub)
            b_wall, b_cpu = b_wall * len(alphas) / n_b, b_cpu * len(alphas) / n_b
        else:
            idx = np.arange(len(alphas))
        diff = float(np.max(np.abs(p.test_error[idx] / np.array(b_err) - 1)))
        rows.append({"teacher": name, "n_alpha": len(alphas), "best_of_3_wall_s": wall, "best_of_3_cpu_s": cpu,
                     "before_wall_s": b_wall, "before_cpu_s": b_cpu, "before_alpha_timed": n_b,
                     "speedup_cpu": b_cpu / cpu, "max_rel_diff_test_error_to_before": diff,
                     "load_1min_before_runs": load0, "load_1min": os.getloadavg()[0]})
        print(rows[-1], flush=True)
    write("quadratic_erm_theory", rows,
          f"predict(α, …, λ = {LAM}, Δ = {NOISE}) on a geometric α grid in [0.2, 3], every teacher's whole grid at "
          "once (joint Newton on (log δ², log θ) with an exact Jacobian; a teacher spectrum's integrals by contour "
          "integration off the real line). Best of 3, OMP/torch threads = 1, CPU. before_*: the code of commit "
          f"{BEFORE} in the same run (Wishart: best of 3 on the same 100 α; power law: one α at a time, timed once on "
          f"{args.n_alpha_before} α of the grid and scaled to {args.n_alpha}; its 32-node real-line panels were off "
          "by up to ~1e-5 in the MSE, hence the power law's diff). load_1min: 1-minute load average (shared machine).")


if __name__ == "__main__":
    main()
