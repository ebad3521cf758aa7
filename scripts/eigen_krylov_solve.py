"""Rule eigen_krylov_solve: every pass -> the block Krylov eigen store (hessmask.eigen_stores.krylov_solve_store)."""

import json
from pathlib import Path

import torch

from hessmask.eigen_stores import krylov_solve_store
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
eigen, step = sm.params.eigen, int(sm.wildcards.step)
passes = eigen["block_krylov"]["passes"]
shards = len(sm.input.images) // passes
images = [sm.input.images[p * shards: (p + 1) * shards] for p in range(passes)]
_, timings = krylov_solve_store(operator, eigen, sm.input.bases, images, eigen["block_krylov"]["seed"] + step,
                                sm.output.store, provenance(eigen, split=sm.wildcards.split, step=step))
Path(sm.output.timings).write_text(json.dumps(timings, indent=1) + "\n")
