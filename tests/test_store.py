"""Atomic zarr writes and provenance."""

import numpy as np
import pytest
import xarray as xr

from hessmask import dims
from hessmask.store import config_of, main, open_dataset, provenance, verify, write_dataset


def test_round_trip_and_provenance(tmp_path):
    ds = xr.Dataset({"x": (("sample",), np.arange(3.0))}, coords={"sample": [1, 2, 3]})
    ds.attrs.update(provenance({"seed": 1}))
    write_dataset(ds, tmp_path / "s.zarr")
    back = open_dataset(tmp_path / "s.zarr")
    assert len(back.attrs.pop("content_digest")) == 64
    assert ds["sample"].attrs == {}  # the writer describes its own copy: the caller's Dataset is unchanged
    xr.testing.assert_identical(back, dims.describe(ds.copy()))
    assert config_of(back) == {"seed": 1}


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    ds = xr.Dataset({"x": (("sample",), np.arange(3.0))})

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", boom)
    with pytest.raises(RuntimeError):
        write_dataset(ds, tmp_path / "s.zarr")
    assert list(tmp_path.iterdir()) == []


def test_missing_store_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="no zarr store"):
        open_dataset(tmp_path / "nope.zarr")


def test_identical_writes_identical_stores(tmp_path):
    ds = xr.Dataset({"x": (("sample",), np.linspace(0, 1, 1000))}, coords={"sample": np.arange(1000)})
    write_dataset(ds, tmp_path / "one.zarr")
    write_dataset(ds, tmp_path / "two.zarr")
    xr.testing.assert_identical(open_dataset(tmp_path / "one.zarr"), open_dataset(tmp_path / "two.zarr"))


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_verify_names_a_corrupt_store(tmp_path, damage, capsys):
    ds = xr.Dataset({"x": (("sample",), np.linspace(0, 1, 5000))}, coords={"sample": np.arange(5000)})
    for name in ("good.zarr", "bad.zarr"):
        write_dataset(ds, tmp_path / "results" / name, encoding={"x": {"chunks": (1000,)}})
    assert verify(tmp_path / "results") == {}
    chunk = tmp_path / "results" / "bad.zarr" / "x" / "c" / "2"
    if damage == "flip":
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0x01
        chunk.write_bytes(bytes(data))
    else:
        chunk.unlink()  # would read back as fill values without the digest
    problems = verify(tmp_path / "results")
    assert list(problems) == [str(tmp_path / "results" / "bad.zarr")]
    assert main(["verify", str(tmp_path / "results")]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "bad.zarr" in out and "1 of 2 stores and files" in out


def test_scratch_folder_is_skipped_cleaned_and_survives_the_result_write(tmp_path):
    """A job's scratch store (eigen_sketch's measurement shard in a hidden sibling folder) is not a
    result: verify skips it, complete or not; writing the result beside it leaves it in place; it is
    removed on exit, and a killed job's leftover is removed by the next scratch of that name."""
    import zarr

    from hessmask.store import scratch_folder

    results = tmp_path / "results"
    leftover = results / ".step=0.zarr.shard.tmp-deadbeef"
    (leftover / "x").mkdir(parents=True)
    with scratch_folder(results / "step=0.zarr.shard") as scratch:
        assert not leftover.exists() and scratch.parent == results and scratch.name.startswith(".")
        zarr.open_group(str(scratch / "shard=0.zarr"), mode="w")  # incomplete: no content digest
        write_dataset(xr.Dataset({"x": (("sample",), np.arange(3.0))}), results / "step=0.zarr")
        assert (scratch / "shard=0.zarr").exists()
        assert verify(results) == {}
    assert sorted(p.name for p in results.iterdir()) == ["step=0.zarr"]


def test_leftovers_of_a_killed_writer_are_removed(tmp_path):
    """A SIGKILL during a write leaves a hidden temporary folder; the next write of that store
    removes it."""
    stale = tmp_path / ".s.zarr.tmp-deadbeef"
    (stale / "x").mkdir(parents=True)
    write_dataset(xr.Dataset({"x": (("sample",), np.arange(3.0))}), tmp_path / "s.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_strings_read_from_a_store_are_not_truncated_on_write(tmp_path):
    """A coordinate read as '<U7' and combined with longer names keeps them whole when written."""
    short = write_dataset(xr.Dataset({"x": ("method", [1.0])}, coords={"method": ["burn_in"]}), tmp_path / "a.zarr")
    combined = xr.concat([open_dataset(short), xr.Dataset({"x": ("method", [2.0])},
                                                          coords={"method": ["lottery_subspace"]})], dim="method")
    written = open_dataset(write_dataset(combined, tmp_path / "b.zarr"))
    assert list(written["method"].values) == ["burn_in", "lottery_subspace"]


def test_stores_name_only_the_dimensions_of_the_table(tmp_path):
    """Every writer refuses a dimension hessmask.dims does not name, and gives each coordinate the
    table's long_name and units; results/README.md prints the same table."""
    from pathlib import Path

    from hessmask.store import StoreWriter

    with pytest.raises(dims.UnknownDimension, match=r"\['ratio'\]"):
        write_dataset(xr.Dataset({"v": (("ratio",), np.zeros(2))}), tmp_path / "bad.zarr")
    assert not (tmp_path / "bad.zarr").exists()
    with StoreWriter(tmp_path / "parts.zarr") as out, pytest.raises(dims.UnknownDimension):
        out.create("x", ("param", "index"), (4, 2), (4, 2), "float32")
    path = write_dataset(xr.Dataset({"v": (("rho",), np.zeros(2))}, coords={"rho": [0.1, 0.2]}), tmp_path / "ok.zarr")
    assert open_dataset(path)["rho"].attrs == {"long_name": dims.DIMENSIONS["rho"].long_name, "units": "1"}
    readme = (Path(__file__).resolve().parents[1] / "results" / "README.md").read_text()
    assert dims.table_markdown() in readme


def test_unwritable_folders_are_named(tmp_path, monkeypatch):
    import os

    from hessmask.paths import unwritable

    assert unwritable(tmp_path / "results" / "deeper", "results") is None
    (tmp_path / "file").write_text("")
    assert "is not a folder" in unwritable(tmp_path / "file" / "results", "results")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert "cannot be written" in unwritable(tmp_path / "results", "results") and "'results'" in unwritable(
        tmp_path / "results", "results")
