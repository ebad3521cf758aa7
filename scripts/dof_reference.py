"""Rule dof_reference: the full-space reference runs at each dof.full_lr (hessmask.dof.full_space_runs)."""


import torch
import xarray as xr

from hessmask.dof import SubspaceSettings, full_space_runs, run_initializer
from hessmask.jobs import experiment_data, setup_logging
from hessmask.store import provenance, write_dataset
from hessmask.training import Checkpoint

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
exp, dof, train = sm.params.experiment, sm.params.dof, sm.params.train
data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], train["seed"], sm.input.data,
                       sm.config["data"])
start = Checkpoint.load(sm.input.start)
init = start.parameters()
if dof["init"] == "per_run":
    init = run_initializer(dof, exp, train, data, step=0)
parts = []
for lr in dof["full_lr"]:
    settings = SubspaceSettings.from_config({**dof, "lr": lr}, train["eval_batch_size"])
    parts.append(full_space_runs(range(dof["runs"]), init, start.model(), data, settings, dof["seed"]))
ds = xr.concat(parts, dim=xr.DataArray(list(dof["full_lr"]), dims="lr", name="lr"), combine_attrs="override")
ds["lr"].attrs.update(long_name="Adam learning rate of the full-space reference", units="1")
ds.attrs.update(provenance(dof, model=exp["model"]))
write_dataset(ds, sm.output[0])
