"""The figures of one experiment (seed 000 Figs. 1, 4, 9, 10; the TMLR figures), from its stores."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import seaborn as sns
import xarray as xr

from hessmask.eigen.methods import LABELS as METHOD_LABELS
from hessmask.masks import k_of_rho
from hessmask.plots.common import METRIC_LABELS, legend_panel, metric_axis_label, panel_grid, style
from hessmask.plots.synthetic import random_baseline

SPLIT_STYLE = {"train": "-", "test": "--"}


def _chance(ax, x, value, label="chance k/D") -> None:
    ax.plot(x, np.full(len(x), value), ls="--", color="0.4", lw=1, label=label)


def chance_of(metrics: xr.Dataset, k: Any) -> Any:
    """The metrics' ``chance`` at k (k / D', D' = D less masks.exclude; k / D for stores without it)."""
    eligible = int(metrics.attrs.get("eligible", metrics.attrs["D"]))
    return np.asarray(k, dtype=np.float64) / eligible


def chance_label(metrics: xr.Dataset) -> str:
    """'chance k/D', or 'chance k/(D - n excluded)' where masks.exclude left n parameters out."""
    dim, eligible = int(metrics.attrs["D"]), int(metrics.attrs.get("eligible", metrics.attrs["D"]))
    return "chance k/D" if eligible == dim else f"chance k/(D - {dim - eligible} excluded)"


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
    """k = round(rho D) of the metrics store's D (``hessmask.masks.k_of_rho``)."""
    return k_of_rho(int(metrics.attrs["D"]), rho)


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
        axes[2].axhline(float(chance_of(metrics, k)), ls="--", lw=1, color=color)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("overlap(mask, top-k eigenspace)")
    axes[2].set_title(f"Mask vs eigenspace (dashed: {chance_label(metrics)})")
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
    fig, axes = panel_grid(len(names) + 1)
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
    legend_panel(axes[-1], axes[0])
    axes[-1].text(0.5, 0.05, "dashed: random mask vs random subspace\n(synthetic study, OB, largest D)",
                  ha="center", transform=axes[-1].transAxes, fontsize=8)
    fig.suptitle(f"Grassmannian metrics between magnitude masks and top eigenspaces ({split} Hessian, {method})")
    fig.tight_layout()
    return fig


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
    _chance(ax, steps, float(chance_of(metrics, k)), chance_label(metrics))
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
    k = overlap["k"].values
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    colors = sns.color_palette("viridis", len(steps))
    for color, step in zip(colors, steps):
        axes[0].plot(k, overlap.sel(step=step), color=color, label=f"step {step}")
        axes[1].plot(k, overlap.sel(step=step) / chance_of(metrics, k), color=color, label=f"step {step}")
    axes[0].plot(k, chance_of(metrics, k), ls="--", color="0.4", lw=1, label=chance_label(metrics))
    axes[0].set_xscale("log")
    axes[0].set_xlabel("k")
    axes[0].set_ylabel("overlap(mask, top-k eigenspace)")
    axes[0].set_title(f"Overlap vs k (dashed: {chance_label(metrics)})")
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
        axes[2].axhline(float(chance_of(metrics, kk)), ls="--", lw=1, color=color)
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
        ax.plot(k, chance_of(metrics, k), ls="--", color="0.4", lw=1, label=chance_label(metrics))
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
        if "truncation_error" in metrics:  # what the exact top-k pairs leave: the floor of the right panel
            floor = metrics["truncation_error"].sel({"method": method}).values
            ok = np.isfinite(floor) & np.isfinite(products)
            if ok.any():
                axes[1].scatter(products[ok], floor[ok], facecolors="none", edgecolors=colors[method], s=25,
                                marker="s", label=f"{label}: exact top-k floor")
    axes[0].set_ylabel(f"top-{k} eigenspace overlap with exact (1 = same)")
    axes[0].set_ylim(0, 1.02)
    axes[0].set_title(f"Eigenspace accuracy, k = {k} ({rho:g} D)")
    axes[1].set_ylabel("a-posteriori ||H - U diag(theta) U^T||_F / ||H||_F")
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
        # labels at 1, 2, 5 x 10^n only: matplotlib's minor labels overlapped one another
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
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
