"""The degrees-of-freedom jobs: one (start step t, run r) of the start-step experiment, one lottery
subspace over every run, the full-space reference; each returns the Dataset its job writes.

A (t, r) job starts from the run's own w_t. It solves the Hessian there (``dof.hessian``: block
Krylov or exact, k = the largest d) for hessian_topd, builds the run's random basis for burn_in and
the magnitude order of w_t for mask_topd (``masks.ties``, ``masks.exclude``), and trains every
(subspace, d) of the d grid in one vectorized pass on the run's data order: the subspaces are
paired (same w_t, same batches). Then, for ``dof.refine_rounds`` rounds, it bisects d* at each
``dof.sweep_levels`` level: the geometric midpoint of each (subspace, level) bracket, all in one
pass per round (:mod:`hessmask.dof.refine`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr
from torch import nn

from hessmask.dof.bases import Family, MaskRule, Sources, families, run_seeds
from hessmask.dof.refine import next_dims
from hessmask.dof.training import (
    SubspaceResult,
    SubspaceSettings,
    check_trained,
    results_dataset,
    train_full_space,
    train_subspaces,
)
from hessmask.training import Data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HessianSettings:
    """The Hessian solve of hessian_topd (config ``dof.hessian``) and its operator's settings (the
    experiment's ``eigen`` section: curvature, dtype, product blocks).

    Args:
        method: ``block_krylov`` (randomized block Krylov, ``budget`` products in ``passes`` blocks)
            or ``exact`` (the dense float64 eigendecomposition; D up to ~1e4).
        split: the Hessian subset (train or test).
        samples: its examples (the experiment's ``hessian.<split>_samples``).
        budget, passes, seed: block Krylov's; budget None: 2 k.
        curvature, dtype, block_size, data_chunk, device: the operator's.
    """

    method: str
    split: str
    samples: int
    budget: int | None
    passes: int
    seed: int
    curvature: str = "hessian"
    dtype: str = "float32"
    block_size: int = 256
    data_chunk: int | None = None
    device: str = "cpu"

    @classmethod
    def from_config(cls, dof: Mapping[str, Any], exp: Mapping[str, Any]) -> "HessianSettings":
        hessian, eigen = dof["hessian"], exp["eigen"]
        samples = exp["hessian"][f"{hessian['split']}_samples"]
        return cls(method=hessian["method"], split=hessian["split"], samples=samples, budget=hessian["budget"],
                   passes=hessian["passes"], seed=hessian["seed"],
                   curvature=eigen["curvature"], dtype=eigen["dtype"], block_size=eigen["block_size"],
                   data_chunk=eigen["data_chunk"], device=dof["device"])


@dataclass
class HessianBasis:
    """The top-k eigenpairs of the Hessian at a run's w_t and what says how well they are solved:
    relative residuals ||H u - lambda u|| / |lambda_1| of every pair, and, where an exact solve of
    the same Hessian exists, the overlap of the top-d eigenspace with the exact one."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    products: int


def solve_hessian(model: nn.Module, data: Data, settings: HessianSettings, k: int, step: int) -> HessianBasis:
    """The top-k eigenpairs of the loss Hessian of ``model`` on the class-balanced Hessian subset of
    ``settings.split``, by ``settings.method``; with the residual of every pair (k more products)."""
    from hessmask.curvature import curvature_operator
    from hessmask.data import class_balanced_indices
    from hessmask.eigen.exact import exact
    from hessmask.eigen.krylov import block_krylov

    idx = class_balanced_indices(data.labels(settings.split), settings.samples, data.num_classes)
    x, y = data.batch(settings.split, idx)
    operator = curvature_operator(model, x, y, settings.curvature, settings.dtype, settings.device,
                                  settings.block_size, settings.data_chunk)
    if settings.method == "exact":
        result = exact(operator, k, block=settings.block_size, residual_pairs=k)
    elif settings.method == "block_krylov":
        budget = settings.budget or 2 * k
        result = block_krylov(operator, k, budget, block_size=max(1, budget // settings.passes),
                              seed=settings.seed + step, residual_pairs=k)
    else:
        raise ValueError(f"dof.hessian.method must be block_krylov or exact, got {settings.method!r}")
    residuals = np.asarray(result.residuals, dtype=np.float64) / abs(float(result.eigenvalues[0]))
    log.info("%s Hessian at step %d: %d pairs, %d products, largest relative residual %.2e", settings.method, step, k,
             result.products, float(residuals.max()))
    return HessianBasis(result.eigenvalues, result.eigenvectors.astype(np.float32), residuals, result.products)


def eigenspace_accuracy(reference: np.ndarray, estimate: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    """(1/d)||U_ref[:, :d]^T U[:, :d]||_F^2 at each d (orthonormal columns): 1 = the same top-d eigenspace."""
    gram = np.asarray(reference, dtype=np.float64).T @ np.asarray(estimate, dtype=np.float64)
    return np.array([float(np.sum(gram[:d, :d] ** 2) / d) if d <= min(gram.shape) else np.nan for d in dims])


def _accuracy_of(result: SubspaceResult, success: str) -> float:
    """The train accuracy the success rule reads (``dof.success``: best or final)."""
    return result.best_train_accuracy if success == "best" else result.train_accuracy


def _dataset(trained: Mapping[tuple[str, int], SubspaceResult], subspaces: Sequence[str], dims: Sequence[int],
             coords: Mapping[str, list], run: int) -> xr.Dataset:
    """The results of (subspace, d) on the grid ``dims`` as one Dataset with dims (subspace, *coords, d, run)."""
    parts = [results_dataset([trained[(s, d)]], [run], {"subspace": [s], **coords, "d": [d]})
             for s in subspaces for d in dims]
    return xr.combine_by_coords(parts, combine_attrs="drop_conflicts")


@dataclass(frozen=True)
class StartJob:
    """One (t, run) job of the start-step experiment.

    Args:
        step, run: t and r.
        subspaces: the start-step subspaces it trains (:func:`hessmask.dof.methods.start_subspaces`).
        dims: the d grid.
        levels: the train-accuracy levels whose d* it bisects (``dof.sweep_levels``).
        rounds: bisection rounds (``dof.refine_rounds``; 0: the grid only).
        success: the accuracy the levels are read on (``dof.success``: best or final).
        seed: ``dof.seed`` (the run's data order and random basis).
    """

    step: int
    run: int
    subspaces: Sequence[str]
    dims: Sequence[int]
    levels: Sequence[float]
    rounds: int
    success: str
    seed: int


def start_job(job: StartJob, model: nn.Module, start: np.ndarray, data: Data, settings: SubspaceSettings,
              hessian: Callable[[], HessianBasis] | None, rule: MaskRule = MaskRule(),
              exact_vectors: np.ndarray | None = None) -> xr.Dataset:
    """The store of one (t, run) job.

    Args:
        job: what to train.
        model: the network at the run's w_t (architecture and buffers; not changed).
        start: the run's w_t, float32 (D,).
        data: the experiment's data.
        settings: Adam in the subspaces.
        hessian: solves the Hessian at w_t (needed for hessian_topd; called once).
        rule: how the magnitude masks are chosen (the experiment's ``masks`` section).
        exact_vectors: the exact eigenvectors of the same Hessian where the experiment solved it
            (run 0 at an exact step): the solved eigenspace is measured against them.
    Returns:
        Dataset: on the grid, dims (subspace, start_step, d, run) [+ adam_step]: every result field
        (``hessmask.dof.training.RESULT_ATTRS``); the bisection's trainings ``refined_d`` and their
        ``refined_*`` accuracies (subspace, start_step, run, refined); the offset's accuracy
        (start_step, run); for hessian_topd the solved eigenvalues, residuals and, with
        ``exact_vectors``, ``hessian_eigenspace_accuracy`` (start_step, run, d).
    Implements docs/science.md, section "Degrees of freedom" (the start-step experiment).
    """
    dims = [int(d) for d in job.dims]
    sources = Sources(start=np.asarray(start, dtype=np.float32))
    solved = None
    if "hessian_topd" in job.subspaces:
        if hessian is None:
            raise ValueError("hessian_topd needs a Hessian solve")
        solved = hessian()
        sources.eigenvectors = solved.eigenvectors
    fams = families(list(job.subspaces), max(dims), job.run, sources, job.seed, rule)
    data_seed, _ = run_seeds(job.seed, job.run)
    label = f"t={job.step} run={job.run}"
    trained: dict[tuple[str, int], SubspaceResult] = {}

    def train(items: list[tuple[Family, int]], what: str) -> None:
        results = train_subspaces(model, items, data, settings, data_seed, label=f"{label} {what}")
        check_trained(results, f"{label} {what}")
        for (family, d), result in zip(items, results):
            trained[(family.subspace, d)] = result
            log.info("%s %s d=%d: train acc %.4f (best %.4f), test acc %.4f", label, family.subspace, d,
                     result.train_accuracy, result.best_train_accuracy, result.test_accuracy)

    train([(f, d) for f in fams for d in dims], "grid")
    offset = next(iter(trained.values()))
    offset_accuracy = offset.offset_train_accuracy
    refined: dict[str, list[int]] = {f.subspace: [] for f in fams}
    for round_ in range(job.rounds):
        wanted = []
        for family in fams:
            evaluated = {d: _accuracy_of(r, job.success) for (s, d), r in trained.items() if s == family.subspace}
            for d in next_dims(evaluated, offset_accuracy, job.levels):
                wanted.append((family, d))
                refined[family.subspace].append(d)
        if not wanted:
            break
        train(wanted, f"bisection round {round_ + 1}")
    ds = _dataset(trained, list(job.subspaces), dims, {"start_step": [job.step]}, job.run)
    width = max([len(v) for v in refined.values()] + [0])
    refined_d = np.full((len(job.subspaces), 1, 1, width), np.nan)
    refined_values = {name: np.full_like(refined_d, np.nan) for name in
                      ("train_accuracy", "best_train_accuracy", "test_accuracy", "best_test_accuracy")}
    for i, subspace in enumerate(job.subspaces):
        for j, d in enumerate(refined[subspace]):
            refined_d[i, 0, 0, j] = d
            for name in refined_values:
                refined_values[name][i, 0, 0, j] = getattr(trained[(subspace, d)], name)
    dims4 = ("subspace", "start_step", "run", "refined")
    ds["refined_d"] = (dims4, refined_d)
    ds["refined_d"].attrs.update(units="1", long_name="d of each bisection training (NaN: none)")
    for name, values in refined_values.items():
        ds[f"refined_{name}"] = (dims4, values)
        ds[f"refined_{name}"].attrs.update(units="1", long_name=f"{name.replace('_', ' ')} of the bisection training")
    ds = ds.assign_coords(refined=np.arange(width))
    ds["offset_train_accuracy_of_run"] = (("start_step", "run"), [[offset.offset_train_accuracy]])
    ds["offset_test_accuracy_of_run"] = (("start_step", "run"), [[offset.offset_test_accuracy]])
    for split in ("train", "test"):
        ds[f"offset_{split}_accuracy_of_run"].attrs.update(units="1", long_name=f"{split} accuracy of the run's w_t")
    if solved is not None:
        pairs = np.arange(solved.eigenvalues.size)
        ds = ds.assign_coords(eigenpair=pairs)
        ds["hessian_eigenvalues"] = (("start_step", "run", "eigenpair"), solved.eigenvalues[None, None])
        ds["hessian_residual"] = (("start_step", "run", "eigenpair"), solved.residuals[None, None])
        ds["hessian_products"] = (("start_step", "run"), [[solved.products]])
        accuracy = (eigenspace_accuracy(exact_vectors, solved.eigenvectors, dims) if exact_vectors is not None
                    else np.full(len(dims), np.nan))
        ds["hessian_eigenspace_accuracy"] = (("start_step", "run", "d"), accuracy[None, None])
        ds["hessian_eigenvalues"].attrs.update(units="nats / parameter^2", long_name="the solved Hessian eigenvalues")
        ds["hessian_residual"].attrs.update(units="1", long_name="||H u - lambda u|| / |lambda_1| of each solved pair")
        ds["hessian_products"].attrs.update(units="1", long_name="Hessian-vector products of the solve")
        ds["hessian_eigenspace_accuracy"].attrs.update(
            units="1", long_name="overlap of the solved top-d eigenspace with the exact one (NaN: no exact solve)")
    return ds


def lottery_job(subspace: str, runs: Sequence[int], dims: Sequence[int], model: nn.Module, sources: Sources, data: Data,
                settings: SubspaceSettings, seed: int, rewind_step: int, rule: MaskRule = MaskRule()) -> xr.Dataset:
    """Every run of one lottery subspace (lottery_subspace or lottery_ticket) at every d: run r with
    its own data order, all d in one vectorized pass. Dims (subspace, start_step, d, run)."""
    dims = [int(d) for d in dims]
    parts = []
    for run in runs:
        (family,) = families([subspace], max(dims), run, sources, seed, rule)
        data_seed, _ = run_seeds(seed, run)
        results = train_subspaces(model, [(family, d) for d in dims], data, settings, data_seed,
                                  label=f"{subspace} run={run}")
        check_trained(results, f"{subspace} run={run}")
        for d, result in zip(dims, results):
            log.info("%s d=%d run %d: train acc %.4f (best %.4f), test acc %.4f", subspace, d, run,
                     result.train_accuracy, result.best_train_accuracy, result.test_accuracy)
        parts.append(_dataset({(subspace, d): r for d, r in zip(dims, results)}, [subspace], dims,
                              {"start_step": [rewind_step]}, run))
    return xr.concat(parts, dim="run")


def full_space_runs(starts: Mapping[int, tuple[nn.Module, np.ndarray]], data: Data, settings: SubspaceSettings,
                    seed: int) -> xr.Dataset:
    """The full-space reference: Adam on all D parameters from each run's w_0 with the run's data
    order (the random affine subspaces' offsets and batches). ``starts``: run -> (model, w_0).
    Dims (run[, adam_step])."""
    results, runs = [], sorted(starts)
    for run in runs:
        model, start = starts[run]
        data_seed, _ = run_seeds(seed, run)
        results.append(train_full_space(model, start, data, settings, data_seed,
                                        label=f"full space lr={settings.lr} run={run}", progress=None))
        log.info("full space lr %g run %d: train acc %.4f (best %.4f), test acc %.4f", settings.lr, run,
                 results[-1].train_accuracy, results[-1].best_train_accuracy, results[-1].test_accuracy)
    check_trained(results, "full space")
    return results_dataset(results, runs, {})


def combine_runs(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """The (t, run) stores of one job joined along ``run`` (the bisection's ``refined`` trainings
    padded with NaN to the longest)."""
    return xr.concat(list(parts), dim="run", join="outer", data_vars="minimal", coords="minimal",
                     compat="override", combine_attrs="drop_conflicts")
