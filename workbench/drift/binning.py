"""Binning current values against a profile's edges, fast: one shared thread pool (numpy's
sort, searchsorted and bincount release the GIL), per-thread scratch arrays, and `Binner`,
an exact and faster `searchsorted` on continuous data."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def workers() -> int:
    """Threads of the shared pool: the CPUs, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _executor() -> ThreadPoolExecutor:
    """One shared pool: numpy's sorting, searchsorted and bincount release the GIL."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(workers(), thread_name_prefix="drift")
        return _EXECUTOR


# Values are binned in chunks of this many: work arrays stay in cache and are reused.
CHUNK_ROWS = 1 << 18
_SCRATCH = threading.local()


def _scratch(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This thread's work arrays (float64, intp, intp, bool) of at least `n` elements.

    Reused between calls: a fresh multi-megabyte array costs more in page faults than the
    arithmetic done on it.
    """
    arrays = getattr(_SCRATCH, "arrays", None)
    if arrays is None or arrays[0].size < n:
        size = max(n, CHUNK_ROWS)
        arrays = (
            np.empty(size, np.float64),
            np.empty(size, np.intp),
            np.empty(size, np.intp),
            np.empty(size, np.bool_),
        )
        _SCRATCH.arrays = arrays
    return arrays


class Binner:
    """`np.searchsorted(edges, x, side="right")`, exactly, ~5x faster on continuous data.

    A lookup table over 4,096 equal cells between the first and last edge gives each value's
    bin directly; values in the few cells that hold an edge go through `searchsorted`. The
    cell of a value and of an edge are computed by the same monotone float operations, so a
    value in a cell without edges is below every edge of a higher cell and at or above every
    edge of a lower one: the table is exact, not approximate. On data whose values sit on
    the edges (discrete features) most cells are ambiguous; the binner then falls back to
    plain `searchsorted`.
    """

    CELLS = 4096

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.use_table = self.edges.size >= 2 and self.edges[-1] > self.edges[0]
        if not self.use_table:
            return
        cells = self.CELLS
        self.lo = float(self.edges[0])
        self.top = float(cells)
        # The last edge lands in cell `cells`; values clearly above it in cell `cells + 1`.
        self.scale = (cells - 1) / (float(self.edges[-1]) - self.lo)
        edge_cells = self._cells(self.edges).copy()
        counts = np.bincount(edge_cells, minlength=cells + 2)
        self.ambiguous = counts > 0
        self.table = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)

    def _cells(self, x: np.ndarray) -> np.ndarray:
        """Cell numbers 0..cells+1 of `x` (monotone in x), in this thread's scratch array."""
        n = x.size
        f, cells, _, _ = _scratch(n)
        c = f[:n]
        with np.errstate(over="ignore", invalid="ignore"):
            np.subtract(x, self.lo, out=c)
            np.multiply(c, self.scale, out=c)
        np.clip(c, -1.0, self.top, out=c)
        c += 1.0
        out = cells[:n]
        np.copyto(out, c, casting="unsafe")  # truncation: monotone
        return out

    def index(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Bin numbers of the finite values `x` (into `out` when given)."""
        if out is None:
            out = np.empty(x.size, np.intp)
        if not self.use_table:
            out[:] = np.searchsorted(self.edges, x, side="right")
            return out
        c = self._cells(x)
        np.take(self.table, c, out=out, mode="clip")
        amb = _scratch(x.size)[3][: x.size]
        np.take(self.ambiguous, c, out=amb, mode="clip")
        idx = np.flatnonzero(amb)
        if idx.size:
            out[idx] = np.searchsorted(self.edges, x[idx], side="right")
            if idx.size > x.size // 2:  # mostly ambiguous: the table does not pay
                self.use_table = False
        return out
