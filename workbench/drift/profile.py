"""Reference profiles for drift checks (the streaming counter is in `drift.counter`).

A `ReferenceProfile` is computed once, when a model is trained, and stored beside it as JSON;
drift checks compare binned counts of current data against it and never rescan the training
data. Per numeric feature it holds:

- `decile_edges`/`decile_counts`: the 9 inner decile edges of the finite reference values and
  the reference counts in the (up to) 10 bins they make. PSI, KL and Jensen-Shannon use these.
  Tied values collapse equal edges, giving fewer bins (a constant feature has one edge, two
  bins); that is fine for every statistic.
- `fine_edges`/`fine_counts`/`fine_centers`: up to 100 percentile bins (the deciles are among
  their edges) with the mean of the reference values in each; KS and Wasserstein use these.
- `hist_edges`/`hist_counts`: 20 equal-width bins between the reference's 0.5th and 99.5th
  percentiles for drawing; values outside land in the outer bins. `hist_edges` holds all 21
  edges (2 when the feature is constant there: one bin).
- the count of rows, missing values (null) and non-finite values (NaN, inf): these are counted
  and reported, and excluded from the bins.

A bin `i` holds the values `x` with `edges[i-1] <= x < edges[i]` (`searchsorted(..., "right")`).

The model's predictions on the holdout are profiled as a numeric feature (a probability, a
value), or for a multiclass model (`prediction_kind="categorical"`) as class frequencies: the
categories are the predicted class indices as text ("0", "1"...), in index order; the
check names them with the model's classes.

Per categorical feature: the 200 most frequent categories (ties by name) and their counts,
the rest pooled as `"__other__"`. Columns of string, categorical or boolean type are
categorical even when not named in `categorical`; values are compared as strings.

`drift.counter.Counter` bins current data against a profile batch by batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.drift.binning import _executor
from workbench.errors import DataError, WorkbenchError

if TYPE_CHECKING:
    import polars as pl

NUMERIC = "numeric"
CATEGORICAL = "categorical"
OTHER = "__other__"
FINE_BINS = 100
HIST_BINS = 20
MAX_CATEGORIES = 200
UNSEEN_KEEP = 50
# The counter keeps exact counts for up to this many distinct unlisted categories; past it,
# it keeps the most frequent UNSEEN_PRUNE_TO (their later counts stay exact, the tail's are
# dropped from the names but never from the bins).
UNSEEN_MAX = 10_000
UNSEEN_PRUNE_TO = 1_000
FORMAT = "workbench-drift-profile"
FORMAT_VERSION = 1
PREDICTION = "prediction"
# Batches smaller than this are binned on the calling thread.
PARALLEL_MIN_ROWS = 50_000

_PERCENTILES = np.arange(1, FINE_BINS) / FINE_BINS  # 0.01 .. 0.99
_DECILE_IDX = np.arange(FINE_BINS // 10 - 1, FINE_BINS - 1, FINE_BINS // 10)  # 0.1 .. 0.9


class ProfileError(WorkbenchError):
    """A reference profile file is missing, unreadable or not a profile."""


@dataclass
class FeatureProfile:
    name: str
    kind: str  # "numeric" | "categorical"
    n: int = 0  # rows seen (including missing)
    missing: int = 0  # null / None
    nonfinite: int = 0  # NaN, +inf, -inf (numeric)
    # numeric
    decile_edges: list[float] = field(default_factory=list)
    decile_counts: list[int] = field(default_factory=list)
    fine_edges: list[float] = field(default_factory=list)
    fine_counts: list[int] = field(default_factory=list)
    fine_centers: list[float] = field(default_factory=list)
    hist_edges: list[float] = field(default_factory=list)
    hist_counts: list[int] = field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    # categorical
    categories: list[str] = field(default_factory=list)
    category_counts: list[int] = field(default_factory=list)

    @property
    def valid(self) -> int:
        """Rows in the bins (neither missing nor non-finite)."""
        return self.n - self.missing - self.nonfinite

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureProfile:
        if not isinstance(d, dict) or "name" not in d or "kind" not in d:
            raise ValueError("a feature profile needs 'name' and 'kind'")
        if d["kind"] not in (NUMERIC, CATEGORICAL):
            raise ValueError(f"feature {d['name']!r}: unknown kind {d['kind']!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ReferenceProfile:
    features: dict[str, FeatureProfile]
    prediction: FeatureProfile | None
    n_rows: int
    created_at: str  # ISO UTC
    source: str  # e.g. "training data <digest>"

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "n_rows": self.n_rows,
                "created_at": self.created_at,
                "source": self.source,
                "features": [f.to_dict() for f in self.features.values()],
                "prediction": self.prediction.to_dict() if self.prediction else None,
            },
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        try:
            d = json.loads(text)
        except ValueError as e:
            raise ProfileError(f"not a drift profile: invalid JSON ({e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ProfileError("not a drift profile (no 'format': 'workbench-drift-profile')")
        if d.get("version") != FORMAT_VERSION:
            raise ProfileError(
                f"drift profile version {d.get('version')!r} is not supported "
                f"(this workbench reads version {FORMAT_VERSION})"
            )
        try:
            feats = [FeatureProfile.from_dict(f) for f in d["features"]]
            pred = d.get("prediction")
            return cls(
                features={f.name: f for f in feats},
                prediction=FeatureProfile.from_dict(pred) if pred else None,
                n_rows=int(d["n_rows"]),
                created_at=str(d.get("created_at", "")),
                source=str(d.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProfileError(f"drift profile is malformed: {e}") from None

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError(f"{path}: no drift profile there") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ProfileError(f"{path}: cannot read drift profile ({e})") from None
        try:
            return cls.from_json(text)
        except ProfileError as e:
            raise ProfileError(f"{path}: {e}") from None


# ---------------------------------------------------------------------------- columns


def _is_categorical_dtype(dtype: Any) -> bool:
    import polars as pl

    return dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(
        dtype, pl.Enum | pl.Categorical
    )


def _numeric_values(series: pl.Series) -> tuple[np.ndarray, int]:
    """(float64 values with nulls as NaN, null count)."""
    import polars as pl

    nulls = series.null_count()
    if series.dtype != pl.Float64:
        series = series.cast(pl.Float64)
    values = series.to_numpy()
    if values.dtype != np.float64:
        values = values.astype(np.float64)
    return values, nulls


def _value_counts(series: pl.Series) -> tuple[list[str], np.ndarray, int]:
    """(distinct non-null values as strings, their counts, null count)."""
    import polars as pl

    nulls = series.null_count()
    s = series.cast(pl.String).drop_nulls().rename("v")
    if s.len() == 0:
        return [], np.zeros(0, dtype=np.int64), nulls
    vc = s.value_counts(name="c")
    return vc["v"].to_list(), vc["c"].to_numpy().astype(np.int64), nulls


def _arrow_is_categorical(dtype: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(
        t.is_string(dtype)
        or t.is_large_string(dtype)
        or t.is_string_view(dtype)
        or t.is_dictionary(dtype)
        or t.is_boolean(dtype)
    )


def _arrow_numeric_values(col: Any) -> tuple[np.ndarray, int]:
    """(float64 values with nulls as NaN, null count) of an Arrow (chunked) array."""
    import pyarrow as pa

    nulls = int(col.null_count)
    if col.type != pa.float64():
        col = col.cast(pa.float64())
    values = col.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64), nulls


def _arrow_value_counts(col: Any) -> tuple[list[str], np.ndarray, int]:
    """As `_value_counts`, on an Arrow (chunked) array, with polars' string forms."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = int(col.null_count)
    t = pa.types
    if t.is_dictionary(col.type) and _is_text(col.type.value_type):
        return _dictionary_counts(col)
    if t.is_dictionary(col.type) or t.is_string_view(col.type) or t.is_boolean(col.type):
        col = col.cast(pa.string())
    if not (t.is_string(col.type) or t.is_large_string(col.type)):
        # Other types (numbers, dates) as polars writes them, for the same category names.
        import polars as pl

        filled = pc.fill_null(col, pa.scalar(0, col.type)) if nulls else col
        try:
            series = pl.Series("v", filled.to_numpy(zero_copy_only=False))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            series = pl.Series("v", col.to_pylist())
        if nulls:
            null_idx = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
            series = series.scatter(null_idx, None)
        return _value_counts(series)
    if col.null_count == len(col):
        return [], np.zeros(0, dtype=np.int64), nulls
    vc = pc.value_counts(col)
    if isinstance(vc, pa.ChunkedArray):
        vc = vc.combine_chunks()
    values = vc.field("values")
    counts = vc.field("counts").to_numpy(zero_copy_only=False).astype(np.int64)
    keep = values.is_valid().to_numpy(zero_copy_only=False)
    names = values.to_pylist()
    if not keep.all():
        names = [v for v, k in zip(names, keep, strict=True) if k]
        counts = counts[keep]
    return names, counts, nulls


def _is_text(dtype: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype))


def _dictionary_counts(col: Any) -> tuple[list[str], np.ndarray, int]:
    """`_arrow_value_counts` of a dictionary-encoded text column (Parquet's own encoding of
    strings, read with `read_dictionary`): a `bincount` of the indices per chunk, the
    strings never materialised per row."""
    import pyarrow as pa

    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    totals: dict[str, int] = {}
    for chunk in chunks:
        words = chunk.dictionary
        idx = chunk.indices
        if idx.null_count:
            idx = idx.drop_null()
        codes = np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.intp)
        counts = np.bincount(codes, minlength=len(words))
        names = words.to_pylist()
        for i in np.flatnonzero(counts):
            name = names[i]
            if name is not None:
                totals[name] = totals.get(name, 0) + int(counts[i])
    return list(totals), np.fromiter(totals.values(), np.int64, len(totals)), int(col.null_count)


class _Batch:
    """Column access over a polars frame or an Arrow batch/table without copying.

    Arrow data is read with pyarrow and numpy directly: `pl.from_arrow` keeps each imported
    batch's buffers alive here (polars 2.1, pyarrow 25), so streaming through it would
    grow memory with the row count.
    """

    def __init__(self, batch: Any) -> None:
        import polars as pl

        self.polars = isinstance(batch, pl.DataFrame)
        self.batch = batch
        if self.polars:
            self.names = list(batch.columns)
            self.height = int(batch.height)
        else:
            self.names = list(batch.schema.names)
            self.height = int(batch.num_rows)

    def dtype(self, name: str) -> Any:
        return self.batch[name].dtype if self.polars else self.batch.schema.field(name).type

    def is_categorical(self, name: str) -> bool:
        dtype = self.dtype(name)
        return _is_categorical_dtype(dtype) if self.polars else _arrow_is_categorical(dtype)

    def numeric(self, name: str) -> tuple[np.ndarray, int]:
        if self.polars:
            return _numeric_values(self.batch[name])
        return _arrow_numeric_values(self.batch.column(name))

    def value_counts(self, name: str) -> tuple[list[str], np.ndarray, int]:
        if self.polars:
            return _value_counts(self.batch[name])
        return _arrow_value_counts(self.batch.column(name))


# ---------------------------------------------------------------------------- profile


def _numeric_profile(name: str, values: np.ndarray, nulls: int) -> FeatureProfile:
    n = int(values.size)
    finite = np.isfinite(values)
    x = values[finite] if not finite.all() else values
    fp = FeatureProfile(name=name, kind=NUMERIC, n=n, missing=nulls)
    fp.nonfinite = n - int(x.size) - nulls
    if x.size == 0:
        return fp
    xs = np.sort(x)
    q = np.quantile(xs, _PERCENTILES)
    fine = np.unique(q)
    deciles = np.unique(q[_DECILE_IDX])
    lo, hi = np.quantile(xs, [0.005, 0.995])
    hist = np.linspace(lo, hi, HIST_BINS + 1) if hi > lo else np.array([lo, hi])

    def counts(inner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bounds = np.concatenate(([0], np.searchsorted(xs, inner, side="left"), [xs.size]))
        return bounds, np.diff(bounds)

    _, dec_counts = counts(deciles)
    bounds, fine_counts = counts(fine)
    _, hist_counts = counts(hist[1:-1])
    cum = np.concatenate(([0.0], np.cumsum(xs)))
    sums = cum[bounds[1:]] - cum[bounds[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        centers = sums / fine_counts
    # An empty bin (rare: ties) sits at the middle of its edges; its weight is 0 anyway.
    full = np.concatenate(([xs[0]], fine, [xs[-1]]))
    mids = (full[:-1] + full[1:]) / 2
    centers = np.where(fine_counts > 0, centers, mids)
    # Keep every center inside its bin despite cumsum rounding, so centers stay sorted.
    centers = np.clip(centers, full[:-1], full[1:])

    fp.decile_edges = deciles.tolist()
    fp.decile_counts = dec_counts.tolist()
    fp.fine_edges = fine.tolist()
    fp.fine_counts = fine_counts.tolist()
    fp.fine_centers = centers.tolist()
    fp.hist_edges = hist.tolist()
    fp.hist_counts = hist_counts.tolist()
    fp.mean = float(x.mean())
    fp.std = float(x.std())
    fp.min = float(xs[0])
    fp.max = float(xs[-1])
    return fp


def _categorical_profile(name: str, series: pl.Series) -> FeatureProfile:
    values, counts, nulls = _value_counts(series)
    order = sorted(range(len(values)), key=lambda i: (-int(counts[i]), values[i]))
    top = order[:MAX_CATEGORIES]
    rest = int(sum(int(counts[i]) for i in order[MAX_CATEGORIES:]))
    cats = [values[i] for i in top]
    cat_counts = [int(counts[i]) for i in top]
    if rest:
        cats.append(OTHER)
        cat_counts.append(rest)
    return FeatureProfile(
        name=name,
        kind=CATEGORICAL,
        n=int(series.len()),
        missing=nulls,
        categories=cats,
        category_counts=cat_counts,
    )


def _prediction_array(predictions: Any) -> np.ndarray:
    arr = np.asarray(predictions, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"predictions must be one value per row, not shape {arr.shape}")
    return arr


def class_values(predictions: Any) -> tuple[list[str], np.ndarray, int]:
    """Class predictions (class indices as numbers, the prediction log's `output` of a
    multiclass model) as categories: (distinct indices as strings "0", "1"..., their counts,
    the count of rows without a class: NaN or inf)."""
    arr = _prediction_array(predictions)
    finite = np.isfinite(arr)
    idx = arr[finite].astype(np.int64)
    values, counts = np.unique(idx, return_counts=True)
    return [str(int(v)) for v in values], counts.astype(np.int64), int(arr.size - idx.size)


def prediction_profile(predictions: Any, kind: str = NUMERIC) -> FeatureProfile:
    """The profile of a model's predictions: binned values (`numeric`: probabilities, values),
    or class frequencies (`categorical`: class indices; categories "0", "1"...)."""
    if kind == NUMERIC:
        return _numeric_profile(PREDICTION, _prediction_array(predictions), 0)
    if kind != CATEGORICAL:
        raise ValueError(f"prediction_kind must be {NUMERIC!r} or {CATEGORICAL!r}, not {kind!r}")
    values, counts, missing = class_values(predictions)
    order = sorted(range(len(values)), key=lambda i: int(values[i]))
    return FeatureProfile(
        name=PREDICTION,
        kind=CATEGORICAL,
        n=int(counts.sum()) + missing,
        missing=missing,
        categories=[values[i] for i in order],
        category_counts=[int(counts[i]) for i in order],
    )


def build_profile(
    frame: pl.DataFrame,
    features: list[str],
    categorical: set[str],
    predictions: np.ndarray | None = None,
    source: str = "",
    prediction_kind: str = NUMERIC,
) -> ReferenceProfile:
    """Profile `features` of the reference `frame` (and the model's `predictions` on it:
    `prediction_kind` "numeric" bins them, "categorical" counts classes: a multiclass model's
    predicted class indices)."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DataError(f"reference data lacks feature column(s): {', '.join(missing)}")

    def one(name: str) -> FeatureProfile:
        series = frame[name]
        if name in categorical or _is_categorical_dtype(series.dtype):
            return _categorical_profile(name, series)
        values, nulls = _numeric_values(series)
        return _numeric_profile(name, values, nulls)

    parallel = frame.height >= PARALLEL_MIN_ROWS and len(features) > 1
    profiles = list(_executor().map(one, features)) if parallel else [one(f) for f in features]
    pred = None if predictions is None else prediction_profile(predictions, prediction_kind)
    return ReferenceProfile(
        features={p.name: p for p in profiles},
        prediction=pred,
        n_rows=int(frame.height),
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        source=source,
    )
