"""Rule dof_run_checkpoints: each run >= 1 of the degrees-of-freedom study trains from its own w_0 ->
<experiment>/dof/runs/run=<r>/step=<t>.pt at every start step (hessmask.dof.bases.run_checkpoints)."""

import logging
import os
import shutil
from pathlib import Path

from _helpers import run
from hessmask.atomic import temporary_name
from hessmask.jobs import experiment_data
from hessmask.paths import Layout


def main(sm) -> None:
    import torch

    from hessmask.config import experiment_classes
    from hessmask.dof.bases import run_checkpoints
    from hessmask.training import TrainSettings

    log = logging.getLogger("hessmask")
    torch.set_num_threads(sm.threads)
    exp, dof, train = sm.params.experiment, sm.params.dof, sm.params.train
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], train["seed"], sm.input.data,
                           sm.config["data"])
    out = Path(sm.output[0])
    tmp = temporary_name(out)  # the folder appears whole or not at all
    try:
        settings = TrainSettings.from_config(train)
        for r in sm.params.runs:
            found = run_checkpoints(r, dof["seed"], exp["model"], experiment_classes(exp), settings, data,
                                    sm.params.steps)
            for step, checkpoint in found.items():
                checkpoint.save(Layout.dof_run_checkpoint(tmp, r, step))
            log.info("run %d: checkpoints at steps %s", r, sorted(found))
        tmp.mkdir(parents=True, exist_ok=True)  # no own runs (dof.runs = 1): an empty folder
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(main, globals())
