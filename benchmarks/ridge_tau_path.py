"""Ridge at 50 target training errors τ: our one-SVD path against scikit-learn's Ridge refitted per λ.

Both use the same root-finder (overparam.solvers.ridge.lambda_for_target) on log λ; scikit-learn refits at every
evaluation, as a user without a path solver would. Results are checked equal (λ and coefficients).

    python benchmarks/ridge_tau_path.py [--n 2000] [--p 3000] [--n-tau 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import Ridge

from _common import write
from overparam.backend import generator
from overparam.problems.linear_regression import powerlaw_problem
from overparam.solvers.ridge import RidgePath, lambda_for_target


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--p", type=int, default=3000)
    ap.add_argument("--n-tau", type=int, default=50)
    args = ap.parse_args()
    n, p = args.n, args.p
    prob = powerlaw_problem(n, 1.5, n / p, 1.0)
    g = generator(0)
    X = prob.design(n, g)
    y = prob.labels(X, prob.target(g), g)
    taus = np.linspace(0.05, 0.8, args.n_tau)

    t0 = time.perf_counter()
    path = RidgePath.fit(X, y)
    lam_ours = [path.lambda_for_train_error(t) for t in taus]
    coef_ours = [path.coef(l) for l in lam_ours]
    t_ours = time.perf_counter() - t0

    Xn, yn = X.numpy(), y.numpy()
    evals = 0

    def sk_train_error(lam: float) -> float:
        nonlocal evals
        evals += 1
        m = Ridge(alpha=n * lam, fit_intercept=False).fit(Xn, yn)  # sklearn: ‖y − Xw‖² + alpha‖w‖²
        return float(np.mean((Xn @ m.coef_ - yn) ** 2))

    t0 = time.perf_counter()
    bounds = (0.0, float(yn @ yn) / n)
    s = torch.linalg.svdvals(X)  # the bracket only; counted in the baseline's time
    lam_sk = [lambda_for_target(sk_train_error, t, bounds, s, n, xtol=1e-10) for t in taus]
    coef_sk = [Ridge(alpha=n * l, fit_intercept=False).fit(Xn, yn).coef_ for l in lam_sk]
    t_sk = time.perf_counter() - t0

    lam_rel = float(np.max(np.abs(np.array(lam_sk) / np.array(lam_ours) - 1)))
    coef_rel = float(max(np.linalg.norm(c1.numpy() - c2) / np.linalg.norm(c2) for c1, c2 in zip(coef_ours, coef_sk)))
    rows = [{"n": n, "p": p, "n_tau": len(taus), "overparam_s": t_ours, "sklearn_refit_s": t_sk,
             "speedup": t_sk / t_ours, "sklearn_fits": evals + len(taus), "max_rel_diff_lambda": lam_rel,
             "max_rel_diff_coef": coef_rel}]
    print(rows[0])
    write("ridge_tau_path", rows, "Ridge at a target training error τ for many τ: one SVD + root-finds on the path "
          "(overparam) against sklearn.linear_model.Ridge refitted at every root-finder evaluation. One run, CPU.")


if __name__ == "__main__":
    main()
