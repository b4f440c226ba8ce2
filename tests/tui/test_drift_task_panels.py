"""The Drift screen's prediction and performance panels per task (pure text functions)."""

from __future__ import annotations

from typing import Any

from workbench_tui.drift_format import class_shares, performance_text, prediction_text

from workbench.drift.evaluate import FeatureDrift


def _style(_level: str) -> str:
    return ""


def _drift(kind: str, labels: list[str], ref: list[float], cur: list[float]) -> FeatureDrift:
    return FeatureDrift(
        feature="prediction", kind=kind, test="psi", score=0.8, warn=0.1, alert=0.25,
        status="alert", stats={"psi": 0.8}, n_ref=100, n_cur=50, missing=0, nonfinite=0,
        missing_ref=0, nonfinite_ref=0, ref_hist=ref, cur_hist=cur, hist_labels=labels,
        ref_mean=0.4, cur_mean=0.7,
    )  # fmt: skip


def test_prediction_panel_per_task() -> None:
    classes = _drift("categorical", ["barbera", "barolo", "__unseen__"], [0.3, 0.7, 0.0],
                     [0.1, 0.8, 0.1])  # fmt: skip
    text = str(prediction_text(classes, _style, "multiclass"))
    assert text.startswith("alert · psi 0.8 · n 50")
    assert "classes barolo 70%→80% · barbera 30%→10% · unseen 0%→10%" in text
    assert "mean probability 0.4 ref → 0.7 now" in str(
        prediction_text(_drift("numeric", [], [], []), _style, "binary")
    )
    assert "mean value 0.4" in str(
        prediction_text(_drift("numeric", [], [], []), _style, "regression")
    )
    many = _drift("categorical", [f"c{i}" for i in range(8)], [0.125] * 8, [0.125] * 8)
    assert class_shares(many).endswith("· +2 more")


def test_performance_panel_names_the_metric_and_its_direction() -> None:
    metric: dict[str, Any] = {
        "name": "rmse", "configured": "rmse", "higher_is_better": False, "labeled": 300,
        "reference": 52.9, "current": 61.2, "change": 8.3, "drop": 8.3, "limit": 2.6,
        "decayed": True,
    }  # fmt: skip
    text = str(performance_text(metric, 0.05, _style))
    assert "rmse 61.2 now · 300 labeled · worse by 8.3 (max 2.6)" in text
    assert "holdout 52.9 · lower is better" in text
    better = {**metric, "current": 40.0, "change": -12.9, "drop": -12.9, "decayed": False}
    assert "better by 12.9" in str(performance_text(better, 0.05, _style))
    fallback = {
        "name": "accuracy", "configured": "logloss", "labeled": 0, "reference": 0.95,
    }  # fmt: skip
    text = str(performance_text(fallback, 0.05, _style))
    assert "no labels yet" in text and "accuracy holdout 0.95" in text
    assert "logloss not computable live" in text
