"""Degrees of freedom: bases, subspace training against full-space training, the trajectory,
success probability and d*, the quadratic well and its bound, the dof config checks."""

import numpy as np
import pytest
import torch
import xarray as xr

from dof_stores import full_store, lottery_store, start_store
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


def test_families_build_the_subspaces_they_name(rng):
    dim = 30
    w = {k: rng.standard_normal(dim).astype(np.float32) for k in ("start", "rewind", "final")}
    sources = S.Sources(**w, trajectory=np.linalg.qr(rng.standard_normal((dim, 6)))[0],
                        eigenvectors=np.linalg.qr(rng.standard_normal((dim, 8)))[0])
    ticket, mask, burn, affine, hess = S.families(
        ["lottery_ticket", "mask_topd", "burn_in", "random_affine", "hessian_topd"], 5, 2, sources, 1)
    keep = np.argsort(-np.abs(w["final"]))[:5]
    np.testing.assert_array_equal(ticket.basis.indices.numpy(), keep)  # by descending magnitude: nested
    offset = ticket.offset_at(3)
    np.testing.assert_array_equal(offset[keep[:3]], w["rewind"][keep[:3]])
    assert np.count_nonzero(offset) == 3  # pruned weights are zero at d = 3
    np.testing.assert_array_equal(mask.basis.indices.numpy(), np.argsort(-np.abs(w["start"]))[:5])
    assert mask.offset_at(4) is w["start"] and burn.offset is w["start"]
    assert torch.equal(burn.basis.columns, affine.basis.columns)  # same run, same basis
    assert torch.equal(burn.basis.columns, S.gaussian_basis(dim, 5, S.run_seeds(1, 2)[1]).columns)
    np.testing.assert_allclose(hess.basis.prefix(3).columns.numpy(), sources.eigenvectors[:, :3], atol=1e-7)
    assert hess.basis.prefix(3).size == 3 and torch.equal(hess.basis.prefix(5).columns, hess.basis.columns)
    with pytest.raises(ValueError, match="needs 7 trajectory directions"):
        S.families(["lottery_subspace"], 7, 0, sources, 1)
    with pytest.raises(ValueError, match="unknown subspace"):
        S.families(["pca"], 3, 0, sources, 1)
    with pytest.raises(ValueError, match="D = 30"):
        S.families(["burn_in"], 31, 0, sources, 1)


def test_mask_subspaces_follow_the_mask_rule():
    """mask_topd and lottery_ticket choose their coordinates as the mask study does: masks.exclude
    leaves parameters out, masks.ties decides equal magnitudes (seeded); a d above the eligible
    count stops with that count."""
    theta = np.array([3.0, -3.0, 1.0, 5.0, 3.0, 0.5], dtype=np.float32)
    excluded = np.array([False, False, False, True, False, False])
    first = S.mask_basis(theta, 3, S.MaskRule("lowest_index", 0, excluded)).indices.tolist()
    assert first == [0, 1, 4]  # 3 (index 3) excluded, the three tied 3s by lowest index
    rule = S.MaskRule("random", 7, excluded)
    chosen = S.mask_basis(theta, 2, rule).indices.tolist()
    assert chosen == S.mask_basis(theta, 2, rule).indices.tolist() and set(chosen) <= {0, 1, 4}
    assert 3 not in S.mask_basis(theta, 5, rule).indices.tolist()
    with pytest.raises(ValueError, match="<= 5"):
        S.mask_basis(theta, 6, S.MaskRule(excluded=excluded))
    sources = S.Sources(start=theta, rewind=theta, final=theta)
    (ticket,) = S.families(["lottery_ticket"], 3, 0, sources, 1, S.MaskRule("lowest_index", 0, excluded))
    assert ticket.basis.indices.tolist() == [0, 1, 4] and ticket.offset_at(3)[3] == 0

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
    informative = ~coarse["trivial"]
    np.testing.assert_allclose(coarse["threshold_gap"].where(informative),
                               (coarse["threshold_dimension"] - coarse["threshold_bound"]).where(informative))
    assert coarse.attrs["max_gap"] == pytest.approx(float(np.nanmax(coarse["threshold_gap"])))


def test_quadratic_well_marks_where_the_initialization_is_already_in_the_sublevel_set():
    """L(w0) = R^2 w^T diag(lambda) w / 2 for the run's unit direction; where eps >= L(w0) in 1 - delta
    of the runs, d* = 0 (no training dimension at all) and the bound is not tested (gap NaN)."""
    quad = {"dim": 30, "spectra": [{"name": "bulk", "kind": "bulk", "low": 1e-2, "high": 1.0}],
            "radii": [1.0, 3.0], "dims": None, "eps": {"low": 1e-3, "high": 10.0, "num": 9},
            "runs": 5, "delta": 0.1, "seed": 3}
    ds = S.quadratic_well_dataset(quad)
    lam = ds["eigenvalues"].sel(spectrum="bulk").values
    rng = np.random.default_rng([3, 0])  # run 0's direction, as simulate_quadratic_well draws it
    direction = rng.standard_normal(30)
    direction /= np.linalg.norm(direction)
    assert float(ds["initial_loss"].sel(spectrum="bulk", radius=3.0, run=0)) == pytest.approx(
        0.5 * 9.0 * float(np.sum(lam * direction ** 2)))
    trivial = ds["trivial"].sel(spectrum="bulk")
    largest = ds["initial_loss"].sel(spectrum="bulk").max("run")  # all 5 runs: ceil(0.9 * 5) = 5
    np.testing.assert_array_equal(trivial.values, (ds["eps"] >= largest).transpose("radius", "eps").values)
    assert trivial.sel(eps=10.0).all() and not trivial.sel(eps=1e-3).any()
    assert (ds["threshold_dimension"].where(ds["trivial"]).fillna(0) == 0).all()
    assert ds["threshold_gap"].where(ds["trivial"]).isnull().all()
    assert np.isfinite(ds["threshold_gap"].where(~ds["trivial"])).any()


def test_first_crossing_and_bisection_by_hand():
    # evaluated d 5, 10, 20, 50; the running max first reaches 0.6 at d = 20
    dims, acc = [5, 10, 20, 50], [0.3, 0.55, 0.62, 0.58]
    assert S.first_crossing(dims, acc, 0.2, 0.6) == (10.0, 20.0)
    assert S.first_crossing(dims, acc, 0.65, 0.6) == (0.0, 0.0)  # the offset already has it
    lo, hi = S.first_crossing(dims, acc, 0.2, 0.9)
    assert lo == 50 and np.isnan(hi)  # never reached: the largest d tried
    assert S.first_crossing([5, 10], [0.7, 0.8], 0.2, 0.6) == (0.0, 5.0)  # reached at the first d
    assert S.midpoint(10, 20) == 14 and S.midpoint(0, 5) == 2 and S.midpoint(4, 5) is None
    assert S.midpoint(200, 500) == 316
    evaluated = dict(zip(dims, acc))
    assert S.next_dims(evaluated, 0.2, [0.6, 0.9, 0.5]) == [7, 14]  # 0.5 in (5, 10], 0.6 in (10, 20], 0.9 none


def test_wilson_interval_and_order_statistics():
    low, high = S.wilson_interval(np.array([0, 5, 3]), 5)
    np.testing.assert_allclose(low, [0.0, 0.5655, 0.2307], atol=1e-4)
    np.testing.assert_allclose(high, [0.4345, 1.0, 0.8824], atol=1e-4)
    runs = np.array([[10.0, 20.0, np.nan, 5.0, 40.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    assert np.isnan(S.threshold_order_statistic(runs, 0.1)[0])  # ceil(0.9 * 5) = 5: all runs, one never crosses
    assert S.threshold_order_statistic(runs, 0.1)[1] == 5
    assert S.threshold_order_statistic(runs, 0.5)[0] == 20  # ceil(2.5) = 3rd smallest
    lo, hi = np.array([10.0, 0.0, 50.0]), np.array([20.0, 0.0, np.nan])
    assert tuple(map(int, S.success_counts(lo, hi, 20))) == (2, 2)  # run 2: not reached up to 50
    lo[2] = 10.0
    assert tuple(map(int, S.success_counts(lo, hi, 20))) == (2, 3)  # run 2: tried up to 10 only, unknown at 20
    assert tuple(map(int, S.success_counts(lo, hi, 5))) == (1, 1)  # only run 1, whose offset reached it
    assert tuple(map(int, S.success_counts(lo, hi, 10))) == (1, 1)  # not reached at d = lo
    assert tuple(map(int, S.success_counts(lo, hi, 15))) == (1, 3)
    assert S.sign_test(5, 0) == pytest.approx(0.0625) and S.sign_test(0, 0) == 1.0
    assert S.sign_test(8, 1) == pytest.approx(2 * 10 / 512)


def test_separation_needs_disjoint_intervals():
    """Five runs of a reach the level by d = 20, five of b only beyond 50: at d = 20 the certain 5/5
    ([0.57, 1]) is above b's possible 0/5 ([0, 0.43]). Four of five do not separate."""
    lo_a, hi_a = np.full(5, 10.0), np.full(5, 20.0)
    lo_b, hi_b = np.full(5, 50.0), np.full(5, 100.0)
    assert S.separated(lo_a, hi_a, lo_b, hi_b) == (True, 20.0)
    assert not S.separated(lo_b, hi_b, lo_a, hi_a)[0]
    hi_a[0], lo_a[0] = 200.0, 100.0
    assert not S.separated(lo_a, hi_a, lo_b, hi_b)[0]


SUBSPACES_ALL = list(S.SUBSPACES)
MAIN = {"random_affine": 0, "burn_in": 5, "lottery_subspace": 0, "lottery_ticket": 0, "hessian_topd": 5,
        "mask_topd": 5}


def test_dof_dataset_main_results_and_the_start_step_experiment():
    """Two runs at t = 0 and 5: random_affine is burn_in at t = 0, the start-step subspaces are read at
    t = 5; every run's bracket comes from the grid and the bisection; the offset of run 1 at t = 5
    already has level 0.5 (d* = 0, flagged); Hessian needs fewer dimensions than burn-in in both runs."""
    low, high = {10: 0.3, 100: 0.9}, {10: 0.9, 100: 0.95}
    start = []
    for run in (0, 1):
        start.append(start_store(0, run, {"burn_in": low, "hessian_topd": low, "mask_topd": low}, 0.1))
        start.append(start_store(5, run, {"burn_in": low, "hessian_topd": high, "mask_topd": low},
                                  0.2 if run == 0 else 0.55, refined={"burn_in": [(31, 0.85)]}))
    lottery = [lottery_store("lottery_subspace", [0, 1], high), lottery_store("lottery_ticket", [0, 1], low)]
    ds = S.dof_dataset(start, lottery, full_store(), 1000, [0.5, 0.8], delta=0.1, main_steps=MAIN,
                       subspaces=SUBSPACES_ALL, sweep_levels=[0.5, 0.8], success="best")
    assert list(ds["subspace"].values) == SUBSPACES_ALL and ds["train_accuracy"].dims == ("subspace", "d", "run")
    np.testing.assert_array_equal(ds["offset_step"].values, [0, 5, 0, 0, 5, 5])
    assert float(ds["threshold_dimension"].sel(subspace="hessian_topd", split="train", level=0.8)) == 10
    assert float(ds["threshold_dimension"].sel(subspace="random_affine", split="train", level=0.8)) == 100
    hi = ds["sweep_run_threshold"].sel(sweep_level=0.8, start_step=5)
    lo = ds["sweep_run_threshold_lower"].sel(sweep_level=0.8, start_step=5)
    assert hi.sel(sweep_subspace="burn_in").values.tolist() == [31, 31]  # the bisection's d = 31 reached 0.8
    assert lo.sel(sweep_subspace="burn_in").values.tolist() == [10, 10]
    assert hi.sel(sweep_subspace="hessian_topd").values.tolist() == [10, 10]
    assert ds["sweep_offset_reached"].sel(start_step=5, sweep_level=0.5).values.tolist() == [False, True]
    assert float(ds["sweep_run_threshold"].sel(sweep_subspace="burn_in", start_step=5, run=1, sweep_level=0.5)) == 0
    np.testing.assert_allclose(ds["sweep_success"].sel(sweep_subspace="hessian_topd", start_step=5,
                                                       sweep_level=0.8).values, [1, 1])
    np.testing.assert_allclose(ds["sweep_success"].sel(sweep_subspace="burn_in", start_step=5, sweep_level=0.8).values,
                               [0, 1])
    assert float(ds["sweep_threshold_dimension"].sel(sweep_subspace="burn_in", start_step=5, sweep_level=0.8)) == 31
    pair = {"pair": "hessian_topd vs burn_in", "start_step": 5, "sweep_level": 0.8}
    assert int(ds["sweep_pair_fewer"].sel(pair)) == 2 and int(ds["sweep_pair_more"].sel(pair)) == 0
    assert float(ds["sweep_pair_sign_p"].sel(pair)) == pytest.approx(0.5)
    assert not bool(ds["sweep_separated"].sel(pair))  # two runs: Wilson [0.34, 1] and [0, 0.66] overlap
    assert ds.attrs["success"] == "best" and ds.attrs["full_lr"] == 0.05


def test_success_rule_reads_best_or_final():
    """The same trainings read by dof.success: best (the best evaluation) or final (the last)."""
    start = []
    for run in (0, 1):
        store = start_store(0, run, {"burn_in": {10: 0.5, 100: 0.9}}, 0.1, subspaces=("burn_in",))
        store["train_accuracy"] = store["train_accuracy"] - 0.2  # final below best
        start.append(store)
    kwargs = dict(main_steps={"random_affine": 0}, subspaces=["random_affine"], sweep_levels=[0.8])
    best = S.dof_dataset(start, [], full_store(), 1000, [0.8], 0.1, success="best", **kwargs)
    final = S.dof_dataset(start, [], full_store(), 1000, [0.8], 0.1, success="final", **kwargs)
    assert float(best["threshold_dimension"].sel(subspace="random_affine", split="train", level=0.8)) == 100
    assert np.isnan(final["threshold_dimension"].sel(subspace="random_affine", split="train", level=0.8))
    assert best["best_train_accuracy"].max() > best["train_accuracy"].max()  # both stored


def test_full_space_reference_keeps_the_better_learning_rate():
    start = [start_store(0, 0, {"burn_in": {10: 0.5, 100: 0.9}}, 0.1, subspaces=("burn_in",))]
    ds = S.dof_dataset(start, [], full_store((0.90, 0.97), (0.05, 0.01)), 100, [0.5], 0.1,
                       main_steps={"random_affine": 0}, subspaces=["random_affine"])
    assert ds.attrs["full_lr"] == 0.01 and float(ds["full_train_accuracy"].squeeze()) == pytest.approx(0.97)


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
        ({"hessian": {"method": "block_krylov", "budget": 4}}, "hessian.budget"),  # < max(dims) = 8
        ({"hessian": {"method": "block_krylov", "passes": 20, "budget": 16}}, "hessian.passes"),
        ({"hessian": {"method": "lanczos"}}, "hessian.method"),
        ({"success": "median"}, "success"),
    ],
)
def test_dof_config_errors_name_the_key(repo, dof, key):
    with pytest.raises(ConfigError) as info:
        load_config(repo / "config.yaml", repo / "configs" / "ci.yaml",
                    overrides={"experiments": {"ci_mlp": {"dof": dof}}})
    assert f"'experiments.ci_mlp.dof.{key}'" in str(info.value)


@pytest.mark.parametrize("key,says", [("init", "was removed"), ("dims_per_job", "was removed"),
                                      ("hessian_method", "dof.hessian.method"), ("hessian_split", "dof.hessian.split")])
def test_earlier_dof_keys_say_what_replaced_them(repo, key, says):
    with pytest.raises(ConfigError, match=f"dof.{key}' .*{says}"):
        load_config(repo / "config.yaml", repo / "configs" / "ci.yaml",
                    overrides={"experiments": {"ci_mlp": {"dof": {key: "per_run"}}}})


DOF = {"subspaces": list(S.SUBSPACES), "dims": [2, 4], "runs": 3, "runs_per_job": 2, "start_step": 3,
       "start_steps": [6, 10], "rewind_step": 0, "ticket_step": 6, "trajectory_every": 1, "steps": 5,
       "batch_size": 10, "lr": 0.05, "seed": 1, "device": "cpu", "eval_every": 2, "vectorize": 8,
       "refine_rounds": 1, "sweep_levels": [0.5], "success": "best",
       "hessian": {"method": "exact", "split": "train", "budget": None, "passes": 4, "seed": 0}}


def test_job_grid_of_the_start_step_experiment():
    assert S.start_steps(DOF) == [0, 3, 6, 10]  # 0 for random_affine
    assert S.start_subspaces(DOF, 0) == ["burn_in"]  # t = 0 only for random_affine: burn-in from w_0
    assert S.start_subspaces(DOF, 3) == ["burn_in", "hessian_topd", "mask_topd"]
    assert S.start_subspaces({**DOF, "start_steps": [0]}, 0) == ["burn_in", "hessian_topd", "mask_topd"]
    assert S.start_subspaces({**DOF, "subspaces": ["random_affine", "mask_topd"]}, 0) == ["burn_in"]
    assert S.start_grid(DOF) == [(t, c) for t in (0, 3, 6, 10) for c in (0, 1)]
    assert S.chunk_runs(DOF, 0) == [0, 1] and S.chunk_runs(DOF, 1) == [2]
    assert S.own_runs(DOF) == [1, 2] and S.run_steps(DOF) == [0, 3, 6, 10]
    assert S.lottery_grid(DOF) == ["lottery_subspace", "lottery_ticket"]
    assert S.main_offset_steps(DOF) == {"random_affine": 0, "burn_in": 3, "lottery_subspace": 0,
                                        "lottery_ticket": 0, "hessian_topd": 3, "mask_topd": 3}
    assert S.lottery_inputs("lottery_ticket", DOF, 8) == {"start": ("checkpoint", 0), "final": ("checkpoint", 6)}
    assert S.lottery_inputs("lottery_ticket", {**DOF, "ticket_step": None}, 8)["final"] == ("checkpoint", 8)
    assert S.lottery_inputs("lottery_subspace", DOF, 8)["trajectory"] == ("trajectory",)
    with pytest.raises(ValueError, match="not a lottery subspace"):
        S.lottery_inputs("burn_in", DOF, 8)
    settings = S.start_job_settings(DOF)
    assert "start_steps" not in settings and "hessian" in settings and "refine_rounds" in settings
    assert "ticket_step" in S.lottery_job_settings("lottery_ticket", DOF)
    assert "ticket_step" not in S.lottery_job_settings("lottery_subspace", DOF)

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


def _families(dim, rng):
    w = flat(tiny_model())
    vectors = np.linalg.qr(rng.standard_normal((dim, 6)))[0].astype(np.float32)
    return S.families(["burn_in", "hessian_topd", "mask_topd"], 6, 1, S.Sources(start=w, eigenvectors=vectors), 3), w


def test_a_vectorized_pass_is_the_trainings_one_at_a_time(rng):
    """Dense and coordinate families at several d in one vmap pass give what each training gives
    alone (to float32 rounding), and each stays in its own subspace: the parameters it ends at are
    the offset plus the first d columns of its family's basis."""
    data = tiny_data()
    fams, w = _families(2146, rng)
    items = [(f, d) for f in fams for d in (2, 3, 6)]
    settings = S.SubspaceSettings(steps=10, batch_size=16, lr=0.01, eval_every=4, vectorize=32)
    together = S.train_subspaces(tiny_model(), items, data, settings, data_seed=5, keep_params=True)
    alone = S.train_subspaces(tiny_model(), items, data, S.SubspaceSettings(**{**settings.__dict__, "vectorize": 1}),
                              data_seed=5, keep_params=True)
    for (family, d), a, b in zip(items, together, alone):
        np.testing.assert_allclose(a.batch_loss, b.batch_loss, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(a.params, b.params, rtol=0, atol=2e-5)
        assert abs(a.best_train_accuracy - b.best_train_accuracy) <= 1 / 64
        step = a.params.astype(np.float64) - family.offset_at(d)
        basis = family.basis.prefix(d).matrix().double().numpy()
        theta, *_ = np.linalg.lstsq(basis, step, rcond=None)
        assert np.linalg.norm(basis @ theta - step) <= 1e-5 * max(np.linalg.norm(step), 1e-12)
        assert np.abs(step).max() > 1e-5  # it trained
    chunks = S.train_subspaces(tiny_model(), items, data, S.SubspaceSettings(**{**settings.__dict__, "vectorize": 4}),
                               data_seed=5)
    for a, b in zip(together, chunks):  # passes of 4: the same trainings
        np.testing.assert_allclose(a.batch_loss, b.batch_loss, rtol=2e-5, atol=2e-6)
    again = S.train_subspaces(tiny_model(), items, data, settings, data_seed=5, keep_params=True)
    for a, b in zip(together, again):  # deterministic: the same bits
        np.testing.assert_array_equal(a.params, b.params)


def test_evaluations_give_final_best_and_offset_accuracy(rng):
    """Every training reports its offset's accuracy (step 0), the final one and the best over the
    evaluations after step 0; without intermediate evaluations best is final."""
    from hessmask.training import TrainSettings, evaluate

    data = tiny_data()
    fams, w = _families(2146, rng)
    settings = S.SubspaceSettings(steps=12, batch_size=16, lr=0.05, eval_every=3)
    assert settings.eval_steps() == [0, 3, 6, 9, 12]
    assert S.SubspaceSettings(steps=10, batch_size=4, eval_every=4).eval_steps() == [0, 4, 8, 10]
    (result,) = S.train_subspaces(tiny_model(), [(fams[0], 4)], data, settings, data_seed=2)
    model = tiny_model()
    torch.nn.utils.vector_to_parameters(torch.from_numpy(w), model.parameters())
    _, offset = evaluate(model, data, "train", TrainSettings(lr=0.1, batch_size=16, seed=0))
    assert result.offset_train_accuracy == pytest.approx(offset)
    assert result.best_train_accuracy >= result.train_accuracy
    (plain,) = S.train_subspaces(tiny_model(), [(fams[0], 4)], data, S.SubspaceSettings(steps=12, batch_size=16,
                                                                                          lr=0.05), data_seed=2)
    assert plain.best_train_accuracy == plain.train_accuracy


class _WithNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer, self.norm, self.out = torch.nn.Linear(256, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.out(torch.tanh(self.norm(self.layer(x.flatten(1)))))


def test_networks_with_buffers_train_one_at_a_time(rng):
    """BatchNorm's running statistics are each training's own state: such a network is never
    vectorized, and its trainings equal one at a time whatever dof.vectorize says."""
    torch.manual_seed(0)
    model, data = _WithNorm(), tiny_data()
    w = flat(model)
    (family,) = S.families(["burn_in"], 4, 0, S.Sources(start=w), 3)
    items = [(family, 2), (family, 4)]
    many = S.train_subspaces(model, items, data, S.SubspaceSettings(steps=6, batch_size=16, vectorize=8), 1,
                             keep_params=True)
    one = S.train_subspaces(model, items, data, S.SubspaceSettings(steps=6, batch_size=16, vectorize=1), 1,
                            keep_params=True)
    for a, b in zip(many, one):
        np.testing.assert_array_equal(a.params, b.params)
    assert torch.equal(model.norm.running_mean, torch.zeros(8))  # the caller's model untouched


def test_start_job_bisects_between_grid_points(rng):
    """One (t, run) job: the grid, then bisection rounds inside each level's bracket; every bracket
    it leaves is narrower than the grid's, the refined d lie inside the grid brackets, and the job
    is deterministic."""
    data, model = tiny_data(128), tiny_model()
    w = flat(model)
    vectors = np.linalg.qr(rng.standard_normal((w.size, 40)))[0]
    job = S.StartJob(step=0, run=1, subspaces=["burn_in", "hessian_topd", "mask_topd"], dims=[2, 10, 40],
                     levels=[0.15, 0.2], rounds=2, success="best", seed=4)
    settings = S.SubspaceSettings(steps=15, batch_size=16, lr=0.05, eval_every=5)
    basis = S.HessianBasis(np.arange(40, 0, -1.0), vectors.astype(np.float32), np.zeros(40), 40)
    ds = S.start_job(job, model, w, data, settings, lambda: basis)
    again = S.start_job(job, model, w, data, settings, lambda: basis)
    xr.testing.assert_identical(ds, again)
    assert ds["best_train_accuracy"].dims == ("subspace", "start_step", "d", "run")
    grid = [2, 10, 40]
    for s in job.subspaces:
        acc = ds["best_train_accuracy"].sel(subspace=s).squeeze().values
        refined = ds["refined_d"].sel(subspace=s).squeeze().values
        refined = refined[np.isfinite(refined)]
        offset = float(ds["offset_train_accuracy_of_run"].squeeze())
        for level in job.levels:
            lo, hi = S.first_crossing(grid, acc, offset, level)
            if np.isfinite(hi) and hi > 0:
                inside = refined[(refined > lo) & (refined < hi)]
                assert inside.size >= 1 or S.midpoint(lo, hi) is None  # bisected where it could
    np.testing.assert_array_equal(ds["hessian_eigenvalues"].squeeze().values, basis.eigenvalues)


def test_each_run_trains_its_own_initialization():
    """Run r >= 1: its own w_0 and SGD order (seeded by dof.seed and r), trained in segments that are
    bitwise one training; the full-space reference starts each run from its own w_0."""
    train, data = TrainSettings(lr=0.3, batch_size=16, seed=12345), tiny_data()
    first = S.run_checkpoints(1, 7, "mlp_tiny", 10, train, data, [0, 3, 6])
    other = S.run_checkpoints(2, 7, "mlp_tiny", 10, train, data, [0, 3])
    assert sorted(first) == [0, 3, 6] and first[3].step == 3
    assert not np.array_equal(first[0].parameters(), other[0].parameters())
    assert not np.array_equal(first[3].parameters(), first[0].parameters())
    again = S.run_checkpoints(1, 7, "mlp_tiny", 10, train, data, [6])
    np.testing.assert_array_equal(again[6].parameters(), first[6].parameters())
    starts = {0: (first[0].model(), first[0].parameters()), 1: (other[0].model(), other[0].parameters())}
    full = S.full_space_runs(starts, data, S.SubspaceSettings(steps=4, batch_size=16), seed=3)
    assert full["train_accuracy"].dims == ("run",) and list(full["run"].values) == [0, 1]
    np.testing.assert_allclose(full["offset_train_accuracy"].values,
                               [S.train_full_space(m, w, data, S.SubspaceSettings(steps=1, batch_size=16),
                                                   S.run_seeds(3, r)[0]).offset_train_accuracy
                                for r, (m, w) in starts.items()])
