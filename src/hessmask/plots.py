"""Figures of the study: one function per figure, taking xarray Datasets, returning a Figure.

Functions never write files; ``save_figure`` writes PNG and PDF side by side. Styling is
seaborn's "whitegrid" with the colorblind palette, so figures read the same on paper and screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402

from hessmask.dof_methods import METHOD_LABELS as DOF_LABELS  # noqa: E402
from hessmask.dof_methods import METHODS as DOF_METHODS  # noqa: E402
from hessmask.dof_methods import START_STEP_METHODS as DOF_START_STEP_METHODS  # noqa: E402

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


#: the figures ``save_figures`` hands to its forked workers (set before the fork, read in the children)
_PENDING: dict[str, tuple[Callable[[], plt.Figure], Path]] = {}


def _render(name: str) -> str:
    make, stem = _PENDING[name]
    save_figure(make(), stem)
    return name


def save_figures(figures: Mapping[str, tuple[Callable[[], plt.Figure], Path | str]], workers: int = 1,
                 done: Callable[[str], None] | None = None) -> None:
    """Make and save every figure (``save_figure``): ``figures`` maps a name to (a function making
    the figure, its stem). With ``workers`` > 1 they are drawn in that many forked processes, which
    inherit the loaded data (drawing and writing, not reading, is a figure job's time); ``done(name)``
    is called as each one is written. A figure that fails raises its error here, with the worker's
    traceback attached, and the other workers are stopped."""
    names = list(figures)
    workers = max(1, min(int(workers), len(names)))
    if workers == 1:
        for name in names:
            save_figure(figures[name][0](), figures[name][1])
            if done:
                done(name)
        return
    import multiprocessing

    _PENDING.clear()
    _PENDING.update({name: (make, Path(stem)) for name, (make, stem) in figures.items()})
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for name in pool.imap_unordered(_render, names):
                if done:
                    done(name)
    finally:
        _PENDING.clear()


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
        ax.set_ylabel(metric_axis_label(metric))
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
        ax.set_ylabel(metric_axis_label(metric))
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


# ----------------------------------------------------------------------------- experiment figures

SPLIT_STYLE = {"train": "-", "test": "--"}
METHOD_LABELS = {"exact": "exact", "seigh": "SEIGH (sketched)", "block_krylov": "block Krylov"}


def _chance(ax, x, value, label="chance k/D") -> None:
    ax.plot(x, np.full(len(x), value), ls="--", color="0.4", lw=1, label=label)


def _steps_axis(ax, steps) -> None:
    """Symlog x-axis (linear up to the first positive step) so that step 0 and the dense early
    steps stay visible; ticks labelled as plain step numbers."""
    positive = [int(s) for s in steps if s > 0]
    linthresh = min(positive) if positive else 1
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xlim(-0.3 * linthresh, max(positive, default=1) * 1.3)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if v >= 0 else ""))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("SGD step")


def _rho_k(metrics: xr.Dataset, rho: float) -> int:
    dim = int(metrics.attrs["D"])
    return int(min(dim, max(1, round(rho * dim))))


def _best_method(data: xr.DataArray, prefer_exact: bool = False) -> str:
    """The method with the most finite values in ``data`` (exact first on ties); with
    ``prefer_exact``, exact whenever it has any value (for quantities the sketch only estimates)."""
    counts = {str(m): int(np.isfinite(data.sel({"method": m})).sum()) for m in data["method"].values}
    if prefer_exact and counts.get("exact", 0) > 0:
        return "exact"
    return max(counts, key=lambda m: (counts[m], m == "exact"))


def _line(ax, series: xr.DataArray, x: str = "step", **kwargs) -> None:
    """Plot a 1-D series against ``x``, skipping missing values so the points stay connected."""
    series = series.dropna(x)
    ax.plot(series[x].values, series.values, **kwargs)


def _pick(metrics: xr.Dataset, method: str | None = None, split: str | None = None):
    method = method or ("exact" if "exact" in metrics["method"].values else str(metrics["method"].values[0]))
    split = split or str(metrics["split"].values[0])
    return method, split


def _matrix(ax, matrix: xr.DataArray, title: str, vmin: float = 0.0, vmax: float = 1.0, fmt: str = ".2f"):
    steps = [int(s) for s in matrix["step"].values]
    sns.heatmap(matrix.values, ax=ax, vmin=vmin, vmax=vmax, cmap="viridis", square=True,
                xticklabels=steps, yticklabels=steps, cbar_kws={"shrink": 0.8},
                annot=len(steps) <= 8, fmt=fmt, annot_kws={"fontsize": 6})
    ax.set_title(title)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("SGD step")


def crystallization(training: xr.Dataset, masks: xr.Dataset, metrics: xr.Dataset, rho: float = 0.05,
                    method: str | None = None, split: str | None = None) -> plt.Figure:
    """Seed 000, Fig. 1: loss; spectrum compression; mask-vs-eigenspace overlap over steps for each
    rho with chance lines; IoU of masks and overlap of eigenspaces between steps."""
    style()
    _, split = _pick(metrics, method, split)
    fig, axes = plt.subplots(1, 5, figsize=(22, 4.2), gridspec_kw={"width_ratios": [1, 1, 1.2, 1.1, 1.1]})
    loss = training["batch_loss"]
    axes[0].plot(loss["train_step"] + 1, loss, lw=0.8, label="batch loss")
    axes[0].plot(training["step"] + 1, training["test_loss"], "o-", ms=3, label="test loss")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("SGD step + 1")
    axes[0].set_ylabel("cross-entropy (nats)")
    axes[0].set_title("Training loss")
    axes[0].legend()
    steps = metrics["step"].values
    colors = sns.color_palette("colorblind", metrics.sizes["rho"])
    kappa_all = metrics["kappa_spectrum"].sel({"split": split})
    kappa_method = method or _best_method(kappa_all, prefer_exact=True)
    kappa = kappa_all.sel({"method": kappa_method})
    for color, rho_value in zip(colors, metrics["rho"].values):
        _line(axes[1], kappa.sel(rho=rho_value), marker="o", ms=3, color=color, label=f"top {rho_value:g} of D")
    axes[1].set_ylabel(r"$\kappa$ of the spectrum")
    axes[1].set_title(f"Spectrum compression ({split}, {kappa_method})")
    axes[1].set_ylim(0, 1.02)
    _steps_axis(axes[1], steps)
    axes[1].legend(fontsize=8)
    overlap_all = metrics["overlap"].sel({"split": split})
    for color, rho_value in zip(colors, metrics["rho"].values):
        k = _rho_k(metrics, rho_value)
        at_k = overlap_all.sel(k=k) if k in overlap_all["k"].values else None
        if at_k is None:
            continue
        chosen = method or _best_method(at_k)
        _line(axes[2], at_k.sel({"method": chosen}), marker="o", ms=3, color=color,
              label=f"k = {k} ({rho_value:g} D, {chosen})")
        axes[2].axhline(k / int(metrics.attrs["D"]), ls="--", lw=1, color=color)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("overlap(mask, top-k eigenspace)")
    axes[2].set_title("Mask vs eigenspace (dashed: chance k/D)")
    _steps_axis(axes[2], steps)
    axes[2].legend(fontsize=8)
    iou = masks["iou"].sel(rho=rho, method="nearest").sel(step=steps, step_other=steps)
    _matrix(axes[3], iou, f"IoU of magnitude masks (rho = {rho:g})")
    pairs_all = metrics["eigenspace_overlap"].sel({"split": split}).sel(rho=rho, method="nearest")
    pair_method = method or _best_method(pairs_all)
    _matrix(axes[4], pairs_all.sel({"method": pair_method}),
            f"Eigenspace overlap ({split}, {pair_method}, rho = {rho:g})")
    fig.suptitle("Crystallization of magnitude masks and Hessian eigenspaces")
    fig.tight_layout()
    return fig


def metrics_over_steps(metrics: xr.Dataset, baselines: xr.Dataset | None = None, method: str | None = None,
                       split: str | None = None) -> plt.Figure:
    """Seed 000, Fig. 4: the seven metrics between masks and eigenspaces over steps for each rho,
    with the random baseline (synthetic study, modality OB) as dashed lines."""
    style()
    method, split = _pick(metrics, method, split)
    values = metrics["grassmann"].sel({"method": method, "split": split})
    names = list(values["metric"].values)
    fig, axes = _panel_grid(len(names) + 1)
    colors = sns.color_palette("colorblind", values.sizes["rho"])
    steps = values["step"].values
    for ax, name in zip(axes, names):
        for color, rho_value in zip(colors, values["rho"].values):
            _line(ax, values.sel(metric=name, rho=rho_value), marker="o", ms=3, color=color,
                  label=f"rho = {rho_value:g}")
            if baselines is not None:
                base = random_baseline(baselines, name, float(rho_value))
                if base is not None:
                    ax.axhline(base, ls="--", lw=1, color=color)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(METRIC_LABELS.get(name, name))
        ax.set_ylabel(metric_axis_label(name))
        _steps_axis(ax, steps)
    _legend_panel(axes[-1], axes[0])
    axes[-1].text(0.5, 0.05, "dashed: random mask vs random subspace\n(synthetic study, OB, largest D)",
                  ha="center", transform=axes[-1].transAxes, fontsize=8)
    fig.suptitle(f"Grassmannian metrics between magnitude masks and top eigenspaces ({split} Hessian, {method})")
    fig.tight_layout()
    return fig


def random_baseline(baselines: xr.Dataset, metric: str, ratio: float, modality: str = "OB",
                    tolerance: float = 0.1) -> float | None:
    """Mean of a metric for random pairs at the largest D computed for ``ratio``.

    The nearest computed ratio is used if it lies within ``tolerance`` (relative) of ``ratio``;
    otherwise there is no baseline (None) rather than a misleading one.
    """
    value = baselines["value"].sel(modality=modality, metric=metric)
    mean = value.mean("sample")
    available = mean.dropna("D", how="all")
    if available.sizes["D"] == 0:
        return None
    candidates = [(abs(np.log(r / ratio)), r) for r in available["ratio"].values
                  if np.isfinite(available.sel(ratio=r)).any()]
    if not candidates:
        return None
    distance, nearest = min(candidates)
    if distance > np.log1p(tolerance):
        return None
    column = available.sel(ratio=nearest).dropna("D")
    return float(column.isel(D=-1))


def kappa_and_accuracy(training: xr.Dataset, masks: xr.Dataset, metrics: xr.Dataset | None = None) -> plt.Figure:
    """Seed 000, Fig. 9: train/test accuracy and loss, kappa of |theta| and of the spectrum."""
    style()
    ncols = 3 if metrics is not None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 4))
    steps = training["step"].values
    for split, ls in SPLIT_STYLE.items():
        axes[0].plot(steps, training[f"{split}_accuracy"], ls=ls, marker="o", ms=3, label=f"{split} accuracy")
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0, 1.02)
    twin = axes[0].twinx()
    for split, ls in SPLIT_STYLE.items():
        twin.plot(steps, training[f"{split}_loss"], ls=ls, color="0.5", lw=1, label=f"{split} loss")
    twin.set_ylabel("cross-entropy (nats)")
    twin.grid(False)
    _steps_axis(axes[0], steps)
    axes[0].set_title("Accuracy (colored) and loss (gray)")
    axes[0].legend(loc="center right", fontsize=8)
    colors = sns.color_palette("colorblind", masks.sizes["rho"])
    for color, rho_value in zip(colors, masks["rho"].values):
        axes[1].plot(masks["step"], masks["kappa"].sel(rho=rho_value), "o-", ms=3, color=color,
                     label=f"top {rho_value:g} of D")
        axes[1].axhline(np.sqrt(rho_value), ls=":", lw=1, color=color)
    axes[1].set_ylabel(r"$\kappa(|\theta|)$")
    axes[1].set_ylim(0, 1.02)
    axes[1].set_title(r"Parameter energy concentration (dotted: uniform $\sqrt{\rho}$)")
    _steps_axis(axes[1], masks["step"].values)
    axes[1].legend(fontsize=8)
    if metrics is not None:
        method = _best_method(metrics["kappa_spectrum"], prefer_exact=True)
        for split, ls in SPLIT_STYLE.items():
            if split not in metrics["split"].values:
                continue
            kap = metrics["kappa_spectrum"].sel({"method": method, "split": split})
            for color, rho_value in zip(colors, kap["rho"].values):
                _line(axes[2], kap.sel(rho=rho_value), ls=ls, marker="o", ms=3, color=color,
                      label=f"{split}, top {rho_value:g}")
        axes[2].set_ylabel(r"$\kappa(|\Lambda|)$")
        axes[2].set_ylim(0, 1.02)
        axes[2].set_title(f"Spectrum energy concentration ({method})")
        _steps_axis(axes[2], metrics["step"].values)
        axes[2].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def similarity_matrices(masks: xr.Dataset, metrics: xr.Dataset, rho: float = 0.05, max_step: int | None = None,
                        method: str | None = None) -> plt.Figure:
    """Seed 000, Fig. 10: pairwise similarity over steps of masks (IoU) and of the train and test
    eigenspaces (overlap)."""
    style()
    method = method or _best_method(metrics["eigenspace_overlap"].sel(rho=rho, method="nearest"))
    steps = metrics["step"].values
    if max_step is not None:
        steps = steps[steps <= max_step]
    splits = list(metrics["split"].values)
    fig, axes = plt.subplots(1, 1 + len(splits), figsize=(5.2 * (1 + len(splits)), 4.6))
    _matrix(axes[0], masks["iou"].sel(rho=rho, method="nearest").sel(step=steps, step_other=steps),
            f"Masks: IoU (rho = {rho:g})")
    for ax, split in zip(axes[1:], splits):
        pairs = metrics["eigenspace_overlap"].sel({"method": method, "split": split}).sel(rho=rho, method="nearest")
        _matrix(ax, pairs.sel(step=steps, step_other=steps), f"{split} eigenspaces: overlap")
    fig.suptitle(f"Pairwise similarity between record steps (k = {_rho_k(metrics, rho)}, {method})")
    fig.tight_layout()
    return fig


def exact_vs_sketched(metrics: xr.Dataset, rho: float = 0.05) -> plt.Figure:
    """TMLR Fig. 1 (left): mask-vs-eigenspace overlap over steps, exact vs sketched, per split."""
    style()
    k = _rho_k(metrics, rho)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    steps = metrics["step"].values
    colors = dict(zip(metrics["method"].values, sns.color_palette("colorblind", metrics.sizes["method"])))
    for method in metrics["method"].values:
        # the exact reference wide and translucent underneath: an accurate method drawn on top of
        # it stays visible instead of hiding it
        weight = {"lw": 5, "ms": 8, "alpha": 0.4} if method == "exact" else {"lw": 1.5, "ms": 3}
        for split in metrics["split"].values:
            _line(ax, metrics["overlap"].sel({"method": method, "split": split, "k": k}),
                  ls=SPLIT_STYLE[split], marker="o", color=colors[method],
                  label=f"{METHOD_LABELS.get(method, method)}, {split}", **weight)
    _chance(ax, steps, k / int(metrics.attrs["D"]))
    ax.set_ylabel(f"overlap(mask, top-{k} eigenspace)")
    _steps_axis(ax, steps)
    ax.set_title(f"Exact vs sketched eigenspaces, k = {k} ({rho:g} D)")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def overlap_vs_k(metrics: xr.Dataset, steps: Sequence[int] | None = None, method: str | None = None,
                 split: str | None = None, ks: Sequence[int] = (10, 50, 100)) -> plt.Figure:
    """TMLR large-network figures: overlap vs k and overlap/chance vs k (log y) at several steps,
    and overlap vs step for fixed k where the solved size allows."""
    style()
    method, split = _pick(metrics, method, split)
    overlap = (metrics["overlap"].sel({"method": method, "split": split})
               .dropna("k", how="all").dropna("step", how="all"))
    all_steps = [int(s) for s in overlap["step"].values]
    steps = list(steps) if steps is not None else sorted(
        set(all_steps[:: max(1, len(all_steps) // 5)] + [all_steps[-1]]))
    dim = int(metrics.attrs["D"])
    k = overlap["k"].values
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    colors = sns.color_palette("viridis", len(steps))
    for color, step in zip(colors, steps):
        axes[0].plot(k, overlap.sel(step=step), color=color, label=f"step {step}")
        axes[1].plot(k, overlap.sel(step=step) / (k / dim), color=color, label=f"step {step}")
    _chance(axes[0], k, 0)
    axes[0].plot(k, k / dim, ls="--", color="0.4", lw=1)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("k")
    axes[0].set_ylabel("overlap(mask, top-k eigenspace)")
    axes[0].set_title("Overlap vs k (dashed: chance k/D)")
    axes[0].legend(fontsize=8)
    axes[1].axhline(1.0, ls="--", color="0.4", lw=1, label="chance")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("k")
    axes[1].set_ylabel("overlap / chance")
    axes[1].set_title("Overlap over chance vs k")
    axes[1].legend(fontsize=8)
    usable = [kk for kk in ks if kk <= k.max()]
    for kk, color in zip(usable, sns.color_palette("colorblind", len(usable))):
        _line(axes[2], overlap.sel(k=kk), marker="o", ms=3, color=color, label=f"k = {kk}")
        axes[2].axhline(kk / dim, ls="--", lw=1, color=color)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("overlap")
    _steps_axis(axes[2], all_steps)
    axes[2].set_title("Overlap vs step (dashed: chance)")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Mask vs top-k eigenspace ({split} Hessian, {METHOD_LABELS.get(method, method)})")
    fig.tight_layout()
    return fig


def magnitude_vs_random(metrics: xr.Dataset, method: str | None = None, split: str | None = None,
                        steps: Sequence[int] | None = None) -> plt.Figure:
    """Magnitude masks vs uniformly random masks (mean and +-1 std) against the top-k eigenspaces."""
    style()
    method, split = _pick(metrics, method, split)
    sel = {"method": method, "split": split}
    overlap = metrics["overlap"].sel(sel).dropna("k", how="all").dropna("step", how="all")
    mean = metrics["random_mask_overlap_mean"].sel(sel).sel(k=overlap["k"])
    std = metrics["random_mask_overlap_std"].sel(sel).sel(k=overlap["k"])
    all_steps = [int(s) for s in overlap["step"].values]
    steps = list(steps) if steps is not None else [all_steps[0], all_steps[len(all_steps) // 2], all_steps[-1]]
    fig, axes = plt.subplots(1, len(steps), figsize=(5 * len(steps), 4), sharey=True, squeeze=False)
    k = overlap["k"].values
    dim = int(metrics.attrs["D"])
    for ax, step in zip(axes[0], steps):
        ax.plot(k, overlap.sel(step=step), label="magnitude mask")
        m, s = mean.sel(step=step).values, std.sel(step=step).values
        ax.plot(k, m, color="C1", label="random masks (mean)")
        ax.fill_between(k, np.clip(m - s, 1e-12, None), m + s, color="C1", alpha=0.25, linewidth=0,
                        label="random masks (+-1 std)")
        ax.plot(k, k / dim, ls="--", color="0.4", lw=1, label="chance k/D")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.01 / dim)  # the -1 std edge of the band can reach 0 for small k
        ax.set_xlabel("k")
        ax.set_title(f"step {step}")
    axes[0][0].set_ylabel("overlap with top-k eigenspace")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Magnitude vs random masks ({split} Hessian, {METHOD_LABELS.get(method, method)})")
    fig.tight_layout()
    return fig


def accuracy_vs_products(metrics: xr.Dataset, rho: float = 0.05) -> plt.Figure:
    """Accuracy per product of each approximate eigensolver: its top-k eigenspace overlap with the
    exact one (left; steps with an exact solve) and its a-posteriori error (right; every step),
    against the operator products it took, one color per method, one point per (split, step); the
    exact solve's cost dotted."""
    style()
    k = _rho_k(metrics, rho)
    methods = [m for m in metrics["method"].values if m != "exact"]
    colors = dict(zip(methods, sns.color_palette("colorblind", len(methods))))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = [False, False]
    for method in methods:
        products = metrics["products"].sel({"method": method}).values
        label = METHOD_LABELS.get(method, method)
        panels = [np.full(products.shape, np.nan), metrics["aposteriori_error"].sel({"method": method}).values]
        if "eigenspace_accuracy" in metrics and k in metrics["k"].values:
            panels[0] = metrics["eigenspace_accuracy"].sel({"method": method, "k": k}).values
        for i, values in enumerate(panels):
            ok = np.isfinite(values) & np.isfinite(products) & (values > 0)
            if ok.any():
                axes[i].scatter(products[ok], values[ok], color=colors[method], label=label, s=25, alpha=0.8)
                drawn[i] = True
    axes[0].set_ylabel(f"top-{k} eigenspace overlap with exact (1 = same)")
    axes[0].set_ylim(0, 1.02)
    axes[0].set_title(f"Eigenspace accuracy, k = {k} ({rho:g} D)")
    axes[1].set_ylabel("a-posteriori relative error (0 = exact)")
    axes[1].set_title("Self-measured error, every solved step")
    all_products = metrics["products"].values[np.isfinite(metrics["products"].values)]
    exact = (metrics["products"].sel({"method": "exact"}).values if "exact" in metrics["method"].values
             else np.array([np.nan]))
    for ax, has_data, missing in zip(axes, drawn, ("no exact solve to compare with",
                                                    "no a-posteriori error measured")):
        ax.set_xlabel("Hessian-vector products")
        if not has_data:  # nothing to draw (e.g. no exact solve at paper scale): say so
            ax.text(0.5, 0.5, missing, ha="center", va="center", transform=ax.transAxes, color="0.4")
            continue
        if np.isfinite(exact).any():  # what the reference costs, for scale
            ax.axvline(float(np.nanmax(exact)), ls=":", color="0.4", lw=1,
                       label=f"exact solve ({int(np.nanmax(exact))} products)")
        ax.set_xscale("log")
        ax.set_xlim(all_products.min() / 2, all_products.max() * 2)  # at least a decade: readable ticks
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        if ax is axes[1]:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def runtime_breakdown(timings: Mapping[str, Mapping[str, float]], title: str = "") -> plt.Figure:
    """Stacked wall time per phase of sketched eigendecompositions (one bar per solve)."""
    style()
    labels = list(timings)
    phases = []
    for t in timings.values():
        phases += [p for p in t if p not in phases]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels) + 3), 4.2))
    bottom = np.zeros(len(labels))
    for phase, color in zip(phases, sns.color_palette("colorblind", len(phases))):
        heights = np.array([timings[label].get(phase, 0.0) for label in labels])
        ax.bar(labels, heights, bottom=bottom, color=color, label=phase)
        bottom += heights
    ax.set_ylabel("wall time (s)")
    ax.set_title(title or "Runtime of one sketched eigendecomposition, by phase")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- degrees of freedom

DOF_COLORS = dict(zip(DOF_METHODS, sns.color_palette("colorblind", len(DOF_METHODS))))


def _dof_label(method: str) -> str:
    return DOF_LABELS.get(method, method)


def _full_accuracy(ax, ds: xr.Dataset, split: str, orientation: str = "h") -> None:
    """Dashed line at the mean full-space accuracy (seed 004's 'full model' baseline)."""
    value = float(ds[f"full_{split}_accuracy"].mean())
    (ax.axhline if orientation == "h" else ax.axvline)(value, color="0.3", ls="--", lw=1,
                                                       label=f"full space ({value:.2f})")


def dof_success(ds: xr.Dataset, title: str = "", split: str = "train") -> plt.Figure:
    """Success probability over (d, accuracy level) per method, d* (1 - delta) overlaid (seed 004 Fig. 2)."""
    methods = [str(m) for m in ds["method"].values]
    fig, axes = _panel_grid(len(methods), ncols=3, size=(4.0, 3.2))
    fig.set_layout_engine("constrained")
    d = ds["d"].values
    levels = ds["level"].values
    mesh = None
    for ax, method in zip(axes.flat, methods):
        prob = ds["success_probability"].sel({"method": method, "split": split})
        mesh = ax.pcolormesh(np.arange(d.size + 1) - 0.5, _edges(levels), prob.values, cmap="Greys",
                             vmin=0, vmax=1, shading="flat")
        dstar = ds["threshold_dimension"].sel({"method": method, "split": split})
        ok = np.isfinite(dstar.values)
        pos = np.searchsorted(d, dstar.values[ok])
        ax.step(pos, levels[ok], where="mid", color=DOF_COLORS.get(method, "C0"), lw=2,
                label=f"d* (1 - delta = {1 - float(ds.attrs.get('delta', 0.1)):.2f})")
        _full_accuracy(ax, ds, split)
        ax.set_xticks(np.arange(d.size))
        ax.set_xticklabels([str(v) for v in d], rotation=45, fontsize=7)
        ax.set_xlabel("training dimension d")
        ax.set_ylabel(f"{split} accuracy level")
        ax.set_title(_dof_label(method))
        ax.set_ylim(levels.min(), levels.max())
        ax.legend(fontsize=6, loc="lower right")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes.ravel().tolist(), shrink=0.6, label="success probability P_s")
    fig.suptitle(title or "Success probability of subspace training")
    return fig


def _edges(centers: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centers (for pcolormesh)."""
    centers = np.asarray(centers, dtype=np.float64)
    if centers.size == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    mid = (centers[1:] + centers[:-1]) / 2
    return np.concatenate([[2 * centers[0] - mid[0]], mid, [2 * centers[-1] - mid[-1]]])


def _dof_split_panels(ds: xr.Dataset, draw, xlabel: str, ylabel: str, title: str, legend_loc: str) -> plt.Figure:
    """Train and test panels side by side: ``draw(ax, split, method, color)`` per method, the
    full-space accuracy dashed, a log x axis, the legend on the train panel."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, split in zip(axes, ("train", "test")):
        for method in map(str, ds["method"].values):
            draw(ax, split, method, DOF_COLORS.get(method))
        _full_accuracy(ax, ds, split)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel.format(split=split))
    axes[0].legend(fontsize=7, loc=legend_loc)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def dof_threshold(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """d*(accuracy level) of every method on one plot, train and test (seed 004 Fig. 3)."""

    def draw(ax, split, method, color):
        dstar = ds["threshold_dimension"].sel({"method": method, "split": split})
        ok = np.isfinite(dstar.values)
        ax.plot(dstar.values[ok], dstar["level"].values[ok], marker=".", ms=3, color=color,
                label=_dof_label(method))
        ax.set_xlim(ds["d"].values.min() / 1.5, ds["d"].values.max() * 1.5)
        ax.set_title(f"{split} accuracy")

    return _dof_split_panels(ds, draw, "threshold training dimension d*", "{split} accuracy level",
                             title or "Threshold training dimension", "lower right")


def dof_compression(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """Mean accuracy (min-max band over runs) vs compression ratio D/d (seed 004 Fig. 6)."""
    x = ds["compression"].values

    def draw(ax, split, method, color):
        acc = ds[f"{split}_accuracy"].sel({"method": method})
        ax.plot(x, acc.mean("run"), marker="o", ms=3, color=color, label=_dof_label(method))
        ax.fill_between(x, acc.min("run"), acc.max("run"), color=color, alpha=0.2, lw=0)
        ax.set_title(f"{split} accuracy after {ds.sizes['adam_step']} Adam steps")

    return _dof_split_panels(ds, draw, "compression ratio D / d", "{split} accuracy",
                             title or "Accuracy vs compression ratio", "lower left")


def dof_start_step(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """d* against the start step t, one panel per sweep level (train accuracy): one line per
    start-step method (burn_in, hessian_topd, mask_topd) with the min-max band of the per-run d*,
    and random_affine (t = 0 by definition) as a horizontal reference."""
    if "sweep_threshold_dimension" not in ds:
        raise ValueError("the dof store has no start-step sweep (dof.sweep_levels)")
    levels = ds["sweep_level"].values
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.6), squeeze=False, sharey=True,
                             layout="constrained")
    steps = ds["start_step"].values
    for ax, level in zip(axes[0], levels):
        dstar = ds["sweep_threshold_dimension"].sel(split="train", sweep_level=level)
        runs = ds["sweep_run_threshold_dimension"].sel(split="train", sweep_level=level)
        for method in map(str, ds["method"].values):
            line, spread = dstar.sel({"method": method}).values, runs.sel({"method": method})
            color, label = DOF_COLORS.get(method), _dof_label(method)
            if method == "random_affine" and np.isfinite(line).any():
                ax.axhline(np.nanmax(line), color=color, ls="--", lw=1, label=f"{label}: d*")
            if method not in DOF_START_STEP_METHODS:  # the lottery methods' t is the rewind step
                continue
            ran = ds["sweep_ran"].sel({"method": method}).values
            t = steps[ran]
            ax.plot(t, line[ran], marker="o", ms=4, color=color, label=label)
            ax.fill_between(t, spread.min("run").values[ran], spread.max("run").values[ran], color=color,
                            alpha=0.15, lw=0)
        ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=max(1, int(steps[steps > 0].min()) if (steps > 0).any() else 1))
        ax.set_xticks(steps, [str(int(t)) for t in steps])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("start step t (SGD steps before subspace training)")
        ax.set_title(f"train accuracy >= {level:g}")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("threshold dimension d* (lower = easier)")
    axes[0, -1].legend(fontsize=7, loc="best")
    delta = ds.attrs.get("delta", "")
    fig.suptitle(title or "Threshold dimension against the start step")
    fig.text(0.01, -0.02, f"line: d* (success probability >= 1 - delta, delta = {delta}); band: per-run d*, "
             "min-max over runs; missing points: the level was not reached at any d; a point at the smallest d "
             f"({int(ds['d'].values.min())}) is an upper bound (the offset w_t may already reach the level)",
             fontsize=7)
    return fig


def quadratic_well(ds: xr.Dataset) -> plt.Figure:
    """Seed 004 Fig. 5: per spectrum, the eigenvalues, the success probability over (d, eps) for
    each R with simulated d* (solid) and the Eq. 3.4 bound (dashed), and all d* together."""
    spectra, radii = list(ds["spectrum"].values), list(ds["radius"].values)
    ncols = len(radii) + 2
    fig, axes = plt.subplots(len(spectra), ncols, figsize=(3.4 * ncols, 3.2 * len(spectra)), squeeze=False,
                             layout="constrained")
    d, eps = ds["d"].values, ds["eps"].values
    colors = sns.color_palette("viridis", len(radii))
    dim = int(ds.attrs.get("D", ds.sizes["index"]))
    mesh = None
    for row, spectrum in enumerate(spectra):
        ax = axes[row, 0]
        ax.plot(np.arange(1, dim + 1), ds["eigenvalues"].sel(spectrum=spectrum), color="k")
        ax.set_yscale("log")
        ax.set_xlabel("index i")
        ax.set_ylabel("eigenvalue lambda_i")
        ax.set_title(f"{spectrum} spectrum")
        summary = axes[row, -1]
        for col, (radius, color) in enumerate(zip(radii, colors), start=1):
            ax = axes[row, col]
            prob = ds["success_probability"].sel(spectrum=spectrum, radius=radius)
            mesh = ax.pcolormesh(_edges(d), _edges(np.log10(eps)), prob.values, cmap="Greys", vmin=0, vmax=1,
                                 rasterized=True)  # 50 x D cells: an image inside the PDF
            sim = ds["threshold_dimension"].sel(spectrum=spectrum, radius=radius).values
            bound = ds["threshold_bound"].sel(spectrum=spectrum, radius=radius).values
            for target in (ax, summary):
                target.step(sim, np.log10(eps), where="mid", color=color, lw=2, label=f"simulated d*, R = {radius:g}")
                target.plot(bound, np.log10(eps), color=color, lw=1.5, ls="--",
                            label=f"bound (Eq. 3.4), R = {radius:g}")
            ax.set_xlim(0, dim)
            ax.set_title(f"R = {radius:g}")
            ax.set_xlabel("training dimension d")
            ax.set_ylabel("log10 eps")
        summary.set_xlim(0, dim)
        summary.set_ylim(np.log10(eps).min(), np.log10(eps).max())
        summary.set_xlabel("threshold training dimension d*")
        summary.set_ylabel("log10 eps")
        summary.set_title("d*: simulated (solid), bound (dashed)")
        summary.legend(fontsize=6, loc="upper right")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[:, 1:-1].ravel().tolist(), shrink=0.7, label="success probability P_s")
    fig.suptitle("Quadratic well: random affine subspaces hitting the sublevel set S(eps)")
    return fig
