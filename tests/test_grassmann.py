"""Grassmannian metrics against their definitions, identities and scipy."""

import numpy as np
import pytest
import scipy.linalg

from hessmask import grassmann as g


def random_orthogonal(k, rng):
    return g.sample_stiefel(k, k, rng)


@pytest.mark.parametrize("dim,k", [(20, 1), (30, 5), (64, 16), (50, 40)])
def test_principal_angles_match_scipy(dim, k, rng):
    q1, q2 = g.sample_stiefel(dim, k, rng), g.sample_stiefel(dim, k, rng)
    ours = g.principal_angles(q1, q2)
    ref = np.sort(scipy.linalg.subspace_angles(q1, q2))
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_precise_small_angles(rng):
    q1 = g.sample_stiefel(40, 4, rng)
    perturbed, _ = np.linalg.qr(q1 + 1e-9 * rng.standard_normal(q1.shape))
    ref = np.sort(scipy.linalg.subspace_angles(q1, perturbed))
    np.testing.assert_allclose(g.principal_angles(q1, perturbed), ref, atol=1e-15, rtol=1e-6)


@pytest.mark.parametrize("dim,k", [(10, 3), (100, 20), (64, 64)])
def test_overlap_identity_and_projection(dim, k, rng):
    q1, q2 = g.sample_stiefel(dim, k, rng), g.sample_stiefel(dim, k, rng)
    m = g.metrics_from_angles(g.principal_angles(q1, q2))
    assert m["overlap"] == pytest.approx(1 - m["projection_F"] ** 2, abs=1e-12)
    assert m["overlap"] == pytest.approx(np.linalg.norm(q1.T @ q2) ** 2 / k, abs=1e-12)


def test_metrics_from_definitions():
    s = np.array([0.1, 0.5, 1.2])
    m = g.metrics_from_angles(s)
    k = s.size
    assert m["geodesic"] == pytest.approx(np.linalg.norm(s) / (np.pi / 2 * np.sqrt(k)))
    assert m["chordal_2"] == pytest.approx(2 * np.sin(1.2 / 2) / np.sqrt(2))
    assert m["chordal_F"] == pytest.approx(np.linalg.norm(2 * np.sin(s / 2)) / np.sqrt(2 * k))
    assert m["projection_2"] == pytest.approx(np.sin(1.2))
    assert m["projection_F"] == pytest.approx(np.linalg.norm(np.sin(s)) / np.sqrt(k))
    assert m["fubini_study"] == pytest.approx(np.arccos(np.prod(np.cos(s))) / (np.pi / 2))
    assert m["overlap"] == pytest.approx(np.mean(np.cos(s) ** 2))
    assert list(m) == ["geodesic", "chordal_2", "chordal_F", "projection_2", "projection_F",
                       "fubini_study", "overlap"]


@pytest.mark.parametrize("dim,k", [(12, 4), (80, 7)])
def test_invariance_under_rotation_within_subspace(dim, k, rng):
    q1, q2 = g.sample_stiefel(dim, k, rng), g.sample_stiefel(dim, k, rng)
    z1, z2 = random_orthogonal(k, rng), random_orthogonal(k, rng)
    a = g.metrics_from_angles(g.principal_angles(q1, q2))
    b = g.metrics_from_angles(g.principal_angles(q1 @ z1, q2 @ z2))
    for name in a:
        assert a[name] == pytest.approx(b[name], abs=1e-10), name


def test_extreme_values(rng):
    q = g.sample_stiefel(30, 5, rng)
    same = g.metrics_from_angles(g.principal_angles(q, q @ random_orthogonal(5, rng)))
    eye = np.eye(30)
    ortho = g.metrics_from_angles(g.principal_angles(eye[:, :5], eye[:, 10:15]))
    for name in g.METRICS:
        if name == "overlap":
            assert same[name] == pytest.approx(1.0) and ortho[name] == pytest.approx(0.0)
        else:
            assert same[name] == pytest.approx(0.0, abs=1e-6) and ortho[name] == pytest.approx(1.0)


@pytest.mark.parametrize("dim,k", [(10, 3), (200, 50), (33, 33)])
def test_mask_identities(dim, k, rng):
    a, b = g.sample_mask(dim, k, rng), g.sample_mask(dim, k, rng)
    ov = g.mask_overlap(a, b, dim)
    assert g.iou(a, b, dim) == pytest.approx(ov / (2 - ov))
    assert g.hamming(a, b, dim) == pytest.approx(k * (1 - ov))
    # closed form agrees with the SVD on explicit identity columns
    eye = np.eye(dim)
    dense = g.principal_angles(eye[:, a], eye[:, b])
    np.testing.assert_allclose(g.mask_angles(a, b, dim), dense, atol=1e-7)
    # boolean masks are accepted and equal
    bool_a = np.zeros(dim, bool)
    bool_a[a] = True
    assert g.iou(bool_a, b, dim) == g.iou(a, b, dim)


@pytest.mark.parametrize("dim,k", [(25, 5), (60, 30)])
def test_mask_matrix_closed_forms(dim, k, rng):
    q = g.sample_stiefel(dim, k, rng)
    mask = g.sample_mask(dim, k, rng)
    dense = g.principal_angles(np.eye(dim)[:, mask], q)
    np.testing.assert_allclose(g.mask_matrix_angles(mask, q), dense, atol=1e-7)
    assert g.mask_matrix_overlap(mask, q) == pytest.approx(np.mean(np.cos(dense) ** 2), abs=1e-12)


def test_mean_projector_is_isotropic():
    dim, k, n = 12, 3, 4000
    rng = np.random.default_rng(7)
    proj = np.zeros((dim, dim))
    for _ in range(n):
        q = g.sample_stiefel(dim, k, rng)
        proj += q @ q.T
    proj /= n
    # each entry of Q Q^T has variance O(1/D^2)-ish; 4000 samples give a ~1e-2 scale error
    assert np.abs(proj - k / dim * np.eye(dim)).max() < 0.02
    masks = np.zeros(dim)
    for _ in range(n):
        masks[g.sample_mask(dim, k, rng)] += 1
    assert np.abs(masks / n - k / dim).max() < 0.03


@pytest.mark.parametrize("modality", g.MODALITIES)
@pytest.mark.parametrize("dim,k", [(50, 5), (200, 20)])
def test_mean_overlap_is_chance(modality, dim, k):
    """E[overlap] = k/D (seed 000, appendix A.1); tolerance from the sample variance."""
    n = 400
    rng = np.random.default_rng(11)
    values = np.array([g.metrics_from_angles(g.sample_angles(modality, dim, k, rng))["overlap"]
                       for _ in range(n)])
    stderr = values.std(ddof=1) / np.sqrt(n)
    assert abs(values.mean() - k / dim) < 4 * stderr + 1e-12


def test_sampler_is_seeded_and_haar_signs():
    a = g.sample_stiefel(30, 4, np.random.default_rng(3))
    b = g.sample_stiefel(30, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.T @ a, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("args", [(5, 6), (5, 0), (0, 1)])
def test_bad_sizes(args, rng):
    with pytest.raises(ValueError, match="k|D"):
        g.sample_stiefel(*args, rng)


def test_bad_inputs(rng):
    with pytest.raises(ValueError, match="ambient"):
        g.principal_angles(np.eye(4)[:, :2], np.eye(5)[:, :2])
    with pytest.raises(ValueError, match="distinct"):
        g.iou([1, 1], [2, 3], 5)
    with pytest.raises(ValueError, match="unknown modality"):
        g.sample_angles("XO", 5, 2, rng)


@pytest.mark.parametrize("dim,k", [(12, 7), (30, 20), (9, 9)])
def test_complement_angles_identity(dim, k, rng):
    """Two k-subspaces have the angles of their orthogonal complements plus 2k - D zeros: against a
    direct computation on the same pair, with a shared direction (a zero angle) and an orthogonal
    one (pi/2) among them."""
    from scipy.linalg import null_space

    q = g.sample_stiefel(dim, dim, rng)
    u = q[:, :k]
    v = np.concatenate([q[:, :1], q[:, dim - k + 1:]], axis=1) if k < dim else q  # shares q_0; q_1 only in u
    v = v @ g.sample_stiefel(k, k, rng)  # any basis of the span
    u_perp, v_perp = (null_space(x.T) for x in (u, v))
    direct = g.principal_angles(u, v)
    via = g.complement_angles(g.principal_angles(u_perp, v_perp) if k < dim else [], k)
    np.testing.assert_allclose(via, direct, atol=1e-7)
    assert direct[0] < 1e-7 and (k == dim or direct[-1] > np.pi / 2 - 1e-7)
    with pytest.raises(ValueError, match="complements are larger"):
        g.complement_angles(np.zeros(k + 1), k)


@pytest.mark.parametrize("modality", ["OO", "OB"])
def test_large_k_draws_match_direct_draws(modality):
    """At k > D/2 the sampler draws the complements: its overlap and geodesic distance agree in
    distribution with direct draws (means within 4 standard errors of each other)."""
    dim, k, n = 40, 30, 300
    direct_rng, rng = np.random.default_rng(5), np.random.default_rng(6)
    if modality == "OO":
        direct = [g.principal_angles(g.sample_stiefel(dim, k, direct_rng), g.sample_stiefel(dim, k, direct_rng),
                                     precise=False) for _ in range(n)]
    else:
        direct = [g.mask_matrix_angles(g.sample_mask(dim, k, direct_rng), g.sample_stiefel(dim, k, direct_rng))
                  for _ in range(n)]
    sampled = [g.sample_angles(modality, dim, k, rng) for _ in range(n)]
    assert all(a.shape == (k,) and np.all(np.diff(a) >= 0) for a in sampled)
    assert all(np.count_nonzero(a == 0) >= 2 * k - dim for a in sampled)
    for name in ("overlap", "geodesic"):
        a = np.array([g.metrics_from_angles(x)[name] for x in direct])
        b = np.array([g.metrics_from_angles(x)[name] for x in sampled])
        stderr = np.hypot(a.std(ddof=1), b.std(ddof=1)) / np.sqrt(n)
        assert abs(a.mean() - b.mean()) < 4 * stderr, name
    np.testing.assert_array_equal(g.sample_angles(modality, dim, dim, rng), np.zeros(dim))
