"""Rule eigen_measure: checkpoint -> one shard of SEIGH measurements (hessmask.eigen_stores.measure_shard)."""

import torch

from hessmask.eigen_stores import measure_shard
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
measure_shard(operator, sm.params.eigen, int(sm.wildcards.shard), sm.output[0],
              provenance(sm.params.eigen, split=sm.wildcards.split, step=int(sm.wildcards.step)))
