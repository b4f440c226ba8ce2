"""`workbench sweep`: a real Optuna search run as one job through the local runner, on a tiny
sample project, with real LightGBM trials logged to the project's real MLflow store."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import mlflow_client, run_cli
from workbench.demo import samples
from workbench.jobs import control
from workbench.project import Project

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ROWS = 2_000


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("WORKBENCH_USER", "tester")
    for name in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return Project.load(samples.init(tmp_path / "proj", "fraud_detection", rows=ROWS))


def children(project: Project, parent: str) -> list[Any]:
    client = mlflow_client(project)
    exp = client.get_experiment_by_name(project.config.project.name)
    return list(client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"))


def test_sweep_logs_a_parent_and_a_run_per_trial(
    tiny: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tiny.root)
    code, out, err = run_cli(
        capsys,
        "--project", root, "sweep", "--trials", "3",
        "--param", "num_leaves=4..24",
        "--param", "learning_rate=0.05..0.3..log",
        "--param", "min_data_in_leaf=5,20",
        "--param", "num_iterations=15",
        "--runner", "local", "--seed", "7", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "succeeded"
    parent_id = doc["run_id"]
    client = mlflow_client(tiny)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["workbench.job_id"] == doc["job_id"]

    trials = children(tiny, parent_id)
    assert len(trials) == 3
    for trial in trials:
        assert trial.info.status == "FINISHED"
        assert trial.data.tags["workbench.job_id"] == doc["job_id"]
        assert 4 <= int(trial.data.params["num_leaves"]) <= 24
        assert 0.05 <= float(trial.data.params["learning_rate"]) <= 0.3
        assert trial.data.params["min_data_in_leaf"] in ("5", "20")
        assert trial.data.params["num_iterations"] == "15"
        assert "valid_auc" in trial.data.metrics
        # scored on the validation split: the holdout stays the gate's
        assert not [k for k in trial.data.metrics if k.startswith("holdout_")]
        assert trial.data.metrics["gpu_seconds"] == 0.0  # no GPU here

    best = max(trials, key=lambda r: r.data.metrics["valid_auc"])
    marked = [r for r in trials if r.data.tags.get("workbench.sweep.best") == "true"]
    assert [r.info.run_id for r in marked] == [best.info.run_id]
    assert doc["best_run_id"] == best.info.run_id
    assert parent.data.tags["workbench.sweep.best_run_id"] == best.info.run_id
    assert parent.data.metrics["valid_auc"] == pytest.approx(best.data.metrics["valid_auc"])
    for key in ("num_leaves", "learning_rate", "min_data_in_leaf"):
        assert parent.data.params[f"best_{key}"] == best.data.params[key]
    assert {a.path for a in client.list_artifacts(best.info.run_id, "model")} >= {"model/MLmodel"}
    assert doc["command"].startswith("workbench pipeline run --param num_iterations=15")
    assert f"num_leaves={best.data.params['num_leaves']}" in doc["command"]
    # MLflow's system metrics, sampled every second in training jobs
    assert "system/cpu_utilization_percentage" in parent.data.metrics

    # every run in the runs index (what `workbench runs` and the Experiments screen read)
    code, out, err = run_cli(capsys, "--project", root, "runs", "--json")
    assert code == 0, err
    indexed = {r["run_id"]: r for r in json.loads(out)}
    ids = [parent_id, *(t.info.run_id for t in trials)]
    assert set(ids) <= set(indexed)
    assert indexed[best.info.run_id]["m.valid_auc"] == pytest.approx(best.data.metrics["valid_auc"])
    code, out, err = run_cli(
        capsys, "--project", root, "compare", *(i[:10] for i in ids[1:]), "--json"
    )
    assert code == 0, err
    fields = {row["field"] for row in json.loads(out)}
    assert {"p.num_leaves", "m.valid_auc"} <= fields


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("num_leaves=64..16", "low end must be below"),
        ("num_leaves=a..9", "'a' is not a number"),
        ("learning_rate=0..0.3..log", "log scale"),
        ("boosting=gbdt,,dart", "empty choice"),
        ("num_leaves", "expected KEY="),
        ("num_leaves=0..8", "num_leaves"),  # the trainer's own rule (> 1)
        ("num_iterations=10", "nothing to search"),
    ],
)
def test_a_bad_param_is_one_line_and_exit_2(
    tiny: Project, capsys: pytest.CaptureFixture[str], param: str, says: str
) -> None:
    code, _out, err = run_cli(
        capsys, "--project", str(tiny.root), "sweep", "--trials", "2", "--param", param
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error: --param"), err
    assert says in lines[0]
    assert control.list_jobs(tiny, reconcile=False) == []  # no job was started


def _runs(db: Path) -> list[tuple[str, str]]:
    """(name, status) of every run, straight from MLflow's SQLite store."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return list(con.execute("SELECT name, status FROM runs"))
    except sqlite3.Error:
        return []


def test_ctrl_c_stops_the_sweep_between_trials(tiny: Project) -> None:
    """Ctrl-C in the terminal (SIGINT to the CLI; the job runs in its own session) stops the
    job: the trial under way ends KILLED, the best of the trials done is marked, the parent
    run ends KILLED, the job is recorded as stopped and the command exits 130."""
    argv = ["--project", str(tiny.root), "sweep", "--trials", "40", "--runner", "local"]
    argv += ["--param", "num_leaves=4..8", "--param", "num_iterations=300"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "workbench", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not any(n.startswith("trial") and s == "FINISHED" for n, s in _runs(tiny.mlflow_db)):
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.3)
        cli.send_signal(signal.SIGINT)
        _out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 130, err
    [job] = control.list_jobs(tiny)
    assert job.kind == "sweep" and job.status == "stopped", job
    client = mlflow_client(tiny)
    parent = client.get_run(job.run_id)
    assert parent.info.status == "KILLED"
    trials = children(tiny, parent.info.run_id)
    done = [t for t in trials if t.info.status == "FINISHED"]
    assert 1 <= len(done) < 40
    assert {t.info.status for t in trials} <= {"FINISHED", "KILLED"}
    assert len(trials) - len(done) <= 1  # at most the trial that was under way
    best = max(t.data.metrics["valid_auc"] for t in done)
    marked = [t for t in trials if t.data.tags.get("workbench.sweep.best") == "true"]
    # the best of the trials done (two trials with the same params tie: either may be it)
    assert len(marked) == 1 and marked[0] in done
    assert marked[0].data.metrics["valid_auc"] == best
    assert parent.data.metrics["trials_done"] == len(done)
