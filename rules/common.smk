# The rules' shared state: the validated config (defaults filled, unknown keys rejected, every
# default of an eigen method resolved), where each file lives (hessmask.paths.Layout) and the
# accessors of an experiment's settings by the job's wildcards. Input functions: inputs.smk;
# resources: resources.smk; what `all` builds: targets.smk. No rule is defined here (snakemake
# --lint keeps functions and rules apart).

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

try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

from hessmask.dof.methods import LOTTERY_SUBSPACES, SUBSPACES  # noqa: E402
from hessmask.eigen.methods import NAMES as EIGEN_METHODS  # noqa: E402
from hessmask.figures import DOF_FIGURES, EXPERIMENT_FIGURES, SYNTHETIC_FIGURES  # noqa: E402
from hessmask.paths import Layout, unwritable  # noqa: E402
from hessmask.synthetic import grid_cells  # noqa: E402

LAYOUT = Layout(config["results"], config["data"]["dir"])
for _folder, _key in ((config["results"], "results"), (config["data"]["dir"], "data.dir")):
    if unwritable(_folder, _key, writing=False):  # a file where a folder must be: even a dry-run fails
        raise WorkflowError(unwritable(_folder, _key, writing=False))
SYNTHETIC_CELLS = grid_cells(config["synthetic"]["grids"])
EXPERIMENTS = {name: exp for name, exp in config["experiments"].items() if exp["enabled"]}
DOF_EXPERIMENTS = {name: exp for name, exp in EXPERIMENTS.items() if exp["dof"]["enabled"]}
PREPARED_DATASETS = ["mnist5k", "mnist", "cifar10", "cifar100"]


def one_of(names):
    """A wildcard constraint matching exactly ``names`` (a pattern matching nothing when there are none)."""
    return "|".join(re.escape(str(name)) for name in names) or "(?!)"


def experiment(wildcards):
    """The validated config of the experiment named by the job's wildcards."""
    return EXPERIMENTS[wildcards.experiment]


def experiment_key(*keys, only=None):
    """An input/params/resources function reading ``experiments.<experiment>.<keys...>`` of the
    job's experiment; ``only`` picks some keys of the node as a dict."""

    def value(wildcards, *_):
        node = experiment(wildcards)
        for key in keys:
            node = node[key]
        return node if only is None else {k: node[k] for k in only}

    value.__name__ = "experiment_" + "_".join(keys or ("config",))
    return value


def from_experiment(func, *keys):
    """An input/params function: ``func`` of ``experiments.<experiment>.<keys...>`` (of the whole
    experiment when no keys are given), e.g. ``from_experiment(eigen_jobs)``."""
    read = experiment_key(*keys)

    def value(wildcards, *_):
        return func(read(wildcards))

    value.__name__ = f"{func.__name__}_of_experiment"
    return value


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


def dof(wildcards):
    """The ``dof`` section of the job's experiment."""
    return experiment(wildcards)["dof"]


def dof_key(*keys, only=None):
    """experiment_key under ``experiments.<experiment>.dof``."""
    return experiment_key("dof", *keys, only=only)
