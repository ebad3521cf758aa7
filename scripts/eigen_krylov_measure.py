"""Rule eigen_krylov_measure: one shard of a block Krylov pass's products (eigen_stores.krylov_measure_store)."""

import torch

from hessmask.eigen_stores import krylov_measure_store
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
krylov_measure_store(operator, sm.params.eigen, sm.input.basis, int(sm.wildcards.shard), sm.output[0],
                     provenance(sm.params.eigen, split=sm.wildcards.split, step=int(sm.wildcards.step),
                                krylov_pass=int(sm.wildcards.p)))
