"""Random test matrices for sketching, with rows reproducible from (seed, row index) alone.

A test matrix Psi of shape (t, D) is used in two ways: its rows psi_i are the vectors the
operator is applied to (measurements, which may run in separate processes), and Psi X is applied
to blocks during recovery. Three kinds:

- ``ssrft``: subsampled randomized trigonometric transform (Woolfe et al. 2008; Tropp et al.
  2019, section 3.3): Psi = R F P2 S2 F P1 S1 E with random signs S, permutations P, the
  orthonormal DCT-II F of length n, a selection R of t distinct rows, and E the embedding of R^D
  into R^n (zero padding). n is the smallest 5-smooth length >= D (``transform_length``): the
  DCT's cost depends on how n factors, and the papers' D factor badly (one DCT column costs
  56 ms at D = 895,210 and 5 ms at n = 900,000 on one core; 74 ms vs 10 ms at All-CNN-C's D).
  The padded map is the SSRFT of R^n restricted to the embedded vectors, so its embedding
  guarantees are those of the SSRFT (rows are no longer exactly orthonormal when n > D: each is a
  row of an orthogonal n x n matrix restricted to its first D entries). Applying it costs
  O(n log n) per column and storing it O(n); row i is obtained by applying the transpose to a
  unit vector of R^n and keeping the first D entries.
- ``sparse_sign``: a sparse sign matrix (Tropp et al. 2019, section 3.3; Martinsson and Tropp
  2020, section 9.2): each of the D columns has ``SPARSE_NONZEROS`` (zeta = 8, or t when t < 8)
  entries +-1 in distinct rows drawn uniformly. With t = O(k log k) rows and zeta = O(log k) it is
  a subspace embedding like the SSRFT (Cohen 2016), but applying it costs zeta D multiply-adds per
  column instead of two length-n transforms: at the papers' D the SSRFT's DCTs cost several
  products each, the sparse map a fraction of one (``benchmarks/transforms.py``). Its structure
  (zeta row indices and signs per column, O(zeta D) integers) is drawn once from the seed, in
  column blocks of ``SPARSE_COLUMNS`` with one stream each, so row i is still reproducible from
  (seed, i) alone.
- ``gaussian``: i.i.d. N(0, 1) entries; row i drawn from the stream (seed, i).
- ``rademacher``: i.i.d. random signs; row i drawn from the stream (seed, i).

The transforms run on the device of their inputs: on the CPU with scipy's real-to-real DCT, on
a GPU with ``torch.fft`` (Makhoul's algorithm). A block of columns is transformed as a
(columns, n) array along its contiguous axis, and the permutations are 1-D gathers of one
contiguous row at a time (an inverse permutation is a gather with the inverse index): on the CPU
this is several times faster than gathering rows of a (n, columns) array (measured in
``benchmarks/transforms.py``). Each column is transformed independently of the others, so the
rows and products are the same whatever the block. A sparse sign matrix is applied with scipy's
compressed-column product on the CPU (for each coordinate in order, its row of X is added to zeta
rows of the result: every result column sums in the same order whatever the block) and with
torch's CSR product elsewhere, both in float64. Its memory is 5 zeta D bytes (int32 row indices
and int8 signs), plus as much again for an int8 CSR copy where rows are read (Psi_R): a shard's two
test matrices add 0.17 GB of peak memory at D = 895,210 and 1.9 GB at ResNet-18's D, the SSRFT's
0.55 and 2.0 GB (measured with ``getrusage`` on this project's machine).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.sparse
import torch

from hessmask.eigen.methods import KINDS  # noqa: F401 (the kinds of test matrix, re-exported)

#: nonzeros per column of a ``sparse_sign`` matrix (Tropp et al. 2019 recommend min(t, 8))
SPARSE_NONZEROS = 8
#: columns of a ``sparse_sign`` matrix drawn per random stream and multiplied per scipy call
SPARSE_COLUMNS = 2**18
#: numbers per SSRFT transform call: a call takes max(1, TRANSFORM_ELEMENTS // n) columns (8 at
#: n ~ 1e6, all of a 710-column block at the MLP's n = 7200), so memory stays O(TRANSFORM_ELEMENTS)
#: whatever the block size and small D is not dominated by per-call overhead (every column is
#: transformed independently, so the result is bitwise the same)
TRANSFORM_ELEMENTS = 8 * 2**20


def transform_length(dim: int) -> int:
    """The SSRFT's transform length for width ``dim``: the smallest 5-smooth integer >= dim.

    Computed here rather than by ``scipy.fft.next_fast_len`` so that the test matrices (and with
    them every sketch) do not change when a library changes its notion of a fast length.

    Args:
        dim: D, the width of the test matrix, >= 1.
    Returns:
        n, the smallest integer 2^a 3^b 5^c >= D (n < 2D).
    Raises:
        ValueError: if dim < 1.
    Implements docs/science.md, section "At paper scale" (D padded to the next 5-smooth length).
    """
    if dim < 1:
        raise ValueError(f"a test matrix needs a width D >= 1, got {dim}")
    best, p2 = None, 1
    while p2 < 2 * dim:
        p3 = p2
        while p3 < 2 * dim:
            p5 = p3
            while p5 < dim:
                p5 *= 5
            best = p5 if best is None else min(best, p5)
            p3 *= 3
        p2 *= 2
    return int(best)


def dct_ortho(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Orthonormal DCT-II along ``dim`` (default 0).

    On CPU, scipy's real-to-real transform is used (about 3x faster than a complex FFT); on other
    devices, Makhoul's algorithm with ``torch.fft``.

    Args:
        x: float32 or float64 tensor (on the CPU it must not require grad: it goes through numpy).
        dim: the axis transformed; the fastest is the last, contiguous one.
    Returns:
        tensor of the same shape, dtype and device: F x with F the orthonormal n x n DCT-II.
    Implements the orthonormal DCT F of docs/science.md, section "SEIGH step by step" (step 1).
    """
    if x.device.type == "cpu":
        return torch.from_numpy(scipy.fft.dct(x.numpy(), norm="ortho", axis=dim, workers=torch.get_num_threads()))
    return dct_ortho_torch(x.movedim(dim, 0)).movedim(0, dim)


def idct_ortho(y: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Inverse (= transpose) of ``dct_ortho`` along ``dim`` (orthonormal DCT-III).

    Args:
        y: float32 or float64 tensor (on the CPU it must not require grad: it goes through numpy).
        dim: the axis transformed.
    Returns:
        tensor of the same shape, dtype and device: F^T y.
    Implements the transpose F^T used to form rows of Psi, docs/science.md, section "SEIGH step by
    step" (step 1).
    """
    if y.device.type == "cpu":
        return torch.from_numpy(scipy.fft.idct(y.numpy(), norm="ortho", axis=dim, workers=torch.get_num_threads()))
    return idct_ortho_torch(y.movedim(dim, 0)).movedim(0, dim)


def dct_ortho_torch(x: torch.Tensor) -> torch.Tensor:
    """``dct_ortho`` with ``torch.fft`` on any device (Makhoul 1980).

    Args:
        x: (n, ...) float32 or float64 tensor, transformed along dim 0.
    Returns:
        tensor of the same shape, dtype and device: the orthonormal DCT-II of x.
    Implements the orthonormal DCT F of docs/science.md, section "SEIGH step by step" (step 1).
    """
    n = x.shape[0]
    v = torch.cat([x[0::2], x[1::2].flip(0)], dim=0)
    spectrum = torch.fft.fft(v, dim=0)
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    twiddle = torch.exp(-1j * math.pi * k / (2 * n)).to(spectrum.dtype)
    shape = (n,) + (1,) * (x.ndim - 1)
    out = 2 * (spectrum * twiddle.reshape(shape)).real
    scale = torch.full((n,), math.sqrt(1 / (2 * n)), dtype=x.dtype, device=x.device)
    scale[0] = math.sqrt(1 / (4 * n))
    return out * scale.reshape(shape)


def idct_ortho_torch(y: torch.Tensor) -> torch.Tensor:
    """``idct_ortho`` with ``torch.fft`` on any device.

    Args:
        y: (n, ...) float32 or float64 tensor, transformed along dim 0.
    Returns:
        tensor of the same shape, dtype and device: the orthonormal DCT-III (inverse DCT-II) of y.
    Implements the transpose F^T of docs/science.md, section "SEIGH step by step" (step 1).
    """
    n = y.shape[0]
    shape = (n,) + (1,) * (y.ndim - 1)
    scale = torch.full((n,), math.sqrt(2 * n), dtype=y.dtype, device=y.device)
    scale[0] = math.sqrt(4 * n)
    full = y * scale.reshape(shape) / 2  # undo ortho scaling and the factor 2 of DCT-II
    k = torch.arange(n, device=y.device, dtype=y.dtype)
    twiddle = torch.exp(1j * math.pi * k / (2 * n))
    shifted = torch.cat([torch.zeros_like(full[:1]), full[1:].flip(0)], dim=0)  # Y_{n-k}, Y_n = 0
    spectrum = (full - 1j * shifted) * twiddle.reshape(shape)
    v = torch.fft.ifft(spectrum, dim=0).real
    x = torch.empty_like(y)
    half = (n + 1) // 2
    x[0::2] = v[:half]
    x[1::2] = v[half:].flip(0)
    return x


class TestMatrix:
    """A (rows, dim) random test matrix identified by (kind, seed).

    ``rows_block(i0, i1)`` materializes rows i0..i1-1 (each reproducible from the seed and its
    index); ``apply(X)`` returns Psi @ X for a (dim, m) block.

    Entries: SSRFT rows have unit norm at most (exactly 1 when no padding); Gaussian entries are
    N(0, 1), Rademacher entries +-1 and sparse sign entries 0 or +-1 (zeta per column), unscaled.

    Args:
        kind: ``ssrft``, ``sparse_sign``, ``gaussian`` or ``rademacher``.
        rows: number of rows t (measurements), >= 0; for ``ssrft`` at most the transform length n.
        dim: width D (the operator dimension), >= 1.
        seed: seed of every random draw of this matrix.
    Attributes:
        length: n, the transform length (``transform_length(dim)`` for ``ssrft``, else D).
        nonzeros: zeta, the nonzeros per column (``sparse_sign`` only): min(SPARSE_NONZEROS, rows).
    Raises:
        ValueError: for an unknown kind, or an SSRFT with more rows than its transform length.
    Implements docs/science.md, section "SEIGH step by step" (step 1, test matrices) and section
    "At paper scale" (padding to a 5-smooth length).
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, kind: str, rows: int, dim: int, seed: int):
        if kind not in KINDS:
            raise ValueError(f"unknown test matrix {kind!r}; expected one of {KINDS}")
        self.kind, self.rows, self.dim, self.seed = kind, int(rows), int(dim), int(seed)
        self.length = transform_length(self.dim) if kind == "ssrft" else self.dim
        if kind == "ssrft" and rows > self.length:
            raise ValueError(f"an SSRFT selects distinct rows: {rows} rows > transform length {self.length}")
        if kind == "ssrft":
            n = self.length
            rng = np.random.default_rng([self.seed, 0x55F7])
            self._signs1 = torch.from_numpy(rng.choice([-1.0, 1.0], size=n))
            self._perm1 = torch.from_numpy(rng.permutation(n))
            self._signs2 = torch.from_numpy(rng.choice([-1.0, 1.0], size=n))
            self._perm2 = torch.from_numpy(rng.permutation(n))
            self._selected = torch.from_numpy(rng.permutation(n)[:rows])
            # gathers with the inverse permutations undo P1 and P2 (a gather along the contiguous
            # axis of a (columns, n) block is several times faster than a scatter or a row gather)
            self._inverse1 = torch.argsort(self._perm1)
            self._inverse2 = torch.argsort(self._perm2)
        if kind == "sparse_sign":
            self.nonzeros = min(SPARSE_NONZEROS, self.rows)
            self._sparse_rows, self._sparse_signs = _sparse_structure(self.rows, self.dim, self.nonzeros, self.seed)
            self._sparse_cache: dict = {}

    @property
    def transform_columns(self) -> int:
        """Columns per transform call: max(1, TRANSFORM_ELEMENTS // n)."""
        return max(1, TRANSFORM_ELEMENTS // self.length)

    # -- rows -----------------------------------------------------------------------------
    def rows_block(self, start: int, stop: int, dtype: torch.dtype = torch.float64,
                   device: str | torch.device = "cpu") -> torch.Tensor:
        """Rows start..stop-1 as a (stop - start, dim) tensor.

        Each row depends only on (seed, row index), so any process can generate the rows it needs.

        Args:
            start: first row, 0 <= start <= stop.
            stop: one past the last row, <= rows.
            dtype: dtype of the result (SSRFT rows are computed in it; Gaussian and Rademacher rows are
                drawn in float64 and cast).
            device: device of the result.
        Returns:
            (stop - start, dim) tensor in ``dtype`` on ``device``.
        Raises:
            IndexError: if [start, stop) is not inside [0, rows).
        Implements docs/science.md, section "SEIGH step by step" (step 1: row i is reproducible from
        (seed, i) alone).
        """
        if not 0 <= start <= stop <= self.rows:
            raise IndexError(f"rows [{start}, {stop}) outside the {self.rows} rows of the test matrix")
        if self.kind == "sparse_sign":  # the +-1 entries whose row falls in [start, stop)
            out = torch.from_numpy(self._sparse("csr")[start:stop].toarray())
            return out.to(dtype=dtype, device=device)
        if self.kind == "ssrft":  # transforms run in the requested precision
            out = torch.empty((stop - start, self.dim), dtype=dtype, device=device)
            step = self.transform_columns
            for lo in range(start, stop, step):
                hi = min(stop, lo + step)
                unit = torch.zeros((hi - lo, self.length), dtype=dtype, device=device)
                unit[torch.arange(hi - lo, device=device), self._selected[lo:hi].to(device)] = 1.0
                out[lo - start: hi - start] = self._transpose(unit)[:, : self.dim]
            return out
        out = torch.empty((stop - start, self.dim), dtype=torch.float64)
        for i in range(start, stop):
            rng = np.random.default_rng([self.seed, i])
            row = rng.standard_normal(self.dim) if self.kind == "gaussian" else rng.choice([-1.0, 1.0], self.dim)
            out[i - start] = torch.from_numpy(row)  # drawn in float64 whatever the output dtype
        return out.to(dtype=dtype, device=device)

    # -- products -------------------------------------------------------------------------
    def apply(self, block: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Psi @ block for a (dim, m) block, in the block's precision and on its device.

        An SSRFT costs O(n log n) per column and never forms Psi; a sparse sign matrix zeta D
        multiply-adds per column; Gaussian and Rademacher matrices are materialized ``chunk`` rows
        at a time.

        Args:
            block: (dim, m) float tensor.
            chunk: rows of Psi materialized per step (Gaussian and Rademacher only), >= 1.
        Returns:
            (rows, m) tensor in the block's dtype and on its device.
        Raises:
            ValueError: if the block does not have ``dim`` rows.
        Implements docs/science.md, section "SEIGH step by step" (step 1: applying Psi).
        """
        if block.shape[0] != self.dim:
            raise ValueError(f"test matrix of width {self.dim} applied to {block.shape[0]} rows")
        if self.kind == "sparse_sign":
            return self._apply_sparse(block)
        if self.kind == "ssrft":
            out = torch.empty((self.rows, block.shape[1]), dtype=block.dtype, device=block.device)
            selected = self._selected.to(block.device)
            step = self.transform_columns
            for lo in range(0, block.shape[1], step):
                part = block[:, lo: lo + step]
                padded = part.new_zeros((part.shape[1], self.length))  # (columns, n): zero padding
                padded[:, : self.dim] = part.T
                out[:, lo: lo + step] = self._forward(padded).index_select(1, selected).T
            return out
        out = torch.empty((self.rows, block.shape[1]), dtype=block.dtype, device=block.device)
        for start in range(0, self.rows, chunk):
            stop = min(self.rows, start + chunk)
            out[start:stop] = self.rows_block(start, stop, dtype=block.dtype, device=block.device) @ block
        return out

    def _sparse_columns(self, lo: int, hi: int, dtype=np.float64) -> scipy.sparse.csc_matrix:
        """Columns lo..hi-1 as a scipy CSC matrix sharing the structure's row indices."""
        index_type = np.int32 if (hi - lo) * self.nonzeros < 2**31 else np.int64  # scipy's: no copy
        indptr = np.arange(0, (hi - lo) * self.nonzeros + 1, self.nonzeros, dtype=index_type)
        data = self._sparse_signs[lo:hi].ravel().astype(dtype)
        return scipy.sparse.csc_matrix((data, self._sparse_rows[lo:hi].ravel(), indptr), shape=(self.rows, hi - lo))

    def _sparse(self, layout: str, device: torch.device | None = None):
        """The sparse sign matrix as scipy CSR (int8, for rows) or torch CSR (float64, on
        ``device``, for products there), each built on first use and kept."""
        key = (layout, None if device is None else str(device))
        if key not in self._sparse_cache:
            if layout == "csr":
                matrix = self._sparse_columns(0, self.dim, dtype=np.int8).tocsr()
            else:
                csr = self._sparse("csr")
                matrix = torch.sparse_csr_tensor(torch.from_numpy(csr.indptr.astype(np.int64)),
                                                 torch.from_numpy(csr.indices.astype(np.int64)),
                                                 torch.from_numpy(csr.data.astype(np.float64)),
                                                 size=(self.rows, self.dim), check_invariants=True).to(device)
            self._sparse_cache[key] = matrix
        return self._sparse_cache[key]

    def _apply_sparse(self, block: torch.Tensor) -> torch.Tensor:
        """Psi @ block for a sparse sign matrix, in float64 (cast to the block's dtype). On the CPU
        ``SPARSE_COLUMNS`` coordinates at a time, their float64 entries made for the call (a kept
        float64 copy would cost 8 zeta D bytes per matrix, 750 MB at ResNet-18's D); each result
        column is summed over the coordinates in order, whatever the block."""
        if block.device.type != "cpu":
            return (self._sparse("torch", block.device) @ block.double()).to(block.dtype)
        x = np.ascontiguousarray(block.double().numpy())
        out = np.zeros((self.rows, x.shape[1]))
        for lo in range(0, self.dim, SPARSE_COLUMNS):
            hi = min(self.dim, lo + SPARSE_COLUMNS)
            out += self._sparse_columns(lo, hi) @ x[lo:hi]
        return torch.from_numpy(out).to(block.dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """F P2 S2 F P1 S1 applied to each row of a (columns, n) block (the transform along dim 1)."""
        dev = x.device
        x = _gather_rows(x * self._signs1.to(device=dev, dtype=x.dtype), self._perm1.to(dev))
        x = dct_ortho(x, dim=1)
        x = _gather_rows(x * self._signs2.to(device=dev, dtype=x.dtype), self._perm2.to(dev))
        return dct_ortho(x, dim=1)

    def _transpose(self, y: torch.Tensor) -> torch.Tensor:
        """The transpose (S1 P1^T F^T S2 P2^T F^T) applied to each row of a (columns, n) block."""
        dev = y.device
        x = _gather_rows(idct_ortho(y, dim=1), self._inverse2.to(dev))
        x = _gather_rows(idct_ortho(x * self._signs2.to(device=dev, dtype=y.dtype), dim=1), self._inverse1.to(dev))
        return x * self._signs1.to(device=dev, dtype=y.dtype)


def _sparse_structure(rows: int, dim: int, nonzeros: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (dim, nonzeros) and signs (dim, nonzeros) of a sparse sign matrix.

    Each column's rows are a uniform ``nonzeros``-subset of range(rows) (Floyd's algorithm, one
    draw per slot); column block b (``SPARSE_COLUMNS`` columns) is drawn from the stream
    (seed, 0x5A5E, b), so the structure does not depend on how it is later sliced. Indices are
    stored as int32 (the index type of scipy's sparse products, which then share them).
    """
    out_rows = np.empty((dim, nonzeros), dtype=np.int32)
    out_signs = np.empty((dim, nonzeros), dtype=np.int8)
    for b, lo in enumerate(range(0, dim, SPARSE_COLUMNS)):
        hi = min(dim, lo + SPARSE_COLUMNS)
        rng = np.random.default_rng([seed, 0x5A5E, b])
        chosen = np.empty((hi - lo, nonzeros), dtype=np.int64)
        for slot, top in enumerate(range(rows - nonzeros, rows)):
            draw = rng.integers(0, top + 1, size=hi - lo)
            taken = (chosen[:, :slot] == draw[:, None]).any(axis=1)
            chosen[:, slot] = np.where(taken, top, draw)
        out_rows[lo:hi] = chosen
        out_signs[lo:hi] = rng.integers(0, 2, size=(hi - lo, nonzeros), dtype=np.int8) * 2 - 1
    return out_rows, out_signs


#: transform length from which a block is gathered one row at a time (below it, in one call)
ROW_GATHER_FROM = 2**16


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[:, index]`` for a (columns, n) block. For long rows one contiguous row at a time: on the
    CPU a 1-D gather per row is several times faster than a gather along dim 1 of the block
    (float64, n ~ 1e6); short rows are gathered in one call (the per-call overhead dominates)."""
    if x.shape[1] < ROW_GATHER_FROM or x.device.type != "cpu":
        return x.index_select(1, index)
    out = torch.empty_like(x)
    for row in range(x.shape[0]):
        torch.index_select(x[row], 0, index, out=out[row])
    return out
