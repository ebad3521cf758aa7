"""Rule dof_quadratic_figure: results/dof/quadratic_well.zarr -> results/figures/dof/quadratic_well.{png,pdf}."""

from pathlib import Path

from _helpers import run
from hessmask import plots
from hessmask.store import open_dataset


def main(sm) -> None:
    plots.save_figure(plots.quadratic_well(open_dataset(sm.input[0])), Path(sm.output.png).with_suffix(""))


if __name__ == "__main__":
    run(main, globals())
