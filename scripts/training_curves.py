"""Rule training_curves: per-segment curves -> results/<experiment>/training.zarr."""

from hessmask.jobs import setup_logging
from hessmask.store import open_dataset, provenance, write_dataset
from hessmask.training import combine_curves

log = setup_logging(snakemake.log)  # noqa: F821
ds = combine_curves([open_dataset(p) for p in snakemake.input])  # noqa: F821
ds.attrs = provenance(snakemake.params.experiment)  # noqa: F821
write_dataset(ds, snakemake.output[0])  # noqa: F821
