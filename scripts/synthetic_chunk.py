"""Rule synthetic_chunk: one D of the synthetic baselines -> results/synthetic/chunks/D=<D>.zarr."""

from hessmask.jobs import setup_logging
from hessmask.store import provenance, write_dataset
from hessmask.synthetic import baseline_chunk

log = setup_logging(snakemake.log)  # noqa: F821 (injected by Snakemake)
settings = snakemake.params.settings  # noqa: F821
dim = int(snakemake.wildcards.D)  # noqa: F821
ratios = snakemake.params.ratios  # noqa: F821
log.info("D=%d ratios=%s T=%d", dim, ratios, settings["samples"])
ds = baseline_chunk(dim, ratios, settings["samples"], settings["seed"], settings["modalities"])
ds.attrs.update(provenance(settings))
write_dataset(ds, snakemake.output[0])  # noqa: F821
log.info("wrote %s", snakemake.output[0])  # noqa: F821
