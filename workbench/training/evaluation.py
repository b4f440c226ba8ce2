"""Holdout metrics for each task (see `workbench.tasks` for what a model outputs per task)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workbench.tasks import higher_is_better

__all__ = ["binary_metrics", "evaluate", "higher_is_better", "regression_metrics"]


def evaluate(task: str, y_true: Any, output: Any, threshold: float = 0.5) -> dict[str, float]:
    """The task's metrics. `y_true`: class indices (classification) or values; `output`: the
    positive-class probability (binary), the probability matrix (multiclass), values."""
    if task == "binary":
        return binary_metrics(y_true, output, threshold)
    if task == "multiclass":
        return multiclass_metrics(y_true, output)
    return regression_metrics(y_true, output)


def binary_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    from sklearn import metrics as m

    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(proba, dtype=float).reshape(-1), 1e-15, 1 - 1e-15)
    pred = (p >= threshold).astype(int)
    two_classes = len(np.unique(y)) == 2
    return {
        "auc": float(m.roc_auc_score(y, p)) if two_classes else math.nan,
        "average_precision": float(m.average_precision_score(y, p)) if two_classes else math.nan,
        "logloss": float(m.log_loss(y, p, labels=[0, 1])),
        "accuracy": float(m.accuracy_score(y, pred)),
        "precision": float(m.precision_score(y, pred, zero_division=0)),
        "recall": float(m.recall_score(y, pred, zero_division=0)),
        "f1": float(m.f1_score(y, pred, zero_division=0)),
    }


def multiclass_metrics(y_true: Any, proba: Any) -> dict[str, float]:
    from sklearn import metrics as m

    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"a multiclass model gives a probability per class (got shape {p.shape})")
    labels = list(range(p.shape[1]))
    pred = p.argmax(axis=1)
    p = np.clip(p, 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return {
        "macro_f1": float(m.f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(m.accuracy_score(y, pred)),
        "weighted_f1": float(
            m.f1_score(y, pred, labels=labels, average="weighted", zero_division=0)
        ),
        "logloss": float(m.log_loss(y, p, labels=labels)),
    }


def regression_metrics(y_true: Any, pred: Any) -> dict[str, float]:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(pred, dtype=float).reshape(-1)
    err = p - y
    ss_tot = float(((y - y.mean()) ** 2).sum()) if y.size else 0.0
    nonzero = np.abs(y) > 1e-12
    return {
        "rmse": float(np.sqrt(np.mean(err**2))) if y.size else math.nan,
        "mae": float(np.mean(np.abs(err))) if y.size else math.nan,
        "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else math.nan,
        # MAPE over rows whose true value is not zero (a zero makes it infinite)
        "mape": float(np.mean(np.abs(err[nonzero] / y[nonzero]))) if nonzero.any() else math.nan,
    }
