"""Performance before the labels arrive: confidence-based performance estimation (CBPE, as
NannyML does it) on the prediction log, beside the realized metric of the rows whose labels
came.

For a binary model each logged probability is calibrated with the map fitted on the holdout at
training (`training.calibration`, `calibration.json` beside the model), so that a row scored p
is positive with probability p. Under that assumption (the relation of features to label is
the one the holdout showed: covariate shift, not concept drift), every metric has an expected
value computable without a label:

- the expected confusion matrix at the model's threshold: expected TP = the sum of p over the
  rows predicted positive, FP = the sum of 1 - p over them, FN and TN likewise over the rows
  predicted negative; from it the expected accuracy, precision, recall and F1;
- the expected ROC AUC: the expected count of correctly ordered (positive, negative) pairs
  over the expected count of pairs, labels drawn independently as Bernoulli(p), ranked by the
  model's raw score (ties count one half). Exact for numerator and denominator; as a ratio of
  expectations it differs from E[AUC] by O(1/n). The same function given the true 0/1 labels
  instead of p is the realized AUC, so estimate and realization are measured alike.

Multiclass is not estimated: the log keeps the predicted class, not the class probabilities,
and the expected accuracy needs each row's calibrated probability of its predicted class.
Regression is not estimated: the mean and spread of the predictions are known, the error is
not without a model of each prediction's uncertainty (NannyML's DLE fits a second model).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import UsageError, WorkbenchError
from workbench.project import Project
from workbench.store.parquet_log import utcnow
from workbench.tasks import bare_metric

if TYPE_CHECKING:
    from workbench.store.db import Db

#: Metrics CBPE estimates (all higher-is-better), in the order they are shown.
ESTIMABLE: tuple[str, ...] = ("auc", "accuracy", "precision", "recall", "f1")
SERIES_BUCKETS = 8
METHOD = "CBPE: expected metrics from the calibrated probabilities (an estimate, not labels)"

_MULTICLASS_WHY = (
    "multiclass: the expected accuracy needs each row's calibrated probability of its "
    "predicted class, and the prediction log keeps the predicted class only"
)
_REGRESSION_WHY = (
    "regression: the mean and spread of the predictions are known, the error (rmse, mae, r2) "
    "is not without a model of each prediction's uncertainty (NannyML's DLE fits a second "
    "model on the holdout's errors; Workbench does not)"
)


# -- the expected metrics (pure numpy) ------------------------------------------------------


def expected_auc(score: Any, p: Any, presorted: bool = False) -> float | None:
    """The ROC AUC expected when row i is positive with probability p[i] (independently),
    rows ranked by `score`: E[pairs ordered right] / E[pairs], ties one half. With 0/1
    labels as `p` it is the realized AUC. None when no pair can exist. `presorted`: the
    rows come sorted by score, highest first."""
    s = np.asarray(score, dtype=np.float64)
    q = np.asarray(p, dtype=np.float64)
    if s.size < 2:
        return None
    if not presorted:
        order = np.argsort(s)[::-1]  # ties are grouped: no stable sort needed
        s, q = s[order], q[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(s)) + 1))
    pos = np.add.reduceat(q, starts)
    neg = np.add.reduceat(1.0 - q, starts)
    above = np.cumsum(pos) - pos  # expected positives ranked above each tie group
    self_pairs = float((q * (1.0 - q)).sum())  # a row is never paired with itself
    numerator = float((neg * (above + 0.5 * pos)).sum()) - 0.5 * self_pairs
    denominator = float(q.sum()) * float((1.0 - q).sum()) - self_pairs
    if denominator <= 1e-12:
        return None
    return min(1.0, max(0.0, numerator / denominator))


def expected_confusion(score: Any, p: Any, threshold: float) -> dict[str, float]:
    """The expected tp, fp, fn, tn at `threshold` (a row is predicted positive when its raw
    score is at least the threshold); with 0/1 labels as `p`, the realized counts."""
    s = np.asarray(score, dtype=np.float64)
    q = np.asarray(p, dtype=np.float64)
    predicted = s >= threshold
    tp = float(q[predicted].sum())
    fn = float(q[~predicted].sum())
    return {
        "tp": tp,
        "fp": float(predicted.sum()) - tp,
        "fn": fn,
        "tn": float((~predicted).sum()) - fn,
    }


def metrics_of(
    score: Any, p: Any, threshold: float, presorted: bool = False
) -> dict[str, Any] | None:
    """The (expected, or with 0/1 labels realized) auc, accuracy, precision, recall, f1,
    positive_rate and confusion of rows scored `score`; None for no rows. A metric the rows
    cannot give (precision with nothing predicted positive) is None."""
    s = np.asarray(score, dtype=np.float64)
    q = np.asarray(p, dtype=np.float64)
    if s.size == 0:
        return None
    c = expected_confusion(s, q, threshold)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]

    def ratio(a: float, b: float) -> float | None:
        return a / b if b > 1e-12 else None

    return {
        "auc": expected_auc(s, q, presorted),
        "accuracy": (tp + tn) / s.size,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "positive_rate": float(q.mean()),
        "confusion": c,
    }


# -- the report -----------------------------------------------------------------------------


def performance(
    project: Project,
    window: str | None = None,
    version: int | None = None,
    db: Db | None = None,
) -> dict[str, Any]:
    """The estimated (CBPE) and realized performance of `version` (default: what production
    serves) over the predictions of the last `window` (default `[monitoring] window`):
    overall and in SERIES_BUCKETS time slices of the rows' span (oldest first)."""
    from workbench.monitoring.checks import load_task, parse_window
    from workbench.serving import deployments

    cfg = project.config
    if version is None:
        version = deployments.production_version(project)
        if version is None:
            raise UsageError(f"model {cfg.model_name!r} has no production version (use --version)")
    window = window or cfg.monitoring.window
    since = utcnow() - parse_window(window)
    task = load_task(project, version)
    metric = bare_metric(cfg.metric)
    if metric not in ESTIMABLE:
        metric = "auc"
    ts, output, label = _rows(project, version, since, db)
    labelled = np.isfinite(label)
    report: dict[str, Any] = {
        "model": cfg.model_name,
        "version": version,
        "window": window,
        "task": task.type,
        "metric": metric,
        "method": METHOD,
        "estimable": False,
        "why_not": None,
        "estimated": None,
        "realized": None,
        "reference": _reference(project, version),
        "labelled": int(labelled.sum()),
        "count": int(ts.size),
        "calibration": None,
        "series": [],
    }
    if task.type != "binary":
        return _not_binary(report, task, output, label, labelled)
    order = np.argsort(output)[::-1]  # one sort by score serves every metric below
    ts, output, label = ts[order], output[order], label[order]
    known = np.isin(label, (0.0, 1.0))
    if known.any():
        report["realized"] = metrics_of(output[known], label[known], task.threshold, True)
    if not cfg.monitoring.estimate:
        report["why_not"] = "[monitoring] estimate = false"
        return report
    from workbench.serving.predictors import model_dir_for
    from workbench.training import calibration as calibration_mod

    try:
        calibration = calibration_mod.load(project, model_dir_for(project, version), version)
    except calibration_mod.NotCalibrated as exc:
        report["why_not"] = f"calibration not available: {exc}"
        return report
    report["calibration"] = {
        "kind": calibration.kind, "n": calibration.n, "source": calibration.source,
    }  # fmt: skip
    if ts.size == 0:
        report["why_not"] = f"no predictions of version {version} in the last {window}"
        return report
    report["estimable"] = True
    p = calibration.apply(output)
    report["estimated"] = metrics_of(output, p, task.threshold, presorted=True)
    reference = report["reference"].get(metric)
    estimated = report["estimated"].get(metric)
    if reference is not None and estimated is not None:
        report["drop"] = reference - estimated
    report["series"] = _series(ts, output, p, label, task.threshold)
    return report


def _rows(
    project: Project, version: int, since: datetime, db: Db | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts in microseconds, output, label or NaN) of the window's served predictions; a
    request labelled twice counts its newest label."""
    import pyarrow.compute as pc

    from workbench.store.db import Db as DbClass

    sql = (
        "SELECT epoch_us(p.ts) AS ts, p.output AS output, l.label AS label FROM predictions p "
        "LEFT JOIN (SELECT request_id, arg_max(label, ts) AS label FROM labels "
        "WHERE label IS NOT NULL GROUP BY request_id) l USING (request_id) "
        "WHERE p.model = ? AND p.version = ? AND p.status = 200 AND p.output IS NOT NULL "
        "AND isfinite(p.output) AND p.ts >= ?"
    )
    with DbClass.borrow(db, project.logs_root) as use:
        table = use.arrow(sql, [project.config.model_name, version, since])

    def column(name: str, dtype: Any) -> np.ndarray:
        col = table.column(name)
        if dtype is np.float64:
            col = pc.fill_null(col.cast("double"), math.nan)
        return np.asarray(col.to_numpy(), dtype=dtype)

    return column("ts", np.int64), column("output", np.float64), column("label", np.float64)


def _reference(project: Project, version: int) -> dict[str, float]:
    """The version's holdout values of the estimable metrics (the registry's)."""
    from workbench.registry import versions as registry

    found = next((v for v in registry.list_versions(project) if v.version == version), None)
    metrics = dict(found.metrics) if found is not None else {}
    out = {}
    for name in ESTIMABLE:
        value = metrics.get(f"holdout_{name}")
        if value is not None and math.isfinite(float(value)):
            out[name] = float(value)
    return out


def _not_binary(
    report: dict[str, Any], task: Any, output: np.ndarray, label: np.ndarray, labelled: np.ndarray
) -> dict[str, Any]:
    """Multiclass and regression: what is known without labels, the realized metrics with
    them, and why the metric itself is not estimated."""
    from workbench.monitoring.performance import live_metrics, usable_rows

    keep = labelled & usable_rows(task, label, output)
    if keep.any():
        realized = live_metrics(task, label[keep], output[keep])
        report["realized"] = {k: (v if math.isfinite(v) else None) for k, v in realized.items()}
    if task.type == "regression":
        report["why_not"] = _REGRESSION_WHY
        if output.size:
            report["predictions"] = {"mean": float(output.mean()), "std": float(output.std())}
    else:
        report["why_not"] = _MULTICLASS_WHY
    return report


def _series(
    ts: np.ndarray, output: np.ndarray, p: np.ndarray, label: np.ndarray, threshold: float
) -> list[dict[str, Any]]:
    """Per time slice of the rows' span: count, labelled, the estimated and the realized
    metrics (no confusion). The rows come sorted by score, highest first (a mask keeps the
    order)."""
    lo, hi = int(ts.min()), int(ts.max()) + 1
    edges = np.linspace(lo, hi, SERIES_BUCKETS + 1)
    which = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, SERIES_BUCKETS - 1)
    known = np.isin(label, (0.0, 1.0))
    out = []
    for b in range(SERIES_BUCKETS):
        mask = which == b
        real = mask & known
        start = datetime.fromtimestamp(edges[b] / 1e6, UTC).isoformat(timespec="seconds")
        estimated = metrics_of(output[mask], p[mask], threshold, presorted=True)
        realized = metrics_of(output[real], label[real], threshold, presorted=True)
        for metrics in (estimated, realized):
            if metrics is not None:
                metrics.pop("confusion")
        out.append(
            {
                "start": start,
                "count": int(mask.sum()),
                "labelled": int(real.sum()),
                "estimated": estimated,
                "realized": realized,
            }
        )
    return out


# -- the monitor's policy -------------------------------------------------------------------


def drop_reason(report: dict[str, Any], limit: float | None) -> str | None:
    """The monitor's reason when the estimated metric fell below the holdout's by `limit`
    or more (`[monitor] estimated_metric_drop`), else None."""
    drop = report.get("drop")
    if limit is None or drop is None or drop < limit:
        return None
    name = report["metric"]
    return (
        f"estimated {name} down {drop:.3g} ({report['reference'][name]:.4g} -> "
        f"{report['estimated'][name]:.4g}; a CBPE estimate from {report['count']:,} "
        f"predictions' calibrated probabilities, not from labels; "
        f"[monitor] estimated_metric_drop {limit:g})"
    )


def estimated_decay(project: Project, result: Any) -> str | None:
    """For the monitor's policy: the reason to retrain on the estimate of the checked
    version's metric over the check's window (`result`: a checks.CheckResult), or None
    (off by default; not a binary model; nothing to estimate)."""
    limit = project.config.monitor.estimated_metric_drop
    if limit is None or getattr(result.task, "type", "binary") != "binary":
        return None
    window = str(result.window)
    if not re.fullmatch(r"[0-9.]+[smhd]", window):  # "last 5000": the drift window instead
        window = project.config.drift.window
    try:
        report = performance(project, window, result.version)
    except WorkbenchError:
        return None
    return drop_reason(report, limit)
