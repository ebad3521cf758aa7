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
