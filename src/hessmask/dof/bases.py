"""The subspaces of the degrees-of-freedom study: bases A (implicit D x d matrices) and offsets w_t.

:func:`families` gives each subspace kind of one run as a nested :class:`Family` (offset, basis
up to the largest d), from the ``Sources`` a job reads (w_t, w_r, the lottery ticket's magnitudes,
the trajectory's directions, the Hessian's eigenvectors). Dense bases (random, trajectory,
eigenvectors) hold their columns; coordinate bases (masks, tickets) hold indices, by descending
magnitude, and never build a matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hessmask.dof.methods import SUBSPACES, check_size
from hessmask.masks import magnitude_mask, magnitude_order
from hessmask.seeds import step_seed
from hessmask.training import Data, TrainSettings, train_segment

if TYPE_CHECKING:
    from hessmask.training import Checkpoint

log = logging.getLogger(__name__)


class Basis:
    """A D x d matrix A given implicitly by ``expand(theta) = A theta`` (differentiable)."""

    dim: int
    size: int

    def expand(self, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to(self, device: str | torch.device) -> "Basis":
        raise NotImplementedError

    def prefix(self, d: int) -> "Basis":
        """The basis of the first d columns (the nested subspace of dimension d)."""
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

    def prefix(self, d: int) -> "DenseBasis":
        check_size(self.size, d, "d (basis columns)")
        return self if d == self.size else DenseBasis(self.columns[:, :d].contiguous())


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

    def prefix(self, d: int) -> "CoordinateBasis":
        check_size(self.size, d, "d (basis coordinates)")
        return self if d == self.size else CoordinateBasis(self.indices[:d], self.dim)


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


@dataclass(frozen=True)
class MaskRule:
    """How a magnitude mask is chosen (the experiment's ``masks`` section): the tie rule and its
    seed, and the (D,) boolean of parameters no mask may hold (``masks.exclude``; None: none)."""

    ties: str = "lowest_index"
    seed: int = 0
    excluded: np.ndarray | None = None


def mask_basis(theta: np.ndarray, d: int, rule: MaskRule = MaskRule()) -> CoordinateBasis:
    """The coordinates of the d largest |theta_i| by descending magnitude (so that the first d' < d
    are the mask at d'), ties and exclusions as ``rule`` says (``hessmask.masks.magnitude_order``)."""
    theta = np.asarray(theta).ravel()
    magnitude_mask(theta, d, rule.ties, rule.seed, rule.excluded)  # the size check, naming the eligible count
    order = magnitude_order(theta, rule.ties, rule.seed, rule.excluded)[:d]
    return CoordinateBasis(torch.from_numpy(np.ascontiguousarray(order)), int(theta.size))


@dataclass(frozen=True)
class Family:
    """Nested subspaces of one kind at one offset: the subspace of dimension d is the offset plus the
    span of the first d columns of ``basis`` (random and trajectory columns are nested by
    construction, eigenvectors by |lambda|, mask coordinates by descending magnitude).

    ``pruned``: the lottery ticket, whose offset at d keeps only its first d coordinates (the others
    are pruned to 0)."""

    subspace: str
    offset: np.ndarray = field(repr=False)
    basis: Basis = field(repr=False)
    pruned: bool = False

    def offset_at(self, d: int) -> np.ndarray:
        if not self.pruned:
            return self.offset
        keep = self.basis.prefix(d).indices.cpu().numpy()
        offset = np.zeros_like(self.offset)
        offset[keep] = self.offset[keep]
        return offset


@dataclass
class Sources:
    """What the subspaces of one run are built from (float32 (D,) vectors unless noted)."""

    start: np.ndarray  # w_t of the run: the offset of burn_in, hessian_topd, mask_topd (random_affine at t = 0)
    rewind: np.ndarray | None = None  # w_r: the lottery offsets
    final: np.ndarray | None = None  # the checkpoint whose magnitudes choose the lottery ticket
    trajectory: np.ndarray | None = None  # (D, m) principal directions of the trajectory
    eigenvectors: np.ndarray | None = None  # (D, k) Hessian eigenvectors at w_t, by descending |lambda|


def run_seeds(seed: int, run: int) -> tuple[int, int]:
    """(data-order seed, basis seed) of run ``run``: shared by every subspace and dimension."""
    return step_seed(seed, run, 3), step_seed(seed, run, 4)


def run_init_seed(seed: int, run: int) -> int:
    """Seed of run ``run``'s own initialization and SGD data order (runs >= 1; run 0 is the experiment's)."""
    return step_seed(seed, run, 5)


def run_checkpoints(run: int, seed: int, model_name: str, num_classes: int, train: TrainSettings, data: Data,
                    steps: list[int]) -> dict[int, "Checkpoint"]:
    """The checkpoints of run ``run``'s own training at each of ``steps``: a fresh w_0 and the
    experiment's SGD (learning rate, batch size, ...) with its seed replaced by
    ``run_init_seed(seed, run)`` (initialization and data order), trained segment by segment
    (bitwise one uninterrupted training).

    Implements docs/science.md, section "Degrees of freedom" (each run its own initialization and
    trajectory, seed 004 section 2: the success probability is over the subspace and w_0).
    """
    from dataclasses import replace

    from hessmask.training import initial_checkpoint

    settings = replace(train, seed=run_init_seed(seed, run))
    checkpoint = initial_checkpoint(model_name, num_classes, settings)
    found = {}
    for step in sorted(steps):
        if step > checkpoint.step:
            checkpoint, _ = train_segment(checkpoint, data, step, settings, progress=False)
        found[step] = checkpoint
    return found


def families(subspaces: list[str], d_max: int, run: int, sources: Sources, seed: int,
             rule: MaskRule = MaskRule()) -> list[Family]:
    """The nested families of run ``run`` up to dimension ``d_max``: one per subspace kind, with the
    run's Gaussian basis (the same for random_affine and burn_in), data order and masks by ``rule``."""
    dim = sources.start.size
    check_size(dim, d_max)
    _, basis_seed = run_seeds(seed, run)
    out = []
    for subspace in subspaces:
        if subspace in ("random_affine", "burn_in"):
            out.append(Family(subspace, sources.start, gaussian_basis(dim, d_max, basis_seed)))
        elif subspace == "lottery_subspace":
            have = 0 if sources.trajectory is None else sources.trajectory.shape[1]
            if have < d_max:
                raise ValueError(f"lottery_subspace at d = {d_max} needs {d_max} trajectory directions, have {have}")
            columns = np.ascontiguousarray(sources.trajectory[:, :d_max], dtype=np.float32)
            out.append(Family(subspace, sources.rewind, DenseBasis(torch.from_numpy(columns))))
        elif subspace == "lottery_ticket":
            if sources.final is None or sources.rewind is None:
                raise ValueError("lottery_ticket needs the rewind point and the parameters whose magnitudes choose it")
            out.append(Family(subspace, sources.rewind, mask_basis(sources.final, d_max, rule), pruned=True))
        elif subspace == "hessian_topd":
            if sources.eigenvectors is None:
                raise ValueError("hessian_topd needs the Hessian eigenvectors at the start step")
            out.append(Family(subspace, sources.start, eigenvector_basis(sources.eigenvectors, d_max)))
        elif subspace == "mask_topd":
            out.append(Family(subspace, sources.start, mask_basis(sources.start, d_max, rule)))
        else:
            raise ValueError(f"unknown subspace {subspace!r} (known: {', '.join(SUBSPACES)})")
    return out
