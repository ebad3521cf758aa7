"""The rehearsal overlay: 3c3d, All-CNN-C and ResNet-18 at their real D through the whole DAG."""

import numpy as np
import pytest
import zarr

from hessmask.config import MODEL_DIMS
from hessmask.store import open_dataset
from workflow import REPO, snakemake

pytestmark = pytest.mark.workflow
REHEARSAL = str(REPO / "configs" / "rehearsal.yaml")
NETWORKS = {"rehearsal_3c3d": "3c3d", "rehearsal_allcnnc": "allcnnc", "rehearsal_resnet18": "resnet18"}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rehearsal")
    snakemake(workdir, "--cores", "2", "--configfile", REHEARSAL, timeout=1800)
    return workdir


@pytest.mark.parametrize("name", NETWORKS)
def test_real_dimension_end_to_end(rehearsal, name):
    out = rehearsal / "results" / name
    dim = MODEL_DIMS[NETWORKS[name]]
    path = out / "eigen" / "seigh" / "test" / f"step={2 if name != 'rehearsal_resnet18' else 0}.zarr"
    store = open_dataset(path, load=False)
    assert store.sizes["param"] == dim and store.sizes["eigenpair"] == 16
    assert store["eigenvectors"].encoding["chunks"] == (65536, 8)
    # the top 8 eigenvectors are one column of chunks: a partial read touches 1 / 2 of the store
    vectors = zarr.open_array(str(path / "eigenvectors"), mode="r")
    assert vectors.cdata_shape == (-(-dim // 65536), 2)
    top = store["eigenvectors"][:, :8].values
    np.testing.assert_allclose(top.T.astype(np.float64) @ top, np.eye(8), atol=1e-5)
    assert store.attrs["rank"] == 16 and store.attrs["orthogonality_error"] < 1e-10
    metrics = open_dataset(out / "metrics.zarr")
    assert metrics.attrs["D"] == dim and int(metrics["k"].max()) == 16
    assert np.isfinite(metrics["overlap"].sel({"method": "seigh"})).all()
    summary = (out / "summary.md").read_text()
    k = round({"3c3d": 1e-5, "allcnnc": 1e-5, "resnet18": 1e-6}[NETWORKS[name]] * dim)
    assert f"k = {k} " in summary and "## Sketch quality" in summary
    for figure in ("crystallization", "overlap_vs_k", "exact_vs_sketched", "runtime_breakdown"):
        assert (rehearsal / "results" / "figures" / name / f"{figure}.png").stat().st_size > 10_000


def test_tie_rules_decide_resnet18_masks_at_initialization(rehearsal):
    """At initialization ResNet-18's 4800 BatchNorm scales all equal 1.0 and every other |theta| is
    below 0.5, so the magnitude masks of k <= 4800 are chosen by the tie rule alone; excluding the
    normalization scales and biases makes them magnitude masks again. The overlaps with the
    Hessian's top-k eigenspace at step 0 differ accordingly."""
    from hessmask.metrics import step_metrics
    from hessmask.models import excluded_parameters

    out = rehearsal / "results" / "rehearsal_resnet18"
    theta = open_dataset(out / "theta.zarr")["theta"].sel(step=0).values
    assert int(np.sum(np.abs(theta) == 1.0)) == 4800 and np.sort(np.abs(theta))[-4801] < 0.5
    store = open_dataset(out / "eigen" / "seigh" / "test" / "step=0.zarr", load=False)
    excluded = excluded_parameters("resnet18", ["normalization_scales", "biases"])
    rules = {"lowest_index": ("lowest_index", None), "random": ("random", None), "excluded": ("lowest_index", excluded)}
    rhos = [5e-7, 1e-6]  # k = 6, 12
    ks = [round(rho * theta.size) for rho in rhos]
    results = {name: step_metrics(theta, {"seigh": store}, rhos, 2, seed=0, ties=ties, tie_seed=3, excluded=ex)
               for name, (ties, ex) in rules.items()}
    for name, ds in results.items():
        overlaps = [float(ds["overlap"].sel({"method": "seigh", "k": k})) for k in ks]
        print(f"{name}: boundary_ties {ds['boundary_ties'].values.tolist()} overlap at k = {ks}: {overlaps}")
    np.testing.assert_array_equal(results["lowest_index"]["boundary_ties"].values, ks)  # every member is a tie
    np.testing.assert_array_equal(results["random"]["boundary_ties"].values, ks)
    np.testing.assert_array_equal(results["excluded"]["boundary_ties"].values, [0, 0])
    overlap = {name: ds["overlap"].sel({"method": "seigh", "k": ks}) for name, ds in results.items()}
    assert not np.allclose(overlap["lowest_index"], overlap["excluded"])  # the rule, not magnitude, decided


def test_reported_k_beyond_the_sketch_stops_before_any_job(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("experiments:\n  rehearsal_3c3d:\n    metrics: {summary_rho: 0.001}\n")
    proc = snakemake(tmp_path, "-n", "--configfile", REHEARSAL, str(overlay), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "'experiments.rehearsal_3c3d.metrics.summary_rho'" in text
    assert "exceeds the 16 eigenpairs" in text
    assert not (tmp_path / "results").exists()
