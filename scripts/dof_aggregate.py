"""Adapter: subspace chunks + full-space reference -> results/dof/<experiment>.zarr."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

from hessmask.config import MODEL_DIMS  # noqa: E402
from hessmask.jobs import setup_logging  # noqa: E402
from hessmask.store import open_dataset, provenance, write_dataset  # noqa: E402
from hessmask.subspace import dof_dataset  # noqa: E402

sm = snakemake  # noqa: F821
log = setup_logging(sm.log)
ds = dof_dataset([open_dataset(p) for p in sm.input.chunks], open_dataset(sm.input.full),
                 MODEL_DIMS[sm.params.model], sm.params.levels, sm.params.delta)
ds.attrs.update(provenance(None, experiment=sm.wildcards.experiment))
for method in ds["method"].values:
    dstar = ds["threshold_dimension"].sel({"method": method, "split": "train"})
    reached = dstar.dropna("level")
    top = float(reached["level"].max()) if reached.size else float("nan")
    log.info("%s: d* reaches train accuracy %.2f", method, top)
write_dataset(ds, sm.output[0])
