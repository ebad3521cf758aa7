"""Where every file of the study lives: the one layout the rules, the scripts and the tests use.

Each method takes its parts as strings, so the rules pass wildcards (``"{experiment}"``) and get
patterns, and a script or a test passes values and gets the path of one file. torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths under the results folder ``root`` (config ``results``) and the data folder ``data``."""

    root: str = "results"
    data: str = "data"

    def path(self, *parts: object) -> str:
        """A path under the results folder."""
        return str(Path(self.root, *map(str, parts)))

    # ------------------------------------------------------------------ data and training

    def prepared(self, dataset: object) -> str:
        """The prepared arrays of a dataset (``data.dir``)."""
        return str(Path(self.data, f"{dataset}.npz"))

    def checkpoint(self, experiment: object, step: object) -> str:
        """The checkpoint of an experiment at a step."""
        return self.path(experiment, "checkpoints", f"step={step}.pt")

    @staticmethod
    def digest(path: str) -> str:
        """The digest sidecar of a checkpoint or prepared dataset (``hessmask.digests.sidecar``)."""
        return f"{path}.sha256"

    def segment(self, experiment: object, step: object) -> str:
        """The training segment store ending at a step (batch losses, evaluation, theta)."""
        return self.path(experiment, "train", f"segment_step={step}.zarr")

    def experiment_store(self, experiment: object, name: str) -> str:
        """An aggregate store of an experiment: training, theta, masks or metrics."""
        return self.path(experiment, f"{name}.zarr")

    # ------------------------------------------------------------------ eigen

    def eigen_store(self, experiment: object, method: object, split: object, step: object) -> str:
        """The eigen store of one (method, split, step)."""
        return self.path(experiment, "eigen", method, split, f"step={step}.zarr")

    def eigen_part(self, experiment: object, method: object, split: object, step: object, *names: object) -> str:
        """A part store of a sharded eigen solve (``SolveSpec.parts``: shards, pass stores)."""
        return self.path(experiment, "eigen", "parts", method, split, f"step={step}", *names)

    def eigen_timings(self, experiment: object, method: object, split: object, step: object) -> str:
        """Wall time per phase of one eigen solve (kept out of the store, which stays byte-stable)."""
        return self.path("benchmarks", "eigen_phases", experiment, method, split, f"step={step}.json")

    # ------------------------------------------------------------------ metrics

    def step_metrics(self, experiment: object, split: object, step: object) -> str:
        """The per-step metrics of one (split, step)."""
        return self.path(experiment, "metrics", split, f"step={step}.zarr")

    def eigenspace_pairs(self, experiment: object, method: object) -> str:
        """One method's eigenspace overlaps between steps and splits."""
        return self.path(experiment, "metrics", "eigenspace_pairs", f"{method}.zarr")

    # ------------------------------------------------------------------ degrees of freedom

    def dof_start(self, experiment: object, t: object, chunk: object) -> str:
        """One start-step job's store: (start step t, chunk of runs)."""
        return self.path(experiment, "dof", "start", f"t={t}", f"chunk={chunk}.zarr")

    def dof_lottery(self, experiment: object, subspace: object) -> str:
        """One lottery subspace's store (every run)."""
        return self.path(experiment, "dof", "lottery", f"{subspace}.zarr")

    def dof_runs(self, experiment: object) -> str:
        """The folder of the runs' own trainings: ``run=<r>/step=<t>.pt`` (runs >= 1)."""
        return self.path(experiment, "dof", "runs")

    @staticmethod
    def dof_run_checkpoint(folder: object, run: object, step: object) -> str:
        """Run ``run``'s checkpoint at ``step`` inside the folder of :meth:`dof_runs`."""
        return str(Path(str(folder), f"run={run}", f"step={step}.pt"))

    def dof_store(self, experiment: object, name: str) -> str:
        """A dof store of an experiment: the trajectory or the full-space reference."""
        return self.path(experiment, "dof", f"{name}.zarr")

    # ------------------------------------------------------------------ jobs and figures

    def log(self, rule: str, *parts: object) -> str:
        """A job's log: ``logs/<rule>/<parts...>.log``."""
        return self.path("logs", rule, *parts[:-1], f"{parts[-1]}.log") if parts else self.path("logs", f"{rule}.log")

    def benchmark(self, rule: str, *parts: object) -> str:
        """A job's Snakemake benchmark record: ``benchmarks/rules/<rule>/<parts...>.tsv``."""
        if not parts:
            return self.path("benchmarks", "rules", f"{rule}.tsv")
        return self.path("benchmarks", "rules", rule, *parts[:-1], f"{parts[-1]}.tsv")

    def figure(self, *parts: object) -> str:
        """A figure file under ``figures/``."""
        return self.path("figures", *parts)


def unwritable(folder: str | Path, key: str, writing: bool = True) -> str | None:
    """Why the workflow could not write under ``folder`` (config key ``key``), or None: checked when
    the workflow is read (a part of the path that is a file, which fails even a dry-run) and, with
    ``writing``, when a run starts (a read-only folder), so that either is named instead of failing
    inside Snakemake or the first job with a traceback."""
    folder = Path(folder).resolve()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"config key '{key}': {folder} is not a folder ({existing} is a file)"
    if writing and not os.access(existing, os.W_OK | os.X_OK):
        return (f"config key '{key}': {folder} cannot be written ({existing} is read-only for this user): point "
                f"'{key}' at a writable folder, or make it writable")
    return None
