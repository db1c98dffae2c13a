"""A small study that lives in the tests to exercise the spine.

Claim: the sample mean of n standard Gaussians has variance 1/n. Behaviour is steered by environment variables so
that worker processes (spawned, or on Dask) see the same settings:

- TOY_SLEEP: seconds each point sleeps (to make a sweep long enough to interrupt);
- TOY_LOG: a file to which each run appends its point's n and seed (counts recomputations);
- TOY_DIE_ONCE: a marker path; the first point to run creates it and SIGKILLs its own process;
- TOY_WRONG_THEORY: when set, the verdict compares with a wrong prediction (to exercise exit code 1).
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from overparam.backend import generator
from overparam.report.figures import new_figure, plot_points, plot_theory
from overparam.studies import register
from overparam.studies.base import Study, verdict_close

import torch


class ToyStudy(Study):
    name = "toy"
    claim = "The sample mean of n i.i.d. N(0, 1) draws has variance 1/n."

    def points(self, scale):
        ns = {"test": [4, 16, 64], "quick": [4, 16, 64, 256], "paper": [4, 16, 64, 256, 1024]}[scale]
        reps = {"test": 8, "quick": 16, "paper": 64}[scale]
        return [{"n": n, "seed": s, "fail": n == 16 and s == 3 and bool(os.environ.get("TOY_FAIL"))}
                for n in ns for s in range(reps)]

    def run(self, point):
        if os.environ.get("TOY_DIE_ONCE") and not os.path.exists(os.environ["TOY_DIE_ONCE"]):
            open(os.environ["TOY_DIE_ONCE"], "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("TOY_LOG"):
            with open(os.environ["TOY_LOG"], "a") as f:
                f.write(f"{point['n']} {point['seed']}\n")
        time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
        if point.get("fail"):
            raise RuntimeError("this point fails on purpose")
        g = generator(point["seed"] * 1000 + point["n"])
        x = torch.randn(256, point["n"], generator=g, dtype=torch.float64)
        means = x.mean(dim=1)
        return {"var_times_n": float(means.var() * point["n"]), "first_mean": float(means[0]),
                "means_head": means[:3].tolist()}

    def theory(self, n):
        return 1.0 / np.asarray(n, dtype=float)

    def figures(self, results):
        fig, ax = new_figure()
        df = results.assign(var=results["var_times_n"] / results["n"])
        plot_points(ax, df, "n", "var", label="simulation")
        ns = np.geomspace(df["n"].min(), df["n"].max(), 50)
        plot_theory(ax, ns, self.theory(ns), label="1/n")
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel="variance of the mean")
        ax.legend()
        return {"variance_vs_n": fig}

    def verdicts(self, results):
        predicted = 2.0 if os.environ.get("TOY_WRONG_THEORY") else 1.0
        return [verdict_close(self.name, "n · Var(mean) equals 1", float(results["var_times_n"].mean()),
                              predicted, 0.1)]


TOY = register(ToyStudy())
