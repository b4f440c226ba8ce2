"""CBPE's expected metrics against brute force (Monte Carlo over Bernoulli labels, exact
pair counts), the realized metrics against scikit-learn, the calibration maps, and the
monitor's reason on an estimated drop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from workbench.config import MonitorSection
from workbench.monitoring import estimate
from workbench.training import calibration


def _pair_kernel(score: np.ndarray) -> np.ndarray:
    """K[i, j]: 1 when row i outranks row j, 1/2 on a tie of two rows, 0 for a row itself."""
    k = (score[:, None] > score[None, :]).astype(float)
    k += 0.5 * (score[:, None] == score[None, :])
    np.fill_diagonal(k, 0.0)
    return k


def _small(n: int = 40, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = np.round(rng.random(n), 1)  # ten distinct values: many ties
    p = np.clip(score * 0.8 + 0.1 * rng.random(n), 0.01, 0.99)
    return score, p


def test_expected_auc_is_the_ratio_of_expected_pair_counts_by_monte_carlo() -> None:
    score, p = _small()
    rng = np.random.default_rng(11)
    draws = (rng.random((40_000, p.size)) < p).astype(float)
    k = _pair_kernel(score)
    numerators = ((draws @ k) * (1 - draws)).sum(axis=1)
    pairs = draws.sum(axis=1) * (1 - draws).sum(axis=1)
    expected = estimate.expected_auc(score, p)
    assert expected is not None
    assert expected == pytest.approx(numerators.mean() / pairs.mean(), abs=2e-3)
    valid = pairs > 0
    mean_auc = float((numerators[valid] / pairs[valid]).mean())  # E[AUC] itself: O(1/n) away
    assert expected == pytest.approx(mean_auc, abs=0.01)
    # the exact expectation of both counts, pair by pair
    exact_num = float(p @ k @ (1 - p))
    exact_pairs = float(p.sum() * (1 - p).sum() - (p * (1 - p)).sum())
    assert expected == pytest.approx(exact_num / exact_pairs, abs=1e-12)


def test_expected_confusion_is_the_mean_of_the_drawn_confusions() -> None:
    score, p = _small(seed=5)
    rng = np.random.default_rng(2)
    draws = (rng.random((20_000, p.size)) < p).astype(float)
    predicted = score >= 0.5
    got = estimate.expected_confusion(score, p, 0.5)
    assert got["tp"] == pytest.approx((draws[:, predicted]).sum(axis=1).mean(), rel=0.01)
    assert got["tn"] == pytest.approx((1 - draws[:, ~predicted]).sum(axis=1).mean(), rel=0.01)
    assert sum(got.values()) == pytest.approx(p.size)
    metrics = estimate.metrics_of(score, p, 0.5)
    assert metrics is not None
    accuracy = ((draws == predicted).mean(axis=1)).mean()
    assert metrics["accuracy"] == pytest.approx(accuracy, abs=5e-3)
    assert metrics["positive_rate"] == pytest.approx(p.mean())


def test_with_labels_for_probabilities_it_is_the_realized_metric() -> None:
    rng = np.random.default_rng(7)
    score = np.round(rng.random(500), 2)
    labels = (rng.random(500) < score).astype(float)
    got = estimate.metrics_of(score, labels, 0.4)
    assert got is not None
    assert got["auc"] == pytest.approx(roc_auc_score(labels, score), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, score >= 0.4))
    assert got["f1"] == pytest.approx(f1_score(labels, score >= 0.4))
    order = np.argsort(-score, kind="stable")
    presorted = estimate.expected_auc(score[order], labels[order], presorted=True)
    assert presorted == pytest.approx(got["auc"], abs=1e-12)


def test_degenerate_rows_give_no_metric() -> None:
    assert estimate.metrics_of(np.array([]), np.array([]), 0.5) is None
    assert estimate.expected_auc([0.3], [0.5]) is None
    one_class = estimate.metrics_of([0.1, 0.9], [1.0, 1.0], 0.5)
    assert one_class is not None and one_class["auc"] is None
    assert one_class["precision"] == 1.0
    nothing_predicted = estimate.metrics_of([0.1, 0.2], [0.0, 1.0], 0.5)
    assert nothing_predicted is not None and nothing_predicted["precision"] is None


def test_isotonic_map_is_sklearns_as_plain_numbers() -> None:
    rng = np.random.default_rng(1)
    raw = rng.random(5_000)
    labels = (rng.random(5_000) < raw**2).astype(float)  # the raw score overstates the risk
    cal = calibration.fit(labels, raw, "test")
    assert cal.kind == "isotonic" and cal.n == 5_000
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(raw, labels)
    probe = np.linspace(-0.1, 1.1, 301)
    assert np.allclose(cal.apply(probe), iso.predict(probe), atol=1e-9)
    again = calibration.Calibration.from_dict(cal.to_dict())
    assert np.array_equal(again.apply(probe), cal.apply(probe))


def test_platt_on_a_small_holdout_recovers_the_true_probabilities() -> None:
    rng = np.random.default_rng(4)
    true = 1 / (1 + np.exp(-rng.normal(-3.0, 1.5, 1_500)))
    labels = (rng.random(true.size) < true).astype(float)
    raw = 1 / (1 + np.exp(-(np.log(true / (1 - true)) * 0.5 + 1.0)))  # squashed and shifted
    cal = calibration.fit(labels, raw)
    assert cal.kind == "platt"  # ~150 positives: too few for isotonic steps
    assert cal.a == pytest.approx(2.0, rel=0.2) and cal.b == pytest.approx(-2.0, abs=0.6)
    assert float(np.abs(cal.apply(raw) - true).mean()) < 0.01


def test_one_class_cannot_be_calibrated() -> None:
    with pytest.raises(calibration.NotCalibrated, match="one class"):
        calibration.fit(np.zeros(50), np.linspace(0, 1, 50))


def _report(estimated_auc: float) -> dict[str, object]:
    return {
        "metric": "auc",
        "count": 1234,
        "reference": {"auc": 0.95},
        "estimated": {"auc": estimated_auc},
        "drop": 0.95 - estimated_auc,
    }


def test_the_monitor_reason_names_the_estimate_and_is_off_by_default() -> None:
    assert MonitorSection().estimated_metric_drop is None
    assert estimate.drop_reason(_report(0.80), None) is None
    assert estimate.drop_reason(_report(0.93), 0.05) is None
    reason = estimate.drop_reason(_report(0.80), 0.05)
    assert reason is not None
    assert reason.startswith("estimated auc down 0.15 (0.95 -> 0.8")
    assert "CBPE estimate" in reason and "not from labels" in reason and "1,234" in reason
    assert not math.isnan(float(MonitorSection(estimated_metric_drop=0.02).estimated_metric_drop))


def test_platt_converges_on_extreme_scores() -> None:
    """Scores at 0 and 1 (a model sure of itself, clipped to 1e-6) with a few mistakes."""
    rng = np.random.default_rng(9)
    raw = np.where(rng.random(2_000) < 0.03, 1.0 - 1e-9, 1e-9)
    raw[:40] = rng.random(40)
    labels = (raw > 0.5).astype(float)
    labels[40:45] = 1 - labels[40:45]  # five confident mistakes
    cal = calibration.fit(labels, raw)
    assert cal.kind == "platt" and math.isfinite(cal.a) and math.isfinite(cal.b)
    out = cal.apply(raw)
    assert np.all((out > 0) & (out < 1))
    assert float(out.mean()) == pytest.approx(float(labels.mean()), abs=0.01)
