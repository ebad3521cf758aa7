"""The quadratic well of seed 004 (section 3.2, Fig. 5): the exact minimum of L(w) = w^T H w / 2 over
random affine subspaces, the success probability and simulated d* per loss level eps, and the bound
of Eq. 3.4 on d*. numpy and xarray only.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from hessmask.dof.analysis import threshold_dimension
from hessmask.dof.methods import check_size


def quadratic_spectrum(kind: str, dim: int, low: float, high: float) -> np.ndarray:
    """Eigenvalues of a quadratic well: ``bimodal`` (half at ``low``, half at ``high``) or
    ``bulk`` (log-uniformly spaced between them), descending."""
    if not 0 < low <= high:
        raise ValueError(f"spectrum bounds must satisfy 0 < low <= high, got {low}, {high}")
    if kind == "bimodal":
        values = np.concatenate([np.full(dim - dim // 2, high), np.full(dim // 2, low)])
    elif kind == "bulk":
        values = np.geomspace(high, low, dim)
    else:
        raise ValueError(f"unknown spectrum kind {kind!r} (bimodal or bulk)")
    return values.astype(np.float64)


def quadratic_min_loss(eigenvalues: np.ndarray, w0: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """min over theta of L(w0 + A_d theta), L(w) = w^T diag(lambda) w / 2, for every d = 1..n.

    With B = H^(1/2) A and c = H^(1/2) w0 the minimum is ||(I - P_{B_d}) c||^2 / 2; one QR of B
    gives all nested d at once. Returns an array of length n = columns.shape[1].
    """
    root = np.sqrt(np.asarray(eigenvalues, dtype=np.float64))
    c = root * np.asarray(w0, dtype=np.float64)
    q, _ = np.linalg.qr(root[:, None] * np.asarray(columns, dtype=np.float64))
    explained = np.cumsum((q.T @ c) ** 2)
    return np.maximum(0.5 * (c @ c - explained), 0.0)


def simulate_quadratic_well(eigenvalues: np.ndarray, radii: Sequence[float], dims: Sequence[int],
                            runs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimum loss over random affine subspaces, array (R, run, d), and the loss L(w0) of each
    initialization, array (R, run).

    Run r draws one uniformly random direction for w0 (scaled to each R) and one Gaussian basis,
    nested in d; the minimum is exact (:func:`quadratic_min_loss`), so success at eps means the
    subspace intersects the sublevel set S(eps).
    """
    dim = len(eigenvalues)
    dims = np.asarray(dims, dtype=int)
    for d in dims:
        check_size(dim, int(d))
    out = np.empty((len(radii), runs, len(dims)))
    initial = np.empty((len(radii), runs))
    lam = np.asarray(eigenvalues, dtype=np.float64)
    for run in range(runs):
        rng = np.random.default_rng([seed, run])
        direction = rng.standard_normal(dim)
        direction /= np.linalg.norm(direction)
        columns = rng.standard_normal((dim, int(dims.max())))
        for i, radius in enumerate(radii):
            out[i, run] = quadratic_min_loss(eigenvalues, radius * direction, columns)[dims - 1]
            initial[i, run] = 0.5 * radius ** 2 * float(np.sum(lam * direction ** 2))
    return out, initial


def angular_dimension_bound(eigenvalues: np.ndarray, eps: Any, radius: float) -> np.ndarray:
    """Eq. 3.4 of seed 004: d_local(eps, R) >~ sum_i r_i^2 / (R^2 + r_i^2), r_i^2 = 2 eps / lambda_i."""
    eps = np.asarray(eps, dtype=np.float64)
    r2 = 2.0 * eps[..., None] / np.asarray(eigenvalues, dtype=np.float64)
    return np.sum(r2 / (radius ** 2 + r2), axis=-1)


def threshold_bound(eigenvalues: np.ndarray, eps: Any, radius: float) -> np.ndarray:
    """The upper bound D - d_local(eps, R) on the threshold training dimension."""
    return len(eigenvalues) - angular_dimension_bound(eigenvalues, eps, radius)


def quadratic_well_dataset(quad: Mapping[str, Any]) -> xr.Dataset:
    """results/dof/quadratic_well.zarr: exact minimum losses (spectrum, radius, run, d), the
    success probability and simulated d* per eps, the Eq. 3.4 bound on d* and their gap.

    The exact minimum comes for every d = 1..D from one QR per run, so d* is always read on that
    full grid (a coarse grid would round d* up to its next point); ``dof_quadratic.dims`` only
    selects the d stored and drawn (null: all).
    """
    dim = quad["dim"]
    full = np.arange(1, dim + 1)
    dims = np.asarray(quad["dims"] or full, dtype=int)
    eps = np.geomspace(quad["eps"]["low"], quad["eps"]["high"], quad["eps"]["num"])
    names = [s["name"] for s in quad["spectra"]]
    spectra = np.stack([quadratic_spectrum(s["kind"], dim, s["low"], s["high"]) for s in quad["spectra"]])
    simulated = [simulate_quadratic_well(lam, quad["radii"], full, quad["runs"], quad["seed"] + i)
                 for i, lam in enumerate(spectra)]
    losses = np.stack([m for m, _ in simulated])
    initial = np.stack([w for _, w in simulated])
    bound = np.stack([[threshold_bound(lam, eps, r) for r in quad["radii"]] for lam in spectra])
    coords = {"spectrum": names, "spectrum_index": np.arange(dim), "radius": list(quad["radii"]),
              "run": np.arange(quad["runs"]), "eps": eps}
    everywhere = xr.DataArray(losses, dims=("spectrum", "radius", "run", "d"),
                              coords={k: coords[k] for k in ("spectrum", "radius", "run")} | {"d": full})
    eps_axis = xr.DataArray(eps, dims=("eps",), coords={"eps": eps})
    success_full = (everywhere <= eps_axis).mean("run").transpose("spectrum", "radius", "eps", "d")
    ds = xr.Dataset(
        {
            "eigenvalues": (("spectrum", "spectrum_index"), spectra),
            "min_loss": everywhere.sel(d=dims),
            "threshold_bound": (("spectrum", "radius", "eps"), bound),
        },
        coords=coords,
    )
    ds["initial_loss"] = (("spectrum", "radius", "run"), initial)
    ds["success_probability"] = success_full.sel(d=dims)
    # eps >= L(w0) for enough runs: w0 is already in S(eps), d* = 0 and the bound is not tested
    trivial = (ds["initial_loss"] <= eps_axis).mean("run") >= 1 - quad["delta"] - 1e-12
    ds["trivial"] = trivial.transpose("spectrum", "radius", "eps")
    ds["threshold_dimension"] = threshold_dimension(success_full, quad["delta"]).where(~ds["trivial"], 0.0)
    ds["threshold_gap"] = (ds["threshold_dimension"] - ds["threshold_bound"]).where(~ds["trivial"])
    ds["eigenvalues"].attrs.update(long_name="Hessian eigenvalues lambda_i of the well", units="loss / parameter^2")
    ds["min_loss"].attrs.update(long_name="exact minimum of w^T H w / 2 over w0 + span(A_d)", units="loss")
    ds["threshold_bound"].attrs.update(long_name="D - sum r_i^2 / (R^2 + r_i^2), r_i^2 = 2 eps / lambda_i (Eq. 3.4)",
                                       units="1")
    ds["success_probability"].attrs.update(long_name="fraction of runs with min_loss <= eps", units="1")
    ds["threshold_dimension"].attrs.update(
        long_name=f"simulated d*(eps) on every d = 1..D: smallest d with success >= 1 - delta (delta = "
                  f"{quad['delta']}); 0 where trivial", units="1")
    ds["threshold_gap"].attrs.update(
        long_name="simulated d* minus the Eq. 3.4 bound (positive: the bound is exceeded; NaN where trivial)",
        units="1")
    ds["initial_loss"].attrs.update(long_name="L(w0) = w0^T H w0 / 2 of each run's initialization", units="loss")
    ds["trivial"].attrs.update(
        long_name="eps >= L(w0) in at least 1 - delta of the runs: w0 is already in S(eps), d* = 0", units="1")
    gap = ds["threshold_gap"].values
    ds.attrs.update(D=dim, delta=quad["delta"],
                    max_gap=float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan"),
                    min_gap=float(np.nanmin(gap)) if np.isfinite(gap).any() else float("nan"))
    return ds
