"""Atomic zarr writes and provenance."""

import numpy as np
import pytest
import xarray as xr

from hessmask.store import config_of, open_dataset, provenance, write_dataset


def test_round_trip_and_provenance(tmp_path):
    ds = xr.Dataset({"x": (("a",), np.arange(3.0))}, coords={"a": [1, 2, 3]})
    ds.attrs.update(provenance({"seed": 1}))
    write_dataset(ds, tmp_path / "s.zarr")
    back = open_dataset(tmp_path / "s.zarr")
    xr.testing.assert_identical(back, ds)
    assert config_of(back) == {"seed": 1}


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    ds = xr.Dataset({"x": (("a",), np.arange(3.0))})

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", boom)
    with pytest.raises(RuntimeError):
        write_dataset(ds, tmp_path / "s.zarr")
    assert list(tmp_path.iterdir()) == []


def test_missing_store_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="no zarr store"):
        open_dataset(tmp_path / "nope.zarr")
