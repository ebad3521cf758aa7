"""Rule dof_chunk: subspace training of one (subspace kind, start step t, d values, chunk of runs)
(hessmask.dof.training.run_chunk)."""

from _helpers import run
from hessmask.jobs import experiment_data
from hessmask.metrics import finite
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    import torch

    from hessmask.dof.bases import Sources, run_initializer
    from hessmask.dof.methods import PER_RUN_INIT_SUBSPACES, parse_dims
    from hessmask.dof.training import SubspaceSettings, run_chunk
    from hessmask.training import Checkpoint

    torch.set_num_threads(sm.threads)
    exp, dof, train = sm.params.experiment, sm.params.dof, sm.params.train
    subspace, step = sm.wildcards.subspace, int(sm.wildcards.t)
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], train["seed"], sm.input.data,
                           sm.config["data"])
    start = Checkpoint.load(sm.input.start)
    theta = start.parameters()
    sources = Sources(start=theta, init=theta, rewind=theta)
    if "final" in sm.input.keys():
        sources.final = Checkpoint.load(sm.input.final).parameters()
    if "trajectory" in sm.input.keys():
        sources.trajectory = open_dataset(sm.input.trajectory)["components"].values
    if "eigen" in sm.input.keys():
        sources.eigenvectors = finite(open_dataset(sm.input.eigen)["eigenvectors"].values, sm.input.eigen,
                                      "eigenvectors")
    initialization = None
    if subspace in PER_RUN_INIT_SUBSPACES and dof["init"] == "per_run":
        initialization = run_initializer(dof, exp, train, data, step)
    settings = SubspaceSettings.from_config(dof, train["eval_batch_size"])
    ds = run_chunk(subspace, parse_dims(sm.wildcards.d), sm.params.runs, sources, start.model(), data, settings,
                   dof["seed"], step=step, initialization=initialization)
    ds.attrs.update(provenance(dof, model=exp["model"], start_step=step))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
