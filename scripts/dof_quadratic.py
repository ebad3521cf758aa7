"""Rule dof_quadratic: config dof_quadratic -> results/dof/quadratic_well.zarr."""

from hessmask.dof import quadratic_well_dataset
from hessmask.jobs import setup_logging
from hessmask.store import provenance, write_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
ds = quadratic_well_dataset(sm.params.quad)
ds.attrs.update(provenance(sm.params.quad))
write_dataset(ds, sm.output[0])
