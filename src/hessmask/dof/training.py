"""Training in subspaces: Adam on theta for w = w_t + A theta, many subspaces at once, and the same
Adam in the full space; the trajectory replay of the lottery subspaces.

Trainings that share a data order (one run of every subspace kind and d at one offset) see the same
batch at every step, so they run as one *vectorized pass*: the n parameter vectors w_i = o_i + A_i
theta_i form an (n, D) matrix, ``torch.func.vmap`` evaluates the network on each row, and one Adam
updates the stacked theta (Adam is elementwise, so this is n independent Adams). A nested family of
subspaces (the basis at d is the first d columns of the basis at d_max) is expanded segment by
segment: columns [a, b) are used by the trainings with d >= b, so each column of A is read once
per step, not once per training. Networks with buffers (BatchNorm) train one at a time instead,
since their running statistics are state of each training.

Each training evaluates its train and test accuracy on the whole splits at step 0 (the offset),
every ``eval_every`` Adam steps and at the end: the final accuracy, the best one over the
evaluations after step 0 (seed 004, section 2: "we use the best value achieved by Adam"), and the
offset's own accuracy are all returned.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch import nn

from hessmask.dof.bases import Basis, CoordinateBasis, DenseBasis, Family
from hessmask.dof.methods import RESULT_ATTRS, RESULT_FIELDS
from hessmask.models import unflattener
from hessmask.progress import track
from hessmask.seeds import step_seed
from hessmask.training import (
    Checkpoint,
    Data,
    TrainingDiverged,
    TrainSettings,
    batch_indices,
    seed_step_draws,
    train_segment,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubspaceSettings:
    """Adam in the subspace (config ``experiments.<name>.dof``).

    Args:
        steps, batch_size, lr, betas, eps: Adam and its batches.
        eval_batch_size: examples per evaluation batch.
        device: torch device.
        eval_every: Adam steps between evaluations of the whole splits (0: only at step 0 and the end).
        vectorize: trainings advanced together in one vectorized pass at most (1: one at a time).
    """

    steps: int
    batch_size: int
    lr: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-7
    eval_batch_size: int = 1000
    device: str = "cpu"
    eval_every: int = 0
    vectorize: int = 32

    @classmethod
    def from_config(cls, dof: Mapping[str, Any], eval_batch_size: int = 1000) -> "SubspaceSettings":
        return cls(steps=dof["steps"], batch_size=dof["batch_size"], lr=dof["lr"], eval_batch_size=eval_batch_size,
                   device=dof["device"], eval_every=dof.get("eval_every", 0), vectorize=dof.get("vectorize", 32))

    def evaluation(self) -> TrainSettings:
        return TrainSettings(lr=self.lr, batch_size=self.batch_size, seed=0,
                             eval_batch_size=self.eval_batch_size, device=self.device)

    def eval_steps(self) -> list[int]:
        """The Adam steps after which the splits are evaluated: 0 (the offset), every ``eval_every``, the last."""
        every = int(self.eval_every or 0)
        marks = set(range(every, self.steps + 1, every)) if every > 0 else set()
        return sorted({0, self.steps} | marks)


@dataclass
class SubspaceResult:
    """One training: final losses and accuracies (eval mode, whole splits), the best accuracy over the
    evaluations after step 0, the offset's (step 0), and the batch-loss curve."""

    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    best_train_accuracy: float
    best_test_accuracy: float
    offset_train_accuracy: float
    offset_test_accuracy: float
    batch_loss: np.ndarray
    params: np.ndarray | None = field(default=None, repr=False)


def _check_finite(values: np.ndarray, step: int, labels: Sequence[str]) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise TrainingDiverged(f"{labels[i]} diverged: loss = {values[i]} at step {step}; lower dof.lr")


class Adam:
    """Adam (Kingma & Ba 2015) as ``torch.optim.Adam`` computes it on the CPU (its single-tensor
    update, amsgrad off, no weight decay), bitwise, without ``torch.optim``: the first optimizer a
    process creates imports ``torch._dynamo``, 1 s of each 3-7 s subspace job. Elementwise: on a
    stacked (n, d) theta it is n independent Adams, and entries whose gradient is always exactly 0
    never move (their update is 0 / (0 + eps)).

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


class _RowsTimesBlock(torch.autograd.Function):
    """theta (u, b) @ block (b, D) and its gradient g @ block^T through numpy's BLAS on the CPU.

    The dense bases' products read all of A every Adam step and are most of a step at large d.
    torch's CPU build calls MKL, whose single-precision products ran 2.5-4x slower than numpy's
    OpenBLAS on the AMD EPYC cores this was measured on (0.39 ms against 1.0-1.5 ms per D = 7030,
    d = 1000 product with one thread). Results agree with torch's to float32 rounding and, for a
    given number of BLAS threads, are the same bits every time; call it inside
    ``threadpool_limits`` of the job's threads.
    """

    @staticmethod
    def forward(ctx: Any, block: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(block)
        return torch.from_numpy(theta.detach().numpy() @ block.numpy())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (block,) = ctx.saved_tensors
        return None, torch.from_numpy(grad.contiguous().numpy() @ block.numpy().T)


def _rows_times(block: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """theta @ block, differentiable in theta (numpy's BLAS for float32 on the CPU)."""
    if block.device.type == "cpu" and block.dtype == theta.dtype == torch.float32:
        return _RowsTimesBlock.apply(block, theta)
    return theta @ block


def _has_state(model: nn.Module) -> bool:
    """Whether training changes more of the model than its parameters (buffers: BatchNorm statistics)."""
    return any(True for _ in model.buffers())


def _evaluate(logits_of: Callable[[torch.Tensor], torch.Tensor], data: Data, split: str, settings: SubspaceSettings,
              device: torch.device, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy and accuracy over the whole split of ``count`` networks: ``logits_of(x)``
    gives their (count, batch, classes) logits (called without gradients)."""
    n = data.size(split)
    loss, correct = np.zeros(count), np.zeros(count)
    with torch.no_grad():
        for start in range(0, n, settings.eval_batch_size):
            x, y = data.batch(split, np.arange(start, min(n, start + settings.eval_batch_size)))
            x, y = x.to(device), y.to(device)
            logits = logits_of(x)
            losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(count), reduction="none")
            loss += losses.view(count, -1).sum(1).double().cpu().numpy()
            correct += (logits.argmax(-1) == y).sum(1).double().cpu().numpy()
    return loss / n, correct / n


def _adam_pass(theta: torch.Tensor, losses_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               evaluator: Callable[[], Callable[[torch.Tensor], torch.Tensor]], count: int, data: Data,
               settings: SubspaceSettings, data_seed: int, labels: Sequence[str], label: str,
               progress: bool | None) -> dict[str, np.ndarray]:
    """Adam on ``theta`` for ``settings.steps`` batches of the seeded data order, evaluating the
    splits at ``settings.eval_steps()`` (``evaluator()`` gives the networks' logits at the current
    theta, in eval mode); per training: batch losses (count, steps) and the losses and accuracies
    at every evaluation (count, evaluations)."""
    device = torch.device(settings.device)
    optimizer = Adam([theta], lr=settings.lr, betas=settings.betas, eps=settings.eps)
    n = data.size("train")
    marks = settings.eval_steps()
    out = {"batch_loss": np.empty((count, settings.steps))}
    for split in ("train", "test"):
        out[f"{split}_loss"], out[f"{split}_accuracy"] = np.empty((count, len(marks))), np.empty((count, len(marks)))

    def evaluate_at(index: int) -> None:
        with torch.no_grad():
            logits_of = evaluator()
        for split in ("train", "test"):
            out[f"{split}_loss"][:, index], out[f"{split}_accuracy"][:, index] = _evaluate(
                logits_of, data, split, settings, device, count)

    evaluate_at(0)
    for step in track(range(settings.steps), label, "Adam steps", progress):
        x, y = data.batch("train", batch_indices(step, n, settings.batch_size, data_seed))
        seed_step_draws(step_seed(data_seed, step, 1), device)  # dropout draws of this step
        losses = losses_of(x.to(device), y.to(device))
        out["batch_loss"][:, step] = losses.detach().double().cpu().numpy()
        _check_finite(out["batch_loss"][:, step], step, labels)
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
        if step + 1 in marks:
            evaluate_at(marks.index(step + 1))
    return out


def _results(out: Mapping[str, np.ndarray], params: np.ndarray | None) -> list[SubspaceResult]:
    results = []
    for i in range(out["batch_loss"].shape[0]):
        later = slice(1, None) if out["train_accuracy"].shape[1] > 1 else slice(None)
        results.append(SubspaceResult(
            train_loss=float(out["train_loss"][i, -1]), train_accuracy=float(out["train_accuracy"][i, -1]),
            test_loss=float(out["test_loss"][i, -1]), test_accuracy=float(out["test_accuracy"][i, -1]),
            best_train_accuracy=float(out["train_accuracy"][i, later].max()),
            best_test_accuracy=float(out["test_accuracy"][i, later].max()),
            offset_train_accuracy=float(out["train_accuracy"][i, 0]),
            offset_test_accuracy=float(out["test_accuracy"][i, 0]),
            batch_loss=out["batch_loss"][i].copy(), params=None if params is None else params[i].copy()))
    return results


def _train_one(model: nn.Module, family: Family, d: int, data: Data, settings: SubspaceSettings, data_seed: int,
               label: str, progress: bool | None, keep_params: bool) -> SubspaceResult:
    """One training on its own copy of the model (any network, buffers included)."""
    import copy

    device = torch.device(settings.device)
    model = copy.deepcopy(model).to(device).train()
    base = torch.tensor(np.asarray(family.offset_at(d), dtype=np.float32), device=device)  # a copy, never a view
    basis = family.basis.prefix(d).to(device)
    theta = torch.zeros(d, device=device, requires_grad=True)
    with parameters_as_views(model) as assign, threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):

        def losses_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            assign(base + basis.expand(theta))
            return F.cross_entropy(model(x), y).unsqueeze(0)

        def evaluator() -> Callable[[torch.Tensor], torch.Tensor]:
            w = base + basis.expand(theta)

            def logits_of(x: torch.Tensor) -> torch.Tensor:
                model.eval()
                try:
                    assign(w)
                    return model(x).unsqueeze(0)
                finally:
                    model.train()

            return logits_of

        out = _adam_pass(theta, losses_of, evaluator, 1, data, settings, data_seed, [label], label, progress)
        with torch.no_grad():
            w = (base + basis.expand(theta)).cpu().numpy()[None] if keep_params else None
    return _results(out, w)[0]


def _expansion(items: Sequence[tuple[Family, int]], device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """theta (n, d_max), zero beyond each training's d -> the (n, D) matrix of o_i + A_i theta_i.

    A family's trainings, sorted by d, share its basis: columns [a, b) between two of their d values
    serve the trainings with d >= b, a suffix of the sorted rows, so a dense basis is read once per
    call in segments (the products cost what the trainings' own d cost, not the largest d each), and
    a mask's coordinates are one scatter."""
    offsets = torch.tensor(np.stack([np.asarray(f.offset_at(d), dtype=np.float32) for f, d in items]), device=device)
    dim = offsets.shape[1]
    groups: dict[int, list[int]] = {}
    for i, (family, _) in enumerate(items):
        groups.setdefault(id(family), []).append(i)
    plan, order = [], []
    for members in groups.values():
        members = sorted(members, key=lambda i: items[i][1])
        order += members
        family, dims = items[members[0]][0], [items[i][1] for i in members]
        basis = family.basis.prefix(dims[-1]).to(device)
        index = torch.tensor(members, device=device)
        if isinstance(basis, DenseBasis):
            rows = basis.columns.T.contiguous()
            bounds = sorted(set(dims))
            segments = [(a, b, dims.index(b)) for a, b in zip([0, *bounds[:-1]], bounds)]  # rows from the first d >= b
            plan.append(("dense", index, rows, segments))
        else:
            row = torch.repeat_interleave(torch.arange(len(members), device=device), torch.tensor(dims, device=device))
            position = torch.cat([torch.arange(d, device=device) for d in dims])
            plan.append(("coordinates", index, basis.indices.to(device)[position], (row, position)))
    inverse = torch.argsort(torch.tensor(order, device=device))

    def expand(theta: torch.Tensor) -> torch.Tensor:
        blocks = []
        for kind, index, rows, extra in plan:
            part = theta[index]
            if kind == "dense":
                block = part.new_zeros(index.numel(), dim)
                for a, b, first in extra:
                    block[first:] += _rows_times(rows[a:b], part[first:, a:b])
            else:
                row, position = extra
                block = part.new_zeros(index.numel(), dim).index_put((row, rows), part[row, position])
            blocks.append(block)
        return offsets + torch.cat(blocks)[inverse]

    return expand


def _train_vectorized(model: nn.Module, items: Sequence[tuple[Family, int]], data: Data, settings: SubspaceSettings,
                      data_seed: int, labels: Sequence[str], label: str, progress: bool | None,
                      keep_params: bool) -> list[SubspaceResult]:
    """The trainings of ``items`` in one vectorized pass (a network without buffers)."""
    from torch.func import functional_call, vmap

    device = torch.device(settings.device)
    model = model.to(device)
    count, width = len(items), max(d for _, d in items)
    mask = torch.zeros(count, width, device=device)
    for i, (_, d) in enumerate(items):
        mask[i, :d] = 1.0
    theta = torch.zeros(count, width, device=device, requires_grad=True)
    expand = _expansion(items, device)
    unflatten = unflattener(model.named_parameters())

    def logits_one(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, unflatten(w), (x,))

    batched = vmap(logits_one, in_dims=(0, None), randomness="same")  # one dropout draw for all, as one at a time

    def losses_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model.train()
        logits = batched(expand(theta * mask), x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(count), reduction="none").view(
            count, -1).mean(1)

    def evaluator() -> Callable[[torch.Tensor], torch.Tensor]:
        w = expand(theta * mask)

        def logits_of(x: torch.Tensor) -> torch.Tensor:
            model.eval()
            try:
                return batched(w, x)
            finally:
                model.train()

        return logits_of

    with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        out = _adam_pass(theta, losses_of, evaluator, count, data, settings, data_seed, labels, label, progress)
        with torch.no_grad():
            params = expand(theta * mask).cpu().numpy() if keep_params else None
    return _results(out, params)


def train_subspaces(model: nn.Module, items: Sequence[tuple[Family, int]], data: Data, settings: SubspaceSettings,
                    data_seed: int, label: str = "subspaces", progress: bool | None = None,
                    keep_params: bool = False) -> list[SubspaceResult]:
    """Adam on theta from 0 for each (family, d) of ``items``, all on the batches of ``data_seed``.

    Up to ``settings.vectorize`` trainings run as one vectorized pass (networks without buffers),
    the others one at a time; the results come in the order of ``items``. ``model`` gives the
    architecture and buffers and is not changed. Raises TrainingDiverged, naming the training, on a
    non-finite batch loss.
    """
    labels = [f"{label} {family.subspace} d={d}" for family, d in items]
    if settings.vectorize <= 1 or _has_state(model):
        return [_train_one(model, family, d, data, settings, data_seed, lab, progress, keep_params)
                for (family, d), lab in zip(items, labels)]
    results: list[SubspaceResult] = []
    per = int(settings.vectorize)
    for start in range(0, len(items), per):
        chunk = slice(start, start + per)
        results += _train_vectorized(model, items[chunk], data, settings, data_seed, labels[chunk],
                                     f"{label} ({len(items[chunk])} trainings)", progress, keep_params)
    return results


def train_in_subspace(model: nn.Module, offset: np.ndarray, basis: Basis, data: Data, settings: SubspaceSettings,
                      data_seed: int, label: str = "subspace", progress: bool | None = False) -> SubspaceResult:
    """One training of Adam on theta for w = offset + A theta, theta_0 = 0, on its own (any network);
    the result holds the final parameters."""
    dim = sum(p.numel() for p in model.parameters())
    if basis.dim != dim or np.asarray(offset).size != dim:
        raise ValueError(f"basis ({basis.dim}) and offset ({np.asarray(offset).size}) must match D = {dim}")
    family = Family("subspace", np.asarray(offset, dtype=np.float32), basis)
    return _train_one(model, family, basis.size, data, settings, data_seed, label, progress, keep_params=True)


def train_full_space(model: nn.Module, offset: np.ndarray, data: Data, settings: SubspaceSettings,
                     data_seed: int, label: str = "full space", progress: bool | None = False) -> SubspaceResult:
    """The reference: the same Adam on all D parameters from ``offset`` with the same batches and
    evaluations (the identity basis, without a product)."""
    dim = int(np.asarray(offset).size)
    family = Family("full_space", np.asarray(offset, dtype=np.float32), CoordinateBasis(torch.arange(dim), dim))
    return _train_one(model, family, dim, data, settings, data_seed, label, progress, keep_params=True)


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


def results_dataset(results: Sequence[SubspaceResult], runs: Sequence[int], outer: Mapping[str, list]) -> Any:
    """The results of one run index per result, as a Dataset with dims (*outer, run[, adam_step])."""
    import xarray as xr

    dims = (*outer, "run")
    shape = tuple(len(v) for v in outer.values())
    data = {name: (dims, np.array([getattr(r, name) for r in results], dtype=np.float64).reshape(*shape, len(results)))
            for name in RESULT_FIELDS}
    curves = np.stack([r.batch_loss for r in results])
    data["batch_loss"] = ((*dims, "adam_step"), curves.reshape(*shape, *curves.shape))
    ds = xr.Dataset(data, coords={**outer, "run": list(runs), "adam_step": np.arange(curves.shape[1])})
    for name, (units, long_name) in RESULT_ATTRS.items():
        ds[name].attrs.update(units=units, long_name=long_name)
    return ds


def check_trained(results: Sequence[SubspaceResult], label: str) -> None:
    """Refuse results that could be wrong without an error: a non-finite accuracy or loss."""
    for r in results:
        values = [getattr(r, name) for name in RESULT_FIELDS]
        if not all(math.isfinite(v) for v in values):
            raise TrainingDiverged(f"{label}: a non-finite loss or accuracy after training ({values}); lower dof.lr")
