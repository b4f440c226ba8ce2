"""Binary-classification metrics on a holdout, and which direction is better."""

from __future__ import annotations

import math

import numpy as np

from workbench.config import LOWER_IS_BETTER


def binary_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    from sklearn import metrics as m

    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-15, 1 - 1e-15)
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


def higher_is_better(metric: str) -> bool:
    """Direction of a metric, also under the names runs log it with (`holdout_logloss`)."""
    for prefix in ("holdout_", "valid_", "train_"):
        metric = metric.removeprefix(prefix)
    return metric not in LOWER_IS_BETTER
