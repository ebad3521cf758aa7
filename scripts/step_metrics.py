"""Rule step_metrics: theta (the training segment store's ``theta``) + eigen stores of one (step, split)
-> metrics/<split>/step=<step>.zarr. Imports no torch (about 1.4 s of each of these short jobs)."""

import json

from _helpers import run
from hessmask.jobs import excluded_parameters, segment_theta
from hessmask.metrics import step_metrics
from hessmask.seeds import record_step_seed
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    step = int(sm.wildcards.step)
    theta = segment_theta(sm.input.segment)
    stores = {method: open_dataset(path, load=False) for method, path in zip(sm.params.methods, sm.input.eigen)}
    frobenius = None
    if "seigh" in stores and "aposteriori" in stores["seigh"].attrs:
        frobenius = json.loads(stores["seigh"].attrs["aposteriori"])["frobenius_norm"]
    masks, metrics = sm.params.masks, sm.params.metrics
    excluded = excluded_parameters(sm.params.model, masks["exclude"], sm.params.classes)
    ds = step_metrics(theta, stores, sm.params.rho, metrics["random_masks"], record_step_seed(metrics["seed"], step),
                      frobenius, sm.params.row_chunk, masks["ties"], masks["seed"], excluded)
    ds.attrs.update(provenance(metrics, split=sm.wildcards.split, step=step))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
