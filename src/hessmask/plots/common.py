"""What every figure shares: the style, the labels of metrics and modalities, panel layouts, and
writing figures (``save_figure``; ``save_figures`` draws a job's figures in forked processes)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402

log = logging.getLogger("hessmask.plots")

METRIC_LABELS = {
    "geodesic": "geodesic",
    "chordal_2": r"chordal $\ell_2$",
    "chordal_F": r"chordal $\ell_F$",
    "projection_2": r"projection $\ell_2$",
    "projection_F": r"projection $\ell_F$",
    "fubini_study": "Fubini-Study",
    "overlap": "overlap",
}


def metric_axis_label(metric: str) -> str:
    """The y label of a metric's panel: whether it is a distance or a similarity."""
    if metric == "overlap":
        return "similarity (1 = same subspace)"
    return "distance (0 = same subspace)"


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
    fig.savefig(paths[1], dpi=150, bbox_inches="tight", metadata={"CreationDate": None})  # dpi: rasterized parts
    plt.close(fig)
    return paths


_PENDING: dict[str, tuple[Callable[[], plt.Figure], Path]] = {}


def _render(name: str) -> str:
    make, stem = _PENDING[name]
    save_figure(make(), stem)
    return name


def save_figures(figures: Mapping[str, tuple[Callable[[], plt.Figure], Path | str]], workers: int = 1,
                 done: Callable[[str], None] | None = None) -> None:
    """Make and save every figure (``save_figure``): ``figures`` maps a name to (a function making
    the figure, its stem). With ``workers`` > 1 they are drawn in that many forked processes, which
    inherit the loaded data (drawing and writing, not reading, is a figure job's time); each written
    figure is logged, and ``done(name)`` called. A figure that fails raises its error here, with the worker's
    traceback attached, and the other workers are stopped."""
    names = list(figures)
    workers = max(1, min(int(workers), len(names)))
    if workers == 1:
        for name in names:
            save_figure(figures[name][0](), figures[name][1])
            log.info("figure %s", name)
            if done:
                done(name)
        return
    import multiprocessing

    _PENDING.clear()
    _PENDING.update({name: (make, Path(stem)) for name, (make, stem) in figures.items()})
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for name in pool.imap_unordered(_render, names):
                log.info("figure %s", name)
                if done:
                    done(name)
    finally:
        _PENDING.clear()


def panel_grid(n: int, ncols: int = 4, size: tuple[float, float] = (3.4, 2.7)):
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


def band(ax, x, samples: xr.DataArray, label: str, color) -> None:
    """Median line and 5-95 percentile band over the ``sample`` dim."""
    q = samples.quantile([0.05, 0.5, 0.95], dim="sample").values
    ax.plot(x, q[1], marker="o", ms=3, color=color, label=label)
    ax.fill_between(x, q[0], q[2], color=color, alpha=0.2, linewidth=0)


def legend_panel(ax, source) -> None:
    """Use the spare last panel for the legend so that no data is hidden."""
    handles, labels = source.get_legend_handles_labels()
    ax.set_visible(True)
    ax.axis("off")
    ax.legend(handles, labels, loc="center", frameon=False)


def edges(centers: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centers (for pcolormesh)."""
    centers = np.asarray(centers, dtype=np.float64)
    if centers.size == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    mid = (centers[1:] + centers[:-1]) / 2
    return np.concatenate([[2 * centers[0] - mid[0]], mid, [2 * centers[-1] - mid[-1]]])
