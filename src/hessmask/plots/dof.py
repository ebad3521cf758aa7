"""The degrees-of-freedom figures (seed 004 Figs. 2, 3, 5, 6 and the start-step sweep)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import seaborn as sns
import xarray as xr

from hessmask.dof.methods import LABELS as SUBSPACE_LABELS
from hessmask.dof.methods import START_STEP_SUBSPACES, SUBSPACES
from hessmask.plots.common import edges, panel_grid

DOF_COLORS = dict(zip(SUBSPACES, sns.color_palette("colorblind", len(SUBSPACES))))


def _dof_label(subspace: str) -> str:
    return SUBSPACE_LABELS.get(subspace, subspace)


def _full_accuracy(ax, ds: xr.Dataset, split: str, orientation: str = "h") -> None:
    """Dashed line at the mean full-space accuracy (seed 004's 'full model' baseline)."""
    value = float(ds[f"full_{split}_accuracy"].mean())
    (ax.axhline if orientation == "h" else ax.axvline)(value, color="0.3", ls="--", lw=1,
                                                       label=f"full space ({value:.2f})")


def dof_success(ds: xr.Dataset, title: str = "", split: str = "train") -> plt.Figure:
    """Success probability over (d, accuracy level) per subspace, d* (1 - delta) overlaid (seed 004 Fig. 2)."""
    subspaces = [str(m) for m in ds["subspace"].values]
    fig, axes = panel_grid(len(subspaces), ncols=3, size=(4.0, 3.2))
    fig.set_layout_engine("constrained")
    d = ds["d"].values
    levels = ds["level"].values
    mesh = None
    for ax, subspace in zip(axes.flat, subspaces):
        prob = ds["success_probability"].sel({"subspace": subspace, "split": split})
        mesh = ax.pcolormesh(np.arange(d.size + 1) - 0.5, edges(levels), prob.values, cmap="Greys",
                             vmin=0, vmax=1, shading="flat")
        dstar = ds["threshold_dimension"].sel({"subspace": subspace, "split": split})
        ok = np.isfinite(dstar.values)
        pos = np.searchsorted(d, dstar.values[ok])
        ax.step(pos, levels[ok], where="mid", color=DOF_COLORS.get(subspace, "C0"), lw=2,
                label=f"d* (1 - delta = {1 - float(ds.attrs.get('delta', 0.1)):.2f})")
        _full_accuracy(ax, ds, split)
        ax.set_xticks(np.arange(d.size))
        ax.set_xticklabels([str(v) for v in d], rotation=45, fontsize=7)
        ax.set_xlabel("training dimension d")
        ax.set_ylabel(f"{split} accuracy level")
        ax.set_title(_dof_label(subspace))
        ax.set_ylim(levels.min(), levels.max())
        ax.legend(fontsize=6, loc="lower right")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes.ravel().tolist(), shrink=0.6, label="success probability P_s")
    fig.suptitle(title or "Success probability of subspace training")
    return fig


def _dof_split_panels(ds: xr.Dataset, draw, xlabel: str, ylabel: str, title: str, legend_loc: str) -> plt.Figure:
    """Train and test panels side by side: ``draw(ax, split, subspace, color)`` per subspace, the
    full-space accuracy dashed, a log x axis, the legend on the train panel."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, split in zip(axes, ("train", "test")):
        for subspace in map(str, ds["subspace"].values):
            draw(ax, split, subspace, DOF_COLORS.get(subspace))
        _full_accuracy(ax, ds, split)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel.format(split=split))
    axes[0].legend(fontsize=7, loc=legend_loc)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def dof_threshold(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """d*(accuracy level) of every subspace on one plot, train and test (seed 004 Fig. 3)."""

    def draw(ax, split, subspace, color):
        dstar = ds["threshold_dimension"].sel({"subspace": subspace, "split": split})
        ok = np.isfinite(dstar.values)
        ax.plot(dstar.values[ok], dstar["level"].values[ok], marker=".", ms=3, color=color,
                label=_dof_label(subspace))
        ax.set_xlim(ds["d"].values.min() / 1.5, ds["d"].values.max() * 1.5)
        ax.set_title(f"{split} accuracy")

    return _dof_split_panels(ds, draw, "threshold training dimension d*", "{split} accuracy level",
                             title or "Threshold training dimension", "lower right")


def dof_compression(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """Mean accuracy (min-max band over runs) vs compression ratio D/d (seed 004 Fig. 6)."""
    x = ds["compression"].values

    def draw(ax, split, subspace, color):
        acc = ds[f"{split}_accuracy"].sel({"subspace": subspace})
        ax.plot(x, acc.mean("run"), marker="o", ms=3, color=color, label=_dof_label(subspace))
        ax.fill_between(x, acc.min("run"), acc.max("run"), color=color, alpha=0.2, lw=0)
        ax.set_title(f"{split} accuracy after {ds.sizes['adam_step']} Adam steps")

    return _dof_split_panels(ds, draw, "compression ratio D / d", "{split} accuracy",
                             title or "Accuracy vs compression ratio", "lower left")


def dof_start_step(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """d* against the start step t, one panel per sweep level (train accuracy): one line per
    start-step subspace (burn_in, hessian_topd, mask_topd) with the min-max band of the per-run d*,
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
        for subspace in map(str, ds["subspace"].values):
            line, spread = dstar.sel({"subspace": subspace}).values, runs.sel({"subspace": subspace})
            color, label = DOF_COLORS.get(subspace), _dof_label(subspace)
            if subspace == "random_affine" and np.isfinite(line).any():
                ax.axhline(np.nanmax(line), color=color, ls="--", lw=1, label=f"{label}: d*")
            if subspace not in START_STEP_SUBSPACES:  # the lottery subspaces' t is the rewind step
                continue
            ran = ds["sweep_ran"].sel({"subspace": subspace}).values
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
    dim = int(ds.attrs.get("D", ds.sizes["spectrum_index"]))
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
            mesh = ax.pcolormesh(edges(d), edges(np.log10(eps)), prob.values, cmap="Greys", vmin=0, vmax=1,
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
