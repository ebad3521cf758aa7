"""Rule step_metrics: theta (the training segment store's ``params``) + eigen stores of one (step, split)
-> metrics/<split>/step=<step>.zarr. Imports no torch (about 1.4 s of each of these short jobs)."""

import json

from hessmask.jobs import excluded_parameters, segment_theta, setup_logging
from hessmask.metrics import step_metrics
from hessmask.store import open_dataset, provenance, write_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
theta = segment_theta(sm.input.segment)
stores = {method: open_dataset(path, load=False) for method, path in zip(sm.params.methods, sm.input.eigen)}
frobenius = None
if "seigh" in stores and "aposteriori" in stores["seigh"].attrs:
    frobenius = json.loads(stores["seigh"].attrs["aposteriori"])["frobenius_norm"]
masks = sm.params.masks
excluded = excluded_parameters(sm.params.model, masks["exclude"], sm.params.classes)
ds = step_metrics(theta, stores, sm.params.rho, sm.params.metrics["random_masks"],
                  sm.params.metrics["seed"] + int(sm.wildcards.step), frobenius, sm.params.row_chunk,
                  masks["ties"], masks["seed"], excluded)
ds.attrs.update(provenance(sm.params.metrics, split=sm.wildcards.split, step=int(sm.wildcards.step)))
write_dataset(ds, sm.output[0])
