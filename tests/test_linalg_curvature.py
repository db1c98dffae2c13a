"""Hessian and GGN operators against dense float64 matrices built independently (torch.func.hessian, jacobians,
closed forms), over every way of passing data, per block, batched and looped, with attention and with randomness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from overparam.linalg import GGNOperator, HessianOperator, LinearOperator

TOL = 1e-10  # float64 products against float64 dense references: rounding only (entries are O(1))
MSE = torch.nn.MSELoss()
CE = torch.nn.CrossEntropyLoss()


def _mlp(d=3, h=4, c=2, seed=0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.Tanh(), torch.nn.Linear(h, c)).double()


def _data(n=11, d=3, c=2, labels=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g) if labels else torch.randn(n, c, generator=g, dtype=torch.float64)
    return X, y


def _flat_loss(net, loss_fn, X, y, names=None):
    """θ ↦ loss_fn(net(X; θ), y) on the flat vector of the named parameters (the others as they are), and θ."""
    named = [(n, p.detach()) for n, p in net.named_parameters() if names is None or n in names]
    sizes = [p.numel() for _, p in named]

    def f(theta):
        parts = [c.view_as(p) for c, (_, p) in zip(torch.split(theta, sizes), named)]
        return loss_fn(functional_call(net, {n: p for n, p in zip([n for n, _ in named], parts)}, (X,)), y)
    return f, torch.cat([p.reshape(-1) for _, p in named])


def _dense_hessian(net, loss_fn, X, y, names=None) -> torch.Tensor:
    f, theta = _flat_loss(net, loss_fn, X, y, names)
    return torch.func.hessian(f)(theta)


def _close(a, b, tol=TOL):
    torch.testing.assert_close(a, b, rtol=0, atol=tol * max(1.0, float(b.abs().max())))


@pytest.mark.parametrize("loss_fn, labels", [(MSE, False), (CE, True)])
def test_hessian_equals_torch_func_hessian(loss_fn, labels):
    net, (X, y) = _mlp(), _data(labels=labels)
    H = HessianOperator(net, loss_fn, X, y)
    Hd = _dense_hessian(net, loss_fn, X, y)
    assert isinstance(H, LinearOperator) and H.shape == (H.dim, H.dim) == Hd.shape and H.dim == 26
    _close(H.dense(block=7), Hd)
    v = torch.randn(H.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _close(H @ v, Hd @ v)
    _close(H.matvec(v), H.rmatvec(v))
    np.testing.assert_allclose(H.to_scipy().matvec(v.numpy()), (Hd @ v).numpy(), rtol=0, atol=TOL)
    assert H.T is H and H.names == ["0.weight", "0.bias", "2.weight", "2.bias"] and H.sizes == [12, 4, 8, 2]


def test_ggn_of_a_linear_model_is_its_closed_form():
    """o = W x (no bias), W (c, d) row-major: MSE mean over N·c entries gives G = (2/c) I_c ⊗ XᵀX/N; cross-entropy
    gives G = Σ_n (diag p_n − p_n p_nᵀ) ⊗ x_n x_nᵀ / N (p_n = softmax(W x_n))."""
    n, d, c = 13, 4, 3
    torch.manual_seed(0)
    net = torch.nn.Linear(d, c, bias=False).double()
    X, y = _data(n, d, c)
    G = GGNOperator(net, MSE, X, y).dense()
    _close(G, torch.kron(torch.eye(c, dtype=torch.float64), X.T @ X / n) * 2 / c)
    _, labels = _data(n, d, c, labels=True)
    p = torch.softmax(X @ net.weight.detach().T, 1)
    want = sum(torch.kron(torch.diag(p[i]) - torch.outer(p[i], p[i]), torch.outer(X[i], X[i])) for i in range(n)) / n
    _close(GGNOperator(net, CE, X, labels).dense(), want)
    _close(GGNOperator(net, CE, X, labels).dense(), HessianOperator(net, CE, X, labels).dense())  # linear: G = H


def test_ggn_of_an_mlp_with_cross_entropy_is_jt_h_j():
    net, (X, y) = _mlp(h=5, c=3), _data(c=3, labels=True)
    G = GGNOperator(net, CE, X, y)
    names = [n for n, _ in net.named_parameters()]
    sizes = [p.numel() for p in net.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def out(t):
        parts = [c.view_as(p) for c, p in zip(torch.split(t, sizes), net.parameters())]
        return functional_call(net, dict(zip(names, parts)), (X,)).reshape(-1)
    J = torch.func.jacrev(out)(theta)  # (N·c, dim)
    o = out(theta).detach()
    Hl = torch.func.hessian(lambda z: CE(z.reshape(len(X), 3), y))(o)  # (N·c, N·c)
    want = J.T @ Hl @ J
    _close(G.dense(), want)
    assert float(torch.linalg.eigvalsh(G.dense())[0]) > -1e-12  # PSD: cross-entropy is convex in the logits


def test_blocks_by_name_pattern_are_submatrices_of_the_dense_hessian():
    net, (X, y) = _mlp(), _data()
    Hd = _dense_hessian(net, MSE, X, y)  # parameter order 0.weight (12), 0.bias (4), 2.weight (8), 2.bias (2)
    last = HessianOperator(net, MSE, X, y, param_filter="2.*")
    assert last.names == ["2.weight", "2.bias"]
    _close(last.dense(), Hd[16:, 16:])
    weights = HessianOperator(net, MSE, X, y, param_filter=["0.weight", "2.weight"])
    idx = torch.cat([torch.arange(0, 12), torch.arange(16, 24)])
    _close(weights.dense(), Hd[idx][:, idx])
    biases = HessianOperator(net, MSE, X, y, param_filter=lambda n, p: n.endswith("bias"))
    idx = torch.cat([torch.arange(12, 16), torch.arange(24, 26)])
    _close(biases.dense(), Hd[idx][:, idx])
    with pytest.raises(ValueError, match=r"^param_filter: pattern 'layer\.\*' matches no parameter name \(got "):
        HessianOperator(net, MSE, X, y, param_filter=["2.*", "layer.*"])


def test_loaders_unequal_batches_and_sum_reduction_agree_with_tensors():
    net, (X, y) = _mlp(), _data()  # N = 11
    ref = HessianOperator(net, MSE, X, y).dense()
    _close(HessianOperator(net, MSE, X, y, batch_size=4).dense(), ref)  # 4 + 4 + 3
    batches = [(X[:5], y[:5]), (X[5:9], y[5:9]), (X[9:], y[9:])]  # 5 + 4 + 2
    _close(HessianOperator(net, MSE, batches).dense(), ref)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=3)
    _close(HessianOperator(net, MSE, loader).dense(), ref)
    sum_mse = torch.nn.MSELoss(reduction="sum")
    total = HessianOperator(net, sum_mse, batches, reduction="sum").dense()
    _close(total, ref * y.numel())  # Σ over entries = N·c × the mean
    _close(HessianOperator(net, sum_mse, X, y, reduction="sum").dense(), total)
    ggn = GGNOperator(net, MSE, X, y).dense()
    _close(GGNOperator(net, MSE, batches).dense(), ggn)
    _close(GGNOperator(net, sum_mse, loader, reduction="sum").dense(), ggn * y.numel())


class _TwoInputs(torch.nn.Module):
    """A model called with keyword arguments, as Hugging Face models are: f(a, b) = lin(tanh(a) + b)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 2).double()

    def forward(self, a, b):
        return self.lin(torch.tanh(a) + b)


def test_dict_batches_are_passed_as_keyword_arguments():
    model, (A, y) = _TwoInputs(), _data()
    B = torch.randn(11, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    class Positional(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = model.lin

        def forward(self, x):
            return self.lin(torch.tanh(x[:, :3]) + x[:, 3:])
    ref = HessianOperator(Positional(), MSE, torch.cat([A, B], 1), y).dense()
    _close(HessianOperator(model, MSE, {"a": A, "b": B}, y).dense(), ref)
    _close(HessianOperator(model, MSE, {"a": A, "b": B}, y, batch_size=5).dense(), ref)
    batches = [({"a": A[:6], "b": B[:6]}, y[:6]), ({"a": A[6:], "b": B[6:]}, y[6:])]
    _close(HessianOperator(model, MSE, batches).dense(), ref)
    _close(GGNOperator(model, MSE, batches).dense(), GGNOperator(Positional(), MSE, torch.cat([A, B], 1), y).dense())


class _NoVmap(torch.autograd.Function):
    """x ↦ x², whose backward branches on data (a Python bool of a tensor), which vmap cannot batch."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        if bool((grad != grad).any()):  # data-dependent control flow
            raise FloatingPointError
        return 2 * x * grad


class _Square(torch.nn.Module):
    def forward(self, x):
        return _NoVmap.apply(x)


@pytest.mark.parametrize("make", [GGNOperator, HessianOperator])
def test_batched_products_equal_the_loop(make):
    net, (X, y) = _mlp(), _data()
    V = torch.randn(26, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    batched, looped = make(net, MSE, X, y, batch_size=4, vmap=True), make(net, MSE, X, y, batch_size=4, vmap=False)
    assert make(net, MSE, X, y).vmap is False  # the default on a CPU: the loop (measured faster there)
    out = batched @ V
    assert batched.vmap  # vmap ran
    _close(out, looped @ V, 1e-13)
    _close(out, torch.stack([looped @ V[:, j] for j in range(5)], 1), 1e-13)
    sq = torch.nn.Sequential(torch.nn.Linear(3, 4), _Square(), torch.nn.Linear(4, 2)).double()
    fallback = make(sq, MSE, X, y, vmap=True)
    W = torch.randn(fallback.dim, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    out = fallback @ W
    assert not fallback.vmap  # vmap failed and the loop took over
    _close(out, make(sq, MSE, X, y, vmap=False) @ W, 1e-13)


def test_check_deterministic_catches_dropout():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Dropout(0.3), torch.nn.Linear(8, 2))
    net = net.double()
    X, y = _data()
    with pytest.raises(ValueError, match=r"^model: the loss differ.*dropout"):
        HessianOperator(net, MSE, X, y).check_deterministic()
    net.eval()
    assert HessianOperator(net, MSE, X, y).check_deterministic() <= 1e-14
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=4, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    assert GGNOperator(net, MSE, loader).check_deterministic() < 1e-12  # reshuffled order: rounding only


class _Attention(torch.nn.Module):
    """One head of self-attention through F.scaled_dot_product_attention, then a linear read-out."""

    def __init__(self, e=4):
        super().__init__()
        torch.manual_seed(0)
        self.qkv, self.out = torch.nn.Linear(e, 3 * e).double(), torch.nn.Linear(e, 1).double()

    def forward(self, x):  # x (N, T, e), one head: q, k, v (N, 1, T, e)
        q, k, v = self.qkv(x)[:, None].chunk(3, -1)
        return self.out(F.scaled_dot_product_attention(q, k, v)[:, 0]).mean(1)


def test_attention_is_differentiated_twice_through_the_math_kernel():
    g = torch.Generator().manual_seed(6)
    X, y = torch.randn(5, 3, 4, generator=g, dtype=torch.float64), torch.randn(5, 1, generator=g, dtype=torch.float64)
    model = _Attention()
    fused = HessianOperator(model, MSE, X, y, eager_attention=False)
    with pytest.raises(RuntimeError, match="not implemented"):  # the fused CPU kernel has no double backward
        fused @ torch.ones(fused.dim, dtype=torch.float64)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.MATH):
        ref = _dense_hessian(model, MSE, X, y)
    _close(HessianOperator(model, MSE, X, y).dense(), ref)
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(4, 2, batch_first=True).double()

    class MHA(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0].mean((1, 2))[:, None]
    with sdpa_kernel(SDPBackend.MATH):
        ref = _dense_hessian(MHA(), MSE, X, y)
    _close(HessianOperator(MHA(), MSE, X, y).dense(), ref)


class _FlagRecorder(torch.nn.Module):
    """A linear model that records the TF32 flags (cuDNN convolutions, CUDA matmuls) each forward pass ran under."""

    def __init__(self):
        super().__init__()
        self.lin, self.seen = torch.nn.Linear(3, 2).double(), []

    def forward(self, x):
        self.seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return self.lin(x)


@pytest.mark.parametrize("Op", [HessianOperator, GGNOperator])
def test_products_run_in_ieee_float32_unless_tf32_is_asked_for(Op):
    """Every forward pass of a product runs with both TF32 flags off (tf32=False, the default) and the caller's flags
    come back after; tf32=True leaves them as the caller set them (module docstring: TF32 moves λ_min of a CNN on a
    GPU by 4e-4). The flags are process state, so the test sets and restores them."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    X, y = _data()
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        for tf32 in (False, True):
            model = _FlagRecorder()
            op = Op(model, MSE, X, y, tf32=tf32)
            model.seen.clear()
            op @ torch.ones(op.dim, dtype=torch.float64)
            op.loss()
            assert model.seen and set(model.seen) == {(tf32, tf32)}
            assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
        with pytest.raises(ValueError, match="tf32"):
            Op(_FlagRecorder(), MSE, X, y, tf32="no")
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_at_gradient_and_loss_match_autograd_at_other_parameters():
    net, (X, y) = _mlp(), _data()
    H = HessianOperator(net, MSE, X, y, batch_size=4)
    f, theta = _flat_loss(net, MSE, X, y)
    theta2 = theta + 0.1 * torch.randn(theta.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    H2 = H.at(theta2)
    _close(H2.flat_params(), theta2, 0)
    _close(H2.dense(), torch.func.hessian(f)(theta2))
    _close(H2.gradient(), torch.func.grad(f)(theta2))
    assert H2.loss() == pytest.approx(float(f(theta2)), rel=1e-13)
    _close(H.flat_params(), theta, 0)  # the original operator and the model are untouched
    _close(torch.cat([p.detach().reshape(-1) for p in net.parameters()]), theta, 0)


def test_float32_model_under_float64_scipy_arithmetic_and_batchnorm_buffers_untouched():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    X, y = (t.float() for t in _data())
    before = [b.clone() for b in net.buffers()]
    H = HessianOperator(net, MSE, X, y)  # batch norm in training mode: batch statistics, buffers copied
    v = torch.randn(H.dim, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    s = H.to_scipy().matvec(v.numpy())
    assert s.dtype == np.float64 and H.dtype == torch.float32
    np.testing.assert_array_equal(s, (H @ v.float()).double().numpy())
    V = torch.randn(H.dim, 3, generator=torch.Generator().manual_seed(9))
    _close(H @ V, torch.stack([H @ V[:, j] for j in range(3)], 1), 1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))


class _DictOutput(torch.nn.Module):
    """Returns its logits in a dict, as Hugging Face models return a ModelOutput."""

    def __init__(self):
        super().__init__()
        self.net = _mlp(c=3)

    def forward(self, x):
        return {"logits": self.net(x)}


def test_output_fn_reads_logits_from_a_structured_output():
    model, (X, y) = _DictOutput(), _data(c=3, labels=True)
    logits = lambda o: o["logits"]  # noqa: E731
    _close(GGNOperator(model, CE, X, y, output_fn=logits).dense(), GGNOperator(model.net, CE, X, y).dense())
    _close(HessianOperator(model, lambda o, t: CE(o["logits"], t), X, y).dense(),
           HessianOperator(model.net, CE, X, y).dense())
    with pytest.raises(ValueError, match=r"^output_fn: needed to map the model's output to a tensor \(got a dict"):
        GGNOperator(model, lambda o, t: CE(o["logits"], t), X, y)


@pytest.mark.parametrize("Op", [HessianOperator, GGNOperator])
def test_one_batch_keeps_its_graph_between_products(Op):
    """Tensors in one batch: the graph is built at the first product and reused (one forward pass in all), with the
    same products as a graph built every time (to rounding) and as the dense reference; ``at(θ)`` builds its own;
    several batches rebuild per product and refuse keep_graph=True."""
    net, (X, y) = _mlp(), _data()
    forwards = []
    net.register_forward_hook(lambda *_: forwards.append(1))
    kept, fresh = Op(net, MSE, X, y), Op(net, MSE, X, y, keep_graph=False)
    assert kept.keep_graph and not fresh.keep_graph
    V = torch.randn(kept.dim, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    forwards.clear()
    a = torch.stack([kept @ V[:, i] for i in range(3)], 1)
    assert len(forwards) == 1  # three products, one graph
    _close(a, fresh @ V, 1e-13)
    _close(kept @ V, a, 1e-13)
    if Op is HessianOperator:
        _close(a, _dense_hessian(net, MSE, X, y) @ V)
    theta = kept.flat_params() + 0.1
    forwards.clear()
    _close(kept.at(theta) @ V[:, 0], fresh.at(theta) @ V[:, 0], 1e-13)
    assert not torch.allclose(kept.at(theta) @ V[:, 0], a[:, 0])
    batched = Op(net, MSE, X, y, batch_size=4)
    assert not batched.keep_graph
    _close(batched @ V, a, 1e-12)
    with pytest.raises(ValueError, match=r"^keep_graph: only for tensors taken as one batch"):
        Op(net, MSE, X, y, batch_size=4, keep_graph=True)
