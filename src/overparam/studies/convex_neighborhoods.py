"""Study ``convex-neighborhoods`` (Benning & Dereich 2025): efficient minimizers of shallow analytic networks have
positive definite Hessians; redundant ones sit on flat continua.

Each point of the sweep is a batch of B independent random problems for one activation, students of width m trained
by full-batch Adam and polished by damped Newton (all B at once) until ‖∇L‖ ≤ 1e-10. Each converged critical point
with λ_min ≥ 0 is classified: *escaping* (some parameter above ``BOUND`` in magnitude: a neuron saturating or two
cancelling towards infinity, whose infimum is not attained), *saturated* (a neuron whose slope σ' is below
``SATURATED`` at every data point: numerically constant on the data, on its way to infinity), *redundant* (:func:`overparam.diagnostics.find_redundancy`)
or *efficient*; its λ_min/λ_max is recorded. Two kinds of batch:

- ``part='minimizers'``: "almost every problem" — targets are a random teacher of width 3 plus a random smooth
  function plus noise. Students of widths 2 and 3 (width 2 finds finite minimizers 1.5–5× as often; softplus students
  of width 3 mostly escape towards exponential features a·e^{wᵀx+b}, b → −∞). The positive-definite verdict is
  taken over the efficient minimizers of these batches.
- ``part='wider'``: students wider than needed — noiseless targets of a random teacher of width m* and students of
  width m* + 1, whose global minimizers all realize the teacher with a neuron to spare (dead, constant, a copy). For
  every redundant minimizer found, the number of Hessian eigenvalues below 1e-9·λ_max is held against the flat
  dimension ``find_redundancy`` predicts. (Realizable targets are a null set of problems, so efficient minimizers of
  these batches are not counted in the positive-definite verdict; the claim about redundant ones holds for every
  problem.)

The first ``minimizers`` batch of each analytic activation (``cases`` in its parameters) also

- makes its best-conditioned efficient minimizers redundant by construction — a neuron split into two copies (and, for
  odd σ, into a sign-flipped pair) — critical points with non-zero residual realizing the same function; their zero
  eigenvalues are held against the predicted flat dimension too;
- runs Newton (full steps) from a point at half the certified radius μ/(2M) of one efficient minimizer
  (:func:`overparam.diagnostics.certify`; of the ten best conditioned, the widest ball relative to ‖θ*‖) and
  measures the order of convergence.

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
# a neuron whose slope max_i |σ'(w_jᵀx_i + b_j)| is below this is numerically constant on the data (measured: at
# finite efficient minimizers the smallest neuron slope is ≥ 0.2; saturated ones sit near 1e-6 and drift to infinity)
SATURATED = 1e-4

SCALES = {
    # batches: {activation: {student width m: number of batches}}; the first batch listed carries the constructions
    "test": dict(d=2, n=48, B=24, batches={a: {2: 1} for a in ANALYTIC} | {"relu": {2: 1}}, wider=(1,),
                 adam=800, newton=60, red_cases=3),
    # finite minimizers per batch of 100 (measured): width 2 ≈ 80 tanh, 77 sin, 69 gelu, 61 sigmoid, 25 softplus;
    # width 3 ≈ 55, 55, 45, 26, 5 — the counts aim at ≥ 300 efficient minimizers per analytic activation
    "quick": dict(d=2, n=64, B=100, batches=dict(tanh={2: 2, 3: 3}, sin={2: 2, 3: 3}, gelu={2: 3, 3: 3},
                                                 sigmoid={2: 4, 3: 2}, softplus={2: 13, 3: 1}, relu={3: 1}),
                  wider=(1, 2), adam=2000, newton=100, red_cases=10),
    "paper": dict(d=3, n=128, B=200, batches={a: {3: 10, 4: 10} for a in ANALYTIC} | {"relu": {4: 2}},
                  wider=(1, 2, 3), adam=4000, newton=200, red_cases=50),
}


def train_batch(act: str, d: int, m: int, n: int, B: int, seed: int, adam_steps: int, newton_steps: int,
                m_star: int = 3, noise: float = 0.1, smooth: float = 0.3):
    """B random problems (:func:`~overparam.problems.shallow_net.random_problem` with a teacher of width m*) and
    their students of width m; returns (X (B, n, d), y (B, n), θ (B, P), ‖∇L_b‖ (B,), Hessians (B, P, P))."""
    g = torch.Generator().manual_seed(seed)
    data = [random_problem(d, n, m_star, act, g, smooth=smooth, noise=noise) for _ in range(B)]
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


def neuron_slopes(theta: torch.Tensor, X: torch.Tensor, m: int, act: str) -> torch.Tensor:
    """max_i |σ'(w_jᵀx_i + b_j)| for each neuron j: (m,) from flat parameters θ (P,) and inputs X (n, d)."""
    W, b, _, _ = unpack(theta.detach(), X.shape[-1], m)
    z = (X @ W.T + b).requires_grad_(True)
    (slope,) = torch.autograd.grad(ACTIVATIONS[act].fn(z).sum(), z)
    return slope.abs().amax(0)


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
    version = "2"

    def points(self, scale: str) -> list[dict]:
        c = SCALES[scale]
        common = dict(d=c["d"], n=c["n"], B=c["B"], adam=c["adam"], newton=c["newton"])
        pts = []
        for i, (act, widths) in enumerate(c["batches"].items()):
            first = act in ANALYTIC
            for m, count in widths.items():
                for k in range(count):
                    # the first batch of each analytic activation also carries the constructions and the Newton run
                    pts.append(dict(common, part="minimizers", activation=act, m=m, seed=1000 * i + 100 * m + k,
                                    **({"cases": c["red_cases"]} if first else {})))
                    first = False
        for i, act in enumerate(ANALYTIC):
            for m_star in c["wider"]:
                pts.append(dict(common, part="wider", activation=act, m=m_star + 1, m_star=m_star,
                                seed=50_000 + 1000 * i + m_star))
        return pts

    def run(self, point: dict) -> dict:
        p = point
        act, d, m = p["activation"], p["d"], p["m"]
        realizable = dict(m_star=p["m_star"], noise=0.0, smooth=0.0) if p["part"] == "wider" else {}
        X, y, theta, gnorm, H = train_batch(act, d, m, p["n"], p["B"], p["seed"], p["adam"], p["newton"],
                                            **realizable)
        ev = torch.linalg.eigvalsh(H)
        rel = (ev[:, 0] / ev[:, -1]).tolist()
        kinds, zeros, flats, predicted = [], [], [], []
        residual = batched_losses(theta, X, y, m, act).sqrt()
        for b in range(p["B"]):
            if float(gnorm[b]) > 1e-10:
                kinds.append("not_converged")
            elif rel[b] < -PD_REL:
                kinds.append("saddle")
            elif float(theta[b].abs().max()) > BOUND:
                kinds.append("escaping")
            elif float(neuron_slopes(theta[b], X[b], m, act).min()) <= SATURATED:
                kinds.append("saturated")
            else:
                rep = find_redundancy(to_module(theta[b], d, m, act), act)
                kinds.append("efficient" if rep.efficient else "redundant")
                if not rep.efficient:
                    zeros.append(self._zero_count(ev[b]))
                    flats.append(rep.flat_dimension)
                    # at zero residual (to the Hessian's resolution) live copies add first-order directions
                    interpolating = float(residual[b]) <= ZERO_REL * float(ev[b, -1])
                    predicted.append(rep.zero_residual_kernel if interpolating else rep.flat_dimension)
        out = {"kind": kinds, "rel_lambda_min": rel, "trained_zero_count": zeros, "trained_flat_dimension": flats,
               "trained_predicted_zeros": predicted}
        if p["part"] == "wider" and zeros:  # the spectrum of one trained redundant minimizer, for the figure
            b = kinds.index("redundant")
            out["spectrum_trained_redundant"] = ev[b].tolist()
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
                counts.append(self._zero_count(ev2))
                predicted.append(find_redundancy(to_module(th2, d, m + 1, act), act).flat_dimension)
                spectra.setdefault("redundant", ev2.tolist())
            spectra.setdefault("efficient", ev[b].tolist())
        out.update(zero_count=counts, flat_dimension=predicted, spectrum_efficient=spectra.get("efficient", []),
                   spectrum_redundant=spectra.get("redundant", []))
        if eff:
            # of the ten best-conditioned efficient minimizers, the one with the widest certified ball relative to
            # its size, so that Newton takes more than one step before float64 rounding (≈ 1e-15·‖θ*‖)
            certs = {b: certify(to_module(theta[b], d, m, act), mse, X[b], y[b].reshape(-1, 1), n_ball=4,
                                n_directions=4, seed=p["seed"]) for b in eff[:10]}
            b = max(certs, key=lambda i: certs[i].radius / float(theta[i].norm()))
            cert = certs[b]
            star = theta[b].clone()
            u = torch.randn(len(star), generator=torch.Generator().manual_seed(p["seed"]), dtype=torch.float64)
            start = star + 0.5 * cert.radius * u / u.norm()
            net = to_module(start, d, m, act)
            # full Newton steps: near the minimizer the loss changes below float64 resolution and a line search
            # would cut steps that the theorem takes whole
            res = newton_polish(net, mse, X[b], y[b].reshape(-1, 1), grad_tol=0.0, max_steps=8, line_search=False,
                                record=lambda ps: {"err": float((ps[0] - star).norm())})
            errs = res.history["err"]
            out.update(newton_err=errs, radius=cert.radius, mu=cert.mu, M=cert.hessian_lipschitz,
                       ball_check=float(cert.ball_check_passed), order=self._order(errs))
        return out

    @staticmethod
    def _zero_count(eigenvalues: torch.Tensor) -> int:
        """Eigenvalues with |λ| ≤ ZERO_REL·max|λ|."""
        return int((eigenvalues.abs() <= ZERO_REL * eigenvalues.abs().max()).sum())

    @staticmethod
    def _order(errs: list[float]) -> float:
        """Median of log(e_{t+1}/e_t)/log(e_t/e_{t−1}) over steps with errors in (1e-13, 1): 2 for quadratic. When
        Newton reaches float64 rounding too fast for that (fewer than three errors above 1e-13), the first error at
        the floor closes the sequence: it bounds the true error from above, so the order it gives is a lower bound."""
        e = [x for x in errs if 1e-13 < x < 1]
        if len(e) < 3:
            below = [x for x in errs if 0 < x <= 1e-13]
            e = e + below[:1]
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
        eff = ana[(ana["kind"] == "efficient") & (ana["part"] == "minimizers")]
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
        ana_rows = results[results["activation"].isin(ANALYTIC)]
        tz, tf, tp = ([v for col in ana_rows[key] for v in col] for key in
                      ("trained_zero_count", "trained_flat_dimension", "trained_predicted_zeros"))
        tmatch = float(np.mean([a == b for a, b in zip(tz, tp)])) if tz else float("nan")
        pairs = pd.Series([f"{f}/{p}→{z}" for z, f, p in zip(tz, tf, tp)]).value_counts().to_dict() if tz else {}
        out.append(self.verdict(f"trained students wider than needed: redundant minimizers have as many zero Hessian "
                                f"eigenvalues (|λ| ≤ {ZERO_REL:.0e}·λ_max) as predicted from their redundancy: "
                                f"fraction of {len(tz)} that match", tmatch, 1.0, "≥ 0.98, none below the flat dimension",
                                len(tz) > 0 and tmatch >= 0.98 and all(z >= f for z, f in zip(tz, tf)),
                                "flat dimension / predicted zeros (with first-order directions at zero residual) → "
                                "zero eigenvalues seen (count): " + ", ".join(f"{k} ({v})" for k, v in pairs.items())))
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
            ana = mins[mins["activation"].isin(ANALYTIC)]
            for kind, part, color, label in (("efficient", "minimizers", "C0", "efficient"),
                                             ("redundant", None, "C3", "redundant, trained"),
                                             ("escaping", "minimizers", "C1", "escaping")):
                sub = ana[(ana["kind"] == kind) & ((ana["part"] == part) if part else True)]
                if len(sub):
                    ax.hist(np.log10(np.clip(sub["rel"].abs(), 1e-17, None)), bins=bins, alpha=0.5, color=color,
                            label=f"{label} ({len(sub)})")
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
            spectra = [(row["spectrum_efficient"], f"efficient (width {row['m']})"),
                       (row["spectrum_redundant"], f"split (width {row['m'] + 1})")]
            if "spectrum_trained_redundant" in results:
                wide = results[(results["activation"] == row["activation"])
                               & results["spectrum_trained_redundant"].apply(lambda v: isinstance(v, list))]
                if len(wide):
                    spectra.append((wide.iloc[0]["spectrum_trained_redundant"],
                                    f"trained redundant (width {wide.iloc[0]['m']})"))
            for values, label in spectra:
                s = np.sort(np.abs(np.asarray(values)))
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
