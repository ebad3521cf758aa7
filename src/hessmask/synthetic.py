"""Random baselines of the Grassmannian metrics (docs/science.md#3-synthetic-baselines; seed 000, Algorithm 1).

For every (modality, D, rho) cell, T independent uniform pairs of k = max(1, round(rho D))
dimensional subspaces are drawn and the seven metrics recorded (rho = k/D, the mask fraction of the
main study, is the paper's ratio r). Each cell draws from its own child random stream keyed by
(seed, D, rho, modality), so a cell's values do not depend on how the grid is split into jobs.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from tabulate import tabulate
from tqdm.auto import tqdm

from hessmask.grassmann import METRICS, MODALITIES, metrics_from_angles, sample_angles
from hessmask.masks import k_of_rho

RHO_KEY_SCALE = 1_000_000  # rho values are keyed to the seed in parts per million


def cell_rng(seed: int, dim: int, rho: float, modality: str) -> np.random.Generator:
    """The independent random stream of one (D, rho, modality) cell."""
    key = (int(dim), int(round(rho * RHO_KEY_SCALE)), MODALITIES.index(modality))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def grid_cells(grids: Iterable[Mapping]) -> dict[int, list[float]]:
    """Union of the (D x rho) products of the config's grids, as {D: sorted rho values}."""
    cells: dict[int, set[float]] = {}
    for grid in grids:
        for dim in grid["D"]:
            cells.setdefault(int(dim), set()).update(float(r) for r in grid["rho"])
    return {dim: sorted(cells[dim]) for dim in sorted(cells)}


def baseline_chunk(
    dim: int,
    rhos: Sequence[float],
    samples: int,
    seed: int,
    modalities: Sequence[str] = MODALITIES,
    progress: bool | None = None,
) -> xr.Dataset:
    """Metric values of T random pairs for one D and several rhos.

    Returns a Dataset with ``value`` of dims (modality, metric, D, rho, sample) and ``k``
    of dims (D, rho).
    """
    metrics = list(METRICS)
    values = np.empty((len(modalities), len(metrics), 1, len(rhos), samples))
    cells = [(m, r) for m in range(len(modalities)) for r in range(len(rhos))]
    bar = tqdm(cells, desc=f"D={dim}", disable=None if progress is None else not progress)
    for m, r in bar:
        k = k_of_rho(dim, rhos[r])
        rng = cell_rng(seed, dim, rhos[r], modalities[m])
        for t in range(samples):
            row = metrics_from_angles(sample_angles(modalities[m], dim, k, rng))
            values[m, :, 0, r, t] = [row[name] for name in metrics]
    ks = np.array([[k_of_rho(dim, r) for r in rhos]])
    return xr.Dataset(
        {
            "value": (("modality", "metric", "D", "rho", "sample"), values),
            "k": (("D", "rho"), ks),
        },
        coords={
            "modality": list(modalities),
            "metric": metrics,
            "D": [int(dim)],
            "rho": np.asarray(rhos, dtype=np.float64),
            "sample": np.arange(samples),
        },
    )


def combine_chunks(chunks: Sequence[xr.Dataset]) -> xr.Dataset:
    """Aggregate per-D chunks into one Dataset; cells outside the grid are NaN (k = 0)."""
    if not chunks:
        raise ValueError("no synthetic chunks to combine")
    rhos = np.unique(np.concatenate([c["rho"].values for c in chunks]))
    aligned = [c.reindex(rho=rhos, fill_value={"value": np.nan, "k": 0}) for c in chunks]
    out = xr.concat(aligned, dim="D").sortby("D")
    out["k"] = out["k"].astype(np.int64)
    out["value"].attrs.update(
        units="1",
        long_name="normalized Grassmannian metric between independent uniform subspaces",
        description="0 = same subspace, 1 = maximally apart; overlap is a similarity (1 = same)",
    )
    out["k"].attrs.update(long_name="subspace dimension k = max(1, round(rho * D)); 0 = cell not computed")
    out["D"].attrs.update(long_name="ambient dimension D of the random pairs", units="1")
    out["rho"].attrs.update(long_name="mask fraction rho = k / D as configured", units="1")
    return out


def baselines_table(ds: xr.Dataset, modality: str = "OO", dim: int | None = None) -> pd.DataFrame:
    """The paper's Table 1: mean of each metric per rho at the largest D (modality OO)."""
    dim = int(ds["D"].max()) if dim is None else dim
    cell = ds["value"].sel(modality=modality, D=dim)
    present = cell["rho"].values[~np.isnan(cell.isel(metric=0, sample=0).values)]
    mean = cell.sel(rho=present).mean("sample")
    table = mean.transpose("rho", "metric").to_pandas()
    table.index = pd.Index([float(r) for r in table.index], name="rho")
    table.columns.name = None
    table.insert(0, "k", [k_of_rho(dim, r) for r in table.index])
    table.insert(0, "D", dim)
    return table


def table_markdown(table: pd.DataFrame, modality: str, samples: int) -> str:
    """Markdown rendering of ``baselines_table`` with a caption."""
    dim = int(table["D"].iloc[0])
    caption = (
        f"Random baselines of the normalized Grassmannian metrics: mean over {samples} independent "
        f"uniform pairs ({modality}) at D = {dim}, per rho = k/D (the paper's ratio r; seed 000, Table 1).\n\n"
    )
    body = table.drop(columns="D").reset_index()
    floatfmt = ["g", "d"] + [".4f"] * (body.shape[1] - 2)
    body = tabulate(body.to_dict("list"), headers="keys", tablefmt="pipe", floatfmt=floatfmt)
    return caption + body + "\n"
