"""The MLflow store is created once, under a lock: first setups racing on a fresh project never
break it (issue 9), a half-created store is repaired or reported in one line, and readers
treat a store without MLflow's tables as empty."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli.main import main
from workbench.errors import WorkbenchError
from workbench.project import Project
from workbench.store import mlflow_tables as mlflow_store
from workbench.store import tracking

CONFIG = '[project]\nname = "race"\n[data]\npath = "d.csv"\ntarget = "y"\nsplit = "random"\n'

#: Imports everything first, then waits for a common start time, so the setups really race.
RACER = """
import sys, time
from workbench.store import tracking
from workbench.project import Project
import mlflow.store.tracking.sqlalchemy_store, mlflow.store.model_registry.sqlalchemy_store
project = Project.load(sys.argv[1])
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
print("experiment", tracking.setup(project))
"""


def _project(root: Path) -> Project:
    root.mkdir(parents=True)
    (root / "workbench.toml").write_text(CONFIG)
    return Project.load(root)


@pytest.mark.parametrize("round_", range(3))
def test_first_setups_racing_leave_a_usable_store(tmp_path: Path, round_: int) -> None:
    project = _project(tmp_path / f"race{round_}")
    start = time.time() + 5.0  # time for every racer to import mlflow before the line
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(project.root), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out
        assert "Traceback" not in out and "no such table" not in out, out
    # Every racer saw the same experiment.
    ids = {out.strip().splitlines()[-1] for out in outputs}
    assert len(ids) == 1, ids

    # The store is whole: the registry works and the direct reader sees what it wrote.
    client = tracking.client(project)
    client.create_registered_model("m")
    run = client.create_run(tracking.setup(project))
    client.create_model_version("m", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("m", "staging", "1")
    versions = mlflow_store.read_model_versions(project.mlflow_db, "m")
    assert [(v.version, v.aliases) for v in versions] == [(1, ["staging"])]
    assert (project.store / tracking.STORE_MARKER).is_file()


def test_warm_setup_skips_the_work_and_is_cheap(tmp_path: Path) -> None:
    project = _project(tmp_path / "warm")
    tracking.setup(project)
    started = time.perf_counter()
    for _ in range(200):
        tracking.ensure_mlflow_store(project)
    per_call = (time.perf_counter() - started) / 200
    assert per_call < 0.005, f"{per_call * 1e3:.2f} ms per warm call"


def _half_created(project: Project, *, with_run: bool) -> None:
    """What a crash during MLflow's migrations leaves: some tables, a stale revision and the
    batch-migration copy of a table."""
    project.ensure_store()
    con = sqlite3.connect(project.mlflow_db)
    con.executescript(
        """
        CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT);
        INSERT INTO experiments VALUES (0, 'Default');
        CREATE TABLE runs (run_uuid TEXT PRIMARY KEY);
        CREATE TABLE alembic_version (version_num TEXT);
        INSERT INTO alembic_version VALUES ('451aebb31d03');
        CREATE TABLE _alembic_tmp_tags (key TEXT);
        """
    )
    if with_run:
        con.execute("INSERT INTO runs VALUES ('abc')")
    con.commit()
    con.close()


def test_half_created_empty_store_is_moved_aside_and_recreated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "half")
    _half_created(project, with_run=False)
    # Readers see an empty store, not a traceback.
    assert mlflow_store.read_model_versions(project.mlflow_db) == []
    assert mlflow_store.read_runs(project.mlflow_db) == []
    assert mlflow_store.read_aliases(project.mlflow_db, "race") == {}

    exp_id = tracking.setup(project)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "was incomplete" in lines[0] and "moved it to" in lines[0]
    assert list(project.store.glob("mlflow.db.broken-*"))
    client = tracking.client(project)
    assert client.get_experiment(exp_id).name == "race"


def test_half_created_store_with_runs_is_reported_in_one_line(tmp_path: Path) -> None:
    project = _project(tmp_path / "kept")
    _half_created(project, with_run=True)
    with pytest.raises(WorkbenchError) as info:
        tracking.setup(project)
    msg = str(info.value)
    assert "\n" not in msg
    assert "incomplete or out of date" in msg and "mlflow db upgrade" in msg
    assert not list(project.store.glob("mlflow.db.broken-*"))  # nothing of the user's moved


def test_models_command_on_a_store_without_tables_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "models")
    project.ensure_store()
    con = sqlite3.connect(project.mlflow_db)
    con.execute("CREATE TABLE model_versions (name TEXT, version INTEGER)")  # no aliases table
    con.execute("INSERT INTO model_versions VALUES ('race', 1)")
    con.commit()
    con.close()
    assert main(["models", "--project", str(project.root), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "no such table" not in out + err


def test_two_first_pipelines_at_once_both_succeed(sample_project: Project) -> None:
    """The issue's own case: two `pipeline run`s on a project whose store does not exist yet.
    Both register a version (the model is created once), and the store works after."""
    assert not sample_project.mlflow_db.exists()
    cmd = [sys.executable, "-m", "workbench", "pipeline", "run", "--runner", "local", "--json"]
    cmd += ["--project", str(sample_project.root)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
    versions = sorted(json.loads(out)["version"] for out, _ in results)
    assert versions == [1, 2]
    code = main(["models", "--project", str(sample_project.root), "--json"])
    assert code == 0
