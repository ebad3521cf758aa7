"""Adapter: checkpoint at step 0 -> <experiment>/dof/trajectory.zarr (lottery-subspace directions)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import xarray as xr  # noqa: E402

from hessmask.jobs import experiment_data, setup_logging  # noqa: E402
from hessmask.store import provenance, write_dataset  # noqa: E402
from hessmask.subspace import trajectory_components, trajectory_directions  # noqa: E402
from hessmask.training import Checkpoint  # noqa: E402

sm = snakemake  # noqa: F821
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
exp = sm.params.experiment
data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                       sm.input.data, sm.config["data"]["imagenet_root"])
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
ds["components"].attrs.update(long_name="top principal directions of the training steps (orthonormal columns)")
ds["singular_values"].attrs.update(long_name="singular values of the matrix of steps w_{s+every} - w_s", units="parameter units")
ds.attrs.update(provenance(exp, every=sm.params.every, steps=sm.params.steps, final_gap=gap))
log.info("%d directions, top singular values %s", singular.size, np.round(singular[:5], 4).tolist())
write_dataset(ds, sm.output[0])
