"""Rule eigenspace_pairs: one method's eigen stores -> its eigenspace overlaps between steps and splits
(hessmask.metrics.eigenspace_pairs), merged into metrics.zarr by metrics_aggregate."""

from hessmask.config import MODEL_DIMS
from hessmask.jobs import setup_logging
from hessmask.metrics import eigenspace_pairs
from hessmask.store import open_dataset, provenance, write_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
dim = MODEL_DIMS[sm.params.model]
stores = {tuple(key): open_dataset(path, load=False) for key, path in zip(sm.params.eigen_keys, sm.input.eigen)}
ds = eigenspace_pairs(stores, sm.params.rho, dim, sm.params.row_chunk)
ds.attrs = {**provenance({"rho": sm.params.rho, "method": sm.wildcards.method}), "D": dim}
write_dataset(ds, sm.output[0])
log.info("%s: eigenspace overlaps of %d stores at rho %s", sm.wildcards.method, len(stores), sm.params.rho)
