"""Rule experiment_figures: an experiment's stores -> results/figures/<experiment>/*.{png,pdf}
(the figures of hessmask.figures.EXPERIMENT_FIGURES)."""

import json
from pathlib import Path

from _helpers import run
from hessmask import plots
from hessmask.figures import EXPERIMENT_FIGURES
from hessmask.store import open_dataset


def main(sm) -> None:
    timings = {f"{split} {step}": json.loads(Path(path).read_text())
               for (split, step), path in zip(sm.params.timing_jobs, sm.input.timings)}
    available = {
        "training": open_dataset(sm.input.training),
        "masks": open_dataset(sm.input.masks),
        "metrics": open_dataset(sm.input.metrics),
        "baselines": open_dataset(sm.input.baselines[0]) if sm.input.baselines else None,
        "timings": timings,
        "rho": sm.params.rho,  # the reported k = round(rho D) (metrics.summary_rho), solved by every method
    }
    stems = {name: Path(sm.output[f"{name}_png"]).with_suffix("") for name in EXPERIMENT_FIGURES}
    figures = plots.table_figures(EXPERIMENT_FIGURES, available, stems, sm.wildcards.experiment)
    plots.save_figures(figures, workers=sm.threads)


if __name__ == "__main__":
    run(main, globals())
