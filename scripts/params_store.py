"""Rule params_store: checkpoints at the record steps -> results/<experiment>/params.zarr (step, param)."""

from hessmask.jobs import setup_logging
from hessmask.store import provenance, write_dataset
from hessmask.training import params_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
ds = params_dataset(list(sm.input))
ds.attrs.update(provenance(sm.params.experiment))
write_dataset(ds, sm.output[0], encoding={"params": {"chunks": (1, min(ds.sizes["param"], 1 << 20))}})
