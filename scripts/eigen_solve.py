"""Rule eigen_solve: measurement shards -> eigen store (hessmask.eigen_stores.solve_store, streaming)."""

import json
from pathlib import Path

import torch

from hessmask.eigen_stores import solve_store
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
eigen = sm.params.eigen
_, timings = solve_store(operator, sm.input.shards, eigen, eigen["sketch"]["seed"] + int(sm.wildcards.step),
                         sm.output.store, provenance(eigen, split=sm.wildcards.split, step=int(sm.wildcards.step)))
Path(sm.output.timings).write_text(json.dumps(timings, indent=1) + "\n")
