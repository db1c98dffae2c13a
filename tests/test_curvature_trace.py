"""Hutchinson and Hutch++ (overparam.diagnostics.trace) against the exact trace, within their stated error."""

import numpy as np
import pytest
import torch

from overparam.diagnostics import hutchinson, hutchpp
from overparam.diagnostics.krylov import Counted
from test_curvature_lanczos import planted

# a decaying spectrum (Hutch++'s case: the top carries most of ‖H‖_F) with a negative part
EV = np.concatenate([100.0 * np.arange(1, 31) ** -1.5, np.random.default_rng(5).uniform(-0.05, 0.05, 270)])


def _calibrated(estimator, products, **kw):
    """60 seeded estimates on the planted matrix: each used ``products`` products, and the z-scores
    (estimate − tr)/stderr are those of a t distribution (|z| > 3.9 has probability < 0.1 % per draw at 19+ degrees
    of freedom, and their spread is about 1)."""
    H = planted(EV, seed=1)
    exact = float(EV.sum())
    est = [estimator(H, seed=s, **kw) for s in range(60)]
    z = np.array([(e.trace - exact) / e.stderr for e in est])
    assert all(e.products == products for e in est)
    assert np.abs(z).max() < 3.9 and 0.5 < z.std() < 1.6
    return H, exact, est


def test_hutchinson_within_its_standard_error():
    H, _, est = _calibrated(hutchinson, 20, n_probe=20)
    # the stated error agrees with the probe variance 2(‖H‖_F² − Σ H_ii²) / m
    A = H.A.numpy()
    sd = np.sqrt(2 * ((A ** 2).sum() - (np.diag(A) ** 2).sum()) / 20)
    assert np.median([e.stderr for e in est]) == pytest.approx(sd, rel=0.3)


def test_hutchpp_within_its_standard_error_and_better_than_hutchinson():
    H, exact, est = _calibrated(hutchpp, 60, n_products=60)
    plain = [hutchinson(H, n_probe=60, seed=s) for s in range(60)]
    rms = lambda xs: float(np.sqrt(np.mean([(x.trace - exact) ** 2 for x in xs])))  # noqa: E731
    assert rms(est) < 0.25 * rms(plain)  # deflating the top 20 directions removes most of the variance


def test_full_deflation_is_exact_and_float32_products():
    H = planted(EV[:30], seed=2)
    full = hutchpp(H, n_products=90, seed=0)  # Q spans the whole space: tr(QᵀHQ) is the trace
    assert full.trace == pytest.approx(EV[:30].sum(), rel=1e-12)
    H32 = planted(EV, seed=1, dtype=torch.float32)
    est = hutchinson(H32, n_probe=40, seed=0)
    assert abs(est.trace - EV.sum()) < 4 * est.stderr


def test_batched_products_give_the_same_estimate():
    """An operator with a batched ``matmat`` gets blocks of probes in one call, with the same numbers and count."""
    class Batched:
        def __init__(self, A):
            self.A, self.shape, self.dtype, self.device, self.calls = A, tuple(A.shape), A.dtype, A.device, 0

        def matvec(self, v):
            return self.A @ v

        def matmat(self, V):
            self.calls += 1
            return self.A @ V
    H = planted(EV, seed=1)
    B = Batched(H.A)
    for est in (hutchpp, hutchinson):
        kw = {"n_products": 60} if est is hutchpp else {"n_probe": 30}
        a, b = est(H, seed=3, **kw), est(B, seed=3, **kw)
        assert a.products == b.products and a.trace == pytest.approx(b.trace, rel=1e-12)
    assert B.calls == 4  # Hutch++: H S, H Q, H G; Hutchinson: H Z


def test_float32_operator_works_in_float32_and_matches_float64():
    """A float32 operator's blocks are not copied to float64 (Counted hands back the operator's own product), and
    the estimates agree with those of the same matrix in float64 from the same probes to float32 rounding (relative
    1e-5, against stated errors of ~1e-2)."""
    class Recording:
        def __init__(self, A):
            self.A, self.shape, self.dtype, self.device, self.out = A, tuple(A.shape), A.dtype, A.device, None

        def matvec(self, v):
            return self.A @ v

        def matmat(self, V):
            self.out = self.A @ V
            return self.out
    H = planted(EV, seed=1)
    B = Recording(H.A.to(torch.float32))
    V = torch.ones(300, 3)
    assert Counted(B).matmat(V, torch.float32) is B.out and Counted(B).matmat(V).dtype == torch.float64
    for est in (hutchpp, hutchinson):
        kw = {"n_products": 60} if est is hutchpp else {"n_probe": 30}
        a, b = est(H, seed=4, **kw), est(B, seed=4, **kw)
        assert b.trace == pytest.approx(a.trace, rel=1e-5) and b.stderr == pytest.approx(a.stderr, rel=1e-4)
        assert abs(b.trace - a.trace) < 1e-3 * a.stderr
