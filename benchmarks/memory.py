"""Peak memory of the eigen-stage jobs at the papers' D: measured, fitted, projected.

Writes ``results/benchmarks/memory.json``. Every number is a peak resident set size (RSS) of a
fresh process running the library function of one workflow job (``os.wait4``), on the real
network at its real D (random initialization, 2 synthetic Hessian samples of the real input
shape; memory does not depend on how many samples a product sums over beyond one data chunk):

- ``shard``: one measurement shard (``hessmask.eigen.seigh_store.measure_shard``) of one block of products with the
  block size of the paper overlay; outer columns stream into row chunks, so the peak does not
  depend on s.
- ``solve``: the streaming solve (``hessmask.eigen.seigh_store.solve_store``) over shard stores of the real D holding
  s random outer columns (written by ``hessmask.eigen.seigh_store.ShardStore``, as a shard job writes them), with the
  overlay's residual pairs and a-posteriori products on the real network.
- ``metrics``: ``metrics.step_metrics`` on that eigen store (20 random masks, the overlay's rho).

For 3c3d (D = 895,210), All-CNN-C (D = 1,387,108) and ResNet-18 (D = 11,689,512), s in {64, 128, 256}
(3c3d's solve and metrics also at s in {512, 1000}) at the default row
chunk c = 65536, and the solve also at c in {16384, 262144} for s = 128. A least-squares model
RSS = a_network + b s + g c s (MB) per job (b, g shared by the networks, non-negative) is
projected to the paper's s (1000 and 1500).
With ``--paper-run`` it also runs 3c3d at the paper's sketch (outer 1000, inner 2000, 4 shards)
through the Snakemake DAG on this machine and records each job's max RSS and wall time from
Snakemake's benchmark records.

Run: ``python benchmarks/memory.py [--quick] [--paper-run] [--networks ...] [--merge]``
(``make bench-memory``: all networks and the paper run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "memory.json"
NETWORKS = {  # the paper overlays' eigen settings
    "3c3d": {"overlay": "cifar10_3c3d", "paper_outer": 1000, "block_size": 100, "residual_pairs": 20,
             "aposteriori_samples": 20, "rho": [0.00001, 0.00005, 0.0001, 0.001, 0.01]},
    "allcnnc": {"overlay": "cifar100_allcnnc", "paper_outer": 1000, "block_size": 100, "residual_pairs": 20,
                "aposteriori_samples": 20, "rho": [0.00001, 0.00005, 0.0001, 0.001, 0.01]},
    "resnet18": {"overlay": "imagenet_resnet18", "paper_outer": 1500, "block_size": 10, "residual_pairs": 10,
                 "aposteriori_samples": 10, "rho": [0.000001, 0.000005, 0.00001, 0.0001, 0.001]},
}
DEFAULT_CHUNK = 65536


def eigen_settings(network: str, outer: int, row_chunk: int):
    """The SEIGH spec of a job at sketch size s = ``outer`` (one shard per block of products)."""
    from hessmask.eigen.methods import SeighSpec, default_inner

    net = NETWORKS[network]
    block, inner = net["block_size"], default_inner(outer)
    return SeighSpec(curvature="hessian", dtype="float32", device="cpu", block_size=block, data_chunk=None,
                     residual_pairs=net["residual_pairs"], row_chunk=row_chunk, vector_chunk=64,
                     aposteriori_samples=net["aposteriori_samples"], outer=outer, inner=inner, kind="sparse_sign",
                     seed=12345, shards=-(-inner // block))


def network_operator_of(network: str, spec):
    """The network's Hessian operator in the spec's product blocks (``timing.network_operator``)."""
    from timing import network_operator

    return network_operator(network, spec.block_size)


def fabricate_shards(network: str, spec, folder: Path):
    """Shard stores of the real D holding random outer columns, written as a shard job writes them."""
    from dataclasses import replace

    from hessmask.config import MODEL_DIMS
    from hessmask.eigen.seigh import Measurements, outer_columns
    from hessmask.eigen.seigh_store import ShardStore, shard_ranges, sketch_spec

    dim = MODEL_DIMS[network]
    sketch = sketch_spec(spec, dim)
    rng = np.random.default_rng(0)
    # few shards of many blocks: the solve reads the same D x s columns whatever the split
    ranges = shard_ranges(sketch.inner, spec.block_size, 2)
    spec = replace(spec, shards=2)
    paths = []
    for shard, (start, stop) in enumerate(ranges):
        path = folder / f"shard={shard}.zarr"
        with ShardStore(path, spec, dim, start, stop, np.float32) as out:
            outer_count = outer_columns(sketch, start, stop)
            for lo in range(0, outer_count, spec.block_size):
                hi = min(outer_count, lo + spec.block_size)
                out.write_outer(start + lo, rng.standard_normal((dim, hi - lo), dtype=np.float32))
            part = Measurements(start, stop, rng.standard_normal((sketch.inner, stop - start)),
                                rng.standard_normal((sketch.inner, outer_count)), None, stop - start, 0.0)
            out.finish(part, {})
        paths.append(path)
    return paths, spec


def worker(job: str, network: str, outer: int, row_chunk: int, folder: Path) -> None:
    """One job in this process (its peak RSS is what the parent measures)."""
    import torch

    from hessmask import metrics
    from hessmask.config import MODEL_DIMS
    from hessmask.eigen.methods import SeighSpec
    from hessmask.eigen.seigh_store import measure_shard, solve_store
    from hessmask.store import open_dataset

    torch.set_num_threads(1)
    spec = eigen_settings(network, outer, row_chunk)
    if job == "shard":
        measure_shard(network_operator_of(network, spec), spec, 0, folder / "shard.zarr", {})
    elif job == "solve":
        paths = json.loads((folder / "shards.json").read_text())
        spec = SeighSpec(**json.loads((folder / "eigen.json").read_text()))
        solve_store(network_operator_of(network, spec), spec, paths, 1, folder / "eigen.zarr", {})
    elif job == "metrics":
        theta = np.random.default_rng(1).standard_normal(MODEL_DIMS[network]).astype(np.float32)
        stores = {"seigh": open_dataset(folder / "eigen.zarr", load=False)}
        metrics.step_metrics(theta, stores, NETWORKS[network]["rho"], 20, 0)
    elif job == "fabricate":
        paths, spec = fabricate_shards(network, spec, folder)
        (folder / "shards.json").write_text(json.dumps([str(p) for p in paths]))
        (folder / "eigen.json").write_text(json.dumps(spec.params()))


def peak_rss(job: str, network: str, outer: int, row_chunk: int, folder: Path) -> dict:
    """Run ``job`` in a fresh process; its peak RSS (MB) and wall time (s)."""
    cmd = [sys.executable, __file__, "--worker", job, "--network", network, "--outer", str(outer),
           "--row-chunk", str(row_chunk), "--folder", str(folder)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"benchmark job {job} {network} s={outer} failed")
    return {"job": job, "network": network, "outer": outer, "row_chunk": row_chunk,
            "peak_rss_mb": usage.ru_maxrss / 1024, "seconds": round(seconds, 2)}


def fit(rows: list[dict]) -> dict:
    """Non-negative least squares over every network of one job: RSS = a_network + b s + g c s (MB).

    The intercept is the network's (model, activations, D-sized vectors); the s and c s terms
    are the code's (the t x s sketches, the c x s row chunk and its QR), the same for every
    network, so they are fitted jointly: at s <= 256 a single network's D-sized terms and their
    noise (a few hundred MB at ResNet-18 scale) would hide them. Memory does not shrink as s
    grows, so b, g >= 0.
    """
    from scipy.optimize import nnls

    networks = sorted({r["network"] for r in rows})
    s = np.array([r["outer"] for r in rows], dtype=float)
    c = np.array([r["row_chunk"] for r in rows], dtype=float)
    y = np.array([r["peak_rss_mb"] for r in rows])
    columns = [np.array([r["network"] == n for r in rows], dtype=float) for n in networks] + [s]
    sweep = len(set(c)) > 1
    if sweep:  # without a row-chunk sweep the c s term is folded into b
        columns.append(c * s / 1e6)
    design = np.stack(columns, axis=1)
    coef, _ = nnls(design, y)
    residual = float(np.max(np.abs(design @ coef - y)))
    return {"a_mb": {n: float(v) for n, v in zip(networks, coef[: len(networks)])},
            "b_mb_per_column": float(coef[len(networks)]),
            "g_mb_per_million_chunk_columns": float(coef[len(networks) + 1]) if sweep else 0.0,
            "max_abs_residual_mb": residual}


def predict(model: dict, network: str, outer: int, row_chunk: int = DEFAULT_CHUNK) -> float:
    return (model["a_mb"][network] + model["b_mb_per_column"] * outer
            + model["g_mb_per_million_chunk_columns"] * row_chunk * outer / 1e6)


def summarize(rows: list[dict], previous_paper_run: dict | None = None) -> dict:
    """Models, projections to the papers' s and the 24 GB checks from the measured rows."""
    measured = [n for n in NETWORKS if any(r["network"] == n for r in rows)]
    models = {job: fit([r for r in rows if r["job"] == job]) for job in ("shard", "solve", "metrics")}
    projections = {f"{network}/{job}": {"outer": NETWORKS[network]["paper_outer"],
                                        "projected_peak_rss_mb": round(predict(models[job], network,
                                                                               NETWORKS[network]["paper_outer"]), 1)}
                   for network in measured for job in models}
    result = {"measured": rows, "models": models, "projections_at_paper_s": projections}
    if "resnet18" in measured:
        result["resnet18_shard_and_solve_within_24gb"] = all(
            projections[f"resnet18/{job}"]["projected_peak_rss_mb"] <= 24_000 for job in ("shard", "solve"))
    if previous_paper_run:
        result["paper_sketch_3c3d"] = previous_paper_run
    if "paper_sketch_3c3d" in result and "3c3d" in measured:
        run = result["paper_sketch_3c3d"]
        result["paper_sketch_3c3d_within_24gb"] = max(run["peak_rss_mb"].values()) <= 24_000
        # the model against a job it never saw (note: the run's shards use block_size 50, not 100)
        result["paper_sketch_3c3d_model_check"] = {
            job: {"measured_mb": run["peak_rss_mb"][rule], "model_mb": round(predict(models[job], "3c3d", 1000), 1)}
            for job, rule in (("shard", "eigen_measure"), ("solve", "eigen_solve"), ("metrics", "step_metrics"))}
    return result


def paper_run(folder: Path) -> dict:
    """3c3d at the paper's sketch (outer 1000, inner 2000, 4 shards) through the Snakemake DAG."""
    overlay = folder / "paper_sketch_3c3d.yaml"
    overlay.write_text(
        "synthetic: {enabled: false}\ndof_quadratic: {enabled: false}\nexperiments:\n"
        "  mlp_mnist5k: {enabled: false}\n  paper_sketch_3c3d:\n    model: 3c3d\n    dataset: synthetic\n"
        "    synthetic_samples: 16\n    record_steps: [0]\n"
        "    train: {steps: 0, batch_size: 8, seed: 12345, eval_batch_size: 16}\n"
        "    hessian: {train_samples: 0, test_samples: 2}\n    masks: {rho: [0.00001, 0.0001, 0.001]}\n"
        "    eigen: {exact: false, block_size: 50, residual_pairs: 20, aposteriori_samples: 20,\n"
        "            sketch: {outer: 1000, inner: 2000, kind: sparse_sign, seed: 12345, shards: 4}}\n"
        "    metrics: {summary_rho: 0.001}\n    resources: {eigen_mem_mb: 20000}\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(folder),
                    "--cores", "2", "--configfile", str(overlay)], check=True, cwd=folder)
    wall = time.perf_counter() - start
    jobs = []
    for tsv in sorted((folder / "results" / "benchmarks" / "rules").rglob("*.tsv")):
        header, values = tsv.read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t")))
        jobs.append({"job": str(tsv.relative_to(folder / "results" / "benchmarks" / "rules").with_suffix("")),
                     "seconds": float(row["s"]), "max_rss_mb": float(row["max_rss"])})
    return {"wall_seconds": round(wall, 1), "jobs": jobs,
            "peak_rss_mb": {kind: max(j["max_rss_mb"] for j in jobs if j["job"].startswith(kind))
                            for kind in ("eigen_measure", "eigen_solve", "step_metrics", "metrics_aggregate")}}


#: s at which only the solve and metrics jobs are measured (a shard's memory does not depend on
#: s, which the s <= 256 rows show): 3c3d up to the paper's s, where the s-terms dominate
SOLVE_ONLY_SIZES = {"3c3d": [512, 1000]}


def measure(networks: list[str], sizes: list[int], tmp: Path) -> list[dict]:
    """Peak RSS of the shard, solve and metrics jobs for each network and s (and row chunks)."""
    rows = []
    for network in networks:
        for outer in sizes + [n for n in SOLVE_ONLY_SIZES.get(network, []) if n not in sizes]:
            chunks = [DEFAULT_CHUNK] + ([16384, 262144] if outer == 128 else [])
            for row_chunk in chunks:
                folder = Path(tmp, f"{network}-{outer}-{row_chunk}")
                folder.mkdir()
                if row_chunk == DEFAULT_CHUNK and outer in sizes:
                    rows.append(peak_rss("shard", network, outer, row_chunk, folder))
                peak_rss("fabricate", network, outer, row_chunk, folder)
                rows.append(peak_rss("solve", network, outer, row_chunk, folder))
                if row_chunk == DEFAULT_CHUNK:
                    rows.append(peak_rss("metrics", network, outer, row_chunk, folder))
                shutil.rmtree(folder)
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3c3d only, s in {64, 128}")
    parser.add_argument("--paper-run", action="store_true", help="also run 3c3d at outer 1000 / inner 2000 end to end")
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), help="measure only these networks")
    parser.add_argument("--sizes", nargs="+", type=int, help="outer sizes s to measure (default 64 128 256)")
    parser.add_argument("--refit", action="store_true",
                        help="measure nothing: refit the models of the existing memory.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the measurements (and paper run) of the existing memory.json for what is not rerun")
    parser.add_argument("--worker")
    parser.add_argument("--network")
    parser.add_argument("--outer", type=int)
    parser.add_argument("--row-chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.network, args.outer, args.row_chunk, args.folder)
        return
    networks = args.networks or (["3c3d"] if args.quick else list(NETWORKS))
    sizes = args.sizes or ([64, 128] if args.quick else [64, 128, 256])
    previous = json.loads(OUT.read_text()) if (args.merge or args.refit) and OUT.exists() else {}
    if args.refit:
        networks = []
    with tempfile.TemporaryDirectory(prefix="hessmask-memory-", dir=REPO / "results") as tmp:
        new = [] if args.refit else measure(networks, sizes, tmp)
        fresh = {(r["job"], r["network"], r["outer"], r["row_chunk"]) for r in new}
        rows = [r for r in previous.get("measured", [])
                if (r["job"], r["network"], r["outer"], r["row_chunk"]) not in fresh] + new
        paper = previous.get("paper_sketch_3c3d")
        if args.paper_run:
            folder = Path(tmp, "paper_run")
            folder.mkdir()
            paper = paper_run(folder)
        result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                              "load_average_at_end": os.getloadavg()}, **summarize(rows, paper)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
