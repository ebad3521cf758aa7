"""Rule eigen_solve: measurement shards -> eigen store (hessmask.study.solve_store, streaming)."""

import torch

from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance
from hessmask.study import solve_store

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
eigen = sm.params.eigen
solve_store(operator, sm.input.shards, eigen, eigen["sketch"]["seed"] + int(sm.wildcards.step), sm.output[0],
            provenance(eigen, split=sm.wildcards.split, step=int(sm.wildcards.step)))
