"""Timing shared by the benchmarks (run as scripts from this folder, which is then on sys.path)."""

from __future__ import annotations

import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """(the shortest wall time of ``repeat`` calls of ``fn`` in seconds, what the last call returned)."""
    shortest, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        shortest = min(shortest, time.perf_counter() - start)
    return shortest, out


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """The shortest wall time of ``repeat`` calls of ``fn``, in seconds."""
    return timed(fn, repeat)[0]
