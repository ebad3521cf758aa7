"""Rule mask_statistics: params.zarr -> masks.zarr (kappa per step and rho, IoU between record steps)."""

from hessmask.jobs import setup_logging
from hessmask.masks import mask_statistics
from hessmask.store import open_dataset, provenance, write_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
params = open_dataset(sm.input[0])
ds = mask_statistics(params["params"], sm.params.rho)
ds.attrs.update(provenance({"rho": sm.params.rho}))
write_dataset(ds, sm.output[0])
