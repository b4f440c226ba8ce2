"""What a kill -9 leaves behind is settled: a training run killed mid-way is ended FAILED in
MLflow when its job is settled, and a version registered by a pipeline killed before its alias
moves is finished (or, when finishing would undo a later move, tagged incomplete and audited).
Real processes, real kills, a real MLflow SQLite store, read back with the plain client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import psutil
import pytest
import tomli_w

from tests.helpers import audit_rows, mlflow_client
from workbench import plugins
from workbench.jobs import control as jobs
from workbench.jobs import events, orphans
from workbench.project import Project
from workbench.registry import versions as registry

pytestmark = pytest.mark.integration


def _quick(project: Project) -> Project:
    path = project.root / "workbench.toml"
    raw = tomllib.loads(path.read_text())
    raw.setdefault("trainer", {})["params"] = {"num_iterations": 20, "seed": 42}
    path.write_text(tomli_w.dumps(raw))
    return Project.load(project.root)


def _env() -> dict[str, str]:
    return {**os.environ, "WORKBENCH_USER": "tester"}


def _wait_training(project: Project, deadline_s: float = 90) -> jobs.JobInfo:
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        for job in jobs.list_jobs(project):
            if job.status == "running" and job.progress and job.progress[0] > 0:
                return job
        time.sleep(0.2)
    raise AssertionError("no training job reached its first iterations")


def _wait_gone(pid: int, deadline_s: float = 30) -> None:
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not end")


def _run_id_of(job: jobs.JobInfo) -> str:
    found = [e for e in jobs._log_events(job.log_path, None) if isinstance(e, events.Run)]
    assert found, "the job announced no run"
    return found[0].run_id


# ---------------------------------------------------------------- a training run killed mid-way


def test_a_killed_training_whose_starter_died_too_ends_failed_in_mlflow(
    sample_project: Project,
) -> None:
    project = sample_project
    argv = ["train", "--project", str(project.root), "--runner", "local", "--quiet", "--json"]
    starter = subprocess.Popen(
        [sys.executable, "-m", "workbench", *argv, "--param", "num_iterations=100000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        job = _wait_training(project)
        run_id = _run_id_of(job)
        assert mlflow_client(project).get_run(run_id).info.status == "RUNNING"
        # kill -9 the starter, then the training process (its own session survives the
        # starter; stopped first, so it cannot notice its pipe break and end the run itself)
        assert job.handle
        os.killpg(int(job.handle), signal.SIGSTOP)
        starter.kill()
        starter.wait(30)
        os.killpg(int(job.handle), signal.SIGKILL)
        _wait_gone(int(job.handle))
    finally:
        if starter.poll() is None:
            starter.kill()
    # nobody saw it end: MLflow still says RUNNING, and the run is found by its job-id tag alone
    assert mlflow_client(project).get_run(run_id).info.status == "RUNNING"
    assert orphans.running_runs(project, job.job_id) == [run_id]

    (settled,) = jobs.list_jobs(project)
    assert settled.status == "failed" and settled.run_id == run_id
    run = mlflow_client(project).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert run.data.tags["workbench.ended_by"].startswith(f"job {job.job_id} failed: ")
    assert run.data.tags["workbench.job_id"] == job.job_id
    assert jobs.list_jobs(project)[0].status == "failed"  # settled once, stays so


def test_a_killed_training_with_its_starter_alive_ends_failed_in_mlflow(
    sample_project: Project,
) -> None:
    project = sample_project
    outcome: list[jobs.JobOutcome] = []
    runner = plugins.load("runner", "local")
    t = threading.Thread(
        target=lambda: outcome.append(
            jobs.run_training(project, runner, params={"num_iterations": 100000})
        )
    )
    t.start()
    job = _wait_training(project)
    assert job.handle
    os.killpg(int(job.handle), signal.SIGKILL)
    t.join(60)
    assert not t.is_alive()
    assert outcome[0].status == "failed" and outcome[0].reason == "killed by SIGKILL"
    run = mlflow_client(project).get_run(_run_id_of(job))
    assert run.info.status == "FAILED" and run.info.end_time is not None


# ---------------------------------------------------------------- a pipeline killed after register

KILL_AFTER_REGISTER = """
import os
import signal
import sys

from workbench.registry import versions as registry
from workbench.cli.main import main

real = registry.register


def register(*args, **kwargs):
    version = real(*args, **kwargs)
    print(f"registered {{version}}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # before any alias moves or audit row
    return version


registry.register = register
sys.exit(main(["pipeline", "run", "--project", {root!r}, "--runner", "local", "--json"]))
"""


def _killed_pipeline(project: Project, tmp_path: Path) -> int:
    script = tmp_path / "kill_after_register.py"
    script.write_text(textwrap.dedent(KILL_AFTER_REGISTER.format(root=str(project.root))))
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(),
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return int(proc.stdout.strip().splitlines()[-1].split()[-1])


def _tags(project: Project, version: int) -> dict[str, str]:
    mv = mlflow_client(project).get_model_version(project.config.model_name, str(version))
    return dict(mv.tags)


def test_a_version_left_by_a_killed_pipeline_is_settled(
    sample_project: Project, tmp_path: Path
) -> None:
    project = _quick(sample_project)
    version = _killed_pipeline(project, tmp_path)
    assert version == 1
    # what the kill left: a version with its intent, no alias, no audit row but its `register`
    assert registry.aliases(project) == {}
    assert [(r["action"], r["to_version"]) for r in audit_rows(project)] == [("register", 1)]
    intent = json.loads(_tags(project, 1)[registry.INTENT_TAG])
    assert [m["alias"] for m in intent["moves"]] == ["staging"]
    assert not psutil.pid_exists(intent["pid"]) or (
        psutil.Process(intent["pid"]).create_time() != intent["started"]
    )

    jobs.list_jobs(project)  # the next look at the jobs settles it
    assert registry.aliases(project) == {"staging": 1}
    (row,) = [r for r in audit_rows(project) if r["action"] != "register"]
    assert (row["action"], row["alias"], row["from_version"], row["to_version"]) == (
        "set",
        "staging",
        None,
        1,
    )
    assert row["actor"].startswith("settled for tester@")
    assert f"pipeline pid {intent['pid']} died" in row["actor"]
    assert row["reason"].startswith("pipeline candidate (gate pass")
    details = json.loads(row["details"])
    assert details["job_id"] == intent["details"]["job_id"]
    assert details["settled_for_pid"] == intent["pid"]
    tags = _tags(project, 1)
    assert registry.SETTLED_TAG in tags and registry.INCOMPLETE_TAG not in tags
    # the training job itself had finished: its record says so
    assert [j.status for j in jobs.list_jobs(project)] == ["succeeded"]
    # settled once: more reads add nothing
    assert len(registry.alias_history(project)) == 1
    assert len(audit_rows(project)) == 2


def test_a_killed_pipelines_version_is_not_moved_over_a_later_move(
    trained_project: Project, tmp_path: Path
) -> None:
    project = _quick(trained_project)
    version = _killed_pipeline(project, tmp_path)
    assert version == 3
    assert registry.aliases(project) == {"production": 1, "staging": 2}
    # meanwhile someone moved staging with the plain client: finishing would undo that
    mlflow_client(project).set_registered_model_alias(project.config.model_name, "staging", "1")

    history = registry.alias_history(project, "staging")  # a registry read settles it
    assert registry.aliases(project) == {"production": 1, "staging": 1}
    assert [(h["action"], h["from_version"], h["to_version"]) for h in history][-1] == (
        "external",
        2,
        1,
    )
    tags = _tags(project, 3)
    assert "'staging' moved from v2 to v1" in tags[registry.INCOMPLETE_TAG]
    assert registry.SETTLED_TAG not in tags
    (row,) = [r for r in audit_rows(project) if r["action"] == "incomplete"]
    assert (row["alias"], row["from_version"], row["to_version"]) == ("staging", 1, 3)
    assert "died after registering v3" in row["reason"]
    assert registry.settle_versions(project) == []  # nothing pending any more


def test_a_live_pipelines_version_is_left_alone(sample_project: Project) -> None:
    """Pending, but its pipeline (this process) is alive; a reused pid is told apart."""
    intent = registry.new_intent(sample_project, [("staging", "set", "x")], job_id="j")
    assert not registry._owner_gone(intent)
    assert registry._owner_gone({**intent, "started": intent["started"] - 3600})
    assert not registry._owner_gone({**intent, "host": "another-host"})
