"""Rule eigen_sketch: SEIGH in one job, its one measurement shard into a temporary store and the
streaming solve from it (hessmask.eigen_stores.measure_shard, then solve_store, as eigen_measure
and eigen_solve run them)."""

import json
from pathlib import Path

import torch

from hessmask.eigen_stores import measure_shard, solve_store
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance, scratch_folder

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
eigen, step = sm.params.eigen, int(sm.wildcards.step)
attrs = provenance(eigen, split=sm.wildcards.split, step=step)
out = Path(sm.output.store)
with scratch_folder(out.with_name(f"{out.name}.shard")) as scratch:
    shard = scratch / "shard=0.zarr"
    measure_shard(operator, eigen, 0, shard, attrs)
    _, timings = solve_store(operator, [shard], eigen, eigen["sketch"]["seed"] + step, out, attrs)
Path(sm.output.timings).write_text(json.dumps(timings, indent=1) + "\n")
