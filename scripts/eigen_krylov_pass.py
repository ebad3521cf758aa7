"""Rule eigen_krylov_pass: one block Krylov pass in one job, the basis Q_p and its products H Q_p
(hessmask.eigen_stores.krylov_basis_store, then krylov_measure_store as the pass's only shard)."""

import torch

from hessmask.eigen_stores import krylov_basis_store, krylov_measure_store
from hessmask.jobs import hessian_job, setup_logging
from hessmask.store import provenance

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
step, krylov_pass = int(sm.wildcards.step), int(sm.wildcards.p)
operator = hessian_job(sm.params, sm.input, sm.wildcards, sm.config)
krylov_basis_store(sm.params.eigen, operator.dim, step, sm.input.bases, sm.input.images, sm.output.basis,
                   provenance(sm.params.eigen, split=sm.wildcards.split, step=step))
krylov_measure_store(operator, sm.params.eigen, sm.output.basis, 0, sm.output.image,
                     provenance(sm.params.eigen, split=sm.wildcards.split, step=step, krylov_pass=krylov_pass))
