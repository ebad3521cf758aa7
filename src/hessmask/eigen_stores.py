"""The eigen stage's jobs: curvature operators of checkpoints and the eigen stores they fill.

Each function takes plain values (config dicts, paths) and writes its store itself, streaming and
in parts (docs/science.md, "SEIGH"). Nothing here knows about Snakemake.

- ``hessian_operator``: the curvature operator of a checkpoint over a class-balanced subset.
- ``exact_store``: the exact eigen store (eigenvalues, eigenvectors float32 (param, eigenpair)).
- ``measure_shard`` / ``ShardStore``: one SEIGH measurement shard, written as it is measured.
- ``open_shards`` / ``ShardRows``: the shards of one step checked against each other and read as
  one row source.
- ``solve_store``: merged shards -> the SEIGH eigen store, streaming over row chunks, with
  residuals, the a-posteriori error and the measured orthogonality error.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
import zarr

from hessmask import eigen as E
from hessmask.curvature import OPERATORS, CurvatureOperator
from hessmask.data import class_balanced_indices
from hessmask.eigen_methods import METHODS  # noqa: F401 (re-exported)
from hessmask.jobs import Progress
from hessmask.store import StoreWriter, open_dataset, write_dataset
from hessmask.training import Checkpoint

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float64": torch.float64}



def hessian_operator(checkpoint: Checkpoint, data: Any, split: str, samples: int,
                     eigen: Mapping[str, Any]) -> CurvatureOperator:
    """The curvature of the mean loss over the class-balanced ``samples`` of ``split``."""
    idx = class_balanced_indices(data.labels(split), samples, data.num_classes)
    x, y = data.batch(split, idx)
    model = checkpoint.model(eigen["device"])
    return OPERATORS[eigen["curvature"]](model, x, y, dtype=DTYPES[eigen["dtype"]], device=eigen["device"],
                                         block_size=eigen["block_size"], data_chunk=eigen["data_chunk"])


def _eigen_dataset(result: E.EigenResult, settings: Mapping[str, Any]) -> xr.Dataset:
    """The small variables of an eigen store (everything but the eigenvectors)."""
    ds = xr.Dataset({"eigenvalues": (("eigenpair",), result.eigenvalues.astype(np.float64))},
                    coords={"eigenpair": np.arange(result.k)})
    ds["eigenvalues"].attrs.update(long_name="eigenvalues by descending |lambda|", units="nats / parameter^2")
    if result.residuals is not None:
        ds["residual_norm"] = (("residual_pair",), result.residuals)
        ds["residual_norm"].attrs.update(long_name="||H u - lambda u|| of the leading pairs",
                                         units="nats / parameter^2")
    if "spectrum" in result.extra:
        ds["spectrum"] = (("spectrum_index",), result.extra["spectrum"])
        ds["spectrum"].attrs.update(long_name="all D eigenvalues, descending (exact solve only)")
    ds.attrs.update(method=result.method, products=int(result.products),
                    settings=json.dumps(settings, sort_keys=True, default=str))
    return ds


def vector_chunks(dim: int, eigen: Mapping[str, Any]) -> tuple[int, int]:
    """zarr chunks of the (param, eigenpair) eigenvectors: ``eigen.row_chunk`` rows by
    ``eigen.vector_chunk`` eigenvectors, so that the top few eigenvectors read a small part."""
    return (min(dim, eigen["row_chunk"]), eigen["vector_chunk"])


def _vectors_attrs() -> dict:
    return {"long_name": "unit eigenvectors (columns), same order as eigenvalues"}


def exact_store(operator: CurvatureOperator, k: int, eigen: Mapping[str, Any], path: str | Path,
                attrs: Mapping[str, Any]) -> xr.Dataset:
    """Exact top-k (dense float64 eigh of the matrix from D products), written to ``path``."""
    result = E.exact(operator, k, block=eigen["block_size"], residual_pairs=eigen["residual_pairs"])
    ds = _eigen_dataset(result, {"method": "exact", "k": k, **eigen})
    ds["eigenvectors"] = (("param", "eigenpair"), result.eigenvectors.astype(np.float32), _vectors_attrs())
    ds.attrs.update(attrs)
    write_dataset(ds, path, encoding={"eigenvectors": {"chunks": vector_chunks(operator.dim, eigen)}})
    log.info("exact: %d eigenpairs, timings %s", k, json.dumps({n: round(v, 2) for n, v in result.timings.items()}))
    return ds


def shard_ranges(inner: int, block: int, shards: int) -> list[tuple[int, int]]:
    """Split [0, inner) into ``shards`` contiguous ranges on multiples of ``block``."""
    blocks = -(-inner // block)
    if shards > blocks:
        raise ValueError(f"{shards} shards for only {blocks} measurement blocks")
    bounds = np.linspace(0, blocks, shards + 1).round().astype(int) * block
    bounds[-1] = inner
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def sketch_spec(eigen: Mapping[str, Any], dim: int) -> E.SketchSpec:
    outer = eigen["sketch"]["outer"]
    inner = eigen["sketch"]["inner"] or 2 * outer
    return E.SketchSpec(dim, outer, inner, eigen["sketch"]["seed"], eigen["sketch"]["kind"])


def sketch_identity(eigen: Mapping[str, Any], dim: int) -> dict:
    """What makes measurement shards of one sketch mergeable: the test matrices (D, s, t, kind,
    seed), the product blocks and the row chunks of the stored outer columns."""
    spec = sketch_spec(eigen, dim)
    return {"dim": dim, "outer": spec.outer, "inner": spec.inner, "kind": spec.kind, "seed": spec.seed,
            "block_size": eigen["block_size"], "row_chunk": min(dim, eigen["row_chunk"])}


def measure_shard(operator: CurvatureOperator, eigen: Mapping[str, Any], shard: int, path: str | Path,
                  attrs: Mapping[str, Any]) -> E.Measurements:
    """SEIGH measurements of one shard, written to ``path`` as they are taken (``ShardStore``).

    Memory O(D x block_size): the outer columns go to the store block by block.
    """
    spec = sketch_spec(eigen, operator.dim)
    start, stop = shard_ranges(spec.inner, eigen["block_size"], eigen["sketch"]["shards"])[shard]
    with ShardStore(path, eigen, operator.dim, start, stop, torch.empty(0, dtype=operator.dtype).numpy().dtype) as out:
        progress = Progress(f"shard {shard} [{start}, {stop})", stop - start, unit="products")
        part = E.seigh_measure(operator, spec, start, stop, block=eigen["block_size"], progress=progress.update,
                               outer_sink=out.write_outer)
        out.finish(part, attrs)
    log.info("shard %d: %d products in %.1f s", shard, part.products, part.seconds)
    return part


class ShardStore:
    """The store of one measurement shard, written while it is measured.

    ``outer`` (param, outer_column): the shard's outer-sketch columns H psi_R_i (i < s), in chunks
    of ``eigen.row_chunk`` rows by ``eigen.block_size`` columns, filled block by block
    (``write_outer``); ``inner`` (inner_row, measurement): Psi_L b_i; ``right`` (inner_row,
    outer_column): Psi_R b_i; attrs ``start``, ``stop``, ``products``, ``seconds`` and ``sketch``
    (``sketch_identity``, checked by the solve). Complete only after ``finish`` and a clean exit.
    """

    def __init__(self, path: str | Path, eigen: Mapping[str, Any], dim: int, start: int, stop: int, dtype: Any):
        self.identity = sketch_identity(eigen, dim)
        self.start, self.stop = start, stop
        self.writer = StoreWriter(path)
        n_outer = E.outer_columns(sketch_spec(eigen, dim), start, stop)
        self.outer = self.writer.create("outer", ("param", "outer_column"), (dim, n_outer),
                                        (self.identity["row_chunk"], eigen["block_size"]), dtype)

    def write_outer(self, column: int, values: np.ndarray) -> None:
        """Outer-sketch columns ``column..column + m - 1`` (absolute indices), all D rows."""
        self.outer[:, column - self.start: column - self.start + values.shape[1]] = values

    def finish(self, part: E.Measurements, attrs: Mapping[str, Any]) -> None:
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

    def __init__(self, paths: Sequence[str | Path], spec: E.SketchSpec):
        self.paths = [str(p) for p in paths]
        self.arrays = [zarr.open_array(str(Path(p, "outer")), mode="r") for p in self.paths]
        self.dim, self.width = spec.dim, int(sum(a.shape[1] for a in self.arrays))
        for path, array in zip(self.paths, self.arrays):
            if array.shape[0] != spec.dim:
                raise E.SolverError(f"shard store {path} holds columns of length {array.shape[0]}, "
                                    f"the operator has D = {spec.dim}")
        self.arrays = [(p, a) for p, a in zip(self.paths, self.arrays) if a.shape[1]]

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.concatenate([
            _checked_block(array, slice(start, stop), f"shard store {path}",
                           f"rows [{start}, {stop}) of the outer sketch", f"outer-sketch rows in [{start}, {stop})",
                           "the shard")
            for path, array in self.arrays], axis=1)


def _checked_block(array: Any, index: Any, store: str, unreadable: str, missing: str, rerun: str) -> np.ndarray:
    """``array[index]`` of a zarr array as float64, stopping with an error that names the store when a
    chunk cannot be read (a checksum mismatch) or holds values never written (NaN: a truncated store);
    ``unreadable`` and ``missing`` say what was read, ``rerun`` which job rewrites the store."""
    try:
        block = np.asarray(array[index], dtype=np.float64)
    except Exception as err:  # a checksum mismatch or an unreadable chunk
        raise E.SolverError(f"{store}: {unreadable} cannot be read ({type(err).__name__}: {err}); "
                            f"delete it and rerun {rerun}") from err
    if not np.isfinite(block).all():
        raise E.SolverError(f"{store} has missing or non-finite {missing}: the store is truncated or corrupt; "
                            f"delete it and rerun {rerun}")
    return block


def open_shards(paths: Sequence[str | Path], eigen: Mapping[str, Any],
                dim: int) -> tuple[np.ndarray, np.ndarray, list[E.Measurements], list]:
    """The small parts of the shards (Z, Psi_R Y) after checking that each belongs to this sketch
    and that together they tile [0, t); returns (inner, right, the shards' measurement records,
    their paths in column order)."""
    spec, identity = sketch_spec(eigen, dim), sketch_identity(eigen, dim)
    stores = []
    for path in paths:
        try:  # the small sketches only: the outer columns are read in row chunks by ShardRows
            store = open_dataset(path, load=False)
            store = store.assign(inner=store["inner"].load(), right=store["right"].load())
        except Exception as err:  # missing, truncated or failing its checksums
            raise E.SolverError(f"shard store {path} cannot be read ({type(err).__name__}: {err}); "
                                "delete it and rerun the shard") from None
        found = json.loads(store.attrs.get("sketch", "{}"))
        if found != identity:
            diff = {k: (found.get(k), v) for k, v in identity.items() if found.get(k) != v}
            raise E.SolverError(f"shard store {path} belongs to another sketch (found vs expected: {diff}); "
                                "delete it and rerun the shard")
        stores.append(store)
    parts = [E.Measurements(int(s.attrs["start"]), int(s.attrs["stop"]), s["inner"].values, s["right"].values,
                            None, int(s.attrs["products"]), float(s.attrs["seconds"])) for s in stores]
    for part, path in zip(parts, paths):
        if part.inner.shape != (spec.inner, part.stop - part.start):
            raise E.SolverError(f"shard store {path} is truncated: inner sketch of shape {part.inner.shape}")
    inner, right = E.seigh_merge(parts, spec, [str(p) for p in paths])
    return inner, right, parts, [paths[i] for i in E.tiling_order(parts, spec)]


def _finish_store(out: StoreWriter, operator: CurvatureOperator, values: np.ndarray, vectors: E.ArrayRows,
                  method: str, products: int, timer: E.Timer, eigen: Mapping[str, Any], seed: int,
                  attrs: Mapping[str, Any]) -> xr.Dataset:
    """The small variables of a streamed eigen store: eigenvalues, residual norms of the leading
    pairs and the a-posteriori error (``eigen.residual_pairs``, ``eigen.aposteriori_samples``,
    extra products measured on ``operator``), with the settings and ``attrs``; the caller adds its
    own diagnostics and writes the Dataset into ``out``."""
    result = E.EigenResult(values, None, method, products, timer.timings)
    if eigen["residual_pairs"]:
        with timer.phase("residuals"):
            result.residuals = E.residual_norms(operator, values, vectors, eigen["residual_pairs"])
    ds = _eigen_dataset(result, {"method": method, **eigen})
    ds.attrs.update(attrs)
    if eigen["aposteriori_samples"]:
        with timer.phase("aposteriori"):
            post = E.aposteriori_error(operator, values, vectors, eigen["aposteriori_samples"], seed,
                                       row_chunk=eigen["row_chunk"])
        bounds = E.aposteriori_bounds(eigen["aposteriori_samples"], 0.5)
        ds.attrs.update(aposteriori=json.dumps({**post, "bounds_eps0.5": bounds}))
    return ds


def _row_sink(out: StoreWriter, name: str, dims: tuple[str, str], dim: int, chunks: tuple[int, int], dtype: Any,
              state: dict) -> Callable[[int, np.ndarray], None]:
    """A row-chunk sink that creates the (D, width) array ``name`` of ``out`` on its first chunk (the
    width is known only then), keeps it as ``state[name]`` and fills it in ``dtype``."""

    def sink(row: int, block: np.ndarray) -> None:
        if name not in state:
            state[name] = out.create(name, dims, (dim, block.shape[1]), chunks, dtype)
        state[name][row: row + block.shape[0]] = block.astype(dtype, copy=False)

    return sink


def _vector_sink(out: StoreWriter, dim: int, chunks: tuple[int, int], state: dict) -> Callable[[int, np.ndarray], None]:
    """The float32 ``eigenvectors`` (param, eigenpair) of an eigen store, written in row chunks."""
    return _row_sink(out, "eigenvectors", ("param", "eigenpair"), dim, chunks, np.float32, state)


def solve_store(operator: CurvatureOperator, shard_paths: Sequence[str | Path], eigen: Mapping[str, Any], seed: int,
                path: str | Path, attrs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, float]]:
    """Merge the shards and recover the top eigenpairs into the eigen store at ``path``,
    streaming over row chunks (memory O(row_chunk x s + t^2)); residual norms and the
    a-posteriori error as configured. Returns the store's small variables and the wall time per
    phase (kept out of the store, so that two runs give identical stores)."""
    spec = sketch_spec(eigen, operator.dim)
    inner, right, parts, ordered = open_shards(shard_paths, eigen, operator.dim)
    rows = ShardRows(ordered, spec)
    products = int(sum(p.products for p in parts))
    timer = E.Timer()
    timer.timings["measure"] = float(sum(p.seconds for p in parts))
    chunks = vector_chunks(operator.dim, eigen)
    with StoreWriter(path) as out:
        state: dict[str, Any] = {}
        sink = _vector_sink(out, operator.dim, chunks, state)
        solution = E.seigh_recover(rows, inner, right, spec, None, row_chunk=eigen["row_chunk"], sink=sink, timer=timer,
                                   device=eigen["device"])
        ds = _finish_store(out, operator, solution.eigenvalues, E.ArrayRows(state["eigenvectors"]), "seigh", products,
                           timer, eigen, seed, attrs)
        ds.attrs.update(rank=solution.rank, condition=solution.condition,
                        reorthogonalized=int(solution.reorthogonalized),
                        orthogonality_error=solution.orthogonality_error)
        out.write(ds)
        state["eigenvectors"].attrs.update(_vectors_attrs())
    log.info("solve: rank %d of %d, condition %.2e, orthogonality error %.1e, timings %s", solution.rank, spec.outer,
             solution.condition, solution.orthogonality_error,
             json.dumps({n: round(v, 2) for n, v in timer.timings.items()}))
    return ds, timer.timings


# ----------------------------------------------------------------------------- metrics


# ----------------------------------------------------------------------------- block Krylov in passes


def krylov_spec(eigen: Mapping[str, Any], dim: int) -> E.KrylovSpec:
    """The block Krylov solve of ``eigen.block_krylov`` (budget null: the sketch's t products)."""
    settings = eigen["block_krylov"]
    budget = settings["budget"] or (eigen["sketch"]["inner"] or 2 * eigen["sketch"]["outer"])
    return E.KrylovSpec(dim, budget, settings["passes"], settings["seed"])


def krylov_identity(eigen: Mapping[str, Any], dim: int) -> dict:
    """What makes the pass stores of one block Krylov solve belong together (checked on reading)."""
    spec = krylov_spec(eigen, dim)
    return {"dim": dim, "budget": spec.budget, "passes": spec.passes, "seed": spec.seed,
            "block_size": eigen["block_size"], "row_chunk": min(dim, eigen["row_chunk"])}


class MatrixRows:
    """A (param, column) matrix of a pass store read in row chunks (``RowSource``) or column
    blocks, checked against the solve it belongs to and, chunk by chunk, for values that cannot
    be read or were never written; ``attrs`` are the store's attributes."""

    def __init__(self, path: str | Path, name: str, identity: Mapping[str, Any], what: str):
        self.path, self.name, self.what = str(path), name, what
        try:
            group = zarr.open_group(self.path, mode="r")
            self.array = group[name]
            self.attrs = dict(group.attrs)
            found = json.loads(self.attrs.get("krylov", "{}"))
        except Exception as err:
            raise E.SolverError(f"{what} store {path} cannot be read ({type(err).__name__}: {err}); "
                                "delete it and rerun its job") from None
        if found != dict(identity):
            diff = {k: (found.get(k), v) for k, v in identity.items() if found.get(k) != v}
            raise E.SolverError(f"{what} store {path} belongs to another block Krylov solve (found vs expected: "
                                f"{diff}); delete it and rerun its job")
        self.dim, self.width = (int(n) for n in self.array.shape)

    def _checked(self, index: Any, where: str) -> np.ndarray:
        return _checked_block(self.array, index, f"{self.what} store {self.path}", f"{where} of the {self.name}",
                              f"values in {where}", "its job")

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._checked(slice(start, stop), f"rows [{start}, {stop})")

    def columns(self, start: int, stop: int) -> np.ndarray:
        return self._checked((slice(None), slice(start, stop)), f"columns [{start}, {stop})")


def _pass_writer(path: str | Path, attrs: Mapping[str, Any], identity: Mapping[str, Any]) -> StoreWriter:
    out = StoreWriter(path)
    out.attrs.update({**attrs, "krylov": json.dumps(dict(identity), sort_keys=True)})
    return out


def krylov_basis_store(eigen: Mapping[str, Any], dim: int, step: int, bases: Sequence[str | Path],
                       images: Sequence[str | Path], path: str | Path, attrs: Mapping[str, Any]) -> int:
    """Q_p of pass p = len(bases): the Gaussian start block (p = 0), or H Q_{p-1} (``images``, its
    shard stores in column order) orthogonalized against Q_0..Q_{p-1} (``bases``); written to
    ``path`` as ``basis`` (param, column) float64 in row chunks. Returns its width r_p (0 when the
    Krylov space is exhausted: later passes then measure nothing)."""
    identity = krylov_identity(eigen, dim)
    spec = krylov_spec(eigen, dim)
    if bases:
        image = E.StackedRows([MatrixRows(p, "image", identity, "block Krylov image") for p in images])
        basis = E.StackedRows([MatrixRows(p, "basis", identity, "block Krylov basis") for p in bases])
        if image.width == 0:  # the previous pass measured nothing
            image = None
    else:
        image, basis = E.StartRows(spec), None
    chunk = identity["row_chunk"]
    with _pass_writer(path, {**attrs, "pass": len(bases)}, identity) as out:
        state: dict[str, Any] = {}
        sink = _row_sink(out, "basis", ("param", "column"), dim, (chunk, eigen["block_size"]), np.float64, state)
        info = {"rank": 0} if image is None else E.krylov_next_basis(image, basis, chunk, sink)
        if "basis" not in state:  # an exhausted space: an empty block
            out.create("basis", ("param", "column"), (dim, 0), (chunk, eigen["block_size"]), "float64")
        out.attrs.update(rank=int(info["rank"]))
    log.info("block Krylov step %d pass %d: basis of %d columns", step, len(bases), info["rank"])
    return int(info["rank"])


def krylov_measure_store(operator: CurvatureOperator, eigen: Mapping[str, Any], basis_path: str | Path, shard: int,
                         path: str | Path, attrs: Mapping[str, Any]) -> int:
    """One shard of the products H Q_p of a pass (columns on multiples of ``eigen.block_size``, so any
    sharding gives bitwise the same columns), written to ``path`` as ``image`` (param, column) in
    the operator's dtype. Returns the products taken."""
    identity = krylov_identity(eigen, operator.dim)
    spec = krylov_spec(eigen, operator.dim)
    basis = MatrixRows(basis_path, "basis", identity, "block Krylov basis")
    start, stop = shard_ranges(spec.block, eigen["block_size"], eigen["block_krylov"]["shards"])[shard]
    start, stop = min(start, basis.width), min(stop, basis.width)
    dtype = torch.empty(0, dtype=operator.dtype).numpy().dtype
    with _pass_writer(path, {**attrs, "start": start, "stop": stop}, identity) as out:
        image = out.create("image", ("param", "column"), (operator.dim, stop - start),
                           (identity["row_chunk"], eigen["block_size"]), dtype)
        progress = Progress(f"block Krylov shard {shard} [{start}, {stop})", stop - start, unit="products")

        def sink(column: int, values: np.ndarray) -> None:
            image[:, column - start: column - start + values.shape[1]] = values

        t0 = time.perf_counter()
        products = E.krylov_measure(operator, basis, start, stop, eigen["block_size"], sink=sink,
                                    progress=progress.update)
        out.attrs.update(products=products, seconds=time.perf_counter() - t0)
    log.info("block Krylov shard %d: %d products", shard, products)
    return products


def krylov_store(operator: CurvatureOperator, eigen: Mapping[str, Any], step: int, scratch: str | Path,
                 path: str | Path, attrs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, float]]:
    """Block Krylov in one process (``block_krylov.shards = 1``): each pass's Q_p and H Q_p as
    :func:`krylov_basis_store` and :func:`krylov_measure_store` write them, into ``scratch`` (an
    existing folder the caller removes), then :func:`krylov_solve_store` with seed
    ``block_krylov.seed + step``: the store the sharded passes give, bitwise. Returns as
    :func:`krylov_solve_store`."""
    krylov = eigen["block_krylov"]
    if krylov["shards"] != 1:
        raise ValueError(f"block Krylov in one process needs eigen.block_krylov.shards = 1, not {krylov['shards']}")
    bases: list[Path] = []
    images: list[list[Path]] = []
    for p in range(krylov["passes"]):
        basis, image = Path(scratch) / f"basis_pass={p}.zarr", Path(scratch) / f"image_pass={p}.zarr"
        krylov_basis_store(eigen, operator.dim, step, bases, images[-1] if images else [], basis, attrs)
        krylov_measure_store(operator, eigen, basis, 0, image, {**attrs, "krylov_pass": p})
        bases.append(basis)
        images.append([image])
    return krylov_solve_store(operator, eigen, bases, images, krylov["seed"] + step, path, attrs)


def krylov_solve_store(operator: CurvatureOperator, eigen: Mapping[str, Any], bases: Sequence[str | Path],
                       images: Sequence[Sequence[str | Path]], seed: int, path: str | Path,
                       attrs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, float]]:
    """Rayleigh-Ritz over every pass (``bases``: Q_p per pass; ``images``: the shard stores of H Q_p
    per pass, in column order) into the eigen store at ``path``: the top k = ``block_krylov.k``
    (null: the sketch's s) Ritz pairs, streaming over row chunks, with residuals and the
    a-posteriori error as for SEIGH. Returns the small variables and the wall time per phase."""
    identity = krylov_identity(eigen, operator.dim)
    basis = E.StackedRows([MatrixRows(p, "basis", identity, "block Krylov basis") for p in bases])
    image_parts = [MatrixRows(p, "image", identity, "block Krylov image") for shards in images for p in shards]
    image = E.StackedRows(image_parts)
    products = sum(int(part.attrs["products"]) for part in image_parts)
    seconds = sum(float(part.attrs["seconds"]) for part in image_parts)
    k = min(eigen["block_krylov"]["k"] or eigen["sketch"]["outer"], basis.width)
    timer = E.Timer()
    timer.timings["measure"] = seconds
    with StoreWriter(path) as out:
        state: dict[str, Any] = {}
        values, _, info = E.krylov_recover(basis, image, k, eigen["row_chunk"],
                                           sink=_vector_sink(out, operator.dim, vector_chunks(operator.dim, eigen),
                                                             state), timer=timer)
        ds = _finish_store(out, operator, values, E.ArrayRows(state["eigenvectors"]), "block_krylov", products, timer,
                           eigen, seed, attrs)
        ds.attrs.update(passes=len(bases), krylov_dimension=info["krylov_dimension"],
                        orthogonality_error=info["orthogonality_error"], budget=krylov_spec(eigen, operator.dim).budget)
        out.write(ds)
        state["eigenvectors"].attrs.update(_vectors_attrs())
    log.info("block Krylov solve: %d Ritz pairs of a %d-dimensional space, timings %s", k, info["krylov_dimension"],
             json.dumps({n: round(v, 2) for n, v in timer.timings.items()}))
    return ds, timer.timings
