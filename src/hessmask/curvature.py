"""Curvature operators: products with the loss Hessian (or GGN) of a network over a data subset.

H = d^2/dtheta^2 (1/N) sum_n CE(f(x_n; theta), y_n), the Hessian of the mean cross-entropy over a
fixed subset, with the model in eval mode and its saved buffers (BatchNorm statistics). Products
with a block of vectors V (D x b) are computed by reverse-over-reverse differentiation
(Pearlmutter 1994): the gradient g of the summed loss is built with its graph, and H V is the
backward pass of g against the b vectors at once (``torch.autograd.grad`` with
``is_grads_batched``). With one data chunk the gradient's graph is built on the first product and
kept, so every later block costs one batched backward pass; with several data chunks
(``data_chunk``) it is rebuilt per chunk and block to bound memory, and blocks of ``block_size``
vectors bound the batched pass. A single vector (ARPACK's ``eigsh`` asks for one at a time) is a
plain dot product through the same graph. This path needs neither ``torch.func`` nor
``torch._dynamo``, whose import (``torch.func.grad`` triggers it) costs a second in every job. Per
product it costs about what ``torch.func``'s forward-over-reverse ``vmap(jvp(grad))`` costs,
measured side by side on this project's 2-core machine: 19.6 / 53 / 406 ms against 17.5 / 62 /
536 ms for 3c3d, All-CNN-C and ResNet-18 at their real D (one core, 2 samples), and on the MLP
0.33 to 0.65 ms against 0.32 to 0.93 ms depending on block size and threads. Every product is
counted.

The generalized Gauss-Newton G = J^T H_out J (H_out = the Hessian of the loss with respect to the
logits, diag(p) - p p^T per example for softmax cross-entropy) has the same interface.

Literature: Pearlmutter (1994) for exact Hessian-vector products; Schraudolph (2002) for the
GGN; curvlinops (Dangel et al.) for the operator interface tested against dense references.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp, vjp, vmap

from hessmask.models import unflattener
from hessmask.operators import LinearOperator

log = logging.getLogger(__name__)

__all__ = ["CurvatureOperator", "HessianOperator", "GGNOperator", "OPERATORS", "DTYPES", "curvature_operator"]


class CurvatureOperator(LinearOperator):
    """A symmetric D x D operator given by products; subclasses define ``_block_product``.

    The curvature is averaged over a fixed data subset (1/N times the sum over the N examples), with
    the model in eval mode. Products go through ``matmat`` / ``@`` of ``LinearOperator``: a (D, b)
    block in, a (D, b) tensor in ``dtype`` on ``device`` out, b products counted in ``num_products``.

    Args:
        model: the network; its parameters define theta (``model.parameters()`` order) and its
            buffers are used as they are (the model is put in eval mode).
        inputs, labels: the data subset the curvature is averaged over: inputs an (N, ...) float
            tensor (cast to ``dtype``), labels an (N,) integer tensor of class indices in [0, C).
        dtype: float32 or float64 for the products (the operator works on its own copy of the model).
        device: where products are computed.
        block_size: vectors per vectorized product (memory grows with it), >= 1.
        data_chunk: examples per forward pass (memory grows with it); None or 0: all N at once.
    Attributes:
        dim: D, the number of trainable parameters (those with ``requires_grad``).
        num_examples: N.
        num_products: products taken so far.
    Raises:
        ValueError: if block_size < 1 or the data subset is empty.
    Implements docs/science.md, section "Parameters" (theta and its order) and section "Settings
    table" ("Loss and Hessian": mean loss over a fixed subset, eval mode, exact products).
    """

    def __init__(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 block_size: int = 64, data_chunk: int | None = None):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.device = torch.device(device)
        self.dtype = dtype
        # a copy: the caller's model keeps its dtype, device and train/eval mode
        self.model = copy.deepcopy(model).to(device=self.device, dtype=dtype).eval()
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.dim = int(sum(p.numel() for _, p in trainable))
        self.params = {n: p.detach() for n, p in trainable}
        self._trainable = [p for _, p in trainable]
        self._split = unflattener(trainable)
        self.buffers = {n: b for n, b in self.model.named_buffers()}
        self.inputs = inputs.to(device=self.device, dtype=dtype)
        self.labels = labels.to(self.device)
        self.num_examples = int(self.inputs.shape[0])
        if self.num_examples == 0:
            raise ValueError("the curvature data subset is empty")
        self.block_size = int(block_size)
        self.data_chunk = int(data_chunk or self.num_examples)
        self.num_products = 0

    def theta(self) -> torch.Tensor:
        """The flattened parameters the operator is evaluated at.

        Returns:
            (D,) tensor in ``dtype`` on ``device``, in ``model.parameters()`` order (each parameter
            flattened row-major).
        Implements docs/science.md, section "Parameters".
        """
        return torch.cat([p.reshape(-1) for p in self.params.values()])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat parameter vector into the model's named parameters (the inverse of ``theta``).

        Args:
            flat: (D,) tensor in ``model.parameters()`` order.
        Returns:
            dict from parameter name to a view of ``flat`` with that parameter's shape (no copy).
        Raises:
            RuntimeError: if ``flat`` does not have exactly D entries.
        Implements docs/science.md, section "Parameters".
        """
        return self._split(flat)

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, (params, self.buffers), (x,))

    def _block_product(self, vectors: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sum over the chunk (x, y) of per-example curvature times each row of ``vectors`` (b x D)."""
        raise NotImplementedError

    @torch.no_grad()
    def _matmat(self, matrix: torch.Tensor) -> torch.Tensor:
        """H @ matrix for a (D, b) block, in blocks of ``block_size`` vectors and ``data_chunk`` examples."""
        out = torch.empty((self.dim, matrix.shape[1]), dtype=self.dtype, device=self.device)
        for start in range(0, matrix.shape[1], self.block_size):
            stop = min(matrix.shape[1], start + self.block_size)
            rows = matrix[:, start:stop].T
            if stop - start > 1:  # a batched pass reads the rows; one vector is only dotted with (no copy)
                rows = rows.contiguous()
            acc = None
            for lo in range(0, self.num_examples, self.data_chunk):
                hi = min(self.num_examples, lo + self.data_chunk)
                with torch.enable_grad():
                    part = self._block_product(rows, self.inputs[lo:hi], self.labels[lo:hi])
                acc = part if acc is None else acc.add_(part)
            out[:, start:stop] = acc.T
        return out.div_(self.num_examples)


class HessianOperator(CurvatureOperator):
    """The Hessian of the mean cross-entropy over the subset (reverse over reverse, batched).

    H = d^2/dtheta^2 (1/N) sum_n CE(f(x_n; theta), y_n); products H V are exact (Pearlmutter 1994):
    the backward pass of the gradient g against the block (see the module docstring). Takes the
    arguments of ``CurvatureOperator``.

    With one data chunk, g and its graph are built on the first product and kept: the operator's
    parameters never change (it owns its copy of the model), so every later block is one batched
    backward pass through that graph, as PyHessian does for one vector. The graph costs the memory
    of one gradient with ``create_graph`` for the operator's lifetime. With several data chunks g
    is rebuilt per chunk and nothing is kept.

    Implements docs/science.md, section "Settings table" ("Loss and Hessian").
    """

    #: g with its graph, kept after the first product when there is one data chunk
    _gradient_graph: torch.Tensor | None = None

    def _block_product(self, vectors: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        params = self._trainable
        keep = x.shape[0] == self.num_examples
        flat = self._gradient_graph if keep else None
        if flat is None:
            loss = F.cross_entropy(self.model(x), y, reduction="sum")
            gradients = torch.autograd.grad(loss, params, create_graph=True)
            flat = torch.cat([g.reshape(-1) for g in gradients])
            if keep:
                self._gradient_graph = flat
        if len(vectors) == 1:  # one vector: a dot product through the graph, no batching
            products = torch.autograd.grad(flat @ vectors[0], params, retain_graph=keep)
            return torch.cat([h.reshape(-1) for h in products]).detach()[None]
        products = torch.autograd.grad(flat, params, grad_outputs=vectors, is_grads_batched=True,
                                       retain_graph=keep)
        return torch.cat([h.reshape(len(vectors), -1) for h in products], dim=1).detach()


class GGNOperator(CurvatureOperator):
    """The generalized Gauss-Newton J^T H_out J of the mean cross-entropy (positive semi-definite).

    G = (1/N) sum_n J_n^T (diag(p_n) - p_n p_n^T) J_n, with J_n the Jacobian of the logits of example n
    and p_n its softmax (Schraudolph 2002). Takes the arguments of ``CurvatureOperator``.

    Implements no step of docs/science.md: the papers' settings use the Hessian (section "Settings
    table", "Loss and Hessian"); this is an alternative curvature with the same interface.
    """

    def _block_product(self, vectors: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        theta = self.theta()

        def network(flat: torch.Tensor) -> torch.Tensor:
            return self._logits(self.unflatten(flat), x)

        logits, pullback = vjp(network, theta)
        probs = torch.softmax(logits.detach(), dim=-1)

        def ggn_vp(v: torch.Tensor) -> torch.Tensor:
            jv = jvp(network, (theta,), (v,))[1]  # (n, C)
            hjv = probs * jv - probs * (probs * jv).sum(-1, keepdim=True)
            return pullback(hjv)[0]

        return ggn_vp(vectors[0])[None] if len(vectors) == 1 else vmap(ggn_vp)(vectors)


#: curvature operator classes by their configuration name
OPERATORS: dict[str, type[CurvatureOperator]] = {"hessian": HessianOperator, "ggn": GGNOperator}

#: torch dtypes of the products by their configuration name (``eigen.dtype``)
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def curvature_operator(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, curvature: str = "hessian",
                       dtype: str = "float32", device: str | torch.device = "cpu", block_size: int = 64,
                       data_chunk: int | None = None) -> CurvatureOperator:
    """The configured curvature operator of ``model`` over a data subset (config ``eigen.curvature``,
    ``dtype``, ``device``, ``block_size``, ``data_chunk``; every eigen method's spec carries them).

    Args:
        model: the network at one checkpoint (copied; its buffers are used as they are).
        inputs, labels: the data subset, as ``CurvatureOperator`` takes them.
        curvature: ``hessian`` or ``ggn`` (``OPERATORS``).
        dtype: ``float32`` or ``float64`` (``DTYPES``), the precision of the products.
        device, block_size, data_chunk: as ``CurvatureOperator``.
    Raises:
        ValueError: for an unknown curvature or dtype name.
    """
    if curvature not in OPERATORS or dtype not in DTYPES:
        raise ValueError(f"unknown curvature {curvature!r} or dtype {dtype!r} (known: {sorted(OPERATORS)}, "
                         f"{sorted(DTYPES)})")
    return OPERATORS[curvature](model, inputs, labels, dtype=DTYPES[dtype], device=device, block_size=block_size,
                                data_chunk=data_chunk)
