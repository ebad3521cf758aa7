"""Rule synthetic_figures: grassmann_baselines.zarr -> metric-vs-D and metric-vs-ratio figures of one modality."""

from pathlib import Path

from hessmask.jobs import setup_logging
from hessmask.plots import save_figure, synthetic_vs_dim, synthetic_vs_ratio
from hessmask.store import open_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
log = setup_logging(sm.log)
settings = sm.params.settings
modality = sm.wildcards.modality
ds = open_dataset(sm.input[0])
out = Path(sm.output.vs_d).parent
ratios = [r for r in settings["figure_ratios"] if r in ds["ratio"].values]
dims = [d for d in settings["figure_D"] if d in ds["D"].values]
save_figure(synthetic_vs_dim(ds, modality, ratios or list(ds["ratio"].values)), out / f"vs_D_{modality}")
save_figure(synthetic_vs_ratio(ds, modality, dims or list(ds["D"].values)), out / f"vs_ratio_{modality}")
log.info("figures for %s in %s", modality, out)
