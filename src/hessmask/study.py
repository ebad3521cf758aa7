"""The mask-eigenspace study, one function per workflow job (seed 000 section 5; TMLR paper).

Each function takes plain values (config dicts, paths, Datasets) and returns an xarray Dataset the
workflow script writes; nothing here knows about Snakemake.

- ``hessian_operator``: the curvature operator of a checkpoint over a class-balanced subset.
- ``exact_store`` / ``shard_store`` / ``sketch_store``: eigen stores (eigenvalues, eigenvectors
  as float32 (param, k), diagnostics) from the exact solver or from merged SEIGH shards.
- ``step_metrics``: overlap of the step's magnitude masks with each method's top-k eigenspace for
  every k, random-mask baselines, the seven Grassmannian metrics at each rho, spectrum statistics.
- ``combine_metrics`` and ``eigenspace_pairs``: the per-experiment ``metrics.zarr``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from hessmask import eigen as E
from hessmask.curvature import OPERATORS, CurvatureOperator
from hessmask.data import class_balanced_indices
from hessmask.grassmann import METRICS, mask_matrix_angles, metrics_from_angles
from hessmask.masks import energy_concentration, k_of_rho, magnitude_mask
from hessmask.training import Checkpoint

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float64": torch.float64}
VECTOR_CHUNK_BYTES = 16 << 20  # eigenvector chunks of ~16 MiB


def hessian_operator(checkpoint: Checkpoint, data: Any, split: str, samples: int,
                     eigen: Mapping[str, Any]) -> CurvatureOperator:
    """The curvature of the mean loss over the class-balanced ``samples`` of ``split``."""
    idx = class_balanced_indices(data.labels(split), samples, data.num_classes)
    x, y = data.batch(split, idx)
    model = checkpoint.model(eigen["device"])
    return OPERATORS[eigen["curvature"]](model, x, y, dtype=DTYPES[eigen["dtype"]], device=eigen["device"],
                                         block_size=eigen["block_size"], data_chunk=eigen["data_chunk"])


def _eigen_dataset(result: E.EigenResult, dim: int, settings: Mapping[str, Any]) -> xr.Dataset:
    k = result.k
    ds = xr.Dataset(
        {
            "eigenvalues": (("k_index",), result.eigenvalues.astype(np.float64)),
            "eigenvectors": (("param", "k_index"), result.eigenvectors.astype(np.float32)),
        },
        coords={"k_index": np.arange(k), "param": np.arange(dim)},
    )
    ds["eigenvalues"].attrs.update(long_name="eigenvalues by descending |lambda|", units="nats / parameter^2")
    ds["eigenvectors"].attrs.update(long_name="unit eigenvectors (columns), same order as eigenvalues")
    if result.residuals is not None:
        ds["residual_norm"] = (("residual_index",), result.residuals)
        ds["residual_norm"].attrs.update(long_name="||H u - lambda u|| of the leading pairs")
    if "spectrum" in result.extra:
        ds["spectrum"] = (("spectrum_index",), result.extra["spectrum"])
        ds["spectrum"].attrs.update(long_name="all D eigenvalues, descending (exact solve only)")
    ds.attrs.update(
        method=result.method,
        products=int(result.products),
        timings=json.dumps(result.timings),
        settings=json.dumps(settings, sort_keys=True, default=str),
    )
    return ds


def eigenvector_encoding(dim: int, k: int) -> dict:
    """zarr chunking of the (param, k) eigenvectors: whole columns, ~16 MiB per chunk."""
    rows = int(max(1, min(dim, VECTOR_CHUNK_BYTES // (4 * max(k, 1)))))
    return {"eigenvectors": {"chunks": (rows, k)}}


def exact_store(operator: CurvatureOperator, k: int, eigen: Mapping[str, Any]) -> xr.Dataset:
    """Exact top-k (dense float64 eigh of the matrix from D products)."""
    result = E.exact(operator, k, block=eigen["block_size"], residual_pairs=eigen["residual_pairs"])
    return _eigen_dataset(result, operator.dim, {"method": "exact", "k": k, **eigen})


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


def shard_store(operator: CurvatureOperator, eigen: Mapping[str, Any], shard: int) -> xr.Dataset:
    """SEIGH measurements of one shard: inner-sketch columns and outer-sketch columns."""
    spec = sketch_spec(eigen, operator.dim)
    start, stop = shard_ranges(spec.inner, eigen["block_size"], eigen["sketch"]["shards"])[shard]
    part = E.seigh_measure(operator, spec, start, stop, block=eigen["block_size"])
    ds = xr.Dataset(
        {"inner": (("inner_row", "measurement"), part.inner),
         "outer": (("param", "outer_measurement"), part.outer)},
        coords={"measurement": np.arange(start, stop),
                "outer_measurement": np.arange(start, start + part.outer.shape[1])},
    )
    ds.attrs.update(start=start, stop=stop, products=part.products, seconds=part.seconds)
    return ds


def sketch_store(operator: CurvatureOperator, shards: Sequence[xr.Dataset], eigen: Mapping[str, Any],
                 seed: int) -> xr.Dataset:
    """Merge shards, recover the top-s eigenpairs; residuals and a-posteriori error as configured."""
    spec = sketch_spec(eigen, operator.dim)
    parts = [E.Measurements(int(s.attrs["start"]), int(s.attrs["stop"]), s["inner"].values,
                            s["outer"].values, int(s.attrs["products"]), float(s.attrs["seconds"]))
             for s in shards]
    timer = E.Timer()
    timer.timings["measure"] = float(sum(p.seconds for p in parts))
    with timer.phase("merge"):
        outer, inner = E.seigh_merge(parts, spec)
    values, vectors = E.seigh_recover(outer, inner, spec, spec.outer, timer)
    result = E.EigenResult(values, vectors, "seigh", int(sum(p.products for p in parts)), timer.timings)
    if eigen["residual_pairs"]:
        with timer.phase("residuals"):
            result.residuals = E.residual_norms(operator, values, vectors, eigen["residual_pairs"])
    ds = _eigen_dataset(result, operator.dim, {"method": "seigh", **eigen})
    if eigen["aposteriori_samples"]:
        with timer.phase("aposteriori"):
            post = E.aposteriori_error(operator, values, vectors, eigen["aposteriori_samples"], seed)
        bounds = E.aposteriori_bounds(eigen["aposteriori_samples"], 0.5)
        ds.attrs.update(aposteriori=json.dumps({**post, "bounds_eps0.5": bounds}))
    ds.attrs["timings"] = json.dumps(timer.timings)
    return ds


# ----------------------------------------------------------------------------- metrics


def nested_overlap(order: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """overlap(m_k, U_k) for k = 1..K, where m_k = the first k entries of ``order``.

    With S = U^2 restricted to the rows of ``order[:K]`` (in that order), overlap(k) is the sum of
    the leading k x k block of S divided by k: one 2-D cumulative sum gives every k.
    """
    k_max = vectors.shape[1]
    squares = np.asarray(vectors[order[:k_max]], dtype=np.float64) ** 2
    cumulative = squares.cumsum(axis=0).cumsum(axis=1)
    ks = np.arange(1, k_max + 1)
    return cumulative[ks - 1, ks - 1] / ks


def step_metrics(theta: np.ndarray, eigen_stores: Mapping[str, xr.Dataset], rhos: Sequence[float],
                 random_masks: int, seed: int, frobenius: float | None = None) -> xr.Dataset:
    """All per-(step, split) comparisons of the magnitude masks with each method's eigenspaces.

    ``frobenius``: an estimate of ||H||_F (from the a-posteriori products) to normalize the
    spectrum concentration of methods that do not see the whole spectrum.
    """
    dim = theta.size
    magnitude_order = np.argsort(-np.abs(theta.astype(np.float64)), kind="stable")
    methods = list(eigen_stores)
    k_all = max(s.sizes["k_index"] for s in eigen_stores.values())
    ks = np.arange(1, k_all + 1)
    overlap = np.full((len(methods), k_all), np.nan)
    random_mean = np.full_like(overlap, np.nan)
    random_std = np.full_like(overlap, np.nan)
    grassmann = np.full((len(methods), len(rhos), len(METRICS)), np.nan)
    kappa = np.full((len(methods), len(rhos)), np.nan)
    eigenvalues = np.full((len(methods), k_all), np.nan)
    rng = np.random.default_rng(seed)
    random_orders = [rng.permutation(dim) for _ in range(random_masks)]
    for m, name in enumerate(methods):
        store = eigen_stores[name]
        vectors = store["eigenvectors"].values
        values = store["eigenvalues"].values
        k = vectors.shape[1]
        eigenvalues[m, :k] = values
        overlap[m, :k] = nested_overlap(magnitude_order, vectors)
        baseline = np.stack([nested_overlap(order, vectors) for order in random_orders])
        random_mean[m, :k] = baseline.mean(axis=0)
        random_std[m, :k] = baseline.std(axis=0, ddof=1) if random_masks > 1 else 0.0
        for r, rho in enumerate(rhos):
            kk = k_of_rho(dim, rho)
            if kk <= k:
                angles = mask_matrix_angles(magnitude_mask(theta, kk), vectors[:, :kk])
                grassmann[m, r] = list(metrics_from_angles(angles).values())
            if "spectrum" in store:
                kappa[m, r] = energy_concentration(store["spectrum"].values, rho)
            elif frobenius and kk <= k:
                kappa[m, r] = float(np.sqrt(np.sum(values[:kk] ** 2)) / frobenius)
    ds = xr.Dataset(
        {
            "overlap": (("method", "k"), overlap),
            "random_mask_overlap_mean": (("method", "k"), random_mean),
            "random_mask_overlap_std": (("method", "k"), random_std),
            "grassmann": (("method", "rho", "metric"), grassmann),
            "kappa_spectrum": (("method", "rho"), kappa),
            "eigenvalues": (("method", "eigen_index"), eigenvalues),
        },
        coords={"method": methods, "k": ks, "rho": np.asarray(rhos, dtype=np.float64),
                "metric": list(METRICS), "eigen_index": np.arange(k_all)},
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
        "kappa_spectrum": ("1", "energy concentration of the spectrum: ||lambda_top||/||lambda|| over the top rho D eigenvalues"),
        "eigenvalues": ("nats / parameter^2", "leading eigenvalues by descending |lambda|"),
    }
    for name, (units, text) in notes.items():
        if name in ds:
            ds[name].attrs.update(units=units, long_name=text)
    ds.attrs["D"] = dim


def eigenspace_pairs(stores: Mapping[tuple[str, str, int], xr.Dataset], rhos: Sequence[float],
                     dim: int) -> xr.Dataset:
    """Overlap of top-k eigenspaces between record steps (per method, split, rho), and between the
    test and train eigenspaces at the same step."""
    methods = sorted({m for m, _, _ in stores}, key=["exact", "seigh"].index)
    splits = sorted({s for _, s, _ in stores}, key=["train", "test"].index)
    steps = sorted({t for _, _, t in stores})
    pairs = np.full((len(methods), len(splits), len(rhos), len(steps), len(steps)), np.nan)
    cross = np.full((len(methods), len(rhos), len(steps)), np.nan)
    for m, method in enumerate(methods):
        for r, rho in enumerate(rhos):
            k = k_of_rho(dim, rho)
            bases = {key[1:]: s["eigenvectors"].values[:, :k].astype(np.float64) for key, s in stores.items()
                     if key[0] == method and s.sizes["k_index"] >= k}
            for si, split in enumerate(splits):
                for i, a in enumerate(steps):
                    for j, b in enumerate(steps[i:], start=i):
                        if (split, a) in bases and (split, b) in bases:
                            value = E.top_overlap(bases[(split, a)], bases[(split, b)], k)
                            pairs[m, si, r, i, j] = pairs[m, si, r, j, i] = value
            for i, step in enumerate(steps):
                if ("train", step) in bases and ("test", step) in bases:
                    cross[m, r, i] = E.top_overlap(bases[("train", step)], bases[("test", step)], k)
    ds = xr.Dataset(
        {"eigenspace_overlap": (("method", "split", "rho", "step", "step_other"), pairs),
         "train_test_overlap": (("method", "rho", "step"), cross)},
        coords={"method": methods, "split": np.array(splits, dtype="U5"), "rho": np.asarray(rhos, dtype=np.float64),
                "step": steps, "step_other": steps},
    )
    ds["eigenspace_overlap"].attrs.update(units="1", long_name="overlap of the top-k eigenspaces of two record steps, k = round(rho D)")
    ds["train_test_overlap"].attrs.update(units="1", long_name="overlap of the top-k eigenspaces of the train- and test-subset Hessians at one step")
    return ds


def _fmt(value: float, spec: str) -> str:
    """A number for a Markdown table; "n/a" where the method did not run at that step."""
    return format(value, spec) if np.isfinite(value) else "n/a"


def summary_markdown(name: str, metrics: xr.Dataset, diagnostics: Mapping[tuple[str, int], Mapping[str, Any]],
                     rho: float = 0.05, tolerance: float = 0.02) -> str:
    """Acceptance summary: exact vs sketched overlap at k = rho D per step and split.

    ``diagnostics[(split, step)]`` holds the sketch's a-posteriori error and the relative errors of
    its leading eigenvalues against the exact ones; differences above ``tolerance`` are listed with
    them, so that none is left unexplained.
    """
    dim = int(metrics.attrs["D"])
    k = k_of_rho(dim, rho)
    methods = list(metrics["method"].values)
    lines = [f"# {name}: exact vs sketched mask-eigenspace overlap", "",
             f"k = {k} (rho = {rho} of D = {dim}); chance k/D = {k / dim:.4f}.", ""]
    if not {"exact", "seigh"} <= set(methods):
        lines.append(f"Methods present: {', '.join(methods)}; the comparison needs both exact and seigh.")
    header = "| split | step | " + " | ".join(f"{m} overlap" for m in methods)
    header += " | seigh - exact | " + " | ".join(f"{m} / chance" for m in methods) + " |"
    lines += [header, "|" + "---|" * (2 + 2 * len(methods) + 1)]
    flagged = []
    for split in metrics["split"].values:
        for step in metrics["step"].values:
            values = {m: float(metrics["overlap"].sel({"method": m, "split": split, "step": step, "k": k})) for m in methods}
            diff = values.get("seigh", np.nan) - values.get("exact", np.nan)
            cells = " | ".join(_fmt(values[m], ".4f") for m in methods)
            ratios = " | ".join(_fmt(values[m] / (k / dim), ".2f") for m in methods)
            lines.append(f"| {split} | {int(step)} | {cells} | {_fmt(diff, '+.4f')} | {ratios} |")
            if np.isfinite(diff) and abs(diff) > tolerance:
                flagged.append((split, int(step), diff))
    lines.append("")
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
                  "Each is a property of the spectrum at that step, shown by the sketch's diagnostics: "
                  "the a-posteriori estimate of ||H - H_sketch||_F relative to ||H||_F, and how well the "
                  "sketch recovers the leading eigenvalues. A single-pass sketch of size ~2k recovers a "
                  "top-k subspace poorly when the spectrum has no gap at k (a flat bulk around k), while "
                  "the leading, well-separated eigenvalues stay accurate.", "",
                  "| split | step | difference | a-posteriori relative error | rel. error of top-10 eigenvalues (max) | rel. error of eigenvalue k (exact vs seigh) |",
                  "|---|---|---|---|---|---|"]
        for split, step, diff in flagged:
            d = diagnostics.get((split, step), {})
            lines.append(f"| {split} | {step} | {diff:+.4f} | {d.get('relative_error', float('nan')):.3f} | "
                         f"{d.get('top10_eigenvalue_error', float('nan')):.2e} | {d.get('eigenvalue_k_error', float('nan')):.2e} |")
        lines.append("")
    else:
        lines.append("All differences are within the tolerance.")
    return "\n".join(lines) + "\n"


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
