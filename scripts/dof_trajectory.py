"""Rule dof_trajectory: checkpoint at step 0 -> <experiment>/dof/trajectory.zarr (lottery-subspace directions)."""

import logging

import numpy as np
import xarray as xr

from _helpers import run
from hessmask.jobs import experiment_data
from hessmask.store import provenance, write_dataset


def main(sm) -> None:
    import torch

    from hessmask.dof.bases import trajectory_components
    from hessmask.dof.training import trajectory_directions
    from hessmask.training import Checkpoint

    log = logging.getLogger("hessmask")
    torch.set_num_threads(sm.threads)
    exp = sm.params.experiment
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                           sm.input.data, sm.config["data"])
    directions, end = trajectory_directions(Checkpoint.load(sm.input.start), data, sm.params.steps, sm.params.every)
    expected = Checkpoint.load(sm.input.final).parameters()
    gap = float(np.max(np.abs(end.parameters() - expected)))
    if gap:
        log.warning("replayed trajectory ends %.3g away from the experiment's final checkpoint "
                    "(a different device or library version?)", gap)
    components, singular = trajectory_components(directions, sm.params.components)
    ds = xr.Dataset(
        {"components": (("param", "component"), components.astype(np.float32)),
         "singular_values": (("direction",), singular)},
        coords={"param": np.arange(components.shape[0]), "component": np.arange(components.shape[1]),
                "direction": np.arange(singular.size)},
    )
    ds["components"].attrs.update(long_name="top principal directions of the training steps (orthonormal columns)",
                                  units="1")
    ds["singular_values"].attrs.update(long_name="singular values of the matrix of steps w_{s+every} - w_s",
                                       units="parameter units")
    ds.attrs.update(provenance(exp, every=sm.params.every, steps=sm.params.steps, final_gap=gap))
    log.info("%d directions, top singular values %s", singular.size, np.round(singular[:5], 4).tolist())
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
