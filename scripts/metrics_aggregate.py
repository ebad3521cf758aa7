"""Adapter: per-step metrics and eigen stores -> metrics.zarr and summary.md of one experiment."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

import xarray as xr  # noqa: E402

from hessmask.config import MODEL_DIMS  # noqa: E402
from hessmask.jobs import setup_logging  # noqa: E402
from hessmask.masks import k_of_rho  # noqa: E402
from hessmask.store import open_dataset, provenance, write_dataset  # noqa: E402
from hessmask.study import combine_metrics, eigenspace_pairs, sketch_diagnostics, summary_markdown  # noqa: E402

sm = snakemake  # noqa: F821
log = setup_logging(sm.log)
dim = MODEL_DIMS[sm.params.model]
jobs = [tuple(job) for job in sm.params.jobs]
per_step = {job: open_dataset(path) for job, path in zip(jobs, sm.input.metrics)}
keys = [(method, split, step) for split, step in jobs for method in sm.params.methods[f"{split}/{step}"]]
stores = {key: open_dataset(path, load=False) for key, path in zip(keys, sm.input.eigen)}
ds = xr.merge([combine_metrics(per_step, dim), eigenspace_pairs(stores, sm.params.rho, dim)], combine_attrs="override")
ds.attrs = {**provenance({"rho": sm.params.rho}), "D": dim}
write_dataset(ds, sm.output.store)
diagnostics = {}
k = k_of_rho(dim, 0.05)
diagnostics = {(split, step): sketch_diagnostics(stores[("exact", split, step)], stores[("seigh", split, step)], k)
               for split, step in jobs if ("exact", split, step) in stores and ("seigh", split, step) in stores}
Path(sm.output.summary).write_text(summary_markdown(sm.wildcards.experiment, ds, diagnostics))
