"""What `workbench canary status` and the TUI's Deployments screen both read off a variant's
stats (`VariantStats.to_dict()`): each task's live metrics, the variant's metric values and
its most frequent predicted class. Light on purpose (no store, no model): the TUI imports it
while it paints."""

from __future__ import annotations

from typing import Any

#: The live metric(s) of each task, the one compared (and shown first) first.
LIVE_METRICS = {"binary": ("auc",), "multiclass": ("accuracy",), "regression": ("rmse", "mae")}


def live_metrics(stats: dict[str, Any]) -> dict[str, Any]:
    """The variant's live metrics by name, the main one first (None before labels come);
    stats with only the single `metric_name` / `metric` pair give that pair; else empty."""
    metrics = dict(stats.get("metrics") or {})
    if not metrics and stats.get("metric_name"):
        metrics = {str(stats["metric_name"]): stats.get("metric")}
    return metrics


def top_class(stats: dict[str, Any]) -> tuple[str, float] | None:
    """The most frequent predicted class and its share of the predictions (multiclass), or
    None with no predictions or a histogram without its labels."""
    counts, names = stats.get("prediction_hist") or [], stats.get("hist_labels") or []
    total = sum(counts)
    if not total or len(names) != len(counts):
        return None
    top = max(range(len(counts)), key=counts.__getitem__)
    return str(names[top]), counts[top] / total


__all__ = ["LIVE_METRICS", "live_metrics", "top_class"]
