"""Stores of the degrees-of-freedom jobs built by hand (as start_job, lottery_job and full_space_runs
write them), for the tests of the aggregate and the figures."""

import numpy as np
import xarray as xr

from hessmask import dof as S


def start_store(step, run, values, offset, subspaces=("burn_in", "hessian_topd", "mask_topd"), dims=(10, 100),
                 refined=None):
    """A (t, run) job's store as start_job writes it: ``values[subspace][d]`` the accuracy of every field."""
    results = {}
    for s in subspaces:
        for d in dims:
            v = values[s][d]
            results[(s, d)] = S.SubspaceResult(0.1, v, 0.2, v - 0.01, v, v - 0.01, offset, offset - 0.01, np.zeros(3))
    ds = xr.combine_by_coords([S.results_dataset([results[(s, d)]], [run],
                                                 {"subspace": [s], "start_step": [step], "d": [d]})
                               for s in subspaces for d in dims])
    refined = refined or {}
    width = max([len(v) for v in refined.values()] + [1])
    rd = np.full((len(subspaces), 1, 1, width), np.nan)
    ra = np.full_like(rd, np.nan)
    for i, s in enumerate(subspaces):
        for j, (d, a) in enumerate(refined.get(s, [])):
            rd[i, 0, 0, j], ra[i, 0, 0, j] = d, a
    dims4 = ("subspace", "start_step", "run", "refined")
    ds["refined_d"] = (dims4, rd)
    for name in ("train_accuracy", "best_train_accuracy", "test_accuracy", "best_test_accuracy"):
        ds[f"refined_{name}"] = (dims4, ra)
    ds = ds.assign_coords(refined=np.arange(width))
    ds["offset_train_accuracy_of_run"] = (("start_step", "run"), [[offset]])
    ds["offset_test_accuracy_of_run"] = (("start_step", "run"), [[offset - 0.01]])
    return ds


def full_store(accuracies=(0.97,), lrs=(0.05,)):
    parts = [S.results_dataset([S.SubspaceResult(0.05, a, 0.1, a - 0.02, a, a - 0.02, 0.1, 0.1, np.zeros(3))],
                               [0], {}) for a in accuracies]
    return xr.concat(parts, dim=xr.DataArray(list(lrs), dims="lr", name="lr"))


def lottery_store(subspace, runs, values, dims=(10, 100)):
    parts = [xr.combine_by_coords([S.results_dataset([S.SubspaceResult(0.1, values[d], 0.2, values[d], values[d],
                                                                        values[d], 0.1, 0.1, np.zeros(3))], [r],
                                                      {"subspace": [subspace], "start_step": [0], "d": [d]})
                                   for d in dims]) for r in runs]
    return xr.concat(parts, dim="run")
