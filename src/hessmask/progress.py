"""Progress, logging and the lifetime of a job: the leaf every layer may import.

A job logs INFO and above to its log file and to stderr (``setup_logging``), and long loops show
their progress as log lines with count, rate and ETA at a fixed cadence (``Progress``, ``track``):
SLURM jobs have no terminal, so a tqdm bar alone would leave their logs silent. A job stopped by a
signal says so in its log, and a job whose workflow was killed stops too (``stop_with_workflow``)
instead of publishing its outputs later beside a rerun's.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

from hessmask.atomic import running

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
        if issubclass(kind, KeyboardInterrupt):  # a user's stop is no failure to debug: no traceback
            logger.error("job stopped by the user (SIGINT); its outputs were not written")
            return
        # the job's log (what --show-failed-logs prints) gets the traceback, not only stderr
        logger.critical("job failed", exc_info=(kind, value, traceback))

    def stopped(signum, _frame) -> None:
        logger.error("job stopped by %s (the workflow was stopped, or the scheduler ended the job); its outputs "
                     "were not written", signal.Signals(signum).name)
        raise SystemExit(128 + signum)  # unwinds through the writers, which remove their temporaries

    sys.excepthook = log_uncaught
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stopped)
    return logger


def workflow_process(pid: int | None = None) -> int | None:
    """The id of the nearest ancestor process that is Snakemake (the workflow that started this job),
    from /proc; None where there is none or no /proc."""
    pid = os.getppid() if pid is None else pid
    for _ in range(32):
        if pid <= 1:
            return None
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # the snakemake executable, or python -m snakemake (not the shell running a job's
        # .snakemake/scripts/... file, whose command only mentions the word)
        if any(Path(arg).name == "snakemake" for arg in args) or any(
                a == "-m" and b == "snakemake" for a, b in zip(args, args[1:])):
            return pid
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent's id
    return None


def stop_with_workflow(every: float = 2.0, workflow: int | None = None) -> threading.Thread | None:
    """End this job when the Snakemake process that started it has ended (killed with SIGKILL, a
    lost terminal): it would otherwise run on as an orphan and publish its outputs after a rerun had
    started writing them. A daemon thread checks every ``every`` seconds and exits the process
    without publishing (a temporary it leaves is removed by the next writer of that output).
    Returns the thread, or None where no workflow ancestor is found (a job run by hand)."""
    workflow = workflow_process() if workflow is None else workflow
    if workflow is None:
        return None
    logger = logging.getLogger("hessmask")

    def watch() -> None:
        while True:
            time.sleep(every)
            if not running(workflow):
                logger.error("the Snakemake process %d that started this job has ended: this job stops without "
                             "writing its outputs (rerun the workflow with --rerun-incomplete)", workflow)
                logging.shutdown()
                os._exit(75)

    thread = threading.Thread(target=watch, name="stop-with-workflow", daemon=True)
    thread.start()
    return thread


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
