"""Top-k eigensolvers for symmetric operators given by (batched) products, behind one interface.

Every solver returns an ``EigenResult``: eigenvalues sorted by descending |lambda| (negative
curvature counts as "top"), eigenvectors as columns, and diagnostics (products used, wall time
per phase, residual norms ||H u - lambda u|| of the leading pairs).

- ``exact``: the dense matrix from batched products with identity blocks, float64 ``eigh``.
- ``seigh``: the sketched eigendecomposition of the TMLR paper (Algorithm 2; Tropp et al. 2019):
  t inner measurements of which the first s double as the outer sketch; measurement is
  addressable by index range (``seigh_measure``) so shards merge bitwise (``seigh_merge``).
- ``eigsh``: scipy's ARPACK (implicitly restarted Lanczos, which='LM') on the same operator.
- ``block_krylov``: randomized block Krylov (block Lanczos with full reorthogonalization) under a
  fixed product budget, then Rayleigh-Ritz on all products (Musco & Musco 2015; Tropp 2023).

Every solver takes a ``hessmask.operators.LinearOperator`` (``dim``, ``dtype``, ``device``,
``num_products``, ``matmat``, ``to_scipy``): a ``hessmask.curvature.CurvatureOperator`` or, for
tests and references, a dense ``MatrixOperator``.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch

from hessmask.curvature import check_symmetric, dense_matrix
from hessmask.operators import LinearOperator, MatrixOperator  # noqa: F401 (MatrixOperator re-exported)
from hessmask.sketch import TestMatrix
from hessmask.store import row_chunks  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

#: names of the eigensolvers (the ``method`` of an ``EigenResult``)
SOLVERS = ("exact", "seigh", "eigsh", "block_krylov")


class SolverError(ValueError):
    """Impossible sizes or an operator the solver cannot handle; the message names the setting.

    A ``ValueError`` subclass, so ``except ValueError`` catches it too. The solvers of this module raise it
    for k outside [1, D] or above the product budget, sketch sizes that do not fit D, measurement shards
    that do not tile [0, t), non-finite or all-zero Hessian-vector products, and an outer sketch that is
    zero or of numerical rank below k.

    Implements the input checks of docs/science.md, section "5. SEIGH, the sketched eigensolver".
    """


@dataclass
class EigenResult:
    """Top-k eigenpairs (descending |lambda|) and how they were obtained.

    The common return type of every solver (``exact``, ``seigh``, ``eigsh``, ``block_krylov``).

    Args:
        eigenvalues: (k,) float64 array, sorted by descending |lambda| (negative curvature counts as
            "top"); in the units of the operator (for the loss Hessian: loss per parameter squared).
        eigenvectors: (D, k) float64 array; column i is the unit eigenvector of ``eigenvalues[i]``.
        method: the solver's name, one of ``SOLVERS``.
        products: operator-vector products the solve used (>= 0); the symmetry check of ``seigh`` and
            the products of the residual norms are not counted.
        timings: wall time in seconds per named phase (e.g. ``measure``, ``eigh``, ``core``,
            ``eigenvectors``, ``residuals``).
        residuals: (count,) float64 array of ||H u_i - lambda_i u_i|| for the leading ``count`` pairs,
            or None when not measured.
        extra: solver-specific diagnostics, e.g. the whole descending spectrum (``exact``), rank,
            condition and orthogonality error of the sketch (``seigh``), convergence (``eigsh``).
    Implements docs/science.md, section "Top-k eigenbasis" (order of the eigenpairs) and section
    "SEIGH step by step" (what each solve records).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    method: str
    products: int
    timings: dict[str, float] = field(default_factory=dict)
    residuals: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of eigenpairs held.

        Returns:
            k, the length of ``eigenvalues`` (an int >= 0).
        """
        return int(self.eigenvalues.size)


class Timer:
    """Wall time per named phase.

    ``timings`` maps each phase name to its accumulated wall time in seconds (a phase entered several
    times adds up). Takes no arguments.

    Implements docs/science.md, section "SEIGH step by step" (the wall time of each phase that every
    solve records; the runtime breakdown of section "TMLR paper figures").
    """

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Context manager that adds the wall time of its body to ``timings[name]``.

        Args:
            name: the phase, e.g. ``"measure"``; repeated entries add up.
        Returns:
            a context manager yielding None; the time is recorded even when the body raises.
        """
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def check_products(products: torch.Tensor, where: str) -> None:
    """Refuse a Hessian whose products are non-finite or all zero.

    Eigenpairs of such an operator (a diverged checkpoint, NaN data) would be arbitrary vectors that no
    later stage can tell apart.

    Args:
        products: tensor of operator-vector products, any shape (typically (D, b) or the (D, D) matrix).
        where: what the products are, for the error message (e.g. ``"measurements [0, 64)"``).
    Returns:
        None.
    Raises:
        SolverError: if any entry is NaN or inf, or if every entry is zero.
    Implements a guard of docs/science.md, section "SEIGH step by step" (step 2, measurements) and of
    the exact reference (section "Settings table", "Loss and Hessian").
    """
    if not bool(torch.isfinite(products).all()):
        raise SolverError(f"non-finite Hessian-vector products in {where}: the checkpoint or the Hessian "
                          "subset holds NaN/inf (a diverged training run?)")
    if not bool((products != 0).any()):
        raise SolverError(f"all Hessian-vector products in {where} are zero: the spectrum would be all zero "
                          "and its eigenvectors arbitrary")


def _sort_top(values: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-np.abs(values), kind="stable")[:k]
    return values[order], vectors[:, order]


def _check_k(k: int, dim: int, budget: int | None = None, name: str = "k") -> None:
    if k < 1:
        raise SolverError(f"{name} must be >= 1, got {k}")
    if k > dim:
        raise SolverError(f"{name} = {k} is larger than the operator dimension D = {dim}")
    if budget is not None and k > budget:
        raise SolverError(f"{name} = {k} is larger than the product budget {budget}: at most "
                          f"{budget} eigenpairs can be recovered from {budget} products")


def residual_norms(operator: LinearOperator, values: np.ndarray, vectors: Any, count: int | None = None,
                   block: int | None = None) -> np.ndarray:
    """||H u_i - lambda_i u_i|| for the first ``count`` pairs (costs ``count`` products).

    ``vectors``: a (D, k) array or an ``ArrayRows`` (e.g. over a stored zarr array), read in
    blocks of the operator's ``block_size`` columns, so memory stays O(D x block).

    Args:
        operator: the symmetric (D, D) operator H.
        values: (k,) float64 array of the eigenvalues lambda_i, in the order of the columns of ``vectors``.
        vectors: the (D, k) eigenvectors u_i: a numpy or zarr array (any float dtype, read as float64)
            or an ``ArrayRows``.
        count: number of leading pairs (None: all k; larger values are capped at k).
        block: columns per batched product (None: the operator's ``block_size``, else all at once).
    Returns:
        (count,) float64 array of residual norms, in the units of the eigenvalues (for unit u_i).
    Raises:
        ValueError: if ``vectors`` does not have D rows (raised by the operator's ``matmat``).
    Implements docs/science.md, section "SEIGH step by step" (the residual norms of the leading pairs
    that each solve records).
    """
    count = values.size if count is None else min(count, values.size)
    source = vectors if isinstance(vectors, ArrayRows) else ArrayRows(vectors)
    out = np.zeros(count)
    step = block or getattr(operator, "block_size", count) or count
    for lo in range(0, count, max(step, 1)):
        hi = min(count, lo + step)
        cols = source.columns(lo, hi)
        block_t = torch.from_numpy(np.ascontiguousarray(cols))
        product = torch.as_tensor(operator.matmat(block_t.to(operator.dtype))).double().cpu().numpy()
        out[lo:hi] = np.linalg.norm(product - cols * values[lo:hi], axis=0)
    return out


def _finish(method: str, operator: LinearOperator, values: np.ndarray, vectors: np.ndarray, start_products: int,
            timer: Timer, residual_pairs: int | None, extra: dict | None = None) -> EigenResult:
    used = operator.num_products - start_products
    residuals = None
    if residual_pairs:
        with timer.phase("residuals"):
            residuals = residual_norms(operator, values, vectors, residual_pairs)
    return EigenResult(values, vectors, method, used, timer.timings, residuals, extra or {})


# ----------------------------------------------------------------------------- exact


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
        in the order of ascending lambda (as ``_sort_top`` orders a full eigh).
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
        values, vectors = _sort_top(spectrum, vectors, k)
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
    _check_k(k, operator.dim)
    timer, start = Timer(), operator.num_products
    with timer.phase("measure"):
        matrix = dense_matrix(operator, block=block, progress=progress)
    check_products(matrix, "the dense matrix")
    with timer.phase("eigh"):
        spectrum, values, vectors = dense_top_eigh(matrix.numpy(), k)
    extra = {"spectrum": spectrum[::-1].copy()}  # the whole spectrum, descending
    result = _finish("exact", operator, values, vectors, start, timer, None, extra)
    if residual_pairs:  # from the dense matrix: no further products needed
        count = min(residual_pairs, k)
        m = matrix.numpy()
        result.residuals = np.linalg.norm(m @ vectors[:, :count] - vectors[:, :count] * values[:count], axis=0)
    return result


# ----------------------------------------------------------------------------- seigh


@dataclass(frozen=True)
class SketchSpec:
    """The random sketch of one SEIGH run: dimension D, outer size s, inner size t, seed and kind.

    The science default is t = 2s; only t >= s is enforced.

    Args:
        dim: D, the operator dimension.
        outer: s, the outer sketch size (the most eigenpairs the sketch can recover), 1 <= s <= D.
        inner: t, the inner sketch size (the number of products), s <= t <= D.
        seed: integer seed of the two test matrices.
        kind: test matrix kind, ``sparse_sign`` (default), ``ssrft``, ``gaussian`` or ``rademacher``
            (``hessmask.sketch.KINDS``); it is validated by ``test_matrices``, not here.
    Raises:
        SolverError: if s < 1, t < s, or s or t exceeds D.
    Implements docs/science.md, section "SEIGH step by step" (the inputs and step 1).
    """

    dim: int
    outer: int
    inner: int
    seed: int
    kind: str = "sparse_sign"

    def __post_init__(self) -> None:
        if self.outer < 1:
            raise SolverError(f"outer sketch size must be >= 1, got {self.outer}")
        if self.inner < self.outer:
            raise SolverError(f"inner sketch size {self.inner} < outer size {self.outer}: the outer "
                              "sketch reuses the first inner measurements")
        if self.inner > self.dim or self.outer > self.dim:
            raise SolverError(f"sketch sizes (outer {self.outer}, inner {self.inner}) exceed D = {self.dim}")

    def test_matrices(self) -> tuple[TestMatrix, TestMatrix]:
        """The two test matrices (Psi_L, Psi_R) of the sketch, independent streams of the one seed.

        Psi_L uses the seed 2 * seed + 1 and Psi_R the seed 2 * seed + 2.

        Returns:
            (Psi_L, Psi_R), two ``hessmask.sketch.TestMatrix`` of shape (t, D) = (inner, dim).
        Raises:
            ValueError: for an unknown ``kind`` (raised by ``TestMatrix``).
        Implements docs/science.md, section "SEIGH step by step" (step 1, test matrices).
        """
        return (TestMatrix(self.kind, self.inner, self.dim, self.seed * 2 + 1),
                TestMatrix(self.kind, self.inner, self.dim, self.seed * 2 + 2))


@dataclass
class Measurements:
    """Measurements i in [start, stop) of a SEIGH sketch (Tropp et al. 2019, section 5).

    ``inner[:, j]`` = Psi_L b_i and, for the outer columns i < s, ``right[:, j]`` = Psi_R b_i,
    both float64; ``outer[:, j]`` = b_i = H psi_R_i in the operator's dtype, or None where the
    columns went to a sink (a row-chunked store) as they were measured. Here j = i - start.

    Args:
        start: first measurement index i, 0 <= start <= stop.
        stop: one past the last measurement index, <= t.
        inner: (t, stop - start) float64 array, columns start..stop-1 of the inner sketch
            Z = Psi_L H Psi_R^T.
        right: (t, m) float64 array, Psi_R b_i for the m = ``outer_columns(spec, start, stop)``
            indices i < s of the range.
        outer: (D, m) array in the operator's dtype, the outer sketch columns Y[:, i] = b_i, or None.
        products: operator-vector products taken, stop - start.
        seconds: wall time of the measurement, in seconds.
    Implements docs/science.md, section "SEIGH step by step" (step 2, measurements) and section
    "At paper scale" (step 1, measurement shards).
    """

    start: int
    stop: int
    inner: np.ndarray  # (t, stop - start), float64
    right: np.ndarray  # (t, outer columns of the range), float64
    outer: np.ndarray | None  # (D, outer columns of the range), operator dtype
    products: int
    seconds: float

    @property
    def outer_stop(self) -> int:
        """One past the last outer column of the range.

        Returns:
            start + m, m the number of outer-sketch columns (i < s) in [start, stop); equal to
            ``start`` when the range holds none.
        """
        return self.start + self.right.shape[1]


def outer_columns(spec: SketchSpec, start: int, stop: int) -> int:
    """How many of the measurements [start, stop) are also outer-sketch columns (i < s).

    Args:
        spec: the sketch; s = ``spec.outer``.
        start: first measurement index, >= 0.
        stop: one past the last measurement index, >= start.
    Returns:
        m = max(0, min(stop, s) - start), an int.
    Implements docs/science.md, section "SEIGH step by step" (step 2: the first s measurements double
    as the outer sketch).
    """
    return max(0, min(stop, spec.outer) - start)


def seigh_measure(operator: LinearOperator, spec: SketchSpec, start: int, stop: int, block: int = 64,
                  outer_sink: Callable[[int, np.ndarray], None] | None = None,
                  progress: Any = None) -> Measurements:
    """Measurements ``start..stop-1`` of a SEIGH sketch.

    b_i = H psi_R_i (one product; psi_R_i is row i of Psi_R), Z[:, i] = Psi_L b_i; for i < s also
    Y[:, i] = b_i and Psi_R b_i (the projection the solve needs, so that it never applies a
    D-sized transform to the D x s outer sketch). Both projections are taken in float64 from the
    measured columns, so Psi_L Y is exactly Z[:, :s].

    Products are taken in blocks aligned to multiples of ``block`` (absolute indices), so any
    split of [0, t) into ranges on block boundaries gives bitwise the same columns. With
    ``outer_sink(column, values)`` the outer columns are handed over block by block (``values`` is
    D x m) and not kept: memory is O(D x block + t x (stop - start)).

    Args:
        operator: the symmetric (D, D) operator H, with D = ``spec.dim``.
        spec: the sketch (sizes, seed, kind) the measurements belong to.
        start: first measurement index, a multiple of ``block``, 0 <= start <= stop.
        stop: one past the last measurement index, <= t = ``spec.inner``.
        block: products per batched call (>= 1), also the alignment of shards.
        outer_sink: optional ``outer_sink(column, values)``: ``column`` is the absolute index of the
            first outer column handed over, ``values`` a (D, m) array in the operator's dtype.
        progress: optional callable receiving the number of products of each block.
    Returns:
        ``Measurements`` with inner (t, stop - start) float64, right (t, m) float64 and outer (D, m) in
        the operator's dtype (None with a sink), m = ``outer_columns(spec, start, stop)``.
    Raises:
        SolverError: if [start, stop) is not inside [0, t), if start is not a multiple of ``block``, or
            if a block of products is non-finite or all zero.
        ValueError: for an unknown test-matrix kind, or an operator whose D differs from ``spec.dim``.
    Implements docs/science.md, section "SEIGH step by step" (step 2, measurements) and section
    "At paper scale" (step 1, measurement shards); TMLR paper, Algorithm 2.
    """
    if not 0 <= start <= stop <= spec.inner:
        raise SolverError(f"measurement range [{start}, {stop}) outside [0, {spec.inner})")
    if start % block:
        raise SolverError(f"a shard must start on a block boundary: start {start} is not a multiple of {block}")
    psi_left, psi_right = spec.test_matrices()
    t0, used0 = time.perf_counter(), operator.num_products
    n_outer = outer_columns(spec, start, stop)
    inner = np.empty((spec.inner, stop - start))
    right = np.empty((spec.inner, n_outer))
    outer = None
    if outer_sink is None:
        outer = np.empty((spec.dim, n_outer), dtype=torch.empty(0, dtype=operator.dtype).numpy().dtype)
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        rows = psi_right.rows_block(lo, hi, dtype=operator.dtype, device=operator.device)
        measured = torch.as_tensor(operator.matmat(rows.T))
        check_products(measured, f"measurements [{lo}, {hi})")
        # projections in float64 from the measured columns: Psi_L Y is then exactly Z[:, :s]
        measured64 = measured.double()
        inner[:, lo - start: hi - start] = psi_left.apply(measured64).cpu().numpy()
        if lo < spec.outer:
            keep = min(hi, spec.outer) - lo
            right[:, lo - start: lo - start + keep] = psi_right.apply(measured64[:, :keep]).cpu().numpy()
            columns = measured[:, :keep].cpu().numpy()
            if outer_sink is None:
                outer[:, lo - start: lo - start + keep] = columns
            else:
                outer_sink(lo, columns)
        if progress is not None:
            progress(hi - lo)
    return Measurements(start, stop, inner, right, outer, operator.num_products - used0, time.perf_counter() - t0)


def seigh_merge(parts: Sequence[Measurements], spec: SketchSpec,
                names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate shards (any order) into (Z: t x t, Psi_R Y: t x s); checks they tile [0, t).

    Args:
        parts: the shards' ``Measurements`` in any order; together they must tile [0, t).
        spec: the sketch they belong to.
        names: optional, what to call each part in the error (e.g. its store), one per part.
    Returns:
        (Z, Psi_R Y): the (t, t) float64 inner sketch and the (t, s) float64 projection Psi_R Y, columns
        in measurement order.
    Raises:
        SolverError: if the parts leave a gap, overlap, or do not end at t.
    Implements docs/science.md, section "SEIGH step by step" (step 2: shards are merged afterwards).
    """
    parts = [parts[i] for i in tiling_order(parts, spec, names)]
    inner = np.concatenate([p.inner for p in parts], axis=1)
    right = np.concatenate([p.right for p in parts if p.right.shape[1]], axis=1)
    return inner, right


def tiling_order(parts: Sequence[Any], spec: SketchSpec, names: Sequence[str] | None = None) -> list[int]:
    """The order of measurement ranges (anything with ``start``/``stop``) by start, after checking
    that they tile [0, t).

    Args:
        parts: measurement ranges, anything with int ``start`` and ``stop`` attributes (``Measurements``
            or the metadata of stored shards).
        spec: the sketch; t = ``spec.inner``.
        names: optional names of the parts for the error message, one per part.
    Returns:
        list of indices into ``parts``, sorted by ``start``.
    Raises:
        SolverError: on a gap or an overlap between consecutive ranges, or when the last does not end at t.
    Implements docs/science.md, section "SEIGH step by step" (step 2: any split into shards).
    """
    order = sorted(range(len(parts)), key=lambda i: parts[i].start)
    position = 0
    for i in order:
        if parts[i].start != position:
            where = f" (at {names[i]})" if names else ""
            raise SolverError(f"measurement shards do not tile [0, {spec.inner}): gap or overlap at {position}{where}")
        position = parts[i].stop
    if position != spec.inner:
        raise SolverError(f"measurement shards end at {position}, expected {spec.inner}: a shard is missing")
    return order


class RowSource(Protocol):
    """The outer sketch Y (D x s) read in row chunks, so that no job holds all of it.

    A structural protocol: anything with ``dim``, ``width`` and ``read``, e.g. ``ArrayRows`` over an
    in-memory or a zarr array.

    Attributes:
        dim: the number of rows D.
        width: the number of columns (s for the outer sketch, k for eigenvectors).
    Implements docs/science.md, section "At paper scale" (Y is read in row chunks).
    """

    dim: int
    width: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 of Y as a float64 (stop - start, width) array.

        Args:
            start: first row, 0 <= start <= stop.
            stop: one past the last row, <= dim.
        Returns:
            (stop - start, width) float64 array.
        """


class ArrayRows:
    """A (D, k) matrix behind the ``RowSource`` interface, read in row or column blocks: an
    in-memory array, or a zarr array of a store (then only the blocks read are loaded).

    Args:
        array: a 2-D array of shape (D, k) and any float dtype that supports numpy slicing (numpy or
            zarr array); not copied.
    Raises:
        ValueError: if ``array`` is not 2-D.
    Implements docs/science.md, section "At paper scale" (stores read in row chunks).
    """

    def __init__(self, array: Any):
        self.array = array
        self.dim, self.width = (int(n) for n in array.shape)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as float64.

        Args:
            start: first row, 0 <= start <= stop.
            stop: one past the last row (a stop past D is truncated, as numpy slicing does).
        Returns:
            (stop - start, k) float64 array.
        """
        return np.asarray(self.array[start:stop], dtype=np.float64)

    def columns(self, start: int, stop: int) -> np.ndarray:
        """Columns start..stop-1 as float64.

        Args:
            start: first column, 0 <= start <= stop.
            stop: one past the last column (a stop past k is truncated, as numpy slicing does).
        Returns:
            (D, stop - start) float64 array.
        """
        return np.asarray(self.array[:, start:stop], dtype=np.float64)


def _least_squares(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """argmin_X ||a X - b|| for a tall full-rank ``a`` via Householder QR.

    Used instead of ``torch.linalg.lstsq``, whose CPU driver is not bitwise reproducible between
    calls on the same inputs.
    """
    q, r = torch.linalg.qr(a)
    return torch.linalg.solve_triangular(r, q.T @ b, upper=True)


#: relative singular value of the outer sketch below which a direction counts as numerically absent
RANK_TOLERANCE = 1e-12
#: condition number of the kept outer sketch above which the orthogonalization takes a second pass
REORTHOGONALIZE_ABOVE = 1e4


@dataclass
class SeighSolution:
    """What the streaming SEIGH solve found: eigenvalues (descending |lambda|) and the s x k
    coefficients C with eigenvectors U = Y C, plus the numerical diagnostics of the solve.

    Args:
        eigenvalues: (k,) float64 array, sorted by descending |lambda|.
        coefficients: (s, k) float64 array C = W V_k, so that the eigenvectors are U = Y C.
        rank: the numerical rank r of the outer sketch Y (singular values above ``RANK_TOLERANCE`` of
            the largest), 1 <= r <= s.
        condition: the condition number S_1 / S_r of the kept part of Y (>= 1).
        reorthogonalized: whether the Cholesky-QR2 second pass ran (condition > ``REORTHOGONALIZE_ABOVE``).
        orthogonality_error: max |U^T U - I| measured while writing U (NaN when not measured).
        vectors: (D, k) float64 eigenvectors, or None when they went to a sink.
    Implements docs/science.md, section "At paper scale" (steps 2 to 4).
    """

    eigenvalues: np.ndarray
    coefficients: np.ndarray
    rank: int
    condition: float
    reorthogonalized: bool
    orthogonality_error: float = float("nan")
    vectors: np.ndarray | None = None


def _rows(outer: RowSource, lo: int, hi: int, device: torch.device | str) -> torch.Tensor:
    """Rows lo..hi-1 of Y as float64 on the solve's device."""
    return torch.from_numpy(outer.read(lo, hi)).to(device)


def _stream_gram(outer: RowSource, transform: torch.Tensor, row_chunk: int) -> torch.Tensor:
    """(Y W)^T (Y W) accumulated over row chunks."""
    gram = torch.zeros((transform.shape[1],) * 2, dtype=torch.float64, device=transform.device)
    for lo, hi in row_chunks(outer.dim, row_chunk):
        part = _rows(outer, lo, hi, transform.device) @ transform
        gram += part.T @ part
    return gram


def orthogonalizer(outer: RowSource, row_chunk: int, timer: Timer | None = None,
                   device: torch.device | str = "cpu", floor: float = 0.0) -> tuple[torch.Tensor, dict]:
    """W (s x r) such that Q = Y W has orthonormal columns spanning the numerical range of Y.

    Pass 1 is a sequential TSQR over row chunks (R <- R factor of [R; Y_c]; Demmel et al. 2012):
    Householder QR of small blocks is backward stable, so R is accurate whatever the condition of
    Y. The SVD R = U S V^T then gives the numerical rank r (S_i > RANK_TOLERANCE S_1: an exactly
    low-rank operator, or a sketch larger than its rank, drops its null directions) and
    W = V_r S_r^-1. Q = Y W loses orthogonality like eps * cond(Y_r); above REORTHOGONALIZE_ABOVE
    a second pass computes G = (Y W)^T (Y W) = L L^T and sets W <- W L^-T (Cholesky-QR2 from a
    stable start). Memory O(c s + s^2); the chunks are read once or twice and moved to ``device``.

    Args:
        outer: the outer sketch Y, (D, s), as a ``RowSource``.
        row_chunk: c, rows of Y per chunk, >= 1.
        timer: optional ``Timer``; the time goes to the phase ``orthogonalize``.
        device: torch device of the chunk arithmetic (cpu or cuda).
        floor: singular values at or below it count as absent too (an absolute scale, e.g. the
            rounding level of a block from which known directions were projected out).
    Returns:
        (W, info): W an (s, r) float64 tensor on ``device``; info a dict with ``rank`` (int r),
        ``condition`` (float S_1 / S_r) and ``reorthogonalized`` (bool).
    Raises:
        SolverError: if Y is zero (or its largest singular value is not a positive number).
        ValueError: if row_chunk < 1 (``row_chunks``).
        torch.linalg.LinAlgError: if the Cholesky factorization of the second pass fails.
    Implements docs/science.md, section "At paper scale" (step 2, orthogonalization without a D x s
    block), which performs step 3 of section "SEIGH step by step" (Q = orth(Y)).
    """
    timer = timer or Timer()
    with timer.phase("orthogonalize"):
        r_factor = torch.zeros((0, outer.width), dtype=torch.float64, device=device)
        for lo, hi in row_chunks(outer.dim, row_chunk):
            stacked = torch.cat([r_factor, _rows(outer, lo, hi, device)])
            r_factor = torch.linalg.qr(stacked, mode="r")[1][: outer.width]
        _, sing, vh = torch.linalg.svd(r_factor)
        if not float(sing[0]) > floor:
            raise SolverError("the outer sketch is zero: the operator vanishes on every test vector")
        rank = int(((sing > RANK_TOLERANCE * sing[0]) & (sing > floor)).sum())
        transform = vh[:rank].T / sing[:rank]
        condition = float(sing[0] / sing[rank - 1])
        reorthogonalize = condition > REORTHOGONALIZE_ABOVE
        if reorthogonalize:
            chol = torch.linalg.cholesky(_stream_gram(outer, transform, row_chunk))
            transform = torch.linalg.solve_triangular(chol, transform.T, upper=False).T
    return transform, {"rank": rank, "condition": condition, "reorthogonalized": reorthogonalize}


def seigh_recover(outer: RowSource | np.ndarray, inner: np.ndarray, right: np.ndarray, spec: SketchSpec,
                  k: int | None,
                  row_chunk: int = 65536, sink: Callable[[int, np.ndarray], None] | None = None,
                  timer: Timer | None = None, device: torch.device | str = "cpu") -> SeighSolution:
    """Top-k eigenpairs from the sketches (Tropp et al. 2019 Alg. 7; TMLR paper Algorithm 2,
    steps 3-5), streaming over row chunks of the outer sketch.

    Args:
        outer: Y = H Psi_R[:s]^T (D x s), as a ``RowSource`` (or an array).
        inner: Z = Psi_L H Psi_R^T (t x t); its first s columns are Psi_L Y.
        right: Psi_R Y (t x s).
        spec: the sketch the measurements belong to.
        k: eigenpairs to return (<= the numerical rank of Y); None: all the sketch resolves,
            min(s, rank).
        row_chunk: rows of Y (and of the eigenvectors) per chunk; memory O(row_chunk x s).
        sink: ``sink(row, block)`` receives the eigenvectors in row chunks (float64, c x k);
            without it they are returned in ``vectors`` (D x k).
        timer: optional ``Timer``; phases ``orthogonalize``, ``core`` and ``eigenvectors``.
        device: where the chunks are processed (cpu or cuda; the results come back to the CPU).

    With Q = Y W orthonormal (``orthogonalizer``), Psi_L Q = Z[:, :s] W and Psi_R Q = (Psi_R Y) W
    are small; the core C = (Psi_L Q)^+ Z (Psi_R Q)^+T (two QR least-squares solves) gives
    eigh(C) = V Lambda V^T and the eigenvectors Q V = Y (W V), written chunk by chunk. The last
    pass also accumulates U^T U, whose largest deviation from I is ``orthogonality_error``.

    Returns:
        ``SeighSolution`` with eigenvalues (k,) float64 by descending |lambda|, coefficients (s, k)
        float64, the rank, condition and orthogonality diagnostics, and vectors (D, k) float64 (None
        with a sink).
    Raises:
        SolverError: if k is outside [1, D] or exceeds s or the numerical rank of Y, if the shapes of
            Y, Z or Psi_R Y do not match ``spec``, or if Y is zero.
        ValueError: if row_chunk < 1 (``row_chunks``).
    Implements docs/science.md, section "SEIGH step by step" (steps 3 to 5) and section "At paper
    scale" (steps 2 to 4).
    """
    if k is not None:
        _check_k(k, spec.dim, spec.outer, name="k")
    outer = ArrayRows(outer) if isinstance(outer, np.ndarray) else outer
    if (outer.dim, outer.width) != (spec.dim, spec.outer) or inner.shape != (spec.inner, spec.inner) \
            or right.shape != (spec.inner, spec.outer):
        raise SolverError(f"sketch shapes Y {(outer.dim, outer.width)}, Z {inner.shape}, Psi_R Y {right.shape} "
                          f"do not match the sketch (D = {spec.dim}, s = {spec.outer}, t = {spec.inner})")
    timer = timer or Timer()
    transform, info = orthogonalizer(outer, row_chunk, timer, device)
    k = info["rank"] if k is None else k
    if k > info["rank"]:
        raise SolverError(f"k = {k} exceeds the numerical rank {info['rank']} of the outer sketch "
                          f"(the operator has fewer than k directions above {RANK_TOLERANCE:.0e} of its largest)")
    with timer.phase("core"):
        z = torch.from_numpy(np.ascontiguousarray(inner, dtype=np.float64)).to(device)
        # core = (Psi_L Q)^+ Z (Psi_R Q)^+T by two QR least-squares solves (equal to the
        # oversampled recovery's route through the SVD of Z, without its O(t^3) SVD)
        left = _least_squares(z[:, : spec.outer] @ transform, z)  # (r, t)
        right_q = torch.from_numpy(np.ascontiguousarray(right, dtype=np.float64)).to(device) @ transform
        core = _least_squares(right_q, left.T).T  # (r, r)
        core = (core + core.T) / 2
        values, vectors = torch.linalg.eigh(core)
        values = values.cpu()
        order = np.argsort(-np.abs(values.numpy()), kind="stable")[:k]
        coefficients = transform @ vectors[:, torch.from_numpy(order).to(vectors.device)]  # (s, k)
    collected = [] if sink is None else None
    with timer.phase("eigenvectors"):
        gram = torch.zeros((k, k), dtype=torch.float64, device=coefficients.device)
        for lo, hi in row_chunks(outer.dim, row_chunk):
            block = _rows(outer, lo, hi, device) @ coefficients
            gram += block.T @ block
            if sink is None:
                collected.append(block.cpu().numpy())
            else:
                sink(lo, block.cpu().numpy())
    gram = gram.cpu()
    return SeighSolution(values.numpy()[order], coefficients.cpu().numpy(), info["rank"], info["condition"],
                         info["reorthogonalized"], float((gram - torch.eye(k, dtype=torch.float64)).abs().max()),
                         None if sink is not None else np.concatenate(collected))


def seigh(operator: LinearOperator, k: int, outer: int, inner: int | None = None, seed: int = 0,
          kind: str = "sparse_sign", block: int = 64, residual_pairs: int | None = None,
          check_symmetry: bool = True, row_chunk: int = 65536, progress: Any = None) -> EigenResult:
    """SEIGH in one process: measure all t columns, then recover the top-k eigenpairs
    (TMLR paper, Algorithm 2; Tropp et al. 2019; docs/science.md, section "5. SEIGH, the sketched
    eigensolver").

    Args:
        operator: the symmetric D x D operator.
        k: eigenpairs returned (<= outer), by descending |lambda|.
        outer: outer sketch size s (products whose columns span the recovered subspace).
        inner: inner sketch size t >= s (default 2 s); t products in all.
        seed: seed of the two test matrices.
        kind: test matrix kind (``hessmask.sketch.KINDS``), default ``sparse_sign``.
        block: products per batched call; measurements align to multiples of it.
        residual_pairs: leading pairs whose residual norm is measured (that many more products).
        check_symmetry: first check symmetry on random vectors (4 products, not counted).
        row_chunk: rows per chunk of the streaming recovery.
        progress: optional callable receiving the number of products of each block.

    Returns:
        ``EigenResult`` with eigenvalues (k,), eigenvectors (D, k) (float64) and, in ``extra``, the rank
        and condition of the outer sketch and the measured orthogonality error of the eigenvectors.
    Raises:
        SolverError: if k is outside [1, D] or exceeds ``outer`` or the numerical rank of the sketch, if
            the sketch sizes do not fit D (note that the default t = 2s must itself be <= D), or if the
            products are non-finite or all zero.
        ValueError: if ``check_symmetry`` finds the operator not symmetric (``check_symmetric``), or for
            an unknown ``kind``.
    Implements docs/science.md, section "SEIGH step by step" (steps 1 to 5); TMLR paper, Algorithm 2.
    """
    inner = 2 * outer if inner is None else inner
    spec = SketchSpec(operator.dim, outer, inner, seed, kind)
    _check_k(k, operator.dim, outer)
    timer = Timer()
    if check_symmetry:  # its 4 products are not counted against the sketch
        with timer.phase("symmetry_check"):
            check_symmetric(operator, operator.dim, seed=seed)
    start = operator.num_products
    with timer.phase("measure"):
        part = seigh_measure(operator, spec, 0, inner, block=block, progress=progress)
    solution = seigh_recover(part.outer, *seigh_merge([part], spec), spec, k, row_chunk=row_chunk, timer=timer)
    return _finish("seigh", operator, solution.eigenvalues, solution.vectors, start, timer, residual_pairs,
                   {"outer": outer, "inner": inner, "kind": kind, "rank": solution.rank,
                    "condition": solution.condition, "orthogonality_error": solution.orthogonality_error})


# ----------------------------------------------------------------------------- a posteriori


def aposteriori_error(operator: LinearOperator, values: np.ndarray, vectors: Any, samples: int, seed: int,
                      row_chunk: int = 65536) -> dict[str, float]:
    """Estimate ||H - U diag(lambda) U^T||_F from ``samples`` Gaussian products (TYUC 2019, §6).

    err_est^2 = (1/q) sum_i ||(H - H_hat) w_i||^2 with w_i ~ N(0, I) is unbiased for the squared
    Frobenius error. ``vectors`` is a (D, k) array or a ``RowSource``: one pass over its row
    chunks accumulates A = U^T W, B = U^T H W and G = U^T U, and
    ||HW - U L A||^2 = ||HW||^2 - 2 <L A, B> + <L A, G L A>, so no D x k block is held.
    Returns the estimate, the estimated ||H||_F, and the relative error. Costs q = ``samples`` products.

    Args:
        operator: the symmetric (D, D) operator H.
        values: (k,) eigenvalues lambda of the approximation, in the order of the columns of ``vectors``.
        vectors: the (D, k) eigenvectors U, a numpy array or a ``RowSource`` (e.g. an eigen store),
            with D = ``operator.dim`` rows.
        samples: q, the number of Gaussian test vectors w_i, >= 1.
        seed: seed of the test vectors.
        row_chunk: rows of U per chunk, >= 1.
    Returns:
        dict with ``frobenius_error`` (the estimate of ||H - U diag(lambda) U^T||_F), ``frobenius_norm``
        (the estimate of ||H||_F), ``relative_error`` (their ratio, NaN when the norm estimate is 0)
        and ``samples`` (q).
    Raises:
        SolverError: if samples < 1.
        ValueError: if row_chunk < 1 (``row_chunks``).
    Implements docs/science.md, section "A-posteriori error estimate"; Tropp et al. 2019, section 6.
    """
    if samples < 1:
        raise SolverError(f"the a-posteriori estimate needs >= 1 test product, got {samples}")
    source = ArrayRows(vectors) if isinstance(vectors, np.ndarray) else vectors
    gen = torch.Generator().manual_seed(int(seed) + 0xA905)
    omega = torch.randn((operator.dim, samples), generator=gen, dtype=torch.float64)
    measured = torch.as_tensor(operator.matmat(omega.to(operator.dtype))).double().cpu()
    k = source.width
    proj_w = torch.zeros((k, samples), dtype=torch.float64)
    proj_hw = torch.zeros((k, samples), dtype=torch.float64)
    gram = torch.zeros((k, k), dtype=torch.float64)
    for lo, hi in row_chunks(operator.dim, row_chunk):
        u = torch.from_numpy(source.read(lo, hi))
        proj_w += u.T @ omega[lo:hi]
        proj_hw += u.T @ measured[lo:hi]
        gram += u.T @ u
    scaled = torch.from_numpy(np.asarray(values, dtype=np.float64))[:, None] * proj_w
    norm2_total = float((measured ** 2).sum())
    err2_total = norm2_total - 2 * float((scaled * proj_hw).sum()) + float((scaled * (gram @ scaled)).sum())
    err2, norm2 = max(err2_total, 0.0) / samples, norm2_total / samples
    return {"frobenius_error": math.sqrt(err2), "frobenius_norm": math.sqrt(norm2),
            "relative_error": math.sqrt(err2 / norm2) if norm2 else float("nan"), "samples": samples}


def aposteriori_bounds(samples: int, relative: float) -> dict[str, float]:
    """Failure probabilities of the squared-error estimate with q Gaussian samples (TYUC 2019, §6.4).

    P{est^2 <= (1 - eps) err^2} <= [e^eps (1 - eps)]^(q/2) and
    P{est^2 >= (1 + eps) err^2} <= [e^-eps (1 + eps)]^(q/2).

    Args:
        samples: q, the number of Gaussian test products of the estimate, >= 1.
        relative: eps, the relative deviation of the squared estimate, in (0, 1).
    Returns:
        dict with ``p_below`` (bound on the probability of an estimate too low by the factor 1 - eps)
        and ``p_above`` (too high by 1 + eps), floats in (0, 1).
    Raises:
        ValueError: if samples < 1 or relative is not in (0, 1).
    Implements docs/science.md, section "A-posteriori error estimate".
    """
    if samples < 1 or not 0 < relative < 1:
        raise ValueError("samples must be >= 1 and the relative deviation in (0, 1)")
    half = samples / 2
    return {"p_below": (math.exp(relative) * (1 - relative)) ** half,
            "p_above": (math.exp(-relative) * (1 + relative)) ** half}


# ----------------------------------------------------------------------------- eigsh


def eigsh(operator: LinearOperator, k: int, tol: float = 1e-6, maxiter: int | None = None,
          residual_pairs: int | None = None, seed: int = 0, ncv: int | None = None) -> EigenResult:
    """scipy's ARPACK (implicitly restarted Lanczos, ``which='LM'``) on the operator in float64.

    Args:
        operator: the symmetric D x D operator (products one vector at a time, all counted).
        k: eigenpairs (< D) by descending |lambda|.
        tol: ARPACK's relative accuracy of the Ritz values.
        maxiter: ARPACK's restart limit (None: its default); non-convergence is recorded in
            ``extra["converged"]``, not raised.
        residual_pairs: leading pairs whose residual norm is measured.
        seed: seed of the starting vector.
        ncv: Lanczos vectors kept (None: ARPACK's default).

    Returns:
        ``EigenResult`` with eigenvalues (k,) and eigenvectors (D, k), float64, by descending |lambda|;
        ``extra`` holds ``tol`` and ``converged``. Without convergence only the pairs ARPACK
        converged are returned, possibly fewer than k.
    Raises:
        SolverError: if k < 1 or k >= D.
    Implements docs/science.md, section "Sketching versus Krylov methods" (ARPACK's implicitly
    restarted Lanczos).
    """
    from scipy.sparse.linalg import ArpackNoConvergence
    from scipy.sparse.linalg import eigsh as arpack

    _check_k(k, operator.dim - 1, name="k (ARPACK needs k < D)")
    timer, start = Timer(), operator.num_products
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(operator.dim)
    with timer.phase("lanczos"):
        try:
            values, vectors = arpack(operator.to_scipy(),
                                     k=k, which="LM", tol=tol, v0=v0, ncv=ncv, maxiter=maxiter)
            converged = True
        except ArpackNoConvergence as err:
            values, vectors, converged = err.eigenvalues, err.eigenvectors, False
    values, vectors = _sort_top(values, vectors, k)
    return _finish("eigsh", operator, values, vectors, start, timer, residual_pairs,
                   {"tol": tol, "converged": converged})


# ----------------------------------------------------------------------------- block krylov


def block_krylov(operator: LinearOperator, k: int, budget: int, block_size: int | None = None, seed: int = 0,
                 residual_pairs: int | None = None, progress: Any = None) -> EigenResult:
    """Randomized block Krylov under a fixed product budget.

    Blocks Q_0 (random, orthonormal), Q_{j+1} = orth((I - P) H Q_j) with full reorthogonalization
    against all previous blocks; every product H Q_j is kept, so the Rayleigh-Ritz matrix
    Q^T H Q over the whole Krylov space (dimension <= budget) needs no further products. The
    block count is budget // block_size; by default block_size = max(1, budget // 8) (k does not enter
    the default). Directions of a block whose |R_jj| (unpivoted QR) is at most 1e-10 max(1, max_j |R_jj|)
    are dropped; the iteration stops early when nothing new remains.

    Args:
        operator: the symmetric (D, D) operator H.
        k: eigenpairs returned, by descending |lambda|; 1 <= k <= D and k <= the budget actually used
            ((budget // block_size) * block_size).
        budget: the most operator-vector products to take.
        block_size: columns per Krylov block, 1 <= block_size <= D (None: the default above).
        seed: seed of the random starting block.
        residual_pairs: leading pairs whose residual norm is measured (that many more products).
        progress: optional callable receiving the number of products of each block.
    Returns:
        ``EigenResult`` with eigenvalues (k,) and eigenvectors (D, k), float64; ``extra`` holds
        ``block_size`` and ``blocks`` (the blocks taken).
    Raises:
        SolverError: if k is outside [1, D] or above the usable budget (also when block_size > budget,
            which leaves no block), if block_size > D, or if the Krylov space ends up smaller than k.
    Implements docs/science.md, section "Sketching versus Krylov methods" (randomized block Krylov;
    Musco & Musco 2015).
    """
    block_size = block_size or max(1, budget // 8)
    blocks = budget // block_size
    _check_k(k, operator.dim, blocks * block_size, name="k")
    if block_size > operator.dim:
        raise SolverError(f"block size {block_size} exceeds D = {operator.dim}")
    timer, start = Timer(), operator.num_products
    gen = torch.Generator().manual_seed(int(seed))
    basis: list[torch.Tensor] = []
    images: list[torch.Tensor] = []
    current = torch.randn((operator.dim, block_size), generator=gen, dtype=torch.float64)
    for _ in range(blocks):
        with timer.phase("orthogonalize"):
            if basis:
                stacked = torch.cat(basis, dim=1)
                for _ in range(2):  # twice is enough (Giraud et al. 2005)
                    current = current - stacked @ (stacked.T @ current)
            q, r = torch.linalg.qr(current)
            keep = torch.abs(torch.diagonal(r)) > 1e-10 * max(1.0, float(torch.abs(torch.diagonal(r)).max()))
            q = q[:, keep]
            if q.shape[1] == 0:
                break  # the Krylov space is invariant: nothing new to add
        with timer.phase("measure"):
            image = torch.as_tensor(operator.matmat(q.to(operator.dtype))).double().cpu()
        basis.append(q)
        images.append(image)
        current = image
        if progress is not None:
            progress(q.shape[1])
    with timer.phase("rayleigh_ritz"):
        q_all = torch.cat(basis, dim=1)
        h_all = torch.cat(images, dim=1)
        projected = q_all.T @ h_all
        projected = (projected + projected.T) / 2
        values, vectors = torch.linalg.eigh(projected)
        vectors = q_all @ vectors
    if q_all.shape[1] < k:
        raise SolverError(f"the Krylov space has dimension {q_all.shape[1]} < k = {k} (operator rank too low)")
    values, vectors = _sort_top(values.numpy(), vectors.numpy(), k)
    return _finish("block_krylov", operator, values, vectors, start, timer, residual_pairs,
                   {"block_size": block_size, "blocks": len(basis)})


# ----------------------------------------------------------------------------- block Krylov in passes


#: relative size (to ||H Q_j||_F) below which a direction of the orthogonalized remainder is dropped
KRYLOV_DROP = 1e-10
#: rows of the random start block drawn per generator stream (fixed, so that the start block does
#: not depend on the row chunk of the jobs)
KRYLOV_START_TILE = 4096


@dataclass(frozen=True)
class KrylovSpec:
    """A block Krylov solve run as passes of jobs: ``budget`` products in ``passes`` blocks.

    Pass j measures H Q_j for an orthonormal D x b block Q_j (b = budget // passes); a small job
    then orthogonalizes H Q_j against Q_0..Q_j (two rounds of block Gram-Schmidt, then a TSQR of
    the remainder) into Q_{j+1}. After the last pass, the Rayleigh-Ritz matrix
    T = [Q_0 .. Q_{p-1}]^T [H Q_0 .. H Q_{p-1}] gives the eigenpairs; no product is spent twice.

    Args:
        dim: D.
        budget: products in all passes, >= passes.
        passes: p, the number of Krylov blocks, >= 1.
        seed: seed of the Gaussian start block.
    Raises:
        SolverError: if the budget leaves less than one product per pass, or b > D.
    Implements docs/science.md, section "Sketching versus Krylov methods" (randomized block Krylov,
    Musco & Musco 2015), run as the DAG runs SEIGH (section "At paper scale").
    """

    dim: int
    budget: int
    passes: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.passes < 1 or self.budget < self.passes:
            raise SolverError(f"a block Krylov budget of {self.budget} products cannot fill {self.passes} passes")
        if self.block > self.dim:
            raise SolverError(f"block Krylov block of {self.block} columns exceeds D = {self.dim}")

    @property
    def block(self) -> int:
        """b, the columns of each Krylov block (budget // passes)."""
        return self.budget // self.passes

    def start_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 of the Gaussian start block (before orthonormalization), float64
        (stop - start, b); each tile of ``KRYLOV_START_TILE`` rows has its own stream (seed, tile)."""
        out = np.empty((stop - start, self.block))
        for tile in range(start // KRYLOV_START_TILE, -(-stop // KRYLOV_START_TILE)):
            lo = tile * KRYLOV_START_TILE
            rows = np.random.default_rng([self.seed, 0xB10C, tile]).standard_normal((KRYLOV_START_TILE, self.block))
            a, b = max(start, lo), min(stop, lo + KRYLOV_START_TILE)
            out[a - start: b - start] = rows[a - lo: b - lo]
        return out


class StartRows:
    """The Gaussian start block of a ``KrylovSpec`` as a ``RowSource``."""

    def __init__(self, spec: KrylovSpec):
        self.spec, self.dim, self.width = spec, spec.dim, spec.block

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.spec.start_rows(start, stop)


class StackedRows:
    """Several ``RowSource`` of the same D side by side, as one (D, sum of widths) ``RowSource``."""

    def __init__(self, sources: Sequence[RowSource]):
        if not sources or len({s.dim for s in sources}) != 1:
            raise SolverError("stacked row sources must be at least one, all with the same D")
        self.sources, self.dim, self.width = list(sources), sources[0].dim, sum(s.width for s in sources)

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.concatenate([s.read(start, stop) for s in self.sources], axis=1)


class ProjectedRows:
    """X - Q C as a ``RowSource`` (X: (D, b) and Q: (D, m) sources, C: (m, b)), computed per chunk."""

    def __init__(self, source: RowSource, basis: RowSource | None, coefficients: np.ndarray | None):
        self.source, self.basis, self.coefficients = source, basis, coefficients
        self.dim, self.width = source.dim, source.width

    def read(self, start: int, stop: int) -> np.ndarray:
        rows = self.source.read(start, stop)
        if self.basis is None or self.coefficients is None:
            return rows
        return rows - self.basis.read(start, stop) @ self.coefficients


def krylov_next_basis(image: RowSource, basis: RowSource | None, row_chunk: int,
                      sink: Callable[[int, np.ndarray], None], timer: Timer | None = None) -> dict:
    """Q_{j+1}: the part of H Q_j (``image``) orthogonal to Q_0..Q_j (``basis``), orthonormalized
    and written chunk by chunk.

    Two rounds of block classical Gram-Schmidt (C_1 = Q^T X, C_2 = Q^T (X - Q C_1): twice is
    enough, Giraud et al. 2005), each one pass over row chunks; then the remainder X - Q (C_1 + C_2)
    goes through :func:`orthogonalizer` (TSQR, numerical rank, Cholesky-QR2 when ill conditioned),
    whose directions below ``RANK_TOLERANCE`` are dropped (an invariant subspace ends the space).
    For the first pass, ``image`` is the Gaussian start block and ``basis`` None.

    Args:
        image: X = H Q_j, (D, b), as a ``RowSource`` (or the start block).
        basis: [Q_0 .. Q_j] stacked, (D, m), orthonormal, or None.
        row_chunk: rows per chunk; memory O(row_chunk x (m + b)).
        sink: ``sink(row, values)`` receives Q_{j+1} in row chunks ((rows, r) float64).
        timer: optional ``Timer`` (phase ``orthogonalize``).
    Returns:
        dict with ``rank`` (r, the columns of Q_{j+1}; 0 when nothing new remains), ``condition``
        and ``reorthogonalized`` of the remainder.
    Implements docs/science.md, section "Sketching versus Krylov methods" (block Krylov in passes).
    """
    timer = timer or Timer()
    total, floor = None, 0.0
    if basis is not None:
        with timer.phase("orthogonalize"):
            for _ in range(2):
                first = total is None  # the first round reads X itself: measure ||X||_F on the way
                current = ProjectedRows(image, basis, total)
                coefficients, squares = np.zeros((basis.width, image.width)), 0.0
                for lo, hi in row_chunks(image.dim, row_chunk):
                    rows = current.read(lo, hi)
                    coefficients += basis.read(lo, hi).T @ rows
                    if first:
                        squares += float(np.sum(rows * rows))
                if first:
                    # what Gram-Schmidt leaves of a direction already in the space is rounding noise
                    # of the size eps ||X||: directions of the remainder below KRYLOV_DROP ||X||_F are dropped
                    floor = KRYLOV_DROP * np.sqrt(squares)
                total = coefficients if first else total + coefficients
    remainder = ProjectedRows(image, basis, total)
    try:
        transform, info = orthogonalizer(remainder, row_chunk, timer, floor=floor)
    except SolverError:  # nothing new: the Krylov space is invariant
        return {"rank": 0, "condition": float("nan"), "reorthogonalized": False}
    transform = transform.cpu().numpy()
    with timer.phase("write"):
        for lo, hi in row_chunks(image.dim, row_chunk):
            sink(lo, remainder.read(lo, hi) @ transform)
    return info


def krylov_measure(operator: LinearOperator, basis: RowSource, start: int, stop: int, block: int = 64,
                   sink: Callable[[int, np.ndarray], None] | None = None, progress: Any = None) -> int:
    """Products H q for columns start..stop-1 of one pass's basis, in blocks of ``block`` columns
    aligned to multiples of ``block``, so any split into shards on block boundaries gives bitwise
    the same columns.

    Args:
        operator: H, (D, D).
        basis: Q_j as a ``RowSource`` with ``columns(start, stop)`` (e.g. ``ArrayRows`` over a store).
        start, stop: the column range, start a multiple of ``block``.
        block: products per batched call.
        sink: ``sink(column, values)`` receives each (D, m) block in the operator's dtype.
        progress: optional callable receiving the products of each block.
    Returns:
        the number of products taken.
    Raises:
        SolverError: for a range outside the basis, a start off a block boundary, or non-finite
            or all-zero products.
    """
    if not 0 <= start <= stop <= basis.width:
        raise SolverError(f"columns [{start}, {stop}) outside the {basis.width} columns of the basis")
    if start % block:
        raise SolverError(f"a shard must start on a block boundary: start {start} is not a multiple of {block}")
    used = operator.num_products
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        vectors = torch.from_numpy(basis.columns(lo, hi)).to(dtype=operator.dtype, device=operator.device)
        measured = torch.as_tensor(operator.matmat(vectors))
        check_products(measured, f"block Krylov products [{lo}, {hi})")
        sink(lo, measured.cpu().numpy())
        if progress is not None:
            progress(hi - lo)
    return operator.num_products - used


def krylov_recover(basis: RowSource, image: RowSource, k: int | None, row_chunk: int,
                   sink: Callable[[int, np.ndarray], None] | None = None,
                   timer: Timer | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Rayleigh-Ritz over the whole Krylov space, streaming over row chunks.

    T = Q^T (H Q) (m x m, symmetrized) is accumulated chunk by chunk; its eigenpairs (Theta, W)
    give the Ritz values and the Ritz vectors U = Q W, written chunk by chunk for the top k by
    |theta|.

    Args:
        basis: Q = [Q_0 .. Q_{p-1}], (D, m), orthonormal.
        image: H Q in the same column order, (D, m).
        k: Ritz pairs kept (<= m); None: all.
        row_chunk: rows per chunk.
        sink: ``sink(row, values)`` receives U in row chunks ((rows, k) float64); None: U is returned.
        timer: optional ``Timer`` (phases ``rayleigh_ritz``, ``write``).
    Returns:
        (values (k,), vectors (D, k) or None with a sink, info) with info ``orthogonality_error``
        (max |Q^T Q - I|, measured in the same pass) and ``krylov_dimension`` (m).
    Raises:
        SolverError: if k exceeds the Krylov dimension m.
    """
    timer = timer or Timer()
    if basis.width != image.width or basis.dim != image.dim:
        raise SolverError(f"basis ({basis.dim} x {basis.width}) and images ({image.dim} x {image.width}) differ")
    m = basis.width
    k = m if k is None else k
    if k > m:
        raise SolverError(f"k = {k} exceeds the Krylov dimension {m} (operator rank too low or budget too small)")
    with timer.phase("rayleigh_ritz"):
        projected, gram = np.zeros((m, m)), np.zeros((m, m))
        for lo, hi in row_chunks(basis.dim, row_chunk):
            q = basis.read(lo, hi)
            projected += q.T @ image.read(lo, hi)
            gram += q.T @ q
        values, vectors = np.linalg.eigh((projected + projected.T) / 2)
        order = np.argsort(-np.abs(values), kind="stable")[:k]
        values, coefficients = values[order], vectors[:, order]
    out = None if sink is not None else np.empty((basis.dim, k))
    with timer.phase("write"):
        for lo, hi in row_chunks(basis.dim, row_chunk):
            part = basis.read(lo, hi) @ coefficients
            if sink is None:
                out[lo:hi] = part
            else:
                sink(lo, part)
    info = {"orthogonality_error": float(np.abs(gram - np.eye(m)).max()), "krylov_dimension": m}
    return values, out, info


class _ArraySink:
    """Collects chunks into an in-memory (D, width) array: ``(row, values)`` row chunks, or with
    ``width`` given, ``(column, values)`` column blocks of all D rows."""

    def __init__(self, dim: int, width: int | None = None):
        self.dim, self.by_column = dim, width is not None
        self.array = None if width is None else np.empty((dim, width))

    def __call__(self, index: int, values: np.ndarray) -> None:
        if self.array is None:
            self.array = np.empty((self.dim, values.shape[1]), dtype=values.dtype)
        if self.by_column:
            self.array[:, index: index + values.shape[1]] = values
        else:
            self.array[index: index + values.shape[0]] = values


def krylov_passes(operator: LinearOperator, k: int, spec: KrylovSpec, row_chunk: int = 65536, block: int = 64,
                  residual_pairs: int | None = None, progress: Any = None) -> EigenResult:
    """The block Krylov solve of the workflow (``eigen.method`` block_krylov) in one process: the
    same passes, orthogonalizations and Rayleigh-Ritz as the measurement and basis jobs, on
    in-memory arrays (bitwise the same result as the jobs with the same row chunk and block).

    Args:
        operator: the symmetric (D, D) operator H.
        k: eigenpairs returned (<= the Krylov dimension reached).
        spec: budget, passes and seed.
        row_chunk: rows per chunk of the streamed steps.
        block: products per batched call.
        residual_pairs: leading pairs whose residual norm is measured (that many more products).
        progress: optional callable receiving the products of each block.
    Returns:
        ``EigenResult`` (eigenvalues (k,), eigenvectors (D, k), float64); ``extra`` holds
        ``passes`` (taken), ``block_size``, ``krylov_dimension`` and ``orthogonality_error``.
    Implements docs/science.md, section "Sketching versus Krylov methods" (block Krylov in passes).
    """
    if spec.dim != operator.dim:
        raise SolverError(f"Krylov spec of D = {spec.dim} for an operator of D = {operator.dim}")
    _check_k(k, operator.dim, spec.budget, name="k")
    timer, start = Timer(), operator.num_products
    bases: list[ArrayRows] = []
    images: list[ArrayRows] = []
    current: RowSource = StartRows(spec)
    for _ in range(spec.passes):
        sink = _ArraySink(operator.dim)
        info = krylov_next_basis(current, StackedRows(bases) if bases else None, row_chunk, sink, timer)
        if info["rank"] == 0:
            break
        bases.append(ArrayRows(sink.array))
        measured = _ArraySink(operator.dim, bases[-1].width)
        with timer.phase("measure"):
            krylov_measure(operator, bases[-1], 0, bases[-1].width, block, measured, progress)
        images.append(ArrayRows(measured.array))
        current = images[-1]
    values, vectors, info = krylov_recover(StackedRows(bases), StackedRows(images), k, row_chunk, timer=timer)
    return _finish("block_krylov", operator, values, vectors, start, timer, residual_pairs,
                   {"passes": len(bases), "block_size": spec.block, **info})


def top_overlap(reference: np.ndarray, estimate: np.ndarray, k: int) -> float:
    """Subspace overlap (1/k) sum cos^2(principal angles) of the spans of the leading k columns.

    Each block is reduced to an orthonormal basis of its span by an SVD that drops directions with
    singular values below ``RANK_TOLERANCE`` times the largest, so any basis works (orthonormal or
    not) and a block spanning r < k dimensions scores at most r / k: an estimate [e1, e1] against
    the reference [e1, e2] scores 1/2, not 1.

    Args:
        reference: (D, >= k) array, e.g. the exact eigenvectors; its first k columns are used.
        estimate: (D, >= k) array, e.g. a solver's eigenvectors; its first k columns are used.
        k: number of leading columns compared, >= 1.
    Returns:
        the overlap (1/k) ||Q_ref^T Q_est||_F^2, a float in [0, 1].
    Implements the ``overlap`` of docs/science.md, section "The seven normalized metrics", used to
    compare solvers (section "Sketching versus Krylov methods").
    """

    def span(block: np.ndarray) -> np.ndarray:
        u, sigma, _ = np.linalg.svd(np.asarray(block[:, :k], dtype=np.float64), full_matrices=False)
        keep = sigma > RANK_TOLERANCE * sigma[0] if sigma.size and sigma[0] > 0 else np.zeros(sigma.size, bool)
        return u[:, keep]

    a, b = span(reference), span(estimate)
    return float(np.linalg.norm(a.T @ b) ** 2 / k)
