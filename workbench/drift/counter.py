"""The streaming counter: bins current data against a reference profile batch by batch
(polars frames or Arrow batches/tables). Its state is a few fixed-size arrays per feature, so
its memory does not depend on the number of rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from workbench.drift.binning import CHUNK_ROWS, Binner, _executor, _scratch, workers
from workbench.drift.profile import (
    NUMERIC,
    OTHER,
    PARALLEL_MIN_ROWS,
    UNSEEN_KEEP,
    UNSEEN_MAX,
    UNSEEN_PRUNE_TO,
    FeatureProfile,
    ProfileError,
    ReferenceProfile,
    _Batch,
    _prediction_array,
    class_values,
)
from workbench.errors import DataError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa


class NumericCounts:
    """Current-data counts of one numeric feature on its profile's bins."""

    def __init__(self, fp: FeatureProfile) -> None:
        self.profile = fp
        self.decile_edges = np.asarray(fp.decile_edges, dtype=np.float64)
        self.fine_edges = np.asarray(fp.fine_edges, dtype=np.float64)
        self.hist_inner = np.asarray(fp.hist_edges[1:-1], dtype=np.float64)
        nd, nf = self.decile_edges.size + 1, self.fine_edges.size + 1
        nh = max(len(fp.hist_edges) - 1, 1)
        self.decile_counts = np.zeros(nd, dtype=np.int64)
        self.fine_counts = np.zeros(nf, dtype=np.int64)
        self.fine_sums = np.zeros(nf, dtype=np.float64)
        self.hist_counts = np.zeros(nh, dtype=np.int64)
        # One binary search for the three sets of bins: values are binned on the union of
        # their edges; a union bin lies inside one decile, one fine and one histogram bin
        # (every edge of each is a union edge), so its counts add up into theirs exactly.
        union = np.union1d(np.union1d(self.fine_edges, self.decile_edges), self.hist_inner)
        self.binner = Binner(union)
        lower = np.concatenate(([-np.inf], union))  # each union bin's lowest value
        self.to_fine = np.searchsorted(self.fine_edges, lower, side="right")
        self.to_decile = np.searchsorted(self.decile_edges, lower, side="right")
        self.to_hist = np.searchsorted(self.hist_inner, lower, side="right")
        self.union_bins = union.size + 1
        self.n = 0
        self.missing = 0
        self.nonfinite = 0
        self.sum = 0.0
        self.sumsq = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def valid(self) -> int:
        return int(self.fine_counts.sum())

    def update(self, values: np.ndarray, nulls: int) -> None:
        """Count float64 `values` (NaN where null; `nulls` of them are nulls)."""
        n = int(values.size)
        self.n += n
        self.missing += nulls
        nonfinite = 0
        for start in range(0, n, CHUNK_ROWS):
            nonfinite += self._update_chunk(values[start : start + CHUNK_ROWS])
        self.nonfinite += nonfinite - nulls

    def _update_chunk(self, values: np.ndarray) -> int:
        n = values.size
        finite = np.isfinite(values, out=_scratch(n)[3][:n])
        nfin = int(np.count_nonzero(finite))
        x = values if nfin == n else values[finite]
        if x.size == 0:
            return n - nfin
        if self.fine_edges.size == 0:  # a profile with no finite reference values
            self.fine_counts[0] += x.size
            self.decile_counts[0] += x.size
            self.hist_counts[0] += x.size
            self.fine_sums[0] += float(x.sum())
        else:
            bins = self.binner.index(x, out=_scratch(x.size)[2][: x.size])
            nu = self.union_bins
            uc = np.bincount(bins, minlength=nu).astype(np.float64)
            us = np.bincount(bins, weights=x, minlength=nu)
            self.fine_counts += np.bincount(
                self.to_fine, weights=uc, minlength=self.fine_counts.size
            ).astype(np.int64)
            self.fine_sums += np.bincount(self.to_fine, weights=us, minlength=self.fine_sums.size)
            self.decile_counts += np.bincount(
                self.to_decile, weights=uc, minlength=self.decile_counts.size
            ).astype(np.int64)
            self.hist_counts += np.bincount(
                self.to_hist, weights=uc, minlength=self.hist_counts.size
            ).astype(np.int64)
        self.sum += float(x.sum())
        # einsum, not np.dot: BLAS's threads spin after each call and, beside the pool's,
        # made the counting ~15x slower on a busy machine.
        self.sumsq += float(np.einsum("i,i->", x, x))
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        return n - nfin

    @property
    def mean(self) -> float | None:
        v = self.valid
        return self.sum / v if v else None

    @property
    def std(self) -> float | None:
        v = self.valid
        if not v:
            return None
        m = self.sum / v
        return math.sqrt(max(self.sumsq / v - m * m, 0.0))

    def fine_cur_centers(self) -> np.ndarray:
        """Mean of the current values per fine bin (the reference center where empty)."""
        ref = np.asarray(self.profile.fine_centers, dtype=np.float64)
        if ref.size != self.fine_counts.size:
            ref = np.zeros(self.fine_counts.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            cur = self.fine_sums / self.fine_counts
        return np.where(self.fine_counts > 0, cur, ref)

    def nbytes(self) -> int:
        arrays = (self.decile_counts, self.fine_counts, self.fine_sums, self.hist_counts)
        return sum(a.nbytes for a in arrays)


class CategoricalCounts:
    """Current-data counts of one categorical feature on its profile's categories.

    `counts` has one slot per listed reference category (not "__other__") and a last slot
    for every value not listed (unseen ones, and the reference's pooled tail when it had
    one). `unseen` names the unlisted values with their counts.
    """

    def __init__(self, fp: FeatureProfile) -> None:
        self.profile = fp
        self.listed = [c for c in fp.categories if c != OTHER]
        self.index = {c: i for i, c in enumerate(self.listed)}
        self.counts = np.zeros(len(self.listed) + 1, dtype=np.int64)
        self.unseen: dict[str, int] = {}
        self.n = 0
        self.missing = 0
        self.nonfinite = 0

    @property
    def valid(self) -> int:
        return int(self.counts.sum())

    def update(self, values: list[str], counts: np.ndarray, nulls: int) -> None:
        self.n += int(counts.sum()) + nulls
        self.missing += nulls
        other = len(self.listed)
        idx = np.fromiter((self.index.get(v, other) for v in values), np.int64, len(values))
        self.counts += np.bincount(idx, weights=counts, minlength=self.counts.size).astype(np.int64)
        unseen = self.unseen
        for i in np.flatnonzero(idx == other):
            v = values[i]
            unseen[v] = unseen.get(v, 0) + int(counts[i])
        if len(unseen) > UNSEEN_MAX:
            keep = sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:UNSEEN_PRUNE_TO]
            self.unseen = dict(keep)

    def top_unseen(self, k: int = UNSEEN_KEEP) -> dict[str, int]:
        return dict(sorted(self.unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:k])

    def nbytes(self) -> int:
        return self.counts.nbytes


class Counter:
    """Streaming binning of current data against a profile; memory independent of row count.

    `update` may be called with any number of batches; `rows` counts them. Feature columns
    missing from a batch raise `DataError`. Predictions, when given, are counted against the
    profile's prediction bins.
    """

    def __init__(self, profile: ReferenceProfile, features: list[str] | None = None) -> None:
        self.profile = profile
        names = list(profile.features) if features is None else list(features)
        unknown = [f for f in names if f not in profile.features]
        if unknown:
            raise ProfileError(f"not in the reference profile: {', '.join(unknown)}")
        self.features = names
        self.states: dict[str, NumericCounts | CategoricalCounts] = {}
        for name in names:
            fp = profile.features[name]
            self.states[name] = NumericCounts(fp) if fp.kind == NUMERIC else CategoricalCounts(fp)
        pp = profile.prediction
        self.prediction: NumericCounts | CategoricalCounts | None = (
            None
            if pp is None
            else NumericCounts(pp)
            if pp.kind == NUMERIC
            else CategoricalCounts(pp)
        )
        self.rows = 0

    def update(
        self,
        batch: pl.DataFrame | pa.RecordBatch | pa.Table,
        predictions: np.ndarray | None = None,
    ) -> None:
        frame = _Batch(batch)
        present = set(frame.names)
        missing = [f for f in self.features if f not in present]
        if missing:
            raise DataError(f"current data lacks feature column(s): {', '.join(missing)}")

        def one(name: str) -> None:
            state = self.states[name]
            if isinstance(state, NumericCounts):
                if frame.is_categorical(name):
                    raise DataError(
                        f"feature {name!r} is numeric in the reference profile "
                        f"but {frame.dtype(name)} in the current data"
                    )
                state.update(*frame.numeric(name))
            else:
                state.update(*frame.value_counts(name))

        jobs: list[Callable[[], None]] = [partial(one, n) for n in self.features]
        if predictions is not None and self.prediction is not None:
            jobs.append(partial(_count_predictions, self.prediction, predictions))
        # Parallel when the batch holds enough values (rows x columns): a wide batch of few
        # rows pays too. Features go in a few groups, not one task each: at 1,000 features
        # a future per feature costs more than the binning of a short batch.
        if frame.height * len(jobs) >= PARALLEL_MIN_ROWS and len(jobs) > 1:
            groups = _groups(jobs, 4 * workers())
            for fut in [_executor().submit(_run_all, g) for g in groups]:
                fut.result()
        else:
            _run_all(jobs)
        self.rows += int(frame.height)

    def nbytes(self) -> int:
        """Bytes held in count arrays (constant in the number of rows)."""
        total = sum(s.nbytes() for s in self.states.values())
        return total + (self.prediction.nbytes() if self.prediction else 0)


def _run_all(jobs: list[Callable[[], None]]) -> None:
    for job in jobs:
        job()


def _groups(jobs: list[Callable[[], None]], k: int) -> list[list[Callable[[], None]]]:
    """`jobs` in at most `k` interleaved groups (neighbouring features are often alike)."""
    k = max(1, min(k, len(jobs)))
    return [jobs[i::k] for i in range(k)]


def _count_predictions(state: NumericCounts | CategoricalCounts, predictions: np.ndarray) -> None:
    """Predictions on the profile's prediction bins: values, or class indices counted per
    class (a row without a class, NaN, counts as missing)."""
    if isinstance(state, NumericCounts):
        state.update(_prediction_array(predictions), 0)
    else:
        state.update(*class_values(predictions))
