"""The study's seed derivations, each defined once (numpy only).

Every random draw has an explicit seed derived from a configured one: per training step and stream
(dropout, augmentation, the subspace runs' data orders and bases), and per record step (the random
masks of the metrics and the a-posteriori test vectors of an eigen solve at that step).
"""

from __future__ import annotations

import numpy as np


def step_seed(seed: int, step: int, stream: int) -> int:
    """A 63-bit seed for the per-step random draws of one stream (1 = dropout, 2 = augmentation,
    3 / 4 / 5 = a subspace run's data order, basis and initialization, with the run as ``step``)."""
    return int(np.random.SeedSequence([seed, stream, step]).generate_state(1, np.uint64)[0] >> 1)


def record_step_seed(seed: int, step: int) -> int:
    """The seed of the draws made for record step ``step``: ``seed + step`` (the random masks of
    ``metrics.seed``, the a-posteriori test vectors of an eigen method's ``seed``)."""
    return int(seed) + int(step)
