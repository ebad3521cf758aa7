"""Rule dof_reference: the full-space reference, each run from its own w_0 at each dof.full_lr
(hessmask.dof.experiment.full_space_runs)."""

import xarray as xr

from _helpers import run
from hessmask.jobs import experiment_data
from hessmask.paths import Layout
from hessmask.store import provenance, write_dataset


def main(sm) -> None:
    import torch

    from hessmask.dof.experiment import full_space_runs
    from hessmask.dof.training import SubspaceSettings
    from hessmask.training import Checkpoint

    torch.set_num_threads(sm.threads)
    exp, dof, train = sm.params.experiment, sm.params.dof, sm.params.train
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], train["seed"], sm.input.data,
                           sm.config["data"])
    starts = {}
    for r in range(dof["runs"]):  # run 0: the experiment's w_0; the others: their own
        checkpoint = Checkpoint.load(sm.input.start if r == 0 else Layout.dof_run_checkpoint(sm.input.runs, r, 0))
        starts[r] = (checkpoint.model(), checkpoint.parameters())
    parts = []
    for lr in dof["full_lr"]:
        settings = SubspaceSettings.from_config({**dof, "lr": lr}, train["eval_batch_size"])
        parts.append(full_space_runs(starts, data, settings, dof["seed"]))
    ds = xr.concat(parts, dim=xr.DataArray(list(dof["full_lr"]), dims="lr", name="lr"), combine_attrs="override")
    ds["lr"].attrs.update(long_name="Adam learning rate of the full-space reference", units="1")
    ds.attrs.update(provenance(dof, model=exp["model"]))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
