"""scipy's ARPACK (implicitly restarted Lanczos) on the same operators: the converged baseline the
benchmarks compare the study's solvers with."""

from __future__ import annotations

import numpy as np

from hessmask.eigen.common import EigenResult, Timer, check_k, finish_result, sort_top
from hessmask.operators import LinearOperator


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

    check_k(k, operator.dim - 1, name="k (ARPACK needs k < D)")
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
    values, vectors = sort_top(values, vectors, k)
    return finish_result("eigsh", operator, values, vectors, start, timer, residual_pairs,
                   {"tol": tol, "converged": converged})
