"""The synthetic baselines' figures (seed 000, Figs. 2, 3, 5-8) and the random-pair baseline the
experiment figures draw."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import xarray as xr

from hessmask.plots.common import (
    METRIC_LABELS,
    MODALITY_LABELS,
    band,
    legend_panel,
    metric_axis_label,
    panel_grid,
    style,
)


def synthetic_vs_dim(ds: xr.Dataset, modality: str, rhos: Sequence[float]) -> plt.Figure:
    """Each metric against D (log2 axis) for fixed rho = k/D (seed 000, Figs. 2, 5-7).

    One panel per metric, median over the T samples with the 5-95 percentile band.
    """
    style()
    value = ds["value"].sel(modality=modality)
    metrics = list(value["metric"].values)
    fig, axes = panel_grid(len(metrics) + 1)
    colors = sns.color_palette("colorblind", len(rhos))
    for ax, metric in zip(axes, metrics):
        for color, rho in zip(colors, rhos):
            cell = value.sel(metric=metric).sel(rho=rho).dropna("D", how="all")
            band(ax, cell["D"].values, cell, f"rho = {rho:g}", color)
        ax.set_xscale("log", base=2)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel("D (ambient dimension)")
        ax.set_ylabel(metric_axis_label(metric))
        ax.set_ylim(-0.03, 1.03)
    legend_panel(axes[-1], axes[0])
    fig.suptitle(f"Random baselines vs D, {MODALITY_LABELS.get(modality, modality)}, "
                 f"median and 5-95% band over {ds.sizes['sample']} pairs")
    fig.tight_layout()
    return fig


def synthetic_vs_rho(ds: xr.Dataset, modality: str, dims: Sequence[int]) -> plt.Figure:
    """Each metric against rho = k/D (log axis) for fixed D (seed 000, Figs. 3, 8)."""
    style()
    value = ds["value"].sel(modality=modality)
    metrics = list(value["metric"].values)
    fig, axes = panel_grid(len(metrics) + 1)
    colors = sns.color_palette("viridis", len(dims))
    for ax, metric in zip(axes, metrics):
        for color, dim in zip(colors, dims):
            cell = value.sel(metric=metric, D=dim).dropna("rho", how="all")
            band(ax, cell["rho"].values, cell, f"D = {dim}", color)
        if metric == "overlap":
            grid = np.geomspace(float(value["rho"].min()), 1.0, 50)
            ax.plot(grid, grid, ls="--", color="0.3", lw=1, label="chance k/D")
        ax.set_xscale("log")
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel("rho = k / D")
        ax.set_ylabel(metric_axis_label(metric))
        ax.set_ylim(-0.03, 1.03)
    legend_panel(axes[-1], axes[len(metrics) - 1])
    fig.suptitle(f"Random baselines vs rho, {MODALITY_LABELS.get(modality, modality)}, "
                 f"median and 5-95% band over {ds.sizes['sample']} pairs")
    fig.tight_layout()
    return fig


def random_baseline(baselines: xr.Dataset, metric: str, rho: float, modality: str = "OB",
                    tolerance: float = 0.1) -> float | None:
    """Mean of a metric for random pairs at the largest D computed for ``rho``.

    The nearest computed rho is used if it lies within ``tolerance`` (relative) of ``rho``;
    otherwise there is no baseline (None) rather than a misleading one.
    """
    value = baselines["value"].sel(modality=modality, metric=metric)
    mean = value.mean("sample")
    available = mean.dropna("D", how="all")
    if available.sizes["D"] == 0:
        return None
    candidates = [(abs(np.log(r / rho)), r) for r in available["rho"].values
                  if np.isfinite(available.sel(rho=r)).any()]
    if not candidates:
        return None
    distance, nearest = min(candidates)
    if distance > np.log1p(tolerance):
        return None
    column = available.sel(rho=nearest).dropna("D")
    return float(column.isel(D=-1))
