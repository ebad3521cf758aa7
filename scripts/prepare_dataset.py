"""Rule prepare_dataset: download (if needed) and prepare one dataset -> data/<dataset>.npz."""

from hessmask.data import prepare_dataset
from hessmask.jobs import setup_logging

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
data = {**sm.config["data"], **sm.params.data}
prepare_dataset(sm.wildcards.dataset, sm.output[0], data, seed=data["split_seed"])
log.info("prepared %s", sm.output[0])
