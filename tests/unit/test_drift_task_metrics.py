"""Per-task drift pieces without training: the categorical prediction profile of a
multiclass model (class frequencies), and the live metric with its direction and allowance
(monitoring.performance) against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn import metrics as skm

from workbench.config import MonitorSection
from workbench.drift.evaluate import check_frame
from workbench.drift.profile import ReferenceProfile, build_profile
from workbench.monitoring import performance
from workbench.tasks import ModelTask

RNG = np.random.default_rng(7)
BINARY = ModelTask()
WINE = ModelTask("multiclass", ["barbera", "barolo", "grignolino"])
REGRESSION = ModelTask("regression", [])


def _class_profile(classes: np.ndarray) -> ReferenceProfile:
    frame = pl.DataFrame({"mean radius": RNG.normal(size=classes.size)})
    profile = build_profile(
        frame, ["mean radius"], set(), predictions=classes, prediction_kind="categorical"
    )
    return ReferenceProfile.from_json(profile.to_json())


def test_multiclass_prediction_profile_holds_class_frequencies() -> None:
    profile = _class_profile(np.array([0.0] * 30 + [1.0] * 50 + [2.0] * 20 + [math.nan]))
    pred = profile.prediction
    assert pred is not None and pred.kind == "categorical"
    assert pred.categories == ["0", "1", "2"] and pred.category_counts == [30, 50, 20]
    assert pred.missing == 1 and pred.n == 101
    with pytest.raises(ValueError, match="prediction_kind"):
        build_profile(pl.DataFrame({"a": [1.0]}), ["a"], set(), [0.0], prediction_kind="odd")


def test_class_frequency_drift_psi_and_chi2() -> None:
    reference = np.repeat([0.0, 1.0, 2.0], [300, 500, 200])
    profile = _class_profile(reference)
    frame = pl.DataFrame({"mean radius": RNG.normal(size=1000)})
    same = check_frame(profile, frame, predictions=RNG.permutation(reference))
    assert same.prediction is not None and same.prediction.status == "ok"
    assert same.prediction.stats["psi"] == pytest.approx(0.0, abs=1e-9)
    moved = np.repeat([0.0, 1.0, 2.0, 3.0], [800, 100, 50, 50])  # class 3 never predicted
    report = check_frame(profile, frame, predictions=moved)
    pred = report.prediction
    assert pred is not None and pred.kind == "categorical" and pred.status == "alert"
    assert pred.stats["chi2_p"] is not None and pred.stats["chi2_p"] < 1e-10
    assert pred.hist_labels == ["0", "1", "2", "__unseen__"] and pred.unseen == {"3": 50}
    assert pred.cur_hist == pytest.approx([0.8, 0.1, 0.05, 0.05])
    assert pred.ref_hist == pytest.approx([0.3, 0.5, 0.2, 0.0])


def test_live_metrics_equal_sklearn_per_task() -> None:
    y = RNG.integers(0, 2, 400).astype(float)
    p = np.clip(y * 0.6 + RNG.uniform(0, 0.4, 400), 0, 1)
    got = performance.live_metrics(BINARY, y, p)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert got["f1"] == pytest.approx(skm.f1_score(y, p >= 0.5))
    yk = RNG.integers(0, 3, 400).astype(float)
    pk = np.where(RNG.uniform(size=400) < 0.7, yk, RNG.integers(0, 3, 400)).astype(float)
    got = performance.live_metrics(WINE, yk, pk)
    assert got["macro_f1"] == pytest.approx(skm.f1_score(yk, pk, average="macro"))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(yk, pk))
    assert "logloss" not in got  # the log keeps the class, not its probabilities
    # a window where one class never shows: macro over the classes present, as sklearn's
    two = yk % 2
    assert performance.live_metrics(WINE, two, two)["macro_f1"] == pytest.approx(1.0)
    yr = RNG.normal(100, 20, 400)
    pr = yr + RNG.normal(0, 5, 400)
    got = performance.live_metrics(REGRESSION, yr, pr)
    assert got["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(yr, pr)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(yr, pr))


def test_metrics_not_computable_live_fall_back_with_a_note() -> None:
    assert performance.live_metric_name("multiclass", "logloss")[0] == "accuracy"
    assert "class probabilities" in performance.live_metric_name("multiclass", "logloss")[1]
    assert performance.live_metric_name("binary", "holdout_logloss") == ("logloss", "")
    assert performance.live_metric_name("regression", "mae") == ("mae", "")


def _assess(task: ModelTask, metric: str, reference: float, y: np.ndarray, out: np.ndarray,
            cfg: MonitorSection | None = None) -> dict[str, object]:  # fmt: skip
    ts = np.arange(y.size, dtype=np.int64) * 1_000_000
    return performance.assess(
        task, metric, {f"holdout_{metric}": reference}, y, out, ts, cfg or MonitorSection()
    )


def test_rmse_up_is_decay_and_down_is_not() -> None:
    y = RNG.normal(100, 20, 300)
    worse = _assess(REGRESSION, "rmse", 5.0, y, y + 10.0)  # rmse 10 against 5
    assert worse["current"] == pytest.approx(10.0) and worse["change"] == pytest.approx(5.0)
    assert worse["drop"] == pytest.approx(5.0) and worse["decayed"] is True
    assert worse["limit"] == pytest.approx(0.25)  # rmse default: 5 % of the holdout value
    reason = performance.decay_reason(worse)
    assert reason is not None and reason.startswith("rmse up 5 (5 -> 10")
    better = _assess(REGRESSION, "rmse", 20.0, y, y + 10.0)
    assert better["drop"] == pytest.approx(-10.0) and better["decayed"] is False
    assert performance.decay_reason(better) is None
    series = worse["series"]
    assert isinstance(series, list) and sum(p["labeled"] for p in series) == 300
    assert all(p["value"] == pytest.approx(10.0) for p in series if p["labeled"])


def test_allowed_worsening_units_relative_and_defaults() -> None:
    y = RNG.normal(100, 20, 300)
    explicit = _assess(REGRESSION, "rmse", 5.0, y, y + 10.0, MonitorSection(metric_drop=6.0))
    assert explicit["limit"] == 6.0 and explicit["decayed"] is False
    relative = MonitorSection(metric_drop_relative=0.5)
    half = _assess(REGRESSION, "rmse", 8.0, y, y + 10.0, relative)
    assert half["limit"] == pytest.approx(4.0) and half["decayed"] is False
    assert half["limit_basis"] == "50% of the holdout value"
    yb = RNG.integers(0, 2, 300).astype(float)
    auc = _assess(BINARY, "auc", 0.9, yb, 1 - yb)  # AUC 0: far down
    assert auc["limit"] == 0.05 and auc["drop"] == pytest.approx(0.9) and auc["decayed"]
    reason = performance.decay_reason(auc)
    assert reason is not None and reason.startswith("auc down 0.9")


def test_unusable_rows_are_left_out() -> None:
    y = np.array([0.0, 1.0, 2.0, 5.0, math.nan, 1.5])
    out = np.array([0.0, 1.0, 2.0, 1.0, 1.0, 1.0])
    kept = performance.usable_rows(WINE, y, out)
    assert kept.tolist() == [True, True, True, False, False, False]
    result = _assess(WINE, "macro_f1", 0.9, y, out)
    assert result["labeled"] == 3 and result["current"] == pytest.approx(1.0)
    one_class = _assess(BINARY, "auc", 0.9, np.ones(10), np.full(10, 0.7))
    assert "current" not in one_class and "one class" in str(one_class["note"])
