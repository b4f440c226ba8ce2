"""The promotion gate: candidate vs production on the same holdout."""

from __future__ import annotations

import math

import pytest

from workbench.config import GateSection
from workbench.pipeline.gate import GateDecision, decide

AUC = "holdout_auc"


def _gate(**kw: object) -> GateSection:
    return GateSection(**kw)  # type: ignore[arg-type]


def test_no_champion_passes() -> None:
    d = decide(AUC, {AUC: 0.71}, None, _gate())
    assert d.passed and d.decision == "pass"
    assert d.champion is None and d.delta is None
    assert "no production model" in d.reason


def test_better_candidate_passes_with_delta() -> None:
    d = decide(AUC, {AUC: 0.92}, {AUC: 0.90}, _gate())
    assert d.passed
    assert d.candidate == 0.92 and d.champion == 0.90
    assert d.delta == pytest.approx(0.02)
    assert "beats" in d.reason and "does not beat" not in d.reason


def test_worse_candidate_fails() -> None:
    d = decide(AUC, {AUC: 0.88}, {AUC: 0.90}, _gate())
    assert not d.passed and d.decision == "fail"
    assert d.delta == pytest.approx(-0.02)
    assert "does not beat" in d.reason


def test_tie_fails_with_zero_min_improvement() -> None:
    d = decide(AUC, {AUC: 0.9}, {AUC: 0.9}, _gate(min_improvement=0.0))
    assert not d.passed
    assert d.delta == 0.0


def test_improvement_below_min_improvement_fails() -> None:
    gate = _gate(min_improvement=0.01)
    assert not decide(AUC, {AUC: 0.905}, {AUC: 0.90}, gate).passed
    assert decide(AUC, {AUC: 0.915}, {AUC: 0.90}, gate).passed


def test_negative_min_improvement_tolerates_small_loss() -> None:
    gate = _gate(min_improvement=-0.01)
    assert decide(AUC, {AUC: 0.895}, {AUC: 0.90}, gate).passed
    assert decide(AUC, {AUC: 0.90}, {AUC: 0.90}, gate).passed  # a tie is tolerated too
    assert not decide(AUC, {AUC: 0.88}, {AUC: 0.90}, gate).passed


def test_logloss_lower_is_better() -> None:
    metric = "logloss"
    assert decide(metric, {metric: 0.10}, {metric: 0.12}, _gate()).passed
    worse = decide(metric, {metric: 0.14}, {metric: 0.12}, _gate())
    assert not worse.passed
    assert worse.delta == pytest.approx(0.02)  # raw difference, candidate - champion


def test_logloss_min_improvement_is_a_decrease() -> None:
    metric = "logloss"
    gate = _gate(min_improvement=0.01)
    assert not decide(metric, {metric: 0.115}, {metric: 0.12}, gate).passed
    assert decide(metric, {metric: 0.105}, {metric: 0.12}, gate).passed


def test_holdout_logloss_lower_is_better_as_the_pipeline_names_it() -> None:
    metric = "holdout_logloss"  # what pipeline.run passes for [evaluation] metric = "logloss"
    assert decide(metric, {metric: 0.10}, {metric: 0.12}, _gate()).passed
    assert not decide(metric, {metric: 0.14}, {metric: 0.12}, _gate()).passed


def test_max_regression_blocks_a_better_primary_metric() -> None:
    gate = _gate(max_regression={"holdout_recall": 0.05})
    cand = {AUC: 0.95, "holdout_recall": 0.40}
    champ = {AUC: 0.90, "holdout_recall": 0.50}
    d = decide(AUC, cand, champ, gate)
    assert not d.passed
    assert "holdout_recall regressed" in d.reason


def test_max_regression_within_allowance_passes() -> None:
    gate = _gate(max_regression={"holdout_recall": 0.05})
    cand = {AUC: 0.95, "holdout_recall": 0.48}
    champ = {AUC: 0.90, "holdout_recall": 0.50}
    assert decide(AUC, cand, champ, gate).passed


def test_max_regression_on_lower_is_better_metric() -> None:
    gate = _gate(max_regression={"logloss": 0.01})
    champ = {"auc": 0.90, "logloss": 0.10}
    assert not decide("auc", {"auc": 0.95, "logloss": 0.13}, champ, gate).passed
    # logloss going down is an improvement, never a regression
    assert decide("auc", {"auc": 0.95, "logloss": 0.01}, champ, gate).passed


def test_max_regression_on_holdout_logloss() -> None:
    gate = _gate(max_regression={"holdout_logloss": 0.01})
    champ = {AUC: 0.90, "holdout_logloss": 0.10}
    assert not decide(AUC, {AUC: 0.95, "holdout_logloss": 0.13}, champ, gate).passed
    assert decide(AUC, {AUC: 0.95, "holdout_logloss": 0.01}, champ, gate).passed


def test_max_regression_ignores_metrics_missing_on_either_side() -> None:
    gate = _gate(max_regression={"holdout_recall": 0.0})
    assert decide(AUC, {AUC: 0.95}, {AUC: 0.90, "holdout_recall": 0.9}, gate).passed


def test_nan_candidate_fails() -> None:
    d = decide(AUC, {AUC: math.nan}, {AUC: 0.9}, _gate())
    assert not d.passed
    assert "no holdout_auc" in d.reason


def test_missing_candidate_metric_fails_even_without_champion() -> None:
    d = decide(AUC, {"holdout_logloss": 0.1}, None, _gate())
    assert not d.passed


def test_champion_without_metric_lets_candidate_win() -> None:
    d = decide(AUC, {AUC: 0.8}, {"holdout_logloss": 0.1}, _gate())
    assert d.passed
    assert "production model has no" in d.reason


def test_to_dict_is_json_ready() -> None:
    d = decide(AUC, {AUC: 0.92}, {AUC: 0.90}, _gate())
    out = d.to_dict()
    assert out["decision"] == "pass"
    assert set(out) >= {"decision", "passed", "reason", "metric", "candidate", "champion", "delta"}
    assert isinstance(d, GateDecision)


def test_max_regression_bare_name_means_the_holdout_metric() -> None:
    """`max_regression = {logloss = 0.01}` applies to holdout_logloss, as the pipeline's
    metrics are named (it used to be skipped silently)."""
    gate = _gate(max_regression={"logloss": 0.01})
    champ = {AUC: 0.90, "holdout_logloss": 0.10}
    d = decide(AUC, {AUC: 0.95, "holdout_logloss": 0.13}, champ, gate)
    assert not d.passed and "holdout_logloss regressed" in d.reason
