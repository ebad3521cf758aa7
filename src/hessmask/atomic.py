"""Temporary names of writers in progress: every output is written beside its final path under a
hidden name and renamed into place when complete, so an interrupted job never leaves a file that
looks finished.

A temporary's name records who writes it (``.<name>.tmp-<host>-<pid>-<random>``), so that the next
writer of the same output removes only the leftovers of writers that no longer run: a killed job's
on this host, never a live one's (an orphaned job still running after its workflow was killed)
and never another host's on a shared file system. Temporaries named by earlier versions
(``.<name>.tmp-<random>``) carry no writer and are removed. Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from pathlib import Path

#: the writer of a temporary: host and process id (host names keep their own dashes)
_TAGGED = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}$")


def writer_tag() -> str:
    """``<host>-<pid>`` of this process."""
    return f"{socket.gethostname()}-{os.getpid()}"


def temporary_name(path: Path | str) -> Path:
    """A fresh temporary sibling name of ``path`` (nothing is created)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{writer_tag()}-{uuid.uuid4().hex[:8]}")


def running(pid: int) -> bool:
    """Whether a process of this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def stale(temporary: Path) -> bool:
    """Whether a temporary is a leftover: its writer ran on this host and runs no more, or it was
    named by an earlier version (no writer recorded)."""
    tag = temporary.name.rsplit(".tmp-", 1)[-1]
    match = _TAGGED.match(tag)
    if match is None:
        return True
    return match["host"] == socket.gethostname() and not running(int(match["pid"]))


def remove_stale(path: Path | str) -> list[Path]:
    """Remove the stale temporaries of ``path`` (see :func:`stale`); returns what was removed."""
    path = Path(path)
    removed = []
    for candidate in path.parent.glob(f".{path.name}.tmp-*"):
        if stale(candidate):
            shutil.rmtree(candidate, ignore_errors=True) if candidate.is_dir() else candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed
