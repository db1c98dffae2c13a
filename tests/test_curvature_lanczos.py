"""Thick-restart Lanczos (overparam.diagnostics.krylov): both ends of planted spectra against eigvalsh, residual
bounds against products, the product budget, warm starts, float32 products, and the operators built on it."""

import numpy as np
import pytest
import torch

from overparam.diagnostics import HessianOperator, extreme_eigenvalues, lanczos
from overparam.diagnostics.krylov import lanczos_quadrature, residual_norms


class Dense:
    """A symmetric matrix as an operator (matvec, shape, dtype, device)."""

    def __init__(self, A: torch.Tensor):
        self.A, self.shape, self.dtype, self.device = A, tuple(A.shape), A.dtype, A.device

    def matvec(self, v):
        return self.A @ v


def planted(eigenvalues, seed=0, dtype=torch.float64) -> Dense:
    """Q diag(eigenvalues) Qᵀ with Q Haar-random."""
    rng = np.random.default_rng(seed)
    n = len(eigenvalues)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.asarray(eigenvalues)) @ Q.T
    return Dense(torch.from_numpy(0.5 * (A + A.T)).to(dtype))


SPECTRA = {
    # a cluster at the top (gaps 1e-3 relative), a negative end, the bulk in between
    "clustered": np.concatenate([[-2.0, -1.5, -1.0], np.linspace(0, 1, 394), 10 + 1e-2 * np.arange(3)]),
    # indefinite, both ends negative-heavy, a big zero eigenspace as in overparameterized Hessians
    "negative": np.concatenate([-np.geomspace(1e-3, 3, 20), np.zeros(300), np.geomspace(1e-3, 50, 80)]),
    # repeated eigenvalues inside and a repeated λ_min: the values are found (a single Krylov space finds one copy)
    "degenerate": np.concatenate([np.full(50, -1.0), np.repeat(np.linspace(0, 1, 10), 30), [2.0, 3.0, 4.0]]),
}


@pytest.mark.parametrize("name", list(SPECTRA))
def test_both_ends_against_eigvalsh_with_residual_bounds(name):
    ev = np.sort(SPECTRA[name])
    H = planted(ev)
    k_top, k_bottom = 3, (1 if name == "degenerate" else 3)
    res = lanczos(H, k_top=k_top, k_bottom=k_bottom, tol=1e-12, vectors=True, seed=1)
    assert res.converged and res.products < len(ev)
    scale = np.abs(ev).max()
    np.testing.assert_allclose(res.largest, ev[-k_top:], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(res.smallest, ev[:k_bottom], rtol=0, atol=1e-10 * scale)
    # the recurrence's bound is the true residual up to rounding, and each Ritz value is within it of an eigenvalue
    for theta, r, Y in [(res.largest, res.largest_residuals, res.largest_vectors),
                        (res.smallest, res.smallest_residuals, res.smallest_vectors)]:
        true = residual_norms(H, theta, Y)
        assert np.all(true <= r + 1e-12 * scale)
        assert np.all(np.abs(theta[:, None] - ev[None, :]).min(1) <= r + 1e-13 * scale)
        np.testing.assert_allclose(Y.T @ Y, np.eye(Y.shape[1]), atol=1e-10)


def test_thick_restart_keeps_converging_and_the_budget_is_respected():
    ev = np.sort(SPECTRA["negative"])
    H = planted(ev)
    small = lanczos(H, k_top=2, k_bottom=2, tol=1e-10, max_basis=16, seed=0)
    assert small.converged and small.restarts >= 2
    np.testing.assert_allclose(small.largest, ev[-2:], atol=1e-9 * 50)
    np.testing.assert_allclose(small.smallest, ev[:2], atol=1e-9 * 50)
    cut = lanczos(H, k_top=2, k_bottom=2, tol=1e-14, max_products=17, max_basis=12, seed=0)
    assert cut.products == 17 and not cut.converged


def test_one_krylov_space_is_cheaper_than_two_and_warm_start_helps():
    ev = np.sort(SPECTRA["negative"])
    H = planted(ev, seed=3)
    both = lanczos(H, k_top=1, k_bottom=1, tol=1e-10, seed=0, vectors=True)
    top = lanczos(H, k_top=1, k_bottom=0, tol=1e-10, seed=0)
    bottom = lanczos(H, k_top=0, k_bottom=1, tol=1e-10, seed=0)
    assert both.products <= top.products + bottom.products
    warm = lanczos(H, k_top=0, k_bottom=1, tol=1e-10, v0=both.smallest_vectors[:, 0], seed=0)
    assert warm.smallest[0] == pytest.approx(ev[0], abs=1e-10 * 50) and warm.products <= 3


def test_float32_products_float64_krylov():
    ev = np.sort(SPECTRA["clustered"])
    H = planted(ev, dtype=torch.float32)
    res = lanczos(H, k_top=1, k_bottom=1, tol=1e-6, seed=0)
    assert res.converged
    # float32 products: each is off by about ε₃₂‖H‖, and so are the Ritz values
    np.testing.assert_allclose([res.smallest[0], res.largest[0]], [ev[0], ev[-1]], rtol=0, atol=2e-6 * ev[-1])


def test_quadrature_weights_integrate_the_probes_spectral_measure():
    ev = np.sort(SPECTRA["negative"])
    H = planted(ev, seed=2)
    z = torch.from_numpy(np.random.default_rng(0).standard_normal(len(ev)))
    nodes, w = lanczos_quadrature(H, z, 30)
    Hz = H.A @ z
    assert w.sum() == pytest.approx(float(z @ z), rel=1e-12)
    assert (w * nodes).sum() == pytest.approx(float(z @ Hz), rel=1e-10)  # exact for polynomials of degree < 60
    assert (w * nodes ** 2).sum() == pytest.approx(float(Hz @ Hz), rel=1e-10)


@pytest.mark.parametrize("name", list(SPECTRA))
def test_quadrature_under_partial_reorthogonalization_keeps_its_moments(name, monkeypatch):
    """SLQ's Lanczos runs with partial reorthogonalization (a pass only where Simon's estimates say so): over 150
    steps, long after the ends have converged, the rule still integrates zᵀHᵏz for k ≤ 8 to 1e-9 relative (to the
    scale ‖z‖²‖H‖ᵏ), and on the spectrum whose Krylov space stays large fewer than half the steps ran a pass. (The
    moments would survive without any pass: Gauss quadrature from finite-precision Lanczos stays accurate; the passes
    keep the basis semi-orthogonal, so the nodes carry no ghost copies of converged eigenvalues.)"""
    import sys
    L = sys.modules["overparam.diagnostics.krylov"]
    made = []
    init = L._Krylov.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)
    monkeypatch.setattr(L._Krylov, "__init__", spy)
    ev = np.sort(SPECTRA[name])
    H = planted(ev, seed=3)
    z = torch.from_numpy(np.random.default_rng(1).standard_normal(len(ev)))
    nodes, w = lanczos_quadrature(H, z, 150)
    kry = made[-1]
    if name == "clustered":  # 400 distinct eigenvalues; the others' Krylov spaces turn invariant (β_j → 0) near
        assert kry.partial and kry.full_passes < 0.5 * kry.j  # 100 steps, where the check switches to full passes
    scale, v = np.abs(ev).max(), z.clone()
    for k in range(9):
        exact = float(z @ v)
        assert abs((w * nodes ** k).sum() - exact) <= 1e-9 * float(z @ z) * scale ** k, k
        v = H.A @ v


def test_extreme_eigenvalues_on_a_hessian_reports_residuals_and_products():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()
    X, y = torch.randn(64, 3, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    H = HessianOperator(net, torch.nn.MSELoss(), X, y)
    ev = torch.linalg.eigvalsh(H.dense()).numpy()
    out = extreme_eigenvalues(H, k=2)
    np.testing.assert_allclose(out["largest"], ev[-2:], rtol=1e-9)
    np.testing.assert_allclose(out["smallest"], ev[:2], atol=1e-9 * ev[-1])
    assert 0 < out["products"] <= H.dim and np.all(out["smallest_residuals"] <= 1e-10 * np.abs(out["smallest"]) + 1e-14)


def test_value_test_stops_when_the_eigenvalue_is_accurate():
    """test='value' stops on min(r, r²/gap) ≤ tol·|θ|: earlier than the residual test, and the value still within tol
    (here the gaps from Ritz values are the true ones once the ends have converged)."""
    ev = np.sort(SPECTRA["negative"])
    H = planted(ev, seed=4)
    by_residual = lanczos(H, k_top=1, k_bottom=1, tol=1e-8, seed=0)
    by_value = lanczos(H, k_top=1, k_bottom=1, tol=1e-8, seed=0, test="value")
    assert by_value.products < by_residual.products
    assert abs(by_value.smallest[0] / ev[0] - 1) <= 1e-8 and abs(by_value.largest[0] / ev[-1] - 1) <= 1e-8


def test_value_gap_is_taken_from_the_adjacent_ritz_values():
    """g_i = min over j = i ± 1 of |θ_i − θ_j| − r_j (by hand): an unconverged value further out does not shrink it;
    an adjacent one whose residual covers the distance leaves the residual itself."""
    import sys
    L = sys.modules["overparam.diagnostics.krylov"]
    theta, res = np.array([0.0, 1.0, 1.5]), np.array([1e-3, 1e-2, 1.4])
    # θ₁: g = 1 − 0.01 (θ₃'s interval reaches 0.1 from θ₁ but it is not adjacent); θ₂: θ₃ gives 0.5 − 1.4 < 0
    np.testing.assert_allclose(L._value_errors(theta, res, np.array([0, 1, 2])),
                               [1e-6 / 0.99, 1e-2, min(1.4, 1.4 ** 2 / (0.5 - 1e-2))], rtol=1e-14)
    np.testing.assert_allclose(L._value_errors(np.array([0.0, 0.005]), np.array([1e-3, 1e-2]), np.array([0])), [1e-3])
    np.testing.assert_allclose(L._value_errors(np.array([2.0]), np.array([1e-3]), np.array([0])), [1e-3])


@pytest.mark.parametrize("seed", range(4))
def test_value_test_is_within_tol_on_a_near_double_bottom(seed):
    """A bottom like the benchmark MLP's (λ₂, λ₃ within 1e-3 relative of λ₁, a bulk above): the value test stops
    no later than the residual test and with λ_min within tol of eigvalsh, over four bases and start vectors."""
    ev = np.concatenate([[-1.0, -0.99924, -0.99917], np.linspace(-0.998, -0.9, 40), np.linspace(-0.5, 3, 457)])
    H = planted(ev, seed=10 + seed)
    by_value = lanczos(H, k_top=0, k_bottom=1, tol=1e-6, seed=seed, test="value")
    by_residual = lanczos(H, k_top=0, k_bottom=1, tol=1e-6, seed=seed)
    assert by_value.converged and by_value.products <= by_residual.products
    assert abs(by_value.smallest[0] - ev[0]) <= 1e-6 * abs(ev[0])


@pytest.mark.parametrize("name", list(SPECTRA))
def test_value_test_never_stops_on_a_lone_ritz_value(name):
    """Early steps have few Ritz values and no gap to speak of: the value test must not stop there."""
    ev = np.sort(SPECTRA[name])
    res = lanczos(planted(ev, seed=5), k_top=0, k_bottom=1, tol=1e-6, seed=0, test="value")
    assert res.products > 5 and abs(res.smallest[0] - ev[0]) <= 1e-6 * np.abs(ev).max()


def test_default_basis_grows_as_the_cube_root_within_a_quarter_of_free_memory(monkeypatch):
    """The default keeps max(160, 4k + 20, min(4·n^⅓, 600)) vectors before its first restart, fewer when
    (vectors + 1)·n float64 would exceed a quarter of the free memory, and never fewer than k + 10."""
    import sys
    L = sys.modules["overparam.diagnostics.krylov"]
    cpu = torch.device("cpu")
    monkeypatch.setattr(L, "_free_bytes", lambda device: None)  # unknown: the default as such
    assert L._default_basis(10 ** 4, 2, cpu) == 160 and L._default_basis(10 ** 4, 50, cpu) == 220
    assert L._default_basis(10 ** 6, 2, cpu) == 400 and L._default_basis(10 ** 9, 2, cpu) == 600
    assert L._default_basis(10 ** 6, 120, cpu) == 500
    monkeypatch.setattr(L, "_free_bytes", lambda device: 4 * 8 * 10 ** 6 * 100)  # room for 100 vectors of 10⁶
    assert L._default_basis(10 ** 6, 2, cpu) == 99 and L._default_basis(10 ** 8, 2, cpu) == 12
    monkeypatch.setattr(L, "_free_bytes", lambda device: None)
    ev = np.concatenate([[-1.0, -0.9995], np.linspace(-0.999, 10, 398)])  # a near-double λ_min: slow to converge
    H = planted(ev, seed=6)
    whole = lanczos(H, k_top=0, k_bottom=1, tol=0.0, max_products=150, seed=0)  # tol 0: runs to the budget
    cut = lanczos(H, k_top=0, k_bottom=1, tol=0.0, max_products=150, max_basis=40, seed=0)
    assert whole.restarts == 0 and cut.restarts >= 3 and whole.products == cut.products == 150
    assert abs(whole.smallest[0] - ev[0]) <= abs(cut.smallest[0] - ev[0])  # no restart loses nothing


@pytest.mark.parametrize("name", list(SPECTRA))
def test_partial_reorthogonalization_keeps_the_basis_semi_orthogonal_and_skips_most_passes(name):
    """Values only (vectors=False) run Simon's partial reorthogonalization: over 90 unrestarted steps (before the
    planted spectra's Krylov spaces become invariant) the basis stays
    orthogonal to about √ε (the estimates ω trigger a pass before it is lost), the Ritz values at both ends match the
    fully reorthogonalized run's and eigvalsh to 1e-10 relative, and most steps skip the full pass (its cost grows
    with the basis)."""
    from overparam.diagnostics.krylov import Counted, _Krylov
    ev = np.sort(SPECTRA[name])
    H = planted(ev)
    v0 = torch.randn(len(ev), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    runs = {}
    for partial in (True, False):
        kry = _Krylov(Counted(H), 90, v0, torch.Generator().manual_seed(3), partial=partial)
        for _ in range(90):
            kry.step()
        runs[partial] = kry
    pro, full = runs[True], runs[False]
    V = pro.V[:pro.j]
    assert float((V @ V.T - torch.eye(pro.j, dtype=torch.float64)).abs().max()) < 1e-6  # √ε ≈ 1.5e-8 per pair
    assert full.full_passes == full.j
    if name != "degenerate":  # a repeated eigenvalue (small β_j) outruns the estimates: the check switches PRO off
        assert pro.full_passes < 0.5 * pro.j
    scale = np.abs(ev).max()
    for kry in (pro, full):  # no ghost copies: a spurious second copy of a top eigenvalue would show here
        theta = kry.ritz()[0]
        np.testing.assert_allclose(theta[0], ev[0], atol=1e-10 * scale)
        np.testing.assert_allclose(theta[-3:], ev[-3:], atol=1e-10 * scale)


def test_free_memory_on_cuda_counts_what_the_caching_allocator_holds_unused(monkeypatch):
    """On a GPU the default basis is sized from the free memory plus what torch's caching allocator keeps reserved
    but unused, so that a second run (whose first run's basis went back to the cache) picks the same basis: on one
    H200 the 10⁷-parameter MLP's λ_min took 567 products with 465 vectors and then 589 with fewer, run after run."""
    import sys
    L = sys.modules["overparam.diagnostics.krylov"]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 40 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 4 * 2**30)
    assert L._free_bytes(torch.device("cuda")) == 46 * 2**30
    assert L._default_basis(10 ** 7, 1, torch.device("cuda")) == int(0.25 * 46 * 2**30 / (8 * 10 ** 7)) - 1
