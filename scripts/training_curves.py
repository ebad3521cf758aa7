"""Rule training_curves: per-segment curves -> results/<experiment>/training.zarr."""

from hessmask.jobs import setup_logging
from hessmask.store import open_dataset, provenance, write_dataset
from hessmask.training import combine_curves

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
ds = combine_curves([open_dataset(p, load=False) for p in sm.input])  # theta (params) is never read
ds.attrs = provenance(sm.params.experiment)
write_dataset(ds, sm.output[0])
