"""Business value per variant from the real prediction log (PredictionLogger) joined with the
real labels log, through DuckDB; and the canary rule's value margin."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import CanarySection
from workbench.config_monitoring import ValueSection
from workbench.serving.canary_rule import WindowStats, judge
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.stats import compare, variant_stats
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow
from workbench.tasks import ModelTask

FRAUD = ValueSection(true_positive=100, false_positive=-5, false_negative=-200, unit="EUR")

# (output, label) planted per variant, threshold 0.6: production tp 3, fp 1, fn 1, tn 5;
# canary tp 1, fp 2, fn 3, tn 4
PLANTED = {
    "production": [(0.9, 1)] * 3 + [(0.7, 0)] + [(0.2, 1)] + [(0.1, 0)] * 4 + [(0.59, 0)],
    "canary": [(0.8, 1)] + [(0.6, 0)] * 2 + [(0.3, 1)] * 3 + [(0.4, 0)] * 4,
}


def _log(root: Path, planted: dict[str, list[tuple[float, float]]], unlabelled: int = 3) -> None:
    labels = []
    with PredictionLogger(root, max_rows=100, interval_s=0.05) as logger:
        for variant, rows in planted.items():
            version = 2 if variant == "canary" else 1
            for i, (output, label) in enumerate(rows + [(0.99, 1.0)] * unlabelled):
                rid = f"{variant}-{i}"
                logger.log(rid, "fraud", version, variant, {"i": i}, output, 3.0, 200, None)
                if i < len(rows):
                    labels.append({"ts": utcnow(), "request_id": rid, "label": float(label)})
    ParquetLog(root, "labels").append({**r, "source": "t.csv"} for r in labels)


def test_binary_value_per_variant_at_the_models_threshold(tmp_path: Path) -> None:
    _log(tmp_path, PLANTED)
    task = ModelTask("binary", [0, 1], threshold=0.6)
    stats = variant_stats(Db(tmp_path), 600, now=utcnow(), task=task, value=FRAUD)
    p, c = stats["production"], stats["canary"]
    assert p.outcomes == {"tp": 3, "fp": 1, "fn": 1, "tn": 5, "abs_error": 0, "n": 10}
    assert (c.outcomes["tp"], c.outcomes["fp"], c.outcomes["fn"], c.outcomes["tn"]) == (1, 2, 3, 4)
    assert p.value_per_1k == pytest.approx(1000 * (300 - 5 - 200) / 10)
    assert c.value_per_1k == pytest.approx(1000 * (100 - 10 - 600) / 10)
    assert p.value_unit == "EUR" and p.to_dict()["value_per_1k"] == p.value_per_1k
    assert compare(p, c)["value_per_1k_delta"] == pytest.approx(-51_000 - 9_500)
    # Without [monitoring.value] the counts are there, the value is not.
    plain = variant_stats(Db(tmp_path), 600, now=utcnow(), task=task)["production"]
    assert plain.outcomes["tp"] == 3 and plain.value_per_1k is None


def test_regression_value_prices_the_absolute_error(tmp_path: Path) -> None:
    _log(tmp_path, {"production": [(10.0, 12.0), (5.0, 4.0), (7.0, 7.0)]}, unlabelled=1)
    task = ModelTask("regression", [])
    s = variant_stats(
        Db(tmp_path), 600, now=utcnow(), task=task, value=ValueSection(abs_error=-2.0)
    )["production"]
    assert (s.outcomes["abs_error"], s.outcomes["n"]) == (3.0, 3)
    assert s.value_per_1k == pytest.approx(1000 * -2.0 * 3.0 / 3)
    multi = variant_stats(Db(tmp_path), 600, now=utcnow(), task=ModelTask("multiclass", [0, 1]))
    assert multi["production"].outcomes == {} and multi["production"].value_per_1k is None


def _window(requests: int, value: float | None, labelled: int) -> WindowStats:
    return WindowStats(requests, 0, 5.0, value_per_1k=value, labelled=labelled)


def test_canary_rule_rolls_back_on_a_value_drop() -> None:
    rule = CanarySection(min_requests=50, min_value_drop_per_1k=500.0)
    prod = _window(400, 2_000.0, 200)
    reason = judge(rule, prod, _window(100, 1_000.0, 60))
    assert reason is not None and "value" in reason and "1,000" in reason
    assert judge(rule, prod, _window(100, 1_600.0, 60)) is None  # within the margin
    assert judge(rule, prod, _window(100, 1_000.0, 20)) is None  # too few labelled rows
    assert judge(rule, prod, _window(100, None, 0)) is None  # no labels yet
    off = CanarySection(min_requests=50)  # None: the value is not judged
    assert off.min_value_drop_per_1k is None
    assert judge(off, prod, _window(100, -9_000.0, 100)) is None


def test_canary_status_table_shows_value_within_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.cli.serving import _print_status

    _log(tmp_path, PLANTED)
    task = ModelTask("binary", [0, 1], threshold=0.6)
    stats = variant_stats(Db(tmp_path), 600, now=utcnow(), task=task, value=FRAUD)
    report = {
        "model": "fraud",
        "state": {"generation": 2, "canary": {"version": 2, "traffic": 0.5}},
        "server": None,
        "production_version": 1,
        "task": task.to_dict(),
        "variants": {name: s.to_dict() for name, s in stats.items()},
        "value": {"unit": "EUR"},
    }
    monkeypatch.setenv("COLUMNS", "80")
    _print_status(report, 600)
    out = capsys.readouterr().out
    assert "value/1k" in out and "EUR" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1]}
    assert rows["production"].split()[-1] == "+9.5k"  # 9,500 per 1,000
    assert rows["canary"].split()[-1] == "-51.0k"
    assert max(len(line) for line in out.splitlines()) <= 80
    del report["value"]  # no [monitoring.value]: no column
    _print_status(report, 600)
    assert "value/1k" not in capsys.readouterr().out
