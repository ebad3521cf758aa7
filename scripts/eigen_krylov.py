"""Rule eigen_krylov: block Krylov in one job, every pass's basis and products in a scratch folder,
then the Rayleigh-Ritz solve (hessmask.eigen_stores.krylov_store: the library calls of
eigen_krylov_basis, eigen_krylov_measure and eigen_krylov_solve, bitwise their store)."""

import json
from pathlib import Path

import torch

from hessmask.eigen_stores import krylov_store
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance, scratch_folder

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
eigen, step = sm.params.eigen, int(sm.wildcards.step)
out = Path(sm.output.store)
with scratch_folder(out.with_name(f"{out.name}.passes")) as scratch:
    _, timings = krylov_store(operator, eigen, step, scratch, out,
                              provenance(eigen, split=sm.wildcards.split, step=step))
Path(sm.output.timings).write_text(json.dumps(timings, indent=1) + "\n")
