"""What the subspace trainings show: success probability per accuracy level, the threshold training
dimension d*, the start-step experiment's per-run d* brackets, intervals and paired comparisons, and
the experiment's dof store (``results/dof/<experiment>.zarr``). numpy and xarray only: the
aggregate job starts without torch.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from hessmask.dof.methods import LABELS, PAIRS, RESULT_ATTRS, RESULT_FIELDS, START_STEP_SUBSPACES, SUBSPACES
from hessmask.dof.refine import first_crossing, separated, sign_test, threshold_order_statistic, wilson_interval

#: the accuracy each success rule reads, per split (``dof.success``)
SUCCESS_FIELD = {"best": "best_{split}_accuracy", "final": "{split}_accuracy"}


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


def _main_results(start: xr.Dataset, lottery: Sequence[xr.Dataset], main_steps: Mapping[str, int],
                  subspaces: Sequence[str]) -> xr.Dataset:
    """Every configured subspace at its main step, dims (subspace, d, run[, adam_step]): random_affine
    is burn_in at t = 0, the start-step subspaces are the start-step jobs at ``dof.start_step``."""
    parts, names = [], []
    for subspace in [s for s in SUBSPACES if s in subspaces]:
        if subspace in START_STEP_SUBSPACES or subspace == "random_affine":
            source = "burn_in" if subspace == "random_affine" else subspace
            part = start.sel({"subspace": source, "start_step": main_steps[subspace]}, drop=True)
        else:
            (part,) = [ds.sel({"subspace": subspace}, drop=True).isel(start_step=0, drop=True) for ds in lottery
                       if subspace in ds["subspace"].values]
        parts.append(part[[*RESULT_FIELDS, "batch_loss"]])
        names.append(subspace)
    main = xr.concat(parts, dim=xr.DataArray(names, dims="subspace", name="subspace"), join="outer")
    return main.transpose("subspace", "d", "run", "adam_step")


def _run_brackets(start: xr.Dataset, accuracy_field: str, levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of every (subspace, start_step, run, level) from the grid and the bisection's
    trainings (``hessmask.dof.refine.first_crossing``, on the success rule's train accuracy)."""
    grid = start[accuracy_field].transpose("subspace", "start_step", "run", "d")
    refined_d = start["refined_d"].transpose("subspace", "start_step", "run", "refined")
    refined = start[f"refined_{accuracy_field}"].transpose("subspace", "start_step", "run", "refined")
    offset = start["offset_train_accuracy_of_run"].transpose("start_step", "run")
    d = grid["d"].values.astype(np.float64)
    shape = (*grid.shape[:3], len(levels))
    lo, hi = np.full(shape, np.nan), np.full(shape, np.nan)
    for i, j, r in np.ndindex(*grid.shape[:3]):
        values = grid.values[i, j, r]
        if not np.isfinite(values).any():
            continue  # this (subspace, t) was not trained
        dims = np.concatenate([d, refined_d.values[i, j, r]])
        accuracy = np.concatenate([values, refined.values[i, j, r]])
        for k, level in enumerate(levels):
            lo[i, j, r, k], hi[i, j, r, k] = first_crossing(dims, accuracy, float(offset.values[j, r]), level)
    return lo, hi


def sweep_variables(start: xr.Dataset, levels: Sequence[float], delta: float, success: str) -> xr.Dataset:
    """The start-step experiment's results on (subspace, start_step, ...): the grid accuracies, the
    offsets', the bisection's trainings, every run's d* bracket, the success probability on the grid
    with its Wilson 95 % interval, d* (the order statistic of the per-run thresholds), their median,
    the Hessian solves' diagnostics, and the paired comparisons of :data:`hessmask.dof.methods.PAIRS`.
    Implements docs/science.md, section "Degrees of freedom" (the start-step experiment)."""
    field = SUCCESS_FIELD[success].format(split="train")
    levels = [float(v) for v in levels]
    subspaces = [s for s in START_STEP_SUBSPACES if s in start["subspace"].values]
    start = start.sel({"subspace": subspaces})
    runs = start.sizes["run"]
    out = xr.Dataset(coords={"subspace": subspaces, "start_step": start["start_step"].values,
                             "run": start["run"].values, "d": start["d"].values, "sweep_level": levels})
    for name in RESULT_FIELDS:
        if not name.startswith("offset"):
            out[f"sweep_{name}"] = start[name].transpose("subspace", "start_step", "run", "d")
            out[f"sweep_{name}"].attrs.update(units=RESULT_ATTRS[name][0], long_name=RESULT_ATTRS[name][1])
    for split in ("train", "test"):
        out[f"sweep_offset_{split}_accuracy"] = start[f"offset_{split}_accuracy_of_run"].transpose("start_step", "run")
        out[f"sweep_offset_{split}_accuracy"].attrs.update(
            units="1", long_name=f"{split} accuracy of each run's offset w_t itself (d = 0)")
    if start.sizes.get("refined", 0):
        out = out.assign_coords(refined=start["refined"].values)
        for name in ("refined_d", *(f"refined_{f}" for f in ("train_accuracy", "best_train_accuracy",
                                                                  "test_accuracy", "best_test_accuracy"))):
            out[name] = start[name].transpose("subspace", "start_step", "run", "refined")
            out[name].attrs.update(start[name].attrs)
    lo, hi = _run_brackets(start, field, levels)
    dims4 = ("subspace", "start_step", "run", "sweep_level")
    ran = np.isfinite(start[field].transpose("subspace", "start_step", "run", "d").values).any(axis=(-1, -2))
    out["sweep_ran"] = (("subspace", "start_step"), ran)
    out["sweep_ran"].attrs.update(units="1", long_name="whether the jobs of (subspace, start step) ran")
    out["sweep_run_threshold"] = (dims4, hi)
    out["sweep_run_threshold"].attrs.update(
        units="1", long_name="per-run d*: the smallest evaluated d (grid or bisection) whose running-max accuracy "
                             "reaches the level; 0 where the offset already does; NaN where no d <= max(dims) does")
    out["sweep_run_threshold_lower"] = (dims4, lo)
    out["sweep_run_threshold_lower"].attrs.update(
        units="1", long_name="the largest evaluated d below the per-run d* (0: the offset): the crossing lies in "
                             "(lower, d*]; for no crossing, the largest d tried")
    offset = out["sweep_offset_train_accuracy"].values[..., None] >= np.asarray(levels)[None, None]
    out["sweep_offset_reached"] = (("start_step", "run", "sweep_level"), offset)
    out["sweep_offset_reached"].attrs.update(
        units="1", long_name="the run's offset w_t already has this train accuracy: the level counts as reached at "
                             "d = 0, not as a crossing of any subspace")
    grid = start["d"].values.astype(np.float64)
    reached = np.where(np.isnan(hi)[..., None], False, hi[..., None] <= grid)  # (s, t, r, level, d)
    counts = reached.sum(axis=2)
    low, high = wilson_interval(counts, runs)
    dims5 = ("subspace", "start_step", "sweep_level", "d")
    probability = np.where(ran[:, :, None, None], counts / runs, np.nan)
    out["sweep_success"] = (dims5, probability)
    out["sweep_success_low"] = (dims5, np.where(ran[:, :, None, None], low, np.nan))
    out["sweep_success_high"] = (dims5, np.where(ran[:, :, None, None], high, np.nan))
    out["sweep_success"].attrs.update(units="1", long_name=f"fraction of runs that reach the level at d ({field})")
    for name, side in (("sweep_success_low", "lower"), ("sweep_success_high", "upper")):
        out[name].attrs.update(units="1", long_name=f"{side} end of the 95 % Wilson interval of sweep_success")
    order = np.moveaxis(hi, 2, -1)  # runs last
    dstar = threshold_order_statistic(order, delta)
    dstar = np.where(ran[:, :, None], dstar, np.nan)
    out["sweep_threshold_dimension"] = (("subspace", "start_step", "sweep_level"), dstar)
    out["sweep_threshold_dimension"].attrs.update(
        units="1", long_name=f"d*: the ceil((1 - delta) R)-th smallest per-run d* (success probability >= 1 - delta, "
                             f"delta = {delta}); NaN if that many runs never reach the level")
    median = np.nanmedian(np.where(np.isnan(order), np.inf, order), axis=-1)
    out["sweep_median_threshold"] = (("subspace", "start_step", "sweep_level"),
                                     np.where(np.isfinite(median) & ran[:, :, None], median, np.nan))
    out["sweep_median_threshold"].attrs.update(
        units="1", long_name="median over runs of the per-run d* (NaN if half the runs never reach the level)")
    for name in ("hessian_eigenvalues", "hessian_residual", "hessian_products", "hessian_eigenspace_accuracy"):
        if name in start:
            found = start[name]
            if "subspace" in found.dims:
                found = found.sel(subspace="hessian_topd", drop=True)
            out[name] = found
    _pair_variables(out, subspaces, lo, hi, levels)
    out["sweep_level"].attrs.update(long_name="train-accuracy level of the start-step experiment", units="1")
    out["start_step"].attrs.update(long_name="t: the SGD step of each run's offset w_t", units="steps")
    out.attrs["success"] = success
    return out


def _pair_variables(out: xr.Dataset, subspaces: Sequence[str], lo: np.ndarray, hi: np.ndarray,
                    levels: Sequence[float]) -> None:
    """Paired comparisons of two subspaces per (start step, level) over the runs: how many runs need
    fewer dimensions in a than in b beyond the brackets (a's d* <= b's lower end), how many more,
    the sign test of the two, and whether the Wilson intervals separate them at some d."""
    pairs = [(a, b) for a, b in PAIRS if a in subspaces and b in subspaces]
    if not pairs:
        return
    steps = out.sizes["start_step"]
    shape = (len(pairs), steps, len(levels))
    fewer, more = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    p_value, apart, at = np.ones(shape), np.zeros(shape, bool), np.full(shape, np.nan)
    index = {s: i for i, s in enumerate(subspaces)}
    for p, (a, b) in enumerate(pairs):
        for t in range(steps):
            for k in range(len(levels)):
                la, ha = lo[index[a], t, :, k], hi[index[a], t, :, k]
                lb, hb = lo[index[b], t, :, k], hi[index[b], t, :, k]
                if not (np.isfinite(la).any() and np.isfinite(lb).any()):
                    p_value[p, t, k], apart[p, t, k] = np.nan, False
                    continue
                inf_a, inf_b = np.where(np.isnan(ha), np.inf, ha), np.where(np.isnan(hb), np.inf, hb)
                fewer[p, t, k] = int(np.sum(inf_a <= lb))  # a reached where b certainly had not
                more[p, t, k] = int(np.sum(inf_b <= la))
                p_value[p, t, k] = sign_test(fewer[p, t, k], more[p, t, k])
                below, d_ab = separated(la, ha, lb, hb)
                above, d_ba = separated(lb, hb, la, ha)
                apart[p, t, k] = below or above
                at[p, t, k] = d_ab if below else d_ba
    labels = [f"{a} vs {b}" for a, b in pairs]
    dims = ("pair", "start_step", "sweep_level")
    out.coords["pair"] = labels
    out["sweep_pair_fewer"] = (dims, fewer)
    out["sweep_pair_fewer"].attrs.update(units="runs", long_name="runs in which the first subspace reaches the level "
                                                                 "at a d where the second had certainly not")
    out["sweep_pair_more"] = (dims, more)
    out["sweep_pair_more"].attrs.update(units="runs", long_name="runs in which the second reaches it first")
    out["sweep_pair_sign_p"] = (dims, p_value)
    out["sweep_pair_sign_p"].attrs.update(
        units="1", long_name="two-sided sign test of fewer against more (ties dropped; 5 runs cannot go below 0.0625)")
    out["sweep_separated"] = (dims, apart)
    out["sweep_separated"].attrs.update(
        units="1", long_name="at some d the 95 % Wilson intervals of the two success probabilities (certain successes "
                             "of one, possible ones of the other) do not overlap")
    out["sweep_separated_at"] = (dims, at)
    out["sweep_separated_at"].attrs.update(units="1", long_name="the smallest such d (NaN: not separated)")


def dof_dataset(start: Sequence[xr.Dataset], lottery: Sequence[xr.Dataset], full: xr.Dataset, dim: int,
                levels: Sequence[float], delta: float, main_steps: Mapping[str, int], subspaces: Sequence[str],
                sweep_levels: Sequence[float] = (), success: str = "best") -> xr.Dataset:
    """results/dof/<experiment>.zarr from the start-step jobs, the lottery jobs and the full-space reference.

    Args:
        start: the (subspace, start_step, d, run) stores of the start-step jobs.
        lottery: the (subspace, start_step, d, run) stores of the lottery jobs.
        full: the full-space reference, dims (lr, run) (one learning rate or several; the best is kept).
        dim: D.
        levels: accuracy levels of the success probability of the main results.
        delta: d* is the smallest d with success probability >= 1 - delta.
        main_steps: subspace -> the offset step of its main results (:func:`main_offset_step`).
        subspaces: the configured subspaces (``dof.subspaces``).
        sweep_levels: levels of the start-step experiment (d* against t).
        success: which accuracy success reads (``dof.success``: best or final).
    Returns:
        Dataset: per (subspace, d, run) every result field at each subspace's main step, the
        success probability and d* per split (on the ``success`` accuracy); the full-space
        reference; and the start-step experiment (:func:`sweep_variables`).
    Implements docs/science.md, section "Degrees of freedom".
    """
    everything = xr.merge(list(start), combine_attrs="drop_conflicts", join="outer", compat="no_conflicts")
    ds = _main_results(everything, lottery, main_steps, subspaces)
    ds = ds.assign_coords(compression=("d", dim / ds["d"].values.astype(np.float64)))
    ds["compression"].attrs.update(long_name="compression ratio D / d", units="1")
    ds["offset_step"] = ("subspace", [main_steps[m] for m in ds["subspace"].values])
    ds["offset_step"].attrs.update(long_name="checkpoint step of each subspace's offset (t, r or 0)", units="steps")
    full, best_lr = best_full_space(full)
    for name in RESULT_FIELDS:
        ds[f"full_{name}"] = full[name].rename(run="full_run")
        ds[f"full_{name}"].attrs.update(full[name].attrs,
                                        long_name="full-space reference: " + full[name].attrs["long_name"])
    splits = xr.DataArray(["train", "test"], dims="split", name="split")
    accuracy = xr.concat([running_max(ds[SUCCESS_FIELD[success].format(split=s)]) for s in ("train", "test")],
                         dim=splits)
    ds["success_probability"] = success_probability(accuracy, levels).transpose("subspace", "split", "level", "d")
    ds["success_probability"].attrs.update(
        units="1", long_name=f"fraction of runs whose {success} accuracy (running max over smaller d) reaches the "
                             "level")
    ds["threshold_dimension"] = threshold_dimension(ds["success_probability"], delta)
    ds["threshold_dimension"].attrs.update(
        units="1", long_name=f"d*: smallest d with success probability >= 1 - delta (delta = {delta}); NaN if none")
    if sweep_levels and any(s in everything["subspace"].values for s in START_STEP_SUBSPACES):
        sweep = sweep_variables(everything, sweep_levels, delta, success)
        # the sweep's subspaces are a subset: their own dimension, on the same d grid and runs
        ds = xr.merge([ds, sweep.rename(subspace="sweep_subspace")], combine_attrs="override", join="outer",
                      compat="no_conflicts")
    ds.attrs.update(D=dim, delta=delta, full_lr=best_lr, success=success,
                    subspaces=", ".join(f"{m}: {LABELS[m]}" for m in ds["subspace"].values))
    return ds
