"""Synthetic baselines: determinism, chunk independence, aggregation and the table."""

import numpy as np
import pytest

from hessmask.masks import k_of_rho
from hessmask.synthetic import baseline_chunk, baselines_table, combine_chunks, grid_cells


def test_k_of_rho():
    assert k_of_rho(16, 0.01) == 1
    assert k_of_rho(2048, 0.005) == 10
    assert k_of_rho(10, 1.0) == 10


def test_grid_union():
    cells = grid_cells([{"D": [8, 16], "rho": [0.5]}, {"D": [16], "rho": [0.25, 0.5]}])
    assert cells == {8: [0.5], 16: [0.25, 0.5]}


def test_cells_do_not_depend_on_chunking():
    both = baseline_chunk(32, [0.25, 0.5], 3, seed=1, progress=False)
    one = baseline_chunk(32, [0.5], 3, seed=1, progress=False)
    np.testing.assert_array_equal(both["value"].sel(rho=0.5), one["value"].sel(rho=0.5))
    again = baseline_chunk(32, [0.25, 0.5], 3, seed=1, progress=False)
    np.testing.assert_array_equal(both["value"], again["value"])
    other = baseline_chunk(32, [0.25, 0.5], 3, seed=2, progress=False)
    assert not np.array_equal(both["value"], other["value"])


def test_combine_and_table():
    chunks = [baseline_chunk(16, [0.25, 0.5], 4, 0, progress=False),
              baseline_chunk(32, [0.125, 0.5], 4, 0, progress=False)]
    ds = combine_chunks(chunks)
    assert ds["value"].dims == ("modality", "metric", "D", "rho", "sample")
    assert list(ds["D"].values) == [16, 32]
    assert list(ds["rho"].values) == [0.125, 0.25, 0.5]
    assert np.isnan(ds["value"].sel(D=16, rho=0.125)).all()
    assert int(ds["k"].sel(D=32, rho=0.125)) == 4
    table = baselines_table(ds)
    assert list(table.index) == [0.125, 0.5]
    assert table.loc[0.5, "overlap"] == pytest.approx(
        float(ds["value"].sel(modality="OO", metric="overlap", D=32, rho=0.5).mean()))
