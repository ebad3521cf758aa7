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


def _metric_panels(ds: xr.Dataset, modality: str, lines: Sequence[tuple[str, dict]], x: str, palette: str,
                   title: str, chance: bool = False, legend_from: int = 0) -> tuple[plt.Figure, list]:
    """One panel per metric of the synthetic baselines: each of ``lines`` (label, selection) the
    median over samples against ``x`` with its 5-95 % band; ``chance`` draws k/D on the overlap panel."""
    style()
    value = ds["value"].sel(modality=modality)
    metrics = list(value["metric"].values)
    fig, axes = panel_grid(len(metrics) + 1)
    colors = sns.color_palette(palette, len(lines))
    for ax, metric in zip(axes, metrics):
        for color, (label, selection) in zip(colors, lines):
            cell = value.sel(metric=metric).sel(selection).dropna(x, how="all")
            band(ax, cell[x].values, cell, label, color)
        if chance and metric == "overlap":
            grid = np.geomspace(float(value["rho"].min()), 1.0, 50)
            ax.plot(grid, grid, ls="--", color="0.3", lw=1, label="chance k/D")
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_ylabel(metric_axis_label(metric))
        ax.set_ylim(-0.03, 1.03)
    legend_panel(axes[-1], axes[legend_from if legend_from >= 0 else len(metrics) - 1])
    fig.suptitle(f"Random baselines vs {title}, {MODALITY_LABELS.get(modality, modality)}, "
                 f"median and 5-95% band over {ds.sizes['sample']} pairs")
    return fig, list(axes[: len(metrics)])


def synthetic_vs_dim(ds: xr.Dataset, modality: str, rhos: Sequence[float]) -> plt.Figure:
    """Each metric against D (log2 axis) for fixed rho = k/D (seed 000, Figs. 2, 5-7).

    One panel per metric, median over the T samples with the 5-95 percentile band.
    """
    lines = [(f"rho = {rho:g}", {"rho": rho}) for rho in rhos]
    fig, axes = _metric_panels(ds, modality, lines, "D", "colorblind", "D")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("D (ambient dimension)")
    fig.tight_layout()
    return fig


def synthetic_vs_rho(ds: xr.Dataset, modality: str, dims: Sequence[int]) -> plt.Figure:
    """Each metric against rho = k/D (log axis) for fixed D (seed 000, Figs. 3, 8)."""
    lines = [(f"D = {dim}", {"D": dim}) for dim in dims]
    fig, axes = _metric_panels(ds, modality, lines, "rho", "viridis", "rho", chance=True, legend_from=-1)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("rho = k / D")
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
