"""The metrics stage's jobs: magnitude masks against the eigen stores (docs/science.md, "Metrics").

Each function takes plain values (parameter vectors, opened eigen stores) and returns a Dataset or
text that the workflow script writes. Nothing here knows about Snakemake.

- ``step_metrics``: overlap of the step's magnitude masks with each method's top-k eigenspace for
  every k, random-mask baselines, the seven Grassmannian metrics at each rho, spectrum statistics,
  the eigenspace accuracy of every method against the exact solve.
- ``combine_metrics`` and ``eigenspace_pairs``: the per-experiment ``metrics.zarr``.
- ``summary_markdown``, ``sketch_quality``, ``sketch_diagnostics``: the experiment's summary.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from hessmask.eigen.methods import NAMES as METHODS
from hessmask.grassmann import METRICS, mask_matrix_angles, metrics_from_angles, whitening
from hessmask.masks import boundary_ties, energy_concentration, k_of_rho, magnitude_order
from hessmask.rows import row_chunks


def source_of(store: xr.Dataset) -> str:
    """The path a store was opened from (for messages)."""
    return str(store.encoding.get("source", "an eigen store"))


def finite(values: Any, source: str, what: str) -> np.ndarray:
    """``values`` read from the eigen store at ``source``, refused where any is not finite (a store
    written from a diverged run, or damaged), naming the store."""
    values = np.asarray(values)
    if not np.isfinite(values).all():
        raise ValueError(f"{source}: its {what} hold {int(np.sum(~np.isfinite(values)))} non-finite values; the "
                         f"store is damaged or was written from diverged products: delete it and rerun its solve "
                         f"(rm -r '{source}' && snakemake)")
    return values


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


def gather_rows(vectors: xr.DataArray, orders: Sequence[np.ndarray], k: int, source: str = "an eigen store"
                ) -> list[np.ndarray]:
    """For each index order, the rows ``order[:k]`` of the first k eigenvectors (k x k each, float64).

    One read of the union of the wanted rows (a zarr orthogonal selection reads only the chunks
    that hold them, and only the first k columns): memory O(len(orders) x k^2), never D x k.
    """
    wanted = np.unique(np.concatenate([np.asarray(o[:k]) for o in orders]))
    block = np.asarray(vectors.isel(param=wanted, eigenpair=slice(0, k)).values, dtype=np.float64)
    finite(block, source, "eigenvectors")
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
        values = finite(store["eigenvalues"].values, source_of(store), "eigenvalues")
        k = values.size
        eigenvalues[m, :k] = values
        rows = gather_rows(store["eigenvectors"], [order] + random_orders, k, source_of(store))
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
    match = np.full((len(methods), k_all), np.nan)  # the exact pair each eigenvector is closest to
    match_cosine = np.full((len(methods), k_all), np.nan)
    if "exact" in eigen_stores:
        reference = eigen_stores["exact"]
        ref_values = reference["eigenvalues"].values
        for m, name in enumerate(methods):
            k_est = eigen_stores[name].sizes["eigenpair"]
            k = min(ref_values.size, k_est)
            if name == "exact":
                accuracy[m, :k] = 1.0
                value_error[m, :k], match[m, :k], match_cosine[m, :k] = 0.0, np.arange(k), 1.0
                continue
            # U_exact^T U over every exact pair, so that each eigenvector finds its exact partner
            gram = cross_gram(reference, eigen_stores[name], ref_values.size, k_est, row_chunk)
            accuracy[m, :k] = nested_overlap(np.arange(k), gram[:k, :k])  # (1/k)||U_exact,k^T U_k||_F^2, every k
            partner = np.argmax(np.abs(gram), axis=0)
            match[m, :k_est], match_cosine[m, :k_est] = partner, np.abs(gram[partner, np.arange(k_est)])
            value_error[m, :k_est] = np.abs(eigenvalues[m, :k_est] - ref_values[partner]) / np.abs(ref_values[partner])
    ds = xr.Dataset(
        {
            "boundary_ties": (("rho",), tied),
            "eigenspace_accuracy": (("method", "k"), accuracy),
            "eigenvalue_relative_error": (("method", "eigenpair"), value_error),
            "eigenvalue_match": (("method", "eigenpair"), match),
            "eigenvector_match_cosine": (("method", "eigenpair"), match_cosine),
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
    ds.attrs["eligible"] = int(pool.size)  # D minus masks.exclude: what the masks choose among
    return ds


def combine_metrics(per_step: Mapping[tuple[str, int], xr.Dataset], dim: int) -> xr.Dataset:
    """Stack per-(split, step) metrics into (…, split, step, …) and add ``chance`` = k / D', D' the
    parameters a mask may hold (D less ``masks.exclude``; the per-step metrics' ``eligible``)."""
    splits = sorted({split for split, _ in per_step}, key=["train", "test"].index)
    steps = sorted({step for _, step in per_step})
    rows = []
    for split in splits:
        cols = [per_step[(split, step)].expand_dims(step=[step]) for step in steps]
        rows.append(xr.concat(cols, dim="step", join="outer").expand_dims(split=np.array([split], dtype="U5")))
    ds = xr.concat(rows, dim="split", join="outer")
    # the outer joins sort the methods of steps that ran different solvers: restore METHODS' order
    ds = ds.sel({"method": [m for m in METHODS if m in ds["method"].values]})
    order = ("method", "split", "step")
    ds = ds.transpose(*order, ...)
    eligible = {int(part.attrs.get("eligible", dim)) for part in per_step.values()}
    if len(eligible) != 1:
        raise ValueError(f"the per-step metrics choose masks among different numbers of parameters: {sorted(eligible)}")
    eligible = eligible.pop()
    ds["chance"] = ("k", ds["k"].values / eligible)
    describe(ds, dim)
    ds.attrs.update(D=dim, eligible=eligible)
    return ds


def describe(ds: xr.Dataset, dim: int) -> None:
    """Units and meaning of every variable of metrics.zarr."""
    notes = {
        "overlap": ("1", "overlap (1/k)||I_mask^T U_k||_F^2 of the magnitude mask with the top-k eigenspace"),
        "chance": ("1", "k / D', D' = the parameters a mask may hold (D less masks.exclude; attribute eligible): "
                        "the expected overlap of a k-mask with a k-subspace spread uniformly over them"),
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
        "eigenvalue_relative_error": ("1", "|lambda_i - lambda_exact,j| / |lambda_exact,j|, j = eigenvalue_match(i): "
                                           "each eigenvalue against the exact pair its eigenvector is closest to"),
        "eigenvalue_match": ("1", "j maximizing |<u_exact,j, u_i>|: the exact pair eigenpair i is matched to"),
        "eigenvector_match_cosine": ("1", "|<u_exact,j, u_i>| of the matched pair (below 0.71: no exact "
                                          "eigenvector dominates, the match is ambiguous)"),
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
    for lo, hi in row_chunks(dim, row_chunk):
        blocks = {i: finite(np.asarray(stores[i]["eigenvectors"][lo:hi, :k].values, dtype=np.float64),
                            source_of(stores[i]), f"eigenvectors (rows {lo} to {hi})") for i in used}
        for a, b in pairs:
            grams[(a, b)] += blocks[a].T @ blocks[b]
    return grams


def cross_gram(reference: xr.Dataset, estimate: xr.Dataset, k_ref: int, k_est: int,
               row_chunk: int = 65536) -> np.ndarray:
    """U_ref[:, :k_ref]^T U_est[:, :k_est] of two eigen stores, streamed over row chunks ((k_ref, k_est))."""
    gram = np.zeros((k_ref, k_est))
    for lo, hi in row_chunks(reference.sizes["param"], row_chunk):
        a, b = (finite(np.asarray(s["eigenvectors"][lo:hi, :n].values, dtype=np.float64), source_of(s),
                       f"eigenvectors (rows {lo} to {hi})") for s, n in ((reference, k_ref), (estimate, k_est)))
        gram += a.T @ b
    return gram


def subspace_overlaps(stores: Sequence[xr.Dataset], pairs: Sequence[tuple[int, int]], k: int,
                      row_chunk: int = 65536) -> list[float]:
    """(1/k)||Q_a^T Q_b||_F^2 for each pair (a, b) of stores, Q an orthonormal basis of the span of
    U[:, :k]: the self-Grams G_aa = U_a^T U_a (from the same pass) give Q_a = U_a W_a
    (``hessmask.grassmann.whitening``, directions below float32 rounding dropped), so nearly
    dependent columns count once; for orthonormal stores W = I to rounding."""
    used = sorted({i for pair in pairs for i in pair})
    grams = subspace_grams(stores, [*pairs, *((i, i) for i in used if (i, i) not in pairs)], k, row_chunk)
    white = {i: whitening(grams[(i, i)]) for i in used}
    return [float(np.sum((white[a].T @ grams[(a, b)] @ white[b]) ** 2) / k) for a, b in pairs]


def store_axes(stores: Mapping[tuple[str, str, int], Any]) -> tuple[list[str], list[str], list[int]]:
    """The (methods, splits, steps) of eigen stores keyed by (method, split, step), in the order the
    metrics store lists them: methods in registry order (``hessmask.eigen.methods.NAMES``), train
    before test, steps ascending."""
    return (sorted({m for m, _, _ in stores}, key=METHODS.index),
            sorted({s for _, s, _ in stores}, key=["train", "test"].index),
            sorted({t for _, _, t in stores}))


def eigenspace_pairs(stores: Mapping[tuple[str, str, int], xr.Dataset], rhos: Sequence[float],
                     dim: int, row_chunk: int = 65536) -> xr.Dataset:
    """Overlap of top-k eigenspaces between record steps (per method, split, rho), and between the
    test and train eigenspaces at the same step; the stores are read in row chunks."""
    methods, splits, steps = store_axes(stores)
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


def solver_costs(stores: Mapping[tuple[str, str, int], xr.Dataset]) -> xr.Dataset:
    """What each solve cost and how wrong it says it is, per (method, split, step): ``products``
    (operator products of the solve, without residual and a-posteriori products) and
    ``aposteriori_error`` (the estimate of ||H - U diag(theta) U^T||_F / ||H||_F; NaN where not
    measured). With ``eigenspace_accuracy`` they give accuracy per product (docs/science.md,
    "Sketching versus Krylov methods")."""
    methods, splits, steps = store_axes(stores)
    products = np.full((len(methods), len(splits), len(steps)), np.nan)
    error = np.full_like(products, np.nan)
    floor = np.full_like(products, np.nan)
    for (method, split, step), store in stores.items():
        at = (methods.index(method), splits.index(split), steps.index(step))
        products[at] = float(store.attrs.get("products", np.nan))
        error[at] = json.loads(store.attrs.get("aposteriori", "{}")).get("relative_error", np.nan)
        exact = stores.get(("exact", split, step))
        if exact is not None and "spectrum" in exact:
            floor[at] = truncation_error(exact["spectrum"].values, store.sizes["eigenpair"])
    ds = xr.Dataset({"products": (("method", "split", "step"), products),
                     "aposteriori_error": (("method", "split", "step"), error),
                     "truncation_error": (("method", "split", "step"), floor)},
                    coords={"method": methods, "split": np.array(splits, dtype="U5"), "step": steps})
    ds["products"].attrs.update(units="1", long_name="operator products of the solve (D for the exact one)")
    ds["aposteriori_error"].attrs.update(
        units="1", long_name="a-posteriori estimate of ||H - U diag(theta) U^T||_F / ||H||_F (a distance; its "
                             "floor for k pairs is truncation_error, not 0)")
    ds["truncation_error"].attrs.update(
        units="1", long_name="||H - H_k||_F / ||H||_F of the exact top-k eigenpairs, k = the method's pairs: the "
                             "smallest error any k pairs can have (steps with an exact solve)")
    return ds


def truncation_error(spectrum: np.ndarray, k: int) -> float:
    """sqrt(sum of lambda_i^2 beyond the k largest |lambda|) / ||H||_F from a whole spectrum: the
    relative Frobenius error of the best rank-k approximation (Eckart-Young), the floor of any
    solver's a-posteriori error with k pairs."""
    squares = np.sort(np.asarray(spectrum, dtype=np.float64) ** 2)[::-1]
    total = float(squares.sum())
    return float(np.sqrt(squares[k:].sum() / total)) if total > 0 else float("nan")


def accuracy_lines(metrics: xr.Dataset, k: int) -> list[str]:
    """Markdown: accuracy per product of each approximate method at k (mean over the steps with an
    exact solve) and its a-posteriori error (mean over all its steps)."""
    if "products" not in metrics:
        return []
    lines = ["## Accuracy per product", "",
             f"Each approximate method's top-{k} eigenspace against the exact one (overlap: 1 = the same "
             "subspace; mean and range over the exactly solved steps and splits), its products and its "
             "a-posteriori relative error ||H - U diag(theta) U^T||_F / ||H||_F (mean over every step; even the "
             "exact top-k pairs leave the truncation error, metrics.zarr: truncation_error).", "",
             "| method | products | top-k eigenspace vs exact: mean | min | max | a-posteriori error |",
             "|---|---|---|---|---|---|"]
    for method in metrics["method"].values:
        if method == "exact":
            continue
        products = metrics["products"].sel({"method": method})
        accuracy = (metrics["eigenspace_accuracy"].sel({"method": method, "k": k}).values
                    if "eigenspace_accuracy" in metrics and k in metrics["k"].values else np.array([np.nan]))
        finite = accuracy[np.isfinite(accuracy)]
        mean, low, high = ((float(finite.mean()), float(finite.min()), float(finite.max())) if finite.size
                           else (np.nan,) * 3)
        post = metrics["aposteriori_error"].sel({"method": method}).values
        post = float(np.nanmean(post)) if np.isfinite(post).any() else np.nan
        lines.append(f"| {method} | {_fmt(float(np.nanmax(products.values)), '.0f')} | {_fmt(mean, '.4f')} | "
                     f"{_fmt(low, '.4f')} | {_fmt(high, '.4f')} | {_fmt(post, '.3g')} |")
    return lines + [""]


def chance_text(metrics: xr.Dataset, k: int) -> str:
    """'chance k/D = ...', or 'chance k/(D - excluded) = ...' where masks.exclude left parameters out."""
    dim, eligible = int(metrics.attrs["D"]), int(metrics.attrs.get("eligible", metrics.attrs["D"]))
    if eligible == dim:
        return f"chance k/D = {k / dim:.4g}"
    return f"chance k/(D - {dim - eligible} excluded) = {k / eligible:.4g}"


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
             f"k = {k} (rho = {rho:g} of D = {dim}); {chance_text(metrics, k)}.", ""]
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
            ratios = " | ".join(_fmt(values[m] / float(metrics["chance"].sel(k=k)), ".2f") for m in methods)
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
    lines += accuracy_lines(metrics, k)
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


def sketch_diagnostics(metrics: xr.Dataset, sketch: xr.Dataset, split: str, step: int, k: int) -> dict[str, float]:
    """The sketch's a-posteriori error and the relative errors of its eigenvalues against the exact
    ones at (split, step): ``eigenvalue_relative_error`` of the metrics, each eigenvalue against the
    exact pair its eigenvector is closest to (the largest of the first 10, and eigenvalue k)."""
    rel = metrics["eigenvalue_relative_error"].sel({"method": "seigh", "split": split, "step": step}).values
    rel = rel[np.isfinite(rel)]
    post = json.loads(sketch.attrs.get("aposteriori", "{}"))
    return {"relative_error": post.get("relative_error", float("nan")),
            "top10_eigenvalue_error": float(rel[:10].max()) if rel.size else float("nan"),
            "eigenvalue_k_error": float(rel[min(k, rel.size) - 1]) if rel.size else float("nan")}
