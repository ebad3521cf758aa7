"""The degrees-of-freedom figures (seed 004 Figs. 2, 3, 5, 6 and the start-step sweep)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import xarray as xr

from hessmask.dof.methods import LABELS as SUBSPACE_LABELS
from hessmask.plots.common import edges, panel_grid

_PALETTE = sns.color_palette("colorblind", 10)
#: one colour per subspace kind, the three start-step subspaces far apart (blue, vermillion, purple)
DOF_COLORS = {"random_affine": (0.45, 0.45, 0.45), "burn_in": _PALETTE[0], "lottery_subspace": _PALETTE[2],
              "lottery_ticket": _PALETTE[1], "hessian_topd": _PALETTE[3], "mask_topd": _PALETTE[4]}


def _dof_label(subspace: str) -> str:
    return SUBSPACE_LABELS.get(subspace, subspace)


def _full_accuracy(ax, ds: xr.Dataset, split: str, orientation: str = "h") -> None:
    """Dashed line at the mean full-space accuracy (seed 004's 'full model' baseline)."""
    value = float(ds[f"full_{split}_accuracy"].mean())
    (ax.axhline if orientation == "h" else ax.axvline)(value, color="0.3", ls="--", lw=1,
                                                       label=f"full space ({value:.2f})")


def _offset_line(ax, ds: xr.Dataset, subspace: str, split: str, color, label: bool = True) -> None:
    """The offset's own accuracy (d = 0, mean over runs) as a dotted line: where training starts."""
    name = f"offset_{split}_accuracy"
    if name not in ds:
        return
    value = float(ds[name].sel({"subspace": subspace}).mean())
    ax.axhline(value, color=color, ls=":", lw=1.2, label=f"offset w_t, d = 0 ({value:.2f})" if label else None)


def _rule(ds: xr.Dataset) -> str:
    return str(ds.attrs.get("success", "final"))


def _rule_field(ds: xr.Dataset, split: str) -> str:
    return f"best_{split}_accuracy" if _rule(ds) == "best" and f"best_{split}_accuracy" in ds else f"{split}_accuracy"


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
        _offset_line(ax, ds, subspace, split, "C3")
        ax.set_xticks(np.arange(d.size))
        ax.set_xticklabels([str(v) for v in d], rotation=45, fontsize=7)
        ax.set_xlabel("training dimension d")
        ax.set_ylabel(f"{split} accuracy level ({_rule(ds)} over training)")
        ax.set_title(f"{_dof_label(subspace)}, t = {int(ds['offset_step'].sel({'subspace': subspace}))}")
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
        ax.set_title(f"{split} accuracy ({_rule(ds)} over training)")

    return _dof_split_panels(ds, draw, "threshold training dimension d*", "{split} accuracy level",
                             title or "Threshold training dimension", "lower right")


def dof_compression(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """Mean accuracy (min-max band over runs) vs compression ratio D/d (seed 004 Fig. 6), the
    success rule's accuracy; the offsets' own accuracy (d = 0, infinite compression) as hollow
    diamonds right of the axis' last ratio."""
    x = ds["compression"].values
    edge = float(x.max()) * 2.5  # where d = 0 is drawn

    def draw(ax, split, subspace, color):
        acc = ds[_rule_field(ds, split)].sel({"subspace": subspace})
        ax.plot(x, acc.mean("run"), marker="o", ms=3, color=color, label=_dof_label(subspace))
        ax.fill_between(x, acc.min("run"), acc.max("run"), color=color, alpha=0.2, lw=0)
        name = f"offset_{split}_accuracy"
        if name in ds:
            ax.scatter([edge], [float(ds[name].sel({"subspace": subspace}).mean())], marker="D", s=30,
                       facecolors="none", edgecolors=color, zorder=3)
        ax.set_title(f"{split} accuracy ({_rule(ds)} over {ds.sizes['adam_step']} Adam steps); "
                     "diamonds: offset, d = 0", fontsize=9)

    fig = _dof_split_panels(ds, draw, "compression ratio D / d (diamonds: d = 0)", "{split} accuracy",
                            title or "Accuracy vs compression ratio", "lower left")
    return fig


def _step_positions(ds: xr.Dataset) -> tuple[np.ndarray, list[str]]:
    steps = ds["start_step"].values
    return np.arange(steps.size, dtype=np.float64), [str(int(t)) for t in steps]


def dof_start_step(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """The start-step experiment: top, each run's offset accuracy at every t against the levels;
    below, one panel per level, every run's d* bracket (lower end to d*, a vertical tick) and the
    median over runs (line), per subspace; a run whose offset already has the level is a hollow
    triangle at the bottom edge (d = 0), one that never reaches it within the grid a triangle at the
    top edge; pairs whose 95 % intervals separate are named above the start step."""
    if "sweep_run_threshold" not in ds:
        raise ValueError("the dof store has no start-step experiment (dof.start_steps, dof.sweep_levels)")
    levels = ds["sweep_level"].values
    subspaces = [str(s) for s in ds["sweep_subspace"].values]
    x, labels = _step_positions(ds)
    fig, axes = plt.subplots(1 + len(levels), 1, figsize=(7.5, 2.2 + 2.9 * len(levels)), sharex=True,
                             layout="constrained", gridspec_kw={"height_ratios": [0.8] + [1.0] * len(levels)})
    top = axes[0]
    offsets = ds["sweep_offset_train_accuracy"]
    for r in ds["run"].values:
        top.plot(x, offsets.sel(run=r), marker="o", ms=3, lw=0.8, color="0.35", alpha=0.7,
                 label="each run's offset w_t (d = 0)" if r == ds["run"].values[0] else None)
    for level in levels:
        top.axhline(level, color="C3", ls="--", lw=0.8)
    top.set_ylabel("train accuracy\nof w_t")
    top.set_title("Offsets: a level at or below a run's offset is reached at d = 0 (dashed: the levels)", fontsize=9)
    top.legend(fontsize=7, loc="upper left")
    d_grid = ds["d"].values.astype(np.float64)
    bottom, ceiling = d_grid.min() / 3, d_grid.max() * 3
    shift = dict(zip(subspaces, np.linspace(-0.2, 0.2, len(subspaces))))
    for ax, level in zip(axes[1:], levels):
        hi = ds["sweep_run_threshold"].sel(sweep_level=level)
        lo = ds["sweep_run_threshold_lower"].sel(sweep_level=level)
        for subspace in subspaces:
            color, dx = DOF_COLORS.get(subspace), shift[subspace]
            ran = ds["sweep_ran"].sel(sweep_subspace=subspace).values
            h, lw = hi.sel(sweep_subspace=subspace).values, lo.sel(sweep_subspace=subspace).values  # (t, run)
            for j in np.flatnonzero(ran):
                for r in range(h.shape[1]):
                    xs = x[j] + dx + 0.025 * (r - (h.shape[1] - 1) / 2)
                    if h[j, r] == 0:
                        ax.scatter([xs], [bottom], marker="v", s=18, facecolors="none", edgecolors=color)
                    elif np.isnan(h[j, r]):
                        ax.scatter([xs], [ceiling], marker="^", s=18, color=color)
                    else:
                        ax.plot([xs, xs], [max(lw[j, r], bottom), h[j, r]], color=color, lw=1.2, alpha=0.7)
                        ax.scatter([xs], [h[j, r]], s=8, color=color)
            median = ds["sweep_median_threshold"].sel(sweep_subspace=subspace, sweep_level=level).values
            shown = np.where(median == 0, bottom, median)
            ax.plot(x[ran] + dx, shown[ran], marker="s", ms=5, lw=1.5, color=color,
                    label=f"{_dof_label(subspace)}: median d*")
        if "sweep_separated" in ds:
            for j in range(x.size):
                names = [str(p).replace("hessian_topd", "H").replace("burn_in", "B").replace("mask_topd", "M")
                         .replace(" vs ", "|") for p in ds["pair"].values
                         if bool(ds["sweep_separated"].sel(pair=p, sweep_level=level).values[j])]
                ax.text(x[j], ceiling * 1.8, ", ".join(names) if names else "n.s.", ha="center", fontsize=7,
                        color="0.2")
        ax.set_yscale("log")
        ax.set_ylim(bottom / 1.5, ceiling * 3.5)
        ax.axhline(d_grid.max(), color="0.6", lw=0.6, ls=":")
        ax.set_ylabel("d* (lower = easier)")
        ax.set_title(f"train accuracy >= {level:g} ({_rule(ds)} over training); top: pairs separated at 95 % "
                     "(H: Hessian, B: burn-in, M: mask)", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    axes[1].legend(fontsize=7, loc="lower left")
    axes[-1].set_xticks(x, labels)
    axes[-1].set_xlabel("start step t (SGD steps of each run before subspace training)")
    delta = ds.attrs.get("delta", "")
    fig.suptitle(title or "Threshold dimension against the start step")
    fig.text(0.01, -0.03, f"Each run: its own w_0 and trajectory to t, paired across subspaces. Vertical ticks: the "
             "bracket (last d below, first d at the level) after bisection; hollow down-triangles: the offset "
             f"already has the level (d* = 0); up-triangles: not reached up to d = {int(d_grid.max())}. delta = "
             f"{delta}.", fontsize=7, wrap=True)
    return fig


def dof_start_step_success(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """Success probability against d on the grid at every start step (columns) and level (rows), one
    line per subspace with its 95 % Wilson band: where the bands do not overlap, the runs separate
    the subspaces; where they do, these runs cannot."""
    if "sweep_success" not in ds:
        raise ValueError("the dof store has no start-step experiment (dof.start_steps, dof.sweep_levels)")
    levels, steps = ds["sweep_level"].values, ds["start_step"].values
    subspaces = [str(s) for s in ds["sweep_subspace"].values]
    fig, axes = plt.subplots(len(levels), steps.size, figsize=(2.6 * steps.size + 0.6, 2.3 * len(levels) + 0.6),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    d = ds["d"].values
    runs = ds.sizes["run"]
    for i, level in enumerate(levels):
        for j, t in enumerate(steps):
            ax = axes[i, j]
            for subspace in subspaces:
                cell = {"sweep_subspace": subspace, "sweep_level": level, "start_step": t}
                if not bool(ds["sweep_ran"].sel(sweep_subspace=subspace, start_step=t)):
                    continue
                color = DOF_COLORS.get(subspace)
                ax.plot(d, ds["sweep_success"].sel(cell), marker="o", ms=3, color=color, label=_dof_label(subspace))
                ax.fill_between(d, ds["sweep_success_low"].sel(cell), ds["sweep_success_high"].sel(cell),
                                color=color, alpha=0.15, lw=0)
            reached = ds["sweep_offset_reached"].sel(start_step=t, sweep_level=level).values
            if reached.any():
                ax.text(0.03, 0.9, f"offset >= level in {int(reached.sum())}/{runs} runs", transform=ax.transAxes,
                        fontsize=6, color="C3")
            ax.set_xscale("log")
            ax.set_ylim(-0.03, 1.03)
            if i == 0:
                ax.set_title(f"t = {int(t)}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"P_s(acc >= {level:g})")
            if i == len(levels) - 1:
                ax.set_xlabel("d")
    axes[0, 0].legend(fontsize=6, loc="center left")
    fig.suptitle(title or f"Success probability with 95 % Wilson intervals ({runs} paired runs)")
    return fig


def quadratic_well(ds: xr.Dataset) -> plt.Figure:
    """Seed 004 Fig. 5: per spectrum, the eigenvalues, the success probability over (d, eps) for
    each R with simulated d* (solid) and the Eq. 3.4 bound (dashed), and all d* together; the
    trivial regime eps >= L(w0), where d* = 0, is hatched and the simulated d* not drawn there."""
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
            informative = ~ds["trivial"].sel(spectrum=spectrum, radius=radius).values if "trivial" in ds else None
            for target in (ax, summary):
                shown = sim if informative is None else np.where(informative, sim, np.nan)
                target.step(shown, np.log10(eps), where="mid", color=color, lw=2,
                            label=f"simulated d*, R = {radius:g}")
                target.plot(bound, np.log10(eps), color=color, lw=1.5, ls="--",
                            label=f"bound (Eq. 3.4), R = {radius:g}")
            if informative is not None and not informative.all():
                start = float(np.log10(eps[~informative].min()))
                ax.axhspan(start, np.log10(eps).max(), facecolor="none", edgecolor="tab:red", hatch="//", lw=0,
                           alpha=0.5, label="eps >= L(w0): d* = 0")
                ax.axhline(start, color="tab:red", lw=0.8, ls=":")
                summary.axhline(start, color=color, lw=0.8, ls=":")
                ax.legend(fontsize=6, loc="lower left")
            ax.set_xlim(0, dim)
            ax.set_title(f"R = {radius:g}")
            ax.set_xlabel("training dimension d")
            ax.set_ylabel("log10 eps")
        summary.set_xlim(0, dim)
        summary.set_ylim(np.log10(eps).min(), np.log10(eps).max())
        summary.set_xlabel("threshold training dimension d*")
        summary.set_ylabel("log10 eps")
        summary.set_title("d*: simulated (solid), bound (dashed);\ndotted: eps = L(w0), d* = 0 above", fontsize=9)
        summary.legend(fontsize=6, loc="upper right")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[:, 1:-1].ravel().tolist(), shrink=0.7, label="success probability P_s")
    fig.suptitle("Quadratic well: random affine subspaces hitting the sublevel set S(eps)")
    return fig
