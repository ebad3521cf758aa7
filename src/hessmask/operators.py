"""The linear-operator interface every eigensolver takes (after curvlinops' ``_torch_base``).

A symmetric D x D operator known only through products with blocks of vectors: the curvature
operators of ``hessmask.curvature`` and, for tests and references, a dense ``MatrixOperator``.
Subclasses implement ``_matmat``; the base counts products and provides the scipy view once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

__all__ = ["LinearOperator", "MatrixOperator"]


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
