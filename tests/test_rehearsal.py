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
    path = out / "eigen" / "seigh" / "test" / f"step={2 if name != 'rehearsal_resnet18' else 1}.zarr"
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
    assert np.isfinite(metrics["overlap"].sel(method="seigh")).all()
    summary = (out / "summary.md").read_text()
    k = round({"3c3d": 1e-5, "allcnnc": 1e-5, "resnet18": 1e-6}[NETWORKS[name]] * dim)
    assert f"k = {k} " in summary and "## Sketch quality" in summary
    for figure in ("crystallization", "overlap_vs_k", "exact_vs_sketched", "runtime_breakdown"):
        assert (rehearsal / "results" / "figures" / name / f"{figure}.png").stat().st_size > 10_000


def test_reported_k_beyond_the_sketch_stops_before_any_job(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("experiments:\n  rehearsal_3c3d:\n    metrics: {summary_rho: 0.001}\n")
    proc = snakemake(tmp_path, "-n", "--configfile", REHEARSAL, str(overlay), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "'experiments.rehearsal_3c3d.metrics.summary_rho'" in text
    assert "exceeds the 16 eigenpairs" in text
    assert not (tmp_path / "results").exists()
