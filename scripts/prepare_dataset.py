"""Adapter: download (if needed) and prepare one dataset -> data/<dataset>.npz."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

from hessmask.data import prepare_dataset  # noqa: E402
from hessmask.jobs import setup_logging  # noqa: E402

log = setup_logging(snakemake.log)  # noqa: F821
data = {**snakemake.config["data"], **snakemake.params.data}  # noqa: F821 (locations from the config)
prepare_dataset(snakemake.wildcards.dataset, snakemake.output[0], data, seed=data["split_seed"])  # noqa: F821
log.info("prepared %s", snakemake.output[0])  # noqa: F821
