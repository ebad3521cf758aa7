"""Magnitude masks and the energy concentration of a vector (docs/science.md#2-objects-and-metrics).

m_k(theta): the k indices of largest |theta_i|. Where several entries share the k-th largest
magnitude the mask is decided by a tie rule, not by magnitude (ResNet-18 at initialization has
4,800 BatchNorm scales exactly equal to 1.0 above everything else): ``lowest_index`` (the
default, deterministic), ``random`` (a seeded random order among equal magnitudes), and
parameter groups can be left out of the mask altogether (``normalization_scales``, ``biases``).
``boundary_ties`` counts the mask members tied with the first entry left out, so that a mask
decided by its tie rule is named, not silently used. kappa(x)^2 = ||x_top||^2 / ||x||^2 for the
top rho-fraction of entries of |x| (seed 000, section 2.2 and Fig. 9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from hessmask.grassmann import iou

if TYPE_CHECKING:
    import xarray as xr


def k_of_rho(dim: int, rho: float) -> int:
    """k = max(1, round(rho * D)), never above D."""
    if not 0 < rho <= 1:
        raise ValueError(f"rho must lie in (0, 1], got {rho}")
    return int(min(dim, max(1, round(rho * dim))))


TIE_RULES = ("lowest_index", "random")


def magnitude_order(theta: np.ndarray, ties: str = "lowest_index", seed: int = 0,
                    excluded: np.ndarray | None = None) -> np.ndarray:
    """All D indices by descending |theta_i|: the magnitude mask m_k is the first k of them.

    Args:
        theta: the parameters (D,).
        ties: order among equal magnitudes: ``lowest_index`` or ``random`` (seeded by ``seed``).
        excluded: boolean (D,) of entries never in a mask (they come last, in index order).
    """
    magnitude = np.abs(np.asarray(theta, dtype=np.float64).ravel())
    if ties not in TIE_RULES:
        raise ValueError(f"unknown tie rule {ties!r}; expected one of {TIE_RULES}")
    if ties == "random":
        key = np.random.default_rng([seed, 0x7135]).permutation(magnitude.size)
        order = np.lexsort((key, -magnitude))
    else:
        order = np.argsort(-magnitude, kind="stable")
    if excluded is not None and np.any(excluded):
        keep = ~np.asarray(excluded, dtype=bool)[order]
        order = np.concatenate([order[keep], np.sort(order[~keep])])
    return order


def magnitude_mask(theta: np.ndarray, k: int, ties: str = "lowest_index", seed: int = 0,
                   excluded: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of the k largest |theta_i| (ties and exclusions as in ``magnitude_order``)."""
    theta = np.asarray(theta).ravel()
    eligible = theta.size - (int(np.sum(excluded)) if excluded is not None else 0)
    if not 1 <= k <= eligible:
        raise ValueError(f"k must satisfy 1 <= k <= {eligible} (the entries a mask may hold), got k = {k}")
    return np.sort(magnitude_order(theta, ties, seed, excluded)[:k])


def boundary_ties(theta: np.ndarray, order: np.ndarray, k: int, excluded: np.ndarray | None = None) -> int:
    """How many of the k mask members have exactly the magnitude of the first eligible entry left
    out: 0 when magnitude alone decides the mask, else the members the tie rule chose among."""
    magnitude = np.abs(np.asarray(theta, dtype=np.float64).ravel())
    eligible = magnitude.size - (int(np.sum(excluded)) if excluded is not None else 0)
    if k >= eligible:
        return 0
    threshold = magnitude[order[k]]
    if magnitude[order[k - 1]] != threshold:
        return 0
    return int(np.sum(magnitude[order[:k]] == threshold))


def energy_concentration(x: np.ndarray, rho: float) -> float:
    """kappa: the fraction of the norm of x held by its top rho-fraction of entries (by |x|)."""
    x = np.abs(np.asarray(x, dtype=np.float64).ravel())
    total = float(np.sum(x * x))
    if total == 0:
        return 0.0
    top = np.sort(x)[::-1][: k_of_rho(x.size, rho)]
    return float(np.sqrt(np.sum(top * top) / total))


def mask_statistics(theta: xr.DataArray, rhos: Sequence[float], ties: str = "lowest_index", seed: int = 0,
                    excluded: np.ndarray | None = None) -> xr.Dataset:
    """kappa of |theta| per (step, rho), the IoU of magnitude masks per (rho, step, step_other) and
    the mask members decided by the tie rule per (step, rho).

    ``theta`` has dims (step, param); ``ties``, ``seed``, ``excluded`` as in ``magnitude_order``.
    """
    import xarray as xr

    steps = theta["step"].values
    values = theta.values
    dim = values.shape[1]
    kappa = np.array([[energy_concentration(values[s], rho) for rho in rhos] for s in range(len(steps))])
    ious = np.empty((len(rhos), len(steps), len(steps)))
    orders = [magnitude_order(values[s], ties, seed, excluded) for s in range(len(steps))]
    tied = np.array([[boundary_ties(values[s], orders[s], k_of_rho(dim, rho), excluded) for rho in rhos]
                     for s in range(len(steps))])
    for r, rho in enumerate(rhos):
        masks = [np.sort(orders[s][: k_of_rho(dim, rho)]) for s in range(len(steps))]
        for i in range(len(steps)):
            for j in range(i, len(steps)):
                ious[r, i, j] = ious[r, j, i] = iou(masks[i], masks[j], dim)
    ds = xr.Dataset(
        {
            "kappa": (("step", "rho"), kappa),
            "iou": (("rho", "step", "step_other"), ious),
            "k": (("rho",), np.array([k_of_rho(dim, r) for r in rhos])),
            "boundary_ties": (("step", "rho"), tied),
        },
        coords={"step": steps, "step_other": steps, "rho": np.asarray(rhos, dtype=np.float64)},
    )
    ds["kappa"].attrs.update(units="1",
                             long_name="energy concentration of |theta|: norm fraction in the top rho of entries")
    ds["iou"].attrs.update(units="1", long_name="intersection over union of the magnitude masks of two record steps")
    ds["k"].attrs.update(long_name="mask size k = max(1, round(rho D))")
    ds["boundary_ties"].attrs.update(long_name="mask members tied in |theta| with the first entry left out: "
                                     "chosen by the tie rule, not by magnitude (0 = magnitude decides)", units="count")
    ds.attrs["ties"] = ties
    ds.attrs["D"] = dim
    return ds
