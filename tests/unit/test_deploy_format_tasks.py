"""The Deployments screen's per-task lines: the live metric's name and value, the prediction
line (mean, or the most frequent class), the histogram's name; from `deployments.status`
answers as the screen gets them."""

from __future__ import annotations

from typing import Any

import pytest
from workbench_tui.deploy_format import hist_name, metric_line, pred_line_name, prediction_summary

MUTED = "dim"


def _line(stats: dict[str, Any], task: str | None) -> tuple[str, str, Any]:
    name, text = metric_line(stats, task, MUTED)
    return name, str(text), text.style


@pytest.mark.parametrize(
    ("task", "stats", "want"),
    [
        ("binary", {"metrics": {"auc": 0.91234}, "labeled": 40}, ("auc", "0.9123 (40 labeled)")),
        (
            "multiclass",
            {"metrics": {"accuracy": 0.5}, "labeled": 2},
            ("accuracy", "0.5000 (2 labeled)"),
        ),
        (
            "regression",
            {"metrics": {"rmse": 52.123, "mae": 1234.5}, "labeled": 1200},
            ("rmse", "52.1230 · mae 1,234.5 (1,200 labeled)"),
        ),
        # before any label: the task's metric name, and no value
        (
            "multiclass",
            {"metrics": {"accuracy": None}, "labeled": 0},
            ("accuracy", "no labels yet"),
        ),
        ("regression", {}, ("rmse", "no labels yet")),
        # an older answer without `metrics`, and without a task
        (None, {"metric_name": "mae", "metric": 0.25, "labeled": 3}, ("mae", "0.2500 (3 labeled)")),
        (None, {"metric_name": None, "metric": None}, ("metric", "no labels yet")),
    ],
)
def test_metric_line_follows_the_task(
    task: str | None, stats: dict[str, Any], want: tuple[str, str]
) -> None:
    name, text, style = _line(stats, task)
    assert (name, text) == want
    assert (style == MUTED) == (text == "no labels yet")


def test_prediction_line_and_histogram_names() -> None:
    classes = {"prediction_hist": [3, 5, 2], "hist_labels": ["a", "b", "c"]}
    assert (pred_line_name("multiclass"), prediction_summary(classes, "multiclass")) == (
        "top class",
        "b · 50%",
    )
    assert (
        prediction_summary({"prediction_hist": [0, 0], "hist_labels": ["a", "b"]}, "multiclass")
        == "-"
    )
    assert pred_line_name("regression") == pred_line_name("binary") == "mean pred"
    assert prediction_summary({"prediction_mean": 151.25}, "regression") == "151.2500"
    assert prediction_summary({"prediction_mean": None}, "binary") == "-"
    assert [hist_name(t) for t in ("binary", "multiclass", "regression", None)] == [
        "predictions",
        "classes",
        "values",
        "predictions",
    ]
