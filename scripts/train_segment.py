"""Rule train_segment: previous checkpoint -> checkpoint and curve segment at step {step}."""

import torch

from hessmask.jobs import experiment_data, setup_logging
from hessmask.store import provenance, write_dataset
from hessmask.training import Checkpoint, run_segment

log = setup_logging(snakemake.log)  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
exp = snakemake.params.experiment  # noqa: F821
data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                       snakemake.input.data, snakemake.config["data"]["imagenet_root"])  # noqa: F821
previous = Checkpoint.load(snakemake.input.previous) if snakemake.input.previous else None  # noqa: F821
checkpoint, curve = run_segment(exp, data, int(snakemake.wildcards.step), previous)  # noqa: F821
curve.attrs.update(provenance(exp))
write_dataset(curve, snakemake.output.curve)  # noqa: F821
checkpoint.save(snakemake.output.checkpoint)  # noqa: F821
