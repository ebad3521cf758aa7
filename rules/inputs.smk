# Input and params functions of the rules, by stage: each names what one job reads (every path
# through hessmask.paths.Layout) or the settings its result depends on. Functions only.

from hessmask.config import checkpoint_steps, dof_levels, eigen_specs, experiment_classes, hessian_splits  # noqa: E402
from hessmask.config import method_steps, segment_bounds  # noqa: E402
from hessmask.dof.methods import chunk_runs, lottery_grid, lottery_inputs, lottery_job_settings  # noqa: E402
from hessmask.dof.methods import main_offset_steps, own_runs, run_steps, start_grid, start_job_settings  # noqa: E402
from hessmask.dof.methods import start_subspaces  # noqa: E402
from hessmask.eigen.methods import enabled_methods  # noqa: E402

# ---------------------------------------------------------------- data and training


def prepared_dataset(wildcards):
    """The prepared npz an experiment reads ([] for imagenet and synthetic data)."""
    dataset = experiment(wildcards)["dataset"]
    return [LAYOUT.prepared(dataset)] if dataset in PREPARED_DATASETS else []


def previous_checkpoint(wildcards):
    """The checkpoint a training segment starts from ([] for the initialization at step 0)."""
    exp = experiment(wildcards)
    step = int(wildcards.step)
    if step == 0:
        return []
    starts = dict((end, start) for start, end in segment_bounds(exp["record_steps"], exp["train"]["steps"]))
    if step not in starts:
        raise WorkflowError(f"step {step} is not a checkpoint step of experiment {wildcards.experiment}")
    return LAYOUT.checkpoint(wildcards.experiment, starts[step])


def step_checkpoint(wildcards):
    """The checkpoint at the job's ``{step}``."""
    return LAYOUT.checkpoint(wildcards.experiment, wildcards.step)


def checkpoint_at(step):
    """An input function: the job's experiment's checkpoint at ``step`` ("final": train.steps)."""

    def path(wildcards):
        exp = experiment(wildcards)
        return LAYOUT.checkpoint(wildcards.experiment, exp["train"]["steps"] if step == "final" else step)

    path.__name__ = f"checkpoint_at_{step}"
    return path


def segment_stores(wildcards):
    """Every training segment store of the experiment (training_curves)."""
    return [LAYOUT.segment(wildcards.experiment, s) for s in checkpoint_steps(experiment(wildcards))]


def record_checkpoints(wildcards):
    """The checkpoints at the record steps (theta_store)."""
    return [LAYOUT.checkpoint(wildcards.experiment, s) for s in experiment(wildcards)["record_steps"]]


# ---------------------------------------------------------------- eigen


def eigen_jobs(exp):
    """(split, step) pairs whose Hessians are decomposed."""
    return [(split, step) for split in hessian_splits(exp) for step in exp["eigen"]["steps"]]


def step_methods(wildcards):
    """The eigen methods that solve the job's ``{step}`` (all steps without the wildcard), in registry order."""
    step = getattr(wildcards, "step", None)
    return enabled_methods(experiment(wildcards)["eigen"]["methods"], step)


def eigen_spec(wildcards):
    """What an eigen job of ``{method}`` depends on: its method's spec (hessmask.eigen.methods), which
    holds exactly the keys its stores depend on (not the steps, not the thread count)."""
    return eigen_specs(experiment(wildcards))[wildcards.method].params()


def hessian_samples(wildcards):
    """Examples of the job's ``{split}`` Hessian subset."""
    return experiment(wildcards)["hessian"][f"{wildcards.split}_samples"]


def eigen_part(wildcards, *names):
    """A part store of the job's (experiment, method, split, step) solve."""
    return LAYOUT.eigen_part(wildcards.experiment, wildcards.method, wildcards.split, wildcards.step, *names)


def eigen_store_inputs(wildcards):
    """An eigen store's job reads the data, the checkpoint and the part stores of its method's spec
    (SolveSpec.parts: SEIGH's shards, block Krylov's pass stores; none where one job does it all)."""
    spec = eigen_specs(experiment(wildcards))[wildcards.method]
    return {
        "data": prepared_dataset(wildcards),
        "checkpoint": step_checkpoint(wildcards),
        "parts": [eigen_part(wildcards, *names) for names in spec.parts()],
    }


def krylov_basis_inputs(wildcards):
    """Q_p needs Q_0..Q_{p-1} and the products of pass p - 1 (p = 0: only the checkpoint, for D)."""
    p = int(wildcards.p)
    shards = eigen_specs(experiment(wildcards))["block_krylov"].shards
    return {
        "checkpoint": step_checkpoint(wildcards),
        "bases": [eigen_part(wildcards, f"basis_pass={q}.zarr") for q in range(p)],
        "images": [eigen_part(wildcards, f"image_pass={p - 1}", f"shard={i}.zarr") for i in range(shards)] if p else [],
    }


def krylov_image_inputs(wildcards):
    """The products of pass p read the data, the checkpoint and Q_p."""
    return {
        "data": prepared_dataset(wildcards),
        "checkpoint": step_checkpoint(wildcards),
        "basis": eigen_part(wildcards, f"basis_pass={wildcards.p}.zarr"),
    }


def eigen_store_of(name, method, split, step):
    """The eigen store of one (method, split, step) of experiment ``name``."""
    return LAYOUT.eigen_store(name, method, split, step)


def experiment_eigen_keys(wildcards):
    """(method, split, step) of every eigen store of the experiment."""
    exp = experiment(wildcards)
    return [(m, split, step) for split, step in eigen_jobs(exp) for m in enabled_methods(exp["eigen"]["methods"], step)]


def experiment_eigen_stores(wildcards):
    """Every eigen store of the experiment, in the order of ``experiment_eigen_keys``."""
    return [eigen_store_of(wildcards.experiment, *key) for key in experiment_eigen_keys(wildcards)]


def method_eigen_keys(wildcards):
    """(method, split, step) of every eigen store of one method (``{method}``)."""
    return [key for key in experiment_eigen_keys(wildcards) if key[0] == wildcards.method]


def method_eigen_stores(wildcards):
    """The eigen stores of one method, in the order of ``method_eigen_keys``."""
    return [eigen_store_of(wildcards.experiment, *key) for key in method_eigen_keys(wildcards)]


def step_eigen_stores(wildcards):
    """The eigen stores of one (step, split), one per method run there."""
    return [eigen_store_of(wildcards.experiment, m, wildcards.split, wildcards.step) for m in step_methods(wildcards)]


# ---------------------------------------------------------------- metrics and figures


def step_metric_stores(wildcards):
    """The per-step metrics of every (split, step) of the experiment."""
    return [LAYOUT.step_metrics(wildcards.experiment, split, step) for split, step in eigen_jobs(experiment(wildcards))]


def eigenspace_pair_stores(wildcards):
    """One eigenspace-pairs store per eigen method of the experiment."""
    return [LAYOUT.eigenspace_pairs(wildcards.experiment, m) for m in step_methods(wildcards)]


def synthetic_baselines(wildcards):
    """The synthetic baselines store, where the synthetic study runs (the metric figures' chance levels)."""
    return [LAYOUT.path("synthetic", "grassmann_baselines.zarr")] if config["synthetic"]["enabled"] else []


def seigh_timings(wildcards):
    """SEIGH's phase timings of every (split, step) (the runtime figure), where SEIGH runs."""
    exp = experiment(wildcards)
    return [
        LAYOUT.eigen_timings(wildcards.experiment, "seigh", split, step)
        for split, step in eigen_jobs(exp)
        if step in method_steps(exp, "seigh")
    ]


def seigh_timing_jobs(wildcards):
    """(split, step) of ``seigh_timings``, in the same order."""
    exp = experiment(wildcards)
    return [(split, step) for split, step in eigen_jobs(exp) if step in method_steps(exp, "seigh")]


def synthetic_rhos(wildcards):
    """The rho values of one synthetic chunk's ``{D}``."""
    return SYNTHETIC_CELLS[int(wildcards.D)]


# ---------------------------------------------------------------- degrees of freedom


def dof_start_paths(wildcards):
    """Every start-step job's store of the experiment (hessmask.dof.methods.start_grid)."""
    return [LAYOUT.dof_start(wildcards.experiment, t, c) for t, c in start_grid(dof(wildcards))]


def dof_lottery_paths(wildcards):
    """Every lottery subspace's store of the experiment."""
    return [LAYOUT.dof_lottery(wildcards.experiment, s) for s in lottery_grid(dof(wildcards))]


def dof_start_runs(wildcards):
    """The runs of one start-step job's ``{chunk}``."""
    return chunk_runs(dof(wildcards), int(wildcards.chunk))


def dof_start_subspaces(wildcards):
    """The subspaces one start-step job trains at its ``{t}`` (hessmask.dof.methods.start_subspaces)."""
    return start_subspaces(dof(wildcards), int(wildcards.t))


def dof_start_inputs(wildcards):
    """What one (t, chunk) job reads: the experiment's checkpoint at t for run 0, the runs' own
    checkpoints for the others, and, for run 0 at a step the experiment solved exactly on the
    same split, the exact eigen store its Hessian solve is measured against."""
    name, exp, settings = wildcards.experiment, experiment(wildcards), dof(wildcards)
    runs, t = dof_start_runs(wildcards), int(wildcards.t)
    inputs = {"data": prepared_dataset(wildcards)}
    if 0 in runs:
        inputs["start"] = LAYOUT.checkpoint(name, t)
        split = settings["hessian"]["split"]
        if (
            "hessian_topd" in start_subspaces(settings, t)
            and t in method_steps(exp, "exact")
            and split in hessian_splits(exp)
        ):
            inputs["exact"] = LAYOUT.eigen_store(name, "exact", split, t)
    if any(r > 0 for r in runs):
        inputs["runs"] = LAYOUT.dof_runs(name)
    return inputs


def dof_lottery_inputs(wildcards):
    """The inputs of one lottery job, from hessmask.dof.methods.lottery_inputs."""
    name, exp = wildcards.experiment, experiment(wildcards)
    inputs = {"data": prepared_dataset(wildcards)}
    for role, (kind, *spec) in lottery_inputs(wildcards.subspace, dof(wildcards), exp["train"]["steps"]).items():
        inputs[role] = (
            LAYOUT.checkpoint(name, spec[0]) if kind == "checkpoint" else LAYOUT.dof_store(name, "trajectory")
        )
    return inputs


def dof_lottery_settings(wildcards):
    """What one lottery job depends on (hessmask.dof.methods.lottery_job_settings)."""
    return lottery_job_settings(wildcards.subspace, dof(wildcards))


def max_dimension(wildcards):
    """The largest training dimension (the trajectory keeps that many directions)."""
    return max(dof(wildcards)["dims"])
