"""Drift checks, `workbench drift` and the monitor on a real trained project: reference
profiles saved at training, predictions in the real Parquet log, labels, the drift log in
DuckDB, real retraining through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workbench.cli.main import main
from workbench.monitoring import checks as drift_checks
from workbench.monitoring import monitor
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.predictors import load_predictor, model_dir_for
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow

pytestmark = pytest.mark.integration


def _rows(project: Project, n: int, drifted: bool = False) -> pl.DataFrame:
    frame = pl.read_parquet(project.data_path).tail(n)
    if drifted:
        frame = frame.with_columns(
            (pl.col("amount") * 3).alias("amount"),
            (pl.col("avg_amount_30d") * 3).alias("avg_amount_30d"),
            pl.lit("crypto_exchange").alias("merchant_category"),
        )
    return frame


def _log_traffic(
    project: Project, frame: pl.DataFrame, prefix: str, version: int = 1, labels: bool = False
) -> None:
    features = project.config.features
    records = frame.select(features).to_dicts()
    predictor = load_predictor(model_dir_for(project, version), version)
    outputs = predictor.predict(records)
    ids = [f"{prefix}-{i}" for i in range(len(records))]
    with PredictionLogger(project.logs) as log:
        log.log_many(ids, project.config.model_name, version, "production", records, outputs, 1.0)
    if labels:
        target = frame[project.config.data.target].to_list()
        ParquetLog(project.logs, "labels").append(
            [
                {"ts": utcnow(), "request_id": rid, "label": float(y), "source": "test"}
                for rid, y in zip(ids, target, strict=True)
            ]
        )


def test_training_saves_a_reference_profile(trained_project: Project) -> None:
    for version in (1, 2):
        profile = drift_checks.load_profile(trained_project, version)
        assert set(profile.features) == set(trained_project.config.features)
        assert profile.prediction is not None
        assert profile.features["merchant_category"].kind == "categorical"
        amount = profile.features["amount"]
        assert amount.kind == "numeric" and len(amount.decile_counts) == 10
        assert sum(amount.decile_counts) == amount.n - amount.missing - amount.nonfinite


def test_drift_on_predictions_alerts_and_is_logged(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(trained_project.root)
    _log_traffic(trained_project, _rows(trained_project, 1500), "clean")
    assert main(["drift", "--project", root]) == 0  # the same world: no alert
    capsys.readouterr()
    _log_traffic(trained_project, _rows(trained_project, 1500, drifted=True), "moved")
    assert main(["drift", "--last", "1500", "--json", "--project", root]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["n_rows"] == 1500 and report["status"] == "alert"
    status = {f["feature"]: f for f in report["features"]}
    assert status["amount"]["status"] == "alert"
    assert status["merchant_category"]["status"] == "alert"
    assert status["merchant_category"]["unseen"] == {"crypto_exchange": 1500}
    assert status["hour"]["status"] == "ok"
    db = Db(trained_project.logs)
    logged = db.rows(
        "SELECT feature, status FROM drift WHERE check_id = ? ORDER BY feature",
        [report["check_id"]],
    )
    db.close()
    assert {r["feature"]: r["status"] for r in logged}["amount"] == "alert"
    assert "__prediction__" in {r["feature"] for r in logged}


def test_drift_against_a_data_file_and_bad_input(
    trained_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(trained_project.root)
    moved = tmp_path / "moved.parquet"
    _rows(trained_project, 3000, drifted=True).write_parquet(moved)
    assert main(["drift", "--data", str(moved), "--project", root]) == 1
    assert "alert" in capsys.readouterr().out
    same = tmp_path / "same.csv"
    _rows(trained_project, 3000).drop("ts").write_csv(same)
    assert main(["drift", "--data", str(same), "--project", root]) == 0
    capsys.readouterr()
    assert main(["drift", "--window", "soon", "--project", root]) == 2
    assert "--window 'soon'" in capsys.readouterr().err
    assert main(["drift", "--data", str(tmp_path / "nope.parquet"), "--project", root]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n1,2\n")
    assert main(["drift", "--data", str(broken), "--project", root]) == 2
    assert "missing column(s)" in capsys.readouterr().err


def _enable_monitor(project: Project, **extra: Any) -> Project:
    settings = {"min_rows": 500, "cooldown_s": 3600, "canary_traffic": 0, **extra}
    lines = ["", "[monitor]", *(f"{k} = {json.dumps(v)}" for k, v in settings.items())]
    with open(project.root / "workbench.toml", "a") as fh:
        fh.write("\n".join(lines) + "\n")
    return Project.load(project.root)


def test_monitor_retrains_on_decay_once_then_cools_down(trained_project: Project) -> None:
    project = _enable_monitor(trained_project)
    quiet = monitor.check_once(project)
    assert not quiet.fired and "only 0 predictions" in quiet.reason
    # drifted traffic whose labels show the model failing
    frame = _rows(project, 2000, drifted=True).with_columns(
        (1 - pl.col(project.config.data.target)).alias(project.config.data.target)
    )
    _log_traffic(project, frame, "bad", labels=True)
    dry = monitor.check_once(project, dry_run=True)
    assert dry.fired and not dry.acted and "auc down" in dry.reason
    series = dry.check["metric"]["series"]
    assert sum(p["labeled"] for p in series) == 2000  # decay over the window's time slices
    assert all(p["value"] is None or p["value"] < 0.5 for p in series)
    before = {v.version for v in registry.list_versions(project)}
    fired = monitor.check_once(project)
    assert fired.fired and fired.acted and fired.error is None, fired
    assert fired.candidate is not None and fired.candidate not in before
    assert "drift alert on" in fired.reason or "auc down" in fired.reason
    again = monitor.check_once(project)
    assert again.fired and not again.acted and "cooldown" in again.reason
    db = Db(project.logs)
    rows = db.rows("SELECT actor, reason FROM audit WHERE action = 'monitor.retrain'")
    db.close()
    assert len(rows) == 1 and rows[0]["actor"] == "monitor" and rows[0]["reason"] == fired.reason
    # the retraining's job names the check that triggered it: lineage links them exactly
    check_id = fired.check["check_id"]
    db = Db(project.logs)
    (job,) = db.rows(
        "SELECT job_id, run_id, args FROM jobs WHERE kind = 'train' AND json_extract_string("
        "args, '$.trigger') = ? AND status = 'succeeded'",
        [check_id],
    )
    db.close()
    assert json.loads(job["args"])["pipeline"] is True
    from workbench.lineage import graph

    lin = graph.build(project, check_id, depth=2)
    (retrain,) = [n for n in lin.downstream(lin.root) if n.kind == "retrain"]
    assert retrain.details["job_id"] == job["job_id"]
    assert f"job:{job['job_id']}" in {n.key for n in lin.downstream(retrain.key)}


def test_too_few_rows_are_not_judged(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_traffic(trained_project, _rows(trained_project, 20, drifted=True), "few")
    assert main(["drift", "--json", "--project", str(trained_project.root)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_rows"] == 20 and report["status"] == "no_data" and report["alerts"] == 0
    amount = next(f for f in report["features"] if f["feature"] == "amount")
    assert amount["status"] == "no_data" and amount["stats"]["psi"] > 0.25  # still reported


def test_drift_of_a_file_without_production_checks_the_newest_version(
    trained_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No version serves production: a data file is checked against the newest version,
    saying so; the predictions (production's) still need one."""
    from workbench.store import tracking

    root = str(trained_project.root)
    name = trained_project.config.model_name
    tracking.client(trained_project).delete_registered_model_alias(name, "production")
    same = tmp_path / "same.parquet"
    _rows(trained_project, 3000).write_parquet(same)
    assert main(["drift", "--data", str(same), "--project", root]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "no production version: checked against the newest, v2"
    assert main(["drift", "--data", str(same), "--json", "--project", root]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 2 and report["note"].endswith("the newest, v2")
    assert main(["drift", "--project", root]) == 2
    err = capsys.readouterr().err
    assert "has no production version to check" in err and "--data FILE" in err
