"""SEIGH, the sketched eigendecomposition of the TMLR paper (Algorithm 2; Tropp et al. 2019).

t inner measurements of which the first s double as the outer sketch. Measurement is addressable by
index range (``seigh_measure``), so shards taken in separate jobs merge bitwise (``seigh_merge``);
the recovery (``seigh_recover``) is a pure function of the sketches that streams over row chunks of
the outer sketch, so no job holds a D x s block.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hessmask.eigen.common import EigenResult, SolverError, Timer, check_k, check_products, finish_result
from hessmask.eigen.methods import default_inner
from hessmask.eigen.orthogonal import orthogonalizer, rank_tolerance, rows_on
from hessmask.operators import LinearOperator, check_symmetric
from hessmask.rows import ArrayRows, RowSource, row_chunks
from hessmask.sketch import TestMatrix


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


def least_squares(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """argmin_X ||a X - b|| for a tall full-rank ``a`` via Householder QR.

    Used instead of ``torch.linalg.lstsq``, whose CPU driver is not bitwise reproducible between
    calls on the same inputs.
    """
    q, r = torch.linalg.qr(a)
    return torch.linalg.solve_triangular(r, q.T @ b, upper=True)


@dataclass
class SeighSolution:
    """What the streaming SEIGH solve found: eigenvalues (descending |lambda|) and the s x k
    coefficients C with eigenvectors U = Y C, plus the numerical diagnostics of the solve.

    Args:
        eigenvalues: (k,) float64 array, sorted by descending |lambda|.
        coefficients: (s, k) float64 array C = W V_k, so that the eigenvectors are U = Y C.
        rank: the numerical rank r of the outer sketch Y (singular values above ``rank_tolerance`` of
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


def seigh_recover(outer: RowSource | np.ndarray, inner: np.ndarray, right: np.ndarray, spec: SketchSpec,
                  k: int | None,
                  row_chunk: int = 65536, sink: Callable[[int, np.ndarray], None] | None = None,
                  timer: Timer | None = None, device: torch.device | str = "cpu",
                  precision: object = np.float64) -> SeighSolution:
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
        precision: the dtype the outer sketch was measured in: directions of Y below its rounding
            (``rank_tolerance``: 2.2e-5 of the largest for float32 at s = 355) count as absent.

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
        check_k(k, spec.dim, spec.outer, name="k")
    outer = ArrayRows(outer) if isinstance(outer, np.ndarray) else outer
    if (outer.dim, outer.width) != (spec.dim, spec.outer) or inner.shape != (spec.inner, spec.inner) \
            or right.shape != (spec.inner, spec.outer):
        raise SolverError(f"sketch shapes Y {(outer.dim, outer.width)}, Z {inner.shape}, Psi_R Y {right.shape} "
                          f"do not match the sketch (D = {spec.dim}, s = {spec.outer}, t = {spec.inner})")
    timer = timer or Timer()
    tolerance = rank_tolerance(precision, spec.outer)
    transform, info = orthogonalizer(outer, row_chunk, timer, device, tolerance=tolerance)
    k = info["rank"] if k is None else k
    if k > info["rank"]:
        raise SolverError(f"k = {k} exceeds the numerical rank {info['rank']} of the outer sketch "
                          f"(the operator has fewer than k directions above {tolerance:.1e} of its largest)")
    with timer.phase("core"):
        z = torch.from_numpy(np.ascontiguousarray(inner, dtype=np.float64)).to(device)
        # core = (Psi_L Q)^+ Z (Psi_R Q)^+T by two QR least-squares solves (equal to the
        # oversampled recovery's route through the SVD of Z, without its O(t^3) SVD)
        left = least_squares(z[:, : spec.outer] @ transform, z)  # (r, t)
        right_q = torch.from_numpy(np.ascontiguousarray(right, dtype=np.float64)).to(device) @ transform
        core = least_squares(right_q, left.T).T  # (r, r)
        core = (core + core.T) / 2
        values, vectors = torch.linalg.eigh(core)
        values = values.cpu()
        order = np.argsort(-np.abs(values.numpy()), kind="stable")[:k]
        coefficients = transform @ vectors[:, torch.from_numpy(order).to(vectors.device)]  # (s, k)
    collected = [] if sink is None else None
    with timer.phase("eigenvectors"):
        gram = torch.zeros((k, k), dtype=torch.float64, device=coefficients.device)
        for lo, hi in row_chunks(outer.dim, row_chunk):
            block = rows_on(outer, lo, hi, device) @ coefficients
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
    inner = default_inner(outer) if inner is None else inner
    spec = SketchSpec(operator.dim, outer, inner, seed, kind)
    check_k(k, operator.dim, outer)
    timer = Timer()
    if check_symmetry:  # its 4 products are not counted against the sketch
        with timer.phase("symmetry_check"):
            check_symmetric(operator, operator.dim, seed=seed)
    start = operator.num_products
    with timer.phase("measure"):
        part = seigh_measure(operator, spec, 0, inner, block=block, progress=progress)
    solution = seigh_recover(part.outer, *seigh_merge([part], spec), spec, k, row_chunk=row_chunk, timer=timer,
                             precision=operator.dtype)
    return finish_result("seigh", operator, solution.eigenvalues, solution.vectors, start, timer, residual_pairs,
                   {"outer": outer, "inner": inner, "kind": kind, "rank": solution.rank,
                    "condition": solution.condition, "orthogonality_error": solution.orthogonality_error})
