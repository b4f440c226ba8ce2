"""Segments and fairness of live traffic: `report(project, window, version)`.

The server labels every logged prediction with its groups (the `segments` map column,
training.fairness.Segmenter). Here DuckDB does the heavy lifting over the Parquet logs: the
window's predictions joined with their labels by request_id, unnested by segment feature and
aggregated into cells per (feature, group, time slice, cell key) in ONE GROUP BY; numpy then
computes every group's count, metric, positive rate and their Poisson-bootstrap intervals
from the cells (training.fairness_stats), and the fairness gaps of the `[monitoring]
sensitive` features. The holdout's measures come from the version's fairness.json.

`positive_rate`: binary, the share of predictions at or above the model's threshold;
multiclass, the share predicted as the last class; regression, the mean prediction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import UsageError
from workbench.project import Project
from workbench.store.parquet_log import utcnow
from workbench.tasks import ModelTask, higher_is_better
from workbench.training import fairness_stats as fs

if TYPE_CHECKING:
    from workbench.store.db import Db

#: Time slices of each group's series over the window.
SERIES_BUCKETS = 8

_BASE = """
WITH p AS (
    SELECT request_id, epoch_us(ts) AS us, output, segments FROM predictions
    WHERE model = $model AND ($version::BIGINT IS NULL OR version = $version)
      AND status = 200 AND output IS NOT NULL AND isfinite(output)
      AND segments IS NOT NULL AND ts >= $since AND ts <= $until
),
j AS (
    SELECT p.us, p.output, CASE WHEN isfinite(l.label) THEN l.label END AS label, p.segments
    FROM p LEFT JOIN labels l USING (request_id)
),
long AS (
    SELECT unnest(map_keys(segments)) AS feature, unnest(map_values(segments)) AS grp,
           least((us - $lo) * $buckets // $span, $buckets - 1) AS bucket, output, label
    FROM j
)
SELECT *, dense_rank() OVER (ORDER BY feature, grp) - 1 AS gid FROM (
    SELECT feature, grp, bucket, {key} AS key, count(*)::DOUBLE AS n{sums}
    FROM long GROUP BY ALL
)
"""

_BINARY_KEY = (
    "((CASE WHEN label = 0 OR label = 1 THEN CAST(label AS BIGINT) ELSE 2 END) * {bins} "
    "+ least(greatest(CAST(floor(output * {bins}) AS BIGINT), 0), {bins} - 1)) * 2 "
    "+ CAST(output >= $threshold AS BIGINT)"
)
_MULTI_KEY = (
    "(CASE WHEN label = round(label) AND label >= 0 AND label < $k THEN CAST(label AS BIGINT) "
    "ELSE $k END) * $k + least(greatest(CAST(round(output) AS BIGINT), 0), $k - 1)"
)
_REG_KEY = (
    "CASE WHEN label IS NOT NULL "
    "THEN CAST(floor(2 * log2(abs(output - label) + 1e-9)) AS BIGINT) "
    "ELSE 10000 + CAST(floor(4 * log2(abs(output) + 1e-9)) * sign(output) AS BIGINT) END"
)
_REG_SUMS = (
    ", count(label)::DOUBLE AS lab, sum(output) AS so, "
    "coalesce(sum(abs(output - label)), 0) AS sa, coalesce(sum((output - label) ^ 2), 0) AS ss"
)


def query(task: ModelTask) -> str:
    """The cells query for the task (parameters: model, version, since, until, lo, span,
    buckets, and threshold (binary) or k (multiclass))."""
    if task.type == "binary":
        return _BASE.format(key=_BINARY_KEY.format(bins=fs.SCORE_BINS), sums="")
    if task.type == "multiclass":
        return _BASE.format(key=_MULTI_KEY, sums="")
    return _BASE.format(key=_REG_KEY, sums=_REG_SUMS)


@dataclass
class SegmentReport:
    model: str
    version: int | None
    window: str
    task: str
    metric: str
    groups: list[dict[str, Any]] = field(default_factory=list)
    suppressed: int = 0
    fairness: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    note: str = ""
    rows: int = 0  # predictions in the window with segments
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "window": self.window,
            "task": self.task,
            "metric": self.metric,
            "groups": self.groups,
            "suppressed": self.suppressed,
            "fairness": self.fairness,
            "alerts": self.alerts,
            "note": self.note,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


def _task(project: Project, version: int | None) -> ModelTask:
    if version is not None:
        from workbench.monitoring.checks import load_task

        return load_task(project, version)
    cfg = project.config
    classes = list(cfg.task.classes or ([] if cfg.task.type == "regression" else [0, 1]))
    return ModelTask(cfg.task.type, classes, cfg.evaluation.threshold, cfg.data.target)


def report(
    project: Project,
    window: str | None = None,
    version: int | None = None,
    db: Db | None = None,
    now: datetime | None = None,
) -> SegmentReport:
    """Per segment group of `version` (default: what production serves) over `window`
    (default `[monitoring] window`): see the module docstring and the issue-14 contract."""
    from workbench.monitoring.checks import parse_window
    from workbench.serving import deployments
    from workbench.store.db import Db as DbClass

    cfg = project.config
    mon = cfg.monitoring
    if not mon.segments:
        raise UsageError(
            'no segments to report: set [monitoring] segments = ["feature", ...] in '
            "workbench.toml (and sensitive = [...] for fairness)"
        )
    started = time.monotonic()
    window = window or mon.window
    parse_window(window)
    if version is None:
        version = deployments.production_version(project)
    task = _task(project, version)
    with DbClass.borrow(db, project.logs_root) as use:
        out = compute(use, cfg.model_name, version, task, cfg.metric, mon, window, now)
    _holdout(out, project, version)
    out.groups = worst_first(out.groups, higher_is_better(out.metric))
    out.seconds = time.monotonic() - started
    return out


def compute(
    db: Db,
    model: str,
    version: int | None,
    task: ModelTask,
    configured_metric: str,
    mon: Any,
    window: str,
    now: datetime | None = None,
) -> SegmentReport:
    """The live part of the report from the logs `db` reads: groups, suppressed, fairness
    and alerts (`mon`: the `[monitoring]` section)."""
    from workbench.monitoring.checks import parse_window

    metric, note = fs.cell_metric(task.type, configured_metric)
    until = now or utcnow()
    since = until - parse_window(window)
    out = SegmentReport(model, version, window, task.type, metric, note=note)
    lo = int(since.timestamp() * 1e6)
    params: dict[str, Any] = {
        "model": model, "version": version, "since": since, "until": until,
        "lo": lo, "span": max(1, int(until.timestamp() * 1e6) - lo),
        "buckets": SERIES_BUCKETS,
    }  # fmt: skip
    if task.type == "binary":
        params["threshold"] = task.threshold
    elif task.type == "multiclass":
        params["k"] = max(len(task.classes), 2)
    # numpy, not Arrow: pyarrow's to_numpy imports pandas (0.5 s of a CLI call)
    table = db.retrying(lambda: db.cursor().sql(query(task), params=params).fetchnumpy())
    if table["n"].size:
        _live(out, table, task, mon, since)
    return out


def _column(table: dict[str, Any], name: str) -> np.ndarray:
    return np.asarray(table[name])


def _live(
    out: SegmentReport, table: dict[str, Any], task: ModelTask, mon: Any, since: datetime
) -> None:
    group = _column(table, "gid").astype(np.int64)
    first = np.zeros(int(group.max()) + 1, dtype=np.int64)
    first[group[::-1]] = np.arange(group.size)[::-1]  # a cell of each group
    features, labels = _column(table, "feature")[first], _column(table, "grp")[first]
    names = [(str(f), str(g)) for f, g in zip(features, labels, strict=True)]
    bucket = _column(table, "bucket").astype(np.int64)
    key, n = _column(table, "key").astype(np.int64), _column(table, "n").astype(np.float64)
    sums = None
    if task.type == "regression":
        cols = ("lab", "so", "sa", "ss")
        sums = np.stack([_column(table, c).astype(np.float64) for c in cols], 1)
    k = max(len(task.classes), 2)
    cells = fs.Cells(task.type, len(names), group, key, n, k, sums).collapsed()
    summary = fs.summarize(cells, names, out.metric, mon, "live")
    feature_of = np.unique(np.array([f for f, _ in names], dtype=object), return_inverse=True)[1]
    out.rows = round(float(np.bincount(feature_of[group], n).max()))  # a feature per row
    out.suppressed = summary["suppressed"]
    out.fairness += summary["fairness"]
    out.alerts += summary["alerts"]
    sliced = fs.Cells(task.type, len(names) * SERIES_BUCKETS, group * SERIES_BUCKETS + bucket,
                      key, n, k, sums)  # fmt: skip
    stats = fs.statistics(sliced, out.metric)
    index = {name: g for g, name in enumerate(names)}
    starts = _starts(since, out.window)
    for row in summary["groups"]:
        g = index[(row["feature"], row["group"])]
        row["series"] = [
            {
                "start": starts[b],
                "count": round(float(stats["count"][0, g * SERIES_BUCKETS + b])),
                "metric": fs.finite(stats["metric"][0, g * SERIES_BUCKETS + b]),
                "positive_rate": fs.finite(stats["rate"][0, g * SERIES_BUCKETS + b]),
            }
            for b in range(SERIES_BUCKETS)
        ]
    out.groups = summary["groups"]


def _starts(since: datetime, window: str) -> list[str]:
    from workbench.monitoring.checks import parse_window

    step = parse_window(window) / SERIES_BUCKETS
    return [(since + step * b).isoformat(timespec="seconds") for b in range(SERIES_BUCKETS)]


def _holdout(out: SegmentReport, project: Project, version: int | None) -> None:
    """The holdout's fairness measures stored with the version (fairness.json), if any."""
    if version is None:
        return
    from workbench.serving.predictors import model_dir_for
    from workbench.training import fairness

    try:
        stored = fairness.load(model_dir_for(project, version))
    except Exception:  # the model folder is gone: the live part still stands
        stored = None
    if not stored:
        return
    sensitive = set(project.config.monitoring.sensitive)
    for entry in stored.get("fairness", []):
        if entry.get("feature") in sensitive:
            out.fairness.append({**entry, "source": "holdout"})
    out.alerts += [a for a in stored.get("alerts", []) if a.split(":", 1)[0] in sensitive]


def worst_first(groups: list[dict[str, Any]], higher: bool) -> list[dict[str, Any]]:
    """Worst metric first (by its direction; groups without one last), then the largest
    gap of positive rate from the mean of the groups."""
    rates = [g["positive_rate"] for g in groups if g.get("positive_rate") is not None]
    mean = float(np.mean(rates)) if rates else 0.0

    def key(g: dict[str, Any]) -> tuple[bool, float, float]:
        m = g.get("metric")
        rate = g.get("positive_rate")
        gap = abs(rate - mean) if rate is not None else 0.0
        return (m is None, (m if higher else -m) if m is not None else 0.0, -gap)

    return sorted(groups, key=key)
