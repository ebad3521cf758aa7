"""Test-matrix work per product against the product itself, per network at its real D.

Writes ``results/benchmarks/transforms.json``. For 3c3d, All-CNN-C and ResNet-18 at their real D
(random initialization, the rehearsal's 2 Hessian samples) and their paper overlays' inner sketch
size t, one block of the measurement loop of a shard is timed side by side in this one run:

- ``product_seconds``: the batched Hessian-vector product of the block, per product;
- ``<kind>_seconds``: the test-matrix work of the same block per product, as a shard does it: the
  test rows Psi_R (in the operator's float32), the inner projection Psi_L b (in float64) and, for
  the outer half of the measurements (t = 2 s), Psi_R b; for the sparse sign matrices the paper
  overlays use (``sparse_sign``), the SSRFT padded to a 5-smooth length (``ssrft``: two DCTs per
  row and per projection) and the SSRFT without the padding (``ssrft_unpadded``);
- ``<kind>_setup_seconds``: what a shard job pays once: drawing its two test matrices and building
  what they keep (the sparse matrices' product and row layouts);
- ``<kind>_over_product``: their ratio to the product. The accuracy-per-product issue's target is
  <= 1 for the test matrices the study uses (``test_matrix_over_product``, sparse sign); the
  SSRFT's ratio is kept beside it (``ssrft_over_product``).

Run: ``python benchmarks/transforms.py`` (part of ``make bench``). Timings are the best of 3, on
one thread (products and transforms alike).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from hessmask import sketch
from timing import best, network_operator

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "transforms.json"
BLOCKS = {"3c3d": 16, "allcnnc": 16, "resnet18": 4}
#: the inner sketch size t of each network's paper overlay (configs/*.yaml)
INNER = {"3c3d": 2000, "allcnnc": 2000, "resnet18": 3000}
#: the test matrices the paper overlays use
STUDY_KIND = "sparse_sign"


def test_matrices(kind: str, rows: int, dim: int):
    """(Psi_L, Psi_R) of one kind; ``ssrft_unpadded`` is the SSRFT at length D itself."""
    if kind != "ssrft_unpadded":
        return sketch.TestMatrix(kind, rows, dim, seed=1), sketch.TestMatrix(kind, rows, dim, seed=2)
    original = sketch.transform_length
    sketch.transform_length = lambda d: d
    try:
        return sketch.TestMatrix("ssrft", rows, dim, seed=1), sketch.TestMatrix("ssrft", rows, dim, seed=2)
    finally:
        sketch.transform_length = original


def measure(network: str) -> dict:
    block = BLOCKS[network]
    operator = network_operator(network, block)
    dim = operator.dim
    row = {"network": network, "D": dim, "block": block, "samples": 2, "inner": INNER[network]}
    measured = None
    for kind in (STUDY_KIND, "ssrft", "ssrft_unpadded"):
        psi_left, psi_right = test_matrices(kind, INNER[network], dim)
        rows = psi_right.rows_block(0, block, dtype=torch.float32)
        if measured is None:
            first_rows = rows
            measured = operator.matmat(rows.T).double()
        psi_left.apply(measured[:, :1])  # builds a sparse matrix's product layout (once per job)

        def transforms():
            psi_right.rows_block(0, block, dtype=torch.float32)
            psi_left.apply(measured)
            psi_right.apply(measured[:, : block // 2])  # the outer half of the measurements

        row[f"{kind}_seconds"] = best(transforms) / block
        if kind != "ssrft_unpadded":  # once per job: drawing the matrices and building what they keep

            def setup():
                left, right = test_matrices(kind, INNER[network], dim)
                right.rows_block(0, 1, dtype=torch.float32)
                left.apply(measured[:, :1])
                right.apply(measured[:, :1])

            row[f"{kind}_setup_seconds"] = best(setup, repeat=1)
        if kind == "ssrft":
            row["transform_length"] = psi_left.length
    row["product_seconds"] = best(lambda: operator.matmat(first_rows.T)) / block
    for kind in (STUDY_KIND, "ssrft", "ssrft_unpadded"):
        row[f"{kind}_over_product"] = row[f"{kind}_seconds"] / row["product_seconds"]
    return row


def main() -> None:
    torch.set_num_threads(1)
    rows = [measure(network) for network in BLOCKS]
    for row in rows:
        print(json.dumps(row), flush=True)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": 1,
                          "load_average_at_end": os.getloadavg()},
              "study_kind": STUDY_KIND, "rows": rows,
              "test_matrix_over_product": {r["network"]: r[f"{STUDY_KIND}_over_product"] for r in rows},
              "ssrft_over_product": {r["network"]: r["ssrft_over_product"] for r in rows}}
    ratios = result["test_matrix_over_product"].values()
    result["targets"] = {"test_matrix_over_product<=1": all(v <= 1 for v in ratios)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
