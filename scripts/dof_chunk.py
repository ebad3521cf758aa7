"""Rule dof_chunk: subspace training of one (method, d, chunk of runs), or the full-space reference."""

import torch

from hessmask.jobs import experiment_data, setup_logging
from hessmask.store import open_dataset, provenance, write_dataset
from hessmask.subspace import Sources, SubspaceSettings, full_space_runs, run_chunk
from hessmask.training import Checkpoint

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
model_name, dof = sm.params.model, sm.params.dof
data = experiment_data(model_name, sm.params.data["dataset"], sm.params.data["synthetic_samples"], sm.params.seed,
                       sm.input.data, sm.config["data"])
start = Checkpoint.load(sm.input.start)
theta = start.parameters()
if sm.rule == "dof_reference":
    settings = SubspaceSettings.from_config({**dof, "lr": dof["full_lr"]}, sm.params.eval_batch_size)
    ds = full_space_runs(range(dof["runs"]), theta, start.model(), data, settings, dof["seed"])
else:
    settings = SubspaceSettings.from_config(dof, sm.params.eval_batch_size)
    sources = Sources(start=theta, init=theta, rewind=theta)
    if "final" in sm.input.keys():
        sources.final = Checkpoint.load(sm.input.final).parameters()
    if "trajectory" in sm.input.keys():
        sources.trajectory = open_dataset(sm.input.trajectory)["components"].values
    if "eigen" in sm.input.keys():
        sources.eigenvectors = open_dataset(sm.input.eigen)["eigenvectors"].values
    ds = run_chunk(sm.wildcards.method, int(sm.wildcards.d), sm.params.runs, sources, start.model(), data,
                   settings, dof["seed"])
ds.attrs.update(provenance(dof, model=model_name, start_step=start.step))
write_dataset(ds, sm.output[0])
