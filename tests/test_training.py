"""Training: bitwise resume, segment bounds, divergence, curves and the params store."""

import numpy as np
import pytest
import torch

from hessmask.data import TensorData, synthetic_splits
from hessmask.training import (
    Checkpoint,
    TrainingDiverged,
    TrainSettings,
    batch_indices,
    combine_curves,
    initial_checkpoint,
    run_segment,
    segment_bounds,
    theta_dataset,
    train_segment,
)


def mlp_data(n=64):
    return TensorData(synthetic_splits((1, 16, 16), 10, n, seed=3))


def test_batch_order_is_a_permutation_per_epoch():
    seen = np.concatenate([batch_indices(s, 20, 5, seed=1) for s in range(4)])
    assert sorted(seen) == list(range(20))
    np.testing.assert_array_equal(batch_indices(6, 20, 5, 1), batch_indices(6, 20, 5, 1))
    assert not np.array_equal(batch_indices(0, 20, 5, 1), batch_indices(4, 20, 5, 1))


def test_segment_bounds():
    assert segment_bounds([0, 5, 20], 30) == [(0, 5), (5, 20), (20, 30)]
    assert segment_bounds([10, 20], 20) == [(0, 10), (10, 20)]


@pytest.mark.parametrize(
    "model,shape,classes,augment,momentum",
    [("mlp", (1, 16, 16), 10, False, 0.0), ("mlp", (1, 16, 16), 10, False, 0.9),
     ("allcnnc", (3, 32, 32), 100, True, 0.0)],
)
def test_resume_is_bitwise(tmp_path, model, shape, classes, augment, momentum):
    data = TensorData(synthetic_splits(shape, classes, 16 if model == "allcnnc" else 64, seed=3))
    settings = TrainSettings(lr=0.05, batch_size=8, seed=7, momentum=momentum, augment=augment)
    start = initial_checkpoint(model, classes, settings)
    straight, losses = train_segment(start, data, 6, settings, progress=False)
    middle, first = train_segment(start, data, 3, settings, progress=False)
    middle.save(tmp_path / "c.pt")
    resumed, second = train_segment(Checkpoint.load(tmp_path / "c.pt"), data, 6, settings, progress=False)
    for key, value in straight.model_state.items():
        assert torch.equal(value, resumed.model_state[key]), key
    np.testing.assert_array_equal(losses, np.concatenate([first, second]))
    assert resumed.position == divmod(6, 16 // 8 if model == "allcnnc" else 64 // 8)


def test_nan_loss_stops_with_step():
    settings = TrainSettings(lr=float("inf"), batch_size=16, seed=0, divergence_factor=None)
    with pytest.raises(TrainingDiverged, match=r"loss = nan at step 1 \(not finite\)"):
        train_segment(initial_checkpoint("mlp", 10, settings), mlp_data(), 50, settings, progress=False)


def test_finite_divergence_stops_with_step_and_values():
    """lr = 1e6: the loss stays finite but explodes; the guard names the step and the bound."""
    settings = TrainSettings(lr=1.0e6, batch_size=16, seed=0)
    with pytest.raises(TrainingDiverged, match=r"at step 1 > train.divergence_factor x ln C = 10.0 x ln 10 = 23"):
        train_segment(initial_checkpoint("mlp", 10, settings), mlp_data(), 50, settings, progress=False)
    # a healthy run passes the guard
    healthy = TrainSettings(lr=0.3, batch_size=16, seed=0)
    train_segment(initial_checkpoint("mlp", 10, healthy), mlp_data(), 5, healthy, progress=False)


def test_run_segment_and_curves(tmp_path):
    exp = {"model": "mlp", "train": {"lr": 0.1, "batch_size": 16, "seed": 1, "steps": 8}}
    data = mlp_data()
    c0, s0 = run_segment(exp, data, 0, None)
    c4, s4 = run_segment(exp, data, 4, c0)
    c8, s8 = run_segment(exp, data, 8, c4)
    curves = combine_curves([s8, s0, s4])
    assert list(curves["step"].values) == [0, 4, 8]
    assert list(curves["train_step"].values) == list(range(8))
    assert np.isfinite(curves["batch_loss"]).all()
    assert ((curves["test_accuracy"] >= 0) & (curves["test_accuracy"] <= 1)).all()
    paths = [c.save(tmp_path / f"s{c.step}.pt") for c in (c8, c0, c4)]
    theta = theta_dataset(paths)
    assert theta["theta"].dims == ("step", "param") and theta.sizes["param"] == 7030
    np.testing.assert_array_equal(theta["theta"].sel(step=4).values, c4.parameters())
    # each segment store carries theta at its end step, bitwise, for the jobs that run without torch
    for segment, checkpoint in ((s0, c0), (s4, c4), (s8, c8)):
        np.testing.assert_array_equal(segment["theta"].values, checkpoint.parameters())
    assert "theta" not in curves and "param" not in curves.dims


def test_checkpoint_holds_buffers():
    settings = TrainSettings(lr=0.1, batch_size=2, seed=0)
    data = TensorData(synthetic_splits((3, 32, 32), 1000, 4, seed=0))
    ckpt = initial_checkpoint("resnet18", 1000, settings)
    assert "bn1.running_mean" in ckpt.model_state
    assert len(ckpt.model_state) > sum(1 for _ in ckpt.model().parameters())
    del data


def test_segment_theta_names_a_store_without_theta(tmp_path):
    """A segment store written before the stores carried theta stops the per-step metrics with
    one message naming the store and the rerun."""
    import xarray as xr

    from hessmask.jobs import segment_theta
    from hessmask.store import write_dataset

    path = write_dataset(xr.Dataset({"train_loss": ((), 1.0)}, coords={"step": 4}), tmp_path / "segment_step=4.zarr")
    with pytest.raises(SystemExit, match=r"segment_step=4.zarr has no 'theta'.*--forcerun train_segment"):
        segment_theta(path)
    theta = np.arange(5, dtype=np.float32)
    good = write_dataset(xr.Dataset({"theta": (("param",), theta)}), tmp_path / "segment_step=8.zarr")
    np.testing.assert_array_equal(segment_theta(good), theta)
