"""Helpers for the thin workflow scripts: logging into the job's log file.

Kept free of Snakemake imports: scripts pass plain paths and values in.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

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
    return logging.getLogger(name)


def experiment_data(model: str, dataset: str, synthetic_samples: int, seed: int,
                    prepared: Sequence[str] | None, imagenet_root: str | None):
    """The ``Data`` a job of one experiment reads: its prepared npz (the rule's ``data`` input,
    empty for imagenet and synthetic data), the ImageNet tree, or synthetic inputs of the model's
    shape (seeded by ``seed``)."""
    from hessmask.data import open_experiment_data
    from hessmask.models import DEFAULT_CLASSES, INPUT_SHAPES

    return open_experiment_data(dataset, (list(prepared or []) or [None])[0], {"imagenet_root": imagenet_root},
                                INPUT_SHAPES[model], DEFAULT_CLASSES[model], synthetic_samples, seed)
