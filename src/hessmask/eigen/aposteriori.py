"""The a-posteriori error of an approximate eigendecomposition from a few Gaussian products
(Tropp et al. 2019, section 6): what a sketch says about its own accuracy without an exact solve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from hessmask.eigen.common import SolverError
from hessmask.operators import LinearOperator
from hessmask.rows import ArrayRows, row_chunks


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
