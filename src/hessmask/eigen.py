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

An operator is anything with ``dim``, ``dtype``, ``device``, ``num_products`` and ``matmat``
(``hessmask.curvature.CurvatureOperator`` or ``MatrixOperator`` below).
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from hessmask.curvature import check_symmetric, dense_matrix
from hessmask.sketch import TestMatrix

log = logging.getLogger(__name__)

SOLVERS = ("exact", "seigh", "eigsh", "block_krylov")


class SolverError(ValueError):
    """Impossible sizes or an operator the solver cannot handle; the message names the setting."""


@dataclass
class EigenResult:
    """Top-k eigenpairs (descending |lambda|) and how they were obtained."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    method: str
    products: int
    timings: dict[str, float] = field(default_factory=dict)
    residuals: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.eigenvalues.size)


class MatrixOperator:
    """A dense symmetric matrix behind the operator interface (for tests and references)."""

    def __init__(self, matrix: torch.Tensor | np.ndarray, dtype: torch.dtype | None = None):
        matrix = torch.as_tensor(matrix)
        self.matrix = matrix.to(dtype) if dtype is not None else matrix
        self.dtype = self.matrix.dtype
        self.dim = int(self.matrix.shape[0])
        self.device = self.matrix.device
        self.num_products = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    def matmat(self, block: torch.Tensor) -> torch.Tensor:
        block = torch.as_tensor(block).to(self.dtype)
        self.num_products += 1 if block.ndim == 1 else int(block.shape[1])
        return self.matrix @ block

    def __matmul__(self, block: torch.Tensor) -> torch.Tensor:
        return self.matmat(block)


class Timer:
    """Wall time per named phase."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


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


def residual_norms(operator: Any, values: np.ndarray, vectors: np.ndarray, count: int | None = None) -> np.ndarray:
    """||H u_i - lambda_i u_i|| for the first ``count`` pairs (costs ``count`` products)."""
    count = values.size if count is None else min(count, values.size)
    if count == 0:
        return np.zeros(0)
    block = torch.from_numpy(np.ascontiguousarray(vectors[:, :count]))
    product = torch.as_tensor(operator.matmat(block.to(operator.dtype))).double().cpu().numpy()
    return np.linalg.norm(product - vectors[:, :count] * values[:count], axis=0)


def _finish(method: str, operator: Any, values: np.ndarray, vectors: np.ndarray, start_products: int,
            timer: Timer, residual_pairs: int | None, extra: dict | None = None) -> EigenResult:
    used = operator.num_products - start_products
    residuals = None
    if residual_pairs:
        with timer.phase("residuals"):
            residuals = residual_norms(operator, values, vectors, residual_pairs)
    return EigenResult(values, vectors, method, used, timer.timings, residuals, extra or {})


# ----------------------------------------------------------------------------- exact


def exact(operator: Any, k: int, block: int = 256, residual_pairs: int | None = None,
          progress: Any = None) -> EigenResult:
    """Dense float64 eigendecomposition of the operator's matrix (D products; D up to ~1e4)."""
    _check_k(k, operator.dim)
    timer, start = Timer(), operator.num_products
    with timer.phase("measure"):
        matrix = dense_matrix(operator, block=block, progress=progress)
    with timer.phase("eigh"):
        values, vectors = torch.linalg.eigh(matrix)
    extra = {"spectrum": values.numpy()[::-1].copy()}  # the whole spectrum, descending (eigh sorts it)
    values, vectors = _sort_top(values.numpy(), vectors.numpy(), k)
    result = _finish("exact", operator, values, vectors, start, timer, None, extra)
    if residual_pairs:  # from the dense matrix: no further products needed
        count = min(residual_pairs, k)
        m = matrix.numpy()
        result.residuals = np.linalg.norm(m @ vectors[:, :count] - vectors[:, :count] * values[:count], axis=0)
    return result


# ----------------------------------------------------------------------------- seigh


@dataclass(frozen=True)
class SketchSpec:
    """The random sketch of one SEIGH run: outer size s, inner size t >= 2s, kind and seed."""

    dim: int
    outer: int
    inner: int
    seed: int
    kind: str = "ssrft"

    def __post_init__(self) -> None:
        if self.outer < 1:
            raise SolverError(f"outer sketch size must be >= 1, got {self.outer}")
        if self.inner < self.outer:
            raise SolverError(f"inner sketch size {self.inner} < outer size {self.outer}: the outer "
                              "sketch reuses the first inner measurements")
        if self.inner > self.dim or self.outer > self.dim:
            raise SolverError(f"sketch sizes (outer {self.outer}, inner {self.inner}) exceed D = {self.dim}")

    def test_matrices(self) -> tuple[TestMatrix, TestMatrix]:
        """(Psi_L, Psi_R), each (inner, D), independent streams of the one seed."""
        return (TestMatrix(self.kind, self.inner, self.dim, self.seed * 2 + 1),
                TestMatrix(self.kind, self.inner, self.dim, self.seed * 2 + 2))


@dataclass
class Measurements:
    """Measurements i in [start, stop): inner-sketch columns Z[:, i] and outer columns Y[:, i]."""

    start: int
    stop: int
    inner: np.ndarray  # (t, stop - start), float64
    outer: np.ndarray  # (D, max(0, min(stop, s) - start)), operator dtype
    products: int
    seconds: float


def seigh_measure(operator: Any, spec: SketchSpec, start: int, stop: int, block: int = 64,
                  progress: Any = None) -> Measurements:
    """Measurements ``start..stop-1``: b_i = H psi_R_i, Z[:, i] = Psi_L b_i, Y[:, i] = b_i (i < s).

    Products are taken in blocks aligned to multiples of ``block`` (absolute indices), so any
    split of [0, t) into ranges on block boundaries gives bitwise the same columns.
    """
    if not 0 <= start <= stop <= spec.inner:
        raise SolverError(f"measurement range [{start}, {stop}) outside [0, {spec.inner})")
    if start % block:
        raise SolverError(f"a shard must start on a block boundary: start {start} is not a multiple of {block}")
    psi_left, psi_right = spec.test_matrices()
    t0, used0 = time.perf_counter(), operator.num_products
    inner = np.empty((spec.inner, stop - start))
    outer = np.empty((spec.dim, max(0, min(stop, spec.outer) - start)),
                     dtype=torch.empty(0, dtype=operator.dtype).numpy().dtype)
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        rows = psi_right.rows_block(lo, hi, dtype=operator.dtype, device=operator.device)
        measured = torch.as_tensor(operator.matmat(rows.T))
        inner[:, lo - start: hi - start] = psi_left.apply(measured).double().cpu().numpy()
        if lo < spec.outer:
            keep = min(hi, spec.outer) - lo
            outer[:, lo - start: lo - start + keep] = measured[:, :keep].cpu().numpy()
        if progress is not None:
            progress(hi - lo)
    return Measurements(start, stop, inner, outer, operator.num_products - used0, time.perf_counter() - t0)


def seigh_merge(parts: Sequence[Measurements], spec: SketchSpec) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate shards (any order) into (Y: D x s, Z: t x t); checks they tile [0, t)."""
    parts = sorted(parts, key=lambda p: p.start)
    position = 0
    for part in parts:
        if part.start != position:
            raise SolverError(f"measurement shards do not tile [0, {spec.inner}): gap or overlap at {position}")
        position = part.stop
    if position != spec.inner:
        raise SolverError(f"measurement shards end at {position}, expected {spec.inner}")
    inner = np.concatenate([p.inner for p in parts], axis=1)
    outer = np.concatenate([p.outer for p in parts if p.outer.shape[1]], axis=1)
    return outer, inner


def _least_squares(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """argmin_X ||a X - b|| for a tall full-rank ``a`` via Householder QR.

    Used instead of ``torch.linalg.lstsq``, whose CPU driver is not bitwise reproducible between
    calls on the same inputs.
    """
    q, r = torch.linalg.qr(a)
    return torch.linalg.solve_triangular(r, q.T @ b, upper=True)


def seigh_recover(outer: np.ndarray, inner: np.ndarray, spec: SketchSpec, k: int,
                  timer: Timer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs from the sketches (STUDY.md section 5, steps 3-5), float64, top-k by |lambda|."""
    _check_k(k, spec.dim, spec.outer, name="k")
    timer = timer or Timer()
    psi_left, psi_right = spec.test_matrices()
    # copies into torch's own (aligned) allocations: BLAS/LAPACK kernels may round differently
    # on differently aligned memory, and merged shards must recover bitwise identically
    with timer.phase("orthogonalize"):
        q, _ = torch.linalg.qr(torch.tensor(np.asarray(outer), dtype=torch.float64))
    with timer.phase("core"):
        z = torch.tensor(inner, dtype=torch.float64)
        u_z, s_z, vh_z = torch.linalg.svd(z)
        left = _least_squares(psi_left.apply(q), u_z)  # (s, t)
        right = _least_squares(psi_right.apply(q), vh_z.T)  # (s, t)
        core = (left * s_z) @ right.T
        core = (core + core.T) / 2
        values, vectors = torch.linalg.eigh(core)
        vectors = q @ vectors
    return _sort_top(values.numpy(), vectors.numpy(), k)


def seigh(operator: Any, k: int, outer: int, inner: int | None = None, seed: int = 0,
          kind: str = "ssrft", block: int = 64, residual_pairs: int | None = None,
          check_symmetry: bool = True, progress: Any = None) -> EigenResult:
    """SEIGH in one process: measure all t columns, then recover the top-k eigenpairs."""
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
    values, vectors = seigh_recover(*seigh_merge([part], spec), spec, k, timer)
    return _finish("seigh", operator, values, vectors, start, timer, residual_pairs,
                   {"outer": outer, "inner": inner, "kind": kind})


# ----------------------------------------------------------------------------- a posteriori


def aposteriori_error(operator: Any, values: np.ndarray, vectors: np.ndarray, samples: int,
                      seed: int) -> dict[str, float]:
    """Estimate ||H - U diag(lambda) U^T||_F from ``samples`` Gaussian products (TYUC 2019, §6).

    err_est^2 = (1/q) sum_i ||(H - H_hat) w_i||^2 with w_i ~ N(0, I) is unbiased for the squared
    Frobenius error. Returns the estimate, the estimated ||H||_F, and ``aposteriori_bounds``.
    """
    if samples < 1:
        raise SolverError(f"the a-posteriori estimate needs >= 1 test product, got {samples}")
    gen = torch.Generator().manual_seed(int(seed) + 0xA905)
    omega = torch.randn((operator.dim, samples), generator=gen, dtype=torch.float64)
    measured = torch.as_tensor(operator.matmat(omega.to(operator.dtype))).double().cpu()
    u = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float64))
    approx = u @ (torch.from_numpy(np.asarray(values, dtype=np.float64))[:, None] * (u.T @ omega))
    err2 = float(((measured - approx) ** 2).sum() / samples)
    norm2 = float((measured ** 2).sum() / samples)
    return {"frobenius_error": math.sqrt(err2), "frobenius_norm": math.sqrt(norm2),
            "relative_error": math.sqrt(err2 / norm2) if norm2 else float("nan"), "samples": samples}


def aposteriori_bounds(samples: int, relative: float) -> dict[str, float]:
    """Failure probabilities of the squared-error estimate with q Gaussian samples (TYUC 2019, §6.4).

    P{est^2 <= (1 - eps) err^2} <= [e^eps (1 - eps)]^(q/2) and
    P{est^2 >= (1 + eps) err^2} <= [e^-eps (1 + eps)]^(q/2).
    """
    if samples < 1 or not 0 < relative < 1:
        raise ValueError("samples must be >= 1 and the relative deviation in (0, 1)")
    half = samples / 2
    return {"p_below": (math.exp(relative) * (1 - relative)) ** half,
            "p_above": (math.exp(-relative) * (1 + relative)) ** half}


# ----------------------------------------------------------------------------- eigsh


def eigsh(operator: Any, k: int, tol: float = 1e-6, maxiter: int | None = None,
          residual_pairs: int | None = None, seed: int = 0, ncv: int | None = None) -> EigenResult:
    """scipy's ARPACK (``which='LM'``) on the operator in float64; every product counted."""
    from scipy.sparse.linalg import ArpackNoConvergence
    from scipy.sparse.linalg import eigsh as arpack

    _check_k(k, operator.dim - 1, name="k (ARPACK needs k < D)")
    timer, start = Timer(), operator.num_products
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(operator.dim)
    with timer.phase("lanczos"):
        try:
            values, vectors = arpack(operator.to_scipy() if hasattr(operator, "to_scipy") else _scipy_view(operator),
                                     k=k, which="LM", tol=tol, v0=v0, ncv=ncv, maxiter=maxiter)
            converged = True
        except ArpackNoConvergence as err:
            values, vectors, converged = err.eigenvalues, err.eigenvectors, False
    values, vectors = _sort_top(values, vectors, k)
    return _finish("eigsh", operator, values, vectors, start, timer, residual_pairs,
                   {"tol": tol, "converged": converged})


def _scipy_view(operator: Any):
    from scipy.sparse.linalg import LinearOperator

    def mv(v: np.ndarray) -> np.ndarray:
        block = torch.from_numpy(np.asarray(v, dtype=np.float64).reshape(operator.dim, -1))
        return torch.as_tensor(operator.matmat(block.to(operator.dtype))).double().cpu().numpy()

    return LinearOperator((operator.dim, operator.dim), matvec=lambda v: mv(v)[:, 0], matmat=mv,
                          dtype=np.float64)


# ----------------------------------------------------------------------------- block krylov


def block_krylov(operator: Any, k: int, budget: int, block_size: int | None = None, seed: int = 0,
                 residual_pairs: int | None = None, progress: Any = None) -> EigenResult:
    """Randomized block Krylov under a fixed product budget.

    Blocks Q_0 (random, orthonormal), Q_{j+1} = orth((I - P) H Q_j) with full reorthogonalization
    against all previous blocks; every product H Q_j is kept, so the Rayleigh-Ritz matrix
    Q^T H Q over the whole Krylov space (dimension <= budget) needs no further products. The
    block count is budget // block_size; by default block_size = budget // 8 (at least k/4).
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


def top_overlap(reference: np.ndarray, estimate: np.ndarray, k: int) -> float:
    """Subspace overlap (1/k)||U_ref[:, :k]^T U_est[:, :k]||_F^2 of the leading k eigenvectors."""
    a = np.asarray(reference[:, :k], dtype=np.float64)
    b = np.asarray(estimate[:, :k], dtype=np.float64)
    return float(np.linalg.norm(a.T @ b) ** 2 / k)
