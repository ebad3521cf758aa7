"""Degrees of freedom: bases, subspace training against full-space training, the trajectory,
success probability and d*, the quadratic well and its bound, the dof config checks."""

import numpy as np
import pytest
import torch
import xarray as xr

from hessmask import dof as S
from hessmask.config import ConfigError, load_config
from hessmask.data import TensorData, synthetic_splits
from hessmask.models import build_model
from hessmask.training import TrainingDiverged, TrainSettings, initial_checkpoint, train_segment


def tiny_data(n=64):
    return TensorData(synthetic_splits((1, 16, 16), 10, n, seed=3))


def tiny_model():
    return build_model("mlp_tiny", seed=5)


def flat(model):
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy()


SETTINGS = S.SubspaceSettings(steps=12, batch_size=16, lr=0.01)


@pytest.mark.parametrize("kind", ["dense", "coordinates"])
def test_identity_subspace_matches_full_space_training(kind):
    data, model = tiny_data(), tiny_model()
    w0 = flat(model)
    dim = w0.size
    basis = S.DenseBasis(torch.eye(dim)) if kind == "dense" else S.CoordinateBasis(torch.arange(dim), dim)
    sub = S.train_in_subspace(tiny_model(), w0, basis, data, SETTINGS, data_seed=11)
    full = S.train_full_space(tiny_model(), w0, data, SETTINGS, data_seed=11)
    np.testing.assert_allclose(sub.batch_loss, full.batch_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sub.params, full.params, rtol=0, atol=1e-5)
    assert np.abs(sub.params - w0).max() > 1e-3  # it trained
    assert sub.train_accuracy == pytest.approx(full.train_accuracy, abs=1 / 64)
    np.testing.assert_array_equal(w0, flat(model))  # the offset was never written to


def test_subspace_training_stays_in_the_subspace_and_is_deterministic():
    data = tiny_data()
    w0 = flat(tiny_model())
    basis = S.gaussian_basis(w0.size, 6, seed=2)
    first = S.train_in_subspace(tiny_model(), w0, basis, data, SETTINGS, data_seed=1)
    again = S.train_in_subspace(tiny_model(), w0, basis, data, SETTINGS, data_seed=1)
    np.testing.assert_array_equal(first.params, again.params)
    a = basis.matrix().double().numpy()
    step = first.params.astype(np.float64) - w0
    theta, *_ = np.linalg.lstsq(a, step, rcond=None)
    assert np.linalg.norm(a @ theta - step) <= 1e-5 * np.linalg.norm(step)
    assert first.batch_loss[-1] < first.batch_loss[0]


def test_divergence_names_the_step():
    splits = synthetic_splits((1, 16, 16), 10, 32, seed=3)
    splits.x_train[:] = float("nan")
    with pytest.raises(TrainingDiverged, match="at step 0"):
        S.train_in_subspace(tiny_model(), flat(tiny_model()), S.gaussian_basis(2146, 3, 0), TensorData(splits),
                            SETTINGS, data_seed=0)


def test_bases_match_their_matrices_and_keep_orthonormality(rng):
    dim = 40
    g = S.gaussian_basis(dim, 7, seed=4)
    np.testing.assert_allclose(np.linalg.norm(g.columns.numpy(), axis=0), 1, rtol=1e-6)
    np.testing.assert_array_equal(S.gaussian_basis(dim, 3, seed=4).columns, g.columns[:, :3])  # nested in d
    assert not torch.equal(S.gaussian_basis(dim, 3, seed=5).columns, g.columns[:, :3])
    c = S.CoordinateBasis(torch.tensor([3, 0, 17]), dim)
    dense = c.matrix().numpy()
    np.testing.assert_array_equal(dense, np.eye(dim)[:, [3, 0, 17]])
    theta = torch.tensor([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(c.expand(theta).numpy(), dense @ theta.numpy())
    sym = rng.standard_normal((dim, dim))
    _, vectors = np.linalg.eigh(sym + sym.T)
    e = S.eigenvector_basis(vectors, 5).columns.double().numpy()
    np.testing.assert_allclose(e.T @ e, np.eye(5), atol=1e-6)
    with pytest.raises(ValueError, match="D = 40"):
        S.gaussian_basis(dim, 41, 0)
    with pytest.raises(ValueError, match="distinct"):
        S.CoordinateBasis(torch.tensor([1, 1]), dim)


def test_dense_basis_products_and_gradient_match_the_dense_reference(rng):
    columns = torch.from_numpy(rng.standard_normal((300, 40)).astype(np.float32))
    theta = torch.from_numpy(rng.standard_normal(40).astype(np.float32)).requires_grad_()
    weights = torch.from_numpy(rng.standard_normal(300).astype(np.float32))
    (S.DenseBasis(columns).expand(theta) * weights).sum().backward()
    a = columns.double().numpy()
    expanded = S.DenseBasis(columns).expand(theta.detach()).numpy()
    np.testing.assert_allclose(expanded, a @ theta.detach().double().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(theta.grad.numpy(), a.T @ weights.double().numpy(), rtol=1e-5, atol=1e-5)


class _Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = torch.nn.Linear(4, 4), torch.nn.Linear(4, 3)
        self.again = torch.nn.Linear(4, 4)
        self.again.weight = self.first.weight  # tied: one parameter, two modules

    def forward(self, x):
        return self.second(torch.tanh(self.again(torch.tanh(self.first(x)))))


@pytest.mark.parametrize("make", [tiny_model, _Tied])
def test_parameters_as_views_is_functional_call_and_restores_the_model(make):
    from torch.func import functional_call

    from hessmask.models import unflattener

    torch.manual_seed(0)
    model = make()
    before = {name: (p, p.detach().clone()) for name, p in model.named_parameters()}
    x = torch.randn(5, 1, 16, 16) if make is tiny_model else torch.randn(5, 4)
    w = torch.randn(sum(p.numel() for p in model.parameters()), requires_grad=True)
    reference = functional_call(model, unflattener(model.named_parameters())(w), (x,))
    (grad_ref,) = torch.autograd.grad(reference.square().sum(), w)
    with S.parameters_as_views(model) as assign:
        assign(w)
        out = model(x)
        assert not list(model.parameters())
    (grad,) = torch.autograd.grad(out.square().sum(), w)
    assert torch.equal(out, reference) and torch.equal(grad, grad_ref)
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    for name, (param, value) in before.items():
        assert after[name] is param and torch.equal(param, value)  # the same objects, unchanged


def test_trajectory_components_are_the_top_singular_directions(rng):
    steps = rng.standard_normal((30, 50)) * np.geomspace(10, 0.1, 50)
    comps, singular = S.trajectory_components(steps, 4)
    np.testing.assert_allclose(comps.T @ comps, np.eye(4), atol=1e-12)
    _, s, vh = np.linalg.svd(steps, full_matrices=False)
    np.testing.assert_allclose(singular, s)
    np.testing.assert_allclose(comps @ comps.T, vh[:4].T @ vh[:4], atol=1e-10)  # same span
    assert np.all(comps[np.argmax(np.abs(comps), axis=0), np.arange(4)] > 0)  # sign convention
    with pytest.raises(ValueError, match="components"):
        S.trajectory_components(steps, 31)


def test_trajectory_replays_training_bitwise():
    data = tiny_data()
    settings = TrainSettings(lr=0.1, batch_size=16, seed=3)
    start = initial_checkpoint("mlp_tiny", 10, settings)
    directions, end = S.trajectory_directions(start, data, 7, every=2, progress=False)
    assert directions.shape == (4, 2146)  # steps 0-2, 2-4, 4-6, 6-7
    reference, _ = train_segment(start, data, 7, settings, progress=False)
    np.testing.assert_array_equal(end.parameters(), reference.parameters())
    np.testing.assert_allclose(directions.sum(0), reference.parameters().astype(np.float64) - start.parameters(),
                               atol=1e-6)


def test_methods_build_the_subspaces_they_name(rng):
    dim = 30
    w = {k: rng.standard_normal(dim).astype(np.float32) for k in ("start", "init", "rewind", "final")}
    sources = S.Sources(**w, trajectory=np.linalg.qr(rng.standard_normal((dim, 6)))[0],
                        eigenvectors=np.linalg.qr(rng.standard_normal((dim, 8)))[0])
    offset, basis = S.build_subspace("lottery_ticket", 5, 0, sources, 1)
    keep = np.argsort(-np.abs(w["final"]))[:5]
    assert sorted(basis.indices.tolist()) == sorted(keep.tolist())
    np.testing.assert_array_equal(offset[keep], w["rewind"][keep])
    assert np.count_nonzero(offset) == 5  # pruned weights are zero
    offset, basis = S.build_subspace("mask_topd", 4, 0, sources, 1)
    assert offset is w["start"] and sorted(basis.indices.tolist()) == sorted(
        np.argsort(-np.abs(w["start"]))[:4].tolist())
    offset, basis = S.build_subspace("random_affine", 4, 2, sources, 1)
    assert offset is w["init"]
    burn_offset, burn = S.build_subspace("burn_in", 4, 2, sources, 1)
    assert burn_offset is w["start"] and torch.equal(burn.columns, basis.columns)  # same run, same basis
    _, hess = S.build_subspace("hessian_topd", 3, 0, sources, 1)
    np.testing.assert_allclose(hess.columns.numpy(), sources.eigenvectors[:, :3], atol=1e-7)
    with pytest.raises(ValueError, match="needs 7 trajectory directions"):
        S.build_subspace("lottery_subspace", 7, 0, sources, 1)
    with pytest.raises(ValueError, match="unknown subspace"):
        S.build_subspace("pca", 3, 0, sources, 1)


def test_success_probability_and_threshold_dimension():
    acc = xr.DataArray([[0.2, 0.5, 0.9], [0.3, 0.4, 0.95], [0.1, 0.6, 0.8]], dims=("run", "d"),
                       coords={"d": [1, 10, 100]})
    best = S.running_max(acc)
    np.testing.assert_array_equal(best.sel(run=1).values, [0.3, 0.4, 0.95])
    prob = S.success_probability(acc, [0.25, 0.5, 0.85, 0.99])
    np.testing.assert_allclose(prob.values, [[1 / 3, 1, 1], [0, 2 / 3, 1], [0, 0, 2 / 3], [0, 0, 0]])
    dstar = S.threshold_dimension(prob, delta=0.1)
    np.testing.assert_array_equal(dstar.values, [10, 100, np.nan, np.nan])
    assert S.threshold_dimension(prob, delta=0.5).values[2] == 100  # 2/3 >= 0.5


def test_quadratic_bound_by_hand():
    # lambda = (2, 0.5), eps = 1, R = 1: r^2 = (1, 4), sum r^2 / (R^2 + r^2) = 1/2 + 4/5
    assert S.angular_dimension_bound(np.array([2.0, 0.5]), 1.0, 1.0) == pytest.approx(1.3)
    assert S.threshold_bound(np.array([2.0, 0.5]), 1.0, 1.0) == pytest.approx(0.7)
    many = S.angular_dimension_bound(np.array([2.0, 0.5]), np.array([1.0, 1e9]), 1.0)
    assert many[1] == pytest.approx(2.0, abs=1e-6)  # eps -> inf: every direction counts


def test_quadratic_min_loss_matches_least_squares(rng):
    lam = S.quadratic_spectrum("bulk", 12, 0.01, 1.0)
    w0, a = rng.standard_normal(12), rng.standard_normal((12, 12))
    got = S.quadratic_min_loss(lam, w0, a)
    h = np.diag(lam)
    for d in (1, 4, 9):
        theta = np.linalg.solve(a[:, :d].T @ h @ a[:, :d], -a[:, :d].T @ h @ w0)
        w = w0 + a[:, :d] @ theta
        assert got[d - 1] == pytest.approx(0.5 * w @ h @ w, rel=1e-9, abs=1e-12)
    assert np.all(np.diff(got) <= 1e-12) and got[-1] == pytest.approx(0, abs=1e-10)
    assert np.all(S.quadratic_spectrum("bimodal", 6, 0.1, 1.0) == [1, 1, 1, 0.1, 0.1, 0.1])


def test_quadratic_well_dataset_has_a_phase_transition():
    quad = {"dim": 40, "spectra": [{"name": "bimodal", "kind": "bimodal", "low": 1e-3, "high": 1.0}],
            "radii": [1.0], "dims": [1, 5, 10, 20, 30, 40], "eps": {"low": 1e-4, "high": 1.0, "num": 6},
            "runs": 4, "delta": 0.1, "seed": 1}
    ds = S.quadratic_well_dataset(quad)
    prob = ds["success_probability"].sel(spectrum="bimodal", radius=1.0)
    assert prob.sel(d=40).min() == 1 and prob.sel(d=1, eps=1e-4) == 0
    assert np.all(prob.diff("d") >= 0)  # nested subspaces: success only grows with d
    dstar = ds["threshold_dimension"].sel(spectrum="bimodal", radius=1.0).values
    assert np.all(np.diff(dstar[np.isfinite(dstar)]) <= 0)  # larger eps, fewer dimensions



def test_quadratic_well_threshold_is_read_on_every_d():
    """The stored grid is coarse (1, 10, 40); d* comes from every d = 1..D, so it takes values
    between the grid points instead of rounding up to the next one, and equals the full-grid
    reading of the same runs."""
    quad = {"dim": 40, "spectra": [{"name": "bulk", "kind": "bulk", "low": 1e-3, "high": 1.0}],
            "radii": [1.0, 3.0], "dims": [1, 10, 40], "eps": {"low": 1e-3, "high": 0.3, "num": 8},
            "runs": 4, "delta": 0.1, "seed": 2}
    coarse = S.quadratic_well_dataset(quad)
    full = S.quadratic_well_dataset({**quad, "dims": None})
    assert list(coarse["d"].values) == [1, 10, 40] and full.sizes["d"] == 40
    np.testing.assert_array_equal(coarse["threshold_dimension"].values, full["threshold_dimension"].values)
    dstar = coarse["threshold_dimension"].values
    assert not set(dstar[np.isfinite(dstar)].astype(int)) <= {1, 10, 40}  # the grid does not decide d*
    np.testing.assert_allclose(coarse["threshold_gap"], coarse["threshold_dimension"] - coarse["threshold_bound"])
    assert coarse.attrs["max_gap"] == pytest.approx(float(np.nanmax(coarse["threshold_gap"])))


def _chunk(method, d, runs, value, step=0):
    results = [S.SubspaceResult(0.1, value + r / 100, 0.2, value, np.zeros(3), np.zeros(1)) for r in runs]
    return S.results_dataset(results, runs, {"subspace": [method], "start_step": [step], "d": [d]})


def _full(accuracies=(0.97,), lrs=(0.05,)):
    import xarray as xr

    parts = [S.results_dataset([S.SubspaceResult(0.05, a, 0.1, a - 0.02, np.zeros(3), np.zeros(1))], [0], {})
             for a in accuracies]
    return xr.concat(parts, dim=xr.DataArray(list(lrs), dims="lr", name="lr"))


MAIN = {"random_affine": 0, "burn_in": 0, "mask_topd": 0, "hessian_topd": 0}


def test_dof_dataset_combines_chunks():
    chunks = [_chunk(m, d, runs, 0.5 if d == 10 else 0.9) for m in ("random_affine", "mask_topd")
              for d in (10, 100) for runs in ([0, 1], [2])]
    ds = S.dof_dataset(chunks, _full(), 1000, [0.5, 0.9], delta=0.1, main_steps=MAIN)
    assert ds["train_accuracy"].dims == ("subspace", "d", "run") and ds.sizes["run"] == 3
    np.testing.assert_array_equal(ds["compression"].values, [100, 10])
    assert ds["success_probability"].dims == ("subspace", "split", "level", "d")
    np.testing.assert_array_equal(ds["threshold_dimension"].sel({"subspace": "mask_topd", "split": "test"}).values,
                                  [10, 100])
    assert float(ds["full_train_accuracy"].squeeze()) == pytest.approx(0.97)


@pytest.mark.parametrize(
    "dof,key",
    [
        ({"dims": [10, 3000]}, "dims"),  # > D of mlp_tiny
        ({"dims": [8, 4]}, "dims"),
        ({"dims": [4, 9], "subspaces": ["lottery_subspace"]}, "dims"),  # 8 training steps
        ({"start_step": 5}, "start_step"),
        ({"rewind_step": 7}, "rewind_step"),
        ({"ticket_step": 7}, "ticket_step"),
        ({"start_steps": [0, 7]}, "start_steps"),
        ({"subspaces": ["hessian_topd"], "start_steps": [8]}, "start_steps"),  # 8 is no solved step
        ({"subspaces": ["hessian_topd"], "hessian_method": "seigh", "dims": [2, 200]}, "dims"),  # outer = 120
    ],
)
def test_dof_config_errors_name_the_key(repo, dof, key):
    with pytest.raises(ConfigError) as info:
        load_config(repo / "config.yaml", repo / "configs" / "ci.yaml",
                    overrides={"experiments": {"ci_mlp": {"dof": dof}}})
    assert f"'experiments.ci_mlp.dof.{key}'" in str(info.value)


def test_hessian_topd_needs_a_solved_step(repo):
    with pytest.raises(ConfigError, match="solved only at"):
        load_config(repo / "config.yaml", repo / "configs" / "ci.yaml",
                    overrides={"experiments": {"ci_mlp": {"eigen": {"methods": {"exact": {"steps": [0]}}}}}})


def test_dof_dataset_orders_methods_and_labels_levels():
    chunks = [_chunk(m, 10, [0], 0.5) for m in ("mask_topd", "burn_in", "random_affine")]
    ds = S.dof_dataset(chunks, _full(), 100, [0.3, 0.6], delta=0.1, main_steps=MAIN)
    assert list(ds["subspace"].values) == ["random_affine", "burn_in", "mask_topd"]
    np.testing.assert_array_equal(ds["level"].values, [0.3, 0.6])


def test_full_space_reference_keeps_the_better_learning_rate():
    ds = S.dof_dataset([_chunk("random_affine", 10, [0], 0.5)], _full((0.90, 0.97), (0.05, 0.01)), 100, [0.5],
                       delta=0.1, main_steps=MAIN)
    assert ds.attrs["full_lr"] == 0.01 and float(ds["full_train_accuracy"].squeeze()) == pytest.approx(0.97)


def test_start_step_sweep_aggregates_d_star_per_t():
    """burn_in at t = 0, 5, 20 with d* = 100, 10, 100 (at level 0.8); the main results take t = 5."""
    reach = {0: 100, 5: 10, 20: 100}  # the smallest d whose runs reach 0.8
    chunks = [_chunk("burn_in", d, [0, 1], 0.9 if d >= reach[t] else 0.5, step=t) for t in reach
              for d in (10, 100)]
    chunks += [_chunk("random_affine", d, [0, 1], 0.9 if d >= 100 else 0.5) for d in (10, 100)]
    chunks += [_chunk("lottery_ticket", d, [0, 1], 0.9) for d in (10, 100)]
    ds = S.dof_dataset(chunks, _full(), 1000, [0.8], delta=0.1,
                       main_steps={"burn_in": 5, "random_affine": 0, "lottery_ticket": 0}, sweep_levels=[0.8])
    assert ds["train_accuracy"].dims == ("subspace", "d", "run")  # the main results: one t per method
    assert float(ds["threshold_dimension"].sel({"subspace": "burn_in"}).sel(split="train", level=0.8)) == 10
    assert list(ds["offset_step"].values) == [0, 5, 0]
    sweep = ds["sweep_threshold_dimension"].sel(split="train", sweep_level=0.8)
    np.testing.assert_array_equal(sweep.sel({"subspace": "burn_in"}).values, [100, 10, 100])
    assert list(ds["start_step"].values) == [0, 5, 20]
    np.testing.assert_array_equal(ds["sweep_ran"].sel({"subspace": "random_affine"}).values, [True, False, False])
    # never run at t = 5: NaN, not "not reached"
    assert np.isnan(sweep.sel({"subspace": "random_affine"}).sel(start_step=5))
    per_run = ds["sweep_run_threshold_dimension"].sel(split="train", sweep_level=0.8).sel({"subspace": "burn_in"})
    np.testing.assert_array_equal(per_run.sel(start_step=5).values, [10, 10])


def test_per_run_d_star_is_each_runs_first_success():
    import xarray as xr

    acc = xr.DataArray([[0.5, 0.9, 0.7], [0.5, 0.6, 0.95]], dims=("run", "d"), coords={"d": [1, 2, 4]})
    dstar = S.run_threshold_dimension(acc, [0.8, 0.99])
    np.testing.assert_array_equal(dstar.sel(level=0.8).values, [2, 4])  # the running max keeps run 0 at d = 4
    assert np.isnan(dstar.sel(level=0.99).values).all()


DOF = {"subspaces": list(S.SUBSPACES), "dims": [2, 4], "runs": 3, "runs_per_job": 2, "start_step": 3,
       "start_steps": [0, 6], "rewind_step": 0, "ticket_step": 6, "hessian_method": "exact",
       "hessian_split": "train", "trajectory_every": 1, "steps": 5, "batch_size": 10, "lr": 0.05, "seed": 1,
       "device": "cpu", "init": "per_run"}


def test_chunk_grid_sweeps_only_the_start_step_methods():
    grid = S.chunk_grid(DOF)
    steps = {m: sorted({t for mm, t, _, _ in grid if mm == m}) for m in S.SUBSPACES}
    assert steps == {"random_affine": [0], "burn_in": [0, 3, 6], "lottery_subspace": [0], "lottery_ticket": [0],
                     "hessian_topd": [0, 3, 6], "mask_topd": [0, 3, 6]}
    assert len(grid) == 12 * 2  # (method, t) x two chunks of runs, every d in one job (dims_per_job: null)
    assert {d for _, _, d, _ in grid} == {"2_4"} and S.parse_dims("2_4") == [2, 4]
    per_d = S.chunk_grid({**DOF, "dims_per_job": 1})
    assert len(per_d) == 12 * 2 * 2 and {d for _, _, d, _ in per_d} == {"2", "4"}
    assert S.dim_groups({"dims": [1, 2, 3, 5, 8], "dims_per_job": 2}) == [[1, 2], [3, 5], [8]]
    with pytest.raises(ValueError, match="joined by"):
        S.parse_dims("2-4")
    assert S.chunk_runs(DOF, 0) == [0, 1] and S.chunk_runs(DOF, 1) == [2]
    assert {m: S.main_offset_step(m, DOF) for m in ("random_affine", "burn_in", "lottery_ticket")} == {
        "random_affine": 0, "burn_in": 3, "lottery_ticket": 0}


def test_method_inputs_and_job_settings():
    assert S.subspace_inputs("hessian_topd", 6, DOF, 8) == {"start": ("checkpoint", 6),
                                                          "eigen": ("eigen", "exact", "train", 6)}
    assert S.subspace_inputs("lottery_ticket", 0, DOF, 8)["final"] == ("checkpoint", 6)  # dof.ticket_step
    assert S.subspace_inputs("lottery_ticket", 0, {**DOF, "ticket_step": None}, 8)["final"] == ("checkpoint", 8)
    assert S.subspace_inputs("lottery_subspace", 0, DOF, 8)["trajectory"] == ("trajectory",)
    with pytest.raises(ValueError, match="unknown subspace"):
        S.subspace_inputs("pca", 0, DOF, 8)
    assert "ticket_step" in S.job_settings("lottery_ticket", DOF)
    assert "ticket_step" not in S.job_settings("burn_in", DOF)
    assert S.job_settings("burn_in", DOF)["init"] == "per_run" and "init" not in S.job_settings("mask_topd", DOF)


def test_per_run_initialization_is_seeded_and_burned_in():
    from hessmask.training import TrainSettings

    train, data = TrainSettings(lr=0.3, batch_size=16, seed=12345), tiny_data()
    w0 = [S.run_initialization(r, 7, "mlp_tiny", 10, train, data, 0) for r in (0, 1)]
    assert not np.array_equal(w0[0], w0[1])  # a fresh w_0 per run
    np.testing.assert_array_equal(w0[0], S.run_initialization(0, 7, "mlp_tiny", 10, train, data, 0))
    burned = S.run_initialization(0, 7, "mlp_tiny", 10, train, data, 3)
    initializer = S.run_initializer({"seed": 7}, {"model": "mlp_tiny", "dataset": "mnist5k"},
                                    {"lr": 0.3, "batch_size": 16, "seed": 12345}, data, 3)
    np.testing.assert_array_equal(initializer(0), burned)  # the jobs' per-run offsets
    assert burned.shape == w0[0].shape and not np.array_equal(burned, w0[0])


def test_adam_is_torch_adam_bitwise():
    """hessmask.dof.Adam reproduces torch.optim.Adam's updates bitwise (several parameters, one
    of them without a gradient in some steps), so the subspace trainings need no torch.optim."""
    from hessmask.dof import Adam

    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(7, 3, generator=gen), torch.randn(5, generator=gen)]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    mine = Adam(ours, lr=0.05, betas=(0.9, 0.999), eps=1e-7)
    reference = torch.optim.Adam(theirs, lr=0.05, betas=(0.9, 0.999), eps=1e-7)
    for step in range(25):
        target = torch.randn(7, 3, generator=gen)
        for params, opt in ((ours, mine), (theirs, reference)):
            opt.zero_grad()
            loss = ((params[0] - target) ** 2).sum() + (0 if step % 3 == 0 else (params[1] ** 3).sum())
            loss.backward()
            opt.step()
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs)), step


def test_one_job_over_several_d_is_bitwise_one_job_per_d():
    """dof.dims_per_job: a job over several d gives the runs of one job per d, bitwise, with the
    per-run initialization computed once per run."""
    data, model = tiny_data(), tiny_model()
    w0 = flat(model)
    calls = []

    def initialization(run):
        calls.append(run)
        return w0 + np.float32(0.01 * (run + 1))

    sources = S.Sources(start=w0, init=w0, rewind=w0)
    args = ([0, 1], sources, model, data, SETTINGS, 3)
    together = S.run_chunk("random_affine", [2, 5], *args, step=0, initialization=initialization)
    assert calls == [0, 1]
    separate = xr.concat([S.run_chunk("random_affine", d, *args, step=0, initialization=initialization)
                          for d in (2, 5)], "d")
    assert together["train_loss"].dims == ("subspace", "start_step", "d", "run")
    for name in ("train_loss", "test_accuracy", "batch_loss"):
        np.testing.assert_array_equal(together[name].values, separate[name].values)
    assert not np.array_equal(together["batch_loss"].sel(d=2).values, together["batch_loss"].sel(d=5).values)
