"""Rule dof_aggregate: start-step, lottery and full-space stores -> results/dof/<experiment>.zarr (dof_dataset)."""

import logging

from _helpers import run
from hessmask.config import MODEL_DIMS
from hessmask.dof.analysis import dof_dataset
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    log = logging.getLogger("hessmask")
    dof = sm.params.dof
    ds = dof_dataset([open_dataset(p) for p in sm.input.start], [open_dataset(p) for p in sm.input.lottery],
                     open_dataset(sm.input.full), MODEL_DIMS[sm.params.model], sm.params.levels, dof["delta"],
                     sm.params.main_steps, dof["subspaces"], dof["sweep_levels"], dof["success"])
    ds.attrs.update(provenance(None, experiment=sm.wildcards.experiment))
    for subspace in ds["subspace"].values:
        reached = ds["threshold_dimension"].sel({"subspace": subspace, "split": "train"}).dropna("level")
        top = float(reached["level"].max()) if reached.size else float("nan")
        log.info("%s: d* reaches train accuracy %.2f", subspace, top)
    if "sweep_separated" in ds:
        for pair in ds["pair"].values:
            apart = ds["sweep_separated"].sel(pair=pair)
            log.info("%s: separated at %d of %d (start step, level) cells", pair, int(apart.sum()), apart.size)
    log.info("full-space reference: learning rate %g kept", ds.attrs["full_lr"])
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
