"""The fast read path against team stores: runs, metrics, params, tags, model versions, aliases,
version tags and a logged model's location written with the real MLflow client into a fresh
PostgreSQL database and into the authenticated tracking server, read back through SqlReader and
RestReader (no mlflow import) and compared field by field with what the MLflow client reads,
and with SqliteReader over an SQLite store holding the same content."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import ALICE, BOB, unique
from workbench.errors import WorkbenchError
from workbench.store.mlflow_tables import SqliteReader, StoreRun
from workbench.store.reader import StoreReader
from workbench.store.rest_reader import RestReader
from workbench.store.sql_reader import SqlReader


@dataclass
class Written:
    client: Any
    experiment_id: str
    model: str
    runs: dict[str, str]  # run name -> run id
    logged_model: Any


def _write(uri: str, artifacts: str | None = None) -> Written:
    """Three runs (finished, failed then deleted, still running), a registered model with two
    versions, aliases and tags, and a logged model, through the MLflow client."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp_id = client.create_experiment(unique("wb-readers-"), artifact_location=artifacts)
    now = int(time.time() * 1000)
    done = client.create_run(exp_id, run_name="done", tags={"team": "a"}).info.run_id
    client.log_batch(
        done,
        metrics=[
            Metric("auc", 0.8, now, 0),
            Metric("auc", 0.9, now + 1, 1),
            Metric("loss", math.nan, now, 0),
            Metric("loss", 0.5, now + 1, 1),
        ],
        params=[Param("lr", "0.1"), Param("leaves", "31")],
        tags=[RunTag("workbench.job", "j1"), RunTag("empty", "")],
    )
    client.set_terminated(done, "FINISHED")
    failed = client.create_run(exp_id, run_name="failed").info.run_id
    client.log_param(failed, "lr", "0.3")
    client.set_terminated(failed, "FAILED")
    client.delete_run(failed)
    running = client.create_run(exp_id, run_name="running", tags={"workbench.job": "j2"})
    client.log_metric(running.info.run_id, "auc", 0.7, now, 0)
    model = unique("wb-readers-model-")
    client.create_registered_model(model)
    client.create_model_version(model, f"runs:/{done}/model", run_id=done, description="first")
    client.create_model_version(model, f"runs:/{done}/model", run_id=done, tags={"gate": "ok"})
    client.set_registered_model_alias(model, "champion", "1")
    client.set_registered_model_alias(model, "challenger", "2")
    client.set_model_version_tag(model, "1", "stage", "prod")
    logged = client.create_logged_model(exp_id, name="m", source_run_id=done)
    runs = {"done": done, "failed": failed, "running": running.info.run_id}
    return Written(client, exp_id, model, runs, logged)


def _same_metric(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def _check_runs(got: list[StoreRun], w: Written) -> dict[str, StoreRun]:
    from mlflow.entities import ViewType

    expected = w.client.search_runs([w.experiment_id], run_view_type=ViewType.ALL)
    mine = {r.run_id: r for r in got if r.experiment_id == w.experiment_id}
    assert set(mine) == {r.info.run_id for r in expected} == set(w.runs.values())
    name = w.client.get_experiment(w.experiment_id).name
    for run in expected:
        r = mine[run.info.run_id]
        assert (r.run_name, r.status, r.lifecycle_stage, r.user) == (
            run.info.run_name,
            run.info.status,
            run.info.lifecycle_stage,
            run.info.user_id,
        )
        assert (r.start_time, r.end_time, r.experiment) == (
            run.info.start_time,
            run.info.end_time,
            name,
        )
        assert r.params == run.data.params
        assert r.tags == run.data.tags
        assert r.metrics.keys() == run.data.metrics.keys()
        assert all(_same_metric(r.metrics[k], v) for k, v in run.data.metrics.items())
        assert (r.metrics_stamp > 0) == bool(r.metrics)
    assert mine[w.runs["failed"]].lifecycle_stage == "deleted"  # deleted runs are read too
    assert mine[w.runs["running"]].status == "RUNNING"
    return mine


def _check_everything_else(reader: StoreReader, w: Written) -> None:
    done = w.runs["done"]
    history = reader.read_metric_history([done, w.runs["running"]])
    expected = sorted(
        (m.key, m.step, m.value, m.timestamp)
        for key in ("auc", "loss")
        for m in w.client.get_metric_history(done, key)
    )
    assert len(history[done]) == len(expected) == 4
    for got, want in zip(history[done], expected, strict=True):
        assert got[:2] == want[:2] and got[3] == want[3] and _same_metric(got[2], want[2])
    assert [p[:3] for p in history[w.runs["running"]]] == [("auc", 0, 0.7)]
    assert reader.read_latest_metrics([done]) == {done: {"auc": 0.9, "loss": 0.5}}

    versions = reader.read_model_versions(w.model)
    client_versions = {
        int(v.version): v for v in w.client.search_model_versions(f"name='{w.model}'")
    }
    assert [v.version for v in versions] == [2, 1]  # newest first
    for v in versions:
        cv = client_versions[v.version]
        assert (v.name, v.run_id, v.source, v.status) == (w.model, cv.run_id, cv.source, cv.status)
        assert (v.created_ms, v.description or "") == (cv.creation_timestamp, cv.description or "")
        assert v.tags == cv.tags
    assert versions[1].aliases == ["champion"] and versions[0].aliases == ["challenger"]
    assert versions[1].tags == {"stage": "prod"} and versions[0].tags == {"gate": "ok"}
    assert w.model in {v.name for v in reader.read_model_versions()}
    aliases = reader.read_aliases(w.model)
    assert aliases == {k: int(v) for k, v in w.client.get_registered_model(w.model).aliases.items()}
    assert aliases == {"champion": 1, "challenger": 2}
    assert reader.read_aliases(unique("no-such-model-")) == {}
    assert sorted(reader.read_version_tags(w.model, ["stage", "gate", "x"])) == [
        (1, "stage", "prod"),
        (2, "gate", "ok"),
    ]

    running = w.runs["running"]
    assert reader.running_run_ids("workbench.job", "j2") == [running]
    assert reader.running_run_ids("workbench.job", "j1", run_id=running) == [running]
    assert reader.running_run_ids("workbench.job", "j1") == []  # j1 has ended
    location = reader.logged_model_location(w.logged_model.model_id)
    assert location == w.logged_model.artifact_location
    assert reader.logged_model_location("m-" + "0" * 32) is None
    assert reader.run_artifact_uri(done) == w.client.get_run(done).info.artifact_uri
    assert reader.run_artifact_uri("0" * 32) is None


def _check_incremental(reader: StoreReader, w: Written, finished_metric: bool) -> None:
    """After a full read: a new run, a metric on an old (running) run and an ended run are
    all in read_runs(since_ms); an old finished run nothing touched is not."""
    before = {r.run_id for r in reader.read_runs() if r.experiment_id == w.experiment_id}
    old_running = w.client.create_run(w.experiment_id, run_name="old-running").info.run_id
    untouched = w.runs["done"]
    new = w.client.create_run(w.experiment_id, run_name="new").info.run_id
    w.client.set_terminated(new, "FINISHED")
    since = int(time.time() * 1000)  # the runs above are older than this read
    time.sleep(0.01)
    w.client.log_metric(old_running, "auc", 0.75)  # a metric on an old, still running run
    w.client.set_terminated(w.runs["running"], "FINISHED")  # an old run ends
    newest = w.client.create_run(w.experiment_id, run_name="newest").info.run_id
    if finished_metric:
        w.client.log_metric(new, "late", 1.0)  # a metric on a run that had already ended
    changed = {r.run_id: r for r in reader.read_runs(since_ms=since)}
    assert {old_running, w.runs["running"], newest} <= set(changed)
    assert changed[old_running].metrics == {"auc": 0.75}
    assert changed[w.runs["running"]].status == "FINISHED"
    assert untouched not in changed and untouched in before
    if finished_metric:
        assert changed[new].metrics == {"late": 1.0}


def test_sql_reader_matches_the_mlflow_client(postgres_uri: str, tmp_path: Path) -> None:
    pg = _write(postgres_uri, (tmp_path / "pg-artifacts").as_uri())
    reader = SqlReader(postgres_uri)
    assert reader.location == postgres_uri  # no password in it to hide
    pg_runs = _check_runs(reader.read_runs(), pg)
    _check_everything_else(reader, pg)

    sqlite_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    lite = _write(sqlite_uri, (tmp_path / "lite-artifacts").as_uri())
    lite_reader = SqliteReader(tmp_path / "mlflow.db")
    lite_runs = _check_runs(lite_reader.read_runs(), lite)
    _check_everything_else(lite_reader, lite)

    def shape(runs: dict[str, StoreRun]) -> list[tuple[Any, ...]]:  # the same, but for ids/times
        return sorted(
            (r.run_name, r.status, r.lifecycle_stage, r.source, r.params, sorted(r.tags))
            for r in runs.values()
        )

    assert shape(pg_runs) == shape(lite_runs)
    _check_incremental(reader, pg, finished_metric=True)
    _check_incremental(lite_reader, lite, finished_metric=True)


def test_rest_reader_matches_the_mlflow_client(mlflow_server: str) -> None:
    w = _write(mlflow_server)
    reader = RestReader(mlflow_server)
    _check_runs(reader.read_runs(), w)
    _check_everything_else(reader, w)
    _check_incremental(reader, w, finished_metric=False)


def test_missing_postgres_database_reads_as_empty(postgres_uri: str) -> None:
    missing = SqlReader(postgres_uri.rsplit("/", 1)[0] + "/" + unique("wbtest_missing_"))
    assert missing.read_runs() == [] and missing.read_model_versions() == []
    assert missing.read_metric_history(["x"]) == {} and missing.run_artifact_uri("x") is None
    no_tables = SqlReader(postgres_uri)  # the database exists, MLflow made no tables yet
    assert no_tables.read_runs() == [] and no_tables.read_aliases("m") == {}
    assert no_tables.logged_model_location("m-1") is None


def _one_line_error(reader: StoreReader) -> str:
    with pytest.raises(WorkbenchError) as info:
        reader.read_runs()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_bad_credentials_and_closed_ports_are_one_line(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-" + ALICE[1])
    message = _one_line_error(RestReader(mlflow_server))
    assert "401" in message and mlflow_server in message and ALICE[1] not in message
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "not-a-token")
    assert "401" in _one_line_error(RestReader(mlflow_server))
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", BOB[0])  # read-only: reads are fine
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", BOB[1])
    assert isinstance(RestReader(mlflow_server).read_aliases(unique("none-")), dict)

    closed = "http://127.0.0.1:9"
    message = _one_line_error(RestReader(closed))
    assert closed in message and "refused" in message.lower()
    pg = SqlReader("postgresql+psycopg2://postgres:s3cret-pw@127.0.0.1:9/mlflow")
    message = _one_line_error(pg)
    assert "postgres@127.0.0.1:9/mlflow" in message and "s3cret-pw" not in message
    assert "refused" in message.lower()
