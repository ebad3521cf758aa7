"""Magnitude masks and energy concentration against their definitions."""

import numpy as np
import pytest
import torch
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


def test_tie_rules_and_boundary_ties():
    from hessmask.masks import boundary_ties, magnitude_order

    theta = np.array([3.0, -1.0, 1.0, 1.0, 0.5])
    order = magnitude_order(theta)
    assert list(order) == [0, 1, 2, 3, 4]  # lowest index first among |theta| = 1
    assert [boundary_ties(theta, order, k) for k in (1, 2, 3, 4)] == [0, 1, 2, 0]
    picks = {tuple(magnitude_mask(theta, 2, ties="random", seed=s)) for s in range(20)}
    assert picks == {(0, 1), (0, 2), (0, 3)}  # a seeded random member of the tie
    again = [list(magnitude_mask(theta, 2, ties="random", seed=3)) for _ in range(2)]
    assert again[0] == again[1]  # the seed decides
    excluded = np.array([False, True, True, False, False])
    assert list(magnitude_mask(theta, 2, excluded=excluded)) == [0, 3]
    assert boundary_ties(theta, magnitude_order(theta, excluded=excluded), 2, excluded) == 0
    with pytest.raises(ValueError, match="k must satisfy"):
        magnitude_mask(theta, 4, excluded=excluded)


@pytest.mark.parametrize("model,tied_k", [("resnet18", 4800), ("3c3d", 0), ("allcnnc", 0)])
def test_ties_at_initialization(model, tied_k):
    """ResNet-18 at init: its 4,800 BatchNorm scales all equal 1.0 and exceed every other |theta|,
    so every mask of k < 4,800 is chosen by the tie rule; leaving the scales out removes the ties.
    3c3d and All-CNN-C (no normalization layers) have no ties at the reported k."""
    from hessmask.masks import boundary_ties, magnitude_order
    from hessmask.models import build_model, excluded_parameters

    theta = torch.cat([p.detach().reshape(-1) for p in build_model(model, seed=12345).parameters()]).numpy()
    order = magnitude_order(theta)
    for k in (10, 100, 1000):
        assert boundary_ties(theta, order, k) == (k if k < tied_k else 0)
    if tied_k:
        assert boundary_ties(theta, order, tied_k) == 0  # all of them: the next |theta| is smaller
        lowest = set(order[:1000])
        shuffled = set(magnitude_order(theta, "random", seed=1)[:1000])
        assert len(lowest & shuffled) < 500  # a different draw from the 4,800 tied scales
        excluded = excluded_parameters(model, ["normalization_scales"])
        assert boundary_ties(theta, magnitude_order(theta, excluded=excluded), 1000, excluded) == 0
