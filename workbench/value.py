"""Business value: what the model's outcomes are worth, per 1,000 predictions.

`[monitoring.value]` prices each outcome (binary classification: true/false positive and
negative at the evaluation threshold; regression: a value per unit of absolute error). The
same figure is computed wherever outcomes are counted: live per variant (the prediction log
joined with the labels, in DuckDB), on the holdout at training and at the gate, in the model
card and by the canary rule. A kernel module (no package of the core): pure arithmetic, and a
vectorised counter over numpy arrays for the holdout.

Multiclass has no value: four prices do not describe a confusion matrix of k classes, so
`per_1k` is None and `why_not` says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from workbench.config_monitoring import ValueSection

#: The run metrics the training job logs the holdout's outcomes as (`outcome_tp`, ...).
PREFIX = "outcome_"
_FIELDS = ("tp", "fp", "fn", "tn", "abs_error", "n")


@dataclass(frozen=True)
class Outcomes:
    """Counted outcomes. Binary: tp, fp, fn, tn at the threshold (n is their sum);
    regression: abs_error, the sum of |prediction - label|, over n rows."""

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0
    tn: float = 0.0
    abs_error: float = 0.0
    n: float = 0.0  # 0: the sum of the four counts

    def __post_init__(self) -> None:
        if not self.n:
            object.__setattr__(self, "n", self.tp + self.fp + self.fn + self.tn)

    @classmethod
    def of(cls, values: Outcomes | Mapping[str, Any] | None) -> Outcomes | None:
        """From an Outcomes, or a mapping with some of its fields (missing: 0; None: None)."""
        if values is None or isinstance(values, Outcomes):
            return values
        return cls(**{k: float(values[k]) for k in _FIELDS if values.get(k) is not None})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def why_not(cfg: ValueSection, task: str, outcomes: Outcomes | Mapping[str, Any] | None) -> str:
    """Why `per_1k` is None ("" when it is not)."""
    if not cfg.configured:
        return "no [monitoring.value] is configured"
    if task == "multiclass":
        return "value is not defined for multiclass (it prices the binary outcomes or |error|)"
    if task == "regression" and not cfg.abs_error:
        return "[monitoring.value] abs_error is not set (regression prices |error|)"
    if task == "binary" and not _prices(cfg):
        return "[monitoring.value] prices no binary outcome (true_positive, ...)"
    if task not in ("binary", "regression"):
        return f"value is not defined for task {task!r}"
    found = Outcomes.of(outcomes)
    if found is None or not found.n:
        return "no labelled predictions"
    return ""


def per_1k(
    cfg: ValueSection, task: str, outcomes: Outcomes | Mapping[str, Any] | None
) -> float | None:
    """The value per 1,000 predictions: binary 1000 * (tp*v_tp + fp*v_fp + fn*v_fn + tn*v_tn)
    / n; regression 1000 * abs_error * sum|err| / n. None (see `why_not`) when not configured,
    multiclass, or nothing was counted."""
    if why_not(cfg, task, outcomes):
        return None
    o = Outcomes.of(outcomes)
    assert o is not None  # why_not said so
    if task == "regression":
        total = cfg.abs_error * o.abs_error
    else:
        total = (
            o.tp * cfg.true_positive
            + o.fp * cfg.false_positive
            + o.fn * cfg.false_negative
            + o.tn * cfg.true_negative
        )
    return 1000.0 * total / o.n


def _prices(cfg: ValueSection) -> bool:
    return any((cfg.true_positive, cfg.false_positive, cfg.false_negative, cfg.true_negative))


def outcomes_of(task: str, y_true: Any, output: Any, threshold: float = 0.5) -> Outcomes | None:
    """Count the outcomes of arrays (vectorised): binary `y_true` 0/1 and `output` the
    positive-class probability, predicted positive at `output >= threshold` (as the holdout
    metrics do); regression values. Rows whose output or label is not finite are left out.
    None for multiclass."""
    import numpy as np

    if task not in ("binary", "regression"):
        return None
    y = np.asarray(y_true, dtype=float).reshape(-1)
    out = np.asarray(output, dtype=float).reshape(-1)
    keep = np.isfinite(y) & np.isfinite(out)
    y, out = y[keep], out[keep]
    if task == "regression":
        return Outcomes(abs_error=float(np.abs(out - y).sum()), n=float(y.size))
    positive, predicted = y == 1, out >= threshold
    tp = int(np.count_nonzero(positive & predicted))
    fp = int(np.count_nonzero(~positive & predicted))
    fn = int(np.count_nonzero(positive & ~predicted))
    tn = int(y.size) - tp - fp - fn
    return Outcomes(float(tp), float(fp), float(fn), float(tn), n=float(y.size))


def outcome_metrics(
    task: str, y_true: Any, output: Any, threshold: float = 0.5
) -> dict[str, float]:
    """The holdout's outcomes as run metrics (`outcome_tp`, ...; empty for multiclass), so a
    version's value can be priced later by any `[monitoring.value]`."""
    found = outcomes_of(task, y_true, output, threshold)
    if found is None:
        return {}
    keys = ("tp", "fp", "fn", "tn", "n") if task == "binary" else ("abs_error", "n")
    values = found.to_dict()
    return {f"{PREFIX}{k}": values[k] for k in keys}


def from_metrics(metrics: Mapping[str, Any], prefix: str = PREFIX) -> Outcomes | None:
    """The outcomes logged as `outcome_*` metrics (with `prefix`: e.g. `champion_outcome_`),
    or None when the run logged none."""
    got = {k: metrics[prefix + k] for k in _FIELDS if metrics.get(prefix + k) is not None}
    return Outcomes.of(got) if got else None


def from_rates(task: str, metrics: Mapping[str, Any], rows: float | None) -> Outcomes | None:
    """The holdout's outcomes derived from its logged rates and row count, for runs logged
    before the counts were: binary from accuracy, precision and recall (tp = n(1 - accuracy) /
    ((1-p)/p + (1-r)/r)); regression from mae. None where they do not determine the counts
    (no true positive, or a perfect classifier) or are missing."""
    if not rows:
        return None
    n = float(rows)
    if task == "regression":
        mae = _rate(metrics, "mae")
        return None if mae is None else Outcomes(abs_error=mae * n, n=n)
    acc, p, r = (_rate(metrics, k) for k in ("accuracy", "precision", "recall"))
    if task != "binary" or acc is None or not p or not r or (p == 1 and r == 1):
        return None
    exact = n * (1 - acc) / ((1 - p) / p + (1 - r) / r)
    tp, fp, fn = round(exact), round(exact * (1 - p) / p), round(exact * (1 - r) / r)
    return Outcomes(float(tp), float(fp), float(fn), float(n - tp - fp - fn), n=n)


def _rate(metrics: Mapping[str, Any], name: str) -> float | None:
    """A logged holdout metric (None when missing or NaN)."""
    value = metrics.get(f"holdout_{name}")
    if not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def fmt(value: float | None, unit: str = "") -> str:
    """`+12.50 EUR`, `-3,400` ("-" for None): a value per 1,000 predictions for a cell."""
    if value is None:
        return "-"
    text = f"{value:+,.2f}" if abs(value) < 1000 else f"{value:+,.0f}"
    return f"{text} {unit}".rstrip()


def fmt_short(value: float | None) -> str:
    """`+9.5k`, `-120`, `+1.2M` ("-" for None): for a narrow column."""
    if value is None:
        return "-"
    size = abs(value)
    if size >= 999_500:
        return f"{value / 1e6:+.1f}M"
    if size >= 999.5:
        return f"{value / 1e3:+.1f}k"
    return f"{value:+.0f}" if size >= 99.5 else f"{value:+.1f}"


__all__ = [
    "PREFIX",
    "Outcomes",
    "fmt",
    "fmt_short",
    "from_metrics",
    "from_rates",
    "outcome_metrics",
    "outcomes_of",
    "per_1k",
    "why_not",
]
