"""Degrees of freedom: training in d-dimensional affine subspaces (seed 004, docs/science.md#7-degrees-of-freedom).

A network with parameters w in R^D is trained only along w = w_t + A theta, theta in R^d, with
Adam on theta (beta = (0.9, 0.999), eps = 1e-7 as in seed 004, theta_0 = 0). The D x d basis A
is given implicitly (:class:`Basis`): dense columns (random Gaussian, trajectory principal
directions, Hessian eigenvectors) or a set of coordinates (masks), which never builds a matrix.

Subspace kinds (:data:`hessmask.dof.methods.SUBSPACES`), each a pair (offset w_t, basis A):

- ``random_affine``: w_0 and A with i.i.d. Gaussian columns normalized to 1 (t = 0);
- ``burn_in``: w_t after t full-space SGD steps of the experiment, the same random A;
- ``lottery_subspace``: the top-d principal directions of the full training trajectory (right
  singular vectors of the matrix of steps w_{s+1} - w_s), rewound to w_r;
- ``lottery_ticket``: the d largest-magnitude parameters after full training; the others are
  pruned to 0, the kept ones rewound to their values at step r and trained;
- ``hessian_topd``: the top-d eigenvectors (by |lambda|) of the Hessian at step t, offset w_t;
- ``mask_topd``: the d largest-magnitude parameters at step t, offset w_t (the others stay at
  their step-t values: the affine subspace the main study compares with the Hessian's).

Runs draw their data order and random basis from ``(seed, run)`` only, so run r of every subspace
kind and dimension sees the same batches, and the random bases are nested in d (column j is the same
for every d > j): a larger subspace contains each smaller one, for every kind.

The quadratic well of seed 004 section 3.2 (Fig. 5) is here too: the exact minimum of
L(w) = w^T H w / 2 over a random affine subspace, and the bound of Eq. 3.4 on the local angular
dimension.

Modules, one concern each: ``methods`` (the subspace kinds and the job grid, torch-free),
``bases`` (the bases A and offsets w_t of each kind), ``training`` (Adam in a subspace and in the
full space, the workflow's jobs), ``analysis`` (success probability, d*, the experiment's dof
store, torch-free) and ``quadratic`` (the quadratic well, numpy only). Their public names are
importable from the package and load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the modules of the package, searched in order for a public name
_MODULES = ("methods", "refine", "bases", "training", "experiment", "analysis", "quadratic")


def __getattr__(name: str) -> Any:
    if not name.startswith("_"):
        for module in _MODULES:
            value = getattr(importlib.import_module(f"{__name__}.{module}"), name, None)
            if value is not None and getattr(value, "__module__", f"{__name__}.{module}") == f"{__name__}.{module}":
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
