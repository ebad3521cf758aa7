"""Rule eigen_krylov_basis: the block Krylov basis of one pass (hessmask.eigen_stores.krylov_basis_store)."""

import torch

from hessmask.eigen_stores import krylov_basis_store
from hessmask.jobs import setup_logging
from hessmask.store import provenance
from hessmask.training import Checkpoint

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
dim = Checkpoint.load(sm.input.checkpoint, map_location="cpu").parameters().size
step = int(sm.wildcards.step)
krylov_basis_store(sm.params.eigen, dim, step, sm.input.bases, sm.input.images, sm.output[0],
                   provenance(sm.params.eigen, split=sm.wildcards.split, step=step))
