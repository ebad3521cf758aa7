"""Curvature operators against dense autograd references on small networks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hessmask.curvature import GGNOperator, HessianOperator
from hessmask.operators import check_symmetric, dense_matrix


class TinyBN(nn.Module):
    """A small conv net with BatchNorm, to check that eval-mode statistics are used."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.bn(self.conv(x))).flatten(1))


def tiny_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def reference_hessian(model, x, y):
    """Dense Hessian of the mean cross-entropy by double backward over every coordinate."""
    params = [p for p in model.parameters()]
    loss = F.cross_entropy(model(x), y)
    grads = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, create_graph=True)])
    rows = [torch.cat([h.reshape(-1) for h in torch.autograd.grad(g, params, retain_graph=True)]) for g in grads]
    return torch.stack(rows)


def reference_ggn(model, x, y):
    params = dict(model.named_parameters())
    flat = torch.cat([p.reshape(-1) for p in params.values()])
    sizes = [p.numel() for p in params.values()]

    def net(theta):
        chunks = dict(zip(params, [t.view(p.shape) for t, p in zip(torch.split(theta, sizes), params.values())]))
        return torch.func.functional_call(model, chunks, (x,))

    jac = torch.autograd.functional.jacobian(net, flat)  # (n, C, D)
    probs = torch.softmax(net(flat), -1)
    g = torch.zeros(flat.numel(), flat.numel(), dtype=flat.dtype)
    for n in range(x.shape[0]):
        h = torch.diag(probs[n]) - torch.outer(probs[n], probs[n])
        g += jac[n].T @ h @ jac[n]
    return g / x.shape[0]


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(12, 1, 6, 1, generator=gen, dtype=torch.float64), torch.arange(12) % 3


@pytest.mark.parametrize("block_size,data_chunk", [(1, None), (7, 5), (64, 12)])
def test_hessian_matches_dense(data, block_size, data_chunk):
    x, y = data
    model = tiny_mlp().double()
    ref = reference_hessian(model, x, y)
    op = HessianOperator(model, x, y, dtype=torch.float64, block_size=block_size, data_chunk=data_chunk)
    dense = dense_matrix(op, block=10)
    torch.testing.assert_close(dense, ref, atol=1e-10, rtol=1e-10)
    assert op.num_products == op.dim


@pytest.mark.parametrize("data_chunk", [None, 5])
def test_one_vector_path_reuses_the_gradient_graph(data, data_chunk):
    """block_size = 1: the gradient's graph is kept between products (one data chunk) and every
    later product, in this call or the next, is bitwise the one a fresh operator computes; with
    several data chunks nothing is kept. Both agree with the batched products."""
    x, y = data
    model = tiny_mlp().double()
    op = HessianOperator(model, x, y, dtype=torch.float64, block_size=1, data_chunk=data_chunk)
    vectors = torch.randn(op.dim, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    first = op.matmat(vectors)
    assert (op._gradient_graph is not None) == (data_chunk is None)
    again = op.matmat(vectors[:, 2:])
    fresh = HessianOperator(model, x, y, dtype=torch.float64, block_size=1, data_chunk=data_chunk)
    assert torch.equal(again, first[:, 2:]) and torch.equal(fresh.matmat(vectors[:, 2:]), again)
    batched = HessianOperator(model, x, y, dtype=torch.float64, block_size=4).matmat(vectors)
    torch.testing.assert_close(first, batched, atol=1e-12, rtol=1e-12)


def test_symmetry_and_linearity(data):
    x, y = data
    op = HessianOperator(tiny_mlp().double(), x, y, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    u, v = (torch.randn(op.dim, generator=gen, dtype=torch.float64),
            torch.randn(op.dim, generator=gen, dtype=torch.float64))
    torch.testing.assert_close(op.matvec(2 * u - 3 * v), 2 * op.matvec(u) - 3 * op.matvec(v))
    assert abs(float(u @ op.matvec(v) - v @ op.matvec(u))) < 1e-10
    assert check_symmetric(op, op.dim) < 1e-10


def test_float32_close_to_float64(data):
    x, y = data
    model = tiny_mlp()
    ref = reference_hessian(model.double(), x, y)
    op = HessianOperator(tiny_mlp(), x.float(), y, dtype=torch.float32)
    torch.testing.assert_close(dense_matrix(op), ref, atol=1e-5, rtol=1e-4)


def test_ggn_matches_dense_and_is_psd(data):
    x, y = data
    model = tiny_mlp().double()
    op = GGNOperator(model, x, y, dtype=torch.float64, block_size=4, data_chunk=5)
    dense = dense_matrix(op)
    torch.testing.assert_close(dense, reference_ggn(model, x, y), atol=1e-10, rtol=1e-10)
    assert float(torch.linalg.eigvalsh(dense).min()) > -1e-10


def test_batchnorm_eval_mode_uses_running_stats():
    torch.manual_seed(3)
    model = TinyBN().double()
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.tensor([0.3, -0.2], dtype=torch.float64))
        model.bn.running_var.copy_(torch.tensor([2.0, 0.5], dtype=torch.float64))
    x = torch.randn(8, 1, 6, 6, dtype=torch.float64)
    y = torch.arange(8) % 3
    model.eval()
    ref = reference_hessian(model, x, y)
    op = HessianOperator(model, x, y, dtype=torch.float64)
    torch.testing.assert_close(dense_matrix(op), ref, atol=1e-9, rtol=1e-9)
    assert torch.equal(model.bn.running_mean, torch.tensor([0.3, -0.2], dtype=torch.float64))


def test_nonsymmetric_rejected():
    from hessmask.operators import MatrixOperator

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not symmetric"):
        check_symmetric(MatrixOperator(rng.standard_normal((20, 20))), 20)


def test_wrong_block_size(data):
    x, y = data
    op = HessianOperator(tiny_mlp().double(), x, y, dtype=torch.float64)
    with pytest.raises(ValueError, match="applied to a block of 5 rows"):
        op.matmat(torch.zeros(5, 2, dtype=torch.float64))


def test_operator_leaves_the_callers_model_alone():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3)).train()
    x, y = torch.randn(6, 8), torch.arange(6) % 3
    HessianOperator(model, x, y, dtype=torch.float64)
    assert model.training and next(model.parameters()).dtype == torch.float32
