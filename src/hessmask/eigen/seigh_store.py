"""SEIGH's store half: measurement shards written as they are measured, and the streaming solve.

``measure_shard`` takes measurements [a, b) of the sketch into a shard store (``ShardStore``) with
its outer-sketch columns in row chunks; ``solve_store`` checks that the shards belong to one sketch
and tile [0, t) (``open_shards``), reads the outer sketch across them in row chunks (``ShardRows``)
and writes the eigen store. :func:`store` is the registry's writer: from shard stores measured in
separate jobs, or measuring its one shard itself, bitwise the same store.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
import zarr

from hessmask.eigen import methods
from hessmask.eigen.common import SolverError, Timer
from hessmask.eigen.seigh import (
    Measurements,
    SketchSpec,
    outer_columns,
    seigh_measure,
    seigh_merge,
    seigh_recover,
    tiling_order,
)
from hessmask.eigen.stores import VECTORS_ATTRS, checked_block, finish_store, timings_line, vector_chunks, vector_sink
from hessmask.operators import LinearOperator
from hessmask.progress import Progress
from hessmask.rows import ArrayRows
from hessmask.store import StoreWriter, open_dataset, scratch_folder

log = logging.getLogger(__name__)


def shard_ranges(inner: int, block: int, shards: int) -> list[tuple[int, int]]:
    """Split [0, inner) into ``shards`` contiguous ranges on multiples of ``block``."""
    blocks = -(-inner // block)
    if shards > blocks:
        raise ValueError(f"{shards} shards for only {blocks} measurement blocks")
    bounds = np.linspace(0, blocks, shards + 1).round().astype(int) * block
    bounds[-1] = inner
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def sketch_spec(spec: methods.SeighSpec, dim: int) -> SketchSpec:
    """The kernel's sketch (test matrices of D, s, t, kind and seed) of a ``SeighSpec``."""
    return SketchSpec(dim, spec.outer, spec.inner, spec.seed, spec.kind)


def sketch_identity(spec: methods.SeighSpec, dim: int) -> dict:
    """What makes measurement shards of one sketch mergeable: the test matrices (D, s, t, kind,
    seed), the product blocks and the row chunks of the stored outer columns."""
    return {"dim": dim, "outer": spec.outer, "inner": spec.inner, "kind": spec.kind, "seed": spec.seed,
            "block_size": spec.block_size, "row_chunk": min(dim, spec.row_chunk)}


def measure_shard(operator: LinearOperator, spec: methods.SeighSpec, shard: int, path: str | Path,
                  attrs: Mapping[str, Any]) -> Measurements:
    """SEIGH measurements of one shard, written to ``path`` as they are taken (``ShardStore``).

    Memory O(D x block_size): the outer columns go to the store block by block.
    """
    sketch = sketch_spec(spec, operator.dim)
    start, stop = shard_ranges(sketch.inner, spec.block_size, spec.shards)[shard]
    with ShardStore(path, spec, operator.dim, start, stop, torch.empty(0, dtype=operator.dtype).numpy().dtype) as out:
        progress = Progress(f"shard {shard} [{start}, {stop})", stop - start, unit="products")
        part = seigh_measure(operator, sketch, start, stop, block=spec.block_size, progress=progress.update,
                               outer_sink=out.write_outer)
        out.finish(part, attrs)
    log.info("shard %d: %d products in %.1f s", shard, part.products, part.seconds)
    return part


class ShardStore:
    """The store of one measurement shard, written while it is measured.

    ``outer`` (param, outer_column): the shard's outer-sketch columns H psi_R_i (i < s), in chunks
    of ``row_chunk`` rows by ``block_size`` columns, filled block by block
    (``write_outer``); ``inner`` (inner_row, measurement): Psi_L b_i; ``right`` (inner_row,
    outer_column): Psi_R b_i; attrs ``start``, ``stop``, ``products``, ``seconds`` and ``sketch``
    (``sketch_identity``, checked by the solve). Complete only after ``finish`` and a clean exit.
    """

    def __init__(self, path: str | Path, spec: methods.SeighSpec, dim: int, start: int, stop: int, dtype: Any):
        self.identity = sketch_identity(spec, dim)
        self.start, self.stop = start, stop
        self.writer = StoreWriter(path)
        outer_count = outer_columns(sketch_spec(spec, dim), start, stop)
        self.outer = self.writer.create("outer", ("param", "outer_column"), (dim, outer_count),
                                        (self.identity["row_chunk"], spec.block_size), dtype)

    def write_outer(self, column: int, values: np.ndarray) -> None:
        """Outer-sketch columns ``column..column + m - 1`` (absolute indices), all D rows."""
        self.outer[:, column - self.start: column - self.start + values.shape[1]] = values

    def finish(self, part: Measurements, attrs: Mapping[str, Any]) -> None:
        """The small sketches and the attributes, once every block is measured."""
        ds = xr.Dataset({"inner": (("inner_row", "measurement"), part.inner),
                         "right": (("inner_row", "outer_column"), part.right)},
                        coords={"measurement": np.arange(part.start, part.stop),
                                "outer_column": np.arange(part.start, part.outer_stop)})
        ds["inner"].attrs.update(long_name="inner sketch columns Psi_L H psi_R_i")
        ds["right"].attrs.update(long_name="Psi_R H psi_R_i of the outer columns (the solve's projection)")
        self.writer.write(ds)
        self.outer.attrs.update(long_name="outer-sketch columns H psi_R_i, i < s")
        self.writer.attrs.update({**attrs, "start": part.start, "stop": part.stop, "products": part.products,
                                  "seconds": part.seconds, "sketch": json.dumps(self.identity, sort_keys=True)})

    def __enter__(self) -> "ShardStore":
        return self

    def __exit__(self, *exc) -> None:
        self.writer.__exit__(*exc)


class ShardRows:
    """The outer sketch Y read in row chunks across the shard stores that hold its columns.

    Every chunk read is checked: a NaN is a chunk that was never written (a truncated store).
    """

    def __init__(self, paths: Sequence[str | Path], spec: SketchSpec):
        self.paths = [str(p) for p in paths]
        self.arrays = [zarr.open_array(str(Path(p, "outer")), mode="r") for p in self.paths]
        self.dim, self.width = spec.dim, int(sum(a.shape[1] for a in self.arrays))
        for path, array in zip(self.paths, self.arrays):
            if array.shape[0] != spec.dim:
                raise SolverError(f"shard store {path} holds columns of length {array.shape[0]}, "
                                    f"the operator has D = {spec.dim}")
        #: the precision the outer columns were measured in (the operator's products)
        self.dtype = self.arrays[0].dtype if self.arrays else np.float64
        self.arrays = [(p, a) for p, a in zip(self.paths, self.arrays) if a.shape[1]]

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.concatenate([
            checked_block(array, slice(start, stop), f"shard store {path}",
                           f"rows [{start}, {stop}) of the outer sketch", f"outer-sketch rows in [{start}, {stop})",
                           "the shard")
            for path, array in self.arrays], axis=1)


def open_shards(paths: Sequence[str | Path], spec: methods.SeighSpec,
                dim: int) -> tuple[np.ndarray, np.ndarray, list[Measurements], list]:
    """The small parts of the shards (Z, Psi_R Y) after checking that each belongs to this sketch
    and that together they tile [0, t); returns (inner, right, the shards' measurement records,
    their paths in column order)."""
    sketch, identity = sketch_spec(spec, dim), sketch_identity(spec, dim)
    stores = []
    for path in paths:
        try:  # the small sketches only: the outer columns are read in row chunks by ShardRows
            store = open_dataset(path, load=False)
            store = store.assign(inner=store["inner"].load(), right=store["right"].load())
        except Exception as err:  # missing, truncated or failing its checksums
            raise SolverError(f"shard store {path} cannot be read ({type(err).__name__}: {err}); "
                                "delete it and rerun the shard") from None
        found = json.loads(store.attrs.get("sketch", "{}"))
        if found != identity:
            diff = {k: (found.get(k), v) for k, v in identity.items() if found.get(k) != v}
            raise SolverError(f"shard store {path} belongs to another sketch (found vs expected: {diff}); "
                                "delete it and rerun the shard")
        stores.append(store)
    parts = [Measurements(int(s.attrs["start"]), int(s.attrs["stop"]), s["inner"].values, s["right"].values,
                            None, int(s.attrs["products"]), float(s.attrs["seconds"])) for s in stores]
    for part, path in zip(parts, paths):
        if part.inner.shape != (sketch.inner, part.stop - part.start):
            raise SolverError(f"shard store {path} is truncated: inner sketch of shape {part.inner.shape}")
    inner, right = seigh_merge(parts, sketch, [str(p) for p in paths])
    return inner, right, parts, [paths[i] for i in tiling_order(parts, sketch)]


def solve_store(operator: LinearOperator, spec: methods.SeighSpec, shard_paths: Sequence[str | Path], seed: int,
                path: str | Path, attrs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, float]]:
    """Merge the shards and recover the top eigenpairs into the eigen store at ``path``,
    streaming over row chunks (memory O(row_chunk x s + t^2)); residual norms and the
    a-posteriori error as configured. Returns the store's small variables and the wall time per
    phase (kept out of the store, so that two runs give identical stores)."""
    sketch = sketch_spec(spec, operator.dim)
    inner, right, parts, ordered = open_shards(shard_paths, spec, operator.dim)
    rows = ShardRows(ordered, sketch)
    products = int(sum(p.products for p in parts))
    timer = Timer()
    timer.timings["measure"] = float(sum(p.seconds for p in parts))
    chunks = vector_chunks(operator.dim, spec)
    with StoreWriter(path) as out:
        state: dict[str, Any] = {}
        sink = vector_sink(out, operator.dim, chunks, state)
        solution = seigh_recover(rows, inner, right, sketch, None, row_chunk=spec.row_chunk, sink=sink, timer=timer,
                                 device=spec.device, precision=rows.dtype)
        ds = finish_store(operator, solution.eigenvalues, ArrayRows(state["eigenvectors"]), "seigh", products, timer,
                          spec, seed, attrs)
        ds.attrs.update(rank=solution.rank, condition=solution.condition,
                        reorthogonalized=int(solution.reorthogonalized),
                        orthogonality_error=solution.orthogonality_error)
        out.write(ds)
        state["eigenvectors"].attrs.update(VECTORS_ATTRS)
    log.info("solve: rank %d of %d, condition %.2e, orthogonality error %.1e, timings %s", solution.rank, sketch.outer,
             solution.condition, solution.orthogonality_error, timings_line(timer.timings))
    return ds, timer.timings


def store(operator: LinearOperator, spec: methods.SeighSpec, step: int, parts: Sequence[str | Path],
          path: str | Path, attrs: Mapping[str, Any]) -> dict[str, float]:
    """The registry's writer of ``seigh``: the eigen store at ``path`` from the shard stores
    ``parts`` (measured by separate jobs), or, with no parts (``shards`` = 1), from the one shard it
    measures itself into a scratch folder beside ``path``: the same calls, bitwise the same store.
    The a-posteriori test vectors are seeded by ``seed + step``. Returns the wall time per phase."""
    seed = methods.record_seed(spec, step)
    if parts:
        return solve_store(operator, spec, parts, seed, path, attrs)[1]
    if spec.shards != 1:
        raise SolverError(f"SEIGH in {spec.shards} shards needs its {spec.shards} shard stores, got none")
    out = Path(path)
    with scratch_folder(out.with_name(f"{out.name}.shard")) as scratch:
        shard = scratch / "shard=0.zarr"
        measure_shard(operator, spec, 0, shard, attrs)
        return solve_store(operator, spec, [shard], seed, path, attrs)[1]
