"""SSRFT transform cost per product against the product itself, per network at its real D.

Writes ``results/benchmarks/transforms.json``. For 3c3d, All-CNN-C and ResNet-18 at their real D
(random initialization, the rehearsal's 2 Hessian samples), one block of the measurement loop of
a shard is timed side by side in this one run:

- ``product_seconds``: the batched Hessian-vector product of the block, per product;
- ``ssrft_seconds``: the SSRFT work of the same block per product, as a shard does it: the test
  rows Psi_R (two inverse DCTs in the operator's float32), the inner projection Psi_L b (two DCTs
  in float64) and, for the outer half of the measurements (t = 2 s), Psi_R b (two more);
- ``ssrft_over_product``: their ratio (the target of the accuracy-per-product issue is <= 1), and
  the same transforms without the padding to a 5-smooth length, for comparison.

Run: ``python benchmarks/transforms.py`` (part of ``make bench``). Timings are the best of 3.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from hessmask import sketch
from hessmask.data import TensorData, synthetic_splits
from hessmask.eigen_stores import hessian_operator
from hessmask.models import DEFAULT_CLASSES, INPUT_SHAPES
from hessmask.training import TrainSettings, initial_checkpoint

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "transforms.json"
BLOCKS = {"3c3d": 16, "allcnnc": 16, "resnet18": 4}


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(network: str) -> dict:
    block = BLOCKS[network]
    classes = DEFAULT_CLASSES[network]
    data = TensorData(synthetic_splits(INPUT_SHAPES[network], classes, 2, seed=0))
    checkpoint = initial_checkpoint(network, classes, TrainSettings(lr=0.1, batch_size=2, seed=12345))
    eigen = {"curvature": "hessian", "dtype": "float32", "device": "cpu", "block_size": block, "data_chunk": None}
    operator = hessian_operator(checkpoint, data, "test", 2, eigen)
    dim = operator.dim
    row = {"network": network, "D": dim, "block": block, "samples": 2}
    for padded in (True, False):
        length = sketch.transform_length(dim) if padded else dim
        original = sketch.transform_length
        sketch.transform_length = lambda d, n=length: n  # the unpadded SSRFT for comparison
        try:
            psi_left = sketch.TestMatrix("ssrft", 2 * block, dim, seed=1)
            psi_right = sketch.TestMatrix("ssrft", 2 * block, dim, seed=2)
        finally:
            sketch.transform_length = original
        rows = psi_right.rows_block(0, block, dtype=torch.float32)
        measured = operator.matmat(rows.T).double()

        def transforms():
            psi_right.rows_block(0, block, dtype=torch.float32)
            psi_left.apply(measured)
            psi_right.apply(measured[:, : block // 2])  # the outer half of the measurements

        key = "ssrft_seconds" if padded else "ssrft_unpadded_seconds"
        row[key] = best(transforms) / block
        row["transform_length" if padded else "unpadded_length"] = length
    row["product_seconds"] = best(lambda: operator.matmat(rows.T)) / block
    row["ssrft_over_product"] = row["ssrft_seconds"] / row["product_seconds"]
    row["unpadded_ssrft_over_product"] = row["ssrft_unpadded_seconds"] / row["product_seconds"]
    return row


def main() -> None:
    torch.set_num_threads(1)
    rows = [measure(network) for network in BLOCKS]
    for row in rows:
        print(json.dumps(row), flush=True)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": 1,
                          "load_average_at_end": os.getloadavg()},
              "rows": rows, "ssrft_over_product": {r["network"]: r["ssrft_over_product"] for r in rows}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
