"""A user's own project, end to end, for each task and each trainer: scikit-learn's bundled
datasets written as CSV files nobody here shaped (breast cancer's column names have spaces),
`init --data` with the task inferred, validate, pipeline, promote, serve, predict, labels in
the classes' own values, a canary with the task's live metric, drift on a shifted copy, and a
monitor round. Real components throughout: MLflow's SQLite store, the server on loopback,
Parquet logs through DuckDB."""

from __future__ import annotations

import math
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import tomli_w

from tests.helpers import cli_json
from tests.integration.test_serving import Server, start_server
from tests.sklearn_projects import frame
from workbench.cli.main import main
from workbench.project import Project

pytestmark = pytest.mark.integration

TASKS = ["binary", "multiclass", "regression"]
#: the trainer section each trainer gets (small and fast)
TRAINERS: dict[str, dict[str, Any]] = {
    "lightgbm": {"plugin": "lightgbm", "params": {"num_iterations": 30}},
    "xgboost": {"plugin": "xgboost", "params": {"n_estimators": 30, "max_depth": 3}},
    "sklearn": {"plugin": "sklearn", "params": {"max_iter": 30}},
}
#: what `canary status` reports as the live metric per task
LIVE_METRIC = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}


def make_project(tmp: Path, task: str, trainer: str, capsys: pytest.CaptureFixture[str]) -> Path:
    data = tmp / f"{task}.csv"
    frame(task).write_csv(data)
    root = tmp / "project"
    capsys.readouterr()
    assert main(["init", str(root), "--data", str(data), "--target", "target"]) == 0
    said = capsys.readouterr().out
    assert f"task: {task}" in said  # inferred from the target, not told
    config = tomllib.loads((root / "workbench.toml").read_text())
    config["trainer"] = TRAINERS[trainer]
    config.setdefault("serving", {})["log_interval_s"] = 0.2
    config.setdefault("drift", {})["min_rows"] = 50
    config.setdefault("monitor", {})["min_rows"] = 50
    (root / "workbench.toml").write_text(tomli_w.dumps(config))
    return root


def check_response(task: str, body: dict[str, Any], classes: list[Any]) -> None:
    if task == "binary":
        assert 0.0 <= body["prediction"] <= 1.0
        assert body["label"] in classes
    elif task == "multiclass":
        assert body["prediction"] in classes
        probabilities = body["probabilities"]
        assert set(map(str, probabilities)) == set(map(str, classes))
        assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-6)
    else:
        assert isinstance(body["prediction"], float)


def send_traffic(server: Server, records: list[dict[str, Any]], prefix: str) -> list[str]:
    """One request per record (the canary's share is drawn per request)."""
    ids = []
    for i, record in enumerate(records):
        status, body = server.call("POST", "/predict", {**record, "request_id": f"{prefix}-{i}"})
        assert status == 200, body
        ids.append(body["request_id"])
    return ids


def canary_report(capsys: pytest.CaptureFixture[str], proj: list[str]) -> dict[str, Any]:
    """`canary status` once both variants' predictions and labels are in the logs."""
    deadline = time.monotonic() + 20
    while True:
        report = cli_json(capsys, *proj, "canary", "status", "--window", "600")
        variants = report["variants"]
        ready = set(variants) == {"production", "canary"} and all(
            v["labeled"] > 20 for v in variants.values()
        )
        if ready or time.monotonic() > deadline:
            return report
        time.sleep(0.3)


@pytest.mark.parametrize("trainer", list(TRAINERS))
@pytest.mark.parametrize("task", TASKS)
def test_own_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, trainer: str
) -> None:
    root = make_project(tmp_path, task, trainer, capsys)
    proj = ["--project", str(root)]
    assert main([*proj, "validate"]) == 0

    first = cli_json(capsys, *proj, "pipeline", "run", "--runner", "local")
    metric = first["gate"]["metric"]
    assert metric == {"binary": "holdout_auc", "multiclass": "holdout_macro_f1",
                      "regression": "holdout_rmse"}[task]  # fmt: skip
    quality = first["metrics"][metric]
    assert (30 < quality < 90) if task == "regression" else quality > 0.8
    assert main([*proj, "promote", "1", "--reason", "first model"]) == 0
    second = cli_json(capsys, *proj, "pipeline", "run", "--runner", "local")
    assert second["version"] == 2 and second["champion_version"] == 1

    project = Project.load(root)
    data = frame(task)
    features = project.config.features
    classes = sorted(data["target"].unique().to_list()) if task != "regression" else []
    records = data.select(features).to_dicts()
    server = start_server(project)
    try:
        status, body = server.call("POST", "/predict", records[0])
        assert status == 200, body
        check_response(task, body, classes)
        assert " " in features[0] or task != "binary"  # breast cancer: "mean radius"

        assert main([*proj, "deploy", "2", "--canary", "--traffic", "50", "--reason", "t"]) == 0
        ids = send_traffic(server, records[:300], "e2e")
        truth = data["target"].to_list()[: len(ids)]
        labels = [{"request_id": rid, "label": y} for rid, y in zip(ids, truth, strict=True)]
        status, body = server.call("POST", "/labels", {"labels": labels})
        assert status == 200 and body["accepted"] == len(labels) > 150, body
        variants = canary_report(capsys, proj)["variants"]
        assert set(variants) == {"production", "canary"}
        for variant in variants.values():
            assert variant["metric_name"] == LIVE_METRIC[task], variant
            assert variant["metric"] is not None and np.isfinite(variant["metric"])
    finally:
        server.stop()

    # drift of a shifted copy: the most important numeric features moved by three spreads
    shifted = data.with_columns([(pl.col(c) + 3 * pl.col(c).std()).alias(c) for c in features[:3]])
    shifted_file = tmp_path / "shifted.parquet"
    shifted.write_parquet(shifted_file)
    drift = cli_json(capsys, *proj, "drift", "--data", str(shifted_file), code=1)
    alerts = {f["feature"] for f in drift["features"] if f["status"] == "alert"}
    assert set(features[:3]) <= alerts

    monitor = cli_json(capsys, *proj, "monitor", "--once", "--dry-run")
    assert isinstance(monitor["fired"], bool) and monitor["reason"] and not monitor["acted"]
    assert monitor["error"] is None
