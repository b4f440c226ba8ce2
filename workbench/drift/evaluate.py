"""Drift checks: current data against a model's reference profile.

Tests (statistics in `drift_stats`, bins in `drift_profile`):

| kind        | test          | bins                          | score                          |
|-------------|---------------|-------------------------------|--------------------------------|
| numeric     | `psi`         | reference deciles, floor 1e-4 | PSI                            |
| numeric     | `kl`          | reference deciles, floor 1e-4 | KL(current ‖ reference), nats  |
| numeric     | `js`          | reference deciles             | Jensen-Shannon distance, base 2|
| numeric     | `wasserstein` | 100 reference percentiles     | W1 / reference std             |
| numeric     | `ks`          | 100 reference percentiles     | KS p-value (asymptotic)        |
| categorical | `psi`         | categories + unseen, floored  | PSI                            |
| categorical | `chi2`        | categories + unseen           | chi-square p-value             |
| categorical | `js`          | categories + unseen           | Jensen-Shannon distance        |

Every test is computed for every feature (`FeatureDrift.stats`); one decides the status: by
default `psi` (numeric and categorical), or the test a `FeatureRule` names for the feature
(rules are keyed by feature name; the key `"prediction"` applies to prediction drift, which
is numeric for probabilities and values and categorical for a multiclass model's predicted
classes: its test is then `psi` or `chi2` over class frequencies).

Thresholds `(warn, alert)` default to `DEFAULT_THRESHOLDS`. For distances the status is
"warn" when score >= warn and "alert" when score >= alert. For `ks` and `chi2` the score is
the p-value and the thresholds are significance levels: "warn" when p < 0.05, "alert" when
p < 0.01. (With large samples these tests flag even negligible shifts; PSI, JS and
Wasserstein measure the size of a shift instead.) A feature with no rows in the bins on
either side is "no_data".

Categories the reference did not list share one extra bin ("__unseen__", or the reference's
"__other__" tail when it pooled one), so an unseen category raises PSI and chi-square
instead of being dropped; their names and counts are reported in `FeatureDrift.unseen`.
Missing and non-finite values are excluded from the bins and reported per feature.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.drift import sources
from workbench.drift import stats as drift_stats
from workbench.drift.counter import CategoricalCounts, Counter, NumericCounts
from workbench.drift.profile import (
    CATEGORICAL,
    NUMERIC,
    OTHER,
    PREDICTION,
    FeatureProfile,
    ReferenceProfile,
)
from workbench.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

NUMERIC_TESTS = ("psi", "kl", "js", "wasserstein", "ks")
CATEGORICAL_TESTS = ("psi", "chi2", "js")
# (warn, alert). For ks and chi2 these are p-values: the status is raised when p < threshold.
DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "psi": (0.1, 0.25),
    "kl": (0.1, 0.25),
    "js": (0.1, 0.2),
    "wasserstein": (0.1, 0.2),
    "ks": (0.05, 0.01),
    "chi2": (0.05, 0.01),
}
P_VALUE_TESTS = frozenset({"ks", "chi2"})
UNSEEN = "__unseen__"
HIST_MAX_CATEGORIES = 30  # categorical bars drawn; the rest pooled as "__rest__"
UNSEEN_REPORTED = 20
_STATUS_RANK = {"alert": 0, "warn": 1, "ok": 2, "no_data": 3}


@dataclass
class FeatureDrift:
    feature: str
    kind: str
    test: str  # the test that decides the status
    score: float  # that test's value (the p-value for ks/chi2); NaN when no data
    warn: float
    alert: float
    status: str  # "ok" | "warn" | "alert" | "no_data"
    stats: dict[str, float | None]
    n_ref: int
    n_cur: int
    missing: int
    nonfinite: int
    missing_ref: int
    nonfinite_ref: int
    unseen: dict[str, int] = field(default_factory=dict)
    ref_hist: list[float] = field(default_factory=list)
    cur_hist: list[float] = field(default_factory=list)
    hist_labels: list[str] = field(default_factory=list)
    cur_mean: float | None = None
    ref_mean: float | None = None

    @property
    def severity(self) -> float:
        """How far past its thresholds the score is: 1.0 at the alert threshold."""
        s = self.score
        if s is None or not math.isfinite(s):
            return -math.inf if s is None or math.isnan(s) else math.inf
        if self.test in P_VALUE_TESTS:
            if s <= 0:
                return math.inf
            return math.log(s) / math.log(self.alert) if 0 < self.alert < 1 else -s
        return s / self.alert if self.alert > 0 else s

    def to_dict(self) -> dict[str, Any]:
        safe: dict[str, Any] = _json_safe(asdict(self))
        return safe


@dataclass
class DriftReport:
    features: list[FeatureDrift]  # alert first, then warn, ok, no_data; worst first within
    prediction: FeatureDrift | None
    n_rows: int
    status: str  # worst status: "alert" | "warn" | "ok" | "no_data"
    alerts: int
    warnings: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "n_rows": self.n_rows,
            "status": self.status,
            "alerts": self.alerts,
            "warnings": self.warnings,
            "seconds": _json_safe(self.seconds),
        }


@dataclass
class FeatureRule:
    test: str | None = None
    warn: float | None = None
    alert: float | None = None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def _f(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _props(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total > 0 else [0.0] * int(counts.size)


def _numeric_stats(fp: FeatureProfile, st: NumericCounts) -> dict[str, float | None]:
    ref_dec = np.asarray(fp.decile_counts, dtype=np.float64)
    ref_fine = np.asarray(fp.fine_counts, dtype=np.float64)
    cur_dec = st.decile_counts.astype(np.float64)
    cur_fine = st.fine_counts.astype(np.float64)
    if ref_dec.sum() <= 0 or cur_dec.sum() <= 0 or ref_dec.size != cur_dec.size:
        return dict.fromkeys(("psi", "kl", "js", "wasserstein", "ks", "ks_p"))
    d, p = drift_stats.ks(ref_fine, cur_fine)
    w = drift_stats.wasserstein(
        fp.fine_centers, ref_fine, cur_fine, fp.std or 1.0, cur_centers=st.fine_cur_centers()
    )
    return {
        "psi": _f(drift_stats.psi(ref_dec, cur_dec)),
        "kl": _f(drift_stats.kl(ref_dec, cur_dec)),
        "js": _f(drift_stats.js_distance(ref_dec, cur_dec)),
        "wasserstein": _f(w),
        "ks": _f(d),
        "ks_p": _f(p),
    }


def _category_bins(fp: FeatureProfile, st: CategoricalCounts) -> tuple[np.ndarray, np.ndarray, str]:
    ref_map = dict(zip(fp.categories, fp.category_counts, strict=False))
    ref = np.array([ref_map[c] for c in st.listed] + [ref_map.get(OTHER, 0)], dtype=np.float64)
    cur = st.counts.astype(np.float64)
    label = OTHER if OTHER in ref_map else UNSEEN
    if ref[-1] == 0 and cur[-1] == 0:  # no extra bin needed
        ref, cur = ref[:-1], cur[:-1]
    return ref, cur, label


def _categorical_stats(ref: np.ndarray, cur: np.ndarray) -> dict[str, float | None]:
    if ref.sum() <= 0 or cur.sum() <= 0:
        return dict.fromkeys(("psi", "chi2", "chi2_p", "js"))
    chi, p = drift_stats.chi_square(ref, cur)
    return {
        "psi": _f(drift_stats.psi(ref, cur)),
        "chi2": _f(chi),
        "chi2_p": _f(p),
        "js": _f(drift_stats.js_distance(ref, cur)),
    }


def _decide(
    name: str, kind: str, stats: dict[str, float | None], rule: FeatureRule | None, default: str
) -> tuple[str, float, float, float, str]:
    allowed = NUMERIC_TESTS if kind == NUMERIC else CATEGORICAL_TESTS
    test = (rule.test if rule and rule.test else default).lower()
    if test not in allowed:
        raise UsageError(
            f"feature {name!r}: test {test!r} is not one of {', '.join(allowed)} "
            f"for a {kind} feature"
        )
    warn, alert = DEFAULT_THRESHOLDS[test]
    if rule and rule.warn is not None:
        warn = float(rule.warn)
    if rule and rule.alert is not None:
        alert = float(rule.alert)
    key = {"ks": "ks_p", "chi2": "chi2_p"}.get(test, test)
    value = stats.get(key)
    if value is None or not math.isfinite(value):
        return test, math.nan, warn, alert, "no_data"
    if test in P_VALUE_TESTS:
        status = "alert" if value < alert else "warn" if value < warn else "ok"
    else:
        status = "alert" if value >= alert else "warn" if value >= warn else "ok"
    return test, float(value), warn, alert, status


def _hist_label(x: float) -> str:
    return f"{x:.4g}"


def _numeric_drift(
    name: str, fp: FeatureProfile, st: NumericCounts, rule: FeatureRule | None, default: str
) -> FeatureDrift:
    stats = _numeric_stats(fp, st)
    test, score, warn, alert, status = _decide(name, NUMERIC, stats, rule, default)
    edges = fp.hist_edges
    return FeatureDrift(
        feature=name,
        kind=NUMERIC,
        test=test,
        score=score,
        warn=warn,
        alert=alert,
        status=status,
        stats=stats,
        n_ref=fp.n,
        n_cur=st.n,
        missing=st.missing,
        nonfinite=st.nonfinite,
        missing_ref=fp.missing,
        nonfinite_ref=fp.nonfinite,
        ref_hist=_props(np.asarray(fp.hist_counts, dtype=np.float64)),
        cur_hist=_props(st.hist_counts.astype(np.float64)),
        hist_labels=[_hist_label(e) for e in edges[:-1]] if edges else [],
        cur_mean=st.mean,
        ref_mean=fp.mean,
    )


def _categorical_drift(
    name: str, fp: FeatureProfile, st: CategoricalCounts, rule: FeatureRule | None, default: str
) -> FeatureDrift:
    ref, cur, extra = _category_bins(fp, st)
    stats = _categorical_stats(ref, cur)
    test, score, warn, alert, status = _decide(name, CATEGORICAL, stats, rule, default)
    labels = [*st.listed, extra][: ref.size]
    if ref.size > HIST_MAX_CATEGORIES:
        k = HIST_MAX_CATEGORIES - 1
        labels = [*labels[:k], "__rest__"]
        ref = np.concatenate((ref[:k], [ref[k:].sum()]))
        cur = np.concatenate((cur[:k], [cur[k:].sum()]))
    return FeatureDrift(
        feature=name,
        kind=CATEGORICAL,
        test=test,
        score=score,
        warn=warn,
        alert=alert,
        status=status,
        stats=stats,
        n_ref=fp.n,
        n_cur=st.n,
        missing=st.missing,
        nonfinite=0,
        missing_ref=fp.missing,
        nonfinite_ref=0,
        unseen=st.top_unseen(UNSEEN_REPORTED),
        ref_hist=_props(ref),
        cur_hist=_props(cur),
        hist_labels=labels,
    )


def _sort_key(fd: FeatureDrift) -> tuple[int, float, str]:
    return (_STATUS_RANK.get(fd.status, 9), -fd.severity, fd.feature)


def evaluate(
    profile: ReferenceProfile,
    counter: Counter,
    rules: dict[str, FeatureRule] | None = None,
    default_numeric: str = "psi",
    default_categorical: str = "psi",
    min_rows: int = 0,
) -> DriftReport:
    """The drift report for the data counted in `counter`. With fewer than `min_rows` rows
    nothing is judged: every statistic is reported, every status is "no_data" (a handful of
    rows cannot show drift, and PSI on them would alert on noise)."""
    t0 = time.perf_counter()
    rules = rules or {}
    out: list[FeatureDrift] = []
    for name in counter.features:
        fp = profile.features[name]
        st = counter.states[name]
        rule = rules.get(name)
        if isinstance(st, NumericCounts):
            out.append(_numeric_drift(name, fp, st, rule, default_numeric))
        else:
            out.append(_categorical_drift(name, fp, st, rule, default_categorical))
    out.sort(key=_sort_key)
    pred = None
    if (
        profile.prediction is not None
        and counter.prediction is not None
        and counter.prediction.n > 0
    ):
        pp, ps, rule = profile.prediction, counter.prediction, rules.get(PREDICTION)
        if isinstance(ps, NumericCounts):
            pred = _numeric_drift(PREDICTION, pp, ps, rule, default_numeric)
        else:
            pred = _categorical_drift(PREDICTION, pp, ps, rule, default_categorical)
    every = [*out, pred] if pred else out
    if counter.rows < min_rows:
        for fd in every:
            fd.status = "no_data"
    alerts = sum(f.status == "alert" for f in every)
    warnings = sum(f.status == "warn" for f in every)
    statuses = {f.status for f in every}
    status = next((s for s in ("alert", "warn", "ok") if s in statuses), "no_data")
    return DriftReport(
        features=out,
        prediction=pred,
        n_rows=counter.rows,
        status=status,
        alerts=alerts,
        warnings=warnings,
        seconds=time.perf_counter() - t0,
    )


def _check_rules(profile: ReferenceProfile, rules: dict[str, FeatureRule] | None) -> None:
    """Fail fast (before reading data) on a rule naming an impossible test."""
    for name, rule in (rules or {}).items():
        fp = profile.features.get(name) or (profile.prediction if name == PREDICTION else None)
        if fp is None or rule.test is None:
            continue
        allowed = NUMERIC_TESTS if fp.kind == NUMERIC else CATEGORICAL_TESTS
        if rule.test.lower() not in allowed:
            raise UsageError(
                f"feature {name!r}: test {rule.test!r} is not one of {', '.join(allowed)} "
                f"for a {fp.kind} feature"
            )


def check_frame(
    profile: ReferenceProfile,
    frame: pl.DataFrame,
    predictions: np.ndarray | None = None,
    rules: dict[str, FeatureRule] | None = None,
    **kw: Any,
) -> DriftReport:
    """One-shot check of a frame (and the model's predictions on it).

    `kw`: `features` (subset of the profile's), `default_numeric`, `default_categorical`.
    """
    t0 = time.perf_counter()
    _check_rules(profile, rules)
    counter = Counter(profile, kw.pop("features", None))
    counter.update(frame, predictions)
    report = evaluate(profile, counter, rules, **kw)
    report.seconds = time.perf_counter() - t0
    return report


def check_batches(
    profile: ReferenceProfile,
    batches: Iterable[Any],
    rules: dict[str, FeatureRule] | None = None,
    features: list[str] | None = None,
    prediction_column: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    total: int = 0,
    **kw: Any,
) -> DriftReport:
    """Check batches (polars frames or Arrow batches) as they come; memory is one batch plus
    the counts. `on_progress(rows_done, total)` after each (`total` 0: unknown, and
    reported as the rows done)."""
    t0 = time.perf_counter()
    _check_rules(profile, rules)
    counter = Counter(profile, features)
    done = 0
    for batch in batches:
        preds = _column(batch, prediction_column) if prediction_column else None
        counter.update(batch, preds)
        done += len(batch)
        if on_progress is not None:
            on_progress(done, total or done)
    report = evaluate(profile, counter, rules, **kw)
    report.seconds = time.perf_counter() - t0
    return report


def _column(batch: Any, name: str) -> np.ndarray:
    """A column of a polars frame or an Arrow batch as numpy."""
    import pyarrow as pa

    col = batch[name]
    if isinstance(col, pa.Array | pa.ChunkedArray):
        return np.asarray(col.to_numpy(zero_copy_only=False))
    return np.asarray(col.to_numpy())


def check_parquet(
    profile: ReferenceProfile,
    path: Path | str,
    rules: dict[str, FeatureRule] | None = None,
    batch_rows: int = 500_000,
    on_progress: Callable[[int, int], None] | None = None,
    columns: list[str] | None = None,
    prediction_column: str | None = None,
    **kw: Any,
) -> DriftReport:
    """Check a Parquet file (or a folder or glob of them), streamed in batches.

    Memory is bounded by the batch (`batch_rows`, fewer rows on wide data: see
    `drift.sources`) plus one row group being decoded, not by the file. `columns`
    restricts the check to those profile features (default: all). The model's
    predictions, when the data holds them, come from `prediction_column`.
    `on_progress(rows_done, rows_total)` is called after each batch.
    """
    _check_rules(profile, rules)
    features = list(profile.features) if columns is None else list(columns)
    read = list(features)
    if prediction_column and prediction_column not in read:
        read.append(prediction_column)
    batches = sources.ParquetBatches(path, read, batch_rows)
    return check_batches(
        profile, batches, rules, features, prediction_column, on_progress, batches.total, **kw
    )


def check_csv(
    profile: ReferenceProfile,
    path: Path | str,
    rules: dict[str, FeatureRule] | None = None,
    batch_rows: int = 500_000,
    on_progress: Callable[[int, int], None] | None = None,
    columns: list[str] | None = None,
    **kw: Any,
) -> DriftReport:
    """Check a CSV file streamed in batches (polars infers the types from 10,000 rows)."""
    features = list(profile.features) if columns is None else list(columns)
    batches = sources.csv_batches(Path(path), features, batch_rows)
    return check_batches(profile, batches, rules, features, None, on_progress, 0, **kw)
