"""Helpers for the thin workflow scripts: logging into the job's log file.

Kept free of Snakemake imports: scripts pass plain paths and values in.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_files: Sequence[str] | str | None, name: str = "hessmask") -> logging.Logger:
    """Log INFO and above to the job's log file (if any) and to stderr; return the logger."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_files:
        path = Path(log_files if isinstance(log_files, str) else log_files[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    logger = logging.getLogger(name)

    def log_uncaught(kind, value, traceback) -> None:
        # the job's log (what --show-failed-logs prints) gets the traceback, not only stderr
        logger.critical("job failed", exc_info=(kind, value, traceback))

    sys.excepthook = log_uncaught
    return logger


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
    """theta at the end step of a training segment store (its ``params``), read without torch.

    Raises:
        SystemExit: naming the store, if it has no ``params`` (written before the segment stores
            carried theta): its training segments have to be rerun.
    """
    from hessmask.store import open_dataset

    segment = open_dataset(path, load=False)
    if "params" not in segment:
        raise SystemExit(f"{path} has no 'params' (theta): it was written before the training segment stores "
                         "carried theta; rerun training with `snakemake --forcerun train_segment`")
    return segment["params"].values


def hessian_job(params, inputs, wildcards, config):
    """The curvature operator of an eigen job: the checkpoint of ``wildcards.step`` over the
    class-balanced Hessian subset of ``wildcards.split`` (``params``: experiment, eigen, samples;
    ``inputs``: data, checkpoint; ``config``: the workflow config, read only for where the data
    live, which is deliberately no rerun trigger)."""
    from hessmask.eigen_stores import hessian_operator
    from hessmask.training import Checkpoint

    exp = params.experiment
    data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                           inputs.data, config["data"])
    checkpoint = Checkpoint.load(inputs.checkpoint, map_location="cpu")
    operator = hessian_operator(checkpoint, data, wildcards.split, params.samples, params.eigen)
    logging.getLogger("hessmask").info("D = %d, %d examples of %s, step %s", operator.dim, operator.num_examples,
                                       wildcards.split, wildcards.step)
    return operator


class Progress:
    """Progress of long work as log lines: count, rate and ETA every ``every`` seconds (and at the
    end), with or without a terminal (SLURM jobs have none, so tqdm would stay silent)."""

    def __init__(self, label: str, total: int, unit: str = "items", every: float = 30.0,
                 logger: logging.Logger | None = None):
        self.label, self.total, self.unit, self.every = label, int(total), unit, float(every)
        self.log = logger or logging.getLogger("hessmask.progress")
        self.done = 0
        self.start = self.last = time.monotonic()

    def update(self, count: int = 1) -> None:
        """Record ``count`` more units; log when the cadence is due or the work is complete."""
        self.done += int(count)
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            elapsed = max(now - self.start, 1e-9)
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            self.log.info("%s: %d/%d %s (%.0f%%), %.3g %s/s, elapsed %.0f s, ETA %.0f s", self.label, self.done,
                          self.total, self.unit, 100.0 * self.done / max(self.total, 1), rate, self.unit, elapsed, eta)


def track(items, label: str, unit: str = "steps", progress: bool | None = None, every: float = 30.0):
    """Iterate over ``items`` showing progress: a tqdm bar on a terminal (``progress`` None: only
    there; True: always) and, unless ``progress`` is False, a ``Progress`` log line every ``every``
    seconds and at the end, which is what a SLURM job's log shows."""
    from tqdm.auto import tqdm

    items = list(items)
    meter = None if progress is False else Progress(label, len(items), unit=unit, every=every)
    for item in tqdm(items, desc=label, disable=None if progress is None else not progress):
        yield item
        if meter is not None:
            meter.update()
