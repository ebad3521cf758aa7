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


def network_operator(network: str, block_size: int, samples: int = 2, device: str = "cpu"):
    """The float32 Hessian operator of a network at its initialization (seed 12345) at its real D,
    over ``samples`` class-balanced synthetic test inputs of its real shape."""
    from hessmask.curvature import curvature_operator
    from hessmask.data import TensorData, class_balanced_indices, synthetic_splits
    from hessmask.models import DEFAULT_CLASSES, INPUT_SHAPES
    from hessmask.training import TrainSettings, initial_checkpoint

    classes = DEFAULT_CLASSES[network]
    data = TensorData(synthetic_splits(INPUT_SHAPES[network], classes, samples, seed=0))
    checkpoint = initial_checkpoint(network, classes, TrainSettings(lr=0.1, batch_size=2, seed=12345))
    x, y = data.batch("test", class_balanced_indices(data.labels("test"), samples, classes))
    return curvature_operator(checkpoint.model(device), x, y, "hessian", "float32", device, block_size)
