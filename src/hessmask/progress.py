"""Progress and logging of long work, the leaf every layer may import.

A job logs INFO and above to its log file and to stderr (``setup_logging``), and long loops show
their progress as log lines with count, rate and ETA at a fixed cadence (``Progress``, ``track``):
SLURM jobs have no terminal, so a tqdm bar alone would leave their logs silent.
"""

from __future__ import annotations

import logging
import sys
import time
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
    logger = logging.getLogger(name)

    def log_uncaught(kind, value, traceback) -> None:
        # the job's log (what --show-failed-logs prints) gets the traceback, not only stderr
        logger.critical("job failed", exc_info=(kind, value, traceback))

    sys.excepthook = log_uncaught
    return logger


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
