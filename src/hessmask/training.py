"""Deterministic, resumable SGD training in segments between record steps.

The data order is a pure function of (seed, step): epoch e visits the training set in the
permutation drawn from ``default_rng([seed, e])``, batch i of it at step e * steps_per_epoch + i
(incomplete last batches are dropped). Dropout and augmentation draw from per-step seeds too, so a
segment started from a checkpoint gives bitwise the parameters of an uninterrupted run on the
same device. Checkpoints still hold everything needed to resume by hand (parameters, buffers,
optimizer state, RNG states, position in the data order).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hessmask.atomic import remove_stale, temporary_name
from hessmask.config import segment_bounds  # noqa: F401 (re-exported)
from hessmask.digests import check_file, write_file_digest
from hessmask.models import build_model
from hessmask.progress import track
from hessmask.seeds import step_seed

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the value."""


class Data(Protocol):
    """What training needs of a dataset: sizes and batches by index."""

    num_classes: int

    def size(self, split: str) -> int: ...

    def batch(self, split: str, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class TrainSettings:
    """Optimizer and data-order settings of one experiment (config ``experiments.<name>.train``)."""

    lr: float
    batch_size: int
    seed: int
    momentum: float = 0.0
    weight_decay: float = 0.0
    augment: bool = False
    eval_batch_size: int = 1000
    eval_samples: int | None = None
    device: str = "cpu"
    divergence_factor: float | None = 10.0

    @classmethod
    def from_config(cls, train: Mapping[str, Any]) -> "TrainSettings":
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in train.items() if k in keys})


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    if batch_size > num_examples:
        raise ValueError(f"batch size {batch_size} exceeds the {num_examples} training examples")
    return num_examples // batch_size


def batch_indices(step: int, num_examples: int, batch_size: int, seed: int) -> np.ndarray:
    """Indices of the training batch at ``step`` (a pure function of its arguments)."""
    per_epoch = steps_per_epoch(num_examples, batch_size)
    epoch, position = divmod(step, per_epoch)
    return _epoch_order(seed, epoch, num_examples)[position * batch_size: (position + 1) * batch_size].copy()


@functools.lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The data order of one epoch, drawn once per epoch rather than once per step (callers copy
    their slice, so the cached order is never written to)."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def seed_step_draws(seed: int, device: torch.device) -> None:
    """Seed the CPU's generator and, for a CUDA device, that device's, for one step's random draws
    (dropout). The same draws as ``torch.manual_seed(seed)`` on the devices a job uses, without its
    lazy seeding of every CUDA, MTIA and XPU device, which records a Python stack trace per call
    where CUDA is not initialized (0.2 s of every 300-step subspace training on the CPU)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def augment_batch(x: torch.Tensor, seed: int, step: int, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip (CIFAR-style), per-step seeded."""
    rng = np.random.default_rng(step_seed(seed, step, 2))
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dx, dy = rng.integers(0, 2 * pad + 1, size=(2, n))
    flip = rng.random(n) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                           weight_decay=settings.weight_decay)


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, split: str, settings: TrainSettings) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a split (or its first ``eval_samples``), eval mode."""
    was_training = model.training
    model.eval()
    n = data.size(split) if settings.eval_samples is None else min(settings.eval_samples, data.size(split))
    total_loss, correct = 0.0, 0
    device = next(model.parameters()).device
    for start in range(0, n, settings.eval_batch_size):
        x, y = data.batch(split, np.arange(start, min(n, start + settings.eval_batch_size)))
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    model.train(was_training)
    return total_loss / n, correct / n


@dataclass
class Checkpoint:
    """Everything that defines training at ``step``: model state (parameters and buffers),
    optimizer state, RNG states and the position in the data order."""

    step: int
    model_state: dict
    optimizer_state: dict
    rng_state: torch.Tensor
    position: tuple[int, int]
    settings: dict
    model_name: str
    num_classes: int

    def save(self, path: Path | str) -> Path:
        """Atomic ``torch.save``: written to a temporary name, its digest recorded in the sidecar
        ``<path>.sha256`` (``hessmask.digests``), then renamed into place."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path)
        tmp = temporary_name(path)
        try:
            torch.save(asdict(self), tmp)
            os.replace(tmp, path)
            write_file_digest(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: Path | str, map_location: str | torch.device = "cpu") -> "Checkpoint":
        """The checkpoint at ``path``, after checking it against its digest.

        Raises:
            FileNotFoundError: if it is missing.
            CorruptFile: if it was truncated or altered since it was written, or has no digest.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint {path} is missing; run the training rule that writes it")
        check_file(path, "checkpoint")
        return cls(**torch.load(path, map_location=map_location, weights_only=False))

    def model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The model of this checkpoint with its parameters and buffers, in eval mode."""
        model = build_model(self.model_name, seed=0, classes=self.num_classes)
        model.load_state_dict(self.model_state)
        return model.to(device).eval()

    def parameters(self) -> np.ndarray:
        """theta: all trainable parameters flattened in ``model.parameters()`` order (float32)."""
        return flat_parameters(self.model())


def flat_parameters(model: nn.Module) -> np.ndarray:
    """theta of ``model``: its trainable parameters flattened in ``model.parameters()`` order, on the CPU."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu().numpy()


def parameter_layout(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each parameter tensor in the order of the flattened theta."""
    return [(name, tuple(p.shape)) for name, p in model.named_parameters()]


def initial_checkpoint(model_name: str, num_classes: int, settings: TrainSettings) -> Checkpoint:
    """The checkpoint at step 0: the seeded initialization, nothing trained."""
    model = build_model(model_name, seed=settings.seed, classes=num_classes)
    optimizer = make_optimizer(model, settings)
    torch.manual_seed(settings.seed)
    return Checkpoint(0, model.state_dict(), optimizer.state_dict(), torch.get_rng_state(), (0, 0),
                      asdict(settings), model_name, num_classes)


def train_segment(
    checkpoint: Checkpoint,
    data: Data,
    end_step: int,
    settings: TrainSettings,
    progress: bool | None = None,
) -> tuple[Checkpoint, np.ndarray]:
    """Train from ``checkpoint.step`` to ``end_step``; return the new checkpoint and batch losses.

    ``batch_loss[i]`` is the mean cross-entropy of the batch at step ``checkpoint.step + i``,
    evaluated before that step's update. Raises TrainingDiverged on a non-finite loss.
    """
    start = checkpoint.step
    if end_step < start:
        raise ValueError(f"cannot train backwards from step {start} to {end_step}")
    device = torch.device(settings.device)
    model = build_model(checkpoint.model_name, seed=0, classes=checkpoint.num_classes)
    model.load_state_dict(checkpoint.model_state)
    model.to(device).train()
    optimizer = make_optimizer(model, settings)
    optimizer.load_state_dict(checkpoint.optimizer_state)
    torch.set_rng_state(checkpoint.rng_state)
    n = data.size("train")
    losses = np.empty(end_step - start, dtype=np.float64)
    for step in track(range(start, end_step), f"train {start}->{end_step}", "SGD steps", progress):
        x, y = data.batch("train", batch_indices(step, n, settings.batch_size, settings.seed))
        if settings.augment:
            x = augment_batch(x, settings.seed, step)
        x, y = x.to(device), y.to(device)
        seed_step_draws(step_seed(settings.seed, step, 1), device)  # dropout draws of this step
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        value = float(loss.detach())
        check_divergence(value, step, settings, checkpoint.num_classes)
        losses[step - start] = value
        loss.backward()
        optimizer.step()
    per_epoch = steps_per_epoch(n, settings.batch_size)
    new = Checkpoint(
        end_step,
        {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        _to_cpu(optimizer.state_dict()),
        torch.get_rng_state(),
        divmod(end_step, per_epoch),
        asdict(settings),
        checkpoint.model_name,
        checkpoint.num_classes,
    )
    return new, losses


def check_divergence(loss: float, step: int, settings: TrainSettings, num_classes: int) -> None:
    """Stop a run whose batch loss is non-finite, or above ``divergence_factor`` times ln C (the
    cross-entropy of a uniform prediction): a finite but diverged run would otherwise train to
    the end and hand arbitrary Hessians to the eigen jobs."""
    limit = None if settings.divergence_factor is None else settings.divergence_factor * math.log(num_classes)
    if not math.isfinite(loss) or (limit is not None and loss > limit):
        bound = "" if math.isfinite(loss) else " (not finite)"
        if math.isfinite(loss):
            bound = f" > train.divergence_factor x ln C = {settings.divergence_factor} x ln {num_classes} = {limit:.3g}"
        raise TrainingDiverged(
            f"training diverged: batch loss = {loss:.6g} at step {step}{bound} (lr = {settings.lr}); "
            "lower train.lr, check the data, or raise train.divergence_factor (null disables the bound)")


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def run_segment(experiment: Mapping[str, Any], data: Data, step: int,
                previous: Checkpoint | None) -> tuple[Checkpoint, "xr.Dataset"]:
    """One training job of the workflow: train to ``step`` and evaluate there.

    ``previous`` is None for step 0 (the seeded initialization). Returns the checkpoint at
    ``step`` and a Dataset with the batch losses of the segment, the evaluation at ``step`` and
    ``theta`` (param,), theta at ``step`` (``Checkpoint.parameters``, taken from the model built for
    the evaluation): the jobs that need only theta read it there without torch.
    """
    import xarray as xr

    settings = TrainSettings.from_config(experiment["train"])
    if previous is None:
        if step != 0:
            raise ValueError(f"a segment ending at step {step} needs the previous checkpoint")
        previous = initial_checkpoint(experiment["model"], data.num_classes, settings)
    start = previous.step
    checkpoint, losses = train_segment(previous, data, step, settings)
    model = checkpoint.model(settings.device)
    evals = {split: evaluate(model, data, split, settings) for split in ("train", "test")}
    ds = xr.Dataset(
        {
            "batch_loss": (("train_step",), losses),
            **{f"{split}_loss": ((), loss) for split, (loss, _) in evals.items()},
            **{f"{split}_accuracy": ((), acc) for split, (_, acc) in evals.items()},
            "theta": (("param",), flat_parameters(model)),
        },
        coords={"train_step": np.arange(start, step), "step": step},
    )
    ds["theta"].attrs.update(long_name="trainable parameters theta at step, flattened in model.parameters() order",
                            units="parameter units")
    log.info("step %d: train loss %.4f acc %.4f, test loss %.4f acc %.4f", step,
             *evals["train"], *evals["test"])
    return checkpoint, ds


def combine_curves(segments: list["xr.Dataset"]) -> "xr.Dataset":
    """Join per-segment curves into the experiment's training curves (``theta`` is left to
    ``theta_dataset``)."""
    import xarray as xr

    segments = sorted(segments, key=lambda d: int(d["step"]))
    # each segment's scalar ``step`` coordinate is left out: the curves' own dimension is train_step
    batch_loss = xr.concat([s["batch_loss"].drop_vars("step") for s in segments], dim="train_step")
    evals = xr.concat([s.drop_vars(["batch_loss", "theta"], errors="ignore").drop_dims("train_step", errors="ignore")
                       for s in segments], dim="step")
    ds = xr.merge([batch_loss.to_dataset(), evals])
    ds["batch_loss"].attrs.update(units="nats",
                                  long_name="mean cross-entropy of the training batch, before the step's update")
    for split in ("train", "test"):
        ds[f"{split}_loss"].attrs.update(units="nats",
                                         long_name=f"mean cross-entropy over the {split} split (eval mode)")
        ds[f"{split}_accuracy"].attrs.update(units="1", long_name=f"top-1 accuracy over the {split} split (eval mode)")
    return ds


def theta_dataset(checkpoint_paths: list[str | Path]) -> "xr.Dataset":
    """theta of each checkpoint stacked into a Dataset with ``theta`` of dims (step, param).

    The attrs ``tensor_names``, ``tensor_shapes`` and ``tensor_offsets`` map the flat index back
    to the parameter tensors.
    """
    import json

    import xarray as xr

    checkpoints = sorted((Checkpoint.load(p) for p in checkpoint_paths), key=lambda c: c.step)
    model = checkpoints[0].model()
    layout = parameter_layout(model)
    offsets = np.cumsum([0] + [int(np.prod(shape)) for _, shape in layout]).tolist()
    theta = np.stack([c.parameters() for c in checkpoints])
    ds = xr.Dataset(
        {"theta": (("step", "param"), theta)},
        coords={"step": [c.step for c in checkpoints], "param": np.arange(theta.shape[1])},
    )
    ds["theta"].attrs.update(long_name="trainable parameters theta, flattened in model.parameters() order",
                             units="parameter units")
    ds.attrs.update(
        model=checkpoints[0].model_name,
        tensor_names=json.dumps([name for name, _ in layout]),
        tensor_shapes=json.dumps([list(shape) for _, shape in layout]),
        tensor_offsets=json.dumps(offsets),
    )
    return ds
