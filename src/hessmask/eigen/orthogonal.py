"""Orthonormal bases of a D x s block read in row chunks (TSQR, numerical rank, Cholesky-QR2).

Shared by SEIGH (Q = orth(Y) of the outer sketch) and block Krylov in passes (each new block
orthogonalized against the earlier ones), so that neither holds a D x s block in memory.
"""

from __future__ import annotations

import numpy as np
import torch

from hessmask.eigen.common import SolverError, Timer
from hessmask.rows import RowSource, row_chunks

#: the smallest relative singular value of a block that counts as a direction at all (float64 data)
RANK_TOLERANCE = 1e-12
#: condition number of the kept outer sketch above which the orthogonalization takes a second pass
REORTHOGONALIZE_ABOVE = 1e4
#: how many rounding units of the data below its largest singular value a direction must stand to count
PRECISION_FACTOR = 10.0


def rounding(dtype: object) -> float:
    """The unit roundoff of a torch or numpy float dtype (float32: 1.2e-7, float64: 2.2e-16)."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)


def rank_tolerance(dtype: object, width: int) -> float:
    """The relative singular value below which a direction of a (D, width) block of ``dtype`` data is
    numerically absent: the rounding of its entries gives singular values up to about
    eps sqrt(width) of the largest, so a float32 block's directions below ``PRECISION_FACTOR`` times
    that (2.2e-5 at width 355) are rounding noise, not an operator's (at least ``RANK_TOLERANCE``)."""
    return max(RANK_TOLERANCE, PRECISION_FACTOR * rounding(dtype) * float(np.sqrt(max(width, 1))))



def rows_on(outer: RowSource, lo: int, hi: int, device: torch.device | str) -> torch.Tensor:
    """Rows lo..hi-1 of Y as float64 on the solve's device."""
    return torch.from_numpy(outer.read(lo, hi)).to(device)


def stream_gram(outer: RowSource, transform: torch.Tensor, row_chunk: int) -> torch.Tensor:
    """(Y W)^T (Y W) accumulated over row chunks."""
    gram = torch.zeros((transform.shape[1],) * 2, dtype=torch.float64, device=transform.device)
    for lo, hi in row_chunks(outer.dim, row_chunk):
        part = rows_on(outer, lo, hi, transform.device) @ transform
        gram += part.T @ part
    return gram


def orthogonalizer(outer: RowSource, row_chunk: int, timer: Timer | None = None,
                   device: torch.device | str = "cpu", floor: float = 0.0,
                   tolerance: float = RANK_TOLERANCE) -> tuple[torch.Tensor, dict]:
    """W (s x r) such that Q = Y W has orthonormal columns spanning the numerical range of Y.

    Pass 1 is a sequential TSQR over row chunks (R <- R factor of [R; Y_c]; Demmel et al. 2012):
    Householder QR of small blocks is backward stable, so R is accurate whatever the condition of
    Y. The SVD R = U S V^T then gives the numerical rank r (S_i > ``tolerance`` S_1: an exactly
    low-rank operator, or a sketch larger than its rank, drops its null directions; callers pass
    ``rank_tolerance`` of the data's precision, since a float32 block's null directions are rounding
    noise of about 1e-7 of its largest, far above the float64 default) and
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
        tolerance: relative singular value below which a direction counts as absent.
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
            stacked = torch.cat([r_factor, rows_on(outer, lo, hi, device)])
            r_factor = torch.linalg.qr(stacked, mode="r")[1][: outer.width]
        _, sing, vh = torch.linalg.svd(r_factor)
        if not float(sing[0]) > floor:
            raise SolverError("the outer sketch is zero: the operator vanishes on every test vector")
        rank = int(((sing > tolerance * sing[0]) & (sing > floor)).sum())
        transform = vh[:rank].T / sing[:rank]
        condition = float(sing[0] / sing[rank - 1])
        reorthogonalize = condition > REORTHOGONALIZE_ABOVE
        if reorthogonalize:
            chol = torch.linalg.cholesky(stream_gram(outer, transform, row_chunk))
            transform = torch.linalg.solve_triangular(chol, transform.T, upper=False).T
    return transform, {"rank": rank, "condition": condition, "reorthogonalized": reorthogonalize}
