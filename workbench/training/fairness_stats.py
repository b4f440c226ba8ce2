"""Per-group metrics, positive rates and fairness gaps from aggregated cells, with Poisson
bootstrap intervals, all in numpy (no loop per row or per resample).

The rows never come here: DuckDB (live, monitoring.segments) or numpy (the holdout,
training.fairness) aggregate them first into *cells*, one per (group, cell key), each with a
row count (and, for regression, the sums of its rows). The cell key holds what the task's
statistics need:

- binary: the label (0, 1, or 2 = not labelled), the score bin (the probability in
  `SCORE_BINS` equal bins) and whether the prediction is positive (`>= threshold`). AUC is
  computed from the score bins (ties within a bin count one half: exact up to 1/200 of score);
  accuracy, precision, recall, F1 and the true-positive rate from the exact positive flag;
- multiclass: the label (K = not labelled) and the predicted class: an exact confusion matrix;
- regression: the cell's count, labelled count and sums of output, |error| and error^2.

The bootstrap is the Poisson bootstrap: each row's weight in a resample is Poisson(1), so a
cell of n rows weighs Poisson(n) (exact for count cells; a regression cell's sums are scaled
by its weight / n, which ignores the spread inside a cell: its key is a log-scaled bin of the
error, so that is small). Intervals are percentiles of the resampled statistic.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

SCORE_BINS = 200
#: Resamples drawn at once (bounds the memory of the dense resampled counts).
BLOCK = 25
#: Live-computable metrics per task; any other configured metric falls back to the first.
CELL_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "accuracy", "precision", "recall", "f1"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1"),
    "regression": ("rmse", "mae"),
}
MEASURES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
)


def cell_metric(task: str, configured: str) -> tuple[str, str]:
    """(the metric computed per group, a note when it is not the configured one)."""
    from workbench.tasks import bare_metric

    name = bare_metric(configured)
    options = CELL_METRICS[task]
    if name in options:
        return name, ""
    return options[0], f"{name} is not computable per segment: {options[0]} instead"


@dataclass
class Cells:
    """Aggregated rows of G groups. `group`: each cell's group index; `key`: its flat key
    in the group's dense block (binary: (label*SCORE_BINS + bin)*2 + positive; multiclass:
    label*K + predicted); `n`: its rows; `sums` (regression): (C, 4) labelled count, sum of
    output, of |error|, of error^2."""

    task: str
    groups: int
    group: np.ndarray
    key: np.ndarray
    n: np.ndarray
    classes: int = 2
    sums: np.ndarray | None = None

    @property
    def inner(self) -> int:
        if self.task == "binary":
            return 3 * SCORE_BINS * 2
        if self.task == "multiclass":
            return (self.classes + 1) * self.classes
        return 5

    def collapsed(self) -> Cells:
        """The same rows with one cell per (group, key): fewer weights to draw."""
        if self.n.size == 0:
            return self
        flat = self.group * (1 << 40) + (self.key - self.key.min())
        uniq, inverse = np.unique(flat, return_inverse=True)
        first = np.zeros(uniq.size, dtype=np.int64)
        first[inverse[::-1]] = np.arange(inverse.size)[::-1]
        n = np.bincount(inverse, self.n, uniq.size)
        sums = None
        if self.sums is not None:
            cols = [np.bincount(inverse, self.sums[:, i], uniq.size) for i in range(4)]
            sums = np.stack(cols, axis=1)
        group, key = self.group[first], self.key[first]
        return Cells(self.task, self.groups, group, key, n, self.classes, sums)

    def dense(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-group arrays, shape (R, G, ...) for R resamples of the cells' weights (R, C)
        (None: the cells as they are, R = 1)."""
        w = self.n[None, :].astype(np.float64) if weights is None else weights
        r = w.shape[0]
        if self.task == "regression":
            assert self.sums is not None
            scale = w / np.maximum(self.n, 1)[None, :]
            contrib = np.concatenate(
                (w[:, :, None], scale[:, :, None] * self.sums[None, :, :]), axis=2
            )  # (R, C, 5): n, labelled, sum out, sum |err|, sum err^2
            at = (np.arange(r)[:, None] * self.groups + self.group[None, :]).ravel()
            size = r * self.groups
            cols = [np.bincount(at, contrib[:, :, i].ravel(), size) for i in range(5)]
            return np.stack(cols, axis=1).reshape(r, self.groups, 5)
        size = self.groups * self.inner
        at = (np.arange(r)[:, None] * size + (self.group * self.inner + self.key)[None, :]).ravel()
        flat = np.bincount(at, w.ravel(), r * size).reshape(r, size)
        if self.task == "binary":
            return flat.reshape(r, self.groups, 3, SCORE_BINS, 2)
        k = self.classes
        return flat.reshape(r, self.groups, k + 1, k)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _binary(d: np.ndarray, metric: str) -> dict[str, np.ndarray]:
    count = d.sum(axis=(2, 3, 4))
    neg, pos = d[:, :, 0], d[:, :, 1]  # (R, G, S, 2)
    labelled = neg.sum(axis=(2, 3)) + pos.sum(axis=(2, 3))
    rate = _div(d[..., 1].sum(axis=(2, 3)), count)
    tp, fn = pos[..., 1].sum(axis=2), pos[..., 0].sum(axis=2)
    fp, tn = neg[..., 1].sum(axis=2), neg[..., 0].sum(axis=2)
    tpr = _div(tp, tp + fn)
    if metric == "auc":
        nb, pb = neg.sum(axis=3), pos.sum(axis=3)  # per score bin
        below = np.cumsum(nb, axis=2) - nb
        wins = (pb * (below + 0.5 * nb)).sum(axis=2)
        value = _div(wins, pb.sum(axis=2) * nb.sum(axis=2))
    elif metric == "accuracy":
        value = _div(tp + tn, labelled)
    elif metric == "precision":
        value = _div(tp, tp + fp)
    elif metric == "recall":
        value = tpr
    else:  # f1
        value = _div(2 * tp, 2 * tp + fp + fn)
    return {"count": count, "labelled": labelled, "rate": rate, "tpr": tpr, "metric": value}


def _multiclass(d: np.ndarray, metric: str) -> dict[str, np.ndarray]:
    k = d.shape[-1]
    conf = d[:, :, :k, :]  # (R, G, label, predicted)
    count = d.sum(axis=(2, 3))
    labelled = conf.sum(axis=(2, 3))
    rate = _div(d[..., k - 1].sum(axis=2), count)  # share predicted as the last class
    tp = np.diagonal(conf, axis1=2, axis2=3)
    support, predicted = conf.sum(axis=3), conf.sum(axis=2)
    if metric == "accuracy":
        value = _div(tp.sum(axis=2), labelled)
    else:
        f1 = np.nan_to_num(_div(2 * tp, support + predicted))
        present = (support + predicted) > 0
        if metric == "macro_f1":
            value = _div((f1 * present).sum(axis=2), present.sum(axis=2))
        else:
            value = _div((f1 * support).sum(axis=2), support.sum(axis=2))
    nan = np.full_like(rate, np.nan)
    return {"count": count, "labelled": labelled, "rate": rate, "tpr": nan, "metric": value}


def _regression(d: np.ndarray, metric: str) -> dict[str, np.ndarray]:
    count, labelled = d[..., 0], d[..., 1]
    rate = _div(d[..., 2], count)  # the mean prediction
    mae = metric == "mae"
    value = _div(d[..., 3], labelled) if mae else np.sqrt(_div(d[..., 4], labelled))
    nan = np.full_like(rate, np.nan)
    return {"count": count, "labelled": labelled, "rate": rate, "tpr": nan, "metric": value}


def statistics(cells: Cells, metric: str, weights: np.ndarray | None = None) -> dict[str, Any]:
    """count, labelled, rate, tpr, metric: each (R, G)."""
    d = cells.dense(weights)
    fn = {"binary": _binary, "multiclass": _multiclass}.get(cells.task, _regression)
    return fn(d, metric)


def resampled(
    cells: Cells, metric: str, bootstrap: int, seed: int = 0
) -> dict[str, np.ndarray] | None:
    """The statistics of `bootstrap` Poisson resamples of the cells, each (B, G)."""
    if bootstrap <= 0 or cells.n.size == 0:
        return None
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, bootstrap, BLOCK):
        size = min(BLOCK, bootstrap - start)
        weights = rng.poisson(cells.n[None, :].astype(np.float64), size=(size, cells.n.size))
        parts.append(statistics(cells, metric, weights.astype(np.float64)))
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def interval(samples: np.ndarray | None, confidence: float) -> np.ndarray | None:
    """Percentile intervals over axis 0 of (B, ...) samples: (..., 2), NaN where none."""
    if samples is None:
        return None
    alpha = (1 - confidence) / 2
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(samples, alpha, axis=0), np.nanquantile(samples, 1 - alpha, axis=0)
        return np.asarray(np.stack((lo, hi), axis=-1))


def gaps(values: np.ndarray, measure: str) -> np.ndarray:
    """A fairness measure across the groups (last axis) of each row: max - min, or min / max
    for the ratio; NaN groups are left out, fewer than two groups give NaN."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        valid = np.isfinite(values).sum(axis=-1) >= 2
        hi, lo = np.nanmax(values, axis=-1), np.nanmin(values, axis=-1)
        if measure == "demographic_parity_ratio":
            out = np.where(hi > 0, lo / np.where(hi > 0, hi, 1), np.nan)
        else:
            out = hi - lo
    return np.asarray(np.where(valid, out, np.nan))


def fairness(
    point: dict[str, np.ndarray],
    boot: dict[str, np.ndarray] | None,
    members: np.ndarray,
    confidence: float,
    task: str,
) -> list[dict[str, Any]]:
    """The fairness measures over the groups `members` (indices): value and interval."""
    out: list[dict[str, Any]] = []
    for measure in MEASURES:
        if measure == "equal_opportunity_difference" and task != "binary":
            continue
        source = "tpr" if measure == "equal_opportunity_difference" else "rate"
        value = float(gaps(point[source][0, members], measure))
        if not math.isfinite(value):
            continue
        ci = None
        if boot is not None:
            band = interval(gaps(boot[source][:, members], measure)[:, None], confidence)
            if band is not None and np.isfinite(band).all():
                ci = [float(band[0, 0]), float(band[0, 1])]
        out.append({"measure": measure, "value": value, "ci": ci})
    return out


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def regression_key(labelled: np.ndarray, output: np.ndarray, label: np.ndarray) -> np.ndarray:
    """A regression cell's key: a log-scaled bin of |error| (labelled rows) or of the
    output (the others), so a cell's rows are alike (the bootstrap's approximation)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.floor(2 * np.log2(np.abs(output - label) + 1e-9))
        out = np.floor(4 * np.log2(np.abs(output) + 1e-9)) * np.sign(output)
    key = np.where(labelled, np.nan_to_num(err), 10_000 + np.nan_to_num(out))
    return np.asarray(key, dtype=np.int64)


def summarize(
    cells: Cells,
    names: list[tuple[str, str]],
    metric: str,
    mon: Any,
    source: str,
) -> dict[str, Any]:
    """Per-group rows (the groups of at least `min_count` rows), how many were suppressed,
    and the fairness measures of the sensitive features with their thresholds and alerts.
    `names`: each group's (feature, label); `mon`: the `[monitoring]` section."""
    point = statistics(cells, metric)
    boot = resampled(cells, metric, mon.bootstrap)
    metric_ci = interval(boot["metric"], mon.confidence) if boot else None
    rate_ci = interval(boot["rate"], mon.confidence) if boot else None
    keep = point["count"][0] >= mon.min_count
    groups: list[dict[str, Any]] = []
    for g, (feature, label) in enumerate(names):
        if not keep[g]:
            continue
        row: dict[str, Any] = {
            "feature": feature,
            "group": label,
            "count": round(float(point["count"][0, g])),
            "labelled": round(float(point["labelled"][0, g])),
            "metric": finite(point["metric"][0, g]),
            "metric_ci": _pair(metric_ci, g),
            "positive_rate": finite(point["rate"][0, g]),
            "positive_rate_ci": _pair(rate_ci, g),
        }
        if row["metric"] is None:
            row["metric_ci"] = None
        groups.append(row)
    measures: list[dict[str, Any]] = []
    alerts: list[str] = []
    for feature in mon.sensitive:
        members = np.array([g for g, (f, _) in enumerate(names) if f == feature and keep[g]])
        if members.size < 2:
            continue
        for entry in fairness(point, boot, members, mon.confidence, cells.task):
            threshold = float(getattr(mon.fairness, entry["measure"]))
            ratio = entry["measure"] == "demographic_parity_ratio"
            alert = entry["value"] < threshold if ratio else entry["value"] > threshold
            entry.update(feature=feature, threshold=threshold, alert=bool(alert), source=source)
            measures.append(entry)
            if alert:
                words = entry["measure"].replace("_", " ")
                sign = "<" if ratio else ">"
                alerts.append(
                    f"{feature}: {words} {entry['value']:.2f} {sign} {threshold:.2f} ({source})"
                )
    return {
        "groups": groups,
        "suppressed": int((~keep).sum()),
        "fairness": measures,
        "alerts": alerts,
    }


def _pair(band: np.ndarray | None, g: int) -> list[float] | None:
    if band is None or not np.isfinite(band[g]).all():
        return None
    return [float(band[g, 0]), float(band[g, 1])]


def cells_from_arrays(
    task: str,
    threshold: float,
    classes: int,
    group: np.ndarray,
    groups: int,
    output: np.ndarray,
    label: np.ndarray,
) -> Cells:
    """Cells of rows given as arrays (the holdout; tests): `group` per row, `label` NaN
    where unlabelled. The same keys as the live query builds in SQL."""
    labelled = np.isfinite(label)
    sums = None
    if task == "binary":
        lab = np.where(labelled, np.nan_to_num(label), 2).astype(np.int64)
        score = np.clip(np.floor(output * SCORE_BINS), 0, SCORE_BINS - 1).astype(np.int64)
        key = (lab * SCORE_BINS + score) * 2 + (output >= threshold)
    elif task == "multiclass":
        lab = np.where(labelled, np.nan_to_num(label), classes).astype(np.int64)
        key = lab * classes + np.clip(np.round(output), 0, classes - 1).astype(np.int64)
    else:
        key = regression_key(labelled, output, np.nan_to_num(label))
    flat = group.astype(np.int64) * (1 << 40) + (key - key.min() if key.size else key)
    uniq, inverse = np.unique(flat, return_inverse=True)
    n = np.bincount(inverse).astype(np.float64)
    first = np.zeros(uniq.size, dtype=np.int64)
    first[inverse] = np.arange(inverse.size)
    if task == "regression":
        err = np.where(labelled, output - np.nan_to_num(label), 0.0)
        cols = (labelled.astype(float), output, np.abs(err), err * err)
        sums = np.stack([np.bincount(inverse, weights=c, minlength=uniq.size) for c in cols], 1)
    return Cells(task, groups, group[first].astype(np.int64), key[first], n, classes, sums)
