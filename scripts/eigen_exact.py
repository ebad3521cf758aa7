"""Rule eigen_exact: checkpoint -> exact eigen store (hessmask.eigen_stores.exact_store, dense float64)."""

import torch

from hessmask.eigen_stores import exact_store
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
exact_store(operator, sm.params.k, sm.params.eigen, sm.output[0],
            provenance(sm.params.eigen, split=sm.wildcards.split, step=int(sm.wildcards.step)))
