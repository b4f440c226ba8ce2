"""Business value per 1,000 predictions (`workbench.value`)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config_monitoring import ValueSection
from workbench.training.evaluation import binary_metrics
from workbench.value import (
    Outcomes,
    fmt,
    from_metrics,
    from_rates,
    outcome_metrics,
    outcomes_of,
    per_1k,
    why_not,
)

FRAUD = ValueSection(true_positive=100, false_positive=-5, false_negative=-200, unit="EUR")


def test_binary_value_per_1k() -> None:
    o = Outcomes(tp=10, fp=40, fn=5, tn=945)  # n = 1000
    # 10*100 - 40*5 - 5*200 + 0 = -200 over 1,000 predictions
    assert per_1k(FRAUD, "binary", o) == pytest.approx(-200.0)
    assert per_1k(FRAUD, "binary", {"tp": 20, "fp": 0, "fn": 0, "tn": 180}) == pytest.approx(
        1000 * 20 * 100 / 200
    )
    assert why_not(FRAUD, "binary", o) == ""


def test_regression_value_per_1k() -> None:
    cfg = ValueSection(abs_error=-0.5)
    o = Outcomes(abs_error=300.0, n=200)  # mean |error| 1.5
    assert per_1k(cfg, "regression", o) == pytest.approx(1000 * -0.5 * 1.5)
    assert per_1k(FRAUD, "regression", o) is None  # no abs_error price
    assert "abs_error" in why_not(FRAUD, "regression", o)


def test_multiclass_and_unconfigured_have_no_value() -> None:
    o = Outcomes(tp=1, tn=1)
    assert per_1k(FRAUD, "multiclass", o) is None
    assert "multiclass" in why_not(FRAUD, "multiclass", o)
    assert per_1k(ValueSection(), "binary", o) is None
    assert "[monitoring.value]" in why_not(ValueSection(), "binary", o)
    assert per_1k(FRAUD, "binary", Outcomes()) is None
    assert why_not(FRAUD, "binary", None) == "no labelled predictions"


def test_outcomes_of_arrays_at_the_threshold() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.7, 0.1, 0.3, np.nan])  # the NaN row is left out
    o = outcomes_of("binary", y, p, threshold=0.3)
    assert (o.tp, o.fp, o.fn, o.tn, o.n) == (2, 1, 1, 1, 5) if o else False
    r = outcomes_of("regression", [1.0, 2.0, 4.0], [1.5, 2.0, 1.0])
    assert r is not None and (r.abs_error, r.n) == (3.5, 3)
    assert outcomes_of("multiclass", [0, 1], [[1, 0], [0, 1]]) is None


def test_logged_metrics_and_rates_give_the_same_counts() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.2).astype(int)
    p = np.clip(y * 0.3 + rng.random(2000) * 0.7, 0, 1)
    logged = outcome_metrics("binary", y, p, 0.5)
    assert set(logged) == {f"outcome_{k}" for k in ("tp", "fp", "fn", "tn", "n")}
    counted = from_metrics(logged)
    rates = {f"holdout_{k}": v for k, v in binary_metrics(y, p, 0.5).items()}
    derived = from_rates("binary", rates, 2000)
    assert counted is not None and derived is not None
    assert counted == derived
    assert from_rates("binary", {"holdout_accuracy": 1.0}, 10) is None
    assert from_rates("regression", {"holdout_mae": 2.0}, 10) == Outcomes(abs_error=20.0, n=10)
    assert from_metrics({"holdout_auc": 0.9}) is None


def test_fmt() -> None:
    assert fmt(12.5, "EUR") == "+12.50 EUR"
    assert fmt(-3400.4) == "-3,400"
    assert fmt(None) == "-"
