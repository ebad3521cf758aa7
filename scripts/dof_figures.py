"""Rule dof_figures: results/dof/<experiment>.zarr -> results/figures/dof/<experiment>/ (PNG and PDF)."""

from pathlib import Path

from hessmask import plots
from hessmask.jobs import setup_logging
from hessmask.store import open_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
ds = open_dataset(sm.input[0])
name = sm.wildcards.experiment
figures = {
    "success_png": lambda: plots.dof_success(ds, f"Success probability of subspace training ({name})"),
    "threshold_dimension_png": lambda: plots.dof_threshold(ds, f"Threshold training dimension d* ({name})"),
    "compression_png": lambda: plots.dof_compression(ds, f"Accuracy vs compression ratio ({name})"),
    "start_step_png": lambda: plots.dof_start_step(ds, f"Threshold dimension d* against the start step t ({name})"),
}
plots.save_figures({key: (make, Path(sm.output[key]).with_suffix("")) for key, make in figures.items()},
                   workers=sm.threads, done=lambda key: log.info("figure %s", key))
