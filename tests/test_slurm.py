"""The study on a real one-node SLURM cluster (tests/slurm/cluster.sh): every job a SLURM job, GPU
rules requesting a GPU, arrays equal to a local run, and recovery from an interrupted run."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hessmask.store import open_dataset
from workflow import REPO, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
CI = str(REPO / "configs" / "ci.yaml")
# one decomposed step, no synthetic study: a small DAG whose jobs all go through the scheduler
OVERLAY = """synthetic: {enabled: false}
dof_quadratic: {enabled: false}
experiments:
  ci_mlp:
    record_steps: [0, 6]
    train: {steps: 6}
    eigen: {steps: [6], methods: {block_krylov: {steps: [6], passes: 2, shards: 1}}}
    dof: {enabled: false}
    resources: {eigen_gpus: 1, eigen_mem_mb: 1000, train_mem_mb: 1000}
"""
SLURM_ARGS = ["--workflow-profile", str(REPO / "profiles" / "slurm"), "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs",
              "--jobs", "6", "--latency-wait", "5"]
COMPARED = ["overlap", "random_mask_overlap_mean", "grassmann", "kappa_spectrum", "eigenvalues"]


def missing_slurm() -> str | None:
    tools = [t for t in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if shutil.which(t) is None]
    if tools:
        return f"SLURM is not installed ({', '.join(tools)} missing): run `tests/slurm/cluster.sh install`"
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root and installs /etc/slurm/slurm.conf"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = missing_slurm()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    subprocess.run([str(CLUSTER), "start", str(state)], check=True, capture_output=True, text=True)
    yield state
    subprocess.run([str(CLUSTER), "stop", str(state)], check=False, capture_output=True)


def workdir_with_overlay(tmp_path_factory, name):
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "slurm.yaml").write_text(OVERLAY)
    return workdir


def submitted(log: str) -> dict[str, int]:
    """Rule -> number of jobs submitted to SLURM, from a Snakemake log."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        if "has been submitted with SLURM jobid" in line and "rule_" in line:
            rule = line.split("slurm_logs/rule_")[1].split("/")[0]
            counts[rule] = counts.get(rule, 0) + 1
    return counts


# a site profile, as a cluster's users keep one: its partition and account must reach every job
SITE_PROFILE = "default-resources:\n  slurm_partition: hessmask\n  slurm_account: testaccount\n"


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    workdir = workdir_with_overlay(tmp_path_factory, "slurm_run")
    site = workdir / "site"
    site.mkdir()
    (site / "config.yaml").write_text(SITE_PROFILE)
    proc = snakemake(workdir, *SLURM_ARGS, "--profile", str(site), "--configfile", CI, str(workdir / "slurm.yaml"))
    return workdir, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = workdir_with_overlay(tmp_path_factory, "local_run")
    snakemake(workdir, "--cores", "2", "--configfile", CI, str(workdir / "slurm.yaml"))
    return workdir


def test_every_job_ran_on_slurm(slurm_run):
    workdir, log = slurm_run
    jobs = submitted(log)
    # all non-local rules went through sbatch
    # the eigen stores of exact, SEIGH and block Krylov (in one job each) in 2 splits, SEIGH's 2 shards each
    assert jobs == {"train_segment": 2, "eigen_store": 6, "eigen_seigh_shard": 4,
                    "step_metrics": 2, "eigenspace_pairs": 3, "metrics_aggregate": 1}
    logs = list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert logs, "no SLURM job logs"


def test_site_profile_partition_and_account(slurm_run):
    """The site profile's default-resources reach SLURM: nothing in the workflow overrides them."""
    _, log = slurm_run
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert ids
    for job in ids:  # MinJobAge keeps finished jobs visible to scontrol for 10 minutes
        text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        assert "Partition=hessmask" in text and "Account=testaccount" in text, text[:500]


def test_gpu_rules_requested_a_gpu(slurm_run):
    workdir, _ = slurm_run
    gpu_rules = {"eigen_store", "eigen_seigh_shard", "eigen_krylov_basis", "eigen_krylov_image"}
    for folder in (workdir / ".snakemake" / "slurm_logs").iterdir():
        rule = folder.name.removeprefix("rule_")
        text = "\n".join(p.read_text() for p in folder.rglob("*.log"))
        if rule in gpu_rules:
            assert "gpu=1" in text, rule
        elif rule == "train_segment":
            assert "gpu=0" in text


def test_metrics_equal_local_run(slurm_run, local_run):
    workdir, _ = slurm_run
    remote = open_dataset(workdir / "results" / "ci_mlp" / "metrics.zarr")
    local = open_dataset(local_run / "results" / "ci_mlp" / "metrics.zarr")
    for name in COMPARED:
        np.testing.assert_array_equal(remote[name].values, local[name].values, err_msg=name)


def test_interrupted_eigen_stage_recovers(cluster, slurm_run, tmp_path_factory):
    """Kill Snakemake and its SLURM jobs while eigen jobs run, then --rerun-incomplete."""
    workdir = workdir_with_overlay(tmp_path_factory, "interrupted")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           *SLURM_ARGS, "--configfile", CI, str(workdir / "slurm.yaml")]
    log = workdir / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            text = log.read_text()
            if "rule_eigen_seigh_shard" in text or "rule_eigen_store" in text:
                break
            if proc.poll() is not None:
                pytest.fail(f"workflow ended before the eigen stage:\n{text[-3000:]}")
            time.sleep(0.5)
        else:
            pytest.fail("the eigen stage did not start in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        subprocess.run(["scancel", "--user", "root"], check=False)
    assert not (workdir / "results" / "ci_mlp" / "metrics.zarr").exists()
    # a killed Snakemake leaves its lock behind: unlock, then finish what was interrupted
    snakemake(workdir, "--unlock", "--configfile", CI, str(workdir / "slurm.yaml"))
    snakemake(workdir, *SLURM_ARGS, "--rerun-incomplete", "--configfile", CI, str(workdir / "slurm.yaml"))
    remote, _ = slurm_run
    done = open_dataset(workdir / "results" / "ci_mlp" / "metrics.zarr")
    reference = open_dataset(remote / "results" / "ci_mlp" / "metrics.zarr")
    for name in COMPARED:
        np.testing.assert_array_equal(done[name].values, reference[name].values, err_msg=name)
