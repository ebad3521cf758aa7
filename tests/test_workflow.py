"""The Snakemake workflow: lint, dry-runs, and a tiny synthetic study end to end."""

import json

import numpy as np
import pytest

from hessmask.store import open_dataset
from workflow import REPO, dry_run_jobs, snakemake

pytestmark = pytest.mark.workflow
CI = str(REPO / "configs" / "ci.yaml")


def test_lint(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    assert "good condition" in proc.stdout + proc.stderr


def test_dry_run_default(tmp_path):
    jobs = dry_run_jobs(tmp_path)
    assert jobs["synthetic_chunk"] == 8  # D = 16 ... 2048
    assert jobs["synthetic_figures"] == 3


@pytest.mark.parametrize(
    "override,key",
    [
        ('synthetic={"sample": 3}', "synthetic.sample"),
        ('synthetic={"samples": "x"}', "synthetic.samples"),
        ("resuts=elsewhere", "resuts"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, override, key):
    proc = snakemake(tmp_path, "-n", "--configfile", CI, "--config", override, check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("overlay", ["mnist16", "cifar10_3c3d", "cifar100_allcnnc", "imagenet_resnet18"])
def test_dry_run_paper_configs(tmp_path, overlay):
    site = tmp_path / "site"
    for split in ("train", "val"):  # an ImageNet tree in class-folder layout, checked before any job
        (site / "imagenet" / split / "n01440764").mkdir(parents=True)
    (site / "site.yaml").write_text(f"data:\n  imagenet_root: {site / 'imagenet'}\n")
    work = tmp_path / "work"
    work.mkdir()
    jobs = dry_run_jobs(work, "--configfile", str(REPO / "configs" / f"{overlay}.yaml"), str(site / "site.yaml"))
    assert jobs["train_segment"] >= 5 and jobs["mask_statistics"] == 1


def test_missing_imagenet_root_stops_before_any_job(tmp_path):
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / "configs" / "imagenet_resnet18.yaml"), check=False)
    assert proc.returncode != 0
    assert "'data.imagenet_root': /path/to/imagenet/train is missing" in proc.stdout + proc.stderr


def test_record_step_beyond_trained_range(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("experiments:\n  ci_mlp:\n    record_steps: [0, 3, 60]\n")
    proc = snakemake(tmp_path, "-n", "--configfile", CI, str(overlay), check=False)
    assert proc.returncode != 0
    assert "experiments.ci_mlp.record_steps" in proc.stderr + proc.stdout
    assert "beyond the trained range" in proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """The CI config end to end: synthetic baselines and a few training steps of the MLP."""
    workdir = tmp_path_factory.mktemp("synthetic")
    snakemake(workdir, "--cores", "2", "--configfile", CI)
    return workdir


def test_training_end_to_end(synthetic_run):
    out = synthetic_run / "results" / "ci_mlp"
    training = open_dataset(out / "training.zarr")
    assert list(training["step"].values) == [0, 3, 6, 8]
    assert list(training["train_step"].values) == list(range(8))
    assert np.isfinite(training["batch_loss"]).all()
    theta = open_dataset(out / "theta.zarr")
    assert theta["theta"].dims == ("step", "param")
    assert list(theta["step"].values) == [0, 3, 6] and theta.sizes["param"] == 2146
    assert not np.array_equal(theta["theta"].sel(step=0), theta["theta"].sel(step=6))
    masks = open_dataset(out / "masks.zarr")
    assert masks["iou"].dims == ("rho", "step", "step_other")
    assert float(masks["iou"].min()) > 0 and float(masks["iou"].max()) <= 1


def test_later_record_step_trains_only_new_segment(synthetic_run, tmp_path):
    overlay = tmp_path / "later.yaml"
    overlay.write_text("experiments:\n  ci_mlp:\n    record_steps: [0, 3, 6, 10]\n    train: {steps: 10}\n")
    jobs = dry_run_jobs(synthetic_run, "--configfile", CI, str(overlay))
    assert jobs["train_segment"] == 1  # 6 -> 10 replaces 6 -> 8; earlier segments are reused
    assert "synthetic_chunk" not in jobs
    # of the subspace jobs only the lottery subspace (its trajectory is the whole training) reruns;
    # the ticket's step (dof.ticket_step: 6), every start step and the runs' own trainings are unchanged
    assert jobs["dof_lottery"] == 1 and jobs["dof_trajectory"] == 1
    assert "dof_start" not in jobs and "dof_run_checkpoints" not in jobs and "dof_reference" not in jobs


def test_synthetic_end_to_end(synthetic_run):
    ds = open_dataset(synthetic_run / "results" / "synthetic" / "grassmann_baselines.zarr")
    assert ds["value"].dims == ("modality", "metric", "D", "rho", "sample")
    assert list(ds["modality"].values) == ["OO", "OB", "BB"]
    assert list(ds["D"].values) == [8, 16, 32]
    assert ds.sizes["sample"] == 6
    computed = ds["value"].sel(D=16)  # the D with every ratio
    assert np.isfinite(computed).all()
    assert float(computed.min()) >= 0.0 and float(computed.max()) <= 1.0 + 1e-12
    # r = 1: every metric says "same subspace"
    full = ds["value"].sel(D=16, rho=1.0)
    assert np.allclose(full.sel(metric="overlap"), 1.0)
    assert np.allclose(full.drop_sel(metric="overlap"), 0.0, atol=1e-6)
    table = (synthetic_run / "results" / "synthetic" / "baselines_table.md").read_text()
    header = [cell.strip() for cell in table.splitlines()[2].strip("|").split("|")]
    assert header == ["rho", "k", "geodesic", "chordal_2", "chordal_F", "projection_2",
                      "projection_F", "fubini_study", "overlap"]
    for modality in ["OO", "OB", "BB"]:
        for kind in ["vs_D", "vs_rho"]:
            png = synthetic_run / "results" / "figures" / "synthetic" / f"{kind}_{modality}.png"
            assert png.stat().st_size > 10_000


def test_nothing_to_do_after_run(synthetic_run):
    assert dry_run_jobs(synthetic_run, "--configfile", CI) == {}


def test_more_samples_rerun_synthetic(synthetic_run, tmp_path):
    overlay = tmp_path / "more.yaml"
    overlay.write_text("synthetic:\n  samples: 7\n")
    jobs = dry_run_jobs(synthetic_run, "--configfile", CI, str(overlay))
    assert jobs.get("synthetic_chunk") == 3


def test_eigen_and_metrics_end_to_end(synthetic_run):
    out = synthetic_run / "results" / "ci_mlp"
    for method, k in [("seigh", 120), ("exact", 429)]:
        store = open_dataset(out / "eigen" / method / "test" / "step=6.zarr")
        assert store["eigenvectors"].dims == ("param", "eigenpair")
        assert store["eigenvectors"].dtype == np.float32 and store.sizes["eigenpair"] == k
        assert store["eigenvectors"].encoding["chunks"] == (2146, 64)  # row_chunk x vector_chunk
        # the exact reference is built from float64 products, the sketch from the study's float32
        assert json.loads(store.attrs["settings"])["dtype"] == ("float64" if method == "exact" else "float32")
        values = store["eigenvalues"].values
        assert np.all(np.diff(np.abs(values)) <= 1e-12)  # descending |lambda|
        assert store.attrs["products"] in (240, 2146)
        assert store["residual_norm"].size == 5
    metrics = open_dataset(out / "metrics.zarr")
    assert metrics["overlap"].dims == ("method", "split", "step", "k")
    assert list(metrics["method"].values) == ["exact", "seigh", "block_krylov"]
    assert list(metrics["split"].values) == ["train", "test"]
    assert metrics["grassmann"].dims == ("method", "split", "step", "rho", "metric")
    assert metrics["eigenspace_overlap"].dims == ("method", "split", "rho", "step", "step_other")
    exact = metrics["overlap"].sel({"method": "exact"})
    assert float(exact.min()) >= 0 and float(exact.max()) <= 1 + 1e-6
    np.testing.assert_allclose(metrics["chance"].values, metrics["k"].values / 2146)
    # overlap at k = D-fraction 0.2 from the cumulative formula equals the Grassmannian overlap metric
    k = round(0.2 * 2146)
    np.testing.assert_allclose(
        exact.sel(k=k).values,
        metrics["grassmann"].sel({"method": "exact", "rho": 0.2, "metric": "overlap"}).values, atol=1e-6)
    summary = (out / "summary.md").read_text()
    assert "seigh - exact" in summary and "| test | 6 |" in summary
    assert "## Accuracy per product" in summary and "| block_krylov | 240 |" in summary


def test_block_krylov_end_to_end(synthetic_run):
    """Three passes of two product shards each, then the Rayleigh-Ritz solve: 240 products (the
    sketch's budget); the pass stores are temporary; accuracy per product is in metrics.zarr."""
    out = synthetic_run / "results" / "ci_mlp"
    store = open_dataset(out / "eigen" / "block_krylov" / "train" / "step=3.zarr")
    assert store.attrs["method"] == "block_krylov" and store.attrs["products"] == 240
    assert store.attrs["passes"] == 3 and store.attrs["krylov_dimension"] == 240
    assert store.sizes["eigenpair"] == 120 and store.attrs["orthogonality_error"] < 1e-10
    assert json.loads(store.attrs["aposteriori"])["relative_error"] >= 0
    assert not (out / "eigen" / "block_krylov_passes" / "train" / "step=3").exists() or not any(
        (out / "eigen" / "block_krylov_passes" / "train" / "step=3").iterdir())
    metrics = open_dataset(out / "metrics.zarr")
    accuracy = metrics["eigenspace_accuracy"].sel({"method": "block_krylov", "split": "train", "step": 3})
    assert np.isfinite(accuracy.sel(k=slice(1, 120))).all() and float(accuracy.max()) <= 1 + 1e-9
    assert float(metrics["products"].sel({"method": "block_krylov", "split": "train", "step": 3})) == 240
    # at the sketch's own budget, block Krylov's top-20 eigenspace is at least as accurate
    at = {"split": "train", "step": 3, "k": 20}
    assert float(metrics["eigenspace_accuracy"].sel({"method": "block_krylov", **at})) >= float(
        metrics["eigenspace_accuracy"].sel({"method": "seigh", **at})) - 0.05
    assert (synthetic_run / "results" / "figures" / "ci_mlp" / "accuracy_vs_products.png").stat().st_size > 10_000


def test_krylov_change_reruns_only_krylov_and_metrics(synthetic_run, tmp_path):
    jobs = dry_run_jobs(synthetic_run, "--configfile", CI,
                        overlay(tmp_path, "experiments:\n  ci_mlp:\n    eigen:\n      methods:\n"
                                          "        block_krylov: {passes: 4}\n"))
    assert jobs.pop("eigen_krylov_basis") == 8 and jobs.pop("eigen_krylov_image") == 16  # 2 splits x 4 passes
    assert jobs.pop("eigen_store") == 2 and jobs.pop("step_metrics") == 2  # block Krylov's stores only
    assert jobs.pop("eigenspace_pairs") == 1  # block Krylov's; the other methods' overlaps stand
    assert set(jobs) <= {"metrics_aggregate", "experiment_figures", "all"}


def test_degrees_of_freedom_end_to_end(synthetic_run):
    ds = open_dataset(synthetic_run / "results" / "dof" / "ci_mlp.zarr")
    assert list(ds["subspace"].values) == ["random_affine", "burn_in", "lottery_subspace", "lottery_ticket",
                                           "hessian_topd", "mask_topd"]
    assert ds["train_accuracy"].dims == ("subspace", "d", "run") and list(ds["d"].values) == [2, 4, 8]
    assert ds.sizes["run"] == 2 and ds.sizes["full_run"] == 2
    assert float(ds["train_accuracy"].min()) >= 0 and float(ds["train_accuracy"].max()) <= 1
    assert ds["success_probability"].dims == ("subspace", "split", "level", "d")
    # pruned to 8 weights, the lottery ticket cannot beat a subspace through the trained network
    ticket = float(ds["train_accuracy"].sel({"subspace": "lottery_ticket"}).max())
    assert ticket <= float(ds["full_train_accuracy"].min())
    trajectory = open_dataset(synthetic_run / "results" / "ci_mlp" / "dof" / "trajectory.zarr")
    comps = trajectory["components"].values.astype(np.float64)
    np.testing.assert_allclose(comps.T @ comps, np.eye(8), atol=1e-5)
    assert trajectory.attrs["final_gap"] == 0.0  # the replay is bitwise the experiment's training
    quad = open_dataset(synthetic_run / "results" / "dof" / "quadratic_well.zarr")
    assert quad["success_probability"].dims == ("spectrum", "radius", "eps", "d")
    # the start-step experiment: burn_in, hessian_topd and mask_topd at t = 0, 3, 6, each run from its own w_t
    assert list(ds["start_step"].values) == [0, 3, 6] and ds.attrs["full_lr"] in (0.05, 0.01)
    assert list(ds["sweep_subspace"].values) == ["burn_in", "hessian_topd", "mask_topd"]
    assert ds["sweep_ran"].all() and ds.attrs["success"] == "best"
    assert ds["sweep_run_threshold"].dims == ("sweep_subspace", "start_step", "run", "sweep_level")
    offsets = ds["sweep_offset_train_accuracy"]
    assert not np.array_equal(offsets.sel(run=0).values, offsets.sel(run=1).values)  # own initialization
    # random_affine is burn_in from each run's own w_0
    np.testing.assert_array_equal(ds["train_accuracy"].sel(subspace="random_affine").values,
                                  ds["sweep_train_accuracy"].sel(sweep_subspace="burn_in", start_step=0).values.T)
    lo, hi = ds["sweep_run_threshold_lower"].values, ds["sweep_run_threshold"].values
    assert np.all((hi[np.isfinite(hi)] >= lo[np.isfinite(hi)]))
    # run 0 is the experiment's own training: its Hessian solve is measured against the exact store
    accuracy = ds["hessian_eigenspace_accuracy"]
    assert float(accuracy.sel(run=0).min()) > 0.99999 and np.isnan(accuracy.sel(run=1)).all()
    assert float(ds["hessian_residual"].max()) < 1e-6  # dof.hessian.method exact in CI
    assert set(ds["pair"].values) == {"hessian_topd vs burn_in", "mask_topd vs burn_in", "hessian_topd vs mask_topd"}
    full = open_dataset(synthetic_run / "results" / "ci_mlp" / "dof" / "full.zarr")
    assert list(full["lr"].values) == [0.05, 0.01]  # each learning rate of dof.full_lr is run
    for name in ("success", "threshold_dimension", "compression", "start_step", "start_step_success"):
        assert (synthetic_run / "results" / "figures" / "dof" / "ci_mlp" / f"{name}.pdf").stat().st_size > 0
    assert (synthetic_run / "results" / "figures" / "dof" / "quadratic_well.png").stat().st_size > 0


def test_new_dimension_schedules_only_its_subspace_jobs(synthetic_run, tmp_path):
    jobs = dry_run_jobs(synthetic_run, "--configfile", CI,
                        overlay(tmp_path, "experiments:\n  ci_mlp:\n    dof: {dims: [2, 4, 6, 8]}\n"))
    # every (t, run) job and both lottery jobs; the trajectory already holds max(dims), the runs'
    # own trainings and the full-space reference do not depend on d
    assert jobs.pop("dof_start") == 6 and jobs.pop("dof_lottery") == 2
    assert set(jobs) == {"dof_aggregate", "dof_figures", "all"}


def overlay(tmp_path, text):
    path = tmp_path / "overlay.yaml"
    path.write_text(text)
    return str(path)


def test_one_job_rules_give_the_sharded_stores(synthetic_run, tmp_path):
    """With one shard, SEIGH runs as one eigen_sketch job and block Krylov as one eigen_krylov job,
    and with dof.runs_per_job null one dof_start job trains every run of a start step (one process
    start-up instead of one per run); their stores are bitwise those of the sharded and per-run jobs
    (CI: 2 shards each, one job per run) that built the finished run."""
    import shutil

    import numpy as np
    import xarray as xr

    work = tmp_path / "work"
    shutil.copytree(synthetic_run, work, symlinks=True)
    one_job = overlay(tmp_path, "experiments:\n  ci_mlp:\n    eigen:\n      methods:\n"
                                "        seigh: {shards: 1}\n        block_krylov: {shards: 1}\n"
                                "    dof: {runs_per_job: null}\n")
    seigh = "results/ci_mlp/eigen/seigh/test/step=6.zarr"
    krylov = "results/ci_mlp/eigen/block_krylov/train/step=3.zarr"
    start = "results/ci_mlp/dof/start/t=3"
    args = ("--configfile", CI, one_job, "--forcerun", seigh, krylov, "--", seigh, krylov, f"{start}/chunk=0.zarr")
    jobs = dry_run_jobs(work, *args)
    assert jobs == {"eigen_store": 2, "dof_start": 1}, jobs  # no part jobs: each store in one job
    snakemake(work, "--cores", "2", *args)
    for store in (seigh, krylov):
        before, after = open_dataset(synthetic_run / store), open_dataset(work / store)
        for name in ("eigenvalues", "eigenvectors", "residual_norm"):
            assert np.array_equal(before[name].values, after[name].values), (store, name)
    assert not [p for p in (work / krylov).parent.iterdir() if p.name.startswith(".")]  # no scratch left
    per_run = xr.concat([open_dataset(synthetic_run / start / f"chunk={c}.zarr") for c in (0, 1)], "run",
                        join="outer", data_vars="minimal", coords="minimal", compat="override")
    together = open_dataset(work / start / "chunk=0.zarr")
    assert list(together["run"].values) == [0, 1]
    for name in ("best_train_accuracy", "test_loss", "batch_loss", "refined_d", "hessian_eigenvalues"):
        assert np.array_equal(per_run[name].values, together[name].values, equal_nan=True), name


def test_solver_change_reruns_eigen_not_training(synthetic_run, tmp_path):
    jobs = dry_run_jobs(synthetic_run, "--configfile", CI,
                        overlay(tmp_path, "experiments:\n  ci_mlp:\n    eigen:\n      methods:\n"
                                          "        seigh: {seed: 7}\n"))
    # SEIGH's shards and stores only: the exact and block Krylov stores do not read its keys
    assert jobs["eigen_seigh_shard"] == 12 and jobs["eigen_store"] == 6 and jobs["step_metrics"] == 6
    assert jobs["eigenspace_pairs"] == 1  # SEIGH's only
    assert "train_segment" not in jobs and "eigen_krylov_basis" not in jobs


def test_new_record_step_schedules_only_its_jobs(synthetic_run, tmp_path):
    jobs = dry_run_jobs(synthetic_run, "--configfile", CI,
                        overlay(tmp_path, "experiments:\n  ci_mlp:\n    record_steps: [0, 3, 6, 8]\n"))
    assert jobs.pop("eigen_store") == 4 and jobs.pop("eigen_seigh_shard") == 4  # exact and SEIGH, 2 splits
    assert jobs.pop("step_metrics") == 2  # block Krylov runs only at its own steps (eigen.block_krylov.steps)
    assert jobs.pop("eigenspace_pairs") == 2  # exact and SEIGH, not block Krylov
    assert set(jobs) <= {"theta_store", "mask_statistics", "metrics_aggregate", "training_curves",
                         "experiment_figures", "all"}


@pytest.mark.parametrize(
    "text,key",
    [
        ("experiments:\n  ci_mlp:\n    model: vgg\n", "experiments.ci_mlp.model"),
        ("experiments:\n  ci_mlp:\n    dataset: svhn\n", "experiments.ci_mlp.dataset"),
        ("experiments:\n  ci_mlp:\n    eigen:\n      methods:\n        seigh: {outer: 2000, inner: 4000}\n",
         "experiments.ci_mlp.eigen.methods.seigh.inner"),
        ("experiments:\n  ci_mlp:\n    eigen:\n      sketch: {outer: 20}\n", "experiments.ci_mlp.eigen.sketch"),
        ("experiments:\n  ci_mlp:\n    eigen:\n      steps: [5]\n", "experiments.ci_mlp.eigen.steps"),
    ],
)
def test_bad_experiment_stops_before_any_job(tmp_path, text, key):
    proc = snakemake(tmp_path, "-n", "--configfile", CI, overlay(tmp_path, text), check=False)
    assert proc.returncode != 0
    assert f"'{key}" in proc.stdout + proc.stderr


def test_report(synthetic_run):
    report = synthetic_run / "results" / "report.html"
    snakemake(synthetic_run, "--configfile", CI, "--report", str(report))
    text = report.read_text(errors="ignore")
    assert report.stat().st_size > 100_000
    for name in ["crystallization", "exact_vs_sketched", "vs_D_OO", "baselines_table"]:
        assert name in text, name


def test_every_store_opens_without_warning(synthetic_run):
    """Consolidated metadata and checksummed chunks: plain ``xr.open_zarr`` on every store of a
    finished run, warnings as errors (Snakemake's .snakemake_timestamp inside directory outputs
    is not read: the consolidated metadata lists the store's arrays)."""
    import warnings

    import xarray as xr

    stores = sorted((synthetic_run / "results").rglob("*.zarr"))
    stores = [s for s in stores if not any(p.suffix == ".zarr" for p in s.parents)]
    assert len(stores) > 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in stores:
            xr.open_zarr(path).load()


def test_data_location_keys_rerun_nothing(synthetic_run, tmp_path):
    """Where the data live is no rerun trigger: a finished run stays finished."""
    text = f"data:\n  mirror: {tmp_path}\n  imagenet_root: {tmp_path}\n"
    assert dry_run_jobs(synthetic_run, "--configfile", CI, overlay(tmp_path, text)) == {}


def test_deleted_eigen_store_is_rebuilt(synthetic_run):
    """Every store the README calls a result is a target of `all`: a deleted one is rebuilt."""
    import shutil

    shutil.rmtree(synthetic_run / "results" / "ci_mlp" / "eigen" / "seigh" / "train" / "step=3.zarr")
    jobs = dry_run_jobs(synthetic_run, "--configfile", CI)
    assert jobs.get("eigen_store") == 1 and jobs.get("eigen_seigh_shard") == 2


def test_rerun_gives_identical_stores(synthetic_run):
    """Determinism: a forced rerun of a solve (and its shards) gives an xr.identical store."""
    import xarray as xr

    path = synthetic_run / "results" / "ci_mlp" / "eigen" / "seigh" / "test" / "step=6.zarr"
    before = open_dataset(path)
    snakemake(synthetic_run, "--cores", "2", "--configfile", CI, "--forcerun", str(path.relative_to(synthetic_run)),
              "--until", "eigen_store")
    after = open_dataset(path)
    for store in (before, after):  # the provenance names the commit, which a developer may change meanwhile
        store.attrs.pop("git_commit")
    xr.testing.assert_identical(before, after)
    assert before.attrs["content_digest"] == after.attrs["content_digest"]
    from hessmask.store import verify

    assert verify(synthetic_run / "results") == {}


def test_a_script_runs_one_job_outside_snakemake(synthetic_run, tmp_path):
    """scripts/_helpers.py builds the job's Snakemake object from a command line: the per-step metrics
    of one (split, step) and an eigen store rerun by hand, in a fresh process, write bitwise the
    stores the workflow wrote (the debugger's way into one job)."""
    import shutil
    import subprocess
    import sys

    work = tmp_path / "work"
    shutil.copytree(synthetic_run, work, symlinks=True)
    metrics = work / "results" / "ci_mlp" / "metrics" / "test" / "step=6.zarr"
    seigh = work / "results" / "ci_mlp" / "eigen" / "exact" / "train" / "step=3.zarr"
    before = {path: open_dataset(path) for path in (metrics, seigh)}
    for path in before:
        shutil.rmtree(path)
    for argv in (["scripts/step_metrics.py", "experiment=ci_mlp", "split=test", "step=6"],
                 ["scripts/eigen.py", "eigen_store", "experiment=ci_mlp", "method=exact", "split=train", "step=3"]):
        proc = subprocess.run([sys.executable, str(REPO / argv[0]), *argv[1:], "--configfile", CI,
                               "--directory", str(work)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for path, old in before.items():
        new = open_dataset(path)
        for name in old.data_vars:
            assert np.array_equal(old[name].values, new[name].values, equal_nan=True), (path, name)
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "step_metrics.py"), "experiment=ci_mlp",
                           "split=test", "--configfile", CI, "--directory", str(work)], capture_output=True, text=True)
    assert proc.returncode != 0 and "missing ['step']" in proc.stderr


def test_a_damaged_store_stops_the_job_that_reads_it(synthetic_run, tmp_path):
    """A deleted chunk of an eigen store (which zarr alone reads back as NaN) stops the per-step
    metrics job that reads it, naming the store and how to rebuild it, instead of writing NaN
    metrics that look complete; the rebuild it names restores the run."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(synthetic_run, work, symlinks=True)
    store = work / "results" / "ci_mlp" / "eigen" / "seigh" / "train" / "step=3.zarr"
    (store / "eigenvalues" / "c" / "0").unlink()
    changed = overlay(tmp_path, "experiments:\n  ci_mlp:\n    metrics: {random_masks: 4}\n")
    proc = snakemake(work, "--cores", "2", "--configfile", CI, changed, "--until", "step_metrics", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "has files that differ from its manifest (missing ['eigenvalues/c/0'])" in text and "rm -r" in text
    assert not (work / "results" / "ci_mlp" / "metrics" / "train" / "step=3.zarr").exists()  # no NaN metrics
    shutil.rmtree(store)
    snakemake(work, "--cores", "2", "--configfile", CI, "--", str(store.relative_to(work)))
    assert np.array_equal(open_dataset(store)["eigenvalues"].values,
                          open_dataset(synthetic_run / store.relative_to(work))["eigenvalues"].values)


def test_an_unwritable_results_folder_stops_before_any_job(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", CI, "--config", f"results={tmp_path / 'file' / 'r'}",
                     check=False)
    assert proc.returncode != 0 and "config key 'results'" in proc.stdout + proc.stderr
    assert "is not a folder" in proc.stdout + proc.stderr


def test_jobs_end_with_a_killed_workflow(synthetic_run, tmp_path):
    """SIGKILL of Snakemake alone (not its process group) while jobs run: the orphaned jobs stop
    within seconds instead of publishing their outputs later, and a rerun finishes the run."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    work = tmp_path / "work"
    shutil.copytree(synthetic_run, work, symlinks=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work), "--cores", "2",
           "--configfile", CI, "--forcerun", "eigen_store", "--until", "eigen_store"]
    log = work / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT)

    def jobs():
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and str(work / ".snakemake" / "scripts") in (entry / "cmdline").read_text():
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    found += [int(entry.name)] if state != "Z" else []
            except OSError:
                continue
        return found

    deadline = time.time() + 300
    while time.time() < deadline and not jobs():
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and jobs():
        time.sleep(0.2)
    left = jobs()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "orphaned jobs kept running after their workflow was killed"
    snakemake(work, "--unlock", "--configfile", CI)
    snakemake(work, "--cores", "2", "--configfile", CI, "--rerun-incomplete")
    assert dry_run_jobs(work, "--configfile", CI) == {}
