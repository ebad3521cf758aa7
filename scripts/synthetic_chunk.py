"""Rule synthetic_chunk: one D of the synthetic baselines -> results/synthetic/chunks/D=<D>.zarr."""

from hessmask.jobs import setup_logging
from hessmask.store import provenance, write_dataset
from hessmask.synthetic import baseline_chunk

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
settings = sm.params.settings
dim = int(sm.wildcards.D)
ratios = sm.params.ratios
log.info("D=%d ratios=%s T=%d", dim, ratios, settings["samples"])
ds = baseline_chunk(dim, ratios, settings["samples"], settings["seed"], settings["modalities"])
ds.attrs.update(provenance(settings))
write_dataset(ds, sm.output[0])
log.info("wrote %s", sm.output[0])
