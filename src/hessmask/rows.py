"""Matrices read in row chunks: the one way every stage touches a D x k array.

At paper scale (D up to 1.2e7, k up to 1500) a D x k float32 block is 70 GB, so no job holds one:
the sketch, the Krylov bases and the eigenvectors are read ``row_chunk`` rows at a time through a
``RowSource`` (an in-memory array, a zarr array of a store, or several side by side). A leaf module
(numpy only), used by the eigensolvers, the stores and the metrics alike.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence

import numpy as np


def row_chunks(dim: int, chunk: int) -> Iterator[tuple[int, int]]:
    """[start, stop) ranges of ``chunk`` rows covering [0, dim).

    Args:
        dim: the number of rows D (0 gives no ranges).
        chunk: rows per range, >= 1; the last range may be shorter.
    Returns:
        an iterator of (start, stop) int pairs, in order.
    Raises:
        ValueError: if chunk < 1 (raised on the first ``next``: this is a generator).
    Implements docs/science.md, section "At paper scale" (row chunks of ``eigen.row_chunk`` rows).
    """
    if chunk < 1:
        raise ValueError(f"the row chunk must be >= 1, got {chunk}")
    for lo in range(0, dim, chunk):
        yield lo, min(dim, lo + chunk)



class RowSource(Protocol):
    """A (D, width) matrix read in row chunks (the outer sketch, a Krylov basis, eigenvectors), so
    that no job holds all of it.

    A structural protocol: anything with ``dim``, ``width`` and ``read``, e.g. ``ArrayRows`` over an
    in-memory or a zarr array.

    Attributes:
        dim: the number of rows D.
        width: the number of columns (s for the outer sketch, k for eigenvectors).
    Implements docs/science.md, section "At paper scale" (Y is read in row chunks).
    """

    dim: int
    width: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as a float64 (stop - start, width) array.

        Args:
            start: first row, 0 <= start <= stop.
            stop: one past the last row, <= dim.
        Returns:
            (stop - start, width) float64 array.
        """


class ArrayRows:
    """A (D, k) matrix behind the ``RowSource`` interface, read in row or column blocks: an
    in-memory array, or a zarr array of a store (then only the blocks read are loaded).

    Args:
        array: a 2-D array of shape (D, k) and any float dtype that supports numpy slicing (numpy or
            zarr array); not copied.
    Raises:
        ValueError: if ``array`` is not 2-D.
    Implements docs/science.md, section "At paper scale" (stores read in row chunks).
    """

    def __init__(self, array: Any):
        self.array = array
        self.dim, self.width = (int(n) for n in array.shape)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as float64.

        Args:
            start: first row, 0 <= start <= stop.
            stop: one past the last row (a stop past D is truncated, as numpy slicing does).
        Returns:
            (stop - start, k) float64 array.
        """
        return np.asarray(self.array[start:stop], dtype=np.float64)

    def columns(self, start: int, stop: int) -> np.ndarray:
        """Columns start..stop-1 as float64.

        Args:
            start: first column, 0 <= start <= stop.
            stop: one past the last column (a stop past k is truncated, as numpy slicing does).
        Returns:
            (D, stop - start) float64 array.
        """
        return np.asarray(self.array[:, start:stop], dtype=np.float64)


class StackedRows:
    """Several ``RowSource`` of the same D side by side, as one (D, sum of widths) ``RowSource``."""

    def __init__(self, sources: Sequence[RowSource]):
        if not sources or len({s.dim for s in sources}) != 1:
            raise ValueError("stacked row sources must be at least one, all with the same D")
        self.sources, self.dim, self.width = list(sources), sources[0].dim, sum(s.width for s in sources)

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.concatenate([s.read(start, stop) for s in self.sources], axis=1)
