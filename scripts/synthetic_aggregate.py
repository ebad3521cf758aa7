"""Rule synthetic_aggregate: per-D chunks -> grassmann_baselines.zarr and the paper's Table 1 (CSV, Markdown)."""

from pathlib import Path

from hessmask.jobs import setup_logging
from hessmask.store import open_dataset, provenance, write_dataset
from hessmask.synthetic import baselines_table, combine_chunks, table_markdown

log = setup_logging(snakemake.log)  # noqa: F821
settings = snakemake.params.settings  # noqa: F821
ds = combine_chunks([open_dataset(p) for p in snakemake.input])  # noqa: F821
ds.attrs = provenance(settings)
write_dataset(ds, snakemake.output.store)  # noqa: F821
table = baselines_table(ds, modality="OO")
table.to_csv(snakemake.output.csv, float_format="%.6f")  # noqa: F821
Path(snakemake.output.md).write_text(table_markdown(table, "OO", settings["samples"]))  # noqa: F821
log.info("aggregated %d chunks: %s", len(snakemake.input), dict(ds.sizes))  # noqa: F821
