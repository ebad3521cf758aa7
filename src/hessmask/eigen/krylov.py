"""Randomized block Krylov (block Lanczos with full reorthogonalization) under a fixed product budget,
then Rayleigh-Ritz on all products (Musco & Musco 2015; Tropp 2023).

``block_krylov`` runs it in memory; ``KrylovSpec`` and the functions after it run it as the workflow
does, in passes of jobs: pass p measures H Q_p (``krylov_measure``, in shards), a small step
orthogonalizes the products against the earlier blocks (``krylov_next_basis``), and after the last pass
``krylov_recover`` takes the Ritz pairs of the whole space, streaming over row chunks.
``krylov_passes`` is the same in one process, bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from hessmask.eigen.common import EigenResult, SolverError, Timer, check_k, check_products, finish_result, sort_top
from hessmask.eigen.orthogonal import PRECISION_FACTOR, orthogonalizer, rank_tolerance, rounding
from hessmask.operators import LinearOperator
from hessmask.rows import ArrayRows, RowSource, StackedRows, row_chunks


def block_krylov(operator: LinearOperator, k: int, budget: int, block_size: int | None = None, seed: int = 0,
                 residual_pairs: int | None = None, progress: Any = None) -> EigenResult:
    """Randomized block Krylov under a fixed product budget.

    Blocks Q_0 (random, orthonormal), Q_{j+1} = orth((I - P) H Q_j) with full reorthogonalization
    against all previous blocks; every product H Q_j is kept, so the Rayleigh-Ritz matrix
    Q^T H Q over the whole Krylov space (dimension <= budget) needs no further products. The
    block count is budget // block_size; by default block_size = max(1, budget // 8) (k does not enter
    the default). Directions of a block whose |R_jj| (unpivoted QR of the block after projection) is
    at most ``krylov_floor`` of the products' dtype times the largest ||H q|| seen so far (a lower
    bound on ||H||_2) are dropped (``PRECISION_FACTOR`` rounding units: float32 products resolve nothing
    finer); the iteration stops early when nothing new remains.

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
    check_k(k, operator.dim, blocks * block_size, name="k")
    if block_size > operator.dim:
        raise SolverError(f"block size {block_size} exceeds D = {operator.dim}")
    timer, start = Timer(), operator.num_products
    gen = torch.Generator().manual_seed(int(seed))
    basis: list[torch.Tensor] = []
    images: list[torch.Tensor] = []
    current = torch.randn((operator.dim, block_size), generator=gen, dtype=torch.float64)
    scale = 0.0
    for index in range(blocks):
        if index == 1:
            scale = 0.0  # from here on the blocks are products: their norms estimate ||H||
        with timer.phase("orthogonalize"):
            # what Gram-Schmidt leaves of a direction already in the space is rounding noise of the
            # products, about eps ||H||: the floor is relative to the largest ||H q|| seen (a lower
            # bound on ||H||_2), or to the start block's columns
            scale = max(scale, float(torch.linalg.vector_norm(current, dim=0).max()))
            if basis:
                stacked = torch.cat(basis, dim=1)
                for _ in range(2):  # twice is enough (Giraud et al. 2005)
                    current = current - stacked @ (stacked.T @ current)
            q, r = torch.linalg.qr(current)
            floor = krylov_floor(operator.dtype if basis else torch.float64)  # the products', or the start block's
            keep = torch.abs(torch.diagonal(r)) > floor * scale
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
    values, vectors = sort_top(values.numpy(), vectors.numpy(), k)
    return finish_result("block_krylov", operator, values, vectors, start, timer, residual_pairs,
                   {"block_size": block_size, "blocks": len(basis)})




#: the smallest relative size (to ||H Q_j||_F) of a direction of the orthogonalized remainder that is
#: kept (float64 products); float32 products keep only what stands above their rounding (``krylov_floor``)
KRYLOV_DROP = 1e-10


def krylov_floor(dtype: object) -> float:
    """The relative size (to ||H Q_j||_F) below which a direction left after Gram-Schmidt is rounding
    noise of the products: ``PRECISION_FACTOR`` rounding units of their dtype (1.2e-6 for float32),
    at least ``KRYLOV_DROP``."""
    return max(KRYLOV_DROP, PRECISION_FACTOR * rounding(dtype))
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
                      sink: Callable[[int, np.ndarray], None], timer: Timer | None = None,
                      precision: object = np.float64, scale: float = 0.0) -> dict:
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
        precision: the dtype the products were computed in (its rounding sets the drop floor,
            ``krylov_floor``).
        scale: an estimate of ||H||_2 from the earlier passes (the largest ||H q|| of their unit
            columns; 0 for none). A product H q in float32 carries rounding of about eps ||H||, so
            what is left of X after the projection counts as new only above ``krylov_floor`` times
            the larger of this and the largest column norm of X.
    Returns:
        dict with ``rank`` (r, the columns of Q_{j+1}; 0 when nothing new remains), ``condition``
        and ``reorthogonalized`` of the remainder, and ``scale`` (the updated estimate of ||H||_2).
    Implements docs/science.md, section "Sketching versus Krylov methods" (block Krylov in passes).
    """
    timer = timer or Timer()
    total, floor = None, 0.0
    if basis is not None:
        with timer.phase("orthogonalize"):
            for _ in range(2):
                first = total is None  # the first round reads X itself: its column norms on the way
                current = ProjectedRows(image, basis, total)
                coefficients, squares = np.zeros((basis.width, image.width)), np.zeros(image.width)
                for lo, hi in row_chunks(image.dim, row_chunk):
                    rows = current.read(lo, hi)
                    coefficients += basis.read(lo, hi).T @ rows
                    if first:
                        squares += np.sum(rows * rows, axis=0)
                if first:
                    # the columns of X = H Q_j are H q for unit q: their largest norm bounds ||H||_2 from
                    # below; what Gram-Schmidt leaves of a direction already in the space is rounding
                    # noise of the products, about eps ||H||: below krylov_floor ||H|| it is dropped
                    scale = max(float(scale), float(np.sqrt(squares.max())) if squares.size else 0.0)
                    floor = krylov_floor(precision) * scale
                total = coefficients if first else total + coefficients
    remainder = ProjectedRows(image, basis, total)
    try:
        transform, info = orthogonalizer(remainder, row_chunk, timer, floor=floor,
                                         tolerance=rank_tolerance(precision, image.width))
    except SolverError:  # nothing new: the Krylov space is invariant
        return {"rank": 0, "condition": float("nan"), "reorthogonalized": False, "scale": float(scale)}
    transform = transform.cpu().numpy()
    with timer.phase("write"):
        for lo, hi in row_chunks(image.dim, row_chunk):
            sink(lo, remainder.read(lo, hi) @ transform)
    return {**info, "scale": float(scale)}


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


class ArraySink:
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
    check_k(k, operator.dim, spec.budget, name="k")
    timer, start = Timer(), operator.num_products
    bases: list[ArrayRows] = []
    images: list[ArrayRows] = []
    current: RowSource = StartRows(spec)
    scale = 0.0  # the estimate of ||H||_2 carried from pass to pass
    for _ in range(spec.passes):
        sink = ArraySink(operator.dim)
        precision = operator.dtype if bases else np.float64  # the products', or the Gaussian start block's
        info = krylov_next_basis(current, StackedRows(bases) if bases else None, row_chunk, sink, timer, precision,
                                 scale)
        scale = info["scale"]
        if info["rank"] == 0:
            break
        bases.append(ArrayRows(sink.array))
        measured = ArraySink(operator.dim, bases[-1].width)
        with timer.phase("measure"):
            krylov_measure(operator, bases[-1], 0, bases[-1].width, block, measured, progress)
        images.append(ArrayRows(measured.array))
        current = images[-1]
    values, vectors, info = krylov_recover(StackedRows(bases), StackedRows(images), k, row_chunk, timer=timer)
    return finish_result("block_krylov", operator, values, vectors, start, timer, residual_pairs,
                   {"passes": len(bases), "block_size": spec.block, **info})
