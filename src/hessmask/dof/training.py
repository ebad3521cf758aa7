"""Training in a subspace: Adam on theta for w = w_t + A theta (and the same Adam in the full space),
the trajectory replay of the lottery subspaces, and the workflow's jobs (:func:`run_chunk`,
:func:`full_space_runs`), each returning the Dataset its job writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch import nn

from hessmask.dof.bases import Basis, Sources, build_subspace, run_seeds
from hessmask.models import unflattener
from hessmask.progress import track
from hessmask.seeds import step_seed
from hessmask.training import (
    Checkpoint,
    Data,
    TrainingDiverged,
    TrainSettings,
    batch_indices,
    evaluate,
    seed_step_draws,
    train_segment,
)

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubspaceSettings:
    """Adam in the subspace (config ``experiments.<name>.dof``)."""

    steps: int
    batch_size: int
    lr: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-7
    eval_batch_size: int = 1000
    device: str = "cpu"

    @classmethod
    def from_config(cls, dof: Mapping[str, Any], eval_batch_size: int = 1000) -> "SubspaceSettings":
        return cls(steps=dof["steps"], batch_size=dof["batch_size"], lr=dof["lr"],
                   eval_batch_size=eval_batch_size, device=dof["device"])

    def evaluation(self) -> TrainSettings:
        return TrainSettings(lr=self.lr, batch_size=self.batch_size, seed=0,
                             eval_batch_size=self.eval_batch_size, device=self.device)


@dataclass
class SubspaceResult:
    """Final losses and accuracies (eval mode, whole splits) and the batch-loss curve."""

    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    batch_loss: np.ndarray
    params: np.ndarray = field(repr=False)


def _finish(model: nn.Module, w: torch.Tensor, data: Data, settings: SubspaceSettings,
            losses: np.ndarray) -> SubspaceResult:
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(w.detach(), model.parameters())
    evals = {split: evaluate(model, data, split, settings.evaluation()) for split in ("train", "test")}
    return SubspaceResult(*evals["train"], *evals["test"], losses, w.detach().cpu().numpy().copy())


def _check_finite(value: float, step: int, where: str) -> None:
    if not math.isfinite(value):
        raise TrainingDiverged(f"{where} diverged: loss = {value} at step {step}; lower dof.lr")


class Adam:
    """Adam (Kingma & Ba 2015) as ``torch.optim.Adam`` computes it on the CPU (its single-tensor
    update, amsgrad off, no weight decay), bitwise, without ``torch.optim``: the first optimizer a
    process creates imports ``torch._dynamo``, 1 s of each 3-7 s subspace job.

    Args:
        params: the tensors optimized (leaves with ``requires_grad``); updated in place.
        lr, betas, eps: as in ``torch.optim.Adam``.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float], eps: float):
        self.params, self.lr, self.betas, self.eps = list(params), float(lr), tuple(map(float, betas)), float(eps)
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.steps = [0] * len(self.params)  # per tensor: one without a gradient takes no step

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, (p, (exp_avg, exp_avg_sq)) in enumerate(zip(self.params, self.moments)):
            if p.grad is None:
                continue
            self.steps[i] += 1
            bias_correction1 = 1 - beta1 ** float(self.steps[i])
            bias_correction2_sqrt = (1 - beta2 ** float(self.steps[i])) ** 0.5
            step_size = self.lr / bias_correction1
            exp_avg.lerp_(p.grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)


def _adam(loss_of: Any, params: list[torch.Tensor], data: Data, settings: SubspaceSettings, data_seed: int,
          label: str, progress: bool | None) -> np.ndarray:
    """Adam on ``params`` for ``settings.steps`` batches of the seeded data order; batch losses."""
    device = torch.device(settings.device)
    optimizer = Adam(params, lr=settings.lr, betas=settings.betas, eps=settings.eps)
    n = data.size("train")
    losses = np.empty(settings.steps)
    for step in track(range(settings.steps), label, "Adam steps", progress):
        x, y = data.batch("train", batch_indices(step, n, settings.batch_size, data_seed))
        seed_step_draws(step_seed(data_seed, step, 1), device)  # dropout draws of this step
        loss = loss_of(x.to(device), y.to(device))
        losses[step] = float(loss.detach())
        _check_finite(losses[step], step, label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


@contextlib.contextmanager
def parameters_as_views(model: nn.Module) -> Iterator[Callable[[torch.Tensor], None]]:
    """Inside the block, ``assign(w)`` makes the model's parameters views of the flat (D,) ``w``
    (the layout of ``parameters_to_vector``), so that ``model(x)`` is differentiable in ``w``.

    The parameters are taken out of their modules for the block and put back after it, unchanged.
    Each ``assign`` is one split and a plain attribute per parameter: the same arithmetic as
    ``torch.func.functional_call(model, unflatten(w), x)`` at a fraction of its per-call cost, which
    dominated small subspace-training steps. Tied parameters get the same view in every module.
    """
    unflatten = unflattener(model.named_parameters())
    owner = {id(p): name for name, p in model.named_parameters()}  # a tied parameter's first name
    slots = [(module, attr, param, owner[id(param)]) for module in model.modules()
             for attr, param in module._parameters.items() if param is not None]
    for module, attr, _, _ in slots:
        del module._parameters[attr]

    def assign(flat: torch.Tensor) -> None:
        views = unflatten(flat)
        for module, attr, _, name in slots:
            module.__dict__[attr] = views[name]

    try:
        yield assign
    finally:
        for module, attr, param, _ in slots:
            module.__dict__.pop(attr, None)
            module._parameters[attr] = param


def train_in_subspace(model: nn.Module, offset: np.ndarray, basis: Basis, data: Data,
                      settings: SubspaceSettings, data_seed: int, label: str = "subspace",
                      progress: bool | None = False) -> SubspaceResult:
    """Adam on theta for w = offset + A theta, theta_0 = 0; batches from ``data_seed``.

    ``model`` gives the architecture and buffers (its parameters are overwritten at the end with
    the final w, its buffers hold the running statistics of the training). Raises
    TrainingDiverged on a non-finite batch loss.
    """
    device = torch.device(settings.device)
    model = model.to(device).train()
    dim = sum(p.numel() for p in model.parameters())
    if basis.dim != dim or np.asarray(offset).size != dim:
        raise ValueError(f"basis ({basis.dim}) and offset ({np.asarray(offset).size}) must match D = {dim}")
    base = torch.tensor(np.asarray(offset, dtype=np.float32), device=device)  # a copy, never a view
    basis = basis.to(device)
    theta = torch.zeros(basis.size, device=device, requires_grad=True)
    # numpy's BLAS (the dense bases' products on the CPU) uses the job's threads, as torch does
    with parameters_as_views(model) as assign, threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):

        def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            assign(base + basis.expand(theta))
            return F.cross_entropy(model(x), y)

        losses = _adam(loss_of, [theta], data, settings, data_seed, label, progress)
        with torch.no_grad():
            w = base + basis.expand(theta)
    return _finish(model, w, data, settings, losses)


def train_full_space(model: nn.Module, offset: np.ndarray, data: Data, settings: SubspaceSettings,
                     data_seed: int, label: str = "full space", progress: bool | None = False) -> SubspaceResult:
    """The reference: the same Adam on all D parameters from ``offset`` with the same batches."""
    device = torch.device(settings.device)
    model = model.to(device).train()
    with torch.no_grad():
        # a copy: the parameters become views of this vector and Adam updates them in place
        torch.nn.utils.vector_to_parameters(torch.tensor(np.asarray(offset, dtype=np.float32), device=device),
                                            model.parameters())
    losses = _adam(lambda x, y: F.cross_entropy(model(x), y), list(model.parameters()), data, settings,
                   data_seed, label, progress)
    return _finish(model, torch.nn.utils.parameters_to_vector(model.parameters()), data, settings, losses)


def trajectory_directions(start: Checkpoint, data: Data, end_step: int, every: int = 1,
                          progress: bool | None = None) -> tuple[np.ndarray, Checkpoint]:
    """Replay the experiment's SGD from ``start`` to ``end_step`` and return its steps.

    Row i is w_{s+every} - w_s for s = start + i * every (the last step may be shorter). The
    replay is bitwise the experiment's training (segments are pure functions of the checkpoint);
    the returned checkpoint at ``end_step`` lets the caller check that.
    """
    if every < 1:
        raise ValueError(f"trajectory interval must be >= 1, got {every}")
    settings = TrainSettings.from_config(start.settings)
    marks = list(range(start.step, end_step, every)) + [end_step]
    rows, checkpoint, previous = [], start, start.parameters()
    for _, stop in track(list(zip(marks[:-1], marks[1:])), f"trajectory {start.step}->{end_step}", "segments",
                         progress):
        checkpoint, _ = train_segment(checkpoint, data, stop, settings, progress=False)
        current = checkpoint.parameters()
        rows.append(current.astype(np.float64) - previous)
        previous = current
    return np.stack(rows) if rows else np.zeros((0, previous.size)), checkpoint


def run_chunk(subspace: str, dims: int | Sequence[int], runs: Sequence[int], sources: Sources, model: nn.Module,
              data: Data, settings: SubspaceSettings, seed: int, step: int = 0,
              initialization: Callable[[int], np.ndarray] | None = None) -> "xr.Dataset":
    """One job of the workflow: ``runs`` of one (subspace, t) at each d of ``dims``.

    Each (d, run) training depends only on its own seeds, so a job over several d gives bitwise
    the runs of one job per d (``dof.dims_per_job``).

    Args:
        subspace: one of :data:`SUBSPACES`.
        dims: the training dimension d, or several (one process trains them all).
        runs: run indices; run r's data order and random basis come from ``run_seeds(seed, r)``.
        sources: what the subspaces are built from (w_t, w_r, trajectory, eigenvectors ...).
        model: the architecture and buffers (copied per run).
        data: the experiment's data.
        settings: Adam in the subspace.
        seed: ``dof.seed``.
        step: t, the offset step of this job (stored as the ``start_step`` coordinate).
        initialization: for ``dof.init: per_run``, run -> that run's own w_t (:func:`run_initialization`,
            computed once per run for all d), which replaces the shared offset; None: every run starts
            from ``sources``.
    Returns:
        Dataset with dims (subspace, start_step, d, run[, adam_step]): final losses and accuracies and
        the batch-loss curve.
    """
    import copy

    import xarray as xr

    dims = [int(dims)] if np.ndim(dims) == 0 else [int(d) for d in dims]
    results: dict[int, list[SubspaceResult]] = {d: [] for d in dims}
    for run in runs:
        if initialization is not None:
            own = initialization(run)
            sources = Sources(start=own, init=own, rewind=own)
        data_seed, _ = run_seeds(seed, run)
        for d in dims:
            offset, basis = build_subspace(subspace, d, run, sources, seed)
            result = train_in_subspace(copy.deepcopy(model), offset, basis, data, settings, data_seed,
                                       label=f"{subspace} t={step} d={d} run={run}", progress=None)
            log.info("%s t=%d d=%d run %d: train acc %.4f loss %.4f, test acc %.4f", subspace, step, d, run,
                     result.train_accuracy, result.train_loss, result.test_accuracy)
            results[d].append(result)
    return xr.concat([results_dataset(results[d], runs, {"subspace": [subspace], "start_step": [step], "d": [d]})
                      for d in dims], dim="d")


def full_space_runs(runs: Sequence[int], init: np.ndarray | Callable[[int], np.ndarray], model: nn.Module,
                    data: Data, settings: SubspaceSettings, seed: int) -> "xr.Dataset":
    """The full-space reference: Adam on all D parameters, one run per data order.

    Args:
        runs: run indices (the data order of run r is the subspace runs' order).
        init: w_0, shared (float32 (D,)), or run -> that run's w_0 (``dof.init: per_run``).
        model, data, settings, seed: as :func:`run_chunk`.
    Returns:
        Dataset with dims (run[, adam_step]).
    """
    import copy

    results = []
    for run in runs:
        data_seed, _ = run_seeds(seed, run)
        start = init(run) if callable(init) else init
        results.append(train_full_space(copy.deepcopy(model), start, data, settings, data_seed,
                                        label=f"full space lr={settings.lr} run={run}", progress=None))
        log.info("full space lr %g run %d: train acc %.4f, test acc %.4f", settings.lr, run,
                 results[-1].train_accuracy, results[-1].test_accuracy)
    return results_dataset(results, runs, {})


_RESULT_ATTRS = {
    "train_loss": ("nats", "mean cross-entropy over the train split after the last step (eval mode)"),
    "train_accuracy": ("1", "top-1 accuracy over the train split after the last step (eval mode)"),
    "test_loss": ("nats", "mean cross-entropy over the test split after the last step (eval mode)"),
    "test_accuracy": ("1", "top-1 accuracy over the test split after the last step (eval mode)"),
    "batch_loss": ("nats", "batch cross-entropy before each Adam step"),
}


def results_dataset(results: Sequence[SubspaceResult], runs: Sequence[int],
                     outer: Mapping[str, list]) -> "xr.Dataset":
    import xarray as xr

    dims = (*outer, "run")
    shape = (1,) * len(outer)
    data = {name: (dims, np.array([getattr(r, name) for r in results]).reshape(*shape, len(results)))
            for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
    curves = np.stack([r.batch_loss for r in results])
    data["batch_loss"] = ((*dims, "adam_step"), curves.reshape(*shape, *curves.shape))
    ds = xr.Dataset(data, coords={**outer, "run": list(runs), "adam_step": np.arange(curves.shape[1])})
    for name, (units, long_name) in _RESULT_ATTRS.items():
        ds[name].attrs.update(units=units, long_name=long_name)
    return ds
