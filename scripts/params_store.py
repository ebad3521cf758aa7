"""Rule params_store: checkpoints at the record steps -> results/<experiment>/params.zarr (step, param)."""

from hessmask.jobs import setup_logging
from hessmask.store import provenance, write_dataset
from hessmask.training import params_dataset

log = setup_logging(snakemake.log)  # noqa: F821
ds = params_dataset(list(snakemake.input))  # noqa: F821
ds.attrs.update(provenance(snakemake.params.experiment))  # noqa: F821
write_dataset(ds, snakemake.output[0], encoding={"params": {"chunks": (1, min(ds.sizes["param"], 1 << 20))}})  # noqa: F821
