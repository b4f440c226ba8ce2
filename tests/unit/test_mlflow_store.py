"""The read-only SQLite reader of MLflow's store, checked against what the MLflow client reads."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from workbench.project import Project
from workbench.registry import versions as registry
from workbench.store import mlflow_tables as mlflow_store


def _client(project: Project) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


def test_missing_store_reads_as_empty(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    assert mlflow_store.read_runs(db) == []
    assert mlflow_store.read_model_versions(db) == []
    assert mlflow_store.read_aliases(db, "m") == {}
    assert mlflow_store.read_metric_history(db, ["x"]) == {}
    assert not db.exists()  # reading never creates the store


def test_runs_match_the_mlflow_client(trained_project: Project) -> None:
    client = _client(trained_project)
    exp = client.get_experiment_by_name(trained_project.experiment_name)
    expected = {r.info.run_id: r for r in client.search_runs([exp.experiment_id])}
    got = {r.run_id: r for r in mlflow_store.read_runs(trained_project.mlflow_db)}
    assert set(got) == set(expected)
    for run_id, run in expected.items():
        mine = got[run_id]
        assert mine.experiment == trained_project.experiment_name
        assert mine.experiment_id == exp.experiment_id
        assert mine.run_name == run.info.run_name
        assert mine.status == run.info.status == "FINISHED"
        assert mine.lifecycle_stage == "active"
        assert mine.start_time == run.info.start_time
        assert mine.end_time == run.info.end_time
        assert mine.params == run.data.params
        assert mine.tags == run.data.tags
        assert mine.metrics.keys() == run.data.metrics.keys()
        for key, value in run.data.metrics.items():
            assert mine.metrics[key] == pytest.approx(value) or (
                math.isnan(value) and math.isnan(mine.metrics[key])
            )
        assert mine.metrics_stamp > 0


def test_metric_history_matches_the_mlflow_client(trained_project: Project) -> None:
    client = _client(trained_project)
    run_ids = [r.run_id for r in mlflow_store.read_runs(trained_project.mlflow_db)]
    history = mlflow_store.read_metric_history(trained_project.mlflow_db, run_ids)
    for run_id in run_ids:
        mine = [(s, v) for k, s, v, _ in history[run_id] if k == "valid_auc"]
        theirs = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "valid_auc"))
        assert mine == theirs
        assert len(mine) >= 100


def test_model_versions_and_aliases_match_the_mlflow_client(trained_project: Project) -> None:
    client = _client(trained_project)
    name = trained_project.config.model_name
    theirs = {v: client.get_model_version(name, str(v)) for v in (1, 2)}
    assert len(client.search_model_versions(f"name = '{name}'")) == 2
    mine = mlflow_store.read_model_versions(trained_project.mlflow_db, name)
    assert [mv.version for mv in mine] == [2, 1]  # newest first
    for mv in mine:
        assert mv.name == name
        assert mv.run_id == theirs[mv.version].run_id
        assert mv.source == theirs[mv.version].source
        assert mv.status == "READY"
        assert sorted(mv.aliases) == sorted(theirs[mv.version].aliases)
    assert mlflow_store.read_aliases(trained_project.mlflow_db, name) == {
        "production": 1,
        "staging": 2,
    }
    assert mlflow_store.read_model_versions(trained_project.mlflow_db, "other-model") == []


def test_project_path_with_hash_reads_the_real_store(
    trained_project: Project, tmp_path: Path
) -> None:
    parent = tmp_path / "team#1"
    parent.mkdir()
    root = parent / "proj"
    shutil.copytree(trained_project.root, root)
    project = Project.load(root)
    assert _client(project).get_model_version_by_alias(project.config.model_name, "production")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert [v.version for v in registry.list_versions(project)] == [2, 1]
    assert registry.aliases(project) == {"production": 1, "staging": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no stray database file
