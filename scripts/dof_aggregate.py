"""Rule dof_aggregate: subspace jobs + full-space reference -> results/dof/<experiment>.zarr (dof_dataset)."""

from hessmask.config import MODEL_DIMS
from hessmask.dof import dof_dataset
from hessmask.jobs import setup_logging
from hessmask.store import open_dataset, provenance, write_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
ds = dof_dataset([open_dataset(p) for p in sm.input.chunks], open_dataset(sm.input.full),
                 MODEL_DIMS[sm.params.model], sm.params.levels, sm.params.delta, sm.params.main_steps,
                 sm.params.sweep_levels)
ds.attrs.update(provenance(None, experiment=sm.wildcards.experiment))
for method in ds["method"].values:
    dstar = ds["threshold_dimension"].sel({"method": method, "split": "train"})
    reached = dstar.dropna("level")
    top = float(reached["level"].max()) if reached.size else float("nan")
    log.info("%s: d* reaches train accuracy %.2f", method, top)
log.info("full-space reference: learning rate %g kept", ds.attrs["full_lr"])
write_dataset(ds, sm.output[0])
