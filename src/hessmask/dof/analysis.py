"""What the subspace trainings show: success probability per accuracy level, the threshold training
dimension d*, and the experiment's dof store (``results/dof/<experiment>.zarr``). numpy and xarray
only: the aggregate job starts without torch.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from hessmask.dof.methods import LABELS, SUBSPACES


def running_max(values: Any, dim: str = "d") -> Any:
    """Best value over the current and all smaller d (valid because the subspaces are nested)."""
    return xr.apply_ufunc(np.maximum.accumulate, values, input_core_dims=[[dim]],
                          output_core_dims=[[dim]], kwargs={"axis": -1})


def success_probability(accuracy: Any, levels: Sequence[float]) -> Any:
    """P_s(d, level): the fraction of runs whose accuracy reaches each level (dims ..., level, d)."""
    values = np.asarray(levels, dtype=np.float64)
    level = xr.DataArray(values, dims="level", coords={"level": values})
    hit = accuracy >= level - 1e-12
    return hit.mean("run").transpose(..., "level", "d")


def threshold_dimension(success: Any, delta: float) -> Any:
    """d*(level): the smallest d with P_s >= 1 - delta (NaN where no d reaches it)."""
    ok = success >= 1 - delta - 1e-12
    d = success["d"].values.astype(np.float64)

    def first(mask: np.ndarray) -> np.ndarray:
        any_ = mask.any(axis=-1)
        return np.where(any_, d[np.argmax(mask, axis=-1)], np.nan)

    return xr.apply_ufunc(first, ok, input_core_dims=[["d"]])


def best_full_space(full: xr.Dataset) -> tuple[xr.Dataset, float]:
    """The full-space reference at the learning rate with the best mean final train accuracy
    (seed 004 appendix A: "the better result of 5e-2 and 1e-2"); ``full`` has dims (lr, run)."""
    mean = full["train_accuracy"].mean("run")
    best = float(full["lr"].values[int(np.nanargmax(mean.values))])
    return full.sel(lr=best, drop=True), best


def run_threshold_dimension(accuracy: Any, levels: Sequence[float]) -> Any:
    """Per-run d*: the smallest d at which one run's accuracy (running max over smaller d) reaches
    each level, NaN if none; dims (..., run, level). Its spread over runs is the spread of d*."""
    values = np.asarray(levels, dtype=np.float64)
    level = xr.DataArray(values, dims="level", coords={"level": values})
    hit = (running_max(accuracy) >= level - 1e-12).astype(np.float64)
    return threshold_dimension(hit, 0.0)


def dof_dataset(chunks: Sequence[xr.Dataset], full: xr.Dataset, dim: int, levels: Sequence[float],
                delta: float, main_steps: Mapping[str, int], sweep_levels: Sequence[float] = ()) -> xr.Dataset:
    """results/dof/<experiment>.zarr from the subspace jobs and the full-space reference.

    Args:
        chunks: the (subspace, start_step, d, run) datasets of :func:`run_chunk`.
        full: the full-space reference, dims (lr, run) (one learning rate or several; the best is kept).
        dim: D.
        levels: accuracy levels of the success probability.
        delta: d* is the smallest d with success probability >= 1 - delta.
        main_steps: subspace -> the offset step of its main results (:func:`main_offset_step`).
        sweep_levels: levels of the start-step sweep (d* against t).
    Returns:
        Dataset: per (subspace, d, run) the final losses and accuracies at each subspace's main step,
        the success probability and d* per split; the full-space reference; and, over every
        start step t, ``sweep_threshold_dimension`` (subspace, start_step, split, level) with the
        per-run ``sweep_run_threshold_dimension`` (subspace, start_step, run, split, level).
    Implements docs/science.md, section "Degrees of freedom".
    """
    everything = xr.merge([c for c in chunks], combine_attrs="drop_conflicts", join="outer",
                          compat="no_conflicts")
    subspaces = [m for m in SUBSPACES if m in set(map(str, everything["subspace"].values))]
    main = xr.concat([everything.sel({"subspace": m, "start_step": main_steps[m]}, drop=True) for m in subspaces],
                     dim=xr.DataArray(subspaces, dims="subspace", name="subspace"))
    ds = main.transpose("subspace", "d", "run", "adam_step")
    ds = ds.assign_coords(compression=("d", dim / ds["d"].values.astype(np.float64)))
    ds["compression"].attrs.update(long_name="compression ratio D / d", units="1")
    ds["offset_step"] = ("subspace", [main_steps[m] for m in subspaces])
    ds["offset_step"].attrs.update(long_name="checkpoint step of each subspace's offset (t, r or 0)", units="steps")
    full, best_lr = best_full_space(full)
    for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        ds[f"full_{name}"] = full[name].rename(run="full_run")
        ds[f"full_{name}"].attrs.update(full[name].attrs,
                                        long_name="full-space reference: " + full[name].attrs["long_name"])
    splits = xr.DataArray(["train", "test"], dims="split", name="split")
    accuracy = xr.concat([running_max(ds[f"{s}_accuracy"]) for s in ("train", "test")], dim=splits)
    ds["success_probability"] = success_probability(accuracy, levels).transpose("subspace", "split", "level", "d")
    ds["success_probability"].attrs.update(
        units="1", long_name="fraction of runs whose accuracy (running max over smaller d) reaches the level")
    ds["threshold_dimension"] = threshold_dimension(ds["success_probability"], delta)
    ds["threshold_dimension"].attrs.update(
        units="1", long_name=f"d*: smallest d with success probability >= 1 - delta (delta = {delta}); NaN if none")
    if sweep_levels:
        swept = everything["train_accuracy"].sel({"subspace": subspaces})
        sweep_accuracy = xr.concat(
            [everything[f"{s}_accuracy"].sel({"subspace": subspaces}) for s in ("train", "test")], dim=splits)
        present = swept.notnull().all("run").any("d")  # (subspace, start_step): the jobs that ran
        success = success_probability(running_max(sweep_accuracy), sweep_levels)
        ds["sweep_threshold_dimension"] = threshold_dimension(success, delta).where(present).transpose(
            "subspace", "start_step", "split", "level").rename(level="sweep_level")
        per_run = run_threshold_dimension(sweep_accuracy, sweep_levels).where(present)
        ds["sweep_run_threshold_dimension"] = per_run.transpose(
            "subspace", "start_step", "run", "split", "level").rename(level="sweep_level")
        ds["sweep_ran"] = present.transpose("subspace", "start_step")
        ds["sweep_ran"].attrs.update(long_name="whether the subspace jobs of (subspace, start step) ran", units="1")
        ds["sweep_threshold_dimension"].attrs.update(
            units="1", long_name=f"d* of the runs started at step t (delta = {delta}); NaN if none or not run")
        ds["sweep_run_threshold_dimension"].attrs.update(
            units="1", long_name="per-run d*: smallest d where this run reaches the level; NaN if none or not run")
        ds["start_step"].attrs.update(long_name="t: the checkpoint step the subspace's offset is taken at",
                                      units="steps")
    ds.attrs.update(D=dim, delta=delta, full_lr=best_lr,
                    subspaces=", ".join(f"{m}: {LABELS[m]}" for m in ds["subspace"].values))
    return ds
