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
import uuid
import warnings
from pathlib import Path
from typing import Any, Mapping

import xarray as xr

from hessmask import __version__


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


def write_dataset(ds: xr.Dataset, path: Path | str, encoding: Mapping | None = None) -> Path:
    """Write ``ds`` to a zarr store at ``path`` atomically (temp folder, then rename).

    An existing store at ``path`` is replaced. Returns the final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with warnings.catch_warnings():
            # fixed-length unicode coordinates (metric, method, split names) are stable in zarr-python
            warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
            ds.to_zarr(tmp, mode="w", encoding=dict(encoding or {}), consolidated=False, zarr_format=3)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def open_dataset(path: Path | str, load: bool = True) -> xr.Dataset:
    """Open a store written by ``write_dataset``; loads it into memory unless ``load`` is False."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no zarr store at {path}; run the workflow rule that produces it")
    with warnings.catch_warnings():
        # Snakemake marks directory outputs with a .snakemake_timestamp file zarr does not know
        warnings.filterwarnings("ignore", message=".*snakemake_timestamp.*")
        ds = xr.open_zarr(path, consolidated=False)
        return ds.load() if load else ds


def config_of(ds: xr.Dataset) -> dict:
    """The config recorded in a store's provenance attributes."""
    return json.loads(ds.attrs["config"])
