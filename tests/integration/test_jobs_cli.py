"""`workbench jobs`, `logs` and `stop` on real local jobs."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from workbench import plugins
from workbench.cli.main import main
from workbench.jobs import control as jobs
from workbench.project import Project

pytestmark = pytest.mark.integration


def _wait_running(project: Project, deadline_s: float = 60) -> jobs.JobInfo:
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        running = [j for j in jobs.list_jobs(project) if j.status == "running" and j.progress]
        if running:
            return running[0]
        time.sleep(0.2)
    raise AssertionError("no job reached running with progress")


def test_stop_logs_and_jobs_on_a_local_job(
    sample_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome: list[jobs.JobOutcome] = []
    runner = plugins.load("runner", "local")
    t = threading.Thread(
        target=lambda: outcome.append(
            jobs.run_training(sample_project, runner, params={"num_iterations": 100000})
        )
    )
    t.start()
    job = _wait_running(sample_project)
    assert job.progress is not None and job.progress[1] == 100000
    assert jobs.job_stats(job).get("memory_mb", 0) > 10

    root = str(sample_project.root)
    assert main(["--project", root, "stop", job.job_id[:-1]]) == 0  # a unique prefix works
    t.join(60)
    assert not t.is_alive()
    assert outcome[0].status == "stopped", (outcome[0].exit_code, outcome[0].reason)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=sample_project.tracking_uri)
    run = client.get_run(outcome[0].run_id)
    assert run.info.status == "KILLED" and run.info.end_time is not None  # not RUNNING for ever

    capsys.readouterr()
    assert main(["--project", root, "jobs", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "stopped" and row["reason"] == "stopped by user"

    assert main(["--project", root, "logs", job.job_id]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert main(["--project", root, "logs", job.job_id, "--events"]) == 0
    with_events = capsys.readouterr().out.splitlines()
    assert not any(ln.startswith("@wb ") for ln in plain)
    assert any(ln.startswith("@wb ") and '"progress"' in ln for ln in with_events)

    assert main(["--project", root, "stop", job.job_id]) == 2  # not running any more
    assert "is not running" in capsys.readouterr().err


def test_a_local_job_whose_starter_vanished_is_settled(sample_project: Project) -> None:
    """A job recorded as running whose process is gone is settled from its log."""
    out = jobs.run_training(
        sample_project, plugins.load("runner", "local"), params={"num_iterations": 5}
    )
    assert out.ok
    # Re-record it as running, as if its starter had died before writing the end.
    (job,) = jobs.list_jobs(sample_project)
    jobs._record(
        sample_project,
        job_id=job.job_id,
        kind=job.kind,
        runner=job.runner,
        status="running",
        handle="999999999",
        log_path=job.log_path,
        started_at=job.started_at,
        args=job.args,
    )
    (settled,) = jobs.list_jobs(sample_project)
    assert settled.status == "succeeded" and settled.run_id == out.run_id


def test_unknown_job_is_one_line(
    sample_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(sample_project.root), "logs", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no job matching 'nope'" in err[0]


def test_a_job_whose_starter_died_before_it_ran_is_settled(sample_project: Project) -> None:
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    log = sample_project.jobs_dir / "train-x.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("building workbench-job/x:1\n")
    args = {
        "module": "workbench.training",
        "args": [],
        "starter_pid": dead.pid,
        "host": socket.gethostname(),
    }
    jobs._record(
        sample_project,
        job_id="train-x",
        kind="train",
        runner="docker",
        status="starting",
        log_path=str(log),
        started_at=jobs.utcnow(),
        args=json.dumps(args),
    )
    (job,) = jobs.list_jobs(sample_project)
    assert job.status == "failed"
    assert job.reason == "its starter ended before the job ran"
    # a live starter leaves it alone
    args["starter_pid"] = os.getpid()
    jobs._record(
        sample_project,
        job_id="train-y",
        kind="train",
        runner="docker",
        status="starting",
        log_path=str(log),
        started_at=jobs.utcnow(),
        args=json.dumps(args),
    )
    assert {j.job_id: j.status for j in jobs.list_jobs(sample_project)}["train-y"] == "starting"
