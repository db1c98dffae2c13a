"""The linear-operator base, and the library's operators on it (sensing operators, the softmax design), against
explicit matrices: products, adjoints, dense(), to_scipy() and the mixed-precision boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import overparam as op
from overparam.linalg import LinearOperator
from overparam.problems import matrix_sensing as ms
from overparam.problems.softmax_regression import Matrix


class _Explicit(LinearOperator):
    """A (m, n) matrix held densely: only matvec and rmatvec, so every derived product goes through the base."""

    def __init__(self, M: torch.Tensor):
        self.M, self.shape, self.dtype, self.device = M, tuple(M.shape), M.dtype, M.device

    def matvec(self, v):
        return self.M @ v

    def rmatvec(self, u):
        return self.M.T @ u


def _matrix(m=7, n=5, dtype=torch.float64, seed=0):
    return torch.randn(m, n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_base_products_adjoint_and_dense_match_the_matrix():
    M = _matrix()
    A = _Explicit(M)
    g = torch.Generator().manual_seed(1)
    v, V = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    u, U = torch.randn(7, generator=g, dtype=torch.float64), torch.randn(7, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(A @ v, M @ v, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(A @ V, M @ V, rtol=1e-14, atol=1e-14)  # default matmat: a loop over columns
    torch.testing.assert_close(A.T @ u, M.T @ u, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(A.adjoint() @ U, M.T @ U, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(u @ A, u @ M, rtol=1e-14, atol=1e-14)
    assert A.T.T is A and A.T.shape == (5, 7)
    torch.testing.assert_close(A.dense(block=2), M, rtol=0, atol=0)  # column blocks of 2, 2 and 1
    torch.testing.assert_close(A.T.dense(block=3), M.T, rtol=0, atol=0)
    np.testing.assert_allclose(A @ v.numpy(), (M @ v).numpy(), rtol=1e-14)  # NumPy vectors accepted


def test_to_scipy_matvec_rmatvec_matmat():
    M = _matrix()
    S = _Explicit(M).to_scipy()
    rng = np.random.default_rng(2)
    v, u, V = rng.standard_normal(5), rng.standard_normal(7), rng.standard_normal((5, 3))
    Mn = M.numpy()
    np.testing.assert_allclose(S.matvec(v), Mn @ v, rtol=1e-14)
    np.testing.assert_allclose(S.rmatvec(u), Mn.T @ u, rtol=1e-14)
    np.testing.assert_allclose(S.matmat(V), Mn @ V, rtol=1e-14)
    np.testing.assert_allclose(S.T.matvec(u), Mn.T @ u, rtol=1e-14)
    assert S.shape == (7, 5) and S.dtype == np.float64


def test_float32_products_under_float64_arithmetic():
    """cast(float64) and to_scipy() take and return float64 while the products run in float32: the result equals the
    float32 product of the float32-rounded vector, converted exactly."""
    M32 = _matrix(dtype=torch.float32)
    A = _Explicit(M32)
    v = torch.randn(5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    want = (M32 @ v.float()).double()
    out = A.cast(torch.float64) @ v
    assert out.dtype == torch.float64 and A.cast(torch.float64).dtype == torch.float64
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    s = A.to_scipy().matvec(v.numpy())
    assert s.dtype == np.float64
    np.testing.assert_array_equal(s, want.numpy())
    assert A.cast(torch.float32) is A


def test_wrong_vector_length_is_refused():
    with pytest.raises(ValueError, match=r"^x: must have shape \(5,\) or \(5, k\).*got shape \(4,\)"):
        _Explicit(_matrix()) @ torch.ones(4, dtype=torch.float64)


# --- sensing operators ---------------------------------------------------------------------------------------------
def _explicit_sensing(A) -> torch.Tensor:
    """The m × n1·n2 matrix of 𝒜 (rows vec A_i / √m, row-major), from each operator's own stored draws."""
    m, n1, n2 = A.m, A.n1, A.n2
    if isinstance(A, ms.GaussianOperator):
        return A.A / math.sqrt(m)
    if isinstance(A, ms.RankOneOperator):
        return (A.a[:, :, None] * A.b[:, None, :]).reshape(m, n1 * n2) / math.sqrt(m)
    E = torch.zeros(m, n1 * n2, dtype=A.dtype)
    E[torch.arange(m), A.rows * n2 + A.cols] = A.scale
    return E


@pytest.mark.parametrize("kind", ["gaussian", "rank_one", "entries"])
def test_sensing_operator_dense_and_adjoint_identity(kind):
    A = op.problems.make_operator(kind, 40, 4, 3, 0)
    assert isinstance(A, LinearOperator) and A.shape == (40, 12)
    E = _explicit_sensing(A)
    torch.testing.assert_close(A.dense(block=5), E, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(A.T.dense(), E.T, rtol=1e-14, atol=1e-14)
    g = torch.Generator().manual_seed(4)
    X, z = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(40, generator=g, dtype=torch.float64)
    lhs, rhs = float(A.forward(X) @ z), float((X * A.adjoint(z)).sum())  # ⟨𝒜X, z⟩ = ⟨X, 𝒜*z⟩
    assert lhs == pytest.approx(rhs, rel=1e-13, abs=1e-13)
    torch.testing.assert_close(A @ X.reshape(-1), A.forward(X), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(A.adjoint() @ z, A.adjoint(z).reshape(-1), rtol=1e-14, atol=1e-14)
    S = A.to_scipy()
    np.testing.assert_allclose(S.rmatvec(z.numpy()), (E.T @ z).numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(S.matmat(np.eye(12)[:, :3]), E[:, :3].numpy(), rtol=1e-12, atol=1e-13)


# --- the softmax design ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sparse", [False, True])
def test_softmax_design_matrix_is_an_operator(sparse):
    rng = np.random.default_rng(5)
    C = rng.standard_normal((9, 6)) * (rng.random((9, 6)) < 0.5)
    A = Matrix(sp.csr_matrix(C) if sparse else C)
    assert isinstance(A, LinearOperator) and A.shape == (9, 6) and A.dtype == torch.float64
    x, y, X = rng.standard_normal(6), rng.standard_normal(9), rng.standard_normal((6, 2))
    np.testing.assert_allclose((A @ torch.from_numpy(x)).numpy(), C @ x, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose((A.T @ torch.from_numpy(y)).numpy(), C.T @ y, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose((A @ torch.from_numpy(X)).numpy(), C @ X, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(A.to_scipy().rmatvec(y), C.T @ y, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(A.dense().numpy(), C, rtol=0, atol=0)
    before = A.work.madds
    A @ torch.from_numpy(x)
    assert A.work.madds - before == A.nnz  # products through the base still count their work
