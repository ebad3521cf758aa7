"""Subspace training (the degrees-of-freedom study's Adam steps) against the implementation it replaced.

Writes ``results/benchmarks/subspace_training.json``. On the default study's MLP (D = 7030, batches
of 128 MNIST-shaped inputs, random data: only time is measured), side by side in this one run, one
thread:

- ``matvec``: the two products of a dense basis per step, A theta and A^T g, through torch (MKL
  on this build) and through numpy (OpenBLAS), which ``hessmask.dof.DenseBasis`` now uses on the
  CPU; ms per pair and their ratio, at d = 100 and 1000;
- ``steps``: Adam steps of ``hessmask.dof`` as it is (``parameters_as_views`` and the host BLAS
  products) against the earlier loop (``torch.func.functional_call`` and torch's products), ms
  per step and their ratio at d = 5 (per-step overhead) and d = 1000 (memory-bound products);
- ``views_bitwise``: the loss curve with ``parameters_as_views`` and torch's products equals the
  ``functional_call`` curve bit for bit (the replacement changes speed, not arithmetic).

Run: ``python benchmarks/subspace_training.py`` (part of ``make bench``). Timings are the best of 3 (timing.best).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch.func import functional_call

from hessmask import dof
from hessmask.data import TensorData, synthetic_splits
from hessmask.dof import training as dof_training
from hessmask.models import build_model, unflattener
from timing import best

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "subspace_training.json"
SETTINGS = dof.SubspaceSettings(steps=150, batch_size=128, lr=0.05)


def matvec(dim: int, d: int) -> dict:
    rng = np.random.default_rng(0)
    columns = torch.from_numpy(rng.standard_normal((dim, d), dtype=np.float32))
    theta = torch.from_numpy(rng.standard_normal(d, dtype=np.float32))
    grad = torch.from_numpy(rng.standard_normal(dim, dtype=np.float32))
    a, t, g = columns.numpy(), theta.numpy(), grad.numpy()
    loops = 200

    def with_torch():
        for _ in range(loops):
            columns @ theta
            columns.T @ grad

    def with_numpy():
        for _ in range(loops):
            a @ t
            a.T @ g

    torch_ms, numpy_ms = (best(fn) / loops * 1e3 for fn in (with_torch, with_numpy))
    return {"d": d, "torch_ms": torch_ms, "numpy_ms": numpy_ms, "speedup": torch_ms / numpy_ms}


def adam_steps(model, offset: np.ndarray, basis: dof.DenseBasis, data, current: bool,
               torch_products: bool = False) -> np.ndarray:
    """The batch losses of ``SETTINGS.steps`` Adam steps (``hessmask.dof.training._adam``) in the subspace,
    with the current loop (``current``) or the one it replaced (functional_call, torch's products)."""
    base = torch.tensor(offset)
    theta = torch.zeros(basis.size, requires_grad=True)

    def expand():
        return basis.columns @ theta if torch_products or not current else basis.expand(theta)

    if not current:
        unflatten = unflattener(model.named_parameters())
        buffers = {name: b.detach().clone() for name, b in model.named_buffers()}

        def loss_of(x, y):
            return F.cross_entropy(functional_call(model, (unflatten(base + expand()), buffers), (x,)), y)

        return dof_training._adam(loss_of, [theta], data, SETTINGS, 3, "reference", False)
    with dof.parameters_as_views(model) as assign:

        def loss_of(x, y):
            assign(base + expand())
            return F.cross_entropy(model(x), y)

        return dof_training._adam(loss_of, [theta], data, SETTINGS, 3, "current", False)


def steps(model, offset: np.ndarray, data, d: int) -> dict:
    basis = dof.gaussian_basis(offset.size, d, seed=1)
    seconds = {}
    for name, current in (("reference", False), ("current", True)):
        seconds[name] = best(lambda current=current: adam_steps(model, offset, basis, data, current))
    per_step = {f"{name}_ms_per_step": s / SETTINGS.steps * 1e3 for name, s in seconds.items()}
    return {"d": d, **per_step, "speedup": seconds["reference"] / seconds["current"]}


def main() -> None:
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        model = build_model("mlp", seed=0).train()
        offset = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy()
        data = TensorData(synthetic_splits((1, 16, 16), 10, 1000, seed=0))
        basis = dof.gaussian_basis(offset.size, 20, seed=1)
        reference = adam_steps(model, offset, basis, data, current=False)
        views = adam_steps(model, offset, basis, data, current=True, torch_products=True)
        result = {
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": 1,
                        "torch": torch.__version__, "load_average_at_start": os.getloadavg()},
            "setting": {"model": "mlp", "D": int(offset.size), "batch_size": SETTINGS.batch_size,
                        "steps": SETTINGS.steps},
            "views_bitwise": bool(np.array_equal(reference, views)),
            "matvec": [matvec(offset.size, d) for d in (100, 1000)],
            "steps": [steps(model, offset, data, d) for d in (5, 1000)],
        }
    result["machine"]["load_average_at_end"] = os.getloadavg()
    for row in result["matvec"] + result["steps"]:
        print(json.dumps(row), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
