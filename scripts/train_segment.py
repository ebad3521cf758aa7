"""Rule train_segment: previous checkpoint -> checkpoint and curve segment at step {step}."""

from _helpers import run
from hessmask.jobs import experiment_data
from hessmask.store import provenance, write_dataset


def main(sm) -> None:
    import torch

    from hessmask.training import Checkpoint, run_segment

    torch.set_num_threads(sm.threads)
    exp = sm.params.experiment
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                           sm.input.data, sm.config["data"])
    previous = Checkpoint.load(sm.input.previous) if sm.input.previous else None
    checkpoint, curve = run_segment(exp, data, int(sm.wildcards.step), previous)
    curve.attrs.update(provenance(exp))
    write_dataset(curve, sm.output.curve)
    checkpoint.save(sm.output.checkpoint)


if __name__ == "__main__":
    run(main, globals())
