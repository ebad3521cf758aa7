"""The eigen methods of the workflow and the sketch's test-matrix kinds, by name.

A module of its own, without torch, so that the jobs that only read eigen stores (the per-step
metrics, the eigenspace pairs, the aggregate) and the Snakemake process (the config schema) do
not pay about a second and a half for importing torch; ``hessmask.eigen_stores`` and
``hessmask.sketch`` re-export them.
"""

#: The eigen methods, in the order stores, metrics and figures list them; each writes
#: results/<experiment>/eigen/<method>/<split>/step=<step>.zarr.
METHODS = ("exact", "seigh", "block_krylov")
#: kinds of test matrix (``hessmask.sketch.TestMatrix(kind, ...)``; config key eigen.sketch.kind)
KINDS = ("ssrft", "sparse_sign", "gaussian", "rademacher")
