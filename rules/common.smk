# Shared helpers: config validation (defaults filled, unknown keys rejected), result paths.

import os
import re
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# jobs import hessmask from the repository too (conda environments and cluster nodes, where the
# package is not installed): their scripts inherit this from the Snakemake process
os.environ.update(
    PYTHONPATH=os.pathsep.join([SRC] + [p for p in os.getenv("PYTHONPATH", "").split(os.pathsep) if p and p != SRC])
)

from hessmask.config import ConfigError, validate_config  # noqa: E402
from hessmask.synthetic import grid_cells  # noqa: E402

try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

RESULTS = config["results"]
SYNTHETIC_CELLS = grid_cells(config["synthetic"]["grids"])
SYNTHETIC_FIGURES = ["vs_D", "vs_ratio"]


def results(*parts):
    """A path under the configured results folder."""
    return str(Path(RESULTS, *parts))


def all_targets():
    """Every final output the config asks for."""
    targets = []
    if config["synthetic"]["enabled"]:
        targets += synthetic_targets()
    targets += experiment_targets()
    targets += dof_targets()
    return targets


def synthetic_targets():
    figures = expand(
        results("figures", "synthetic", "{kind}_{modality}.{ext}"),
        kind=SYNTHETIC_FIGURES,
        modality=config["synthetic"]["modalities"],
        ext=["png", "pdf"],
    )
    return [
        results("synthetic", "grassmann_baselines.zarr"),
        results("synthetic", "baselines_table.csv"),
        results("synthetic", "baselines_table.md"),
        *figures,
    ]


# ---------------------------------------------------------------- experiments

from hessmask.config import (
    checkpoint_steps,
    eigen_steps,
    exact_k,
    exact_steps,
    experiment_classes,
    hessian_splits,
    krylov_steps,
    sketch_sizes,
)  # noqa: E402
from hessmask.config import segment_bounds  # noqa: E402
from hessmask.eigen_methods import METHODS as EIGEN_METHODS  # noqa: E402

EXPERIMENTS = {name: exp for name, exp in config["experiments"].items() if exp["enabled"]}
DATA_DIR = config["data"]["dir"]
PREPARED_DATASETS = ["mnist5k", "mnist", "cifar10", "cifar100"]


def experiment(wildcards):
    """The validated config of the experiment named by the job's wildcards."""
    return EXPERIMENTS[wildcards.experiment]


def experiment_key(*keys, only=None):
    """An input/params/resources function reading ``experiments.<experiment>.<keys...>`` of the
    job's experiment (the accessor every rule uses instead of its own lambda); ``only`` picks
    some keys of the node as a dict."""

    def value(wildcards, *_):
        node = experiment(wildcards)
        for key in keys:
            node = node[key]
        return node if only is None else {k: node[k] for k in only}

    value.__name__ = "experiment_" + "_".join(keys or ("config",))
    return value


def from_experiment(func, *keys):
    """An input/params function: ``func`` of ``experiments.<experiment>.<keys...>`` (of the whole
    experiment when no keys are given), e.g. ``from_experiment(exact_k)``."""
    read = experiment_key(*keys)

    def value(wildcards, *_):
        return func(read(wildcards))

    value.__name__ = f"{func.__name__}_of_experiment"
    return value


def checkpoint_path(name, step):
    """The checkpoint of experiment ``name`` at ``step``."""
    return results(name, "checkpoints", f"step={step}.pt")


def checkpoint_at(step):
    """An input function: the job's experiment's checkpoint at ``step`` ("final": train.steps)."""

    def path(wildcards):
        exp = experiment(wildcards)
        return checkpoint_path(wildcards.experiment, exp["train"]["steps"] if step == "final" else step)

    return path


def training_settings(wildcards):
    """What a training job's result depends on: model, data and SGD settings.

    Excludes the record steps, the total step count and the thread count, so that adding
    record steps or training longer reuses the segments already trained.
    """
    exp = experiment(wildcards)
    train = {k: v for k, v in exp["train"].items() if k not in ("steps", "threads")}
    return {
        "model": exp["model"],
        "dataset": exp["dataset"],
        "synthetic_samples": exp["synthetic_samples"],
        "train": train,
    }


def train_settings(wildcards):
    """The experiment's SGD settings less the step count and threads (what a job that replays or
    restarts its optimizer depends on; training longer does not change them)."""
    return training_settings(wildcards)["train"]


def prepared_dataset(wildcards):
    """The prepared npz an experiment reads ([] for imagenet and synthetic data)."""
    dataset = experiment(wildcards)["dataset"]
    return [str(Path(DATA_DIR, f"{dataset}.npz"))] if dataset in PREPARED_DATASETS else []


def previous_checkpoint(wildcards):
    """The checkpoint a training segment starts from ([] for the initialization at step 0)."""
    exp = experiment(wildcards)
    step = int(wildcards.step)
    if step == 0:
        return []
    starts = dict((end, start) for start, end in segment_bounds(exp["record_steps"], exp["train"]["steps"]))
    if step not in starts:
        raise WorkflowError(f"step {step} is not a checkpoint step of experiment {wildcards.experiment}")
    return results(wildcards.experiment, "checkpoints", f"step={starts[step]}.pt")


def gpus(wildcards, stage):
    """GPUs requested by a job of ``stage`` (train or eigen): configured, or 1 on a cuda device."""
    exp = experiment(wildcards)
    configured = exp["resources"][f"{stage}_gpus"]
    return configured if configured is not None else int(exp[stage]["device"].startswith("cuda"))


def conda_env(stage):
    """The conda environment of a job of ``stage`` (train, eigen, dof): envs/gpu.yaml where the
    experiment's ``<stage>.device`` is cuda, else envs/cpu.yaml."""

    def env(wildcards, *_):
        device = experiment(wildcards)[stage]["device"]
        return str(Path(workflow.basedir, "envs", "gpu.yaml" if device.startswith("cuda") else "cpu.yaml"))

    return env


def train_gpu(wildcards):
    return gpus(wildcards, "train")


#: experiments.<name>.resources.slurm keys -> the SLURM executor's resource names; the
#: HESSMASK_SLURM_* variables are the fallbacks of the first three
SLURM_SETTINGS = {
    "partition": "slurm_partition",
    "account": "slurm_account",
    "qos": "qos",
    "extra": "slurm_extra",
    "gpu_model": "gpu_model",
}
SLURM_ENVIRONMENT = {
    "partition": "HESSMASK_SLURM_PARTITION",
    "gpu_partition": "HESSMASK_SLURM_GPU_PARTITION",
    "account": "HESSMASK_SLURM_ACCOUNT",
}


def slurm_setting(exp, key, gpu):
    """One SLURM setting of a job of ``exp`` (None: the experiment and the environment leave it
    to the site profile). GPU jobs take ``gpu_partition`` before ``partition``."""
    keys = ["gpu_partition", key] if key == "partition" and gpu else [key]
    for name in keys:
        value = exp["resources"]["slurm"][name] if exp else None
        value = value if value is not None else os.getenv(SLURM_ENVIRONMENT.get(name, ""), "") or None
        if value is not None:
            return value
    return None


def cluster(stage=None):
    """SLURM resources of the jobs of ``stage`` (train, eigen, dof: per experiment and device;
    cpu: CPU jobs of an experiment; None: jobs of no experiment). Only settings that something
    configures become resources of the rule, so a site profile's default-resources and
    set-resources stay in force for the rest (a rule's resource, even an empty one, would
    override them)."""
    configured = {}
    for key, resource in SLURM_SETTINGS.items():
        if stage is None:
            value = slurm_setting(None, key, False)
            if value is not None:
                configured[resource] = value
            continue
        candidates = [slurm_setting(exp, key, gpu) for exp in EXPERIMENTS.values() for gpu in (False, True)]
        if any(v is not None for v in candidates):
            configured[resource] = lambda wc, key=key: slurm_setting(
                experiment(wc), key, stage != "cpu" and gpus(wc, stage) > 0
            )
    return configured


def job_threads(stage):
    """CPUs of a job of ``stage`` (train, eigen, dof): its ``threads``, plus ``data.loader_workers``
    decoding threads for ImageNet experiments (so a GPU job is not starved by image decoding)."""

    def threads(wildcards):
        exp = experiment(wildcards)
        extra = config["data"]["loader_workers"] if exp["dataset"] == "imagenet" else 0
        settings = exp["dof"] if stage == "dof" else exp[stage]
        return settings["threads"] + extra

    return threads


def memory(key):
    """``resources.<key>`` of the job's experiment in MB, times the attempt: a job retried after
    running out of memory asks for more."""

    def mem_mb(wildcards, attempt):
        return experiment(wildcards)["resources"][key] * attempt

    return mem_mb


# ---------------------------------------------------------------- eigen and metrics


def eigen_store(name, method, split, step):
    """The eigen store of one solve: method seigh or exact."""
    return results(name, "eigen", method, split, f"step={step}.zarr")


def eigen_methods(exp, step=None):
    """Solvers run at a step (any step if None): exact where configured, seigh and block_krylov if enabled."""
    exact = exp["eigen"]["exact"] and (step is None or int(step) in exact_steps(exp))
    krylov = exp["eigen"]["block_krylov"]["enabled"] and (step is None or int(step) in krylov_steps(exp))
    on = {"exact": exact, "seigh": exp["eigen"]["sketch"]["enabled"], "block_krylov": krylov}
    return [m for m in EIGEN_METHODS if on[m]]


def eigen_jobs(exp):
    """(split, step) pairs whose Hessians are decomposed."""
    return [(split, step) for split in hessian_splits(exp) for step in eigen_steps(exp)]


def eigen_settings(wildcards):
    """What an eigen job's result depends on (not the list of steps, not the thread count)."""
    eigen = experiment(wildcards)["eigen"]
    return {k: v for k, v in eigen.items() if k not in ("steps", "threads")}


EXACT_ONLY = ("exact", "exact_steps", "exact_k", "exact_dtype")


def sketch_settings(wildcards):
    """What a SEIGH job depends on: the eigen settings less those of the exact and block Krylov solves."""
    return {k: v for k, v in eigen_settings(wildcards).items() if k not in EXACT_ONLY + ("block_krylov",)}


def exact_settings(wildcards):
    """What the exact solve depends on: the eigen settings less those of the sketch, its products
    in ``eigen.exact_dtype`` (float64: the reference is built from float64 products)."""
    eigen = eigen_settings(wildcards)
    settings = {
        k: v for k, v in eigen.items() if k not in ("sketch", "block_krylov", "aposteriori_samples") + EXACT_ONLY
    }
    return {**settings, "dtype": eigen["exact_dtype"]}


def krylov_settings(wildcards):
    """What a block Krylov job depends on: the eigen settings less the exact and sketch ones, with
    the budget and k resolved (their defaults are the sketch's t and s)."""
    eigen = eigen_settings(wildcards)
    outer, inner = sketch_sizes(experiment(wildcards))
    krylov = dict(eigen["block_krylov"], budget=eigen["block_krylov"]["budget"] or inner)
    krylov["k"] = krylov["k"] or outer
    settings = {k: v for k, v in eigen.items() if k not in ("sketch", "block_krylov") + EXACT_ONLY}
    return {**settings, "block_krylov": krylov}


def experiments_matching(keep):
    """A wildcard constraint matching exactly the enabled experiments for which ``keep(exp)`` holds
    (a pattern that matches nothing when there are none)."""
    names = [re.escape(name) for name, exp in EXPERIMENTS.items() if keep(exp)]
    return "|".join(names) or "(?!)"


#: experiments whose SEIGH sketch is measured and solved in one job (sketch.shards = 1:
#: eigen_sketch) and those whose shards are measured by eigen_measure jobs and merged by eigen_solve
SEIGH_ONE_JOB = experiments_matching(lambda exp: exp["eigen"]["sketch"]["shards"] == 1)
SEIGH_SHARDED = experiments_matching(lambda exp: exp["eigen"]["sketch"]["shards"] > 1)
#: experiments whose block Krylov solve runs as one job (every pass and the solve: eigen_krylov)
#: and those whose passes run as a basis job and measurement shards
KRYLOV_ONE_JOB = experiments_matching(lambda exp: exp["eigen"]["block_krylov"]["shards"] == 1)
KRYLOV_SHARDED = experiments_matching(lambda exp: exp["eigen"]["block_krylov"]["shards"] > 1)


def krylov_path(wildcards, *parts):
    """A pass store of the block Krylov solve of the job's (experiment, split, step)."""
    return results(
        wildcards.experiment, "eigen", "block_krylov_passes", wildcards.split, f"step={wildcards.step}", *parts
    )


def krylov_images(wildcards, passes=None):
    """The product shards of passes 0..passes-1 (all passes by default), in column order."""
    krylov = experiment(wildcards)["eigen"]["block_krylov"]
    passes = krylov["passes"] if passes is None else passes
    return [
        krylov_path(wildcards, f"image_pass={p}", f"shard={i}.zarr")
        for p in range(passes)
        for i in range(krylov["shards"])
    ]


def krylov_bases(wildcards, passes=None):
    """The bases Q_0..Q_{passes-1} (all passes by default)."""
    passes = experiment(wildcards)["eigen"]["block_krylov"]["passes"] if passes is None else passes
    return [krylov_path(wildcards, f"basis_pass={p}.zarr") for p in range(passes)]


def krylov_basis_inputs(wildcards):
    """Q_p needs Q_0..Q_{p-1} and the products of pass p - 1 (p = 0: only the checkpoint, for D)."""
    p = int(wildcards.p)
    images = krylov_images(wildcards, p)[-experiment(wildcards)["eigen"]["block_krylov"]["shards"] :] if p else []
    return {
        "checkpoint": checkpoint_path(wildcards.experiment, wildcards.step),
        "bases": krylov_bases(wildcards, p),
        "images": images,
    }


def shard_stores(wildcards):
    """The measurement shards of one (step, split)."""
    return expand(
        results(
            wildcards.experiment,
            "eigen",
            "seigh_shards",
            wildcards.split,
            f"step={wildcards.step}",
            "shard={shard}.zarr",
        ),
        shard=range(experiment(wildcards)["eigen"]["sketch"]["shards"]),
    )


def eigen_gpu(wildcards):
    return gpus(wildcards, "eigen")


def step_eigen_stores(wildcards):
    """The eigen stores of one (step, split), one per method run there."""
    exp = experiment(wildcards)
    return [
        eigen_store(wildcards.experiment, m, wildcards.split, wildcards.step)
        for m in eigen_methods(exp, wildcards.step)
    ]


def experiment_eigen_stores(wildcards):
    """Every eigen store of the experiment, in the order of ``experiment_eigen_keys``."""
    return [eigen_store(wildcards.experiment, *key) for key in experiment_eigen_keys(wildcards)]


def experiment_eigen_keys(wildcards):
    """(method, split, step) of every eigen store of the experiment."""
    exp = experiment(wildcards)
    return [(method, split, step) for split, step in eigen_jobs(exp) for method in eigen_methods(exp, step)]


def method_eigen_keys(wildcards):
    """(method, split, step) of every eigen store of one method (``wildcards.method``)."""
    return [key for key in experiment_eigen_keys(wildcards) if key[0] == wildcards.method]


def method_eigen_stores(wildcards):
    """The eigen stores of one method, in the order of ``method_eigen_keys``."""
    return [eigen_store(wildcards.experiment, *key) for key in method_eigen_keys(wildcards)]


def eigenspace_pair_stores(wildcards):
    """One eigenspace-pairs store per eigen method of the experiment."""
    return [
        results(wildcards.experiment, "metrics", "eigenspace_pairs", f"{method}.zarr")
        for method in eigen_methods(experiment(wildcards))
    ]


def experiment_targets():
    targets = []
    for name, exp in EXPERIMENTS.items():
        targets += [
            results(name, "training.zarr"),
            results(name, "params.zarr"),
            results(name, "masks.zarr"),
        ]
        if eigen_methods(exp) and hessian_splits(exp):
            targets += [results(name, "metrics.zarr"), results(name, "summary.md")]
            # the eigen stores are results too: a deleted one is rebuilt by the next run
            targets += [
                eigen_store(name, method, split, step)
                for split, step in eigen_jobs(exp)
                for method in eigen_methods(exp, step)
            ]
            targets += [
                results("figures", name, f"{fig}.{ext}") for fig in EXPERIMENT_FIGURES for ext in ("png", "pdf")
            ]
    return targets


# ---------------------------------------------------------------- figures

EXPERIMENT_FIGURES = {
    "crystallization": ("Crystallization", "crystallization.rst"),
    "metrics_over_steps": ("Grassmannian metrics", "metrics_over_steps.rst"),
    "kappa_accuracy": ("Training and concentration", "kappa_accuracy.rst"),
    "similarity_matrices": ("Similarity between steps", "similarity_matrices.rst"),
    "exact_vs_sketched": ("Exact vs sketched", "exact_vs_sketched.rst"),
    "overlap_vs_k": ("Overlap vs k", "overlap_vs_k.rst"),
    "magnitude_vs_random": ("Magnitude vs random masks", "magnitude_vs_random.rst"),
    "accuracy_vs_products": ("Accuracy per product", "accuracy_vs_products.rst"),
    "runtime_breakdown": ("Runtime", "runtime_breakdown.rst"),
}


def figure_outputs(ext):
    """The figure files of one experiment; the PNGs are registered for the report."""
    paths = {name: results("figures", "{experiment}", f"{name}.{ext}") for name in EXPERIMENT_FIGURES}
    if ext != "png":
        return paths
    return {
        name: report(paths[name], category="{experiment}", subcategory=label, caption=f"../report/{caption}")
        for name, (label, caption) in EXPERIMENT_FIGURES.items()
    }


# ---------------------------------------------------------------- degrees of freedom

from hessmask.config import dof_hessian_k, dof_levels  # noqa: E402
from hessmask.dof_methods import METHODS as DOF_METHODS  # noqa: E402
from hessmask.dof_methods import chunk_grid, chunk_runs, job_settings, main_offset_steps, method_inputs  # noqa: E402

DOF_FIGURES = {
    "success": ("Success probability", "dof_success.rst"),
    "threshold_dimension": ("Threshold training dimension", "dof_threshold.rst"),
    "compression": ("Accuracy vs compression", "dof_compression.rst"),
    "start_step": ("Threshold dimension vs start step", "dof_start_step.rst"),
}
DOF_EXPERIMENTS = {name: exp for name, exp in EXPERIMENTS.items() if exp["dof"]["enabled"]}


def dof(wildcards):
    return experiment(wildcards)["dof"]


def dof_key(*keys, only=None):
    """experiment_key under ``experiments.<experiment>.dof``."""
    return experiment_key("dof", *keys, only=only)


def dof_chunk_paths(wildcards):
    """Every subspace job's store of the experiment (hessmask.dof_methods.chunk_grid)."""
    return [
        results(wildcards.experiment, "dof", "chunks", m, f"t={t}", f"d={d}", f"chunk={c}.zarr")
        for m, t, d, c in chunk_grid(dof(wildcards))
    ]


def dof_chunk_inputs(wildcards):
    """The inputs of one (method, t) job, from hessmask.dof_methods.method_inputs."""
    name, exp = wildcards.experiment, experiment(wildcards)
    inputs = {"data": prepared_dataset(wildcards)}
    for role, (kind, *spec) in method_inputs(
        wildcards.method, int(wildcards.t), dof(wildcards), exp["train"]["steps"]
    ).items():
        if kind == "checkpoint":
            inputs[role] = checkpoint_path(name, spec[0])
        elif kind == "trajectory":
            inputs[role] = results(name, "dof", "trajectory.zarr")
        else:
            inputs[role] = eigen_store(name, *spec)
    return inputs


def dof_targets():
    targets = []
    for name, exp in DOF_EXPERIMENTS.items():
        targets.append(results("dof", f"{name}.zarr"))
        targets += [results("figures", "dof", name, f"{fig}.{ext}") for fig in DOF_FIGURES for ext in ("png", "pdf")]
    if config["dof_quadratic"]["enabled"]:
        targets += [results("dof", "quadratic_well.zarr")]
        targets += [results("figures", "dof", f"quadratic_well.{ext}") for ext in ("png", "pdf")]
    return targets


def dof_resources(wildcards):
    return int(dof(wildcards)["device"].startswith("cuda"))
