"""The eigen stores: what every method writes, and the writer of the methods solved in memory.

An eigen store (``results/<experiment>/eigen/<method>/<split>/step=<step>.zarr``) holds
``eigenvalues`` (eigenpair) by descending |lambda|, the float32 unit ``eigenvectors`` (param,
eigenpair) in chunks of ``row_chunk`` x ``vector_chunk``, the residual norms of the leading pairs
(residual_pair), the whole spectrum where the method sees it (spectrum_index), and in its attributes
the products the solve took, its settings (the method's spec) and its diagnostics.

Every method's writer has the signature of :func:`kernel_store` (the registry's ``store``):
``(operator, spec, step, parts, path, attrs) -> wall time per phase``. ``kernel_store`` writes the
methods whose kernel returns its eigenpairs in memory (the exact solve); SEIGH and block Krylov
stream theirs (``hessmask.eigen.seigh_store``, ``hessmask.eigen.krylov_store``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from hessmask.eigen import methods
from hessmask.eigen.aposteriori import aposteriori_bounds, aposteriori_error
from hessmask.eigen.common import EigenResult, SolverError, Timer, residual_norms
from hessmask.operators import LinearOperator
from hessmask.progress import Progress
from hessmask.rows import ArrayRows
from hessmask.store import StoreWriter, write_dataset

log = logging.getLogger(__name__)

#: attributes of the stored eigenvectors
VECTORS_ATTRS = {"long_name": "unit eigenvectors (columns), same order as eigenvalues", "units": "1"}


def eigen_dataset(result: EigenResult, spec: methods.SolveSpec) -> xr.Dataset:
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
        ds["spectrum"].attrs.update(long_name="all D eigenvalues, descending (exact solve only)",
                                    units="nats / parameter^2")
    ds.attrs.update(method=result.method, products=int(result.products),
                    settings=json.dumps({"method": result.method, **spec.params()}, sort_keys=True, default=str))
    return ds


def vector_chunks(dim: int, spec: methods.SolveSpec) -> tuple[int, int]:
    """zarr chunks of the (param, eigenpair) eigenvectors: ``row_chunk`` rows by ``vector_chunk``
    eigenvectors, so that the top few eigenvectors read a small part."""
    return (min(dim, spec.row_chunk), spec.vector_chunk)


def checked_block(array: Any, index: Any, store: str, unreadable: str, missing: str, rerun: str) -> np.ndarray:
    """``array[index]`` of a zarr array as float64, stopping with an error that names the store when a
    chunk cannot be read (a checksum mismatch) or holds values never written (NaN: a truncated store);
    ``unreadable`` and ``missing`` say what was read, ``rerun`` which job rewrites the store."""
    try:
        block = np.asarray(array[index], dtype=np.float64)
    except Exception as err:  # a checksum mismatch or an unreadable chunk
        raise SolverError(f"{store}: {unreadable} cannot be read ({type(err).__name__}: {err}); "
                          f"delete it and rerun {rerun}") from err
    if not np.isfinite(block).all():
        raise SolverError(f"{store} has missing or non-finite {missing}: the store is truncated or corrupt; "
                          f"delete it and rerun {rerun}")
    return block


def finish_store(operator: LinearOperator, values: np.ndarray, vectors: ArrayRows, method: str, products: int,
                 timer: Timer, spec: methods.SolveSpec, seed: int, attrs: Mapping[str, Any]) -> xr.Dataset:
    """The small variables of a streamed eigen store: eigenvalues, residual norms of the leading
    pairs (``spec.residual_pairs``) and the a-posteriori error (``spec.aposteriori_samples``), both
    extra products measured on ``operator``, with the settings and ``attrs``; the caller adds its own
    diagnostics and writes the Dataset."""
    result = EigenResult(values, None, method, products, timer.timings)
    if spec.residual_pairs:
        with timer.phase("residuals"):
            result.residuals = residual_norms(operator, values, vectors, spec.residual_pairs)
    ds = eigen_dataset(result, spec)
    ds.attrs.update(attrs)
    samples = getattr(spec, "aposteriori_samples", 0)
    if samples:
        with timer.phase("aposteriori"):
            post = aposteriori_error(operator, values, vectors, samples, seed, row_chunk=spec.row_chunk)
        ds.attrs.update(aposteriori=json.dumps({**post, "bounds_eps0.5": aposteriori_bounds(samples, 0.5)}))
    return ds


def row_sink(out: StoreWriter, name: str, dims: tuple[str, str], dim: int, chunks: tuple[int, int], dtype: Any,
             state: dict) -> Callable[[int, np.ndarray], None]:
    """A row-chunk sink that creates the (D, width) array ``name`` of ``out`` on its first chunk (the
    width is known only then), keeps it as ``state[name]`` and fills it in ``dtype``."""

    def sink(row: int, block: np.ndarray) -> None:
        if name not in state:
            state[name] = out.create(name, dims, (dim, block.shape[1]), chunks, dtype)
        state[name][row: row + block.shape[0]] = block.astype(dtype, copy=False)

    return sink


def vector_sink(out: StoreWriter, dim: int, chunks: tuple[int, int], state: dict) -> Callable[[int, np.ndarray], None]:
    """The float32 ``eigenvectors`` (param, eigenpair) of an eigen store, written in row chunks."""
    return row_sink(out, "eigenvectors", ("param", "eigenpair"), dim, chunks, np.float32, state)


def timings_line(timings: Mapping[str, float]) -> str:
    """Wall time per phase, rounded, for a log line."""
    return json.dumps({name: round(value, 2) for name, value in timings.items()})


def kernel_store(operator: LinearOperator, spec: methods.SolveSpec, step: int, parts: Sequence[str | Path],
                 path: str | Path, attrs: Mapping[str, Any]) -> dict[str, float]:
    """The eigen store of a method solved in memory by its registry kernel (``Method.solve``), written
    to ``path``: eigenvalues, float32 eigenvectors, residuals (the kernel's, or ``spec.residual_pairs``
    more products), the spectrum where the kernel returns it, and the a-posteriori error where the spec
    has ``aposteriori_samples``. Returns the wall time per phase (kept out of the store, so that two
    runs give identical stores)."""
    entry = methods.method_of(spec)
    if entry.solve is None:
        raise SolverError(f"{entry.name} has no in-memory kernel (Method.solve in hessmask.eigen.methods)")
    if parts:
        raise SolverError(f"{entry.name} is solved in one job; it takes no part stores, got {len(parts)}")
    progress = Progress(f"{entry.name} step {step}", spec.products(operator.dim), unit="products")
    result = methods.function(entry.solve)(operator, spec, step, progress.update)
    timer = Timer()
    timer.timings.update(result.timings)
    if result.residuals is None and spec.residual_pairs:
        with timer.phase("residuals"):
            result.residuals = residual_norms(operator, result.eigenvalues, result.eigenvectors, spec.residual_pairs)
    ds = eigen_dataset(result, spec)
    ds["eigenvectors"] = (("param", "eigenpair"), result.eigenvectors.astype(np.float32), VECTORS_ATTRS)
    ds.attrs.update(attrs)
    samples = getattr(spec, "aposteriori_samples", 0)
    if samples:
        with timer.phase("aposteriori"):
            post = aposteriori_error(operator, result.eigenvalues, result.eigenvectors, samples,
                                     methods.record_seed(spec, step), row_chunk=spec.row_chunk)
        ds.attrs.update(aposteriori=json.dumps({**post, "bounds_eps0.5": aposteriori_bounds(samples, 0.5)}))
    write_dataset(ds, path, encoding={"eigenvectors": {"chunks": vector_chunks(operator.dim, spec)}})
    log.info("%s: %d eigenpairs, timings %s", entry.name, result.k, timings_line(timer.timings))
    return timer.timings
