"""Nothing read without being checked: every damage to a store, a checkpoint or a prepared dataset
(a flipped byte, a deleted or truncated file, edited metadata) stops its reader with the file, what
differs and how to rebuild it; `make verify` lists the same, and writers never remove a live
writer's temporary."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import xarray as xr

from hessmask import data as hd
from hessmask.digests import CorruptFile, sidecar
from hessmask.store import main, open_dataset, verify, write_dataset
from hessmask.training import Checkpoint, TrainSettings, initial_checkpoint

DAMAGES = ["flip", "delete", "truncate", "metadata"]


def small_store(path):
    ds = xr.Dataset({"eigenvalues": (("eigenpair",), np.linspace(3, 1, 400))}, coords={"eigenpair": np.arange(400)},
                    attrs={"step": 40})
    return write_dataset(ds, path, encoding={"eigenvalues": {"chunks": (100,)}})


def damage_store(path, how):
    chunk = path / "eigenvalues" / "c" / "2"
    if how == "flip":
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0x10
        chunk.write_bytes(bytes(data))
        return r"the content of a chunk differs from the one written"
    if how == "delete":
        chunk.unlink()  # zarr alone would read the chunk back as fill values
        return r"has files that differ from its manifest \(missing \['eigenvalues/c/2'\]\)"
    if how == "truncate":
        chunk.write_bytes(chunk.read_bytes()[:-3])
        return r"eigenvalues/c/2 is \d+ bytes, \d+ when written"
    root = json.loads((path / "zarr.json").read_text())
    root["attributes"]["step"] = 41  # the root metadata is covered too
    (path / "zarr.json").write_text(json.dumps(root))
    return r"the metadata zarr.json was altered since the store was written"


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_store_stops_its_reader(tmp_path, how):
    path = small_store(tmp_path / "results" / "eigen.zarr")
    assert float(open_dataset(path)["eigenvalues"][0]) == 3.0
    expected = damage_store(path, how)
    with pytest.raises(CorruptFile, match=expected) as info:
        open_dataset(path)
    assert str(path) in str(info.value) and "rm -r" in str(info.value) and "snakemake" in str(info.value)
    assert list(verify(tmp_path / "results")) == [str(path)]


def test_array_metadata_and_an_added_file_are_named(tmp_path):
    path = small_store(tmp_path / "s.zarr")
    meta = json.loads((path / "eigenvalues" / "zarr.json").read_text())
    meta["fill_value"] = 1.0
    (path / "eigenvalues" / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptFile, match=r"the metadata eigenvalues/zarr.json was altered"):
        open_dataset(path)
    other = small_store(tmp_path / "t.zarr")
    (other / "eigenvalues" / "c" / "9").write_bytes(b"x")
    with pytest.raises(CorruptFile, match=r"not written with it \['eigenvalues/c/9'\]"):
        open_dataset(other)


def checkpoint(path):
    settings = TrainSettings(lr=0.3, batch_size=10, seed=1)
    return initial_checkpoint("mlp_tiny", 10, settings).save(path)


def prepared(path):
    arrays = {"x_train": np.zeros((6, 1, 16, 16), np.float32), "y_train": np.arange(6) % 3,
              "x_test": np.zeros((3, 1, 16, 16), np.float32), "y_test": np.arange(3)}
    return hd.save_prepared(arrays, path)


def damage_file(path, how):
    size = path.stat().st_size
    if how == "flip":
        data = bytearray(path.read_bytes())
        data[size // 2] ^= 0x01
        path.write_bytes(bytes(data))
        return r"differs from the file that was written"
    if how == "delete":
        path.unlink()
        return r"is missing"
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: size // 2])
        return rf"is {size // 2} bytes, {size} when it was written"
    sidecar(path).write_text("sha256:00 1\n")  # its digest record
    return r"is \d+ bytes, 1 when it was written"


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_checkpoint_stops_its_reader(tmp_path, how):
    path = checkpoint(tmp_path / "results" / "step=0.pt")
    assert Checkpoint.load(path).step == 0
    expected = damage_file(path, how)
    with pytest.raises((CorruptFile, FileNotFoundError), match=expected) as info:
        Checkpoint.load(path)
    assert str(path) in str(info.value)
    if how != "delete":
        assert "rm -r" in str(info.value) and list(verify(tmp_path / "results")) == [str(path)]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_prepared_dataset_stops_its_reader(tmp_path, how):
    path = prepared(tmp_path / "data" / "mnist5k.npz")
    assert hd.load_prepared(path, "mnist5k").x_train.shape == (6, 1, 16, 16)
    expected = damage_file(path, how)
    with pytest.raises(hd.DataError, match=expected):
        hd.load_prepared(path, "mnist5k")
    if how != "delete":
        assert list(verify(tmp_path / "data")) == [str(path)]


def test_a_checkpoint_without_its_digest_is_refused(tmp_path):
    path = checkpoint(tmp_path / "step=0.pt")
    sidecar(path).unlink()
    with pytest.raises(CorruptFile, match=r"has no readable digest \(step=0.pt.sha256\)"):
        Checkpoint.load(path)


def test_verify_lists_and_deletes_what_to_rebuild(tmp_path, capsys):
    results = tmp_path / "results"
    good, bad = small_store(results / "good.zarr"), small_store(results / "bad.zarr")
    ckpt = checkpoint(results / "checkpoints" / "step=0.pt")
    damage_store(bad, "flip")
    damage_file(ckpt, "truncate")
    assert main(["verify", str(results)]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED {bad}" in out and f"DAMAGED {ckpt}" in out and "1 of 3 stores and files" in out
    assert "verify --delete" in out
    assert main(["verify", str(results), "--delete"]) == 1
    assert not bad.exists() and not ckpt.exists() and not sidecar(ckpt).exists() and good.exists()
    assert main(["verify", str(results)]) == 0


def test_readers_refuse_non_finite_eigenpairs(tmp_path):
    """A store written with NaN eigenvectors (a diverged solve) is refused by the metrics, naming it."""
    from hessmask.metrics import step_metrics

    vectors = np.linalg.qr(np.random.default_rng(0).standard_normal((50, 5)))[0].astype(np.float32)
    vectors[:, 1] = np.nan
    path = write_dataset(xr.Dataset({"eigenvalues": (("eigenpair",), np.linspace(5, 1, 5)),
                                     "eigenvectors": (("param", "eigenpair"), vectors)}), tmp_path / "e.zarr")
    theta = np.random.default_rng(1).standard_normal(50)
    with pytest.raises(ValueError, match=r"e.zarr: its eigenvectors hold \d+ non-finite values"):
        step_metrics(theta, {"seigh": open_dataset(path, load=False)}, [0.04], 3, 0, row_chunk=16)


# ----------------------------------------------------------------------------- temporaries and interruption


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    """The next writer of an output removes the leftovers of writers that no longer run (and the
    unnamed ones of earlier versions), never a running writer's nor another host's."""
    target = tmp_path / "eigen.zarr"
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = tmp_path / f".eigen.zarr.tmp-{host}-{os.getpid()}-0123abcd"
    stale = tmp_path / f".eigen.zarr.tmp-{host}-{dead.pid}-0123abcd"
    other = tmp_path / ".eigen.zarr.tmp-elsewhere-1-0123abcd"
    legacy = tmp_path / ".eigen.zarr.tmp-0123abcd"
    for folder in (live, stale, other, legacy):
        folder.mkdir()
    small_store(target)
    assert live.exists() and other.exists() and not stale.exists() and not legacy.exists()


WORKFLOW = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print(child.pid, flush=True)
time.sleep(600)
"""
JOB = """
import sys, time
from hessmask.progress import setup_logging, stop_with_workflow
setup_logging(sys.argv[1])
assert stop_with_workflow(every=0.2) is not None
time.sleep(60)
"""


def alive(pid):
    """Whether a process runs (an exited child of a killed parent may linger as a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_job_ends_with_its_killed_workflow(tmp_path):
    """SIGKILL of the workflow (a process run as snakemake): its job stops within a fraction of a
    second instead of running on as an orphan, and its log says why."""
    log = tmp_path / "job.log"
    parent = subprocess.Popen([sys.executable, "-c", WORKFLOW, JOB, str(log), "snakemake"],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and alive(child):
        time.sleep(0.1)
    assert not alive(child)
    assert "this job stops without writing its outputs" in log.read_text()


def test_a_stopped_job_says_so(tmp_path):
    log = tmp_path / "job.log"
    program = ("import os, signal, sys\nfrom hessmask.progress import setup_logging\nsetup_logging(sys.argv[1])\n"
               "os.kill(os.getpid(), signal.SIGTERM)\n")
    proc = subprocess.run([sys.executable, "-c", program, str(log)], capture_output=True, text=True)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "job stopped by SIGTERM" in log.read_text() and "Traceback" not in log.read_text()


def test_torch_load_of_a_saved_checkpoint_round_trips(tmp_path):
    path = checkpoint(tmp_path / "step=0.pt")
    state = torch.load(path, weights_only=False)
    assert state["step"] == 0 and sidecar(path).read_text().startswith("sha256:")


def test_a_job_stopped_by_the_user_says_so(tmp_path):
    log = tmp_path / "job.log"
    program = ("import os, signal, sys\nfrom hessmask.progress import setup_logging\nsetup_logging(sys.argv[1])\n"
               "os.kill(os.getpid(), signal.SIGINT)\n")
    proc = subprocess.run([sys.executable, "-c", program, str(log)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "job stopped by the user (SIGINT)" in log.read_text() and "Traceback" not in log.read_text()
