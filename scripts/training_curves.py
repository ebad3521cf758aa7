"""Adapter: per-segment curves -> results/<experiment>/training.zarr."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

from hessmask.jobs import setup_logging  # noqa: E402
from hessmask.store import open_dataset, provenance, write_dataset  # noqa: E402
from hessmask.training import combine_curves  # noqa: E402

log = setup_logging(snakemake.log)  # noqa: F821
ds = combine_curves([open_dataset(p) for p in snakemake.input])  # noqa: F821
ds.attrs = provenance(snakemake.params.experiment)  # noqa: F821
write_dataset(ds, snakemake.output[0])  # noqa: F821
