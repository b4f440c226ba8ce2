"""CBPE on a real trained project: the calibration stored at training (and fitted on first use
for a version without it), the estimate on a shifted sample logged through the real
prediction log writer against the realized metric of its labels, `workbench performance`,
the monitor firing on an estimated drop, and regression saying what it cannot estimate."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from workbench_samples.fraud_detection import generate

from workbench.cli.main import main
from workbench.monitoring import estimate, monitor
from workbench.project import Project
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.predictors import load_predictor, model_dir_for
from workbench.store.parquet_log import ParquetLog, utcnow
from workbench.training import calibration

pytestmark = pytest.mark.integration


def _shifted_sample(rows: int = 24_000) -> pl.DataFrame:
    """Rows from a later month (the same world: P(fraud | features) unchanged), sub-sampled
    by their features: online and electronics purchases and night hours kept, the rest thinned
    to a tenth, so the class prior and the feature mix both move (covariate shift)."""
    frame = generate.generate(n_rows=rows, seed=2027, start=datetime(2026, 4, 1))
    rng = np.random.default_rng(5)
    risky = frame["merchant_category"].is_in(["online_retail", "electronics"]) | (frame["hour"] < 6)
    keep = risky.to_numpy() | (rng.random(frame.height) < 0.1)
    return frame.filter(pl.Series(keep))


def _log(project: Project, frame: pl.DataFrame, prefix: str, labels: bool = True) -> np.ndarray:
    """Score `frame` with v1, log it through the prediction log writer (and its labels)."""
    records = frame.select(project.config.features).to_dicts()
    outputs = load_predictor(model_dir_for(project, 1), 1).predict(records)
    ids = [f"{prefix}-{i}" for i in range(len(records))]
    with PredictionLogger(project.logs) as log:
        for start in range(0, len(records), 1_000):  # requests of 1,000 records
            stop = start + 1_000
            log.log_many(
                ids[start:stop], project.config.model_name, 1, "production",
                records[start:stop], outputs[start:stop], 1.0,
            )  # fmt: skip
    if labels:
        target = frame[project.config.data.target].to_list()
        ParquetLog(project.logs, "labels").append(
            [
                {"ts": utcnow(), "request_id": rid, "label": float(y), "source": "test"}
                for rid, y in zip(ids, target, strict=True)
            ]
        )
    return np.asarray(outputs, dtype=float)


def test_training_stores_the_calibration_and_an_old_version_gets_it_lazily(
    trained_project: Project, tmp_path: Path
) -> None:
    model_dir = model_dir_for(trained_project, 1)
    stored = calibration.Calibration.load(model_dir / calibration.CALIBRATION_FILE)
    assert stored.kind == "platt" and 1_000 < stored.n < 2_000 and 0 < stored.positives < 200
    assert "holdout of snapshot" in stored.source
    old = tmp_path / "old_model"
    shutil.copytree(model_dir, old)
    (old / calibration.CALIBRATION_FILE).unlink()  # registered before calibration existed
    lazy = calibration.load(trained_project, old, 1)
    assert (old / calibration.CALIBRATION_FILE).is_file()
    assert "first use" in lazy.source
    assert lazy.a == pytest.approx(stored.a) and lazy.b == pytest.approx(stored.b)


def test_estimate_on_a_shifted_sample_is_within_003_auc_of_the_realized(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _shifted_sample()
    _log(trained_project, frame, "shifted")
    report = estimate.performance(trained_project)
    assert report["estimable"] and report["task"] == "binary" and report["why_not"] is None
    assert report["count"] == report["labelled"] == frame.height
    est, real = report["estimated"], report["realized"]
    holdout_prior = 0.023
    assert real["positive_rate"] > 1.5 * holdout_prior  # the prior did move
    assert abs(est["auc"] - real["auc"]) < 0.03, (est["auc"], real["auc"])
    # The holdout (47 frauds in 1,600 rows) runs richer in fraud than the world it is drawn
    # from: the calibrated probabilities overstate the prior by about a point.
    assert abs(est["accuracy"] - real["accuracy"]) < 0.02
    assert abs(est["positive_rate"] - real["positive_rate"]) < 0.02
    assert len(report["series"]) == estimate.SERIES_BUCKETS
    assert sum(p["count"] for p in report["series"]) == frame.height

    root = str(trained_project.root)
    assert main(["performance", "--project", root]) == 0
    text = capsys.readouterr().out
    assert "est auc" in text and "overall" in text and "an estimate, not labels" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert main(["performance", "--json", "--window", "1h", "--project", root]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["window"] == "1h" and again["estimated"]["auc"] == pytest.approx(est["auc"])


def test_the_monitor_fires_on_an_estimated_drop_before_any_label(trained_project: Project) -> None:
    """Traffic of hard cases only (raw scores in a middle band, where the model ranks badly),
    no labels: the estimate sees the AUC fall, the policy fires and says it is an estimate."""
    frame = _shifted_sample(16_000)
    records = frame.select(trained_project.config.features).to_dicts()
    scores = np.asarray(load_predictor(model_dir_for(trained_project, 1), 1).predict(records))
    hard = frame.filter(pl.Series((scores > 0.002) & (scores < 0.05)))
    assert hard.height >= 500
    _log(trained_project, hard, "hard", labels=False)
    toml = trained_project.root / "workbench.toml"
    base = toml.read_text()
    toml.write_text(base + "\n[monitor]\nmin_rows = 100\nalert_features = 100\n")
    quiet = monitor.check_once(Project.load(trained_project.root), dry_run=True)
    assert not quiet.fired  # off by default: no labels, no drift alerts, nothing fires
    toml.write_text(
        base + "\n[monitor]\nmin_rows = 100\nalert_features = 100\nestimated_metric_drop = 0.05\n"
    )
    outcome = monitor.check_once(Project.load(trained_project.root), dry_run=True)
    assert outcome.fired and not outcome.acted
    assert "estimated auc down" in outcome.reason and "CBPE estimate" in outcome.reason
    report = estimate.performance(trained_project)
    assert report["labelled"] == 0 and report["realized"] is None
    assert report["drop"] >= 0.05


def test_regression_says_what_is_not_estimable(tmp_path: Path) -> None:
    from tests.sklearn_projects import holdout, write_project
    from workbench.jobs.control import resolve_runner
    from workbench.pipeline import flow as pipeline
    from workbench.registry import versions as registry

    project = Project.load(write_project(tmp_path / "diabetes", "regression"))
    done = pipeline.run(project, resolve_runner(project, "local"))
    registry.promote(project, done.version, "test")
    assert not (model_dir_for(project, done.version) / calibration.CALIBRATION_FILE).exists()
    x, y = holdout(project)
    records = x.to_dict("records")
    outputs = load_predictor(model_dir_for(project, done.version), done.version).predict(records)
    with PredictionLogger(project.logs) as log:
        log.log_many(
            [f"r-{i}" for i in range(len(records))], project.config.model_name, done.version,
            "production", records, outputs, 1.0,
        )  # fmt: skip
    report = estimate.performance(project)
    assert report["task"] == "regression" and not report["estimable"]
    assert report["estimated"] is None and "uncertainty" in report["why_not"]
    assert report["predictions"]["mean"] == pytest.approx(float(np.mean(outputs)))
    assert report["count"] == len(records) and report["labelled"] == 0
    assert float(y.std()) > 0
