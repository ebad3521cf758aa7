"""Rule dof_reference: the full-space reference runs at each dof.full_lr (hessmask.dof.training.full_space_runs)."""

import xarray as xr

from _helpers import run
from hessmask.jobs import experiment_data
from hessmask.store import provenance, write_dataset


def main(sm) -> None:
    import torch

    from hessmask.dof.bases import run_initializer
    from hessmask.dof.training import SubspaceSettings, full_space_runs
    from hessmask.training import Checkpoint

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


if __name__ == "__main__":
    run(main, globals())
