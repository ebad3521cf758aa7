"""Magnitude masks and the energy concentration of a vector (docs/science.md#2-objects-and-metrics).

m_k(theta): the k indices of largest |theta_i| (ties broken by lower index, so the mask is a
deterministic function of theta). kappa(x)^2 = ||x_top||^2 / ||x||^2 for the top rho-fraction of
entries of |x| (seed 000, section 2.2 and Fig. 9).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from hessmask.grassmann import iou


def k_of_rho(dim: int, rho: float) -> int:
    """k = max(1, round(rho * D)), never above D."""
    if not 0 < rho <= 1:
        raise ValueError(f"rho must lie in (0, 1], got {rho}")
    return int(min(dim, max(1, round(rho * dim))))


def magnitude_mask(theta: np.ndarray, k: int) -> np.ndarray:
    """Sorted indices of the k largest |theta_i| (stable: ties go to the lower index)."""
    theta = np.asarray(theta).ravel()
    if not 1 <= k <= theta.size:
        raise ValueError(f"k must satisfy 1 <= k <= D = {theta.size}, got k = {k}")
    order = np.argsort(-np.abs(theta.astype(np.float64)), kind="stable")
    return np.sort(order[:k])


def energy_concentration(x: np.ndarray, rho: float) -> float:
    """kappa: the fraction of the norm of x held by its top rho-fraction of entries (by |x|)."""
    x = np.abs(np.asarray(x, dtype=np.float64).ravel())
    total = float(np.sum(x * x))
    if total == 0:
        return 0.0
    top = np.sort(x)[::-1][: k_of_rho(x.size, rho)]
    return float(np.sqrt(np.sum(top * top) / total))


def mask_statistics(params: xr.DataArray, rhos: Sequence[float]) -> xr.Dataset:
    """kappa of |theta| per (step, rho) and the IoU of magnitude masks per (rho, step, step_other).

    ``params`` has dims (step, param).
    """
    steps = params["step"].values
    theta = params.values
    dim = theta.shape[1]
    kappa = np.array([[energy_concentration(theta[s], rho) for rho in rhos] for s in range(len(steps))])
    ious = np.empty((len(rhos), len(steps), len(steps)))
    for r, rho in enumerate(rhos):
        masks = [magnitude_mask(theta[s], k_of_rho(dim, rho)) for s in range(len(steps))]
        for i in range(len(steps)):
            for j in range(i, len(steps)):
                ious[r, i, j] = ious[r, j, i] = iou(masks[i], masks[j], dim)
    ds = xr.Dataset(
        {
            "kappa": (("step", "rho"), kappa),
            "iou": (("rho", "step", "step_other"), ious),
            "k": (("rho",), np.array([k_of_rho(dim, r) for r in rhos])),
        },
        coords={"step": steps, "step_other": steps, "rho": np.asarray(rhos, dtype=np.float64)},
    )
    ds["kappa"].attrs.update(units="1",
                             long_name="energy concentration of |theta|: norm fraction in the top rho of entries")
    ds["iou"].attrs.update(units="1", long_name="intersection over union of the magnitude masks of two record steps")
    ds["k"].attrs.update(long_name="mask size k = max(1, round(rho D))")
    ds.attrs["D"] = dim
    return ds
