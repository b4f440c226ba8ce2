"""Drift, performance decay and the monitor follow the model's task, on projects trained for
real from scikit-learn's bundled datasets (breast cancer: binary, wine: multiclass with named
classes, diabetes: regression): predictions scored by the registered model are written to
the real Parquet prediction log with their labels, and `workbench drift` reads them back
through DuckDB."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn import datasets
from sklearn import metrics as skm

from workbench.cli.main import main
from workbench.monitoring import monitor
from workbench.pipeline import flow as pipeline
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.serving.predictors import model_dir_for
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow
from workbench.tasks import ModelTask
from workbench.training.scoring import load_scorer, scalar_output

pytestmark = pytest.mark.integration

WINES = {0: "barolo", 1: "grignolino", 2: "barbera"}
#: A breast-cancer column renamed with quotes and a dot (JSON keys that need quoting).
ODD = 'worst "area".v2'
LOADERS: dict[str, Callable[..., Any]] = {
    "binary": datasets.load_breast_cancer,
    "multiclass": datasets.load_wine,
    "regression": datasets.load_diabetes,
}


def _write_project(root: Path, task: str) -> Path:
    frame = pl.from_pandas(LOADERS[task](as_frame=True).frame)
    if task == "binary":
        frame = frame.rename({"worst area": ODD})
    if task == "multiclass":
        frame = frame.with_columns(pl.col("target").replace_strict(WINES, return_dtype=pl.String))
    (root / "data").mkdir(parents=True)
    frame.write_parquet(root / "data" / "data.parquet")
    target_type = {"binary": "int", "multiclass": "str", "regression": "float"}[task]
    schema = "".join(
        f'[schema.{json.dumps(c)}]\ntype = "{target_type if c == "target" else "float"}"\n'
        for c in frame.columns
    )
    (root / "workbench.toml").write_text(
        f'[project]\nname = "{task}_drift"\n[data]\npath = "data/data.parquet"\n'
        f'target = "target"\nsplit = "random"\n[task]\ntype = "{task}"\n'
        "[validation]\nmin_rows = 10\n[trainer.params]\nnum_iterations = 25\n"
        "[drift]\nmin_rows = 30\n"
        "[monitor]\nmin_rows = 30\ncooldown_s = 3600\ncanary_traffic = 0\n" + schema
    )
    return root


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each task's project, trained once (v1, promoted to production) when first asked."""
    done: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in done:
            root = _write_project(tmp_path_factory.mktemp(task) / "proj", task)
            project = Project.load(root)
            from workbench.jobs.control import resolve_runner

            result = pipeline.run(project, resolve_runner(project, "local"))
            registry.promote(project, result.version, "test")
            done[task] = root
        return done[task]

    return get


@pytest.fixture
def project_for(templates: Callable[[str], Path], tmp_path: Path) -> Callable[[str], Project]:
    def make(task: str) -> Project:
        root = tmp_path / task
        shutil.copytree(templates(task), root)
        return Project.load(root)

    return make


def _shifted(project: Project) -> pl.DataFrame:
    """A shifted copy of the project's data, per task."""
    frame = pl.read_parquet(project.data_path)
    task = project.config.task.type
    if task == "binary":  # bigger tumours
        grow = ["mean radius", "mean perimeter", "mean area", "worst radius", ODD]
        return frame.with_columns([pl.col(c) * 1.6 for c in grow])
    if task == "multiclass":  # one wine only: the predicted class frequencies move
        return frame.filter(pl.col("target") == "barolo")
    return frame.with_columns(pl.col("bmi") + 0.1, pl.col("s5") + 0.1)  # heavier patients


def _log(
    project: Project,
    frame: pl.DataFrame,
    prefix: str,
    labels: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score `frame` with v1, write the prediction log (and the labels: class indices or
    values, `labels(true, output)` when given); returns (labels, outputs) as logged."""
    task = ModelTask.load(model_dir_for(project, 1))
    features = project.config.features
    x = frame.select(features)
    outputs = scalar_output(task, load_scorer(model_dir_for(project, 1), task)(x.to_pandas()))
    true = frame["target"].to_list()
    truth = np.array(
        [task.index_of(y) if task.type != "regression" else y for y in true], dtype=float
    )
    logged = truth if labels is None else labels(truth, outputs)
    ids = [f"{prefix}-{i}" for i in range(frame.height)]
    now = utcnow()
    ParquetLog(project.logs, "predictions").append(
        [
            {
                "ts": now,
                "request_id": rid,
                "model": project.config.model_name,
                "version": 1,
                "variant": "production",
                "features": json.dumps(record),
                "output": float(out),
                "latency_ms": 1.0,
                "status": 200,
                "error": None,
            }
            for rid, record, out in zip(ids, x.to_dicts(), outputs, strict=True)
        ]
    )
    ParquetLog(project.logs, "labels").append(
        [
            {"ts": now, "request_id": rid, "label": float(y), "source": "test"}
            for rid, y in zip(ids, logged, strict=True)
        ]
    )
    return logged, np.asarray(outputs, dtype=float)


def _drift_json(project: Project, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main(["drift", "--json", "--project", str(project.root)])
    return code, json.loads(capsys.readouterr().out)


def _sklearn(task: str, labels: np.ndarray, outputs: np.ndarray) -> float:
    if task == "binary":
        return float(skm.roc_auc_score(labels, outputs))
    if task == "multiclass":
        return float(skm.f1_score(labels.astype(int), outputs.astype(int), average="macro"))
    return math.sqrt(float(skm.mean_squared_error(labels, outputs)))


def _wrong(task: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """Labels showing the model failing (classification); regression keeps the truth, which
    the shifted inputs make it miss."""
    if task == "binary":
        return lambda y, _out: 1 - y
    if task == "multiclass":
        return lambda y, _out: (y + 1) % 3
    return None


@pytest.mark.parametrize(
    ("task", "metric", "test"),
    [
        ("binary", "auc", "auc_drop"),
        ("multiclass", "macro_f1", "macro_f1_drop"),
        ("regression", "rmse", "rmse_rise"),
    ],
)
def test_drift_and_decay_follow_the_task(
    project_for: Callable[[str], Project],
    capsys: pytest.CaptureFixture[str],
    task: str,
    metric: str,
    test: str,
) -> None:
    project = project_for(task)
    frame = _shifted(project)
    labels, outputs = _log(project, frame, "shifted", _wrong(task))
    code, report = _drift_json(project, capsys)
    assert code == 1 and report["task"] == task and report["n_rows"] == frame.height

    pred = report["prediction"]
    assert pred["status"] == "alert", pred
    if task == "multiclass":  # class frequencies, by class name
        assert pred["kind"] == "categorical" and pred["test"] == "psi"
        assert pred["stats"]["chi2_p"] < 0.01
        shares = {c["class"]: c for c in pred["classes"]}
        assert set(shares) <= set(WINES.values()) and "barolo" in shares
        barolo = ModelTask.load(model_dir_for(project, 1)).index_of("barolo")
        predicted = float(np.mean(outputs == barolo))
        assert shares["barolo"]["current"] == pytest.approx(predicted)
        assert shares["barolo"]["reference"] < 0.6 < shares["barolo"]["current"]
    else:  # the probability's / value's histogram
        assert pred["kind"] == "numeric" and pred["cur_mean"] == pytest.approx(outputs.mean())

    live = report["metric"]
    assert live["name"] == metric == project.config.metric and "note" not in live
    assert live["labeled"] == frame.height
    assert live["current"] == pytest.approx(_sklearn(task, labels, outputs), rel=1e-9)
    holdout = next(v for v in registry.list_versions(project) if v.version == 1)
    assert live["reference"] == pytest.approx(holdout.metrics[f"holdout_{metric}"])
    # the direction: a fall of AUC / macro F1, a rise of RMSE, is the worsening
    assert live["higher_is_better"] is (task != "regression")
    if task == "regression":
        assert live["current"] > live["reference"] and live["change"] > 0
    else:
        assert live["current"] < live["reference"] and live["change"] < 0
    assert live["drop"] == pytest.approx(abs(live["change"])) and live["decayed"] is True
    assert sum(p["labeled"] for p in live["series"]) == frame.height

    with Db(project.logs) as db:
        logged = db.rows(
            "SELECT test, score, status FROM drift WHERE check_id = ? AND feature = '__metric__'",
            [report["check_id"]],
        )
    assert logged == [{"test": test, "score": pytest.approx(live["drop"]), "status": "alert"}]

    dry = monitor.check_once(project, dry_run=True)
    way = "up" if task == "regression" else "down"
    assert dry.fired and not dry.acted and f"{metric} {way}" in dry.reason, dry


def test_feature_names_with_spaces_quotes_and_dots_are_read(
    project_for: Callable[[str], Project], capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_for("binary")
    frame = _shifted(project)
    _log(project, frame, "odd")
    _, report = _drift_json(project, capsys)
    features = {f["feature"]: f for f in report["features"]}
    for name in ("mean radius", ODD):
        fd = features[name]
        assert fd["missing"] == 0 and fd["n_cur"] == frame.height, fd
        assert fd["cur_mean"] == pytest.approx(frame[name].mean())
        assert fd["status"] == "alert"
    assert features["mean texture"]["status"] == "ok"


def test_regression_getting_better_is_no_decay(
    project_for: Callable[[str], Project], capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_for("regression")
    frame = pl.read_parquet(project.data_path)
    _log(project, frame, "good", lambda _y, out: out + 1.0)  # RMSE 1: far better
    code, report = _drift_json(project, capsys)
    live = report["metric"]
    assert code == 0 and live["current"] == pytest.approx(1.0)
    assert live["change"] < 0 and live["drop"] < 0 and live["decayed"] is False
    # rmse left at the default allowance: 5 % of the holdout value, not 0.05 of the target
    assert live["limit"] == pytest.approx(0.05 * live["reference"])
    quiet = monitor.check_once(project, dry_run=True)
    assert not quiet.fired, quiet


def test_monitor_round_retrains_on_regression_decay(
    project_for: Callable[[str], Project],
) -> None:
    project = project_for("regression")
    _log(project, _shifted(project), "worse")
    before = {v.version for v in registry.list_versions(project)}
    outcome = monitor.check_once(project)
    assert outcome.fired and outcome.acted and outcome.error is None, outcome
    assert "rmse up" in outcome.reason
    assert outcome.candidate is not None and outcome.candidate not in before


def test_multiclass_logloss_is_judged_on_accuracy_live(
    project_for: Callable[[str], Project], capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_for("multiclass")
    with open(project.root / "workbench.toml", "a") as fh:
        fh.write('[evaluation]\nmetric = "logloss"\n')
    project = Project.load(project.root)
    frame = pl.read_parquet(project.data_path)
    labels, outputs = _log(project, frame, "all")
    _, report = _drift_json(project, capsys)
    live = report["metric"]
    assert live["name"] == "accuracy" and live["configured"] == "logloss"
    assert "logloss needs class probabilities" in live["note"]
    assert live["current"] == pytest.approx(skm.accuracy_score(labels, outputs))
    holdout = next(v for v in registry.list_versions(project) if v.version == 1)
    assert live["reference"] == pytest.approx(holdout.metrics["holdout_accuracy"])
    # the text output names the classes and the note
    assert main(["drift", "--project", str(project.root)]) in (0, 1)
    out = capsys.readouterr().out
    assert "predicted classes (reference -> now):" in out and "barolo" in out
    assert "note: logloss needs class probabilities" in out
    assert "accuracy (higher is better)" in out
