"""The exact reference: the dense matrix from D products and its float64 eigendecomposition.

For D up to ~1e4 (the MLP's 7030): every other solver is measured against it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch

from hessmask.eigen.common import EigenResult, SolverError, Timer, check_k, check_products, finish_result, sort_top
from hessmask.operators import LinearOperator, dense_matrix

log = logging.getLogger(__name__)


#: below this fraction k / D the exact solve computes only the k eigenvectors it keeps
PARTIAL_EIGH_BELOW = 0.5


def dense_top_eigh(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every eigenvalue of a dense symmetric float64 matrix and the k eigenpairs of largest |lambda|.

    Exact zero rows (and their columns) are deflated first: a coordinate whose row is zero is an
    eigenvector with eigenvalue exactly 0, so the solve runs on the matrix of the other coordinates
    and the zeros are added to the spectrum. A Hessian has such rows wherever a parameter never
    reaches the loss on the subset: weights from input pixels that are zero in every sample, units
    no sample activates. On the default MLP 480 of 7030 rows are zero at step 40 (the reduction,
    O(D^3), is then about 20 % cheaper). When a kept eigenvalue is 0 to rounding (|lambda| <=
    D eps max|lambda|: k above the number of nonzero eigenvalues), the kept vectors are a choice
    within the zero eigenspace, which the deflated rows belong to, so the whole matrix is solved as
    it is, and the choice is LAPACK's, as without the deflation.

    For k < ``PARTIAL_EIGH_BELOW`` D, LAPACK's stages are run separately so that only the kept
    eigenvectors are computed: the Householder tridiagonalization Q^T A Q = T (``dsytrd``), all
    eigenvalues of T (``scipy.linalg.eigh_tridiagonal``, O(D^2)), the eigenvectors of T at the kept
    indices (MRRR, ``dstemr``: 3.2 s against 5.0 s for bisection and inverse iteration at D = 7030,
    k = 1406; residuals 9e-14 and orthogonality 2e-12 at ||T|| = 0.8, against 2e-16 and 5e-15, far
    below the float32 the eigenvectors are stored in) and their back-transformation by Q
    (``dormqr``, the lower-triangle ``dormtr``, O(D^2 k)). A full ``eigh`` also computes the D - k
    eigenvectors nobody reads: 83 s against 58 s at D = 7030, k = 1406 on one core (the reduction
    alone takes 49 s, 28 s on two). Otherwise a full ``eigh``. BLAS threads follow
    ``torch.get_num_threads()`` (the job's ``threads``).

    Args:
        matrix: (D, D) symmetric float64 array (only the lower triangle is read by the partial route).
        k: eigenpairs kept, 1 <= k <= D.
    Returns:
        (spectrum (D,) ascending, values (k,), vectors (D, k)): the pairs by descending |lambda|, ties
        in the order of ascending lambda (as ``sort_top`` orders a full eigh).
    Implements docs/science.md, section "Settings table" (the exact reference: dense float64 eigh).
    """
    from threadpoolctl import threadpool_limits

    dim = matrix.shape[0]
    live = np.flatnonzero(matrix.any(axis=0) | matrix.any(axis=1))
    with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        if k <= live.size < dim:
            # the copy is symmetric: its transpose is the Fortran-ordered array LAPACK overwrites
            spectrum, values, vectors = _top_eigh(matrix[np.ix_(live, live)].T, k, overwrite=True)
            if abs(values[-1]) > dim * np.finfo(np.float64).eps * np.abs(spectrum).max():
                log.info("exact solve: %d of %d rows are exactly zero (eigenvalue 0), solved on the other %d",
                         dim - live.size, dim, live.size)
                full = np.zeros((dim, k))
                full[live] = vectors
                return np.sort(np.concatenate([spectrum, np.zeros(dim - live.size)])), values, full
            log.info("exact solve: a kept eigenvalue is 0 to rounding; the %d zero rows are not split off",
                     dim - live.size)
        return _top_eigh(matrix, k, overwrite=False)


def _top_eigh(matrix: np.ndarray, k: int, overwrite: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dense_top_eigh`` without the deflation; ``overwrite``: ``matrix`` may be destroyed."""
    dim = matrix.shape[0]
    if k >= PARTIAL_EIGH_BELOW * dim:
        spectrum, vectors = np.linalg.eigh(matrix)
        values, vectors = sort_top(spectrum, vectors, k)
        return spectrum, values, vectors
    reduced, diagonal, offdiagonal, tau, info = scipy.linalg.lapack.dsytrd(matrix, lower=1,
                                                                          overwrite_a=int(overwrite))
    if info != 0:
        raise SolverError(f"the tridiagonal reduction failed (LAPACK dsytrd info = {info})")
    spectrum = scipy.linalg.eigh_tridiagonal(diagonal, offdiagonal, eigvals_only=True)
    order = np.argsort(-np.abs(spectrum), kind="stable")[:k]
    negative = order[spectrum[order] < 0]
    positive = order[spectrum[order] >= 0]
    # the kept indices are a prefix (most negative) and a suffix (largest) of the ascending
    # spectrum, up to ties: compute the enclosing index ranges and pick the kept columns
    ranges = [(0, int(negative.max())) if negative.size else None,
              (int(positive.min()), dim - 1) if positive.size else None]
    columns, index = [], []
    for bounds in filter(None, ranges):
        _, z = scipy.linalg.eigh_tridiagonal(diagonal, offdiagonal, select="i", select_range=bounds,
                                             lapack_driver="stemr")
        columns.append(z)
        index.append(np.arange(bounds[0], bounds[1] + 1))
    z = np.concatenate(columns, axis=1)[:, np.searchsorted(np.concatenate(index), order)]  # ascending, disjoint
    vectors = np.array(z, order="F")
    if dim > 1:  # Q = H_1 ... H_{D-1}, the reflectors below the subdiagonal (dormtr, lower)
        vectors[1:] = scipy.linalg.lapack.dormqr("L", "N", reduced[1:, : dim - 1], tau[: dim - 1],
                                                 vectors[1:], lwork=max(1, 64 * k))[0]
    return spectrum, spectrum[order], vectors


def exact(operator: LinearOperator, k: int, block: int = 256, residual_pairs: int | None = None,
          progress: Any = None) -> EigenResult:
    """Dense float64 eigendecomposition of the operator's matrix (D products; D up to ~1e4).

    The reference every other solver is measured against. The matrix is assembled by ``dense_matrix``
    (symmetrized, (H + H^T) / 2), so memory is O(D^2) float64.

    Args:
        operator: the D x D operator; its matrix is built from batched products with identity blocks.
        k: eigenpairs returned, 1 <= k <= D, by descending |lambda| (the whole spectrum is in
            ``extra["spectrum"]``, a (D,) float64 array sorted descending by signed value).
        block: identity columns per batched product.
        residual_pairs: leading pairs whose residual ||H u - lambda u|| is computed (from the matrix,
            no further products; capped at k). None or 0: none.
        progress: optional callable receiving the number of products of each block.

    Returns:
        ``EigenResult`` with eigenvalues (k,) and eigenvectors (D, k), float64.
    Raises:
        SolverError: if k is outside [1, D], or the products are non-finite or all zero.
    Implements docs/science.md, section "Settings table" (the exact reference: dense float64 eigh)
    and section "Sketching versus Krylov methods" (the exact reference measures how far the sketch is
    from the truth).
    """
    check_k(k, operator.dim)
    timer, start = Timer(), operator.num_products
    with timer.phase("measure"):
        matrix = dense_matrix(operator, block=block, progress=progress)
    check_products(matrix, "the dense matrix")
    with timer.phase("eigh"):
        spectrum, values, vectors = dense_top_eigh(matrix.numpy(), k)
    extra = {"spectrum": spectrum[::-1].copy()}  # the whole spectrum, descending
    result = finish_result("exact", operator, values, vectors, start, timer, None, extra)
    if residual_pairs:  # from the dense matrix: no further products needed
        count = min(residual_pairs, k)
        m = matrix.numpy()
        result.residuals = np.linalg.norm(m @ vectors[:, :count] - vectors[:, :count] * values[:count], axis=0)
    return result


def solve(operator: LinearOperator, spec: Any, step: int, progress: Any = None) -> EigenResult:
    """The registry's kernel of ``exact``: :func:`exact` with the settings of an ``ExactSpec``
    (``k``, products in blocks of ``block_size``, ``residual_pairs`` residuals from the matrix)."""
    return exact(operator, spec.k, block=spec.block_size, residual_pairs=spec.residual_pairs, progress=progress)
