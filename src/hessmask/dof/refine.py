"""Reading d* from trainings at a few d, and refining it: the first crossing of a level, the
bisection between grid points, and the intervals the success probabilities carry. numpy only.

A run reaches an accuracy level at d when its accuracy at d, or at a smaller evaluated d, is at
least the level (the subspaces are nested, so a larger subspace contains every smaller one; the
running maximum is what Adam found in the best of them). Its threshold d*_r is the smallest
evaluated d that reaches the level; everything evaluated below d*_r did not, so the true first
crossing lies in the bracket (lo_r, d*_r], lo_r the largest evaluated d below d*_r (0: the offset
itself, d = 0). Where the offset w_t already has the level, the run needs no training dimension at
all: d*_r = 0, flagged as ``offset_reached``, never read as a crossing of the subspace. Bisection
evaluates the geometric midpoint of every bracket wider than one d, for a given number of rounds:
each round halves the bracket on a log scale.

Over R runs, the success probability at d is the fraction of runs with d*_r <= d, and the threshold
dimension d* (seed 004, Definition 2.1: the smallest d with success probability >= 1 - delta) is the
ceil((1 - delta) R)-th smallest d*_r. Its 95 % intervals are Wilson score intervals of the counts.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

#: the normal quantile of two-sided 95 % intervals
Z95 = 1.959963984540054


def first_crossing(dims: Sequence[float], accuracy: Sequence[float], offset: float, level: float
                   ) -> tuple[float, float]:
    """(lo, hi) of one run at one level from its evaluated (d, accuracy) pairs (any order, NaN
    accuracies skipped): hi = the smallest d whose running-max accuracy reaches ``level`` (0 when the
    offset's accuracy already does; NaN when no evaluated d does), lo = the largest evaluated d below
    hi (0 for the offset; for no crossing, the largest evaluated d)."""
    d = np.asarray(dims, dtype=np.float64)
    a = np.asarray(accuracy, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(d)
    d, a = d[ok], a[ok]
    order = np.argsort(d, kind="stable")
    d, a = d[order], a[order]
    if offset >= level:
        return 0.0, 0.0
    reached = np.flatnonzero(a >= level)
    if reached.size == 0:
        return (float(d[-1]) if d.size else 0.0), float("nan")
    first = int(reached[0])
    return (float(d[first - 1]) if first > 0 else 0.0), float(d[first])


def midpoint(lo: float, hi: float) -> int | None:
    """The d bisection evaluates next in the bracket (lo, hi]: the geometric midpoint rounded to an
    integer strictly between them (lo = 0: between 1 and hi); None when no integer lies between."""
    lo, hi = int(lo), int(hi)
    if hi - lo < 2:
        return None
    mid = int(round(math.sqrt(max(lo, 1) * hi))) if lo >= 1 else int(round(math.sqrt(hi)))
    return min(max(mid, lo + 1), hi - 1)


def next_dims(evaluated: Mapping[int, float], offset: float, levels: Sequence[float]) -> list[int]:
    """The d values one bisection round evaluates for one run and subspace: the midpoint of the
    bracket of each level that has a crossing (sorted, each once)."""
    dims = sorted(evaluated)
    accuracy = [evaluated[d] for d in dims]
    wanted = set()
    for level in levels:
        lo, hi = first_crossing(dims, accuracy, offset, level)
        if np.isfinite(hi) and hi > 0:
            mid = midpoint(lo, hi)
            if mid is not None and mid not in evaluated:
                wanted.add(mid)
    return sorted(wanted)


def wilson_interval(successes: np.ndarray, trials: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (lower, upper) of a binomial proportion successes / trials, elementwise
    (the interval stays inside [0, 1] and is not empty at 0 or ``trials`` successes: 5 of 5 gives
    [0.566, 1])."""
    k = np.asarray(successes, dtype=np.float64)
    n = float(trials)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def threshold_order_statistic(run_thresholds: np.ndarray, delta: float) -> np.ndarray:
    """d*(delta) from per-run thresholds along the last axis: the ceil((1 - delta) R)-th smallest
    (NaN, no crossing, counts as larger than every d; NaN where that many runs never cross)."""
    values = np.asarray(run_thresholds, dtype=np.float64)
    runs = values.shape[-1]
    rank = max(1, math.ceil((1 - delta) * runs - 1e-9))
    ordered = np.sort(np.where(np.isnan(values), np.inf, values), axis=-1)[..., rank - 1]
    return np.where(np.isinf(ordered), np.nan, ordered)


def success_counts(lower: np.ndarray, upper: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray]:
    """(certain, possible) successes at d over the last (run) axis from per-run brackets (lo, hi]:
    a run has certainly reached the level at d >= hi and certainly not at d <= lo; in between it is
    not known (a run without a crossing, hi = NaN, has not reached it up to lo, the largest d tried)."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    certain = np.sum(np.where(np.isnan(hi), False, hi <= d), axis=-1)
    possible = np.sum(~(lo >= d), axis=-1)
    return certain, possible


def separated(lower_a: np.ndarray, upper_a: np.ndarray, lower_b: np.ndarray, upper_b: np.ndarray,
              z: float = Z95) -> tuple[bool, float]:
    """Whether subspace a needs fewer dimensions than b beyond doubt at some d: the Wilson interval of
    a's certain successes lies above that of b's possible successes. Returns (separated, the
    smallest such d, NaN if none). Candidate d: every bracket end of either subspace."""
    runs = np.asarray(lower_a).shape[-1]
    candidates = np.unique(np.concatenate([np.ravel(x) for x in (lower_a, upper_a, lower_b, upper_b)]))
    for d in candidates[np.isfinite(candidates) & (candidates > 0)]:
        certain, _ = success_counts(lower_a, upper_a, d)
        _, possible = success_counts(lower_b, upper_b, d)
        low_a, _ = wilson_interval(certain, runs, z)
        _, high_b = wilson_interval(possible, runs, z)
        if float(low_a) > float(high_b):
            return True, float(d)
    return False, float("nan")


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value of ``wins`` against ``losses`` (ties dropped); 1 for none.
    With 5 paired runs its smallest value is 0.0625: five runs cannot show a difference at 5 %."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)
