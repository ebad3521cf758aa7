"""Rule dof_lottery: every run of one lottery subspace (lottery_subspace or lottery_ticket) at every d,
from the experiment's own training (hessmask.dof.experiment.lottery_job)."""

from _helpers import run
from hessmask.jobs import excluded_parameters, experiment_data
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    import torch

    from hessmask.config import experiment_classes
    from hessmask.dof.bases import MaskRule, Sources
    from hessmask.dof.experiment import lottery_job
    from hessmask.dof.training import SubspaceSettings
    from hessmask.training import Checkpoint

    torch.set_num_threads(sm.threads)
    exp, dof, train, masks = sm.params.experiment, sm.params.dof, sm.params.train, sm.params.masks
    subspace = sm.wildcards.subspace
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], train["seed"], sm.input.data,
                           sm.config["data"])
    start = Checkpoint.load(sm.input.start)
    sources = Sources(start=start.parameters(), rewind=start.parameters())
    if "final" in sm.input.keys():
        sources.final = Checkpoint.load(sm.input.final).parameters()
    if "trajectory" in sm.input.keys():
        sources.trajectory = open_dataset(sm.input.trajectory)["components"].values
    rule = MaskRule(masks["ties"], masks["seed"], excluded_parameters(exp["model"], masks["exclude"],
                                                                      experiment_classes(exp)))
    settings = SubspaceSettings.from_config(dof, train["eval_batch_size"])
    ds = lottery_job(subspace, range(dof["runs"]), dof["dims"], start.model(), sources, data, settings, dof["seed"],
                     dof["rewind_step"], rule)
    ds.attrs.update(provenance(dof, model=exp["model"], subspace=subspace))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
