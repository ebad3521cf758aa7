"""Rule synthetic_figures: grassmann_baselines.zarr -> the metric-vs-D and metric-vs-rho figures of one
modality (hessmask.figures.SYNTHETIC_FIGURES)."""

from pathlib import Path

from _helpers import run
from hessmask import plots
from hessmask.figures import SYNTHETIC_FIGURES
from hessmask.store import open_dataset


def main(sm) -> None:
    settings = sm.params.settings
    ds = open_dataset(sm.input[0])
    rhos = [r for r in settings["figure_rho"] if r in ds["rho"].values]
    dims = [d for d in settings["figure_D"] if d in ds["D"].values]
    available = {"baselines": ds, "modality": sm.wildcards.modality, "rhos": rhos or list(ds["rho"].values),
                 "dims": dims or list(ds["D"].values)}
    stems = {name: Path(sm.output[f"{name}_png"]).with_suffix("") for name in SYNTHETIC_FIGURES}
    plots.save_figures(plots.table_figures(SYNTHETIC_FIGURES, available, stems))


if __name__ == "__main__":
    run(main, globals())
