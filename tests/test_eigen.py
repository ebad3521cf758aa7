"""Eigensolvers and test matrices against dense references with known spectra."""

import numpy as np
import pytest
import scipy.fft
import torch
import xarray as xr

from hessmask import eigen as E
from hessmask.curvature import HessianOperator
from hessmask.eigen import exact as E_exact  # the module
from hessmask.eigen.eigsh import eigsh
from hessmask.eigen.exact import exact
from hessmask.eigen.seigh import seigh
from hessmask.grassmann import top_overlap
from hessmask.operators import MatrixOperator
from hessmask.rows import ArrayRows
from hessmask.sketch import KINDS, TestMatrix, dct_ortho, dct_ortho_torch, idct_ortho, idct_ortho_torch

D = 240


def spectrum_matrix(kind: str, seed: int = 0):
    """A symmetric D x D matrix with a known spectrum and its eigenvectors (columns, by |lambda|)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    if kind == "low_rank":
        lam = np.zeros(D)
        lam[:12] = np.linspace(9, 1, 12) * np.where(np.arange(12) % 3 == 0, -1, 1)
    elif kind == "outliers":  # a few outliers over a large bulk, as in trained-network Hessians
        lam = np.concatenate([np.linspace(60, 25, 8), rng.standard_normal(D - 8)])
    elif kind == "decay":
        lam = 0.8 ** np.arange(D) * np.where(np.arange(D) % 2, 1, -1)
    order = np.argsort(-np.abs(lam), kind="stable")
    return (q * lam) @ q.T, lam[order], q[:, order]


@pytest.mark.parametrize("n", [1, 2, 7, 16, 33])
@pytest.mark.parametrize("pair", [(dct_ortho, idct_ortho), (dct_ortho_torch, idct_ortho_torch)])
def test_dct_matches_scipy_and_inverts(n, pair):
    """Both the CPU (scipy) and the device (torch.fft, Makhoul) transforms."""
    dct, idct = pair
    x = torch.randn(n, 3, dtype=torch.float64)
    np.testing.assert_allclose(dct(x).numpy(), scipy.fft.dct(x.numpy(), norm="ortho", axis=0), atol=1e-13)
    np.testing.assert_allclose(idct(dct(x)).numpy(), x.numpy(), atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_test_matrix_rows_and_products(kind):
    psi = TestMatrix(kind, 20, 50, seed=4)
    x = torch.randn(50, 3, dtype=torch.float64)
    full = psi.rows_block(0, 20)
    np.testing.assert_allclose((full @ x).numpy(), psi.apply(x).numpy(), atol=1e-12)
    # row i depends on (seed, i) only
    np.testing.assert_array_equal(psi.rows_block(5, 9).numpy(),
                                  TestMatrix(kind, 20, 50, seed=4).rows_block(0, 20)[5:9].numpy())
    assert not np.array_equal(full.numpy(), TestMatrix(kind, 20, 50, seed=5).rows_block(0, 20).numpy())
    if kind == "ssrft":  # rows of an orthogonal matrix (D = 50 is 5-smooth: no padding)
        np.testing.assert_allclose((full @ full.T).numpy(), np.eye(20), atol=1e-12)


def test_sparse_sign_structure_and_products(monkeypatch):
    """zeta distinct rows per column with signs +-1, drawn per column block (so the structure does
    not depend on how it is sliced); products bitwise the same for any split of the columns, and
    the torch CSR path (used off the CPU) equal to scipy's."""
    import hessmask.sketch as S

    monkeypatch.setattr(S, "SPARSE_COLUMNS", 16)  # several column blocks at D = 50
    psi = TestMatrix("sparse_sign", 20, 50, seed=4)
    full = psi.rows_block(0, 20).numpy()
    assert psi.nonzeros == 8 and set(np.unique(full)) == {-1.0, 0.0, 1.0}
    assert ((full != 0).sum(axis=0) == 8).all()
    rows, signs = S._sparse_structure(20, 50, 8, seed=4)
    assert all(len(set(r)) == 8 for r in rows) and set(np.unique(signs)) == {-1, 1}
    # a column block's draws do not depend on the width: the first 16 columns of D = 50 and 16
    np.testing.assert_array_equal(S._sparse_structure(20, 16, 8, seed=4)[0], rows[:16])
    x = torch.randn(50, 7, dtype=torch.float64)
    whole = psi.apply(x)
    assert torch.equal(torch.cat([psi.apply(x[:, :3]), psi.apply(x[:, 3:])], dim=1), whole)
    np.testing.assert_allclose(whole.numpy(), full @ x.numpy(), atol=1e-12)
    np.testing.assert_allclose((psi._sparse("torch", torch.device("cpu")) @ x).numpy(), whole.numpy(), atol=1e-12)
    assert psi.apply(x.float()).dtype == torch.float32
    small = TestMatrix("sparse_sign", 5, 30, seed=1)  # fewer rows than 8: every row of each column
    assert small.nonzeros == 5 and (small.rows_block(0, 5) != 0).all()
    # columns are uniform 8-subsets: each row is hit about D * 8 / t times
    hits = (TestMatrix("sparse_sign", 40, 20000, seed=2).rows_block(0, 40) != 0).sum(dim=1).double()
    assert abs(hits.mean().item() - 4000) < 1e-9 and hits.std().item() < 4 * 4000 ** 0.5


@pytest.mark.parametrize("dim", [7, 37, 242, 7030])
def test_padded_ssrft_is_the_ssrft_of_the_padded_space(dim):
    """D not 5-smooth: Psi = (SSRFT of R^n) restricted to the first D coordinates, n >= D the next
    5-smooth length; rows and products agree, and the rows of the n-wide map are orthonormal."""
    from hessmask.sketch import transform_length

    n = transform_length(dim)
    assert n >= dim and all(f in (2, 3, 5) for f in _prime_factors(n))
    psi = TestMatrix("ssrft", min(6, dim), dim, seed=3)
    assert psi.length == n
    x = torch.randn(dim, 2, dtype=torch.float64)
    rows = psi.rows_block(0, psi.rows)
    np.testing.assert_allclose((rows @ x).numpy(), psi.apply(x).numpy(), atol=1e-12)
    padded = torch.cat([x, torch.zeros(n - dim, 2, dtype=torch.float64)])
    np.testing.assert_allclose(psi._forward(padded.T.contiguous())[:, psi._selected].T.numpy(), psi.apply(x).numpy(),
                               atol=1e-12)


def _prime_factors(n):
    out, f = [], 2
    while n > 1:
        while n % f == 0:
            out.append(f)
            n //= f
        f += 1
    return out


@pytest.mark.parametrize("k", [1, 3, 5, 17, 30, 59, 60])
def test_dense_top_eigh_matches_a_full_eigh(k):
    """The partial route (tridiagonalization, kept eigenvectors only; k < D / 2) and the full eigh
    give the same spectrum and top-|lambda| pairs, on a matrix with both signs and tied eigenvalues
    (3 and -2.5 twice each: at k = 1 and 3 the cut splits a tie)."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    lam = np.concatenate([[3.0, 3.0, -2.5, -2.5], rng.uniform(-2, 2, 56)])
    matrix = (basis * lam) @ basis.T
    matrix = (matrix + matrix.T) / 2
    spectrum, values, vectors = E.dense_top_eigh(matrix, k)
    full_values, full_vectors = np.linalg.eigh(matrix)
    np.testing.assert_allclose(spectrum, full_values, atol=1e-12)
    ref_values, _ = E.sort_top(full_values, full_vectors, k)
    np.testing.assert_allclose(values, ref_values, atol=1e-12)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(matrix @ vectors, vectors * values, atol=1e-11)


@pytest.mark.parametrize("k", [1, 20, 40, 45, 50])
def test_dense_top_eigh_deflates_zero_rows(k, monkeypatch):
    """Zero rows are split off exactly: the same spectrum (their zeros included) and top pairs as
    the whole matrix, the kept vectors zero on those rows. At k = 45 and 50 a kept eigenvalue is 0
    (40 nonzero eigenvalues; 0 to rounding in the 45 live rows): the whole matrix is solved."""
    rng = np.random.default_rng(1)
    live = np.sort(rng.choice(60, 45, replace=False))
    basis, _ = np.linalg.qr(rng.standard_normal((45, 45)))
    lam = np.concatenate([[2.0, -1.9], rng.uniform(-1.5, 1.5, 38), np.zeros(5)])  # rank 40
    matrix = np.zeros((60, 60))
    matrix[np.ix_(live, live)] = (basis * lam) @ basis.T
    matrix = (matrix + matrix.T) / 2
    calls = []
    real = E_exact._top_eigh
    monkeypatch.setattr(E_exact, "_top_eigh", lambda m, k, overwrite: calls.append(m.shape[0]) or real(m, k, overwrite))
    spectrum, values, vectors = E.dense_top_eigh(matrix, k)
    full_values, full_vectors = np.linalg.eigh(matrix)
    np.testing.assert_allclose(spectrum, full_values, atol=1e-12)
    np.testing.assert_allclose(values, E.sort_top(full_values, full_vectors, k)[0], atol=1e-12)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(matrix @ vectors, vectors * values, atol=1e-11)
    assert calls == {45: [45, 60], 50: [60]}.get(k, [45])
    if k <= 40:
        assert not vectors[np.setdiff1d(np.arange(60), live)].any()


@pytest.mark.parametrize("kind", ["low_rank", "outliers", "decay"])
def test_exact_agrees_with_torch(kind):
    matrix, lam, _ = spectrum_matrix(kind)
    result = exact(MatrixOperator(matrix), 10, residual_pairs=10)
    np.testing.assert_allclose(result.eigenvalues, lam[:10], atol=1e-10)
    ref = torch.linalg.eigvalsh(torch.from_numpy(matrix)).numpy()
    np.testing.assert_allclose(np.sort(result.extra["spectrum"]), np.sort(ref), atol=1e-10)
    assert result.products == D and result.residuals.max() < 1e-9


@pytest.mark.parametrize("kind", KINDS)
def test_seigh_recovers_low_rank_to_precision(kind):
    matrix, lam, vecs = spectrum_matrix("low_rank")
    result = seigh(MatrixOperator(matrix), 12, outer=24, seed=3, kind=kind, block=8)
    np.testing.assert_allclose(result.eigenvalues, lam[:12], atol=1e-9)
    assert top_overlap(vecs, result.eigenvectors, 12) > 1 - 1e-10
    assert result.products == 48


def test_seigh_sharded_equals_unsharded_bitwise():
    matrix, _, _ = spectrum_matrix("outliers")
    op = MatrixOperator(matrix, dtype=torch.float32)
    spec = E.SketchSpec(D, 30, 60, seed=9)
    whole_part = E.seigh_measure(op, spec, 0, 60, block=8)
    parts = [E.seigh_measure(op, spec, a, b, block=8) for a, b in [(40, 60), (0, 16), (16, 40)]]
    whole = E.seigh_merge([whole_part], spec)
    sharded = E.seigh_merge(parts, spec)
    for a, b in zip(whole, sharded):
        assert np.array_equal(a, b)
    outer = np.concatenate([p.outer for p in sorted(parts, key=lambda p: p.start) if p.outer.shape[1]], axis=1)
    assert np.array_equal(outer, whole_part.outer)
    one = E.seigh_recover(whole_part.outer, *whole, spec, 10, row_chunk=50)
    two = E.seigh_recover(outer, *sharded, spec, 10, row_chunk=50)
    assert np.array_equal(one.eigenvalues, two.eigenvalues) and np.array_equal(one.vectors, two.vectors)
    with pytest.raises(E.SolverError, match="block boundary"):
        E.seigh_measure(op, spec, 5, 20, block=8)
    with pytest.raises(E.SolverError, match="tile"):
        E.seigh_merge(parts[:2], spec)


def dense_recover(outer, inner, spec, k):
    """The in-memory SEIGH recovery (Householder QR of the whole D x s sketch, transforms of Q):
    the reference the streaming solve is checked against."""
    psi_left, psi_right = spec.test_matrices()
    q, _ = torch.linalg.qr(torch.tensor(outer, dtype=torch.float64))
    u_z, s_z, vh_z = torch.linalg.svd(torch.tensor(inner))
    left = E.least_squares(psi_left.apply(q), u_z)
    right = E.least_squares(psi_right.apply(q), vh_z.T)
    core = (left * s_z) @ right.T
    values, vectors = torch.linalg.eigh((core + core.T) / 2)
    order = np.argsort(-np.abs(values.numpy()), kind="stable")[:k]
    return values.numpy()[order], (q @ vectors).numpy()[:, order]


@pytest.mark.parametrize("kind", ["outliers", "decay", "low_rank"])
@pytest.mark.parametrize("row_chunk", [7, 64, D])
def test_streaming_solve_matches_dense_recovery(kind, row_chunk):
    """Row chunks of any size (not dividing D) give the in-memory answer, orthonormal vectors."""
    matrix, _, _ = spectrum_matrix(kind)
    op = MatrixOperator(matrix, dtype=torch.float32)
    spec = E.SketchSpec(D, 30, 60, seed=9)
    part = E.seigh_measure(op, spec, 0, 60, block=16)
    k = 20
    solution = E.seigh_recover(part.outer, *E.seigh_merge([part], spec), spec, k, row_chunk=row_chunk)
    values, vectors = dense_recover(part.outer, part.inner, spec, k)
    np.testing.assert_allclose(solution.eigenvalues, values, rtol=1e-9, atol=1e-9 * abs(values[0]))
    assert 1 - top_overlap(vectors, solution.vectors, k) < 1e-9
    # U = Y C in float64 is orthonormal to about eps cond(Y): far below the float32 of the stores
    measured = np.abs(solution.vectors.T @ solution.vectors - np.eye(k)).max()
    assert solution.orthogonality_error == pytest.approx(measured, rel=1e-3, abs=1e-15)
    assert solution.orthogonality_error < max(1e-13, 1e-15 * solution.condition) < 1e-7


def test_exactly_low_rank_operator_and_rank_deficient_sketch():
    """An operator of rank 12 measured with s = 30 > 12 (float64): the sketch is rank deficient,
    the solve keeps the 12 directions, recovers them to precision and refuses k above the rank."""
    matrix, lam, vecs = spectrum_matrix("low_rank")
    op = MatrixOperator(matrix)
    spec = E.SketchSpec(D, 30, 60, seed=2)
    part = E.seigh_measure(op, spec, 0, 60, block=16)
    sketches = E.seigh_merge([part], spec)
    solution = E.seigh_recover(part.outer, *sketches, spec, None, row_chunk=50)
    assert solution.rank == 12 and solution.eigenvalues.size == 12
    np.testing.assert_allclose(solution.eigenvalues, lam[:12], atol=1e-9)
    assert 1 - top_overlap(vecs, solution.vectors, 12) < 1e-10
    assert solution.orthogonality_error < 1e-12
    with pytest.raises(E.SolverError, match="numerical rank 12"):
        E.seigh_recover(part.outer, *sketches, spec, 13, row_chunk=50)


def test_ill_conditioned_sketch_is_reorthogonalized():
    """A rank-12 operator in float32 measured with s = 30: the 18 extra columns of Y hold only
    rounding noise (condition ~1e7), the second pass runs, and the top 12 pairs are exact to
    float32 precision."""
    matrix, lam, vecs = spectrum_matrix("low_rank")
    op = MatrixOperator(matrix, dtype=torch.float32)
    spec = E.SketchSpec(D, 30, 60, seed=9)
    part = E.seigh_measure(op, spec, 0, 60, block=16)
    solution = E.seigh_recover(part.outer, *E.seigh_merge([part], spec), spec, 12, row_chunk=33)
    assert solution.condition > E.REORTHOGONALIZE_ABOVE and solution.reorthogonalized
    assert solution.orthogonality_error < 1e-8
    np.testing.assert_allclose(solution.eigenvalues, lam[:12], rtol=1e-5)
    assert 1 - top_overlap(vecs, solution.vectors, 12) < 1e-6


def test_float32_cut_offs_find_the_rank_that_float64_tolerances_miss(monkeypatch):
    """A rank-12 operator whose products are float32: what lies outside its range is rounding of
    about 1e-7 ||H||. The precision-scaled cut-offs (``rank_tolerance``, ``krylov_floor``) drop it,
    so SEIGH finds rank 12 and block Krylov stops adding directions once the range is spanned; the
    float64 tolerances (1e-12, 1e-10) keep the noise as directions."""
    import hessmask.eigen.krylov as K

    matrix, lam, _ = spectrum_matrix("low_rank")
    op = MatrixOperator(matrix, dtype=torch.float32)
    spec = E.SketchSpec(D, 30, 60, seed=9)
    part = E.seigh_measure(op, spec, 0, 60, block=16)
    pieces = E.seigh_merge([part], spec)
    noisy = E.seigh_recover(part.outer, *pieces, spec, None, precision=np.float64)
    cut = E.seigh_recover(part.outer, *pieces, spec, None, precision=np.float32)
    assert noisy.rank == 30 and cut.rank == 12
    np.testing.assert_allclose(cut.eigenvalues, lam[:12], rtol=1e-5)
    assert seigh(op, 12, outer=30, inner=60, seed=9).extra["rank"] == 12  # the operator's dtype is passed

    def krylov_runs():
        passes = E.krylov_passes(MatrixOperator(matrix, dtype=torch.float32), 12, E.KrylovSpec(D, 96, 8, seed=3),
                                 row_chunk=37, block=5)
        memory = E.block_krylov(MatrixOperator(matrix, dtype=torch.float32), 12, budget=96, block_size=12, seed=3)
        return passes, memory

    passes, memory = krylov_runs()
    assert passes.extra["passes"] < 8 and passes.extra["krylov_dimension"] < 48
    assert memory.extra["blocks"] < 8
    for result in (passes, memory):
        np.testing.assert_allclose(result.eigenvalues, lam[:12], rtol=1e-5)
    monkeypatch.setattr(K, "krylov_floor", lambda dtype: K.KRYLOV_DROP)  # the float64 floor
    passes, memory = krylov_runs()
    assert passes.extra["passes"] == 8 and memory.extra["blocks"] == 8  # noise kept as new directions


def test_streaming_aposteriori_equals_direct():
    matrix, _, _ = spectrum_matrix("decay")
    op = MatrixOperator(matrix)
    result = seigh(op, 6, outer=6, inner=12)
    streamed = E.aposteriori_error(op, result.eigenvalues, result.eigenvectors, 8, seed=3, row_chunk=17)
    gen = torch.Generator().manual_seed(3 + 0xA905)
    omega = torch.randn((D, 8), generator=gen, dtype=torch.float64).numpy()
    approx = (result.eigenvectors * result.eigenvalues) @ result.eigenvectors.T
    direct = np.sqrt(np.sum(((matrix - approx) @ omega) ** 2) / 8)
    assert streamed["frobenius_error"] == pytest.approx(direct, rel=1e-8)


@pytest.mark.parametrize("kind", ["outliers", "decay"])
def test_baselines_reach_exact_subspace(kind):
    matrix, _, vecs = spectrum_matrix(kind)
    op = MatrixOperator(matrix)
    k = 8
    arpack = eigsh(op, k, tol=1e-8)
    krylov = E.block_krylov(op, k, budget=96, block_size=12)
    assert top_overlap(vecs, arpack.eigenvectors, k) >= 0.99
    assert top_overlap(vecs, krylov.eigenvectors, k) >= 0.99
    assert krylov.products <= 96 and arpack.products > 0


def test_block_krylov_beats_seigh_on_outliers():
    matrix, _, vecs = spectrum_matrix("outliers")
    op = MatrixOperator(matrix)
    sketch = seigh(op, 8, outer=16, inner=32)
    krylov = E.block_krylov(op, 8, budget=32, block_size=8)
    assert top_overlap(vecs, krylov.eigenvectors, 8) > top_overlap(vecs, sketch.eigenvectors, 8)


def test_solvers_on_a_small_network():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 6), torch.nn.Tanh(), torch.nn.Linear(6, 4))
    x, y = torch.randn(40, 16, dtype=torch.float64), torch.arange(40) % 4
    op = HessianOperator(model.double(), x, y, dtype=torch.float64, block_size=16)
    k = 5
    ref = exact(op, k)
    dense = torch.autograd.functional.hessian(
        lambda t: torch.nn.functional.cross_entropy(torch.func.functional_call(
            model, op.unflatten(t), (x,)), y), op.theta())
    vals = torch.linalg.eigvalsh(dense).numpy()
    np.testing.assert_allclose(np.sort(np.abs(ref.eigenvalues)), np.sort(np.abs(vals))[-k:], rtol=1e-8)
    assert top_overlap(ref.eigenvectors, eigsh(op, k, tol=1e-10).eigenvectors, k) >= 0.99
    assert top_overlap(ref.eigenvectors, E.block_krylov(op, k, budget=op.dim).eigenvectors, k) >= 0.99
    full = seigh(op, k, outer=op.dim // 2, inner=op.dim)
    assert full.residuals is None and full.products == op.dim


def test_aposteriori_within_bounds():
    matrix, _, _ = spectrum_matrix("decay")
    op = MatrixOperator(matrix)
    result = seigh(op, 6, outer=6, inner=12)
    approx = (result.eigenvectors * result.eigenvalues) @ result.eigenvectors.T
    true = np.linalg.norm(matrix - approx)
    q, eps, trials = 20, 0.5, 200
    bounds = E.aposteriori_bounds(q, eps)
    outside = 0
    for seed in range(trials):
        est = E.aposteriori_error(op, result.eigenvalues, result.eigenvectors, q, seed)["frobenius_error"]
        outside += not (1 - eps) * true**2 < est**2 < (1 + eps) * true**2
    allowed = bounds["p_below"] + bounds["p_above"]
    # the bound is a probability: the observed failure rate stays below it (with binomial slack)
    assert outside / trials <= allowed + 3 * np.sqrt(allowed * (1 - allowed) / trials) + 1e-9


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda op: exact(op, D + 1), "larger than the operator dimension"),
        (lambda op: seigh(op, 30, outer=20), "larger than the product budget"),
        (lambda op: seigh(op, 5, outer=20, inner=10), "inner sketch size 10 < outer"),
        (lambda op: seigh(op, 5, outer=200, inner=400), "exceed D"),
        (lambda op: E.block_krylov(op, 50, budget=40), "larger than the product budget"),
        (lambda op: eigsh(op, D), "ARPACK needs k < D"),
    ],
)
def test_bad_sizes(call, match):
    matrix, _, _ = spectrum_matrix("decay")
    with pytest.raises(E.SolverError, match=match):
        call(MatrixOperator(matrix))


def test_nonsymmetric_operator_rejected_by_seigh():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="not symmetric"):
        seigh(MatrixOperator(rng.standard_normal((D, D))), 4, outer=8)


@pytest.mark.parametrize("value,match", [(float("nan"), "non-finite Hessian-vector products"), (0.0, "are zero")])
def test_degenerate_operator_refused(value, match):
    op = MatrixOperator(np.full((D, D), value))
    with pytest.raises(E.SolverError, match=match):
        seigh(op, 4, outer=8, check_symmetry=False)
    with pytest.raises(E.SolverError, match=match):
        exact(op, 4)


def test_top_overlap_counts_what_a_basis_spans():
    """A 'basis' of k columns spanning only 2 dimensions of the reference's k scores 2/k, not 1."""
    _, _, vecs = spectrum_matrix("decay")
    k = 10
    degenerate = np.repeat(vecs[:, :2], k // 2, axis=1) + 1e-3 * vecs[:, 50:60]
    assert top_overlap(vecs, vecs[:, ::-1][:, -k:], k) == pytest.approx(1.0)
    assert top_overlap(vecs, degenerate, k) < 0.25
    exactly_repeated = np.repeat(vecs[:, :2], k // 2, axis=1)  # rank 2: QR would complete it arbitrarily
    assert top_overlap(vecs, exactly_repeated, k) == pytest.approx(2 / k)
    e = np.eye(4)
    assert top_overlap(e[:, :2], e[:, [0, 0]], 2) == pytest.approx(0.5)
    # a second column that differs from the first below float32 rounding spans nothing more
    nearly = np.stack([e[:, 0], e[:, 0] + 1e-9 * e[:, 1]], axis=1)
    assert top_overlap(e[:, :2], nearly, 2) == pytest.approx(0.5)
    assert top_overlap(e[:, :2], nearly, 2, tolerance=1e-12) == pytest.approx(1.0)  # the float64 tolerance did not


def test_store_overlaps_whiten_what_is_not_orthonormal(rng):
    """subspace_overlaps orthonormalizes each store's k columns from its own Gram (streamed): a store
    holding a scaled, mixed basis of a span scores as that span, and nearly dependent columns count
    once, as top_overlap scores them."""
    from hessmask.metrics import subspace_overlaps

    q, _ = np.linalg.qr(rng.standard_normal((50, 6)))
    mixed = q @ rng.standard_normal((6, 6)) * 3.0  # the same span, not orthonormal
    nearly = q.copy()
    nearly[:, 5] = q[:, 4] + 1e-9 * q[:, 5]  # five directions above float32 rounding
    stores = [xr.Dataset({"eigenvectors": (("param", "eigenpair"), v)}) for v in (q, mixed, nearly)]
    values = subspace_overlaps(stores, [(0, 1), (0, 2), (0, 0)], 6, row_chunk=7)
    np.testing.assert_allclose(values, [1.0, 5 / 6, 1.0], atol=1e-9)
    assert values[1] == pytest.approx(top_overlap(q, nearly, 6), abs=1e-9)


@pytest.mark.parametrize("kind", ["outliers", "decay", "low_rank"])
def test_block_krylov_in_passes_matches_the_in_memory_solver(kind):
    """The passes of the workflow (streamed orthogonalization and Rayleigh-Ritz, row chunks not
    dividing D) find the subspace the in-memory block Krylov finds with the same blocks, and the
    exact eigenpairs where the Krylov space is large enough."""
    matrix, lam, vecs = spectrum_matrix(kind)
    op = MatrixOperator(matrix)
    spec = E.KrylovSpec(D, budget=96, passes=8, seed=3)
    result = E.krylov_passes(op, 8, spec, row_chunk=37, block=5, residual_pairs=4)
    assert result.products == 96 or kind == "low_rank"  # low rank: the space is exhausted early
    reference = E.block_krylov(MatrixOperator(matrix), 8, budget=96, block_size=12, seed=3)
    assert top_overlap(reference.eigenvectors, result.eigenvectors, 8) > 1 - 1e-6
    assert top_overlap(vecs, result.eigenvectors, 8) > 0.999
    np.testing.assert_allclose(result.eigenvalues, lam[:8], rtol=1e-6, atol=1e-9)
    assert result.extra["orthogonality_error"] < 1e-12
    if kind == "low_rank":  # rank 12: the second block already spans the range; later passes add nothing
        assert result.extra["krylov_dimension"] <= 24 and result.extra["passes"] < 8


def test_block_krylov_passes_are_bitwise_independent_of_sharding_and_chunking_of_products():
    matrix, _, _ = spectrum_matrix("outliers")
    spec = E.KrylovSpec(D, budget=60, passes=3, seed=1)
    basis = ArrayRows(np.linalg.qr(spec.start_rows(0, D))[0])
    whole, parts = E.ArraySink(D, 20), E.ArraySink(D, 20)
    E.krylov_measure(MatrixOperator(matrix), basis, 0, 20, block=5, sink=whole)
    for start, stop in ((10, 20), (0, 10)):  # two shards, any order
        E.krylov_measure(MatrixOperator(matrix), basis, start, stop, block=5, sink=parts)
    assert np.array_equal(whole.array, parts.array)
    np.testing.assert_array_equal(spec.start_rows(5000, 5003), spec.start_rows(4090, 5010)[910:913])
    with pytest.raises(E.SolverError, match="block boundary"):
        E.krylov_measure(MatrixOperator(matrix), basis, 3, 10, block=5, sink=parts)
    with pytest.raises(E.SolverError, match="cannot fill"):
        E.KrylovSpec(D, budget=2, passes=3)
