"""The linear-operator interface every eigensolver takes (after curvlinops' ``_torch_base``).

A symmetric D x D operator known only through products with blocks of vectors: the curvature
operators of ``hessmask.curvature`` and, for tests and references, a dense ``MatrixOperator``.
Subclasses implement ``_matmat``; the base counts products and provides the scipy view once.
``dense_matrix`` and ``check_symmetric`` need nothing but products, so every solver can use them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import numpy as np
import torch

__all__ = ["LinearOperator", "MatrixOperator", "dense_matrix", "check_symmetric"]


class LinearOperator(ABC):
    """A symmetric operator of size ``dim`` x ``dim`` given by products.

    Attributes:
        dim: D, the number of rows and columns.
        dtype: torch dtype of the products (and of the blocks they take).
        device: torch device the products run on.
        num_products: Hessian-vector (operator-vector) products taken so far, one per column.
    """

    dim: int
    dtype: torch.dtype
    device: torch.device
    num_products: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    def matmat(self, block: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Operator @ block for a (D, b) block (or a D-vector); counts b products.

        Args:
            block: (D, b) tensor or array; cast to ``dtype`` and moved to ``device``.

        Returns:
            (D, b) tensor in ``dtype`` on ``device`` (a D-vector for a D-vector).
        """
        block = torch.as_tensor(block)
        if block.ndim == 1:
            return self.matmat(block[:, None])[:, 0]
        if block.shape[0] != self.dim:
            raise ValueError(f"operator of size D = {self.dim} applied to a block of {block.shape[0]} rows")
        out = self._matmat(block.to(device=self.device, dtype=self.dtype))
        self.num_products += int(block.shape[1])
        return out

    @abstractmethod
    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        """The product with a (D, b) block already in ``dtype`` on ``device``."""

    def matvec(self, vector: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.matmat(torch.as_tensor(vector).reshape(-1, 1))[:, 0]

    def __matmul__(self, other: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.matmat(other)

    def to_scipy(self):
        """A float64 ``scipy.sparse.linalg.LinearOperator`` view (products still counted here)."""
        from scipy.sparse.linalg import LinearOperator as ScipyOperator

        def mv(v: np.ndarray) -> np.ndarray:
            block = torch.from_numpy(np.asarray(v, dtype=np.float64).reshape(self.dim, -1))
            return self.matmat(block).double().cpu().numpy()

        return ScipyOperator(self.shape, matvec=lambda v: mv(v)[:, 0], matmat=mv, rmatvec=lambda v: mv(v)[:, 0],
                             dtype=np.float64)


class MatrixOperator(LinearOperator):
    """A dense symmetric matrix behind the operator interface (tests and references).

    Args:
        matrix: (D, D) tensor or array.
        dtype: precision of the products (default: the matrix's own).
    """

    def __init__(self, matrix: torch.Tensor | np.ndarray, dtype: torch.dtype | None = None):
        matrix = torch.as_tensor(matrix)
        self.matrix = matrix.to(dtype) if dtype is not None else matrix
        self.dtype = self.matrix.dtype
        self.dim = int(self.matrix.shape[0])
        self.device = self.matrix.device
        self.num_products = 0

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        return self.matrix @ block


def dense_matrix(operator: LinearOperator | Callable, dim: int | None = None, block: int = 256,
                 dtype: torch.dtype = torch.float64, progress: Callable | None = None) -> torch.Tensor:
    """The D x D matrix of an operator from batched products with identity blocks, symmetrized.

    Costs D products; the result (H + H^T) / 2 holds D^2 numbers.

    Args:
        operator: the operator, any object that supports ``operator @ block`` for a (D, b) tensor
            (a ``LinearOperator``); it also needs a ``dim`` attribute when ``dim`` is None.
        dim: D (None: ``operator.dim``).
        block: identity columns per batched product, >= 1.
        dtype: dtype of the returned matrix (the identity blocks use the operator's own ``dtype``).
        progress: optional callable receiving the number of products of each block.
    Returns:
        (D, D) tensor in ``dtype`` on the CPU, symmetric.
    Implements docs/science.md, section "Settings table" ("Loss and Hessian": the exact reference
    assembles the dense matrix from D products).
    """
    dim = operator.dim if dim is None else dim
    out = torch.empty((dim, dim), dtype=dtype)
    eye_dtype = getattr(operator, "dtype", dtype)
    for start in range(0, dim, block):
        stop = min(dim, start + block)
        eye = torch.zeros((dim, stop - start), dtype=eye_dtype)
        eye[torch.arange(start, stop), torch.arange(stop - start)] = 1
        out[:, start:stop] = torch.as_tensor(operator @ eye).to(dtype).cpu()
        if progress is not None:
            progress(stop - start)
    return (out + out.T) / 2


def check_symmetric(operator: LinearOperator, dim: int, seed: int = 0, trials: int = 2, rtol: float = 1e-3) -> float:
    """Cheap symmetry check on random vectors: |u^T H v - v^T H u| relative to ||u|| max(||H u||, ||H v||).

    Costs 2 * trials products. Raises ValueError naming the discrepancy if it exceeds ``rtol``;
    returns the largest relative discrepancy otherwise.

    Args:
        operator: the (D, D) operator, anything that supports ``operator @ block`` for a (D, 2) tensor.
        dim: D.
        seed: seed of the standard Gaussian vectors u, v (float64).
        trials: number of (u, v) pairs, >= 0 (0 checks nothing and returns 0.0).
        rtol: the largest relative discrepancy accepted, > 0.
    Returns:
        the largest relative discrepancy over the trials, a float >= 0.
    Raises:
        ValueError: if the discrepancy exceeds ``rtol`` (the operator is not symmetric).
    Implements the precondition of docs/science.md, section "SEIGH step by step" (a symmetric operator H).
    """
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(trials):
        u = torch.randn(dim, generator=gen, dtype=torch.float64)
        v = torch.randn(dim, generator=gen, dtype=torch.float64)
        block = torch.stack([u, v], dim=1)
        product = torch.as_tensor(operator @ block.to(getattr(operator, "dtype", torch.float64))).double().cpu()
        hu, hv = product[:, 0], product[:, 1]
        scale = float(torch.linalg.norm(u) * max(torch.linalg.norm(hv), torch.linalg.norm(hu))) or 1.0
        worst = max(worst, abs(float(u @ hv - v @ hu)) / scale)
    if worst > rtol:
        raise ValueError(f"the operator is not symmetric: |u^T H v - v^T H u| / (|u| |Hv|) = {worst:.2e} "
                         f"> {rtol:.0e} on random vectors; symmetric eigensolvers need a symmetric operator")
    return worst
