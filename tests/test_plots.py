"""Each plot function on small generated Datasets: it runs and shows the expected panels and labels."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

from hessmask import plots
from hessmask.grassmann import METRICS
from hessmask.synthetic import baseline_chunk, combine_chunks

STEPS = [0, 5, 10, 50]
D = 200
RHOS = [0.05, 0.2]


@pytest.fixture(scope="module")
def stores():
    rng = np.random.default_rng(0)
    training = xr.Dataset(
        {"batch_loss": (("train_step",), np.linspace(2.3, 0.5, 50)),
         **{f"{s}_{q}": (("step",), rng.random(len(STEPS))) for s in ("train", "test") for q in ("loss", "accuracy")}},
        coords={"train_step": np.arange(50), "step": STEPS},
    )
    iou = rng.random((len(RHOS), len(STEPS), len(STEPS)))
    masks = xr.Dataset({"kappa": (("step", "rho"), rng.random((len(STEPS), len(RHOS)))),
                        "iou": (("rho", "step", "step_other"), (iou + iou.transpose(0, 2, 1)) / 2)},
                       coords={"step": STEPS, "step_other": STEPS, "rho": RHOS})
    k = np.arange(1, 41)
    shape = (2, 2, len(STEPS), k.size)
    metrics = xr.Dataset(
        {"overlap": (("method", "split", "step", "k"), rng.random(shape) * 0.5 + 0.1),
         "random_mask_overlap_mean": (("method", "split", "step", "k"), np.broadcast_to(k / D, shape).copy()),
         "random_mask_overlap_std": (("method", "split", "step", "k"), np.full(shape, 0.01)),
         "grassmann": (("method", "split", "step", "rho", "metric"), rng.random((2, 2, len(STEPS), 2, 7))),
         "kappa_spectrum": (("method", "split", "step", "rho"), rng.random((2, 2, len(STEPS), 2))),
         "eigenspace_overlap": (("method", "split", "rho", "step", "step_other"), rng.random((2, 2, 2, len(STEPS), len(STEPS)))),
         "chance": (("k",), k / D)},
        coords={"method": ["exact", "seigh"], "split": ["train", "test"], "step": STEPS, "k": k, "rho": RHOS,
                "metric": list(METRICS), "step_other": STEPS},
        attrs={"D": D},
    )
    baselines = combine_chunks([baseline_chunk(d, [0.05, 0.2], 3, 0, progress=False) for d in (64, 128)])
    return training, masks, metrics, baselines


def titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_visible()]


def test_crystallization(stores):
    training, masks, metrics, _ = stores
    fig = plots.crystallization(training, masks, metrics)
    assert "Training loss" in titles(fig) and "Spectrum compression (train, exact)" in titles(fig)
    assert any("IoU" in t for t in titles(fig)) and any("Eigenspace overlap" in t for t in titles(fig))
    overlap_axis = next(ax for ax in fig.axes if ax.get_title().startswith("Mask vs eigenspace"))
    assert overlap_axis.get_yscale() == "log" and len(overlap_axis.get_lines()) == 4  # 2 rho + 2 chance


def test_metrics_over_steps_with_baselines(stores):
    _, _, metrics, baselines = stores
    fig = plots.metrics_over_steps(metrics, baselines)
    names = titles(fig)
    assert names[:7] == [plots.METRIC_LABELS[m] for m in METRICS]
    geodesic = fig.axes[0]
    assert len(geodesic.get_lines()) == 4  # two rho curves, two dashed baselines
    assert plots.random_baseline(baselines, "overlap", 0.05) == pytest.approx(
        float(baselines["value"].sel(modality="OB", metric="overlap", D=128, ratio=0.05).mean()))
    assert plots.random_baseline(baselines, "overlap", 0.5) is None  # no ratio near 0.5


def test_kappa_and_accuracy(stores):
    training, masks, metrics, _ = stores
    fig = plots.kappa_and_accuracy(training, masks, metrics)
    assert fig.axes[0].get_ylabel() == "accuracy" and "kappa" in fig.axes[1].get_ylabel()


def test_similarity_and_exact_vs_sketched(stores):
    _, masks, metrics, _ = stores
    fig = plots.similarity_matrices(masks, metrics, max_step=10)
    assert [t for t in titles(fig) if t] == ["Masks: IoU (rho = 0.05)", "train eigenspaces: overlap", "test eigenspaces: overlap"]
    fig = plots.exact_vs_sketched(metrics)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "chance k/D" in labels and "SEIGH (sketched), test" in labels


def test_overlap_vs_k_and_random(stores):
    _, _, metrics, _ = stores
    fig = plots.overlap_vs_k(metrics)
    assert fig.axes[1].get_yscale() == "log" and fig.axes[1].get_ylabel() == "overlap / chance"
    assert len(fig.axes[2].get_legend_handles_labels()[1]) == 1  # only k = 10 fits in k <= 40
    fig = plots.magnitude_vs_random(metrics)
    assert "random masks (mean)" in fig.axes[0].get_legend_handles_labels()[1]


def test_runtime_breakdown():
    fig = plots.runtime_breakdown({"train 0": {"measure": 2.0, "core": 0.5}, "test 0": {"measure": 1.5, "merge": 0.1}})
    assert fig.axes[0].get_ylabel() == "wall time (s)"
    assert sorted(fig.axes[0].get_legend_handles_labels()[1]) == ["core", "measure", "merge"]


def test_synthetic_figures(stores):
    *_, baselines = stores
    fig = plots.synthetic_vs_dim(baselines, "OO", [0.05, 0.2])
    assert titles(fig)[:7] == [plots.METRIC_LABELS[m] for m in METRICS]
    fig = plots.synthetic_vs_ratio(baselines, "BB", [64, 128])
    assert fig.axes[0].get_xscale() == "log"


def test_save_figure(tmp_path, stores):
    paths = plots.save_figure(plots.exact_vs_sketched(stores[2]), tmp_path / "fig")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 5000 for p in paths)
