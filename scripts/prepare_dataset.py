"""Rule prepare_dataset: download (if needed) and prepare one dataset -> data/<dataset>.npz."""

from hessmask.data import prepare_dataset
from hessmask.jobs import setup_logging

log = setup_logging(snakemake.log)  # noqa: F821
data = {**snakemake.config["data"], **snakemake.params.data}  # noqa: F821 (locations from the config)
prepare_dataset(snakemake.wildcards.dataset, snakemake.output[0], data, seed=data["split_seed"])  # noqa: F821
log.info("prepared %s", snakemake.output[0])  # noqa: F821
