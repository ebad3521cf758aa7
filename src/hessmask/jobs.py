"""Job assembly: what a workflow job reads (its data, checkpoint, curvature operator, stores) turned
into the one library call that does its work.

The top layer of the library: only the workflow's scripts import it, nothing in the library does.
Kept free of Snakemake imports: scripts pass plain paths and values in, so every function here can
run one job from a test or a debugger.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger("hessmask")


def experiment_data(model: str, dataset: str, synthetic_samples: int, seed: int,
                    prepared: Sequence[str] | None, data_config: Mapping[str, Any]):
    """The ``Data`` a job of one experiment reads: its prepared npz (the rule's ``data`` input,
    empty for imagenet and synthetic data), the ImageNet tree (``data_config``: the workflow's
    ``data`` section, for ``imagenet_root`` and ``loader_workers``), or synthetic inputs of the
    model's shape (seeded by ``seed``)."""
    from hessmask.data import open_experiment_data
    from hessmask.models import DEFAULT_CLASSES, INPUT_SHAPES

    return open_experiment_data(dataset, (list(prepared or []) or [None])[0], data_config,
                                INPUT_SHAPES[model], DEFAULT_CLASSES[model], synthetic_samples, seed)


def excluded_parameters(model: str, groups: Sequence[str], classes: int | None) -> Any:
    """``hessmask.models.excluded_parameters`` (the (D,) mask of ``masks.exclude``, or None),
    importing torch to build the model only when a group is named: the jobs that only read stores
    (per-step metrics, mask statistics) then start without torch, about 1.4 s sooner."""
    if not groups:
        return None
    from hessmask.models import excluded_parameters as from_model

    return from_model(model, groups, classes)


def segment_theta(path: str | Path) -> Any:
    """theta at the end step of a training segment store (its ``theta``), read without torch.

    Raises:
        SystemExit: naming the store, if it has no ``theta`` (written before the segment stores
            carried it under that name): its training segments have to be rerun.
    """
    from hessmask.store import open_dataset

    segment = open_dataset(path, load=False)
    if "theta" not in segment:
        raise SystemExit(f"{path} has no 'theta': it was written by an earlier version of the training segment "
                         "stores; rerun training with `snakemake --forcerun train_segment`")
    return segment["theta"].values


@dataclass
class EigenJob:
    """One job of the eigen stage, in plain values (what its script passes in).

    Args:
        method: the eigen method (``hessmask.eigen.methods.NAMES``).
        spec: its spec as the job's params (``SolveSpec.params``).
        experiment: the experiment's training settings (model, dataset, synthetic_samples, train).
        samples: examples of the Hessian subset.
        split, step: the Hessian's split and record step.
        data: the prepared dataset (the rule's ``data`` input; empty for imagenet and synthetic data).
        checkpoint: the checkpoint at ``step``.
        data_config: the workflow's ``data`` section (where the data live: no rerun trigger).
        parts: the part stores the job reads (shards, pass stores), in the order its writer takes them.
    """

    method: str
    spec: Mapping[str, Any]
    experiment: Mapping[str, Any]
    samples: int
    split: str
    step: int
    data: Sequence[str]
    checkpoint: str
    data_config: Mapping[str, Any]
    parts: Sequence[str] = field(default_factory=list)

    def solve_spec(self):
        """The typed spec of the job's method."""
        from hessmask.eigen.methods import from_params

        return from_params(self.method, self.spec)

    def attrs(self, **extra: Any) -> dict[str, str]:
        """The provenance of the job's stores: its method's settings, the split and the step."""
        from hessmask.store import provenance

        return provenance({"method": self.method, **self.spec}, split=self.split, step=self.step, **extra)

    def operator(self):
        """The curvature operator of the job: the checkpoint at ``step`` over the class-balanced
        Hessian subset of ``split``, with the method's curvature, precision and product blocks."""
        from hessmask.curvature import curvature_operator
        from hessmask.data import class_balanced_indices
        from hessmask.training import Checkpoint

        exp, spec = self.experiment, self.solve_spec()
        data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                               self.data, self.data_config)
        idx = class_balanced_indices(data.labels(self.split), self.samples, data.num_classes)
        x, y = data.batch(self.split, idx)
        model = Checkpoint.load(self.checkpoint, map_location="cpu").model(spec.device)
        operator = curvature_operator(model, x, y, spec.curvature, spec.dtype, spec.device, spec.block_size,
                                      spec.data_chunk)
        log.info("%s: D = %d, %d examples of %s, step %d", self.method, operator.dim, operator.num_examples,
                 self.split, self.step)
        return operator

    def dim(self) -> int:
        """D, read from the checkpoint (the jobs that need no operator)."""
        from hessmask.training import Checkpoint

        return int(Checkpoint.load(self.checkpoint, map_location="cpu").parameters().size)


def eigen_store(job: EigenJob, path: str | Path) -> dict[str, float]:
    """The eigen store of one (method, split, step) at ``path``, by the method's registry writer
    (from ``job.parts`` where the method is sharded). Returns its wall time per phase."""
    from hessmask.eigen import methods

    writer = methods.function(methods.method(job.method).store)
    return writer(job.operator(), job.solve_spec(), job.step, list(job.parts), path, job.attrs())


def seigh_shard(job: EigenJob, shard: int, path: str | Path) -> None:
    """Measurement shard ``shard`` of a SEIGH sketch."""
    from hessmask.eigen.seigh_store import measure_shard

    measure_shard(job.operator(), job.solve_spec(), shard, path, job.attrs())


def krylov_basis(job: EigenJob, bases: Sequence[str], images: Sequence[str], path: str | Path) -> None:
    """Q_p of a block Krylov pass p = len(bases), from the earlier bases and the products of pass p - 1."""
    from hessmask.eigen.krylov_store import basis_store

    basis_store(job.solve_spec(), job.dim(), job.step, bases, images, path, job.attrs())


def krylov_image(job: EigenJob, basis: str, krylov_pass: int, shard: int, path: str | Path) -> None:
    """One shard of the products H Q_p of block Krylov pass ``krylov_pass``."""
    from hessmask.eigen.krylov_store import measure_store

    measure_store(job.operator(), job.solve_spec(), basis, shard, path, job.attrs(krylov_pass=krylov_pass))
