"""The pipeline end to end through the real CLI: real data, LightGBM training in a child process,
a real MLflow SQLite store, read back with the plain MLflow client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
import tomli_w

from workbench.cli.main import main
from workbench.data import snapshot as data_mod
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.store.db import Db

pytestmark = pytest.mark.integration


def wb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m workbench ARGS` from a folder outside any project."""
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "WORKBENCH_USER": "tester"},
        check=False,
    )


def _run_pipeline(project: Project, cwd: Path, *extra: str) -> dict[str, Any]:
    proc = wb("pipeline", "run", "--project", str(project.root), "--json", *extra, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)  # the whole of stdout is one JSON object
    assert isinstance(result, dict)
    return result


def _run_pipeline_in_process(
    project: Project, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    """The same command through `main()` in this process (saves an interpreter start)."""
    capsys.readouterr()
    assert main(["pipeline", "run", "--project", str(project.root), "--json", *extra]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return json.loads(out)


def _quick(project: Project, **gate: Any) -> Project:
    """Fewer boosting rounds (these tests are about the gate, not the model) and a gate."""
    _edit_config(project, "trainer", params={"num_iterations": 20, "seed": 42})
    return _edit_config(project, "gate", **gate)


def _client(project: Project) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


def _edit_config(project: Project, section: str, **values: Any) -> Project:
    path = project.root / "workbench.toml"
    raw = tomllib.loads(path.read_text())
    raw.setdefault(section, {}).update(values)
    path.write_text(tomli_w.dumps(raw))
    return Project.load(project.root)


def _run_count(project: Project) -> int:
    client = _client(project)
    exps = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(exps, max_results=1000)) if exps else 0


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("workbench: error:")
    return lines[0]


# ---------------------------------------------------------------- a first pipeline run


def test_pipeline_run_json_and_plain_mlflow_readback(
    sample_project: Project, tmp_path: Path
) -> None:
    import mlflow
    import mlflow.lightgbm
    import mlflow.pyfunc
    from sklearn.metrics import roc_auc_score

    result = _run_pipeline(sample_project, tmp_path)
    name = sample_project.config.model_name

    # -- the JSON
    assert result["model"] == name
    assert result["version"] == 1
    assert len(result["run_id"]) == 32
    assert result["metrics"]["holdout_auc"] > 0.8
    assert 0 < result["metrics"]["holdout_logloss"] < 1
    assert result["gate"]["decision"] == "pass"
    assert result["gate"]["reason"] == "no production model yet"
    assert result["aliases_set"] == ["staging"]
    assert result["champion_version"] is None
    assert result["runner"] == "local"
    assert result["data_digest"] == data_mod.digest(sample_project.data_path)
    assert result["job_id"].startswith("train-")

    # -- the registry, through the plain MLflow client
    client = _client(sample_project)
    mv = client.get_model_version(name, str(result["version"]))
    assert mv.run_id == result["run_id"]
    assert str(client.get_model_version_by_alias(name, "staging").version) == str(result["version"])
    assert registry.aliases(sample_project) == {"staging": 1}  # production is left to a person

    # -- the run: params, per-iteration history, final metrics, dataset, tags
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["learning_rate"] == "0.05"
    assert params["num_iterations"] == "150"
    assert params["trainer"] == "lightgbm"
    assert params["data_digest"] == result["data_digest"]
    assert int(params["rows_train"]) + int(params["rows_valid"]) + int(params["rows_holdout"]) == (
        8_000
    )
    # -- the validation of the data it trained on, kept on the run (tag + whole report)
    summary = json.loads(run.data.tags["workbench.validation"])
    frame = pl.read_parquet(sample_project.data_path)
    ts = sample_project.config.data.timestamp
    assert summary["passed"] is True and summary["rows"] == 8_000 == frame.height
    assert summary["time_range"] == result["validation"]["time_range"]
    assert summary["time_range"]["start"] == frame[ts].min().isoformat()  # type: ignore[union-attr]
    assert summary["time_range"]["end"] == frame[ts].max().isoformat()  # type: ignore[union-attr]
    assert len(summary["first_warnings"]) == min(summary["warnings"], 5)
    with tempfile.TemporaryDirectory() as tmp:
        full = json.loads(
            Path(
                client.download_artifacts(result["run_id"], "validation/report.json", tmp)
            ).read_text()
        )
    assert full["rows"] == 8_000 and len(full["checks"]) == summary["checks"]
    history = client.get_metric_history(result["run_id"], "valid_auc")
    steps = sorted(m.step for m in history)
    assert len(steps) >= 100
    assert steps == list(range(1, len(steps) + 1))  # one point per boosting iteration
    assert all(0.5 < m.value <= 1.0 for m in history)
    assert len(client.get_metric_history(result["run_id"], "train_logloss")) == len(steps)
    for key, value in result["metrics"].items():
        assert run.data.metrics[key] == pytest.approx(value), key
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.digest == result["data_digest"]
    assert {t.key: t.value for t in inputs[0].tags}.get("mlflow.data.context") == "training"
    tags = run.data.tags
    assert tags["workbench.job_id"] == result["job_id"]
    assert tags["workbench.data_digest"] == result["data_digest"]
    assert tags["workbench.trainer"] == "lightgbm"
    assert "feature_importance.json" in {a.path for a in client.list_artifacts(result["run_id"])}

    # -- the model, loaded as any MLflow user would
    mlflow.set_tracking_uri(sample_project.tracking_uri)
    mlflow.set_registry_uri(sample_project.tracking_uri)
    cfg = sample_project.config
    holdout = data_mod.split(data_mod.load_frame(sample_project.data_path), cfg).holdout
    raw = holdout.select(cfg.features).to_pandas()
    # plain strings, as a caller would send them, not pandas categoricals
    assert pd.api.types.is_string_dtype(raw["merchant_category"].dtype)
    assert not isinstance(raw["merchant_category"].dtype, pd.CategoricalDtype)
    model = mlflow.pyfunc.load_model(f"models:/{name}@staging")
    proba = np.asarray(model.predict(raw), dtype=float)
    assert proba.shape == (holdout.height,)
    assert np.all((proba >= 0) & (proba <= 1))
    # scoring the raw rows reproduces the holdout AUC the run logged
    auc = roc_auc_score(holdout["is_fraud"].to_numpy(), proba)
    assert auc == pytest.approx(result["metrics"]["holdout_auc"], abs=1e-9)

    # whole raw rows (id, timestamp, label and all) and object-dtype strings score the same
    full = holdout.to_pandas()
    full["merchant_category"] = full["merchant_category"].astype(object)
    np.testing.assert_allclose(np.asarray(model.predict(full), dtype=float), proba, rtol=1e-12)

    unseen = raw.head(20).copy()
    unseen["merchant_category"] = "crypto_exchange"  # a category training never saw
    p_unseen = np.asarray(model.predict(unseen), dtype=float)
    assert p_unseen.shape == (20,)
    assert np.all(np.isfinite(p_unseen) & (p_unseen >= 0) & (p_unseen <= 1))
    missing = raw.head(20).copy()
    missing["merchant_category"] = None  # an unseen value scores as a missing one
    np.testing.assert_allclose(np.asarray(model.predict(missing), dtype=float), p_unseen)

    # -- the LightGBM flavor is there too
    booster = mlflow.lightgbm.load_model(f"models:/{name}@staging")
    assert type(booster).__name__ == "Booster"
    assert booster.num_trees() > 0
    # LightGBM trains on positional names; the model folder keeps the real ones, in order
    assert booster.feature_name() == [f"f{i}" for i in range(len(cfg.features))]
    from mlflow.artifacts import download_artifacts

    folder = download_artifacts(f"models:/{name}@staging")
    assert json.loads((Path(folder) / "feature_columns.json").read_text()) == cfg.features
    cats = booster.pandas_categorical
    assert cats and "grocery" in cats[0]
    frame = raw.copy()
    frame["merchant_category"] = pd.Categorical(
        frame["merchant_category"].astype(object), categories=cats[0]
    )
    frame.columns = booster.feature_name()
    np.testing.assert_allclose(booster.predict(frame), proba, rtol=1e-9)

    # -- the jobs log holds the training job as succeeded
    jobs = Db(sample_project.logs).rows("SELECT * FROM jobs")
    assert [(j["job_id"], j["status"], j["run_id"]) for j in jobs] == [
        (result["job_id"], "succeeded", result["run_id"])
    ]


# ---------------------------------------------------------------- the gate and auto-promote


def test_auto_promote_moves_production_when_gate_passes(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _quick(trained_project, min_improvement=-1.0)  # any candidate passes
    result = _run_pipeline_in_process(project, capsys, "--auto-promote")
    assert result["version"] == 3
    assert result["champion_version"] == 1
    gate = result["gate"]
    assert gate["decision"] == "pass" and gate["passed"] is True
    assert isinstance(gate["champion"], float) and gate["champion"] > 0.8
    assert result["aliases_set"] == ["staging", "production"]

    client = _client(project)
    name = project.config.model_name
    assert str(client.get_model_version_by_alias(name, "production").version) == "3"
    assert str(client.get_model_version_by_alias(name, "staging").version) == "3"
    moves = registry.alias_history(project, "production")
    assert [(m["action"], m["from_version"], m["to_version"]) for m in moves][-1] == (
        "auto-promote",
        1,
        3,
    )
    assert moves[-1]["reason"].startswith("auto-promoted")
    # and rollback undoes the automatic promotion
    assert registry.rollback_target(project, "production") == (3, 1)


def test_auto_promote_leaves_production_when_gate_fails(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _quick(trained_project, min_improvement=1.0)  # no AUC gain can pass
    result = _run_pipeline_in_process(project, capsys, "--auto-promote")
    assert result["version"] == 3
    assert result["champion_version"] == 1
    assert result["gate"]["decision"] == "fail"
    assert "does not beat production" in result["gate"]["reason"]
    assert result["aliases_set"] == ["staging"]
    assert registry.aliases(project) == {"production": 1, "staging": 3}
    client = _client(project)
    desc = client.get_model_version(project.config.model_name, "3").description
    assert desc.startswith("gate fail")


# ---------------------------------------------------------------- failures stop the pipeline


def _negative_amounts(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        pl.when(pl.col("hour") < 3).then(-pl.col("amount")).otherwise(pl.col("amount"))
    )


def _missing_column(df: pl.DataFrame) -> pl.DataFrame:
    return df.drop("device_score")


@pytest.mark.parametrize(
    ("corrupt", "failed"),
    [
        pytest.param(_negative_amounts, ("range", "amount"), id="negative-amounts"),
        pytest.param(_missing_column, ("schema", "device_score"), id="missing-column"),
    ],
)
def test_validation_failure_stops_before_any_run(
    trained_project: Project, tmp_path: Path, corrupt: Any, failed: tuple[str, str]
) -> None:
    path = trained_project.data_path
    corrupt(pl.read_parquet(path)).write_parquet(path)
    runs_before = _run_count(trained_project)

    proc = wb("validate", "--project", str(trained_project.root), "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["passed"] is False
    assert any(
        c["status"] == "fail" and c["check"] == failed[0] and c["column"] == failed[1]
        for c in report["checks"]
    ), [c for c in report["checks"] if c["status"] == "fail"]

    proc = wb("pipeline", "run", "--project", str(trained_project.root), "--json", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.strip() == ""
    assert "data validation failed" in _error_line(proc)
    assert _run_count(trained_project) == runs_before
    assert [v.version for v in registry.list_versions(trained_project)] == [2, 1]
    assert Db(trained_project.logs).rows("SELECT count(*) AS n FROM jobs")[0]["n"] == 2


def test_failing_training_job_is_one_line_and_recorded(
    trained_project: Project, tmp_path: Path
) -> None:
    root = str(trained_project.root)
    proc = wb("train", "--project", root, "--param", 'objective="nonsense"', cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("workbench:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("workbench: error: training job train-")
    assert "nonsense" in errors[0]

    proc = wb("jobs", "--project", root, "--json", cwd=tmp_path)
    assert proc.returncode == 0
    jobs = json.loads(proc.stdout)
    newest = jobs[0]
    assert newest["kind"] == "train"
    assert newest["status"] == "failed"
    assert newest["exit_code"] not in (0, None)
    assert "nonsense" in newest["reason"]
    assert newest["job_id"] in errors[0]
    assert Path(newest["log_path"]).is_file()
    # the run MLflow opened for it is marked failed, and nothing got registered
    assert _client(trained_project).get_run(newest["run_id"]).info.status == "FAILED"
    assert [v.version for v in registry.list_versions(trained_project)] == [2, 1]
    # the older jobs are still there, each once
    assert [j["status"] for j in jobs[1:]] == ["succeeded", "succeeded"]


@pytest.mark.integration
def test_training_in_a_git_repo_logs_the_commit(sample_project: Project) -> None:
    root = sample_project.root
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "workbench.toml"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "config"], cwd=root, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()

    assert main(["--project", str(root), "train", "--param", "num_iterations=10"]) == 0

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=sample_project.tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name(sample_project.experiment_name).experiment_id]
    )
    assert run.data.tags["mlflow.source.git.commit"] == head
    assert len(client.get_metric_history(run.info.run_id, "valid_auc")) == 10
