"""Performance decay: the task's metric on labelled predictions against the version's holdout.

The prediction log keeps one number per row (`training.scoring.scalar_output`): the
positive-class probability (binary), the predicted class index (multiclass), the value
(regression); the labels log keeps class indices (classification) or values. From them:

- binary: every binary metric (auc, logloss, accuracy, f1...), at the model's threshold;
- multiclass: the metrics of hard predictions (macro_f1, accuracy, weighted_f1). `logloss`
  needs class probabilities the log does not keep: a project whose metric is logloss is
  judged on accuracy live, with a note saying so;
- regression: rmse, mae, r2, mape.

The metric's direction comes from `workbench.tasks.higher_is_better`: `drop` is how much
WORSE the metric is than the holdout's, in the metric's units (a fall of AUC, a rise of
RMSE), and decay is `drop >= limit`: `[monitor] metric_drop` (in the metric's units), or
`[monitor] metric_drop_relative` times the holdout value when that is set (and by default
for rmse and mae, whose units are the target's: see `allowed_worsening`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.tasks import METRICS, ModelTask, bare_metric, higher_is_better

if TYPE_CHECKING:
    from workbench.config import MonitorSection

#: Metrics a task's live rows cannot give (the log holds the predicted class, not the
#: class probabilities), and the metric judged instead.
NOT_LIVE: dict[str, frozenset[str]] = {"multiclass": frozenset({"logloss"})}
FALLBACK = "accuracy"
#: Metrics in the target's units: without a configured limit, a share of the holdout value.
SCALE_METRICS = frozenset({"rmse", "mae"})
DEFAULT_RELATIVE = 0.05
#: Time slices of the window in the metric's series.
SERIES_BUCKETS = 12


def live_metric_name(task: str, configured: str) -> tuple[str, str]:
    """(the metric judged on live rows, a note when it is not the configured one)."""
    name = bare_metric(configured)
    if name in NOT_LIVE.get(task, frozenset()):
        note = (
            f"{name} needs class probabilities, which the prediction log does not keep "
            f"(it holds the predicted class): {FALLBACK} instead"
        )
        return FALLBACK, note
    if name not in METRICS.get(task, ()):
        return METRICS[task][0], f"{name} is not a {task} metric: {METRICS[task][0]} instead"
    return name, ""


def usable_rows(task: ModelTask, labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """The mask of rows the metric can use: finite label and output; for classification a
    label (and a multiclass output) that is a class index of the model."""
    y = np.asarray(labels, dtype=float)
    out = np.asarray(outputs, dtype=float)
    keep: np.ndarray = np.isfinite(y) & np.isfinite(out)
    if task.type in ("binary", "multiclass"):
        k = max(len(task.classes), 2)
        keep &= (y == np.round(y)) & (y >= 0) & (y < k)
        if task.type == "multiclass":
            keep &= (out == np.round(out)) & (out >= 0) & (out < k)
    return keep


def live_metrics(task: ModelTask, labels: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """The task's metrics computable from logged outputs (`training.evaluation`): NaN where
    the rows cannot give one (one class only for AUC, no rows)."""
    from workbench.training import evaluation

    y = np.asarray(labels, dtype=float)
    out = np.asarray(outputs, dtype=float)
    if y.size == 0:
        return {}
    if task.type == "binary":
        return evaluation.binary_metrics(y, out, task.threshold)
    if task.type == "regression":
        return evaluation.regression_metrics(y, out)
    # Multiclass: the predicted classes as one-hot rows over the classes present (labelled
    # or predicted), so macro averages run over those classes, as scikit-learn's do.
    present, codes = np.unique(np.concatenate((y, out)).astype(np.int64), return_inverse=True)
    width = max(int(present.size), 2)
    onehot = np.eye(width)[codes[y.size :]]
    metrics = evaluation.multiclass_metrics(codes[: y.size], onehot)
    for name in NOT_LIVE["multiclass"]:
        metrics.pop(name, None)
    return metrics


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def allowed_worsening(cfg: MonitorSection, name: str, reference: float | None) -> tuple[float, str]:
    """How much worse than the holdout the metric may get before it is a decay, and where
    that comes from: `metric_drop_relative` x the holdout value when set; else
    `metric_drop` (the metric's units) when set or when the metric has a fixed scale; for
    rmse and mae (in the target's units) left at the defaults, DEFAULT_RELATIVE of the
    holdout value, as 0.05 RMSE means nothing on a target in the thousands."""
    relative = cfg.metric_drop_relative
    if relative is None and name in SCALE_METRICS and "metric_drop" not in cfg.model_fields_set:
        relative = DEFAULT_RELATIVE
    if relative is not None and reference is not None:
        return float(relative) * abs(reference), f"{relative:.0%} of the holdout value"
    return float(cfg.metric_drop), "[monitor] metric_drop"


def assess(
    task: ModelTask,
    configured: str,
    reference_metrics: dict[str, float],
    labels: np.ndarray,
    outputs: np.ndarray,
    ts: np.ndarray,
    cfg: MonitorSection,
) -> dict[str, Any]:
    """The performance part of a drift check (the `metric` of a CheckResult):

    `name` (the metric judged), `configured` and `note` (when they differ), `higher_is_better`,
    `labeled` (rows used), `reference` (holdout), `current`, `change` (current - reference),
    `drop` (the worsening, > 0 is worse), `limit` (the allowed worsening) and `limit_basis`
    (where it comes from), `decayed`, and
    `series`: the metric over equal time slices of the window (oldest first). `ts`: the
    rows' times in microseconds since the epoch."""
    name, note = live_metric_name(task.type, configured)
    keep = usable_rows(task, labels, outputs)
    y, out, when = labels[keep], outputs[keep], ts[keep]
    reference = _finite(reference_metrics.get(f"holdout_{name}"))
    higher = higher_is_better(name)
    result: dict[str, Any] = {
        "name": name,
        "configured": bare_metric(configured),
        "higher_is_better": higher,
        "task": task.type,
        "labeled": int(y.size),
        "reference": reference,
    }
    result["limit"], result["limit_basis"] = allowed_worsening(cfg, name, reference)
    if note:
        result["note"] = note
    if y.size == 0:
        return result
    current = _finite(live_metrics(task, y, out).get(name))
    if current is None:
        result["note"] = note or f"the labelled rows give no {name} (one class only?)"
        return result
    result["current"] = current
    if reference is not None:
        change = current - reference
        drop = -change if higher else change
        result["change"] = change
        result["drop"] = drop
        result["decayed"] = drop >= result["limit"]
    result["series"] = series(task, name, y, out, when)
    return result


def series(
    task: ModelTask,
    name: str,
    labels: np.ndarray,
    outputs: np.ndarray,
    ts: np.ndarray,
    buckets: int = SERIES_BUCKETS,
) -> list[dict[str, Any]]:
    """The metric over `buckets` equal time slices of the rows' span (`ts`: microseconds since
    the epoch), for decay over time: `start`, `labeled`, `value` (None where a slice gives
    none, e.g. AUC of one class)."""
    micros = np.asarray(ts, dtype=np.int64)
    lo, hi = int(micros.min()), int(micros.max()) + 1
    edges = np.linspace(lo, hi, buckets + 1)
    which = np.clip(np.searchsorted(edges, micros, side="right") - 1, 0, buckets - 1)
    out = []
    for b in range(buckets):
        mask = which == b
        n = int(mask.sum())
        value = None
        if n:
            value = _finite(live_metrics(task, labels[mask], outputs[mask]).get(name))
        start = datetime.fromtimestamp(edges[b] / 1e6, UTC).isoformat(timespec="seconds")
        out.append({"start": start, "labeled": n, "value": value})
    return out


def decay_reason(metric: dict[str, Any]) -> str | None:
    """The monitor's reason when the metric decayed ("auc down 0.31 (0.97 -> 0.66)",
    "rmse up 12.4 (50.2 -> 62.6)"), else None."""
    if not metric.get("decayed"):
        return None
    change = float(metric.get("change") or 0.0)
    way = "down" if change < 0 else "up"
    text = (
        f"{metric.get('name', 'metric')} {way} {abs(change):.3g} "
        f"({metric.get('reference'):.4g} -> {metric.get('current'):.4g}; "
        f"allowed worsening {metric.get('limit'):.3g})"
    )
    if metric.get("note"):
        text += f" [{metric['note']}]"
    return text
