"""Measurement shards and the streaming solve through their zarr stores, on a dense operator."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from hessmask import eigen as E
from hessmask import metrics
from hessmask.eigen import krylov_store, seigh_store
from hessmask.eigen.exact import exact
from hessmask.eigen.methods import BlockKrylovSpec, ExactSpec, SeighSpec
from hessmask.eigen.seigh import seigh
from hessmask.grassmann import top_overlap
from hessmask.operators import MatrixOperator
from hessmask.store import open_dataset

D = 300
#: what every method's spec reads of eigen.* (hessmask.eigen.methods.SolveSpec)
SHARED = dict(curvature="hessian", dtype="float32", device="cpu", block_size=16, data_chunk=None, residual_pairs=4,
              row_chunk=64, vector_chunk=8)
EIGEN = SeighSpec(**SHARED, aposteriori_samples=3, outer=40, inner=80, kind="sparse_sign", seed=5, shards=3)


def operator():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    lam = np.concatenate([np.linspace(50, 20, 6), rng.standard_normal(D - 6)])
    return MatrixOperator((q * lam) @ q.T, dtype=torch.float32)


def measure(tmp_path, eigen=EIGEN, name="shards"):
    paths = []
    for shard in range(eigen.shards):
        path = tmp_path / name / f"shard={shard}.zarr"
        seigh_store.measure_shard(operator(), eigen, shard, path, {"step": 0})
        paths.append(path)
    return paths


def test_sharded_stores_give_the_in_process_solve(tmp_path):
    """Three shard jobs, their stores and the streaming solve: bitwise the in-process SEIGH."""
    paths = measure(tmp_path)
    out = tmp_path / "eigen.zarr"
    seigh_store.solve_store(operator(), EIGEN, paths[::-1], seed=1, path=out, attrs={"step": 0})
    store = open_dataset(out)
    ref = seigh(operator(), 40, outer=40, inner=80, seed=5, block=16, row_chunk=64, check_symmetry=False)
    assert np.array_equal(store["eigenvalues"].values, ref.eigenvalues)
    assert np.array_equal(store["eigenvectors"].values, ref.eigenvectors.astype(np.float32))
    assert store["eigenvectors"].dims == ("param", "eigenpair")
    assert store["eigenvectors"].encoding["chunks"] == (64, 8)
    assert store.attrs["products"] == 80 and store["residual_norm"].size == 4
    assert json.loads(store.attrs["aposteriori"])["samples"] == 3
    assert store.attrs["orthogonality_error"] < 1e-12


def test_the_registry_writer_of_seigh_gives_the_sharded_store(tmp_path):
    """hessmask.eigen.seigh_store.store, the writer every eigen_store job of SEIGH calls: from the
    shard stores of separate jobs, or measuring its one shard itself (shards = 1), bitwise the same
    store; its a-posteriori seed is seed + step."""
    paths = measure(tmp_path)
    seigh_store.store(operator(), EIGEN, -4, paths, tmp_path / "from_shards.zarr", {"step": 0})
    seigh_store.store(operator(), replace(EIGEN, shards=1), -4, [], tmp_path / "one_job.zarr", {"step": 0})
    seigh_store.solve_store(operator(), EIGEN, paths, seed=1, path=tmp_path / "direct.zarr", attrs={"step": 0})
    stores = [open_dataset(tmp_path / f"{name}.zarr") for name in ("from_shards", "one_job", "direct")]
    for name in ("eigenvalues", "eigenvectors", "residual_norm"):
        assert all(np.array_equal(s[name].values, stores[0][name].values) for s in stores), name
    assert len({json.loads(s.attrs["aposteriori"])["frobenius_error"] for s in stores}) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the one job's scratch shard is gone
    with pytest.raises(E.SolverError, match="needs its 3 shard stores"):
        seigh_store.store(operator(), EIGEN, 0, [], tmp_path / "x.zarr", {})


def test_kernel_store_writes_the_exact_solve(tmp_path):
    """The generic in-memory writer (hessmask.eigen.stores.kernel_store) with the exact kernel of the
    registry: the store holds exactly the kernel's eigenpairs, residuals and spectrum."""
    from hessmask.eigen.stores import kernel_store

    spec = ExactSpec(**{**SHARED, "dtype": "float64"}, k=12)
    timings = kernel_store(operator(), spec, 0, [], tmp_path / "exact.zarr", {"step": 0})
    store = open_dataset(tmp_path / "exact.zarr")
    ref = exact(operator(), 12, block=16, residual_pairs=4)
    assert np.array_equal(store["eigenvalues"].values, ref.eigenvalues)
    assert np.array_equal(store["eigenvectors"].values, ref.eigenvectors.astype(np.float32))
    assert np.array_equal(store["residual_norm"].values, ref.residuals)
    assert store["spectrum"].dims == ("spectrum_index",) and store.sizes["spectrum_index"] == D
    assert store.attrs["products"] == D and json.loads(store.attrs["settings"])["k"] == 12
    assert "aposteriori" not in store.attrs and set(timings) >= {"measure", "eigh"}
    with pytest.raises(E.SolverError, match="solved in one job"):
        kernel_store(operator(), spec, 0, ["a.zarr"], tmp_path / "x.zarr", {})


def test_shard_store_layout(tmp_path):
    shard = open_dataset(measure(tmp_path)[0])
    assert shard["outer"].dims == ("param", "outer_column") and shard["outer"].encoding["chunks"] == (64, 16)
    assert shard["inner"].shape == (80, shard.attrs["stop"] - shard.attrs["start"])
    assert json.loads(shard.attrs["sketch"]) == seigh_store.sketch_identity(EIGEN, D)


def expect_refusal(tmp_path, paths, match, eigen=EIGEN):
    out = tmp_path / "eigen.zarr"
    with pytest.raises(E.SolverError, match=match):
        seigh_store.solve_store(operator(), eigen, paths, seed=1, path=out, attrs={})
    assert not out.exists() and not list(tmp_path.glob(".eigen.zarr.tmp-*"))


def test_shard_of_another_sketch_is_refused(tmp_path):
    paths = measure(tmp_path)
    other = replace(EIGEN, seed=6)
    paths[1] = measure(tmp_path, other, "other")[1]
    expect_refusal(tmp_path, paths, r"shard store .*other/shard=1.zarr belongs to another sketch .*'seed': \(6, 5\)")


def test_row_chunk_change_is_refused(tmp_path):
    expect_refusal(tmp_path, measure(tmp_path), "belongs to another sketch .*row_chunk", replace(EIGEN, row_chunk=32))


def test_missing_shard_is_refused(tmp_path):
    paths = measure(tmp_path)
    expect_refusal(tmp_path, paths[:2], "a shard is missing")
    shutil.rmtree(paths[0])
    expect_refusal(tmp_path, paths, r"shard=0.zarr cannot be read")


def test_truncated_or_corrupt_shard_is_named(tmp_path):
    """A deleted chunk (which zarr would read as NaN) and a flipped byte are both refused before the
    solve computes: the store's manifest lists every chunk, its content digest every byte."""
    paths = measure(tmp_path)
    chunk = paths[0] / "outer" / "c" / "1" / "0"
    saved = chunk.read_bytes()
    chunk.unlink()
    expect_refusal(tmp_path, paths, r"shard=0.zarr has files that differ from its manifest "
                                    r"\(missing \['outer/c/1/0'\]\)")
    corrupt = bytearray(saved)
    corrupt[len(corrupt) // 2] ^= 0xFF
    chunk.write_bytes(bytes(corrupt))
    expect_refusal(tmp_path, paths, r"shard=0.zarr: the content of a chunk differs from the one written")


def test_reads_of_large_stores_check_chunks_as_they_read_them(tmp_path, monkeypatch):
    """Above digests.FULL_CHECK_BYTES only the manifest is checked when a store is opened (a
    listing, whatever the size); a flipped byte is then caught by the chunk's own checksum, and a
    chunk overwritten with NaN of the same size by the read's finiteness check, naming the store."""
    from hessmask import digests

    monkeypatch.setattr(digests, "FULL_CHECK_BYTES", 0)
    paths = measure(tmp_path)
    chunk = paths[0] / "outer" / "c" / "1" / "0"
    corrupt = bytearray(chunk.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0xFF
    chunk.write_bytes(bytes(corrupt))
    expect_refusal(tmp_path, paths, r"shard=0.zarr: rows \[64, 128\) of the outer sketch cannot be read")


def test_killed_writer_leaves_nothing(tmp_path):
    class Failing(MatrixOperator):
        def matmat(self, block):
            if self.num_products >= 16:
                raise RuntimeError("killed")
            return super().matmat(block)

    op = operator()
    failing = Failing(op.matrix)
    path = tmp_path / "shard=0.zarr"
    with pytest.raises(RuntimeError, match="killed"):
        seigh_store.measure_shard(failing, EIGEN, 0, path, {})
    assert not path.exists() and not list(tmp_path.glob(".*tmp-*"))


def test_default_mlp_streaming_equals_in_memory_solve():
    """The default study's setting (MLP, D = 7030, 500 train samples, 355/710 SSRFT sketch) at a
    trained checkpoint: the streaming solve's mask-eigenspace overlaps equal those of the
    in-memory recovery (QR of the whole D x s sketch) within 1e-6 at every k."""
    from hessmask.data import Splits, TensorData, class_balanced_indices, prepare_mnist5k
    from hessmask.training import TrainSettings, initial_checkpoint, train_segment
    from test_eigen import dense_recover

    arrays = prepare_mnist5k(seed=12345)
    splits = Splits(*(torch.from_numpy(arrays[k]) for k in ("x_train", "y_train", "x_test", "y_test")), num_classes=10)
    data = TensorData(splits)
    settings = TrainSettings(lr=0.3, batch_size=500, seed=12345)
    checkpoint, _ = train_segment(initial_checkpoint("mlp", 10, settings), data, 40, settings, progress=False)
    idx = class_balanced_indices(data.labels("train"), 500, 10)
    x, y = data.batch("train", idx)
    from hessmask.curvature import HessianOperator

    op = HessianOperator(checkpoint.model(), x, y, block_size=256)
    spec = E.SketchSpec(op.dim, 355, 710, seed=12345)
    part = E.seigh_measure(op, spec, 0, 710, block=256)
    streamed = E.seigh_recover(part.outer, *E.seigh_merge([part], spec), spec, 355, row_chunk=1000)
    _, reference = dense_recover(part.outer, part.inner, spec, 355)
    order = np.argsort(-np.abs(checkpoint.parameters().astype(np.float64)), kind="stable")
    diff = np.abs(metrics.nested_overlap(order, streamed.vectors) - metrics.nested_overlap(order, reference))
    assert diff.max() < 1e-6


def test_step_metrics_measure_each_method_against_exact():
    """eigenspace_accuracy[k] is the overlap of the top-k eigenspaces (principal angles), and the
    eigenvalue errors are relative to the exact ones."""
    import xarray as xr

    op = operator()
    reference = exact(op, 40)
    sketch = seigh(op, 40, outer=40, inner=80, seed=5, check_symmetry=False)

    def store(result):
        return xr.Dataset({"eigenvalues": (("eigenpair",), result.eigenvalues),
                           "eigenvectors": (("param", "eigenpair"), result.eigenvectors.astype(np.float32))})

    theta = np.random.default_rng(3).standard_normal(D)
    ds = metrics.step_metrics(theta, {"exact": store(reference), "seigh": store(sketch)}, [0.05], 3, 0, row_chunk=64)
    accuracy = ds["eigenspace_accuracy"].sel({"method": "seigh"})
    for k in (1, 6, 20, 40):
        assert float(accuracy.sel(k=k)) == pytest.approx(top_overlap(reference.eigenvectors, sketch.eigenvectors, k),
                                                         abs=1e-6)
    assert float(ds["eigenspace_accuracy"].sel({"method": "exact", "k": 40})) == 1.0
    errors = ds["eigenvalue_relative_error"].sel({"method": "seigh"}).values
    partner = np.argmax(np.abs(reference.eigenvectors.T @ sketch.eigenvectors), axis=0)
    np.testing.assert_array_equal(ds["eigenvalue_match"].sel({"method": "seigh"}).values, partner)
    np.testing.assert_allclose(errors, np.abs(sketch.eigenvalues - reference.eigenvalues[partner]) /
                               np.abs(reference.eigenvalues[partner]), rtol=1e-6)
    np.testing.assert_array_equal(partner[:6], np.arange(6))  # the outliers are matched to themselves
    # a solver that lists two pairs in another order: matched by eigenvector, its eigenvalues are exact
    swapped = [1, 0, *range(2, 40)]
    listed = xr.Dataset({"eigenvalues": (("eigenpair",), reference.eigenvalues[swapped]),
                         "eigenvectors": (("param", "eigenpair"),
                                          reference.eigenvectors[:, swapped].astype(np.float32))})
    ds = metrics.step_metrics(theta, {"exact": store(reference), "seigh": listed}, [0.05], 3, 0, row_chunk=64)
    np.testing.assert_array_equal(ds["eigenvalue_match"].sel({"method": "seigh"}).values[:3], [1, 0, 2])
    assert float(ds["eigenvalue_relative_error"].sel({"method": "seigh"}).max()) < 1e-12
    assert float(ds["eigenvector_match_cosine"].sel({"method": "seigh"}).min()) > 1 - 1e-6
    assert float(accuracy.sel(k=6)) > 0.98 > float(accuracy.sel(k=40))  # the outliers are recovered, the bulk is not


KRYLOV = BlockKrylovSpec(**SHARED, aposteriori_samples=3, budget=96, passes=3, k=20, shards=2, seed=4)


def krylov_jobs(tmp_path, eigen=KRYLOV):
    """The DAG's block Krylov jobs in order: basis p, its product shards (in reverse order), ..., solve."""
    bases, images = [], []
    for p in range(eigen.passes):
        basis = tmp_path / f"basis_pass={p}.zarr"
        krylov_store.basis_store(eigen, D, 0, bases, images[-1] if images else [], basis, {"step": 0})
        bases.append(basis)
        shards = [tmp_path / f"image_pass={p}" / f"shard={i}.zarr" for i in range(eigen.shards)]
        for i in reversed(range(len(shards))):
            krylov_store.measure_store(operator(), eigen, basis, i, shards[i], {"step": 0})
        images.append(shards)
    out = tmp_path / "block_krylov.zarr"
    krylov_store.solve_store(operator(), eigen, bases, images, seed=1, path=out, attrs={"step": 0})
    return out, bases, images


def test_block_krylov_jobs_give_the_in_process_solve(tmp_path):
    """Bases, product shards and the Rayleigh-Ritz solve through their stores: bitwise the in-process
    passes, whatever the sharding; the top eigenpairs of the operator found."""
    out, _, _ = krylov_jobs(tmp_path)
    store = open_dataset(out)
    spec = E.KrylovSpec(D, 96, 3, seed=4)
    ref = E.krylov_passes(operator(), 20, spec, row_chunk=64, block=16)
    assert np.array_equal(store["eigenvalues"].values, ref.eigenvalues)
    assert np.array_equal(store["eigenvectors"].values, ref.eigenvectors.astype(np.float32))
    assert store.attrs["products"] == 96 and store.attrs["method"] == "block_krylov"
    assert store.attrs["krylov_dimension"] == 96 and store.attrs["orthogonality_error"] < 1e-12
    np.testing.assert_allclose(store["eigenvalues"].values[:6], np.linspace(50, 20, 6), rtol=1e-4)
    one_shard = replace(KRYLOV, shards=1)
    other, _, _ = krylov_jobs(tmp_path / "one", one_shard)
    assert np.array_equal(open_dataset(other)["eigenvalues"].values, store["eigenvalues"].values)
    # the registry's writer, in one job for every pass and the solve: the solve's seed is
    # block_krylov.seed + step, 4 - 3 = the seed 1 krylov_jobs gives
    krylov_store.store(operator(), one_shard, -3, [], tmp_path / "one_job.zarr", {"step": 0})
    whole = open_dataset(tmp_path / "one_job.zarr")
    for name in ("eigenvalues", "eigenvectors", "residual_norm"):
        assert np.array_equal(whole[name].values, store[name].values), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # its scratch folder is gone
    # and from the pass stores of separate jobs, in the order of BlockKrylovSpec.parts
    _, bases, images = krylov_jobs(tmp_path / "parts")
    parts = bases + [path for shards in images for path in shards]
    assert len(parts) == len(KRYLOV.parts())
    krylov_store.store(operator(), KRYLOV, -3, parts, tmp_path / "from_parts.zarr", {"step": 0})
    assert np.array_equal(open_dataset(tmp_path / "from_parts.zarr")["eigenvectors"].values,
                          store["eigenvectors"].values)
    with pytest.raises(ValueError, match="needs its pass stores"):
        krylov_store.store(operator(), KRYLOV, 0, [], tmp_path / "x.zarr", {})


def test_block_krylov_refuses_foreign_and_truncated_pass_stores(tmp_path):
    out, bases, images = krylov_jobs(tmp_path)
    other = replace(KRYLOV, seed=5)
    with pytest.raises(E.SolverError, match="belongs to another block Krylov solve"):
        krylov_store.solve_store(operator(), other, bases, images, seed=1, path=tmp_path / "x.zarr", attrs={})
    import zarr

    from hessmask.digests import CorruptFile

    image = zarr.open_array(str(images[1][0] / "image"), mode="r+")
    image[:10] = np.nan  # a chunk rewritten: another size than the manifest's
    with pytest.raises(CorruptFile, match=r"image_pass=1/shard=0.zarr: image/c/0/0 is \d+ bytes, \d+ when written"):
        krylov_store.solve_store(operator(), KRYLOV, bases, images, seed=1, path=tmp_path / "y.zarr", attrs={})
    assert not (tmp_path / "y.zarr").exists()
    chunk = bases[0] / "basis" / "c" / "0" / "0"
    corrupt = bytearray(chunk.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0xFF
    chunk.write_bytes(bytes(corrupt))  # a flipped byte: the content digest, before anything is computed
    with pytest.raises(CorruptFile, match=r"basis_pass=0.zarr: the content of a chunk differs"):
        krylov_store.basis_store(KRYLOV, D, 0, bases[:1], images[0], tmp_path / "z.zarr", {})


def test_solver_costs_and_the_accuracy_per_product_table():
    import xarray as xr

    def store(products, error):
        attrs = {"products": products}
        if error is not None:
            attrs["aposteriori"] = json.dumps({"relative_error": error})
        return xr.Dataset(attrs=attrs)

    stores = {("exact", "train", 0): store(300, None), ("seigh", "train", 0): store(80, 0.3),
              ("block_krylov", "train", 0): store(80, 0.05), ("seigh", "train", 5): store(80, 0.2)}
    costs = metrics.solver_costs(stores)
    assert list(costs["method"].values) == ["exact", "seigh", "block_krylov"]
    assert float(costs["products"].sel({"method": "exact", "split": "train", "step": 0})) == 300
    assert np.isnan(costs["aposteriori_error"].sel({"method": "block_krylov", "split": "train", "step": 5}))
    accuracy = xr.DataArray(np.array([[1.0, np.nan], [0.7, np.nan], [0.96, np.nan]]).reshape(3, 1, 2, 1),
                            dims=("method", "split", "step", "k"),
                            coords={"method": costs["method"].values, "split": ["train"], "step": [0, 5], "k": [4]})
    table = "\n".join(metrics.accuracy_lines(costs.assign(eigenspace_accuracy=accuracy), 4))
    assert "| seigh | 80 | 0.7000 | 0.7000 | 0.7000 | 0.25 |" in table
    assert "| block_krylov | 80 | 0.9600 | 0.9600 | 0.9600 | 0.05 |" in table and "| exact |" not in table


def test_chance_counts_only_the_parameters_a_mask_may_hold():
    """With masks.exclude, masks choose among D' = D - excluded parameters: chance is k / D', the
    summary and the figures say so; without exclusions it stays k / D."""
    import xarray as xr

    from hessmask.plots.experiment import chance_label, overlap_vs_k

    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal((D, 8)))
    store = xr.Dataset({"eigenvalues": (("eigenpair",), np.arange(8, 0, -1.0)),
                        "eigenvectors": (("param", "eigenpair"), q.astype(np.float32))})
    theta = rng.standard_normal(D)
    excluded = np.zeros(D, bool)
    excluded[:40] = True
    parts = {("train", s): metrics.step_metrics(theta, {"exact": store}, [0.02], 3, 0, excluded=excluded)
             for s in (0, 5)}
    combined = metrics.combine_metrics(parts, D)
    assert combined.attrs["eligible"] == D - 40
    np.testing.assert_allclose(combined["chance"].values, combined["k"].values / (D - 40))
    assert chance_label(combined) == "chance k/(D - 40 excluded)"
    assert "chance k/(D - 40 excluded)" in metrics.chance_text(combined, 4)
    assert chance_label(combined) in [t.get_text() for t in overlap_vs_k(combined, method="exact").axes[0]
                                      .get_legend().get_texts()]
    plain = metrics.combine_metrics({("train", 0): metrics.step_metrics(theta, {"exact": store}, [0.02], 3, 0)}, D)
    np.testing.assert_allclose(plain["chance"].values, plain["k"].values / D)


def test_truncation_error_is_the_floor_of_the_aposteriori_error():
    """With the exact spectrum, each method's k pairs leave at least the Eckart-Young error
    sqrt(sum_{i > k} lambda_i^2) / ||H||_F (largest |lambda| first), stored beside its estimate."""
    import xarray as xr

    spectrum = np.array([3.0, 1.0, 0.5, -2.0])
    exact = xr.Dataset({"spectrum": (("spectrum_index",), spectrum), "eigenvalues": (("eigenpair",), [3.0, -2.0])},
                       attrs={"products": 4})
    sketch = xr.Dataset({"eigenvalues": (("eigenpair",), [2.9, -1.8])},
                        attrs={"products": 3, "aposteriori": json.dumps({"relative_error": 0.4})})
    costs = metrics.solver_costs({("exact", "train", 0): exact, ("seigh", "train", 0): sketch})
    floor = float(costs["truncation_error"].sel({"method": "seigh", "split": "train", "step": 0}))
    assert floor == pytest.approx(np.sqrt((1.0 + 0.25) / (9 + 4 + 1 + 0.25)))
    assert metrics.truncation_error(spectrum, 4) == 0.0 and metrics.truncation_error(spectrum, 0) == 1.0
    assert float(costs["aposteriori_error"].sel({"method": "seigh", "split": "train", "step": 0})) >= floor


def test_metrics_list_methods_in_one_order_whatever_ran_at_each_step():
    """Steps that ran different solvers are joined without sorting the methods alphabetically."""
    import xarray as xr

    def step(methods):
        return xr.Dataset({"overlap": (("method", "k"), np.zeros((len(methods), 2)))},
                          coords={"method": methods, "k": [1, 2]})

    per_step = {("train", 0): step(["exact", "seigh", "block_krylov"]), ("train", 5): step(["seigh"])}
    combined = metrics.combine_metrics(per_step, 10)
    assert list(combined["method"].values) == ["exact", "seigh", "block_krylov"]
    assert np.isnan(combined["overlap"].sel({"method": "exact", "step": 5})).all()


def test_store_reading_jobs_never_import_torch(tmp_path):
    """The per-step metrics, eigenspace pairs, aggregate and mask statistics jobs only read stores:
    their imports and their work run without torch (about 1.4 s of each such job)."""
    import subprocess
    import sys

    program = """
import sys
import numpy as np, xarray as xr
from hessmask.config import MODEL_DIMS
from hessmask.jobs import excluded_parameters
from hessmask.progress import setup_logging
from hessmask.masks import k_of_rho, mask_statistics
from hessmask.metrics import eigenspace_pairs, step_metrics
from hessmask.store import open_dataset, provenance, write_dataset

rng = np.random.default_rng(0)
def store(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((200, 20)))
    return xr.Dataset({"eigenvalues": (("eigenpair",), np.linspace(9, 1, 20)),
                       "eigenvectors": (("param", "eigenpair"), q.astype(np.float32))})
stores = {"exact": store(1), "seigh": store(2)}
write_dataset(step_metrics(rng.standard_normal(200), stores, [0.05], 3, 0, row_chunk=64,
                           excluded=excluded_parameters("mlp", [], 10)), sys.argv[1] + "/m.zarr")
pairs = eigenspace_pairs({("exact", "train", 0): store(1), ("exact", "train", 5): store(3)}, [0.05], 200, 64)
theta = xr.DataArray(rng.standard_normal((2, 200)), dims=("step", "param"), coords={"step": [0, 5]})
mask_statistics(theta, [0.05])
open_dataset(sys.argv[1] + "/m.zarr")
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch")[:3])
"""
    out = subprocess.run([sys.executable, "-c", program, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
