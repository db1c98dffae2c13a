"""The checkup on models whose answers are known: a planted data spectrum, planted redundant units, a saddle, a strict
minimizer of a convex loss with a closed-form Hessian, an unbalanced LoRA pair, and the layers it must list."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import overparam as op

dg = op.diagnostics
MSE = torch.nn.MSELoss()


def _planted_data(a: float, d: int, n: int, seed: int) -> torch.Tensor:
    """Rows x = diag(k^(−a/2)) z, z standard normal: the second-moment spectrum is λ_k = k^−a."""
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.standard_normal((n, d)) * np.arange(1, d + 1.0) ** (-a / 2))


@pytest.mark.parametrize("a", [0.8, 1.5])
def test_planted_input_spectrum_both_exponents_within_their_intervals(a):
    # n/d = 80: the row bootstrap widened by the half-sample bias covers a in 6 of 6 draws here (at n/d = 40 it
    # missed 2 of 6, by ≤ 0.002: the bias of sample eigenvalues there is larger than the halving measures)
    for seed in range(3):
        X = _planted_data(a, 50, 4000, seed)
        y = X[:, :1].clone()
        rep = dg.checkup(torch.nn.Linear(50, 1).double(), MSE, X, y, curvature=False, progress=False)
        sp = rep.data["input_spectrum"]
        lo, hi = sp["rank_decay_interval"]
        assert lo <= a <= hi, (seed, sp["rank_decay_a"], lo, hi)
        tlo, thi = sp["tail_interval"]
        assert tlo <= 1 + 1 / a <= thi, (seed, sp["tail_alpha"], tlo, thi)
        assert not sp["exponents_disagree"]
        assert rep.data["n_over_d"] == 80 and rep.data["n_over_d2"] == pytest.approx(4000 / 2500)


def test_spectra_that_are_not_power_laws_are_flagged():
    # exponential decay and a Marchenko–Pastur bulk: no power law, the two fits must disagree; a pure one must not
    from overparam.diagnostics.spectrum import exponents_disagree
    k = np.arange(1, 201.0)
    mp = np.linalg.svd(np.random.default_rng(0).standard_normal((400, 200)), compute_uv=False) ** 2 / 400
    for lam, flagged in ((np.exp(-k / 20), True), (mp, True), (k**-1.0, False)):
        assert exponents_disagree(dg.powerlaw_exponent(lam, n_boot=50), dg.tail_exponent(lam)) is flagged


def test_tail_exponent_of_pareto_samples():
    # p(x) ∝ x^−(1+s) for x ≥ 1 (NumPy's pareto(s) + 1): α = 1 + s, recovered within α ± 1.96 s.e.
    for s, seed in ((1.5, 0), (3.0, 1)):
        x = np.random.default_rng(seed).pareto(s, 3000) + 1
        fit = dg.tail_exponent(x)
        lo, hi = fit.interval
        assert lo <= 1 + s <= hi, fit
        assert fit.standard_error == pytest.approx((fit.alpha - 1) / math.sqrt(fit.n_tail))


def _planted_net(act: str = "tanh") -> torch.nn.Sequential:
    """Width 7 from 3 generic units (0, 1, 2) plus: 3 a duplicate of 0, 4 a sign-twin of 1, 5 a zero output weight,
    6 a zero input weight; two outputs (k = 2)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 7), {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[act](),
                              torch.nn.Linear(7, 2)).double()
    with torch.no_grad():
        W, b, A = net[0].weight, net[0].bias, net[2].weight
        W[3], b[3] = W[0], b[0]
        W[4], b[4] = -W[1], -b[1]
        A[:, 5] = 0.0
        W[6] = 0.0
    return net


def test_planted_duplicate_sign_twin_and_zero_units_are_merged_without_changing_the_loss():
    net = _planted_net()
    X = torch.randn(300, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.randn(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    rep = dg.checkup(net, MSE, X, y, curvature=False, progress=False)
    (block,) = rep.redundancy
    kinds = {u["kind"]: tuple(u["units"]) for u in block["units"]}
    assert kinds == {"duplicate": (0, 3), "sign-twin": (1, 4), "zero output weight": (5,), "zero input weight": (6,)}
    assert block["width"] == 7 and block["reduced_width"] == 3
    assert abs(block["loss_change"]) <= 1e-13 * block["loss_before"]
    # flat dimensions: duplicate k = 2, sign-twin 2, zero output weight d + 1 = 5, zero input weight k + 1 = 3
    assert block["flat_dimension"] == 12 and not block["efficient"]
    assert any(f.section == "redundancy" and f.source == "convex-neighborhoods" for f in rep.findings)


def test_dead_relu_unit_on_the_data():
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1)).double()
    X = torch.rand(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))  # inputs in [0, 1]³
    with torch.no_grad():
        net[0].weight.abs_()
        net[0].bias.fill_(0.1)  # w·x + b > 0 on every input: active (and varying) on the data
        net[0].weight[2] = -net[0].weight[2]
        net[0].bias[2] = -0.1  # unit 2: w·x + b < 0 on every input, never active on the data
    y = net(X).detach()
    rep = dg.checkup(net, MSE, X, y, curvature=False, progress=False)
    (block,) = rep.redundancy
    assert [(u["kind"], tuple(u["units"])) for u in block["units"]] == [("dead on the data", (2,))]
    assert block["reduced_width"] == 4 and block["flat_dimension"] == 1 + 3 + 1
    assert abs(block["loss_change"]) <= 1e-15


def test_efficient_net_has_no_redundancy_and_no_zero_eigenvalues_at_an_interpolating_minimizer():
    # a generic teacher's own targets: zero residual, H = (2/n)JᵀJ with J of full column rank (n ≥ P = 25)
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 5)).double()
    X = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    y = net(X).detach()
    rep = dg.checkup(net, MSE, X, y, progress=False)
    (block,) = rep.redundancy
    assert block["efficient"] and block["zero_eigenvalues_measured"] == 0
    assert rep.curvature["positive_definite"] and rep.curvature["method"] == "dense"


def test_planted_redundancy_zero_eigenvalues_at_least_the_flat_dimension():
    # the planted net's own targets: an interpolating minimizer, where each flat direction is a zero eigenvalue
    net = _planted_net()
    X = torch.randn(60, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rep = dg.checkup(net, MSE, X, net(X).detach(), progress=False)
    (block,) = rep.redundancy
    assert block["zero_eigenvalues_measured"] >= block["flat_dimension"] == 12
    assert not rep.curvature["positive_definite"]


def test_saddle_is_not_certified():
    # a two-layer linear net at zero: gradient 0, Hessian [[0, −c], [−cᵀ, 0]]-like, eigenvalues ±: a saddle
    net = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(2, 1, bias=False)).double()
    torch.nn.init.zeros_(net[0].weight)
    torch.nn.init.zeros_(net[1].weight)
    X = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    rep = dg.checkup(net, MSE, X, y, progress=False)
    c = rep.curvature
    assert not c["positive_definite"] and c["mu"] < -1e-3 and c["gradient_norm"] < 1e-12
    assert "not positive definite" in c["wording"]
    assert any(f.section == "curvature" and f.measured == c["mu"] for f in rep.findings)


def test_strict_minimizer_of_least_squares_mu_and_L_are_the_closed_form():
    # MSE of a linear model with bias: H = (2/n) X̃ᵀX̃, X̃ = [X, 1], at the least-squares solution
    g = torch.Generator().manual_seed(7)
    X = torch.randn(80, 4, dtype=torch.float64, generator=g) * torch.tensor([3.0, 1.0, 0.5, 0.2], dtype=torch.float64)
    y = torch.randn(80, 1, dtype=torch.float64, generator=g)
    Xt = torch.cat([X, torch.ones(80, 1, dtype=torch.float64)], 1)
    sol = torch.linalg.lstsq(Xt, y).solution
    model = torch.nn.Linear(4, 1).double()
    with torch.no_grad():
        model.weight.copy_(sol[:4].T)
        model.bias.copy_(sol[4])
    ev = torch.linalg.eigvalsh(2 / 80 * Xt.T @ Xt)
    rep = dg.checkup(model, MSE, X, y, progress=False)
    c = rep.curvature
    assert c["mu"] == pytest.approx(float(ev[0]), rel=1e-10)
    assert c["L"] == pytest.approx(float(ev[-1]), rel=1e-10)
    # the Hessian is constant: M = 0 and the strongly convex ball is all of the space
    assert c["positive_definite"] and c["ball_check_passed"] and c["hessian_lipschitz"] < 1e-6 * c["L"]
    assert c["condition_number"] == pytest.approx(float(ev[-1] / ev[0]), rel=1e-10)


class _LoRA(torch.nn.Module):
    """PEFT's layout: base Linear plus lora_A['default'] (r × in) and lora_B['default'] (out × r)."""

    def __init__(self, d: int, out: int, r: int):
        super().__init__()
        self.base = torch.nn.Linear(d, out)
        self.lora_A = torch.nn.ModuleDict({"default": torch.nn.Linear(d, r, bias=False)})
        self.lora_B = torch.nn.ModuleDict({"default": torch.nn.Linear(r, out, bias=False)})

    def forward(self, x):
        return self.base(x) + self.lora_B["default"](self.lora_A["default"](x))


def _lora(scale_b: float) -> _LoRA:
    """ΔW = B A with B = U√S·scale_b, A = √S Vᵀ/scale_b: the product does not depend on scale_b, the balance does:
    BᵀB − AAᵀ = (scale_b² − 1/scale_b²) S."""
    torch.manual_seed(0)
    m = _LoRA(6, 5, 2).double()
    U, S, Vh = torch.linalg.svd(torch.randn(5, 6, dtype=torch.float64))
    with torch.no_grad():
        m.lora_B["default"].weight.copy_(U[:, :2] * S[:2].sqrt() * scale_b)
        m.lora_A["default"].weight.copy_(S[:2].sqrt()[:, None] * Vh[:2] / scale_b)
    return m, S[:2]


def test_unbalanced_lora_pair_is_flagged_and_a_balanced_one_is_not():
    X = torch.randn(30, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for scale_b, flagged in ((1.0, False), (3.0, True)):
        model, S = _lora(scale_b)
        rep = dg.checkup(model, MSE, X, model(X).detach(), curvature=False, progress=False)
        row = rep.balance[rep.balance.kind == "lora"].iloc[0]
        expect = (scale_b**2 - scale_b**-2) * float(S[0])
        assert row["imbalance"] == pytest.approx(expect, abs=1e-12)
        assert row["pair"] == "lora_B.default.weight · lora_A.default.weight"
        assert any(f.source == "implicit-balancing" for f in rep.findings) is flagged


def test_layers_conv_embedding_listed_and_others_skipped_with_reason():
    model = torch.nn.ModuleDict({"emb": torch.nn.Embedding(20, 6), "conv": torch.nn.Conv2d(3, 4, 3),
                                 "norm": torch.nn.LayerNorm(6), "fc": torch.nn.Linear(6, 2)})
    layers, skipped = dg.weight_layers(model)
    shapes = {lay.name: (lay.kind, tuple(lay.matrix.shape)) for lay in layers}
    assert shapes == {"emb": ("embedding", (20, 6)), "conv": ("conv", (4, 27)), "fc": ("linear", (2, 6))}
    assert skipped == [("norm", "LayerNorm holds no weight matrix (weight (6,), bias (6,))")]
    from overparam.diagnostics.weights import layer_table
    table, spectra = layer_table(layers)
    W = model["emb"].weight.detach().double()
    s = torch.linalg.svdvals(W)
    row = table.set_index("layer").loc["emb"]
    assert row["spectral_norm"] == pytest.approx(float(s[0]), rel=1e-12)
    assert row["stable_rank"] == pytest.approx(float((s**2).sum() / s[0] ** 2), rel=1e-12)
    assert "too few" in row["note"]  # 6 eigenvalues


def test_report_json_and_near_interpolation():
    torch.manual_seed(0)
    X = _planted_data(1.0, 40, 400, 0)
    y = X @ torch.randn(40, 1, dtype=torch.float64) + 0.5 * torch.randn(400, 1, dtype=torch.float64)
    model = torch.nn.Linear(40, 1).double()
    with torch.no_grad():  # the least-squares fit: training MSE below the noise variance 0.25 (p/n = 0.1 of it fitted)
        Xt = torch.cat([X, torch.ones(400, 1, dtype=torch.float64)], 1)
        sol = torch.linalg.lstsq(Xt, y).solution
        model.weight.copy_(sol[:40].T)
        model.bias.copy_(sol[40])

    def fit(Xs, ys):
        return torch.linalg.lstsq(Xs, ys).solution

    rep = dg.checkup(model, MSE, X, y, noise_level=0.25, fit_fn=fit, curvature=False, progress=False)
    ni = rep.near_interpolation
    assert ni["below_noise"] and ni["train_loss"] < 0.25
    # the refits are norm_growth's, on the same nested subsamples (n/8 … n, four sizes, seed 0)
    ng = dg.norm_growth(fit, X.reshape(400, -1), y.reshape(400), [50, 100, 200, 400], seed=0)
    assert list(ni["sizes"]) == [50, 100, 200, 400]
    assert ni["norm_growth_exponent"] == pytest.approx(ng.exponent, rel=1e-12)
    assert ni["data_rank_decay_a"] == rep.data["input_spectrum"]["rank_decay_a"]
    assert any(f.source == "near-interpolators" and f.threshold == 0.25 for f in rep.findings)
    back = json.loads(rep.to_json())
    assert back["data"]["n"] == 400 and back["layers"][0]["layer"] == "(root)"
    from overparam.diagnostics.checkup import SOURCES
    assert {f["source"] for f in back["findings"]} <= set(SOURCES)


def test_balance_through_relu_per_unit_and_none_through_tanh():
    from overparam.diagnostics.weights import balance_table
    relu = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1)).double()
    with torch.no_grad():
        relu[0].weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
        relu[0].bias.copy_(torch.tensor([2.0, 0.0]))
        relu[2].weight.copy_(torch.tensor([[1.0, 3.0]]))
    # ‖(w_j, b_j)‖² = (9, 1), ‖a_j‖² = (1, 9): imbalance 8, relative to 9
    (row,) = balance_table(relu).to_dict("records")
    assert row["kind"] == "through ReLU (per unit)" and row["pair"] == "2 · 0"
    assert row["imbalance"] == pytest.approx(8.0) and row["relative_imbalance"] == pytest.approx(8 / 9)
    tanh = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))
    assert len(balance_table(tanh)) == 0


def test_embedding_model_on_integer_inputs():
    # token indices stay integers (the model has an Embedding): every section is computed, the curvature too, its
    # extreme eigenvalues equal to those of the dense Hessian by torch.func on the flat parameters
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(30, 8), torch.nn.Flatten(), torch.nn.Linear(24, 1)).double()
    X = torch.randint(0, 30, (100, 3), generator=torch.Generator().manual_seed(1))
    y = torch.randn(100, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    rep = dg.checkup(model, MSE, X, y, progress=False)
    assert list(rep.layers.kind) == ["embedding", "linear"] and rep.data["params"] == 30 * 8 + 25
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta):
        parts = dict(zip(names, (c.view(s) for c, s in zip(torch.split(theta, [s.numel() for s in shapes]), shapes))))
        return MSE(torch.func.functional_call(model, parts, (X,)), y)
    ev = torch.linalg.eigvalsh(torch.func.hessian(loss)(flat))
    assert rep.curvature["mu"] == pytest.approx(float(ev[0]), abs=1e-10 * float(ev[-1]))
    assert rep.curvature["L"] == pytest.approx(float(ev[-1]), rel=1e-10)
    assert rep.data["feature_spectrum"]["layer"] == "2" and rep.data["feature_spectrum"]["dimension"] == 24
    assert rep.near_interpolation["train_loss"] == pytest.approx(float(MSE(model(X), y)), rel=1e-12)


def test_tail_finding_only_from_a_long_tail_wholly_beyond_the_threshold():
    # a planted λ_k = k^−2 layer (α = 1.5 from 200 eigenvalues) is flagged; a random 10 × 16 layer, whose 10
    # eigenvalues (a Marchenko–Pastur bulk) fit α ≈ 1.4 ± 0.2, is not: too short a tail to tell a power law
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    model = torch.nn.Sequential(torch.nn.Linear(200, 200), torch.nn.Tanh(), torch.nn.Linear(200, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 10)).double()
    with torch.no_grad():
        model[0].weight.copy_((U / torch.arange(1, 201, dtype=torch.float64)) @ V.T)
    X = torch.randn(64, 200, dtype=torch.float64, generator=g)
    rep = dg.checkup(model, MSE, X, torch.zeros(64, 10, dtype=torch.float64), curvature=False, progress=False)
    flagged = [f.message.split(":")[0] for f in rep.findings if f.source.startswith("heavy-tailed")]
    assert flagged == ["layer 0"]
    row = rep.layers.set_index("layer").loc["0"]
    assert row["tail_n"] >= 50 and abs(row["tail_alpha"] - 1.5) < 1.96 * row["tail_alpha_se"]
    last = rep.layers.set_index("layer").loc["4"]
    assert last["tail_n"] == 10 and last["tail_alpha"] + 1.96 * last["tail_alpha_se"] < 2  # would have been flagged


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_checkup_on_cuda_gives_the_cpu_numbers():
    net = _planted_net()
    X = torch.randn(60, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.randn(60, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    cpu = dg.checkup(net, MSE, X, y, progress=False)
    gpu = dg.checkup(net, MSE, X, y, device="cuda", progress=False)
    assert next(net.parameters()).device.type == "cpu"  # the caller's model stays where it was
    for key in ("mu", "L", "gradient_norm"):
        assert gpu.curvature[key] == pytest.approx(cpu.curvature[key], rel=1e-8, abs=1e-12)
    np.testing.assert_allclose(gpu.layers.spectral_norm, cpu.layers.spectral_norm, rtol=1e-10)
    assert gpu.redundancy[0]["reduced_width"] == cpu.redundancy[0]["reduced_width"] == 3
