"""Study ``convex-neighborhoods`` (Benning & Dereich 2025): efficient minimizers of shallow analytic networks have
positive definite Hessians; redundant ones sit on flat continua.

Each point of the sweep is a batch of B independent random problems (Gaussian inputs, random teacher + random smooth
function + noise) for one activation, a student of width m trained by full-batch Adam and polished by damped Newton
(all B at once) until ‖∇L‖ ≤ 1e-10. Each converged critical point with λ_min ≥ 0 is classified: *escaping* (some
parameter above ``BOUND`` in magnitude: a neuron saturating or two cancelling towards infinity, whose infimum is not
attained), *redundant* (:func:`overparam.diagnostics.find_redundancy`) or *efficient*; its λ_min/λ_max is recorded.

The first batch of each analytic activation (``cases`` in its parameters) also

- makes its best-conditioned efficient minimizers redundant by construction — a neuron split into two copies (and, for
  odd σ, into a sign-flipped pair) — critical points realizing the same function; the number of Hessian eigenvalues
  below 1e-9·λ_max is held against the flat dimension ``find_redundancy`` predicts;
- runs Newton from a point at half the certified radius μ/(2M) of one efficient minimizer
  (:func:`overparam.diagnostics.certify`) and measures the order of convergence.

ReLU runs as the non-analytic contrast: reported, not judged by the theorem.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..diagnostics import certify, find_redundancy
from ..problems.shallow_net import (ACTIVATIONS, batched_losses, mse, random_problem, single_loss, to_module,
                                    unpack, pack)
from ..report.figures import new_figure
from ..solvers.gradient import minimize
from ..solvers.module import batched_damped_newton, newton_polish
from . import register
from .base import Study, Verdict

ANALYTIC = ("tanh", "sigmoid", "softplus", "gelu", "sin")
BOUND = 15.0  # parameters beyond this magnitude count as escaping to infinity
PD_REL = 1e3 * torch.finfo(torch.float64).eps  # λ_min/λ_max above this: positive definite to working precision
ZERO_REL = 1e-9  # |λ|/λ_max below this: a zero eigenvalue

SCALES = {
    "test": dict(d=2, m=3, n=48, B=24, batches=1, adam=800, newton=60, red_cases=3),
    # batches per activation: converged finite minimizers per batch of 100 differ (≈ 55 tanh, 52 sin, 44 gelu,
    # 28 sigmoid, 5 softplus, whose runs mostly escape to infinity), so the counts aim at ≥ 200 where that is affordable
    "quick": dict(d=2, m=3, n=64, B=100, batches=dict(tanh=4, sin=4, gelu=5, sigmoid=8, softplus=8), adam=2000,
                  newton=100, red_cases=10),
    "paper": dict(d=3, m=4, n=128, B=200, batches=10, adam=4000, newton=200, red_cases=50),
}


def train_batch(act: str, d: int, m: int, n: int, B: int, seed: int, adam_steps: int, newton_steps: int):
    """B random problems and their students; returns (X, y, θ, ‖∇L_b‖, Hessians)."""
    g = torch.Generator().manual_seed(seed)
    data = [random_problem(d, n, 3, act, g) for _ in range(B)]
    X, y = torch.stack([a for a, _ in data]), torch.stack([b for _, b in data])
    th0 = torch.cat([torch.randn(B, m * d, generator=g, dtype=torch.float64) / math.sqrt(d),
                     0.1 * torch.randn(B, m, generator=g, dtype=torch.float64),
                     torch.randn(B, m, generator=g, dtype=torch.float64) / math.sqrt(m),
                     torch.zeros(B, 1, dtype=torch.float64)], 1)
    losses = lambda th: batched_losses(th, X, y, m, act)  # noqa: E731
    hess = lambda th: torch.vmap(torch.func.hessian(lambda t, x, yy: single_loss(t, x, yy, m, act)))(th, X, y)  # noqa
    theta = minimize(lambda ps: losses(ps[0]).sum(), [th0], lr=0.02, method="adam", max_steps=adam_steps).x[0]
    theta = batched_damped_newton(losses, theta, hess, max_steps=newton_steps).x
    grads = torch.vmap(torch.func.grad(lambda t, x, yy: single_loss(t, x, yy, m, act)))(theta, X, y)
    return X, y, theta, grads.norm(dim=-1), hess(theta)


def split_neuron(theta: torch.Tensor, d: int, m: int, flipped: bool) -> torch.Tensor:
    """Width m + 1 parameters realizing the same function: neuron 0 split into two copies (a → 0.3a, 0.7a), or, when
    ``flipped``, a copy with (−w, −b) and output weights (a + s, s) (same function for odd σ)."""
    W, b, a, c = unpack(theta, d, m)
    if flipped:
        s = 0.4 * float(a[0]) + 0.3
        W2, b2 = torch.cat([W, -W[:1]]), torch.cat([b, -b[:1]])
        a2 = torch.cat([a[:1] + s, a[1:], torch.tensor([s], dtype=a.dtype)])
    else:
        W2, b2 = torch.cat([W, W[:1]]), torch.cat([b, b[:1]])
        a2 = torch.cat([0.3 * a[:1], a[1:], 0.7 * a[:1]])
    return pack(W2, b2, a2, c)


class ConvexNeighborhoods(Study):
    name = "convex-neighborhoods"
    claim = ("For shallow networks with analytic activations, efficient minimizers have positive definite Hessians "
             "(strongly convex neighbourhoods, where Newton converges quadratically); redundant minimizers lie on flat "
             "continua with as many zero Hessian eigenvalues as their redundancy implies.")
    version = "1"

    def points(self, scale: str) -> list[dict]:
        c = SCALES[scale]
        common = dict(d=c["d"], m=c["m"], n=c["n"], adam=c["adam"], newton=c["newton"])

        def batches(a: str) -> int:
            return 1 if a == "relu" else (c["batches"][a] if isinstance(c["batches"], dict) else c["batches"])

        # the first batch of each analytic activation also carries the redundant constructions and the Newton run
        return [dict(common, part="minimizers", activation=a, B=c["B"], seed=1000 * i + k,
                     **({"cases": c["red_cases"]} if k == 0 and a in ANALYTIC else {}))
                for i, a in enumerate(ANALYTIC + ("relu",)) for k in range(batches(a))]

    def run(self, point: dict) -> dict:
        p = point
        act, d, m = p["activation"], p["d"], p["m"]
        X, y, theta, gnorm, H = train_batch(act, d, m, p["n"], p["B"], p["seed"], p["adam"], p["newton"])
        ev = torch.linalg.eigvalsh(H)
        rel = (ev[:, 0] / ev[:, -1]).tolist()
        kinds = []
        for b in range(p["B"]):
            if float(gnorm[b]) > 1e-10:
                kinds.append("not_converged")
            elif rel[b] < -PD_REL:
                kinds.append("saddle")
            elif float(theta[b].abs().max()) > BOUND:
                kinds.append("escaping")
            else:
                kinds.append("efficient" if find_redundancy(to_module(theta[b], d, m, act), act).efficient
                             else "redundant")
        out = {"kind": kinds, "rel_lambda_min": rel}
        if not p.get("cases"):
            return out
        # redundant constructions and Newton inside the certified ball, from the best-conditioned efficient minimizers
        eff = [b for b in range(p["B"]) if kinds[b] == "efficient" and rel[b] > 1e-6]
        eff = sorted(eff, key=lambda b: -rel[b])[: p["cases"]]
        counts, predicted, spectra = [], [], {}
        for b in eff:
            for flipped in ((False, True) if ACTIVATIONS[act].symmetry == "odd" else (False,)):
                th2 = split_neuron(theta[b], d, m, flipped)
                H2 = torch.func.hessian(lambda t: single_loss(t, X[b], y[b], m + 1, act))(th2)
                ev2 = torch.linalg.eigvalsh(0.5 * (H2 + H2.T))
                counts.append(int((ev2.abs() <= ZERO_REL * ev2.abs().max()).sum()))
                predicted.append(find_redundancy(to_module(th2, d, m + 1, act), act).flat_dimension)
                spectra.setdefault("redundant", ev2.tolist())
            spectra.setdefault("efficient", ev[b].tolist())
        out.update(zero_count=counts, flat_dimension=predicted, spectrum_efficient=spectra.get("efficient", []),
                   spectrum_redundant=spectra.get("redundant", []))
        if eff:
            b = eff[0]
            net = to_module(theta[b], d, m, act)
            cert = certify(net, mse, X[b], y[b].reshape(-1, 1), n_ball=4, n_directions=4, seed=p["seed"])
            star = theta[b].clone()
            u = torch.randn(len(star), generator=torch.Generator().manual_seed(p["seed"]), dtype=torch.float64)
            start = star + 0.5 * cert.radius * u / u.norm()
            net = to_module(start, d, m, act)
            res = newton_polish(net, mse, X[b], y[b].reshape(-1, 1), grad_tol=0.0, max_steps=8,
                                record=lambda ps: {"err": float((ps[0] - star).norm())})
            errs = res.history["err"]
            out.update(newton_err=errs, radius=cert.radius, mu=cert.mu, M=cert.hessian_lipschitz,
                       ball_check=float(cert.ball_check_passed), order=self._order(errs))
        return out

    @staticmethod
    def _order(errs: list[float]) -> float:
        """Median of log(e_{t+1}/e_t)/log(e_t/e_{t−1}) over steps with errors in (1e-13, 1): 2 for quadratic."""
        e = [x for x in errs if 1e-13 < x < 1]
        q = [math.log(e[t + 1] / e[t]) / math.log(e[t] / e[t - 1]) for t in range(1, len(e) - 1)
             if e[t] < e[t - 1] and e[t + 1] < e[t]]
        return float(np.median(q)) if q else float("nan")

    def theory(self, activation: str) -> str:
        """The theorem's prediction is qualitative: 'positive definite' for efficient, 'flat dimension' zeros."""
        return "efficient ⇒ λ_min > 0" if ACTIVATIONS[activation].analytic else "no prediction (non-analytic)"

    # --- analysis ------------------------------------------------------------------------------------------------
    @staticmethod
    def _constructions(results: pd.DataFrame) -> pd.DataFrame:
        """The batches that carry the redundant constructions and the Newton run."""
        return results[results["cases"].notna()] if "cases" in results else results.iloc[:0]

    @staticmethod
    def _minimizers(results: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for _, r in results.iterrows():
            for k, rel in zip(r["kind"], r["rel_lambda_min"]):
                rows.append({"activation": r["activation"], "kind": k, "rel": rel, "part": r["part"]})
        return pd.DataFrame(rows)

    def verdicts(self, results: pd.DataFrame) -> list[Verdict]:
        out = []
        mins = self._minimizers(results)
        ana = mins[mins["activation"].isin(ANALYTIC)]
        eff = ana[ana["kind"] == "efficient"]
        frac = float((eff["rel"] > PD_REL).mean()) if len(eff) else float("nan")
        counts = ana["kind"].value_counts().to_dict()
        per = ", ".join(f"{a}: {int((eff['activation'] == a).sum())}" for a in ANALYTIC)
        out.append(self.verdict(f"efficient minimizers of analytic networks have a positive definite Hessian "
                                f"(λ_min/λ_max > {PD_REL:.1e}): fraction over {len(eff)} minimizers", frac, 0.99,
                                "≥ predicted", len(eff) > 0 and frac >= 0.99,
                                f"efficient per activation: {per}; all classes: {counts}"))
        red = self._constructions(results)
        zc = [z for v in red["zero_count"] for z in v]
        fd = [f for v in red["flat_dimension"] for f in v]
        match = float(np.mean([a == b for a, b in zip(zc, fd)])) if zc else float("nan")
        out.append(self.verdict(f"redundant critical points have as many zero Hessian eigenvalues as the flat "
                                f"dimension of their redundancy: fraction of {len(zc)} constructions that match",
                                match, 1.0, "= predicted", len(zc) > 0 and match == 1.0,
                                f"zero counts seen: {sorted(set(zc))}, predicted: {sorted(set(fd))}"))
        orders = red["order"].dropna() if "order" in red else pd.Series(dtype=float)
        worst = float(orders.min()) if len(orders) else float("nan")
        out.append(self.verdict("Newton from inside the certified ball μ/(2M) converges quadratically: smallest "
                                "measured order over activations", worst, 2.0, "≥ 1.8",
                                math.isfinite(worst) and worst >= 1.8,
                                "ball check (λ_min ≥ μ/2 at sampled points) passed in "
                                f"{int(red['ball_check'].sum())}/{len(red)}" if "ball_check" in red else ""))
        return out

    def figures(self, results: pd.DataFrame) -> dict:
        figs = {}
        mins = self._minimizers(results)
        if len(mins):
            fig, ax = new_figure(width=6)
            bins = np.linspace(-17, 0, 35)
            for kind, color in (("efficient", "C0"), ("redundant", "C3"), ("escaping", "C1")):
                sub = mins[(mins["kind"] == kind) & mins["activation"].isin(ANALYTIC)]
                if len(sub):
                    ax.hist(np.log10(np.clip(sub["rel"].abs(), 1e-17, None)), bins=bins, alpha=0.5, color=color,
                            label=f"{kind} ({len(sub)})")
            red = self._constructions(results)
            if len(red):
                zeros = []
                for _, r in red.iterrows():
                    if len(r["spectrum_redundant"]):
                        s = np.abs(np.asarray(r["spectrum_redundant"]))
                        zeros.append(np.log10(max(s.min() / s.max(), 1e-17)))
                if zeros:
                    ax.hist(zeros, bins=bins, alpha=0.6, color="k", label=f"constructed redundant ({len(zeros)})")
            ax.axvline(math.log10(PD_REL), color="grey", ls=":", lw=1, label="positive-definite threshold")
            ax.set(xlabel="log10(|λ_min| / λ_max)", ylabel="minimizers", title="smallest Hessian eigenvalue (analytic σ)")
            ax.legend(fontsize=7)
            figs["lambda_min_distribution"] = fig
            relu = mins[mins["activation"] == "relu"]
            if len(relu):
                fig, ax = new_figure()
                ax.hist(np.log10(np.clip(relu["rel"].abs(), 1e-17, None)), bins=bins, color="C2")
                ax.set(xlabel="log10(|λ_min| / λ_max)", ylabel="critical points",
                       title="ReLU (non-analytic contrast; no verdict)")
                figs["relu_contrast"] = fig
        red = self._constructions(results)
        if len(red):
            row = red[red["spectrum_redundant"].apply(len) > 0].iloc[0]
            fig, ax = new_figure()
            for key, label in (("spectrum_efficient", "efficient (width m)"), ("spectrum_redundant", "split (m + 1)")):
                s = np.sort(np.abs(np.asarray(row[key])))
                ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-18), "o-", ms=4, label=label)
            ax.set(xlabel="index", ylabel="|eigenvalue|", title=f"Hessian spectra ({row['activation']})")
            ax.legend(fontsize=7)
            figs["hessian_spectra"] = fig
            fig, ax = new_figure()
            for _, r in red.iterrows():
                if isinstance(r.get("newton_err"), list):
                    e = np.maximum(np.asarray(r["newton_err"]), 1e-17)
                    ax.semilogy(e, "o-", ms=3, label=f"{r['activation']} (order {r['order']:.2f})")
            ax.set(xlabel="Newton iteration", ylabel="‖θ_t − θ*‖", title="Newton inside the certified ball")
            ax.legend(fontsize=7)
            figs["newton_in_ball"] = fig
        return figs


register(ConvexNeighborhoods())
