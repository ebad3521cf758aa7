"""Figures of the study: one function per figure, taking xarray Datasets, returning a Figure.

Functions never write files; ``save_figure`` writes PNG and PDF side by side. Styling is
seaborn's "whitegrid" with the colorblind palette, so figures read the same on paper and screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402

METRIC_LABELS = {
    "geodesic": "geodesic",
    "chordal_2": r"chordal $\ell_2$",
    "chordal_F": r"chordal $\ell_F$",
    "projection_2": r"projection $\ell_2$",
    "projection_F": r"projection $\ell_F$",
    "fubini_study": "Fubini-Study",
    "overlap": "overlap",
}
MODALITY_LABELS = {
    "OO": "orthonormal vs orthonormal (OO)",
    "OB": "orthonormal vs mask (OB)",
    "BB": "mask vs mask (BB)",
}


def style() -> None:
    """Apply the project's plotting style."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)


def save_figure(fig: plt.Figure, stem: Path | str) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (150 dpi) and ``<stem>.pdf``; close it; return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
    return paths


def _panel_grid(n: int, ncols: int = 4, size: tuple[float, float] = (3.4, 2.7)):
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


def _band(ax, x, samples: xr.DataArray, label: str, color) -> None:
    """Median line and 5-95 percentile band over the ``sample`` dim."""
    q = samples.quantile([0.05, 0.5, 0.95], dim="sample").values
    ax.plot(x, q[1], marker="o", ms=3, color=color, label=label)
    ax.fill_between(x, q[0], q[2], color=color, alpha=0.2, linewidth=0)


def synthetic_vs_dim(ds: xr.Dataset, modality: str, ratios: Sequence[float]) -> plt.Figure:
    """Each metric against D (log2 axis) for fixed ratios r = k/D (seed 000, Figs. 2, 5-7).

    One panel per metric, median over the T samples with the 5-95 percentile band.
    """
    style()
    value = ds["value"].sel(modality=modality)
    metrics = list(value["metric"].values)
    fig, axes = _panel_grid(len(metrics) + 1)
    colors = sns.color_palette("colorblind", len(ratios))
    for ax, metric in zip(axes, metrics):
        for color, ratio in zip(colors, ratios):
            cell = value.sel(metric=metric).sel(ratio=ratio).dropna("D", how="all")
            _band(ax, cell["D"].values, cell, f"r = {ratio:g}", color)
        ax.set_xscale("log", base=2)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel("D (ambient dimension)")
        ax.set_ylabel("normalized value")
        ax.set_ylim(-0.03, 1.03)
    _legend_panel(axes[-1], axes[0])
    fig.suptitle(f"Random baselines vs D, {MODALITY_LABELS.get(modality, modality)}, "
                 f"median and 5-95% band over {ds.sizes['sample']} pairs")
    fig.tight_layout()
    return fig


def synthetic_vs_ratio(ds: xr.Dataset, modality: str, dims: Sequence[int]) -> plt.Figure:
    """Each metric against r = k/D (log axis) for fixed D (seed 000, Figs. 3, 8)."""
    style()
    value = ds["value"].sel(modality=modality)
    metrics = list(value["metric"].values)
    fig, axes = _panel_grid(len(metrics) + 1)
    colors = sns.color_palette("viridis", len(dims))
    for ax, metric in zip(axes, metrics):
        for color, dim in zip(colors, dims):
            cell = value.sel(metric=metric, D=dim).dropna("ratio", how="all")
            _band(ax, cell["ratio"].values, cell, f"D = {dim}", color)
        if metric == "overlap":
            grid = np.geomspace(float(value["ratio"].min()), 1.0, 50)
            ax.plot(grid, grid, ls="--", color="0.3", lw=1, label="chance k/D")
        ax.set_xscale("log")
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel("r = k / D")
        ax.set_ylabel("normalized value")
        ax.set_ylim(-0.03, 1.03)
    _legend_panel(axes[-1], axes[len(metrics) - 1])
    fig.suptitle(f"Random baselines vs ratio, {MODALITY_LABELS.get(modality, modality)}, "
                 f"median and 5-95% band over {ds.sizes['sample']} pairs")
    fig.tight_layout()
    return fig


def _legend_panel(ax, source) -> None:
    """Use the spare last panel for the legend so that no data is hidden."""
    handles, labels = source.get_legend_handles_labels()
    ax.set_visible(True)
    ax.axis("off")
    ax.legend(handles, labels, loc="center", frameon=False)
