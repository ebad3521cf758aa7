"""Rule dof_chunk: subspace training of one (method, start step t, d values, chunk of runs) (hessmask.dof.run_chunk)."""


import torch

from hessmask.dof import PER_RUN_INIT_METHODS, Sources, SubspaceSettings, parse_dims, run_chunk, run_initializer
from hessmask.jobs import experiment_data, setup_logging
from hessmask.store import open_dataset, provenance, write_dataset
from hessmask.training import Checkpoint

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
exp, dof, train = sm.params.experiment, sm.params.dof, sm.params.train
method, step = sm.wildcards.method, int(sm.wildcards.t)
data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], train["seed"], sm.input.data,
                       sm.config["data"])
start = Checkpoint.load(sm.input.start)
theta = start.parameters()
sources = Sources(start=theta, init=theta, rewind=theta)
if "final" in sm.input.keys():
    sources.final = Checkpoint.load(sm.input.final).parameters()
if "trajectory" in sm.input.keys():
    sources.trajectory = open_dataset(sm.input.trajectory)["components"].values
if "eigen" in sm.input.keys():
    sources.eigenvectors = open_dataset(sm.input.eigen)["eigenvectors"].values
initialization = None
if method in PER_RUN_INIT_METHODS and dof["init"] == "per_run":
    initialization = run_initializer(dof, exp, train, data, step)
settings = SubspaceSettings.from_config(dof, train["eval_batch_size"])
ds = run_chunk(method, parse_dims(sm.wildcards.d), sm.params.runs, sources, start.model(), data, settings, dof["seed"],
               step=step, initialization=initialization)
ds.attrs.update(provenance(dof, model=exp["model"], start_step=step))
write_dataset(ds, sm.output[0])
