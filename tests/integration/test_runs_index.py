"""The runs index: MLflow's store (written by Workbench or by any plain MLflow script) copied to
Parquet, queried through DuckDB, filtered, sorted and compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workbench.cli.main import main
from workbench.errors import UsageError
from workbench.project import Project
from workbench.store import runs_index
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog
from workbench.store.runs_index import compare_runs, metric_history, runs_frame, sort_filter, sync

pytestmark = pytest.mark.integration

SAMPLE_TOML = (
    Path(__file__).resolve().parents[2] / "sample_projects" / "fraud_detection" / "workbench.toml"
).read_text(encoding="utf-8")

PLAIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("other")
    with mlflow.start_run(run_name="plain"):
        mlflow.log_metric("auc", 0.5)
        mlflow.log_param("x", "1")
    """
)


def _client(project: Project) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=project.tracking_uri)


def _plain_run(project: Project, cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", PLAIN_SCRIPT, project.tracking_uri],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------- plain MLflow runs show up


def test_plain_mlflow_runs_show_up_without_importing_mlflow(
    trained_project: Project, tmp_path: Path
) -> None:
    _plain_run(trained_project, tmp_path)
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from workbench.cli.main import main
        root = {str(trained_project.root)!r}
        assert main(['runs', '--project', root, '--json']) == 0
        assert 'mlflow' not in sys.modules, 'runs imported mlflow'
        # the other read-only commands stay off mlflow too
        with contextlib.redirect_stdout(io.StringIO()):
            for cmd in ('models', 'history', 'audit', 'jobs'):
                assert main([cmd, '--project', root, '--json']) == 0, cmd
                assert 'mlflow' not in sys.modules, cmd + ' imported mlflow'
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)
    assert len(runs) == 3
    plain = [r for r in runs if r["run_name"] == "plain"]
    assert len(plain) == 1
    assert plain[0]["experiment"] == "other"
    assert plain[0]["status"] == "FINISHED"
    assert plain[0]["m.auc"] == 0.5
    assert plain[0]["p.x"] == "1"
    assert plain[0]["m.holdout_auc"] is None
    trained = [r for r in runs if r["experiment"] == "fraud_detection"]
    assert len(trained) == 2
    assert all(r["m.holdout_auc"] > 0.8 for r in trained)
    # newest first by default
    assert runs[0]["run_name"] == "plain"
    starts = [r["start_time"] for r in runs]
    assert starts == sorted(starts, reverse=True)


def test_runs_cli_sort_filter_limit(
    trained_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plain_run(trained_project, tmp_path)
    root = str(trained_project.root)
    by_auc = _cli_json(capsys, "runs", "--project", root, "--sort", "auc", "--asc", "--json")
    assert by_auc[0]["run_name"] == "plain"  # m.auc sorts; runs without it go last
    assert [r["m.auc"] for r in by_auc[1:]] == [None, None]
    good = _cli_json(capsys, "runs", "--project", root, "--filter", "auc>0.8", "--json")
    assert len(good) == 2 and all(r["experiment"] == "fraud_detection" for r in good)
    assert len(_cli_json(capsys, "runs", "--project", root, "--limit", "1", "--json")) == 1
    other = runs_frame(Db(trained_project.logs), experiment="other")
    assert other["run_name"].to_list() == ["plain"]
    assert "m.auc" in other.columns and "m.holdout_auc" not in other.columns
    capsys.readouterr()
    assert main(["runs", "--project", root, "--sort", "nope"]) == 2
    assert "--sort nope: no such column" in capsys.readouterr().err


# ---------------------------------------------------------------- sync semantics


def _files(project: Project, log: str) -> list[Path]:
    return ParquetLog(project.logs, log).files()


def test_second_sync_with_no_change_appends_nothing(trained_project: Project) -> None:
    first = sync(trained_project)
    assert first == runs_index.SyncResult(total=2, changed=2)
    runs_files, metric_files = _files(trained_project, "runs"), _files(trained_project, "metrics")
    assert len(runs_files) == 1

    again = sync(trained_project)
    assert again.total == 2 and again.changed == 0
    assert _files(trained_project, "runs") == runs_files
    assert _files(trained_project, "metrics") == metric_files


def test_changed_run_is_reindexed_and_shown_once(trained_project: Project) -> None:
    sync(trained_project)
    db = Db(trained_project.logs)
    run_id = runs_frame(db)["run_id"][0]
    points_before = metric_history(db, run_id, "valid_auc").height
    assert points_before >= 100

    client = _client(trained_project)
    client.log_metric(run_id, "holdout_auc", 0.123)
    client.log_metric(run_id, "reviewed", 1.0)
    client.set_tag(run_id, "note", "checked")
    result = sync(trained_project, db)
    assert result.changed == 1

    df = runs_frame(db)
    rows = df.filter(pl.col("run_id") == run_id)
    assert rows.height == 1  # the view shows the newest row once
    assert rows["m.holdout_auc"][0] == 0.123
    assert rows["m.reviewed"][0] == 1.0
    assert df.height == 2
    versions = db.rows("SELECT count(*) AS n FROM runs_versions WHERE run_id = ?", [run_id])
    assert versions[0]["n"] == 2
    # the per-step history is re-read, not doubled, and holds the new metric
    assert metric_history(db, run_id, "valid_auc").height == points_before
    assert metric_history(db, run_id, "reviewed")["value"].to_list() == [1.0]
    tags = db.rows("SELECT tags['note'] AS note FROM runs WHERE run_id = ?", [run_id])
    assert tags == [{"note": "checked"}]


def test_deleted_runs_disappear_and_restored_ones_return(trained_project: Project) -> None:
    sync(trained_project)
    db = Db(trained_project.logs)
    run_id = runs_frame(db)["run_id"][-1]
    client = _client(trained_project)

    client.delete_run(run_id)
    assert sync(trained_project, db).changed == 1
    assert run_id not in runs_frame(db)["run_id"].to_list()
    assert runs_frame(db).height == 1

    client.restore_run(run_id)
    assert sync(trained_project, db).changed == 1
    assert run_id in runs_frame(db)["run_id"].to_list()


def test_sync_on_a_project_without_a_store(sample_project: Project) -> None:
    assert not sample_project.mlflow_db.exists()
    assert sync(sample_project) == runs_index.SyncResult(total=0, changed=0)
    db = Db(sample_project.logs)
    df = runs_frame(db)
    assert df.height == 0
    assert df.columns[: len(runs_index.BASE_COLUMNS)] == runs_index.BASE_COLUMNS


# ---------------------------------------------------------------- sort_filter / compare_runs


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """alpha (auc .9, lr .1), beta (auc .7, lr .05), gamma (no auc, lr .1), logged with MLflow."""
    import mlflow

    root = tmp_path_factory.mktemp("runs") / "proj"
    root.mkdir()
    (root / "workbench.toml").write_text(SAMPLE_TOML)
    project = Project.load(root)
    project.ensure_store()
    client = mlflow.MlflowClient(tracking_uri=project.tracking_uri)
    exp = client.create_experiment("exp", artifact_location=project.artifacts.as_uri())
    specs = [
        ("alpha", {"auc": 0.9, "logloss": 0.2}, {"lr": "0.1", "depth": "6"}),
        ("beta", {"auc": 0.7, "logloss": 0.4}, {"lr": "0.05", "depth": "6"}),
        ("gamma", {"logloss": 0.3}, {"lr": "0.1", "depth": "6"}),
    ]
    for name, metrics, params in specs:
        run = client.create_run(exp, run_name=name)
        for k, v in metrics.items():
            client.log_metric(run.info.run_id, k, v)
        for k, v in params.items():
            client.log_param(run.info.run_id, k, v)
        client.set_terminated(run.info.run_id)
    sync(project)
    return runs_frame(Db(project.logs))


def _names(df: pl.DataFrame) -> list[str]:
    return df["run_name"].to_list()


def test_frame_has_flat_metric_and_param_columns(three_runs: pl.DataFrame) -> None:
    assert {"m.auc", "m.logloss", "p.lr", "p.depth"} <= set(three_runs.columns)
    assert three_runs.schema["m.auc"] == pl.Float64
    assert _names(three_runs) == ["gamma", "beta", "alpha"]  # newest first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"alpha", "beta", "gamma"}),
        ("alph", {"alpha"}),
        ("GAMMA", {"gamma"}),
        ("finished", {"alpha", "beta", "gamma"}),
        ("0.05", {"beta"}),  # free text also searches param values
        ("lr=0.1", {"alpha", "gamma"}),
        ("p.lr=0.05", {"beta"}),
        ("auc>0.8", {"alpha"}),
        ("auc<0.8", {"beta"}),
        ("auc>=0.7", {"alpha", "beta"}),
        ("logloss<=0.3", {"alpha", "gamma"}),
        ("lr=0.1 logloss>0.25", {"gamma"}),  # terms combine with AND
        ("nosuchthing", set()),
        ("nokey=1", set()),  # an unknown key falls back to text search
    ],
)
def test_sort_filter_terms(three_runs: pl.DataFrame, text: str, expected: set[str]) -> None:
    assert set(_names(sort_filter(three_runs, text=text))) == expected


def test_sort_by_metric_with_nulls_last(three_runs: pl.DataFrame) -> None:
    assert _names(sort_filter(three_runs, "m.auc", descending=True)) == ["alpha", "beta", "gamma"]
    assert _names(sort_filter(three_runs, "m.auc", descending=False)) == ["beta", "alpha", "gamma"]
    assert _names(sort_filter(three_runs, "m.logloss", descending=False)) == [
        "alpha",
        "gamma",
        "beta",
    ]
    # an unknown sort column leaves the order alone
    assert _names(sort_filter(three_runs, "m.nope")) == _names(three_runs)


def _ids(df: pl.DataFrame, *names: str) -> list[str]:
    by_name = dict(zip(df["run_name"], df["run_id"], strict=True))
    return [by_name[n] for n in names]


def test_compare_runs_only_diff(three_runs: pl.DataFrame) -> None:
    a, g = _ids(three_runs, "alpha", "gamma")
    full = {r["field"]: r for r in compare_runs(three_runs, [a, g])}
    assert full["p.lr"]["differs"] is False and full["p.lr"][a] == "0.1"
    assert full["p.depth"]["differs"] is False
    assert full["m.logloss"]["differs"] is True
    assert full["m.auc"][a] == 0.9 and full["m.auc"][g] is None

    diff = compare_runs(three_runs, [a, g], only_diff=True)
    fields = {r["field"] for r in diff}
    assert all(r["differs"] for r in diff)
    assert {"run_name", "m.logloss", "m.auc"} <= fields
    assert not fields & {"p.lr", "p.depth", "experiment", "status"}


def test_compare_runs_rejects_unknown_ids(three_runs: pl.DataFrame) -> None:
    (a,) = _ids(three_runs, "alpha")
    with pytest.raises(UsageError, match="unknown run id"):
        compare_runs(three_runs, [a, "deadbeef"])


def test_compare_cli_diff_json(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(trained_project.root)
    runs = _cli_json(capsys, "runs", "--project", root, "--json")
    ids = [r["run_id"] for r in runs]
    rows = _cli_json(
        capsys, "compare", ids[0][:8], ids[1][:8], "--project", root, "--diff", "--json"
    )
    fields = {r["field"]: r for r in rows}
    assert all(r["differs"] for r in rows)
    assert set(rows[0]) == {"field", "differs", ids[0], ids[1]}
    assert "m.holdout_auc" in fields
    # the demo's challenger changes learning_rate and num_leaves; the rest of the setup is shared
    assert fields["p.learning_rate"][ids[0]] != fields["p.learning_rate"][ids[1]]
    assert not {"experiment", "status", "p.trainer", "p.data_digest", "p.rows_train"} & set(fields)

    everything = _cli_json(capsys, "compare", ids[0], ids[1], "--project", root, "--json")
    assert len(everything) > len(rows)
    assert {"p.trainer", "experiment"} <= {r["field"] for r in everything}


def test_compare_cli_unknown_prefix(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["compare", "zzzz", "--project", str(trained_project.root)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "workbench: error: no run id starts with 'zzzz'"
