"""Rule dof_quadratic_figure: results/dof/quadratic_well.zarr -> results/figures/dof/quadratic_well.{png,pdf}."""

from pathlib import Path

from hessmask import plots
from hessmask.jobs import setup_logging
from hessmask.store import open_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
plots.save_figure(plots.quadratic_well(open_dataset(sm.input[0])), Path(sm.output.png).with_suffix(""))
log.info("figure quadratic_well")
