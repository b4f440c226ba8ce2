"""`[gate] by_value`: the gate compares the business value per 1,000 holdout predictions, and
the config refuses it without `[monitoring.value]`."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from workbench.config import GateSection, parse_config
from workbench.config_monitoring import ValueSection
from workbench.errors import ConfigError
from workbench.pipeline.gate import VALUE_METRIC, decide_value
from workbench.value import outcome_metrics

FRAUD = ValueSection(true_positive=100, false_positive=-5, false_negative=-200, unit="EUR")
SAMPLE = Path(__file__).resolve().parents[2] / "sample_projects" / "fraud_detection"


def _scored(outputs: list[float], labels: list[int], auc: float) -> dict[str, float]:
    """A metrics dict as the training job / score_champion give it: metrics and outcomes."""
    return {"holdout_auc": auc, **outcome_metrics("binary", np.array(labels), np.array(outputs))}


LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
# catches every fraud, two false alarms: 4*100 - 2*5 = 390 per 10 -> 39,000 per 1,000
CATCHER = _scored([0.9, 0.8, 0.7, 0.6, 0.7, 0.6, 0.1, 0.1, 0.1, 0.1], LABELS, auc=0.80)
# misses two frauds, no false alarm: 2*100 - 2*200 = -200 per 10 -> -20,000 per 1,000
CAUTIOUS = _scored([0.9, 0.8, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], LABELS, auc=0.95)


def test_more_value_passes_though_the_metric_is_lower() -> None:
    d = decide_value(FRAUD, "binary", CATCHER, CAUTIOUS, GateSection())
    assert d.passed and d.metric == VALUE_METRIC
    assert d.candidate == pytest.approx(39_000) and d.champion == pytest.approx(-20_000)
    assert d.delta == pytest.approx(59_000)
    assert "beats" in d.reason and "EUR" in d.reason


def test_less_value_fails_and_min_improvement_is_in_value() -> None:
    d = decide_value(FRAUD, "binary", CAUTIOUS, CATCHER, GateSection())
    assert not d.passed and "does not beat" in d.reason
    needs_more = GateSection(min_improvement=60_000)
    assert not decide_value(FRAUD, "binary", CATCHER, CAUTIOUS, needs_more).passed
    guarded = GateSection(max_regression={"auc": 0.1})  # the metrics still guard
    d = decide_value(FRAUD, "binary", CATCHER, CAUTIOUS, guarded)
    assert not d.passed and "holdout_auc regressed" in d.reason


def test_missing_outcomes() -> None:
    assert decide_value(FRAUD, "binary", CATCHER, None, GateSection()).passed
    d = decide_value(FRAUD, "binary", {"holdout_auc": 0.9}, CAUTIOUS, GateSection())
    assert not d.passed and math.isnan(d.candidate) and "logged no holdout outcomes" in d.reason
    d = decide_value(FRAUD, "binary", CATCHER, {"holdout_auc": 0.7}, GateSection())
    assert d.passed and "production model has no value" in d.reason


def test_regression_by_value() -> None:
    cost = ValueSection(abs_error=-1.0)
    y = np.array([10.0, 20.0, 30.0])
    close = {"holdout_rmse": 1.0, **outcome_metrics("regression", y, y + 1)}
    far = {"holdout_rmse": 3.0, **outcome_metrics("regression", y, y - 3)}
    d = decide_value(cost, "regression", close, far, GateSection())
    assert d.passed and d.candidate == pytest.approx(-1000) and d.champion == pytest.approx(-3000)


def _config(gate: dict[str, object], value: dict[str, object] | None) -> str:
    raw = tomllib.loads((SAMPLE / "workbench.toml").read_text(encoding="utf-8"))
    raw.setdefault("gate", {}).update(gate)
    if value is not None:
        raw["monitoring"] = {"value": value}
    return tomli_w.dumps(raw)


def test_by_value_needs_monitoring_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config({"by_value": True}, None), "p/workbench.toml")
    assert "[gate].by_value" in str(info.value) and "[monitoring.value]" in str(info.value)
    cfg = parse_config(_config({"by_value": True}, {"true_positive": 50.0}))
    assert cfg.gate.by_value and cfg.monitoring.value.configured
