"""What every eigensolver shares: the result type, the error type, phase timers and input checks.

Every solver returns an ``EigenResult``: eigenvalues sorted by descending |lambda| (negative
curvature counts as "top"), eigenvectors as columns, and diagnostics (products used, wall time per
phase, residual norms ||H u - lambda u|| of the leading pairs). Every solver takes a
``hessmask.operators.LinearOperator``: a curvature operator or, for tests, a dense ``MatrixOperator``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from hessmask.operators import LinearOperator
from hessmask.rows import ArrayRows

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


def sort_top(values: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-np.abs(values), kind="stable")[:k]
    return values[order], vectors[:, order]


def check_k(k: int, dim: int, budget: int | None = None, name: str = "k") -> None:
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


def finish_result(method: str, operator: LinearOperator, values: np.ndarray, vectors: np.ndarray, start_products: int,
            timer: Timer, residual_pairs: int | None, extra: dict | None = None) -> EigenResult:
    used = operator.num_products - start_products
    residuals = None
    if residual_pairs:
        with timer.phase("residuals"):
            residuals = residual_norms(operator, values, vectors, residual_pairs)
    return EigenResult(values, vectors, method, used, timer.timings, residuals, extra or {})
