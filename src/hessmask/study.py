"""The mask-eigenspace study, one function per workflow job (seed 000 section 5; TMLR paper).

Each function takes plain values (config dicts, paths, Datasets); the eigen jobs write their
stores themselves (streaming, in parts), the others return a Dataset the workflow script writes.
Nothing here knows about Snakemake.

- ``hessian_operator``: the curvature operator of a checkpoint over a class-balanced subset.
- ``exact_store``: the exact eigen store (eigenvalues, eigenvectors float32 (param, eigenpair)).
- ``measure_shard`` / ``ShardStore``: one SEIGH measurement shard, written as it is measured.
- ``solve_store``: merged shards -> the SEIGH eigen store, streaming over row chunks, with
  residuals, the a-posteriori error and the measured orthogonality error.
- ``step_metrics``: overlap of the step's magnitude masks with each method's top-k eigenspace for
  every k, random-mask baselines, the seven Grassmannian metrics at each rho, spectrum statistics.
- ``combine_metrics`` and ``eigenspace_pairs``: the per-experiment ``metrics.zarr``.
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

from hessmask import eigen as E
from hessmask.curvature import OPERATORS, CurvatureOperator
from hessmask.data import class_balanced_indices
from hessmask.grassmann import METRICS, mask_matrix_angles, metrics_from_angles
from hessmask.jobs import Progress
from hessmask.masks import boundary_ties, energy_concentration, k_of_rho, magnitude_order
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
        parts = []
        for path, array in self.arrays:
            try:
                block = np.asarray(array[start:stop], dtype=np.float64)
            except Exception as err:  # a checksum mismatch or an unreadable chunk
                raise E.SolverError(f"shard store {path}: rows [{start}, {stop}) of the outer sketch cannot be "
                                    f"read ({type(err).__name__}: {err}); delete it and rerun the shard") from err
            if not np.isfinite(block).all():
                raise E.SolverError(f"shard store {path} has missing or non-finite outer-sketch rows in "
                                    f"[{start}, {stop}): the store is truncated or corrupt; "
                                    "delete it and rerun the shard")
            parts.append(block)
        return np.concatenate(parts, axis=1)


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

        def sink(row: int, block: np.ndarray) -> None:
            if "vectors" not in state:
                state["vectors"] = out.create("eigenvectors", ("param", "eigenpair"), (operator.dim, block.shape[1]),
                                              chunks, "float32")
            state["vectors"][row: row + block.shape[0]] = block.astype(np.float32)

        solution = E.seigh_recover(rows, inner, right, spec, None, row_chunk=eigen["row_chunk"], sink=sink, timer=timer,
                                   device=eigen["device"])
        vectors = E.ArrayRows(state["vectors"])
        result = E.EigenResult(solution.eigenvalues, None, "seigh", products, timer.timings)
        if eigen["residual_pairs"]:
            with timer.phase("residuals"):
                result.residuals = E.residual_norms(operator, solution.eigenvalues, vectors, eigen["residual_pairs"])
        ds = _eigen_dataset(result, {"method": "seigh", **eigen})
        ds.attrs.update(attrs)
        ds.attrs.update(rank=solution.rank, condition=solution.condition,
                        reorthogonalized=int(solution.reorthogonalized),
                        orthogonality_error=solution.orthogonality_error)
        if eigen["aposteriori_samples"]:
            with timer.phase("aposteriori"):
                post = E.aposteriori_error(operator, solution.eigenvalues, vectors, eigen["aposteriori_samples"], seed,
                                           row_chunk=eigen["row_chunk"])
            bounds = E.aposteriori_bounds(eigen["aposteriori_samples"], 0.5)
            ds.attrs.update(aposteriori=json.dumps({**post, "bounds_eps0.5": bounds}))
        out.write(ds)
        state["vectors"].attrs.update(_vectors_attrs())
    log.info("solve: rank %d of %d, condition %.2e, orthogonality error %.1e, timings %s", solution.rank, spec.outer,
             solution.condition, solution.orthogonality_error,
             json.dumps({n: round(v, 2) for n, v in timer.timings.items()}))
    return ds, timer.timings


# ----------------------------------------------------------------------------- metrics


def nested_overlap(order: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """overlap(m_k, U_k) for k = 1..K, where m_k = the first k entries of ``order``.

    With S = U^2 restricted to the rows of ``order[:K]`` (in that order), overlap(k) is the sum of
    the leading k x k block of S divided by k: one 2-D cumulative sum gives every k. ``vectors``
    may be all D rows or already only the rows ``order[:K]`` (then ``order`` is ignored).
    """
    k_max = vectors.shape[1]
    rows = vectors if vectors.shape[0] == k_max else vectors[order[:k_max]]
    squares = np.asarray(rows, dtype=np.float64) ** 2
    cumulative = squares.cumsum(axis=0).cumsum(axis=1)
    ks = np.arange(1, k_max + 1)
    return cumulative[ks - 1, ks - 1] / ks


def gather_rows(vectors: xr.DataArray, orders: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    """For each index order, the rows ``order[:k]`` of the first k eigenvectors (k x k each, float64).

    One read of the union of the wanted rows (a zarr orthogonal selection reads only the chunks
    that hold them, and only the first k columns): memory O(len(orders) x k^2), never D x k.
    """
    wanted = np.unique(np.concatenate([np.asarray(o[:k]) for o in orders]))
    block = np.asarray(vectors.isel(param=wanted, eigenpair=slice(0, k)).values, dtype=np.float64)
    return [block[np.searchsorted(wanted, o[:k])] for o in orders]


def step_metrics(theta: np.ndarray, eigen_stores: Mapping[str, xr.Dataset], rhos: Sequence[float],
                 random_masks: int, seed: int, frobenius: float | None = None,
                 row_chunk: int = 65536, ties: str = "lowest_index", tie_seed: int = 0,
                 excluded: np.ndarray | None = None) -> xr.Dataset:
    """All per-(step, split) comparisons of the magnitude masks with each method's eigenspaces.

    The stores may be opened lazily: only the rows of the K largest |theta| (and of the random
    masks) of the first K eigenvectors are read. ``frobenius``: an estimate of ||H||_F (from the
    a-posteriori products) to normalize the spectrum concentration of methods that do not see the
    whole spectrum. ``ties``, ``tie_seed`` and ``excluded`` decide the magnitude masks
    (``hessmask.masks.magnitude_order``); ``boundary_ties`` (rho) counts the members of each mask
    that the tie rule chose. Where an exact store is among them, each method's accuracy is measured against
    it: the overlap of its top-k eigenspace with the exact one for every k (1 = the same subspace)
    and the relative error of each eigenvalue.
    """
    dim = theta.size
    order = magnitude_order(theta, ties, tie_seed, excluded)
    tied = np.array([boundary_ties(theta, order, k_of_rho(dim, rho), excluded) for rho in rhos])
    methods = list(eigen_stores)
    k_all = max(s.sizes["eigenpair"] for s in eigen_stores.values())
    ks = np.arange(1, k_all + 1)
    overlap = np.full((len(methods), k_all), np.nan)
    random_mean = np.full_like(overlap, np.nan)
    random_std = np.full_like(overlap, np.nan)
    grassmann = np.full((len(methods), len(rhos), len(METRICS)), np.nan)
    kappa = np.full((len(methods), len(rhos)), np.nan)
    eigenvalues = np.full((len(methods), k_all), np.nan)
    rng = np.random.default_rng(seed)
    # the first k_all entries of uniformly random orders (O(k_all) memory each, not O(D))
    pool = np.arange(dim) if excluded is None else np.flatnonzero(~np.asarray(excluded, dtype=bool))
    random_orders = [pool[rng.choice(pool.size, size=k_all, replace=False)] for _ in range(random_masks)]
    for m, name in enumerate(methods):
        store = eigen_stores[name]
        values = store["eigenvalues"].values
        k = values.size
        eigenvalues[m, :k] = values
        rows = gather_rows(store["eigenvectors"], [order] + random_orders, k)
        overlap[m, :k] = nested_overlap(order, rows[0])
        baseline = np.stack([nested_overlap(order, r) for order, r in zip(random_orders, rows[1:])])
        random_mean[m, :k] = baseline.mean(axis=0)
        random_std[m, :k] = baseline.std(axis=0, ddof=1) if random_masks > 1 else 0.0
        for r, rho in enumerate(rhos):
            kk = k_of_rho(dim, rho)
            if kk <= k:  # the mask is the first kk rows of the magnitude order
                angles = mask_matrix_angles(np.arange(kk), rows[0][:kk, :kk])
                grassmann[m, r] = list(metrics_from_angles(angles).values())
            if "spectrum" in store:
                kappa[m, r] = energy_concentration(store["spectrum"].values, rho)
            elif frobenius and kk <= k:
                kappa[m, r] = float(np.sqrt(np.sum(values[:kk] ** 2)) / frobenius)
    accuracy = np.full((len(methods), k_all), np.nan)  # top-k overlap with the exact eigenspace
    value_error = np.full((len(methods), k_all), np.nan)
    if "exact" in eigen_stores:
        reference = eigen_stores["exact"]
        ref_values = reference["eigenvalues"].values
        for m, name in enumerate(methods):
            k = min(ref_values.size, eigen_stores[name].sizes["eigenpair"])
            if name == "exact":
                accuracy[m, :k] = 1.0
                value_error[m, :k] = 0.0
                continue
            gram = subspace_grams([reference, eigen_stores[name]], [(0, 1)], k, row_chunk)[(0, 1)]
            accuracy[m, :k] = nested_overlap(np.arange(k), gram)  # (1/k)||U_exact,k^T U_k||_F^2 for every k
            value_error[m, :k] = np.abs(eigenvalues[m, :k] - ref_values[:k]) / np.abs(ref_values[:k])
    ds = xr.Dataset(
        {
            "boundary_ties": (("rho",), tied),
            "eigenspace_accuracy": (("method", "k"), accuracy),
            "eigenvalue_relative_error": (("method", "eigenpair"), value_error),
            "overlap": (("method", "k"), overlap),
            "random_mask_overlap_mean": (("method", "k"), random_mean),
            "random_mask_overlap_std": (("method", "k"), random_std),
            "grassmann": (("method", "rho", "metric"), grassmann),
            "kappa_spectrum": (("method", "rho"), kappa),
            "eigenvalues": (("method", "eigenpair"), eigenvalues),
        },
        coords={"method": methods, "k": ks, "rho": np.asarray(rhos, dtype=np.float64),
                "metric": list(METRICS), "eigenpair": np.arange(k_all)},
    )
    return ds


def combine_metrics(per_step: Mapping[tuple[str, int], xr.Dataset], dim: int) -> xr.Dataset:
    """Stack per-(split, step) metrics into (…, split, step, …) and add ``chance`` = k/D."""
    splits = sorted({split for split, _ in per_step}, key=["train", "test"].index)
    steps = sorted({step for _, step in per_step})
    rows = []
    for split in splits:
        cols = [per_step[(split, step)].expand_dims(step=[step]) for step in steps]
        rows.append(xr.concat(cols, dim="step", join="outer").expand_dims(split=np.array([split], dtype="U5")))
    ds = xr.concat(rows, dim="split", join="outer")
    order = ("method", "split", "step")
    ds = ds.transpose(*order, ...)
    ds["chance"] = ("k", ds["k"].values / dim)
    describe(ds, dim)
    return ds


def describe(ds: xr.Dataset, dim: int) -> None:
    """Units and meaning of every variable of metrics.zarr."""
    notes = {
        "overlap": ("1", "overlap (1/k)||I_mask^T U_k||_F^2 of the magnitude mask with the top-k eigenspace"),
        "chance": ("1", "expected overlap of independent uniform k-subspaces, k/D"),
        "random_mask_overlap_mean": ("1", "mean overlap of uniformly random k-masks with the top-k eigenspace"),
        "random_mask_overlap_std": ("1", "standard deviation of that overlap over the random masks"),
        "grassmann": ("1", "the seven normalized Grassmannian metrics between mask and eigenspace at k = round(rho D)"),
        "kappa_spectrum": ("1", "energy concentration of the spectrum: ||lambda_top||/||lambda|| over the top "
                                "rho D eigenvalues"),
        "eigenvalues": ("nats / parameter^2", "leading eigenvalues by descending |lambda|"),
        "boundary_ties": ("count", "members of the magnitude mask at k = round(rho D) tied in |theta| with the first "
                                   "entry left out: chosen by the tie rule (masks.ties), not by magnitude"),
        "eigenspace_accuracy": ("1", "overlap (1/k)||U_exact,k^T U_k||_F^2 of the method's top-k eigenspace with the "
                                "exact one (1 = the same subspace; NaN where no exact solve ran)"),
        "eigenvalue_relative_error": ("1", "|lambda - lambda_exact| / |lambda_exact| of each leading eigenvalue"),
    }
    for name, (units, text) in notes.items():
        if name in ds:
            ds[name].attrs.update(units=units, long_name=text)
    ds.attrs["D"] = dim


def subspace_grams(stores: Sequence[xr.Dataset], pairs: Sequence[tuple[int, int]], k: int,
                   row_chunk: int = 65536) -> dict[tuple[int, int], np.ndarray]:
    """U_a[:, :k]^T U_b[:, :k] for each pair (a, b) of stores, streaming over row chunks: memory
    O(len(stores) x row_chunk x k + len(pairs) x k^2), never D x k."""
    dim = stores[0].sizes["param"]
    used = sorted({i for pair in pairs for i in pair})
    grams = {pair: np.zeros((k, k)) for pair in pairs}
    for lo, hi in E.row_chunks(dim, row_chunk):
        blocks = {i: np.asarray(stores[i]["eigenvectors"][lo:hi, :k].values, dtype=np.float64) for i in used}
        for a, b in pairs:
            grams[(a, b)] += blocks[a].T @ blocks[b]
    return grams


def subspace_overlaps(stores: Sequence[xr.Dataset], pairs: Sequence[tuple[int, int]], k: int,
                      row_chunk: int = 65536) -> list[float]:
    """(1/k)||U_a[:, :k]^T U_b[:, :k]||_F^2 for each pair (a, b) of stores (orthonormal columns)."""
    grams = subspace_grams(stores, pairs, k, row_chunk)
    return [float(np.sum(grams[pair] ** 2) / k) for pair in pairs]


def eigenspace_pairs(stores: Mapping[tuple[str, str, int], xr.Dataset], rhos: Sequence[float],
                     dim: int, row_chunk: int = 65536) -> xr.Dataset:
    """Overlap of top-k eigenspaces between record steps (per method, split, rho), and between the
    test and train eigenspaces at the same step; the stores are read in row chunks."""
    methods = sorted({m for m, _, _ in stores}, key=["exact", "seigh"].index)
    splits = sorted({s for _, s, _ in stores}, key=["train", "test"].index)
    steps = sorted({t for _, _, t in stores})
    pairs = np.full((len(methods), len(splits), len(rhos), len(steps), len(steps)), np.nan)
    cross = np.full((len(methods), len(rhos), len(steps)), np.nan)
    for m, method in enumerate(methods):
        for r, rho in enumerate(rhos):
            k = k_of_rho(dim, rho)
            keys = [key[1:] for key, s in stores.items() if key[0] == method and s.sizes["eigenpair"] >= k]
            if not keys:
                continue
            index = {key: i for i, key in enumerate(keys)}
            wanted, where = [], []
            for si, split in enumerate(splits):
                for i, a in enumerate(steps):
                    for j, b in enumerate(steps[i:], start=i):
                        if (split, a) in index and (split, b) in index:
                            wanted.append((index[(split, a)], index[(split, b)]))
                            where.append(("pairs", si, i, j))
            for i, step in enumerate(steps):
                if ("train", step) in index and ("test", step) in index:
                    wanted.append((index[("train", step)], index[("test", step)]))
                    where.append(("cross", 0, i, i))
            values = subspace_overlaps([stores[(method, *key)] for key in keys], wanted, k, row_chunk)
            for (kind, si, i, j), value in zip(where, values):
                if kind == "pairs":
                    pairs[m, si, r, i, j] = pairs[m, si, r, j, i] = value
                else:
                    cross[m, r, i] = value
    ds = xr.Dataset(
        {"eigenspace_overlap": (("method", "split", "rho", "step", "step_other"), pairs),
         "train_test_overlap": (("method", "rho", "step"), cross)},
        coords={"method": methods, "split": np.array(splits, dtype="U5"), "rho": np.asarray(rhos, dtype=np.float64),
                "step": steps, "step_other": steps},
    )
    ds["eigenspace_overlap"].attrs.update(
        units="1", long_name="overlap of the top-k eigenspaces of two record steps, k = round(rho D)")
    ds["train_test_overlap"].attrs.update(
        units="1", long_name="overlap of the top-k eigenspaces of the train- and test-subset Hessians at one step")
    return ds


def _fmt(value: float, spec: str) -> str:
    """A number for a Markdown table; "n/a" where the method did not run at that step."""
    return format(value, spec) if np.isfinite(value) else "n/a"


def summary_markdown(name: str, metrics: xr.Dataset, diagnostics: Mapping[tuple[str, int], Mapping[str, Any]],
                     rho: float = 0.05, tolerance: float = 0.02,
                     sketches: Mapping[tuple[str, int], Mapping[str, Any]] | None = None) -> str:
    """Acceptance summary: exact vs sketched overlap at k = rho D per step and split.

    ``diagnostics[(split, step)]`` holds the sketch's a-posteriori error and the relative errors of
    its leading eigenvalues against the exact ones; differences above ``tolerance`` are listed with
    them, so that none is left unexplained. ``sketches[(split, step)]`` (``sketch_quality``) adds
    the sketch's own error measures, which are all there is where no exact solve exists.
    """
    dim = int(metrics.attrs["D"])
    k = k_of_rho(dim, rho)
    methods = list(metrics["method"].values)
    lines = [f"# {name}: exact vs sketched mask-eigenspace overlap", "",
             f"k = {k} (rho = {rho:g} of D = {dim}); chance k/D = {k / dim:.4g}.", ""]
    if not {"exact", "seigh"} <= set(methods):
        lines.append(f"Methods present: {', '.join(methods)}; the comparison needs both exact and seigh.")
    header = "| split | step | " + " | ".join(f"{m} overlap" for m in methods)
    header += " | seigh - exact | " + " | ".join(f"{m} / chance" for m in methods)
    header += " | seigh top-k eigenspace vs exact |"
    lines += [header, "|" + "---|" * (2 + 2 * len(methods) + 2)]
    flagged = []
    for split in metrics["split"].values:
        for step in metrics["step"].values:
            values = {m: float(metrics["overlap"].sel({"method": m, "split": split, "step": step, "k": k}))
                      for m in methods}
            diff = values.get("seigh", np.nan) - values.get("exact", np.nan)
            cells = " | ".join(_fmt(values[m], ".4g") for m in methods)
            ratios = " | ".join(_fmt(values[m] / (k / dim), ".2f") for m in methods)
            accuracy = np.nan
            if "eigenspace_accuracy" in metrics and "seigh" in methods:
                accuracy = float(metrics["eigenspace_accuracy"].sel({"method": "seigh", "split": split, "step": step,
                                                                     "k": k}))
            lines.append(f"| {split} | {int(step)} | {cells} | {_fmt(diff, '+.4f')} | {ratios} | "
                         f"{_fmt(accuracy, '.4f')} |")
            if np.isfinite(diff) and abs(diff) > tolerance:
                flagged.append((split, int(step), diff))
    lines += ["", "The last column is the overlap of the sketch's top-k eigenspace with the exact one "
              "(1 = the same subspace; metrics.zarr: eigenspace_accuracy, every k).", ""]
    finite = [abs(float(metrics["overlap"].sel({"method": "seigh", "split": s, "step": t, "k": k})) -
                  float(metrics["overlap"].sel({"method": "exact", "split": s, "step": t, "k": k})))
              for s in metrics["split"].values for t in metrics["step"].values] if len(methods) > 1 else []
    finite = [d for d in finite if np.isfinite(d)]
    if len(methods) > 1 and not finite:
        lines.append(f"The sketch recovers fewer than k = {k} eigenpairs (outer size too small); raise "
                     "eigen.sketch.outer to compare at this k.")
        lines.append("")
    if finite:
        lines.append(f"Largest |seigh - exact| difference: {max(finite):.4f} (tolerance {tolerance}).")
        lines.append("")
    if flagged:
        lines += ["## Differences above the tolerance", "",
                  "The sketch's measured errors at these steps: the a-posteriori estimate of "
                  "||H - H_sketch||_F relative to ||H||_F, the relative errors of its leading eigenvalues "
                  "and of eigenvalue k against the exact ones (the overlap of its top-k eigenspace with the "
                  "exact one is in the table above).", "",
                  "| split | step | difference | a-posteriori relative error | rel. error of top-10 eigenvalues "
                  "(max) | rel. error of eigenvalue k (exact vs seigh) |",
                  "|---|---|---|---|---|---|"]
        for split, step, diff in flagged:
            d = diagnostics.get((split, step), {})
            lines.append(f"| {split} | {step} | {diff:+.4f} | {d.get('relative_error', float('nan')):.3f} | "
                         f"{d.get('top10_eigenvalue_error', float('nan')):.2e} | "
                         f"{d.get('eigenvalue_k_error', float('nan')):.2e} |")
        lines.append("")
    elif finite:
        lines.append("All differences are within the tolerance.")
    if sketches:
        lines += ["", "## Sketch quality", "",
                  "The sketch's own error measures (no exact solve needed): the a-posteriori estimate of "
                  "||H - H_sketch||_F / ||H||_F from Gaussian test products, the largest residual "
                  "||H u - lambda u|| of the leading pairs relative to |lambda_1|, the numerical rank and "
                  "condition number of the outer sketch, and the measured orthogonality error max|U^T U - I|.", "",
                  "| split | step | a-posteriori relative error | max residual / abs(lambda_1) | rank | condition "
                  "| orthogonality error |",
                  "|---|---|---|---|---|---|---|"]
        order = sorted(sketches, key=lambda key: (["train", "test"].index(key[0]), key[1]))
        for (split, step), q in ((key, sketches[key]) for key in order):
            lines.append(f"| {split} | {step} | {_fmt(q['relative_error'], '.3g')} | "
                         f"{_fmt(q['relative_residual'], '.3g')} "
                         f"| {q['rank']} | {_fmt(q['condition'], '.3g')} | {_fmt(q['orthogonality_error'], '.1e')} |")
    return "\n".join(lines) + "\n"


def sketch_quality(sketch: xr.Dataset) -> dict[str, Any]:
    """The error measures a sketched eigen store carries about itself (see ``summary_markdown``)."""
    post = json.loads(sketch.attrs.get("aposteriori", "{}"))
    values = sketch["eigenvalues"].values
    residual = sketch["residual_norm"].values if "residual_norm" in sketch else np.array([np.nan])
    return {"relative_error": post.get("relative_error", float("nan")),
            "relative_residual": float(np.max(residual) / abs(values[0])) if residual.size else float("nan"),
            "rank": int(sketch.attrs.get("rank", values.size)),
            "condition": float(sketch.attrs.get("condition", np.nan)),
            "orthogonality_error": float(sketch.attrs.get("orthogonality_error", np.nan))}


def sketch_diagnostics(exact: xr.Dataset, sketch: xr.Dataset, k: int) -> dict[str, float]:
    """Relative eigenvalue errors of the sketch against the exact solve, and its a-posteriori error."""
    ref = exact["eigenvalues"].values
    est = sketch["eigenvalues"].values
    n = min(ref.size, est.size)
    rel = np.abs(est[:n] - ref[:n]) / np.abs(ref[:n])
    post = json.loads(sketch.attrs.get("aposteriori", "{}"))
    kk = min(k, n) - 1
    return {"relative_error": post.get("relative_error", float("nan")),
            "top10_eigenvalue_error": float(rel[:10].max()),
            "eigenvalue_k_error": float(rel[kk])}
