"""Rule mask_statistics: params.zarr -> masks.zarr (kappa per step and rho, IoU between record steps)."""

from hessmask.jobs import excluded_parameters, setup_logging
from hessmask.masks import mask_statistics
from hessmask.store import open_dataset, provenance, write_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
params = open_dataset(sm.input[0])
masks = sm.params.masks
excluded = excluded_parameters(sm.params.model, masks["exclude"], sm.params.classes)
ds = mask_statistics(params["params"], masks["rho"], masks["ties"], masks["seed"], excluded)
ds.attrs.update(provenance(masks))
write_dataset(ds, sm.output[0])
