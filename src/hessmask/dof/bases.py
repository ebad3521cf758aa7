"""The subspaces of the degrees-of-freedom study: bases A (implicit D x d matrices) and offsets w_t.

:func:`build_subspace` gives the (offset, basis) of each subspace kind at dimension d for one run,
from the ``Sources`` a job reads (w_t, w_0, w_r, w_T, the trajectory's directions, the Hessian's
eigenvectors). Dense bases (random, trajectory, eigenvectors) hold their columns; coordinate bases
(masks, tickets) hold indices and never build a matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch

from hessmask.dof.methods import SUBSPACES, check_size
from hessmask.masks import magnitude_mask
from hessmask.seeds import step_seed
from hessmask.training import Data, TrainSettings, train_segment

log = logging.getLogger(__name__)


class Basis:
    """A D x d matrix A given implicitly by ``expand(theta) = A theta`` (differentiable)."""

    dim: int
    size: int

    def expand(self, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to(self, device: str | torch.device) -> "Basis":
        raise NotImplementedError

    def matrix(self) -> torch.Tensor:
        """A as a dense (D, d) tensor (for tests and small problems)."""
        eye = torch.eye(self.size, dtype=torch.float32)
        return torch.stack([self.expand(eye[j]) for j in range(self.size)], dim=1)


@dataclass
class DenseBasis(Basis):
    """Explicit columns (D, d): random, trajectory or eigenvector bases."""

    columns: torch.Tensor

    def __post_init__(self) -> None:
        if self.columns.ndim != 2:
            raise ValueError(f"basis columns must be a (D, d) matrix, got shape {tuple(self.columns.shape)}")
        self.dim, self.size = map(int, self.columns.shape)

    def expand(self, theta: torch.Tensor) -> torch.Tensor:
        if self.columns.device.type == "cpu" and self.columns.dtype == theta.dtype == torch.float32:
            return _HostMatVec.apply(self.columns, theta)
        return self.columns @ theta

    def to(self, device: str | torch.device) -> "DenseBasis":
        return DenseBasis(self.columns.to(device))


class _HostMatVec(torch.autograd.Function):
    """A theta and its gradient A^T g through numpy's BLAS on the CPU.

    The dense bases' two matrix-vector products per Adam step read all of A (28 MB at D = 7030,
    d = 1000) and are most of a subspace step at large d. torch's CPU build calls MKL, whose
    single-precision gemv runs 2.5-4x slower than numpy's OpenBLAS on the AMD EPYC cores this
    was measured on (0.39 ms against 1.0-1.5 ms per product with one thread, A in cache); a
    default-study job of 40 trainings (hessian_topd, every d, 5 runs) took 12.5 s with this and
    ``parameters_as_views`` against 16.7 s without (one core, nothing else running).
    Results agree with torch's to float32 rounding and, for a given number of BLAS threads, are
    the same bits every time; call it inside ``threadpool_limits`` of the job's threads.
    """

    @staticmethod
    def forward(ctx: Any, columns: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(columns)
        return torch.from_numpy(columns.numpy() @ theta.detach().numpy())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (columns,) = ctx.saved_tensors
        return None, torch.from_numpy(columns.numpy().T @ grad.contiguous().numpy())


@dataclass
class CoordinateBasis(Basis):
    """Columns e_i for i in ``indices``: training a subset of the parameters (masks, tickets)."""

    indices: torch.Tensor
    dim: int

    def __post_init__(self) -> None:
        self.indices = torch.as_tensor(self.indices, dtype=torch.long)
        self.size = int(self.indices.numel())
        if self.size and (int(self.indices.min()) < 0 or int(self.indices.max()) >= self.dim):
            raise ValueError(f"coordinate indices must lie in [0, {self.dim})")
        if torch.unique(self.indices).numel() != self.size:
            raise ValueError("coordinate indices must be distinct")

    def expand(self, theta: torch.Tensor) -> torch.Tensor:
        return theta.new_zeros(self.dim).index_add(0, self.indices, theta)

    def to(self, device: str | torch.device) -> "CoordinateBasis":
        return CoordinateBasis(self.indices.to(device), self.dim)


def gaussian_basis(dim: int, d: int, seed: int) -> DenseBasis:
    """i.i.d. N(0, 1) columns normalized to unit length (seed 004, Appendix A.4).

    Column j is the j-th row of one seeded stream, so bases of the same seed are nested in d.
    """
    check_size(dim, d)
    rows = np.random.default_rng(seed).standard_normal((d, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows.astype(np.float64), axis=1, keepdims=True).astype(np.float32)
    return DenseBasis(torch.from_numpy(np.ascontiguousarray(rows.T)))


def trajectory_components(directions: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``count`` principal directions of a trajectory's steps (rows of ``directions``).

    Returns (components (D, count) with orthonormal columns, all singular values, descending).
    Each component's sign makes its largest-magnitude entry positive (a deterministic choice).
    """
    x = np.asarray(directions, dtype=np.float64)
    steps, dim = x.shape
    check_size(min(steps, dim), count, "components")
    _, singular, vh = np.linalg.svd(x, full_matrices=False)
    comps = vh[:count].T
    signs = np.sign(comps[np.argmax(np.abs(comps), axis=0), np.arange(count)])
    return comps * np.where(signs == 0, 1.0, signs), singular


def eigenvector_basis(eigenvectors: np.ndarray, d: int) -> DenseBasis:
    """The first d columns of an eigen store's ``eigenvectors`` (ordered by descending |lambda|)."""
    vectors = np.asarray(eigenvectors)
    check_size(vectors.shape[1], d, "d (solved eigenvectors)")
    return DenseBasis(torch.from_numpy(np.ascontiguousarray(vectors[:, :d], dtype=np.float32)))


def mask_basis(theta: np.ndarray, d: int) -> CoordinateBasis:
    """The coordinates of the d largest |theta_i|."""
    return CoordinateBasis(torch.from_numpy(magnitude_mask(theta, d)), int(np.asarray(theta).size))


@dataclass
class Sources:
    """What the subspaces are built from (all float32 of length D unless noted)."""

    start: np.ndarray  # w_t: burn-in, hessian_topd and mask_topd offset
    init: np.ndarray  # w_0: random_affine offset
    rewind: np.ndarray  # w_r: lottery offsets
    final: np.ndarray | None = None  # w_T: lottery_ticket mask
    trajectory: np.ndarray | None = None  # (D, m) principal directions of the trajectory
    eigenvectors: np.ndarray | None = None  # (D, k) Hessian eigenvectors at step t


def run_seeds(seed: int, run: int) -> tuple[int, int]:
    """(data-order seed, basis seed) of run ``run``: shared by every subspace and dimension."""
    return step_seed(seed, run, 3), step_seed(seed, run, 4)


def run_init_seed(seed: int, run: int) -> int:
    """Seed of run ``run``'s own initialization and burn-in data order (``dof.init: per_run``)."""
    return step_seed(seed, run, 5)


def run_initialization(run: int, seed: int, model_name: str, num_classes: int, train: TrainSettings,
                       data: Data, step: int) -> np.ndarray:
    """w_t of one run under ``dof.init: per_run``: a fresh w_0, then ``step`` SGD steps.

    Args:
        run: the run index r.
        seed: ``dof.seed``; w_0 and the burn-in batches are drawn from ``run_init_seed(seed, run)``.
        model_name, num_classes: the experiment's network.
        train: the experiment's SGD settings (learning rate, batch size, ...); only its seed is replaced.
        data: the experiment's data.
        step: t, the burn-in steps (0: w_0 itself).
    Returns:
        float32 (D,) parameter vector.
    Implements docs/science.md, section "Degrees of freedom" (burn-in affine subspaces, seed 004 section 2).
    """
    from dataclasses import replace

    from hessmask.training import initial_checkpoint

    settings = replace(train, seed=run_init_seed(seed, run))
    checkpoint = initial_checkpoint(model_name, num_classes, settings)
    if step:
        checkpoint, _ = train_segment(checkpoint, data, step, settings, progress=False)
    return checkpoint.parameters()


def run_initializer(dof: Mapping[str, Any], exp: Mapping[str, Any], train: Mapping[str, Any], data: Data,
                    step: int) -> Callable[[int], np.ndarray]:
    """run -> :func:`run_initialization` of that run with the experiment's network and SGD settings
    (``experiments.<name>``, its ``train`` section) and ``dof.seed``: the offsets of ``dof.init: per_run``."""
    from functools import partial

    from hessmask.config import experiment_classes

    return partial(run_initialization, seed=dof["seed"], model_name=exp["model"], num_classes=experiment_classes(exp),
                   train=TrainSettings.from_config(train), data=data, step=step)


def build_subspace(subspace: str, d: int, run: int, sources: Sources, seed: int) -> tuple[np.ndarray, Basis]:
    """(offset, basis) of one subspace at training dimension d for run ``run``."""
    dim = sources.start.size
    check_size(dim, d)
    _, basis_seed = run_seeds(seed, run)
    if subspace == "random_affine":
        return sources.init, gaussian_basis(dim, d, basis_seed)
    if subspace == "burn_in":
        return sources.start, gaussian_basis(dim, d, basis_seed)
    if subspace == "lottery_subspace":
        if sources.trajectory is None or sources.trajectory.shape[1] < d:
            have = 0 if sources.trajectory is None else sources.trajectory.shape[1]
            raise ValueError(f"lottery_subspace at d = {d} needs {d} trajectory directions, have {have}")
        return sources.rewind, DenseBasis(
            torch.from_numpy(np.ascontiguousarray(sources.trajectory[:, :d], dtype=np.float32)))
    if subspace == "lottery_ticket":
        if sources.final is None:
            raise ValueError("lottery_ticket needs the parameters after full training")
        basis = mask_basis(sources.final, d)
        offset = np.zeros_like(sources.rewind)
        keep = basis.indices.numpy()
        offset[keep] = sources.rewind[keep]
        return offset, basis
    if subspace == "hessian_topd":
        if sources.eigenvectors is None:
            raise ValueError("hessian_topd needs the Hessian eigenvectors at the start step")
        return sources.start, eigenvector_basis(sources.eigenvectors, d)
    if subspace == "mask_topd":
        return sources.start, mask_basis(sources.start, d)
    raise ValueError(f"unknown subspace {subspace!r} (known: {', '.join(SUBSPACES)})")
