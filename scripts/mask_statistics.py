"""Rule mask_statistics: params.zarr -> masks.zarr (kappa per step and rho, IoU between record steps)."""

from hessmask.jobs import setup_logging
from hessmask.masks import mask_statistics
from hessmask.store import open_dataset, provenance, write_dataset

log = setup_logging(snakemake.log)  # noqa: F821
params = open_dataset(snakemake.input[0])  # noqa: F821
ds = mask_statistics(params["params"], snakemake.params.rho)  # noqa: F821
ds.attrs.update(provenance({"rho": snakemake.params.rho}))  # noqa: F821
write_dataset(ds, snakemake.output[0])  # noqa: F821
