"""What a checkup turns into findings: each warning in plain words, with the measured figure, the threshold it crossed
and the result it comes from (:data:`SOURCES`). Every threshold is a module constant, named and explained."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: results a finding can come from (the studies' names) and the heuristic that is not one of them; the nuclear route's
#: sample ratio n/d² is reported in the data section without a threshold (it applies to quadratic networks only)
SOURCES = {
    "near-interpolators": "Wang, Sonthalia & Hu (2024): near-interpolating ridge, ‖θ‖² ∝ n^a below the noise",
    "implicit-balancing": "factorized gradient descent keeps factors balanced (‖UᵀU − VᵀV‖ conserved by gradient flow)",
    "convex-neighborhoods": "Benning & Dereich: strongly convex neighbourhoods of efficient minimizers; redundancy",
    "approximate-newton": "a second-order finish converges fast inside a strongly convex ball",
    "heavy-tailed (not one of the five)": "Martin & Mahoney's tail-exponent heuristic for trained weight matrices",
}

#: a factor pair is unbalanced when ‖UᵀU − VᵀV‖ exceeds this fraction of max(‖U‖², ‖V‖²): at 0.1 the pair is
#: far from where gradient flow from a small balanced start keeps it (imbalance there stays at the start's size)
IMBALANCE_THRESHOLD = 0.1
#: WeightWatcher's reading of the tail exponent: < 2 very heavy-tailed, > 6 close to random (little learned)
TAIL_LOW, TAIL_HIGH = 2.0, 6.0
#: tail exponents are read (findings) only from tails of at least this many eigenvalues: below ~50 samples a power
#: law cannot be told from other heavy or bounded tails (Clauset, Shalizi & Newman 2009, §4), and a random layer's
#: Marchenko–Pastur bulk, whose lower edge is near 0 for a near-square matrix, fits an α < 2 with a narrow interval
MIN_TAIL_FOR_FINDING = 50
#: a condition number above this makes a first-order finish slow (iterations ∝ κ) where Newton's is not
CONDITION_THRESHOLD = 1e4
#: the norm grows "fast" when ‖θ‖² ∝ n^b with b above this (linear growth is what a fixed-size model gives)
FAST_GROWTH = 1.0


@dataclass
class Finding:
    section: str
    message: str  # plain words
    measured: float
    threshold: float
    source: str  # a key of SOURCES


def findings(data: dict, layers: pd.DataFrame, balance: pd.DataFrame, curvature: dict, redundancy: list[dict],
             near_interpolation: dict) -> list[Finding]:
    """Every finding of a checkup's sections, in section order."""
    return (_data_findings(data) + _weight_findings(layers, balance) + _curvature_findings(curvature)
            + _redundancy_findings(redundancy) + _interpolation_findings(near_interpolation))


def _data_findings(data: dict) -> list[Finding]:
    out = []
    for key, what in (("input_spectrum", "input"), ("feature_spectrum", "feature")):
        sp = data.get(key, {})
        if sp.get("exponents_disagree"):
            out.append(Finding("data", f"the {what} spectrum is not one pure power law: its density-tail exponent "
                               f"α = {sp['tail_alpha']:.3f} (±{1.96 * sp['tail_standard_error']:.3f}) differs from "
                               f"1 + 1/a = {sp['implied_tail_alpha']:.3f} implied by its rank-decay exponent a = "
                               f"{sp['rank_decay_a']:.3f}; ridge-theory predictions that assume λ_k ∝ k^−a hold only "
                               "roughly", sp["tail_alpha"], sp["implied_tail_alpha"], "near-interpolators"))
    if data["n_over_params"] < 1:
        out.append(Finding("data", f"more parameters than samples (n/P = {data['n_over_params']:.3g}): the minimizers "
                           "form a manifold, the Hessian has at most n·outputs non-zero directions at an interpolating "
                           "minimizer, and redundant units are to be expected", data["n_over_params"], 1.0,
                           "convex-neighborhoods"))
    return out


def _weight_findings(layers: pd.DataFrame, balance: pd.DataFrame) -> list[Finding]:
    """Tail exponents beyond WeightWatcher's range only when the whole 95 % interval is and the tail holds at least
    MIN_TAIL_FOR_FINDING eigenvalues; factor pairs whose conserved imbalance exceeds IMBALANCE_THRESHOLD."""
    out = []
    for row in layers.to_dict("records"):
        a, se = row.get("tail_alpha", float("nan")), row.get("tail_alpha_se", float("nan"))
        if row.get("tail_n", 0) < MIN_TAIL_FOR_FINDING:
            continue
        if a == a and a + 1.96 * se < TAIL_LOW:
            out.append(Finding("weights", f"layer {row['layer']}: density-tail exponent α = {a:.2f} ± {1.96 * se:.2f} "
                               f"< {TAIL_LOW}: very heavy-tailed eigenvalues of WᵀW (a few directions dominate; in "
                               "WeightWatcher's reading, possibly over-fitted)", a, TAIL_LOW,
                               "heavy-tailed (not one of the five)"))
        elif a == a and a - 1.96 * se > TAIL_HIGH:
            out.append(Finding("weights", f"layer {row['layer']}: density-tail exponent α = {a:.2f} ± {1.96 * se:.2f} "
                               f"> {TAIL_HIGH}: the eigenvalues of WᵀW look like those of a random matrix (in "
                               "WeightWatcher's reading, little learned in this layer)", a, TAIL_HIGH,
                               "heavy-tailed (not one of the five)"))
    for row in balance.to_dict("records"):
        if row["relative_imbalance"] > IMBALANCE_THRESHOLD:
            out.append(Finding("weights", f"{row['kind']} pair {row['pair']} is unbalanced: the imbalance gradient flow "
                               f"conserves is {row['relative_imbalance']:.3g} of the factors' squared norms; it comes "
                               "from the initialization scale or from rescaling, and slows and biases factorized "
                               "training", row["relative_imbalance"], IMBALANCE_THRESHOLD, "implicit-balancing"))
    return out


def _curvature_findings(c: dict) -> list[Finding]:
    if "mu" not in c or c["positive_definite"] is None:
        return []
    if not c["positive_definite"]:
        rel = "≤" if c.get("mu_is_upper_bound") else "="
        return [Finding("curvature", f"the Hessian is not positive definite (λ_min {rel} {c['mu']:.3g}): these parameters "
                        "are not a strict local minimizer, or lie on a flat manifold of minimizers; a Newton finish "
                        "has no strongly convex ball to converge in", c["mu"], 0.0, "convex-neighborhoods")]
    out = []
    if c["condition_number"] > CONDITION_THRESHOLD:
        out.append(Finding("curvature", f"condition number L/μ = {c['condition_number']:.3g}: gradient descent needs "
                           "about that many steps per digit here, while a second-order finish inside the certified "
                           f"radius {c['radius']:.3g} does not", c["condition_number"], CONDITION_THRESHOLD,
                           "approximate-newton"))
    return out


def _redundancy_findings(blocks: list[dict]) -> list[Finding]:
    out = []
    for b in blocks:
        if b["units"]:
            kinds = sorted({u["kind"] for u in b["units"]})
            out.append(Finding("redundancy", f"block {b['block']}: {b['width'] - b['reduced_width']} of {b['width']} "
                               f"units are redundant ({', '.join(kinds)}); merged to width {b['reduced_width']} the "
                               f"loss changes by {b['loss_change']:.3g}; the parameters are not in the efficient "
                               "domain, so the minimizer is not isolated (flat dimension "
                               f"{b['flat_dimension']})", b["width"] - b["reduced_width"], 0.0, "convex-neighborhoods"))
    return out


def _interpolation_findings(ni: dict) -> list[Finding]:
    out = []
    if ni.get("below_noise"):
        out.append(Finding("near-interpolation", f"training loss {ni['train_loss']:.3g} is below the noise level "
                           f"{ni['noise_level']:.3g}: the model fits noise; watch the weight norm and the validation "
                           "error together (the norm of a near-interpolator grows like n^a with more data)",
                           ni["train_loss"], ni["noise_level"], "near-interpolators"))
    b = ni.get("norm_growth_exponent")
    if b is not None and b > FAST_GROWTH:
        a = ni.get("data_rank_decay_a")
        ref = f" (the data's rank-decay exponent a = {a:.3f} is the near-interpolator law's prediction)" if a else ""
        out.append(Finding("near-interpolation", f"the refitted norm grows like ‖θ‖² ∝ n^{b:.2f}, faster than "
                           f"linearly{ref}", b, FAST_GROWTH, "near-interpolators"))
    return out
