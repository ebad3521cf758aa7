"""Rule synthetic_aggregate: per-D chunks -> grassmann_baselines.zarr and the paper's Table 1 (CSV, Markdown)."""

import logging
from pathlib import Path

from _helpers import run
from hessmask.store import open_dataset, provenance, write_dataset
from hessmask.synthetic import baselines_table, combine_chunks, table_markdown


def main(sm) -> None:
    settings = sm.params.settings
    ds = combine_chunks([open_dataset(p) for p in sm.input])
    ds.attrs = provenance(settings)
    write_dataset(ds, sm.output.store)
    table = baselines_table(ds, modality="OO")
    table.to_csv(sm.output.csv, float_format="%.6f")
    Path(sm.output.md).write_text(table_markdown(table, "OO", settings["samples"]))
    logging.getLogger("hessmask").info("aggregated %d chunks: %s", len(sm.input), dict(ds.sizes))


if __name__ == "__main__":
    run(main, globals())
