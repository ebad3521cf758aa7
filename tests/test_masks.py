"""Magnitude masks and energy concentration against their definitions."""

import numpy as np
import pytest
import xarray as xr

from hessmask.grassmann import iou
from hessmask.masks import energy_concentration, k_of_rho, magnitude_mask, mask_statistics


def test_magnitude_mask_definition():
    theta = np.array([0.1, -3.0, 2.0, 0.0, -2.0, 0.5])
    np.testing.assert_array_equal(magnitude_mask(theta, 3), [1, 2, 4])
    np.testing.assert_array_equal(magnitude_mask(theta, 2), [1, 2])  # tie -> lower index
    with pytest.raises(ValueError, match="k must"):
        magnitude_mask(theta, 7)


def test_energy_concentration():
    x = np.array([3.0, 4.0, 0.0, 0.0])
    assert energy_concentration(x, 0.25) == pytest.approx(4 / 5)
    assert energy_concentration(x, 0.5) == pytest.approx(1.0)
    assert energy_concentration(np.ones(100), 0.2) == pytest.approx(np.sqrt(0.2))
    assert k_of_rho(7030, 0.05) == 352


def test_mask_statistics(rng):
    theta = rng.standard_normal((3, 200))
    ds = mask_statistics(xr.DataArray(theta, dims=("step", "param"), coords={"step": [0, 5, 9]}), [0.1, 0.5])
    assert ds["iou"].dims == ("rho", "step", "step_other")
    np.testing.assert_allclose(np.diagonal(ds["iou"].values, axis1=1, axis2=2), 1.0)
    expected = iou(magnitude_mask(theta[0], 20), magnitude_mask(theta[2], 20), 200)
    assert float(ds["iou"].sel(rho=0.1, step=0, step_other=9)) == pytest.approx(expected)
    assert float(ds["kappa"].sel(step=5, rho=0.5)) == pytest.approx(energy_concentration(theta[1], 0.5))
