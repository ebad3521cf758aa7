"""Adapter: results/dof/*.zarr -> results/figures/dof/ (PNG and PDF)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

from hessmask import plots  # noqa: E402
from hessmask.jobs import setup_logging  # noqa: E402
from hessmask.store import open_dataset  # noqa: E402

sm = snakemake  # noqa: F821
log = setup_logging(sm.log)
ds = open_dataset(sm.input[0])
if sm.rule == "dof_quadratic_figure":
    figures = {"png": lambda: plots.quadratic_well(ds)}
else:
    name = sm.wildcards.experiment
    figures = {
        "success_png": lambda: plots.dof_success(ds, f"Success probability of subspace training ({name})"),
        "threshold_dimension_png": lambda: plots.dof_threshold(ds, f"Threshold training dimension d* ({name})"),
        "compression_png": lambda: plots.dof_compression(ds, f"Accuracy vs compression ratio ({name})"),
    }
for key, make in figures.items():
    plots.save_figure(make(), Path(sm.output[key]).with_suffix(""))
    log.info("figure %s", key)
