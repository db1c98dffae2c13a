"""A small study that lives in the tests to exercise the spine.

Claim: the sample mean of n standard Gaussians has variance 1/n. Behaviour is steered by environment variables so
that worker processes (spawned, or on Dask) see the same settings:

- TOY_SLEEP: seconds each point sleeps (to make a sweep long enough to interrupt);
- TOY_LOG: a file to which each run appends its point's n and seed (counts recomputations);
- TOY_DIE_ONCE: a marker path; the first point to run creates it and SIGKILLs its own process;
- TOY_FAIL: one point raises;
- TOY_WRONG_THEORY: when set, the theory predicts a variance twice too large (to exercise exit code 1).
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import torch

from overparam.backend import generator
from overparam.claims import Claim, Evidence, mean_sem
from overparam.report.figures import new_figure, plot_points, plot_theory
from overparam.studies import register
from overparam.studies.base import Part, Study
from overparam.studies.params import Param


class ToyTheory:
    @staticmethod
    def variance_of_mean(n):
        factor = 2.0 if os.environ.get("TOY_WRONG_THEORY") else 1.0
        return factor / np.asarray(n, dtype=float)


NS = {"test": [4, 16, 64], "quick": [4, 16, 64, 256], "paper": [4, 16, 64, 256, 1024]}
REPS = {"test": 8, "quick": 16, "paper": 64}


def _points(scale):
    ns, reps = NS[scale], REPS[scale]
    return [{"n": n, "seed": s, "fail": n == 16 and s == 3 and bool(os.environ.get("TOY_FAIL"))}
            for n in ns for s in range(reps)]


def _run(point):
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


def _evidence(results, theory):
    mean, sem, n = mean_sem(results["var_times_n"])
    return Evidence(mean, float(np.mean(theory.variance_of_mean(results["n"]) * results["n"])), sem, n)


class ToyStudy(Study):
    name = "toy"
    claim = "The sample mean of n i.i.d. N(0, 1) draws has variance 1/n."
    theory_model = ToyTheory
    params = (Param("n", int, "draws averaged", NS, low=1),
              Param("fail", int, "1 makes every point raise", {s: 0 for s in NS}, low=0, high=1, theory=False))
    sweep_part = "mean"

    def sweep_point(self, values, seed):
        return dict(values, fail=bool(values["fail"]), seed=seed)

    def predict(self, values):
        return {"variance_of_mean": float(self.theory_model.variance_of_mean(values["n"]))}

    def parts(self):
        return [Part("mean", _points, _run, [Claim(
            "n · Var(mean) equals 1", _evidence,
            "4 standard errors of the mean of n·Var over points (a 1-in-15 000 false alarm for a normal mean).",
            k=4.0, not_judged_at=())], work=lambda p: 256 * p["n"], memory=lambda p: 8 * 256 * p["n"])]

    def figures(self, results):
        fig, ax = new_figure()
        df = results.assign(var=results["var_times_n"] / results["n"])
        plot_points(ax, df, "n", "var", label="simulation")
        ns = np.geomspace(df["n"].min(), df["n"].max(), 50)
        plot_theory(ax, ns, ToyTheory.variance_of_mean(ns), label="1/n")
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel="variance of the mean")
        ax.legend()
        return {"variance_vs_n": fig}


TOY = register(ToyStudy())
