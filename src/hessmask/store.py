"""Writing and reading the study's zarr stores, atomically and with provenance.

Every job writes one small store. It is written to a sibling temporary folder and renamed into
place only when complete, so an interrupted or failed job never leaves a store that looks
finished. Provenance (package version, git commit, the config that produced it) goes into
``attrs``; nothing time- or host-dependent does, so reruns give byte-identical arrays.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import ZstdCodec

from hessmask import __version__
from hessmask import dims as dims_table
from hessmask.atomic import remove_stale, temporary_name
from hessmask.digests import (  # noqa: F401 (content_digest and CorruptFile re-exported)
    DIGEST_ATTRIBUTE,
    CorruptFile,
    check_file,
    check_store,
    content_digest,
    sidecar,
    write_manifest,
)

#: every array is zstd-compressed with a checksum per chunk: a corrupt chunk fails to read
COMPRESSORS = (ZstdCodec(level=3, checksum=True),)


def git_commit(repo: Path | str | None = None) -> str:
    """The current git commit of the working tree (``unknown`` outside a checkout)."""
    cwd = Path(repo) if repo else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def provenance(config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, str]:
    """Attributes recording what produced a store. JSON-encodes the config for round trips."""
    attrs = {"hessmask_version": __version__, "git_commit": git_commit()}
    if config is not None:
        attrs["config"] = json.dumps(config, sort_keys=True)
    for key, value in extra.items():
        attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value, sort_keys=True)
    return attrs


def _temporary(path: Path) -> Path:
    """A fresh sibling temporary folder name for ``path`` (``hessmask.atomic``); the leftovers of
    writers of ``path`` that no longer run are removed first, a live writer's never."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    return temporary_name(path)


@contextmanager
def scratch_folder(path: Path | str) -> Iterator[Path]:
    """A fresh hidden sibling folder of ``path`` for a job's intermediate stores, removed on exit:
    the naming and the removal of a killed job's leftovers of ``write_dataset``'s temporaries
    (``verify`` skips every store inside it). ``path`` names the scratch, not a result: use a name
    no result has, so that writing a result never removes a scratch still in use."""
    folder = _temporary(Path(path))
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _with_checksums(ds: xr.Dataset, encoding: Mapping | None) -> dict:
    """The encoding of every variable, with the checksummed compressor unless one is given."""
    out = {name: dict(value) for name, value in (encoding or {}).items()}
    for name in ds.variables:
        if ds[name].dtype.kind not in "UO":
            out.setdefault(name, {}).setdefault("compressors", COMPRESSORS)
    return out


def _publish(tmp: Path, path: Path) -> None:
    """Consolidate the metadata of the finished store at ``tmp``, record its content digest in the
    root attrs (``content_digest``) and its manifest (``hessmask.digests``), and rename it to ``path``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        zarr.consolidate_metadata(str(tmp))
        zarr.open_group(str(tmp), mode="r+").attrs[DIGEST_ATTRIBUTE] = content_digest(tmp)
    write_manifest(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _to_zarr(ds: xr.Dataset, target: Path, mode: str, encoding: Mapping | None) -> None:
    """Write ``ds`` into the zarr (v3) folder ``target``, every chunk checksummed.

    A string variable's inherited encoding dtype is dropped: a coordinate read from one store as
    '<U7' and extended with longer names would otherwise be truncated silently on write.
    """
    ds = ds.copy(deep=False)
    for var in ds.variables.values():
        if var.dtype.kind in "USO":
            var.encoding.pop("dtype", None)
    with warnings.catch_warnings():
        # fixed-length unicode coordinates (metric, method, split names) are stable in zarr-python
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        ds.to_zarr(target, mode=mode, encoding=_with_checksums(ds, encoding), consolidated=False, zarr_format=3)


def write_dataset(ds: xr.Dataset, path: Path | str, encoding: Mapping | None = None) -> Path:
    """Write ``ds`` to a zarr store at ``path`` atomically (temp folder, then rename).

    An existing store at ``path`` is replaced; chunks carry checksums and the metadata is
    consolidated. Returns the final path.
    """
    path = Path(path)
    ds = dims_table.describe(ds.copy(deep=False), str(path))
    tmp = _temporary(path)
    try:
        _to_zarr(ds, tmp, "w", encoding)
        _publish(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


class StoreWriter:
    """A zarr store written in parts, for arrays too large to hold in memory.

    Small variables are written with xarray (``write``), large ones are created empty
    (``create``, NaN-filled, checksummed chunks) and filled region by region by the caller. The
    store lives in a temporary sibling folder until the ``with`` block ends without an error;
    then its metadata is consolidated and it is renamed into place, so a failed or killed job
    never leaves a store that looks complete::

        with StoreWriter(path) as out:
            out.write(small_dataset)
            vectors = out.create("eigenvectors", ("param", "eigenpair"), (D, k), (4096, 64), "float32")
            vectors[0:4096, :] = block
            out.attrs.update(products=710)
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.tmp = _temporary(self.path)
        self.group = zarr.open_group(str(self.tmp), mode="w", zarr_format=3)

    @property
    def attrs(self):
        """The store's attributes (JSON-serializable values)."""
        return self.group.attrs

    def write(self, ds: xr.Dataset, encoding: Mapping | None = None) -> None:
        """Add the variables and attributes of a small in-memory Dataset."""
        _to_zarr(dims_table.describe(ds.copy(deep=False), str(self.path)), self.tmp, "a", encoding)

    def create(self, name: str, dims: tuple[str, ...], shape: tuple[int, ...], chunks: tuple[int, ...],
               dtype: Any) -> zarr.Array:
        """An empty (NaN-filled) array that xarray reads as ``name`` with dimensions ``dims``."""
        dims_table.check(dims, f"{self.path} ({name})")
        chunks = tuple(max(1, min(c, n) if n else c) for c, n in zip(chunks, shape))
        return self.group.create_array(name, shape=shape, chunks=chunks, dtype=np.dtype(dtype), fill_value=np.nan,
                                       dimension_names=dims, compressors=COMPRESSORS)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                _publish(self.tmp, self.path)
        finally:
            if self.tmp.exists():
                shutil.rmtree(self.tmp, ignore_errors=True)


def open_dataset(path: Path | str, load: bool = True, check: bool = True) -> xr.Dataset:
    """Open a store written by ``write_dataset`` or ``StoreWriter``, after checking it against its
    manifest (and its content digest where it is small: ``hessmask.digests.check_store``); loads it
    into memory unless ``load`` is False.

    Raises:
        FileNotFoundError: if there is no store at ``path``.
        CorruptFile: if a file of the store is missing, resized or altered (naming the store and how
            to rebuild it).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no zarr store at {path}; run the workflow rule that produces it")
    if check:
        check_store(path)
    with warnings.catch_warnings():
        # Snakemake marks directory outputs with a .snakemake_timestamp file zarr does not know
        warnings.filterwarnings("ignore", message=".*snakemake_timestamp.*")
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        ds = xr.open_zarr(path, chunks=None)
        return ds.load() if load else ds


def config_of(ds: xr.Dataset) -> dict:
    """The config recorded in a store's provenance attributes."""
    return json.loads(ds.attrs["config"])


#: the files with a digest sidecar that ``verify`` checks: checkpoints and prepared datasets
DIGESTED_SUFFIXES = (".pt", ".npz")


def outputs_under(root: Path) -> tuple[list[Path], list[Path]]:
    """(the zarr stores, the files with digest sidecars) under ``root``, leaving out temporaries
    (hidden folders of running or killed writers) and stores inside stores."""
    def visible(path: Path) -> bool:
        return not any(part.startswith(".") for part in path.relative_to(root).parts)

    stores = sorted(p for p in root.rglob("*.zarr") if p.is_dir() and visible(p)
                    and not any(q.suffix == ".zarr" for q in p.parents))
    files = sorted(p for p in root.rglob("*") if p.suffix in DIGESTED_SUFFIXES and p.is_file() and visible(p))
    return stores, files


def verify(*roots: Path | str) -> dict[str, str]:
    """Recheck everything the workflow wrote under ``roots`` (the results folder, the data folder):
    every zarr store against its manifest and its full content digest, every chunk through its
    checksum, and every checkpoint and prepared dataset against its digest sidecar. Returns
    {path: problem} for the damaged ones (empty when all are intact)."""
    problems: dict[str, str] = {}
    for root in map(Path, roots):
        if not root.exists():
            continue
        stores, files = outputs_under(root)
        for store in stores:
            try:
                check_store(store, full=True)
                for _, array in zarr.open_group(str(store), mode="r").arrays():
                    array[...]  # every chunk through its checksum
            except Exception as err:  # a damaged file, unreadable metadata, a failing checksum
                problems[str(store)] = f"{type(err).__name__}: {err}"
        for file in files:
            try:
                check_file(file)
            except Exception as err:
                problems[str(file)] = f"{type(err).__name__}: {err}"
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m hessmask.store verify [ROOT ...] [--delete]``: name every damaged store, checkpoint
    and prepared dataset under the roots (default: results and data; exit 1 if any); with
    ``--delete`` remove them, so that the next ``snakemake`` run rebuilds exactly those."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hessmask.store", description=main.__doc__)
    parser.add_argument("command", choices=["verify"])
    parser.add_argument("roots", nargs="*", default=["results", "data"])
    parser.add_argument("--delete", action="store_true", help="remove the damaged files (the workflow rebuilds them)")
    args = parser.parse_args(argv)
    problems = verify(*args.roots)
    count = 0
    for root in map(Path, args.roots):
        if root.exists():
            stores, files = outputs_under(root)
            count += len(stores) + len(files)
    for path, problem in problems.items():
        print(f"DAMAGED {path}: {problem}")
    print(f"{count - len(problems)} of {count} stores and files under {', '.join(args.roots)} intact")
    if problems and args.delete:
        for path in map(Path, problems):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            sidecar(path).unlink(missing_ok=True)
            print(f"removed {path}")
        print("rebuild them: snakemake (with the same --configfile as the run)")
    elif problems:
        print("rebuild them: python -m hessmask.store verify --delete " + " ".join(args.roots) + " && snakemake "
              "(or delete each named path and rerun the workflow)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
