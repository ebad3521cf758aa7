"""Top-k eigensolvers for symmetric operators given by (batched) products, one solver per module.

- ``common``: ``EigenResult`` (eigenvalues by descending |lambda|, eigenvectors, products, timings,
  residuals), ``SolverError``, ``Timer``, input checks and residual norms.
- ``exact``: the dense matrix from D products, float64 ``eigh`` (the reference).
- ``seigh``: the sketched eigendecomposition of the TMLR paper (Algorithm 2; Tropp et al. 2019),
  measurements addressable by index range so that shards merge bitwise.
- ``krylov``: randomized block Krylov under a product budget, in memory and in passes as the
  workflow runs it (Musco & Musco 2015).
- ``eigsh``: scipy's ARPACK on the same operators.
- ``orthogonal``: orthonormal bases of blocks read in row chunks (TSQR, Cholesky-QR2).
- ``aposteriori``: the a-posteriori error estimate from Gaussian products (Tropp et al. 2019, §6).
- ``methods``: the registry of the study's eigen methods and their typed specs (torch-free).
- ``stores``, ``seigh_store``, ``krylov_store``: the store half of each method, beside its kernel.

The public names are importable from the package (``from hessmask.eigen import seigh_recover``);
they are loaded on first use, so that ``hessmask.eigen.methods`` imports without torch. The solvers
named like their module are imported from it: ``from hessmask.eigen.exact import exact``, likewise
``seigh`` and ``eigsh`` (``hessmask.eigen.seigh`` is the module).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of the package that defines it
_EXPORTS = {
    **dict.fromkeys(("SOLVERS", "SolverError", "EigenResult", "Timer", "check_products", "check_k", "sort_top",
                     "residual_norms"), "common"),
    **dict.fromkeys(("dense_top_eigh", "PARTIAL_EIGH_BELOW"), "exact"),
    **dict.fromkeys(("SketchSpec", "Measurements", "SeighSolution", "outer_columns", "seigh_measure", "seigh_merge",
                     "tiling_order", "seigh_recover", "least_squares"), "seigh"),
    **dict.fromkeys(("RANK_TOLERANCE", "REORTHOGONALIZE_ABOVE", "orthogonalizer"), "orthogonal"),
    **dict.fromkeys(("aposteriori_error", "aposteriori_bounds"), "aposteriori"),
    **dict.fromkeys(("block_krylov", "KrylovSpec", "StartRows", "ProjectedRows", "krylov_next_basis",
                     "krylov_measure", "krylov_recover", "krylov_passes", "ArraySink", "KRYLOV_DROP",
                     "KRYLOV_START_TILE"), "krylov"),
}

__all__ = sorted(_EXPORTS)


#: the submodules (an attribute of one of these names is the module, as after ``import``)
_MODULES = ("common", "exact", "seigh", "krylov", "eigsh", "orthogonal", "aposteriori", "methods", "stores",
            "seigh_store", "krylov_store")


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_MODULES))
