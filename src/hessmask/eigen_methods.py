"""The eigen methods of the workflow by name.

A module of its own, without torch, so that the jobs that only read eigen stores (the per-step
metrics, the eigenspace pairs, the aggregate) do not pay about a second and a half per job for
importing torch; ``hessmask.eigen_stores`` re-exports it.
"""

#: The eigen methods, in the order stores, metrics and figures list them; each writes
#: results/<experiment>/eigen/<method>/<split>/step=<step>.zarr.
METHODS = ("exact", "seigh", "block_krylov")
