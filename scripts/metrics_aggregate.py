"""Rule metrics_aggregate: per-step metrics, eigenspace pairs and eigen stores -> metrics.zarr and summary.md."""

from pathlib import Path

import xarray as xr

from _helpers import run
from hessmask.config import MODEL_DIMS
from hessmask.masks import k_of_rho
from hessmask.metrics import combine_metrics, sketch_diagnostics, sketch_quality, solver_costs, summary_markdown
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    dim = MODEL_DIMS[sm.params.model]
    jobs = [tuple(job) for job in sm.params.jobs]
    per_step = {job: open_dataset(path) for job, path in zip(jobs, sm.input.metrics)}
    stores = {tuple(key): open_dataset(path, load=False) for key, path in zip(sm.params.eigen_keys, sm.input.eigen)}
    pairs = xr.concat([open_dataset(path) for path in sm.input.pairs], dim="method")
    combined = combine_metrics(per_step, dim)
    ds = xr.merge([combined, pairs, solver_costs(stores)], combine_attrs="override", join="outer",
                  compat="no_conflicts")
    ds.attrs = {**provenance({"rho": sm.params.rho}), "D": dim, "eligible": combined.attrs["eligible"]}
    write_dataset(ds, sm.output.store)
    rho = sm.params.metrics["summary_rho"]
    k = k_of_rho(dim, rho)
    diagnostics = {(split, step): sketch_diagnostics(ds, stores[("seigh", split, step)], split, step, k)
                   for split, step in jobs if ("exact", split, step) in stores and ("seigh", split, step) in stores}
    sketches = {(split, step): sketch_quality(store)
                for (method, split, step), store in stores.items() if method == "seigh"}
    Path(sm.output.summary).write_text(summary_markdown(sm.wildcards.experiment, ds, diagnostics, rho=rho,
                                                        sketches=sketches))


if __name__ == "__main__":
    run(main, globals())
