"""Live serving statistics per variant (production, canary) from the prediction log.

Everything is aggregated by DuckDB over the `predictions` view (and the `labels` view for the
model metric), in one statement per call: request counts and rates, latency quantiles
(`quantile_cont`, i.e. linear interpolation, like numpy's default percentile), error counts,
a histogram of the outputs with the same edges for every variant, a request-rate series for
a sparkline, and the model metric on the predictions whose delayed label has arrived.

Both follow the served model's task (`ModelTask`; the log keeps `scalar_output`'s number):
binary: AUC by the rank-sum formula, outputs binned over [0, 1]; multiclass: accuracy (the
logged class index equals the label's), one bin per class (its frequency, named by the class);
regression: RMSE and MAE, outputs binned over their range. Without a task (older callers):
AUC when the labels are 0/1 with both present, MAE otherwise.

Time: the log's `ts` is a UTC instant (TIMESTAMPTZ in DuckDB). `now` may be given naive (taken
as UTC) or aware; every bound is passed to DuckDB as an aware UTC datetime, and times come
back as epoch microseconds, so DuckDB's session time zone never plays a part.

The window is `(now - window_s, now]`. Filters on `ts` come first so DuckDB skips the row
groups (and decodes no other column) outside the window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from workbench.serving.responses import class_key
from workbench.serving.stats_summary import LIVE_METRICS
from workbench.store.db import Db
from workbench.store.parquet_log import utcnow
from workbench.tasks import ModelTask
from workbench.value import Outcomes, per_1k

if TYPE_CHECKING:
    from workbench.config_monitoring import ValueSection

#: Histogram bins over the outputs.
HIST_BINS = 10

# $1 window start (exclusive), $2 now (inclusive), $3 model or NULL, $4 metric start,
# $5 metric start inclusive (bool), $6 window length in microseconds, $7 buckets,
# $8 window start in epoch microseconds, $9 histogram kind ('auto': [0, 1] when every output
# is in it, else the range; 'value': the range; 'class': one bin per class index), $10 bins,
# $11 the binary threshold (a labelled prediction is a tp/fp/fn/tn at it, for its value).
_SQL = """
WITH w AS MATERIALIZED (
    SELECT variant, version, output, latency_ms, status, epoch_us(ts) AS us
    FROM predictions
    WHERE ts > $1 AND ts <= $2 AND ($3::VARCHAR IS NULL OR model = $3) AND variant IS NOT NULL
),
ok AS (
    SELECT variant, output FROM w WHERE status < 400 AND output IS NOT NULL AND isfinite(output)
),
bounds AS (
    SELECT
        CASE WHEN $9 = 'class' THEN 0.0
             WHEN $9 = 'auto' AND min(output) >= 0 AND max(output) <= 1 THEN 0.0
             ELSE min(output) END AS lo,
        CASE WHEN $9 = 'class' THEN CAST($10 AS DOUBLE)
             WHEN $9 = 'auto' AND min(output) >= 0 AND max(output) <= 1 THEN 1.0
             ELSE max(output) END AS hi
    FROM ok
),
span AS (  -- widen a degenerate range (every output equal, outside [0, 1])
    SELECT CASE WHEN hi > lo THEN lo ELSE lo - 0.5 END AS lo,
           CASE WHEN hi > lo THEN hi ELSE hi + 0.5 END AS hi
    FROM bounds
),
hist AS (
    SELECT variant, list({'bin': bin, 'n': n}) AS bins
    FROM (
        SELECT variant,
               least(greatest(CASE WHEN $9 = 'class' THEN CAST(round(output) AS BIGINT)
                   ELSE CAST(floor((output - span.lo) / (span.hi - span.lo) * $10) AS BIGINT)
                   END, 0), $10 - 1) AS bin,
               count(*) AS n
        FROM ok, span
        GROUP BY ALL
    )
    GROUP BY variant
),
series AS (
    SELECT variant, list({'bucket': bucket, 'n': n}) AS buckets
    FROM (
        SELECT variant,
               least((us - $8) * $7 // $6, $7 - 1) AS bucket,
               count(*) AS n
        FROM w
        GROUP BY ALL
    )
    GROUP BY variant
),
labeled AS (
    SELECT p.variant, p.output, l.label
    FROM predictions p JOIN labels l USING (request_id)
    WHERE (p.ts > $4 OR ($5 AND p.ts = $4)) AND p.ts <= $2
      AND ($3::VARCHAR IS NULL OR p.model = $3) AND p.variant IS NOT NULL
      AND p.output IS NOT NULL AND isfinite(p.output) AND isfinite(l.label)
),
ranked AS (  -- average ranks of the outputs, ties sharing the mean of their ranks
    SELECT variant, output, label,
           rank() OVER (PARTITION BY variant ORDER BY output)
             + (count(*) OVER (PARTITION BY variant, output) - 1) / 2.0 AS r
    FROM labeled
),
metric AS (
    SELECT variant,
           count(*) AS labeled,
           bool_and(label = 0 OR label = 1) AS binary,
           count(*) FILTER (WHERE label = 1) AS pos,
           count(*) FILTER (WHERE label = 0) AS neg,
           sum(r) FILTER (WHERE label = 1) AS pos_rank_sum,
           avg(abs(output - label)) AS mae,
           sqrt(avg((output - label) * (output - label))) AS rmse,
           avg(CASE WHEN output = label THEN 1.0 ELSE 0.0 END) AS accuracy,
           count(*) FILTER (WHERE label = 1 AND output >= $11) AS tp,
           count(*) FILTER (WHERE label = 0 AND output >= $11) AS fp,
           count(*) FILTER (WHERE label = 1 AND output < $11) AS fn,
           count(*) FILTER (WHERE label = 0 AND output < $11) AS tn,
           sum(abs(output - label)) AS abs_error_sum
    FROM ranked
    GROUP BY variant
),
agg AS (
    SELECT variant,
           array_agg(DISTINCT version ORDER BY version) FILTER (WHERE version IS NOT NULL)
               AS versions,
           count(*) AS requests,
           quantile_cont(latency_ms, [0.5, 0.95, 0.99])
               FILTER (WHERE status < 400 AND isfinite(latency_ms)) AS q,
           count(*) FILTER (WHERE status >= 500) AS errors,
           count(*) FILTER (WHERE status >= 400 AND status < 500) AS client_errors,
           avg(output) FILTER (WHERE status < 400 AND isfinite(output)) AS prediction_mean
    FROM w
    GROUP BY variant
)
SELECT agg.*, hist.bins, series.buckets,
       metric.labeled, metric.binary, metric.pos, metric.neg, metric.pos_rank_sum, metric.mae,
       metric.rmse, metric.accuracy, metric.tp, metric.fp, metric.fn, metric.tn,
       metric.abs_error_sum,
       (SELECT lo FROM span) AS lo, (SELECT hi FROM span) AS hi,
       (SELECT min(us) FROM w) AS first_us,
       EXISTS (SELECT 1 FROM predictions
               WHERE ts <= $1 AND ($3::VARCHAR IS NULL OR model = $3)) AS seen_before
FROM agg
LEFT JOIN hist USING (variant)
LEFT JOIN series USING (variant)
LEFT JOIN metric USING (variant)
ORDER BY variant
"""


@dataclass
class VariantStats:
    variant: str  # "production" | "canary"
    versions: list[int]  # model versions seen in the window (normally one)
    requests: int  # requests in the window (all statuses)
    rps: float  # requests / seconds of the window that the log covers (at least 1 s)
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None  # latency quantiles over successful (status < 400) requests
    errors: int  # status >= 500
    client_errors: int  # 400 <= status < 500
    error_rate: float  # errors / requests (0.0 when no requests)
    prediction_mean: float | None  # None for multiclass (a mean class index means nothing)
    prediction_hist: list[int]  # counts of the successful requests' outputs, per bin
    hist_edges: list[float]  # the bins' edges, one more than bins (the same for every variant)
    labeled: int  # predictions (in the metric window) that have a label
    metric_name: str | None  # the task's: auc, accuracy, rmse (no task: auc, mae or None)
    metric: float | None  # None until labels make it computable
    rate_series: list[float]  # requests per second per time bucket, oldest first
    task: str | None = None  # binary | multiclass | regression (None: not known)
    metrics: dict[str, float | None] = field(default_factory=dict)  # regression: rmse and mae
    hist_labels: list[str] = field(default_factory=list)  # multiclass: each bin's class
    #: the labelled predictions' outcomes (binary: tp/fp/fn/tn at the threshold; regression:
    #: abs_error, the sum of |error|, and n); empty for multiclass or without labels
    outcomes: dict[str, float] = field(default_factory=dict)
    value_per_1k: float | None = None  # `[monitoring.value]` per 1,000 labelled predictions
    value_unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _as_utc(t: datetime | None) -> datetime:
    if t is None:
        return utcnow()
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _auc(row: dict[str, Any]) -> float | None:
    pos, neg = row["pos"], row["neg"]
    if not (row["labeled"] and row["binary"] and pos and neg):
        return None
    # Mann-Whitney: AUC = (sum of the positives' ranks - pos(pos+1)/2) / (pos * neg)
    return float((row["pos_rank_sum"] - pos * (pos + 1) / 2) / (pos * neg))


def _metrics(row: dict[str, Any], task: ModelTask | None) -> dict[str, float | None]:
    """The live metrics of a variant's row, by name (the main one first)."""
    if task is None:  # the labels say: AUC for 0/1 labels of both classes, else MAE
        if not row["labeled"]:
            return {}
        auc = _auc(row)
        return {"auc": auc} if auc is not None else {"mae": row["mae"]}
    labeled = bool(row["labeled"])
    found = {"auc": _auc(row), "accuracy": row["accuracy"], "rmse": row["rmse"]}
    found["mae"] = row["mae"]
    return {name: found[name] if labeled else None for name in LIVE_METRICS[task.type]}


def variant_stats(
    db: Db,
    window_s: float = 60.0,
    *,
    model: str | None = None,
    now: datetime | None = None,
    buckets: int = 30,
    metric_since: datetime | None = None,
    task: ModelTask | None = None,
    value: ValueSection | None = None,
) -> dict[str, VariantStats]:
    """Statistics of each variant over the last `window_s` seconds, keyed by variant; a
    variant with no request in the window is absent. The model metric covers predictions
    since `metric_since` (default: the window start), since labels arrive late. `task` (the
    served model's) picks the metric and the histogram's bins; `value` (`[monitoring.value]`)
    prices the labelled predictions' outcomes (`value_per_1k`)."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    end = _as_utc(now)
    window_us = max(1, round(window_s * 1_000_000))
    start = end - timedelta(microseconds=window_us)
    start_us = (start - _EPOCH) // _US
    since = start if metric_since is None else _as_utc(metric_since)
    kind = task.type if task is not None else None
    hist_kind = {"multiclass": "class", "regression": "value"}.get(kind or "", "auto")
    bins = len(task.classes) if task is not None and kind == "multiclass" else HIST_BINS
    params = [start, end, model, since, metric_since is not None, window_us, buckets, start_us]
    threshold = task.threshold if task is not None else 0.5
    rows = db.rows(_SQL, [*params, hist_kind, bins, threshold])
    if not rows:
        return {}

    lo, hi = rows[0]["lo"], rows[0]["hi"]
    if hist_kind == "class":
        lo, hi = 0.0, float(bins)
    elif lo is None or hi is None:  # no successful output at all: show the probability range
        lo, hi = 0.0, 1.0
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    edges[-1] = hi
    names = [class_key(c) for c in task.classes] if task and kind == "multiclass" else []
    end_us = (end - _EPOCH) // _US
    first_us = rows[0]["first_us"]
    covered_s = window_s if rows[0]["seen_before"] else (end_us - first_us) / 1_000_000
    span_s = max(1.0, min(window_s, covered_s))
    bucket_s = window_s / buckets

    out: dict[str, VariantStats] = {}
    for row in rows:
        hist = [0] * bins
        for b in row["bins"] or []:
            hist[b["bin"]] += b["n"]
        series = [0.0] * buckets
        for b in row["buckets"] or []:
            series[b["bucket"]] += b["n"] / bucket_s
        q = row["q"] or [None, None, None]
        metrics = _metrics(row, task)
        name = next(iter(metrics), None)
        requests = row["requests"]
        priced = kind or ("binary" if row["binary"] else "regression")  # no task: the labels say
        outcomes = _outcomes(row, priced)
        out[row["variant"]] = VariantStats(
            variant=row["variant"],
            versions=[int(v) for v in row["versions"] or []],
            requests=requests,
            rps=requests / span_s,
            p50_ms=q[0],
            p95_ms=q[1],
            p99_ms=q[2],
            errors=row["errors"],
            client_errors=row["client_errors"],
            error_rate=row["errors"] / requests if requests else 0.0,
            prediction_mean=None if kind == "multiclass" else row["prediction_mean"],
            prediction_hist=hist,
            hist_edges=edges,
            labeled=row["labeled"] or 0,
            metric_name=name,
            metric=metrics[name] if name else None,
            rate_series=series,
            task=kind,
            metrics=metrics,
            hist_labels=names,
            outcomes=outcomes,
            value_per_1k=per_1k(value, priced, outcomes) if value and outcomes else None,
            value_unit=value.unit if value else "",
        )
    return out


def _outcomes(row: dict[str, Any], kind: str | None) -> dict[str, float]:
    """The labelled rows' outcomes, as `workbench.value.Outcomes` counts them."""
    if not row["labeled"] or kind not in ("binary", "regression"):
        return {}
    if kind == "regression":
        return Outcomes(abs_error=float(row["abs_error_sum"]), n=row["labeled"]).to_dict()
    if not row["binary"]:
        return {}
    return Outcomes(*(float(row[k]) for k in ("tp", "fp", "fn", "tn"))).to_dict()


def _delta(canary: float | None, prod: float | None) -> float | None:
    if canary is None or prod is None:
        return None
    return canary - prod


def compare(prod: VariantStats, canary: VariantStats) -> dict[str, float | None]:
    """Canary minus production. `metric_delta` is None unless both have the same metric."""
    same_metric = prod.metric_name is not None and prod.metric_name == canary.metric_name
    return {
        "error_rate_delta": canary.error_rate - prod.error_rate,
        "p99_delta_ms": _delta(canary.p99_ms, prod.p99_ms),
        "p50_delta_ms": _delta(canary.p50_ms, prod.p50_ms),
        "metric_delta": _delta(canary.metric, prod.metric) if same_metric else None,
        "prediction_mean_delta": _delta(canary.prediction_mean, prod.prediction_mean),
        "value_per_1k_delta": _delta(canary.value_per_1k, prod.value_per_1k),
    }


_ERRORS_SQL = """
SELECT error, status, count(*) AS count, epoch_us(max(ts)) AS last_us
FROM predictions
WHERE ts > $1 AND ts <= $2 AND status >= 400
  AND ($3::VARCHAR IS NULL OR variant = $3) AND ($4::VARCHAR IS NULL OR model = $4)
GROUP BY error, status
ORDER BY count DESC, last_us DESC, status, error
LIMIT $5
"""


def top_errors(
    db: Db,
    window_s: float = 300,
    *,
    variant: str | None = None,
    limit: int = 5,
    now: datetime | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """The most frequent failures (status >= 400) in the window: error text, status, count and
    last_seen (aware UTC datetime), most frequent first."""
    end = _as_utc(now)
    start = end - timedelta(seconds=window_s)
    rows = db.rows(_ERRORS_SQL, [start, end, variant, model, limit])
    return [
        {
            "error": r["error"],
            "status": r["status"],
            "count": r["count"],
            "last_seen": _EPOCH + r["last_us"] * _US,
        }
        for r in rows
    ]


__all__ = ["HIST_BINS", "LIVE_METRICS", "VariantStats", "compare", "top_errors", "variant_stats"]
