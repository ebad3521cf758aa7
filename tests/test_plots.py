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
         "eigenspace_overlap": (("method", "split", "rho", "step", "step_other"),
                                rng.random((2, 2, 2, len(STEPS), len(STEPS)))),
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
        float(baselines["value"].sel(modality="OB", metric="overlap", D=128, rho=0.05).mean()))
    assert plots.random_baseline(baselines, "overlap", 0.5) is None  # no rho near 0.5


def test_kappa_and_accuracy(stores):
    training, masks, metrics, _ = stores
    fig = plots.kappa_and_accuracy(training, masks, metrics)
    assert fig.axes[0].get_ylabel() == "accuracy" and "kappa" in fig.axes[1].get_ylabel()


def test_similarity_and_exact_vs_sketched(stores):
    _, masks, metrics, _ = stores
    fig = plots.similarity_matrices(masks, metrics, max_step=10)
    assert [t for t in titles(fig) if t] == ["Masks: IoU (rho = 0.05)", "train eigenspaces: overlap",
                                             "test eigenspaces: overlap"]
    fig = plots.exact_vs_sketched(metrics)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "chance k/D" in labels and "SEIGH (sketched), test" in labels


def test_accuracy_vs_products(stores, tmp_path):
    _, _, metrics, _ = stores
    methods = ["exact", "seigh", "block_krylov"]
    k = metrics["k"].values
    shape = (3, 2, len(STEPS))
    accuracy = np.broadcast_to(np.array([1.0, 0.7, 0.95])[:, None, None, None], (*shape, k.size)).copy()
    accuracy[:, :, 1:] = np.nan  # an exact solve only at the first step
    extra = xr.Dataset(
        {"eigenspace_accuracy": (("method", "split", "step", "k"), accuracy),
         "products": (("method", "split", "step"), np.broadcast_to(np.array([D, 80, 80.0])[:, None, None], shape)),
         "aposteriori_error": (("method", "split", "step"),
                               np.broadcast_to(np.array([np.nan, 0.3, 0.05])[:, None, None], shape))},
        coords={"method": methods, "split": ["train", "test"], "step": STEPS, "k": k})
    fig = plots.accuracy_vs_products(extra.assign_attrs(D=D), rho=0.05)
    left, right = fig.axes
    assert left.get_xlabel() == "Hessian-vector products" and "1 = same" in left.get_ylabel()
    assert "0 = exact" not in right.get_ylabel() and "||H||_F" in right.get_ylabel() and right.get_yscale() == "log"
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["SEIGH (sketched)", "block Krylov",
                                                                     "exact solve (200 products)"]
    assert [len(c.get_offsets()) for c in left.collections] == [2, 2]  # the exactly solved step, two splits
    plots.save_figure(fig, tmp_path / "accuracy")
    no_exact = extra.assign(eigenspace_accuracy=extra["eigenspace_accuracy"] * np.nan).assign_attrs(D=D)
    fig = plots.accuracy_vs_products(no_exact, rho=0.05)  # paper scale: nothing to compare with
    assert "no exact solve" in fig.axes[0].texts[0].get_text()
    plots.save_figure(fig, tmp_path / "accuracy_no_exact")


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
    fig = plots.synthetic_vs_rho(baselines, "BB", [64, 128])
    assert fig.axes[0].get_xscale() == "log"


def test_save_figure(tmp_path, stores):
    paths = plots.save_figure(plots.exact_vs_sketched(stores[2]), tmp_path / "fig")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 5000 for p in paths)


@pytest.fixture(scope="module")
def dof_store():
    from dof_stores import full_store, lottery_store, start_store
    from hessmask.dof import SUBSPACES, dof_dataset

    dims = (5, 50, 500)
    start = []
    for t in (0, 20, 40):
        for run in range(3):
            values = {s: {d: min(0.95, 0.2 + 0.1 * i + 0.12 * np.log(d) + t / 400 + run / 100) for d in dims}
                      for i, s in enumerate(("burn_in", "hessian_topd", "mask_topd"))}
            start.append(start_store(t, run, values, 0.1 + t / 100 + run / 50, dims=dims,
                                     refined={"burn_in": [(16, 0.62)], "hessian_topd": [(158, 0.9)]}))
    lottery = [lottery_store(s, range(3), {d: 0.3 + 0.1 * np.log10(d) for d in dims}, dims)
               for s in ("lottery_subspace", "lottery_ticket")]
    main = {"random_affine": 0, "burn_in": 20, "lottery_subspace": 0, "lottery_ticket": 0, "hessian_topd": 20,
            "mask_topd": 20}
    return dof_dataset(start, lottery, full_store(), 7030, [round(0.1 + 0.05 * i, 2) for i in range(19)], 0.1,
                       main_steps=main, subspaces=list(SUBSPACES), sweep_levels=[0.6, 0.7], success="best")


def test_dof_figures(dof_store):
    fig = plots.dof_success(dof_store, "success")
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels][:2] == ["random affine (t = 0), t = 0", "burn-in affine, t = 20"]
    assert all(ax.get_xlabel() == "training dimension d" for ax in panels)
    texts = [t.get_text() for t in panels[0].get_legend().get_texts()]
    assert any("full space" in t for t in texts) and any(t.startswith("offset w_t, d = 0") for t in texts)
    fig = plots.dof_threshold(dof_store)
    assert [ax.get_xlabel() for ax in fig.axes] == ["threshold training dimension d*"] * 2
    assert len(fig.axes[0].get_legend().get_texts()) == 7  # six subspaces + full space
    fig = plots.dof_compression(dof_store)
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_xlabel().startswith("compression ratio D / d")
    assert len(fig.axes[0].collections) >= 12  # a band and an offset diamond per subspace


def test_dof_start_step_figures(dof_store, tmp_path):
    fig = plots.dof_start_step(dof_store, "sweep")
    assert len(fig.axes) == 3  # the offsets, then one panel per level
    assert fig.axes[0].get_ylabel().startswith("train accuracy")
    assert [ax.get_title().split(" (")[0] for ax in fig.axes[1:]] == ["train accuracy >= 0.6", "train accuracy >= 0.7"]
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == [f"{name}: median d*" for name in
                      ("burn-in affine", "top-d Hessian eigenspace", "top-d magnitude mask")]
    assert [tick.get_text() for tick in fig.axes[-1].get_xticklabels()] == ["0", "20", "40"]
    plots.save_figure(fig, tmp_path / "start_step")
    fig = plots.dof_start_step_success(dof_store)
    assert len(fig.axes) == 2 * 3 and fig.axes[0].get_title() == "t = 0"
    assert len(fig.axes[0].collections) == 3  # a Wilson band per subspace
    plots.save_figure(fig, tmp_path / "start_step_success")


def test_quadratic_well_figure():
    from hessmask.dof import quadratic_well_dataset

    quad = {"dim": 30, "spectra": [{"name": "bimodal", "kind": "bimodal", "low": 1e-3, "high": 1.0},
                                   {"name": "bulk", "kind": "bulk", "low": 1e-3, "high": 1.0}],
            "radii": [1.0, 3.0], "dims": [1, 5, 10, 20, 30], "eps": {"low": 1e-3, "high": 1.0, "num": 5},
            "runs": 3, "delta": 0.1, "seed": 0}
    fig = plots.quadratic_well(quadratic_well_dataset(quad))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:3] == ["bimodal spectrum", "R = 1", "R = 3"]
    assert titles[3].startswith("d*: simulated (solid), bound (dashed)")
    assert len(fig.axes) == 2 * 4 + 1  # panels and the colorbar
    # eps up to 1.0 reaches L(w0) at R = 1: that regime is hatched, and no simulated d* is drawn in it
    ds = quadratic_well_dataset(quad)
    trivial = ds["trivial"].sel(spectrum="bimodal", radius=1.0).values
    assert trivial.any() and not trivial.all()
    panel = fig.axes[1]
    assert any(patch.get_hatch() == "//" for patch in panel.patches)
    drawn = panel.lines[0].get_xdata()
    assert np.isnan(np.asarray(drawn, dtype=float)[trivial]).all()


def _line_figure(scale):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(np.arange(10) * scale)
    ax.set_title(f"scale {scale}")
    return fig


def test_save_figures_in_forked_workers_writes_the_serial_files(tmp_path):
    figures = {f"f{i}": (lambda i=i: _line_figure(i), tmp_path / "{}" / f"f{i}") for i in range(3)}
    written = {}
    for workers in (1, 2):
        done = []
        plots.save_figures({name: (make, str(stem).format(workers)) for name, (make, stem) in figures.items()},
                           workers=workers, done=done.append)
        assert sorted(done) == ["f0", "f1", "f2"]
        written[workers] = {p.name: p.read_bytes() for p in (tmp_path / str(workers)).iterdir()}
    assert len(written[1]) == 6 and written[1] == written[2]  # PNG and PDF of each, the same bytes


def test_save_figures_reports_a_failing_figure(tmp_path):
    def broken():
        raise ValueError("no such variable: kappa")

    with pytest.raises(ValueError, match="kappa"):
        plots.save_figures({"a": (lambda: _line_figure(1), tmp_path / "a"), "b": (broken, tmp_path / "b")},
                           workers=2)
