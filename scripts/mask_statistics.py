"""Adapter: params.zarr -> masks.zarr (kappa per step and rho, IoU between record steps)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

from hessmask.jobs import setup_logging  # noqa: E402
from hessmask.masks import mask_statistics  # noqa: E402
from hessmask.store import open_dataset, provenance, write_dataset  # noqa: E402

log = setup_logging(snakemake.log)  # noqa: F821
params = open_dataset(snakemake.input[0])  # noqa: F821
ds = mask_statistics(params["params"], snakemake.params.rho)  # noqa: F821
ds.attrs.update(provenance({"rho": snakemake.params.rho}))  # noqa: F821
write_dataset(ds, snakemake.output[0])  # noqa: F821
