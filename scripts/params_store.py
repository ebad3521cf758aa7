"""Adapter: checkpoints at the record steps -> results/<experiment>/params.zarr (step, param)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

from hessmask.jobs import setup_logging  # noqa: E402
from hessmask.store import provenance, write_dataset  # noqa: E402
from hessmask.training import params_dataset  # noqa: E402

log = setup_logging(snakemake.log)  # noqa: F821
ds = params_dataset(list(snakemake.input))  # noqa: F821
ds.attrs.update(provenance(snakemake.params.experiment))  # noqa: F821
write_dataset(ds, snakemake.output[0], encoding={"params": {"chunks": (1, min(ds.sizes["param"], 1 << 20))}})  # noqa: F821
