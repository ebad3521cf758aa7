"""Rule dof_start: one (start step t, chunk of runs) of the start-step experiment: each run's Hessian
at its own w_t and its paired trainings in burn_in, hessian_topd and mask_topd, with the bisection
of d* (hessmask.dof.experiment.start_job)."""


from _helpers import run
from hessmask.jobs import excluded_parameters, experiment_data
from hessmask.metrics import finite
from hessmask.paths import Layout
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    import torch

    from hessmask.config import experiment_classes
    from hessmask.dof.bases import MaskRule
    from hessmask.dof.experiment import HessianSettings, StartJob, combine_runs, solve_hessian, start_job
    from hessmask.dof.training import SubspaceSettings
    from hessmask.training import Checkpoint

    torch.set_num_threads(sm.threads)
    exp, dof, train, masks = sm.params.experiment, sm.params.dof, sm.params.train, sm.params.masks
    step = int(sm.wildcards.t)
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], train["seed"], sm.input.data,
                           sm.config["data"])
    settings = SubspaceSettings.from_config(dof, train["eval_batch_size"])
    hessian = HessianSettings.from_config(dof, {"hessian": sm.params.samples, "eigen": sm.params.operator})
    rule = MaskRule(masks["ties"], masks["seed"], excluded_parameters(exp["model"], masks["exclude"],
                                                                      experiment_classes(exp)))
    exact = None
    if "exact" in sm.input.keys():  # run 0 at a step the experiment solved exactly: measure the solve against it
        store = open_dataset(sm.input.exact)
        exact = finite(store["eigenvectors"].values, sm.input.exact, "eigenvectors")
    parts = []
    for r in sm.params.runs:
        path = sm.input.start if r == 0 else Layout.dof_run_checkpoint(sm.input.runs, r, step)
        checkpoint = Checkpoint.load(path)
        job = StartJob(step=step, run=r, subspaces=sm.params.subspaces, dims=dof["dims"], levels=dof["sweep_levels"],
                       rounds=dof["refine_rounds"], success=dof["success"], seed=dof["seed"])
        parts.append(start_job(job, checkpoint.model(), checkpoint.parameters(), data, settings,
                               lambda: solve_hessian(checkpoint.model(), data, hessian, max(dof["dims"]), step),
                               rule, exact if r == 0 else None))
    ds = combine_runs(parts)
    ds.attrs.update(provenance(dof, model=exp["model"], start_step=step, subspaces=list(sm.params.subspaces)))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
