"""Block Krylov's store half: the pass stores of the workflow's rounds of jobs, and the solve.

Pass p's basis Q_p (``basis_store``: the Gaussian start block, or the previous pass's products
orthogonalized against the earlier blocks), its products H Q_p in shards (``measure_store``), and
the Rayleigh-Ritz solve over every pass (``solve_store``). :func:`store` is the registry's writer:
from the pass stores of separate jobs, or running every pass itself in a scratch folder, bitwise
the same store.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
import zarr

from hessmask.eigen import methods
from hessmask.eigen.common import SolverError, Timer
from hessmask.eigen.krylov import KrylovSpec, StartRows, krylov_measure, krylov_next_basis, krylov_recover
from hessmask.eigen.seigh_store import shard_ranges
from hessmask.eigen.stores import (
    VECTORS_ATTRS,
    checked_block,
    finish_store,
    row_sink,
    timings_line,
    vector_chunks,
    vector_sink,
)
from hessmask.operators import LinearOperator
from hessmask.progress import Progress
from hessmask.rows import ArrayRows, StackedRows
from hessmask.store import StoreWriter, check_store, scratch_folder

log = logging.getLogger(__name__)


def krylov_spec(spec: methods.BlockKrylovSpec, dim: int) -> KrylovSpec:
    """The kernel's block Krylov solve (D, budget, passes, start seed) of a ``BlockKrylovSpec``."""
    return KrylovSpec(dim, spec.budget, spec.passes, spec.seed)


def krylov_identity(spec: methods.BlockKrylovSpec, dim: int) -> dict:
    """What makes the pass stores of one block Krylov solve belong together (checked on reading)."""
    return {"dim": dim, "budget": spec.budget, "passes": spec.passes, "seed": spec.seed,
            "block_size": spec.block_size, "row_chunk": min(dim, spec.row_chunk)}


class MatrixRows:
    """A (param, column) matrix of a pass store read in row chunks (``RowSource``) or column
    blocks, checked against the solve it belongs to and, chunk by chunk, for values that cannot
    be read or were never written; ``attrs`` are the store's attributes."""

    def __init__(self, path: str | Path, name: str, identity: Mapping[str, Any], what: str):
        self.path, self.name, self.what = str(path), name, what
        check_store(path)  # its files as written (a deleted or resized chunk, altered metadata)
        try:
            group = zarr.open_group(self.path, mode="r")
            self.array = group[name]
            self.attrs = dict(group.attrs)
            found = json.loads(self.attrs.get("krylov", "{}"))
        except Exception as err:
            raise SolverError(f"{what} store {path} cannot be read ({type(err).__name__}: {err}); "
                                "delete it and rerun its job") from None
        if found != dict(identity):
            diff = {k: (found.get(k), v) for k, v in identity.items() if found.get(k) != v}
            raise SolverError(f"{what} store {path} belongs to another block Krylov solve (found vs expected: "
                                f"{diff}); delete it and rerun its job")
        self.dim, self.width = (int(n) for n in self.array.shape)

    def _checked(self, index: Any, where: str) -> np.ndarray:
        return checked_block(self.array, index, f"{self.what} store {self.path}", f"{where} of the {self.name}",
                              f"values in {where}", "its job")

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._checked(slice(start, stop), f"rows [{start}, {stop})")

    def columns(self, start: int, stop: int) -> np.ndarray:
        return self._checked((slice(None), slice(start, stop)), f"columns [{start}, {stop})")


def pass_writer(path: str | Path, attrs: Mapping[str, Any], identity: Mapping[str, Any]) -> StoreWriter:
    out = StoreWriter(path)
    out.attrs.update({**attrs, "krylov": json.dumps(dict(identity), sort_keys=True)})
    return out


def basis_store(spec: methods.BlockKrylovSpec, dim: int, step: int, bases: Sequence[str | Path],
                       images: Sequence[str | Path], path: str | Path, attrs: Mapping[str, Any]) -> int:
    """Q_p of pass p = len(bases): the Gaussian start block (p = 0), or H Q_{p-1} (``images``, its
    shard stores in column order) orthogonalized against Q_0..Q_{p-1} (``bases``); written to
    ``path`` as ``basis`` (param, column) float64 in row chunks. Returns its width r_p (0 when the
    Krylov space is exhausted: later passes then measure nothing)."""
    identity = krylov_identity(spec, dim)
    if bases:
        parts = [MatrixRows(p, "image", identity, "block Krylov image") for p in images]
        image = StackedRows(parts)
        previous = [MatrixRows(p, "basis", identity, "block Krylov basis") for p in bases]
        basis = StackedRows(previous)
        precision = parts[0].array.dtype  # the products' (float32 for the study)
        scale = float(previous[-1].attrs.get("operator_scale", 0.0))  # ||H||_2 as estimated so far
        if image.width == 0:  # the previous pass measured nothing
            image = None
    else:
        image, basis, precision, scale = StartRows(krylov_spec(spec, dim)), None, np.float64, 0.0
    chunk = identity["row_chunk"]
    with pass_writer(path, {**attrs, "pass": len(bases)}, identity) as out:
        state: dict[str, Any] = {}
        sink = row_sink(out, "basis", ("param", "column"), dim, (chunk, spec.block_size), np.float64, state)
        info = ({"rank": 0, "scale": scale} if image is None else
                krylov_next_basis(image, basis, chunk, sink, precision=precision, scale=scale))
        if "basis" not in state:  # an exhausted space: an empty block
            out.create("basis", ("param", "column"), (dim, 0), (chunk, spec.block_size), "float64")
        # the largest ||H q|| of the products so far, carried to the next pass (its drop floor)
        out.attrs.update(rank=int(info["rank"]), operator_scale=float(info["scale"]))
    log.info("block Krylov step %d pass %d: basis of %d columns", step, len(bases), info["rank"])
    return int(info["rank"])


def measure_store(operator: LinearOperator, spec: methods.BlockKrylovSpec, basis_path: str | Path, shard: int,
                  path: str | Path, attrs: Mapping[str, Any]) -> int:
    """One shard of the products H Q_p of a pass (columns on multiples of ``eigen.block_size``, so any
    sharding gives bitwise the same columns), written to ``path`` as ``image`` (param, column) in
    the operator's dtype. Returns the products taken."""
    identity = krylov_identity(spec, operator.dim)
    basis = MatrixRows(basis_path, "basis", identity, "block Krylov basis")
    start, stop = shard_ranges(spec.block, spec.block_size, spec.shards)[shard]
    start, stop = min(start, basis.width), min(stop, basis.width)
    dtype = torch.empty(0, dtype=operator.dtype).numpy().dtype
    with pass_writer(path, {**attrs, "start": start, "stop": stop}, identity) as out:
        image = out.create("image", ("param", "column"), (operator.dim, stop - start),
                           (identity["row_chunk"], spec.block_size), dtype)
        progress = Progress(f"block Krylov shard {shard} [{start}, {stop})", stop - start, unit="products")

        def sink(column: int, values: np.ndarray) -> None:
            image[:, column - start: column - start + values.shape[1]] = values

        t0 = time.perf_counter()
        products = krylov_measure(operator, basis, start, stop, spec.block_size, sink=sink, progress=progress.update)
        out.attrs.update(products=products, seconds=time.perf_counter() - t0)
    log.info("block Krylov shard %d: %d products", shard, products)
    return products


def solve_store(operator: LinearOperator, spec: methods.BlockKrylovSpec, bases: Sequence[str | Path],
                images: Sequence[Sequence[str | Path]], seed: int, path: str | Path,
                attrs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, float]]:
    """Rayleigh-Ritz over every pass (``bases``: Q_p per pass; ``images``: the shard stores of H Q_p
    per pass, in column order) into the eigen store at ``path``: the top ``spec.k`` Ritz pairs,
    streaming over row chunks, with residuals and the a-posteriori error as for SEIGH. Returns the
    small variables and the wall time per phase."""
    identity = krylov_identity(spec, operator.dim)
    basis = StackedRows([MatrixRows(p, "basis", identity, "block Krylov basis") for p in bases])
    image_parts = [MatrixRows(p, "image", identity, "block Krylov image") for shards in images for p in shards]
    image = StackedRows(image_parts)
    products = sum(int(part.attrs["products"]) for part in image_parts)
    seconds = sum(float(part.attrs["seconds"]) for part in image_parts)
    k = min(spec.k, basis.width)
    timer = Timer()
    timer.timings["measure"] = seconds
    with StoreWriter(path) as out:
        state: dict[str, Any] = {}
        sink = vector_sink(out, operator.dim, vector_chunks(operator.dim, spec), state)
        values, _, info = krylov_recover(basis, image, k, spec.row_chunk, sink=sink, timer=timer)
        ds = finish_store(operator, values, ArrayRows(state["eigenvectors"]), "block_krylov", products, timer, spec,
                          seed, attrs)
        ds.attrs.update(passes=len(bases), krylov_dimension=info["krylov_dimension"],
                        orthogonality_error=info["orthogonality_error"], budget=spec.budget)
        out.write(ds)
        state["eigenvectors"].attrs.update(VECTORS_ATTRS)
    log.info("block Krylov solve: %d Ritz pairs of a %d-dimensional space, timings %s", k, info["krylov_dimension"],
             timings_line(timer.timings))
    return ds, timer.timings


def split_parts(spec: methods.BlockKrylovSpec, parts: Sequence[str | Path]) -> tuple[list, list[list]]:
    """(bases, images per pass) of the part stores in the order of ``BlockKrylovSpec.parts``."""
    if len(parts) != spec.passes * (1 + spec.shards):
        raise SolverError(f"block Krylov in {spec.passes} passes of {spec.shards} shards needs "
                          f"{spec.passes * (1 + spec.shards)} pass stores, got {len(parts)}")
    bases, flat = list(parts[: spec.passes]), list(parts[spec.passes:])
    return bases, [flat[p * spec.shards: (p + 1) * spec.shards] for p in range(spec.passes)]


def store(operator: LinearOperator, spec: methods.BlockKrylovSpec, step: int, parts: Sequence[str | Path],
          path: str | Path, attrs: Mapping[str, Any]) -> dict[str, float]:
    """The registry's writer of ``block_krylov``: the eigen store at ``path`` from the pass stores
    ``parts`` (bases, then each pass's product shards: ``BlockKrylovSpec.parts``), or, with no parts
    (``shards`` = 1), from every pass's basis and products written by :func:`basis_store` and
    :func:`measure_store` into a scratch folder beside ``path``: bitwise the store of the sharded
    passes. The a-posteriori test vectors are seeded by ``seed + step``."""
    seed = methods.record_seed(spec, step)
    if parts:
        bases, images = split_parts(spec, parts)
        return solve_store(operator, spec, bases, images, seed, path, attrs)[1]
    if spec.shards != 1:
        raise SolverError(f"block Krylov in {spec.shards} shards per pass needs its pass stores, got none")
    out = Path(path)
    with scratch_folder(out.with_name(f"{out.name}.passes")) as scratch:
        bases: list[Path] = []
        images: list[list[Path]] = []
        for p in range(spec.passes):
            basis, image = scratch / f"basis_pass={p}.zarr", scratch / f"image_pass={p}.zarr"
            basis_store(spec, operator.dim, step, bases, images[-1] if images else [], basis, attrs)
            measure_store(operator, spec, basis, 0, image, {**attrs, "krylov_pass": p})
            bases.append(basis)
            images.append([image])
        return solve_store(operator, spec, bases, images, seed, path, attrs)[1]
