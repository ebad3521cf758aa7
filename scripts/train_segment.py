"""Rule train_segment: previous checkpoint -> checkpoint and curve segment at step {step}."""

import torch

from hessmask.jobs import experiment_data, setup_logging
from hessmask.store import provenance, write_dataset
from hessmask.training import Checkpoint, run_segment

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
exp = sm.params.experiment
data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                       sm.input.data, sm.config["data"])
previous = Checkpoint.load(sm.input.previous) if sm.input.previous else None
checkpoint, curve = run_segment(exp, data, int(sm.wildcards.step), previous)
curve.attrs.update(provenance(exp))
write_dataset(curve, sm.output.curve)
checkpoint.save(sm.output.checkpoint)
