"""Subspace geometry on the Grassmannian: principal angles, the seven normalized metrics, masks.

A k-dimensional subspace of R^D is represented either by a matrix with orthonormal columns
(shape (D, k), the "O" modality) or by a k-mask of coordinates (an index array, the "B"
modality: the subspace spanned by the selected standard basis vectors, i.e. the columns of the
identity). Principal angles sigma in [0, pi/2]^k satisfy cos(sigma) = svd(Q1^T Q2); every metric
of the study is a function of them, normalized by its maximum so that 0 = same subspace and
1 = maximally apart (``overlap`` is the one similarity: 1 = same, 0 = orthogonal).

References: seed 000 (Andres-Fernandez et al., "What apples tell about oranges"), section 4.1;
Edelman, Arias & Smith (1998), "The geometry of algorithms with orthogonality constraints";
Knyazev & Argentati (2002) for the sine-based computation of small angles.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "METRICS",
    "MODALITIES",
    "principal_angles",
    "metrics_from_angles",
    "mask_angles",
    "mask_matrix_angles",
    "mask_matrix_overlap",
    "mask_overlap",
    "iou",
    "hamming",
    "sample_stiefel",
    "sample_mask",
    "complement_angles",
    "sample_angles",
]

HALF_PI = np.pi / 2

#: Modalities of the synthetic study: O = orthonormal matrix, B = boolean mask.
MODALITIES: tuple[str, ...] = ("OO", "OB", "BB")


def _geodesic(s: np.ndarray) -> float:
    return float(np.linalg.norm(s) / (HALF_PI * np.sqrt(s.size)))


def _chordal_2(s: np.ndarray) -> float:
    return float(np.max(2 * np.sin(s / 2)) / np.sqrt(2))


def _chordal_f(s: np.ndarray) -> float:
    return float(np.linalg.norm(2 * np.sin(s / 2)) / np.sqrt(2 * s.size))


def _projection_2(s: np.ndarray) -> float:
    return float(np.max(np.sin(s)))


def _projection_f(s: np.ndarray) -> float:
    return float(np.linalg.norm(np.sin(s)) / np.sqrt(s.size))


def _fubini_study(s: np.ndarray) -> float:
    # prod(cos) underflows for large k; sum logs instead. Any right angle makes it pi/2.
    c = np.cos(s)
    if np.any(c <= 0):
        return 1.0
    return float(np.arccos(min(1.0, np.exp(np.sum(np.log(c))))) / HALF_PI)


def _overlap(s: np.ndarray) -> float:
    return float(np.mean(np.cos(s) ** 2))


#: The seven normalized metrics of docs/science.md, section "The seven normalized metrics", in the paper's order.
METRICS: dict[str, Callable[[np.ndarray], float]] = {
    "geodesic": _geodesic,
    "chordal_2": _chordal_2,
    "chordal_F": _chordal_f,
    "projection_2": _projection_2,
    "projection_F": _projection_f,
    "fubini_study": _fubini_study,
    "overlap": _overlap,
}


def metrics_from_angles(angles: np.ndarray) -> dict[str, float]:
    """All seven normalized metrics from one vector of k principal angles (radians).

    Args:
        angles: the k >= 1 principal angles in radians, any shape (flattened); values are clipped to
            [0, pi/2].
    Returns:
        dict from metric name to value, in ``METRICS`` order: the six distances in [0, 1]
        (0 = same subspace) and ``overlap`` in [0, 1] (1 = same subspace).
    Raises:
        ValueError: if there are no angles.
    Implements docs/science.md, section "The seven normalized metrics".
    """
    s = np.clip(np.asarray(angles, dtype=np.float64).ravel(), 0.0, HALF_PI)
    if s.size == 0:
        raise ValueError("metrics need at least one principal angle (k >= 1)")
    return {name: fn(s) for name, fn in METRICS.items()}


def _check_pair(q1: np.ndarray, q2: np.ndarray) -> None:
    if q1.ndim != 2 or q2.ndim != 2:
        raise ValueError(f"expected 2-D (D, k) matrices, got shapes {q1.shape} and {q2.shape}")
    if q1.shape[0] != q2.shape[0]:
        raise ValueError(f"ambient dimensions differ: {q1.shape[0]} != {q2.shape[0]}")
    if q1.shape[1] > q1.shape[0] or q2.shape[1] > q2.shape[0]:
        raise ValueError(f"k larger than D: shapes {q1.shape} and {q2.shape}")


def principal_angles(q1: np.ndarray, q2: np.ndarray, precise: bool = True) -> np.ndarray:
    """Principal angles (ascending, radians) between span(q1) and span(q2).

    Both inputs must have orthonormal columns. The angles are computed from the singular values
    of ``q1.T @ q2`` (cosines); with ``precise`` the angles below pi/4 are recomputed from the
    sines of the residual ``q2 - q1 (q1.T q2)``, which keeps small angles accurate to machine
    precision instead of sqrt(eps) (as ``scipy.linalg.subspace_angles`` does). Without
    ``precise`` the cost is one k x k SVD, enough for metrics of random subspaces. If k differs,
    min(k1, k2) angles are returned.

    Args:
        q1: (D, k1) array with orthonormal columns (not checked), k1 <= D; cast to float64.
        q2: (D, k2) array with orthonormal columns (not checked), k2 <= D; cast to float64.
        precise: recompute the angles below pi/4 from sines (one more SVD of a D x min(k1, k2) matrix).
    Returns:
        (min(k1, k2),) float64 array of angles in [0, pi/2] radians, ascending.
    Raises:
        ValueError: if an input is not 2-D, the ambient dimensions differ, or k > D.
    Implements docs/science.md, section "Principal angles".
    """
    q1 = np.asarray(q1, dtype=np.float64)
    q2 = np.asarray(q2, dtype=np.float64)
    _check_pair(q1, q2)
    if q1.shape[1] < q2.shape[1]:
        q1, q2 = q2, q1
    cross = q1.T @ q2
    cos = np.clip(np.linalg.svd(cross, compute_uv=False), 0.0, 1.0)  # descending
    angles = np.arccos(cos)
    if precise and np.any(cos**2 > 0.5):
        residual = q2 - q1 @ cross
        sin = np.clip(np.linalg.svd(residual, compute_uv=False)[::-1], 0.0, 1.0)  # ascending
        small = cos**2 > 0.5
        angles[small] = np.arcsin(sin[: cos.size][small])
    return np.sort(angles)


def _as_mask(mask: np.ndarray, dim: int) -> np.ndarray:
    """Index array of a mask given as indices or as a boolean vector of length ``dim``."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        if mask.size != dim:
            raise ValueError(f"boolean mask has length {mask.size}, expected D = {dim}")
        return np.flatnonzero(mask)
    idx = mask.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= dim):
        raise ValueError(f"mask indices must lie in [0, {dim}), got [{idx.min()}, {idx.max()}]")
    if np.unique(idx).size != idx.size:
        raise ValueError("mask indices must be distinct")
    return idx


def mask_angles(mask1: np.ndarray, mask2: np.ndarray, dim: int) -> np.ndarray:
    """Principal angles between two k-masks: 0 for each shared index, pi/2 for the rest.

    Closed form: span(I_A) and span(I_B) share exactly the coordinates of A n B and are
    orthogonal elsewhere, so no SVD is needed.

    Args:
        mask1: mask A, an index array of distinct ints in [0, dim) or a boolean vector of length dim.
        mask2: mask B, in either form.
        dim: D, the ambient dimension.
    Returns:
        (min(|A|, |B|),) float64 array, ascending: 0 for each of the |A n B| shared indices, pi/2 after.
    Raises:
        ValueError: for a boolean mask of length other than D, or indices outside [0, D) or repeated.
    Implements docs/science.md, section "Principal angles" (mask vs mask).
    """
    a = _as_mask(mask1, dim)
    b = _as_mask(mask2, dim)
    k = min(a.size, b.size)
    shared = np.intersect1d(a, b, assume_unique=True).size
    angles = np.full(k, HALF_PI)
    angles[:shared] = 0.0
    return angles


def mask_matrix_angles(mask: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Principal angles between a mask and span(q): singular values of the mask's rows of q.

    Args:
        mask: k_m-mask, an index array of distinct ints in [0, D) or a boolean vector of length D.
        q: (D, k) array with orthonormal columns (not checked); D is taken from it.
    Returns:
        (min(k_m, k),) float64 array of angles in [0, pi/2] radians, ascending.
    Raises:
        ValueError: for an invalid mask (wrong length, indices out of range or repeated).
    Implements docs/science.md, section "Principal angles" (mask vs basis).
    """
    q = np.asarray(q, dtype=np.float64)
    idx = _as_mask(mask, q.shape[0])
    cos = np.clip(np.linalg.svd(q[idx], compute_uv=False), 0.0, 1.0)
    return np.sort(np.arccos(cos[: min(idx.size, q.shape[1])]))


def mask_matrix_overlap(mask: np.ndarray, q: np.ndarray) -> float:
    """overlap(m_k, Q) = (1/k) sum_{i in mask} ||Q_i||^2, no SVD.

    ``q`` has orthonormal columns, shape (D, k) with the same k as the mask.

    Args:
        mask: k-mask, an index array of distinct ints in [0, D) or a boolean vector of length D.
        q: (D, k) array with orthonormal columns (not checked), e.g. the top-k eigenvectors U_k.
    Returns:
        the overlap, a float in [0, 1] (chance level k/D).
    Raises:
        ValueError: if the mask is invalid or its size differs from the k columns of ``q``.
    Implements docs/science.md, section "Mask-vs-eigenspace overlap without SVD".
    """
    q = np.asarray(q)
    idx = _as_mask(mask, q.shape[0])
    if idx.size != q.shape[1]:
        raise ValueError(f"mask has {idx.size} entries but the basis has k = {q.shape[1]} columns")
    rows = q[idx].astype(np.float64)
    return float(np.sum(rows * rows) / idx.size)


def mask_overlap(mask1: np.ndarray, mask2: np.ndarray, dim: int) -> float:
    """overlap of two k-masks: |A n B| / k.

    Args:
        mask1: mask A, an index array of distinct ints in [0, dim) or a boolean vector of length dim.
        mask2: mask B, in either form.
        dim: D, the ambient dimension.
    Returns:
        |A n B| / min(|A|, |B|), a float in [0, 1] (NaN, with a warning, if a mask is empty).
    Raises:
        ValueError: for an invalid mask (wrong length, indices out of range or repeated).
    Implements docs/science.md, section "Identities" (for two k-masks, overlap = |A n B| / k).
    """
    return _overlap(mask_angles(mask1, mask2, dim))


def iou(mask1: np.ndarray, mask2: np.ndarray, dim: int) -> float:
    """Intersection over union of two masks (index arrays or boolean vectors of length dim).

    Args:
        mask1: mask A, an index array of distinct ints in [0, dim) or a boolean vector of length dim.
        mask2: mask B, in either form.
        dim: D, the ambient dimension.
    Returns:
        |A n B| / |A u B|, a float in [0, 1]; 1.0 for two empty masks.
    Raises:
        ValueError: for an invalid mask (wrong length, indices out of range or repeated).
    Implements docs/science.md, section "Identities" (IoU = overlap / (2 - overlap) for k-masks).
    """
    a = _as_mask(mask1, dim)
    b = _as_mask(mask2, dim)
    inter = np.intersect1d(a, b, assume_unique=True).size
    union = a.size + b.size - inter
    return float(inter / union) if union else 1.0


def hamming(mask1: np.ndarray, mask2: np.ndarray, dim: int) -> int:
    """Hamming distance of two k-masks: the indices of one that the other lacks.

    Equals k (1 - overlap), i.e. the number of swaps that turn one mask into the other (half the
    Hamming distance of the two boolean vectors).

    Args:
        mask1: mask A, an index array of distinct ints in [0, dim) or a boolean vector of length dim.
        mask2: mask B, in either form (same size k as A; for different sizes the count is |A| - |A n B|,
            the indices of A missing from B).
        dim: D, the ambient dimension.
    Returns:
        k - |A n B|, an int in [0, k].
    Raises:
        ValueError: for an invalid mask (wrong length, indices out of range or repeated).
    Implements docs/science.md, section "Identities" (Hamming = k (1 - overlap)).
    """
    a = _as_mask(mask1, dim)
    b = _as_mask(mask2, dim)
    return int(a.size - np.intersect1d(a, b, assume_unique=True).size)


def sample_stiefel(dim: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-uniform (D, k) matrix with orthonormal columns.

    QR of a standard Gaussian matrix, with the signs of diag(R) moved into Q so that the
    factorization is unique and the distribution exactly Haar (Mezzadri 2007).

    Args:
        dim: D, the ambient dimension, >= 1.
        k: the number of columns, 1 <= k <= D.
        rng: numpy Generator the Gaussian matrix is drawn from (advanced by D k normals).
    Returns:
        (D, k) float64 array with orthonormal columns.
    Raises:
        ValueError: if D < 1 or k is outside [1, D].
    Implements docs/science.md, section "Algorithm 1" (step 1, O samples).
    """
    _check_sizes(dim, k)
    gauss = rng.standard_normal((dim, k))
    q, r = np.linalg.qr(gauss)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def sample_mask(dim: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random k-subset of range(dim), sorted.

    Args:
        dim: D, the ambient dimension, >= 1.
        k: the mask size, 1 <= k <= D.
        rng: numpy Generator to draw from.
    Returns:
        (k,) int64 array of distinct indices in [0, D), ascending.
    Raises:
        ValueError: if D < 1 or k is outside [1, D].
    Implements docs/science.md, section "Algorithm 1" (step 2, B samples).
    """
    _check_sizes(dim, k)
    return np.sort(rng.choice(dim, size=k, replace=False))


def _check_sizes(dim: int, k: int) -> None:
    if dim < 1:
        raise ValueError(f"D must be >= 1, got {dim}")
    if not 1 <= k <= dim:
        raise ValueError(f"k must satisfy 1 <= k <= D = {dim}, got k = {k}")


def complement_angles(angles: np.ndarray, k: int) -> np.ndarray:
    """The k principal angles between two k-subspaces of R^D from the ``angles`` between their
    orthogonal complements (D - k of them, D - k <= k): the same angles plus k - (D - k) zeros.

    Two subspaces of equal dimension and their complements have the same angles in (0, pi/2]
    with the same multiplicities (Knyazev, Jujunashvili and Argentati 2010, Theorem 2.7); the zero
    angles count dim(U n V) = dim(U' n V') + 2k - D.

    Args:
        angles: the D - k angles between the complements, radians.
        k: the dimension of the pair, k >= D - k.
    Returns:
        (k,) float64 array of angles in radians, ascending.
    Implements docs/science.md, section "Algorithm 1" (step 3).
    """
    angles = np.sort(np.asarray(angles, dtype=np.float64).ravel())
    if angles.size > k:
        raise ValueError(f"{angles.size} complement angles for k = {k}: the complements are larger than the pair")
    return np.concatenate([np.zeros(k - angles.size), angles])


def sample_angles(modality: str, dim: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Principal angles between one independent uniform pair of the given modality.

    ``OO``: two Haar matrices; ``OB``: a Haar matrix and a uniform mask (a row selection);
    ``BB``: two uniform masks (closed form). seed 000, Algorithm 1.

    For k > D/2 the pair is drawn as its orthogonal complements, of dimension c = D - k: the
    complement of a uniform k-subspace (k-mask) is a uniform c-subspace (c-mask), and two
    k-subspaces have the nonzero angles of their complements plus k - c zero angles
    (:func:`complement_angles`). The angles have the same distribution as those of a direct draw,
    at the cost of a c-dimensional pair (k = D: no draw, every angle 0).

    Args:
        modality: one of ``MODALITIES`` (``OO``, ``OB``, ``BB``).
        dim: D, the ambient dimension, >= 1.
        k: the subspace dimension, 1 <= k <= D.
        rng: numpy Generator all draws of the pair come from.
    Returns:
        (k,) float64 array of principal angles in [0, pi/2] radians, ascending.
    Raises:
        ValueError: for an unknown modality, or D < 1 or k outside [1, D].
    Implements docs/science.md, section "Algorithm 1" (step 3, the modalities).
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    _check_sizes(dim, k)
    if modality != "BB" and 2 * k > dim:
        inner = sample_angles(modality, dim, dim - k, rng) if k < dim else np.empty(0)
        return complement_angles(inner, k)
    if modality == "OO":
        return principal_angles(sample_stiefel(dim, k, rng), sample_stiefel(dim, k, rng), precise=False)
    if modality == "OB":
        q = sample_stiefel(dim, k, rng)
        return mask_matrix_angles(sample_mask(dim, k, rng), q)
    return mask_angles(sample_mask(dim, k, rng), sample_mask(dim, k, rng), dim)  # BB


#: rounding units of float32 (the precision of stored eigenvectors) below its largest singular value,
#: times sqrt(k), that a direction of a block of k columns must stand to count (``span_tolerance``)
SPAN_PRECISION_FACTOR = 10.0


def span_tolerance(k: int) -> float:
    """The relative singular value below which a direction of k columns counts as absent: float32
    rounding of the columns (the eigen stores hold float32) moves singular values by up to about
    eps sqrt(k) of the largest, so [e1, e1 + 1e-9 e2] spans one dimension, not two (1.7e-5 at k = 2,
    4.5e-4 at k = 1406)."""
    return SPAN_PRECISION_FACTOR * float(np.finfo(np.float32).eps) * float(np.sqrt(max(int(k), 1)))


def orthonormal_span(block: np.ndarray, tolerance: float | None = None) -> np.ndarray:
    """An orthonormal basis (D, r) of the span of ``block``'s columns: left singular vectors whose
    singular values exceed ``tolerance`` (None: ``span_tolerance``) times the largest."""
    u, sigma, _ = np.linalg.svd(np.asarray(block, dtype=np.float64), full_matrices=False)
    tolerance = span_tolerance(block.shape[1]) if tolerance is None else tolerance
    keep = sigma > tolerance * sigma[0] if sigma.size and sigma[0] > 0 else np.zeros(sigma.size, bool)
    return u[:, keep]


def whitening(gram: np.ndarray, tolerance: float | None = None) -> np.ndarray:
    """W (k, r) with W^T G W = I_r for a Gram matrix G = U^T U (k, k): U W is an orthonormal basis of
    the span of U, directions below ``tolerance`` (None: ``span_tolerance``) of the largest singular
    value of U dropped. For orthonormal U, W = I to rounding."""
    values, vectors = np.linalg.eigh((gram + gram.T) / 2)
    tolerance = span_tolerance(gram.shape[0]) if tolerance is None else tolerance
    top = float(values.max()) if values.size else 0.0
    keep = values > (tolerance ** 2) * top if top > 0 else np.zeros(values.size, bool)
    return vectors[:, keep] / np.sqrt(values[keep])


def top_overlap(reference: np.ndarray, estimate: np.ndarray, k: int, tolerance: float | None = None) -> float:
    """Subspace overlap (1/k) sum cos^2(principal angles) of the spans of the leading k columns.

    Each block is reduced to an orthonormal basis of its span (``orthonormal_span``: an SVD that
    drops directions below ``tolerance`` times the largest singular value, by default the float32
    scale ``span_tolerance(k)``), so any basis works (orthonormal or not) and a block spanning r < k
    dimensions scores at most r / k: an estimate [e1, e1] against the reference [e1, e2] scores 1/2,
    not 1, and so does [e1, e1 + 1e-9 e2], whose second direction is below float32 rounding.

    Args:
        reference: (D, >= k) array, e.g. the exact eigenvectors; its first k columns are used.
        estimate: (D, >= k) array, e.g. a solver's eigenvectors; its first k columns are used.
        k: number of leading columns compared, >= 1.
        tolerance: relative singular value below which a direction of a block counts as absent.
    Returns:
        the overlap (1/k) ||Q_ref^T Q_est||_F^2, a float in [0, 1].
    Implements the ``overlap`` of docs/science.md, section "The seven normalized metrics", used to
    compare solvers (section "Sketching versus Krylov methods").
    """
    a, b = (orthonormal_span(np.asarray(block)[:, :k], tolerance) for block in (reference, estimate))
    return float(np.linalg.norm(a.T @ b) ** 2 / k)
