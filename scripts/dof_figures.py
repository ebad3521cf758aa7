"""Rule dof_figures: results/dof/<experiment>.zarr -> results/figures/dof/<experiment>/ (PNG and PDF;
hessmask.figures.DOF_FIGURES)."""

from pathlib import Path

from _helpers import run
from hessmask import plots
from hessmask.figures import DOF_FIGURES
from hessmask.store import open_dataset


def main(sm) -> None:
    stems = {name: Path(sm.output[f"{name}_png"]).with_suffix("") for name in DOF_FIGURES}
    figures = plots.table_figures(DOF_FIGURES, {"dof": open_dataset(sm.input[0])}, stems, sm.wildcards.experiment)
    plots.save_figures(figures, workers=sm.threads)


if __name__ == "__main__":
    run(main, globals())
