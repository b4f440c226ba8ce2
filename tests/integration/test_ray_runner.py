"""`--runner ray`: real jobs on the real Ray cluster of the team services (a head and a worker
on 127.0.0.1, `ray_address`), on a tiny project whose MLflow store (SQLite) is on this disk,
which the one-machine cluster shares. Every job a test starts ends before the test does."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import mlflow_client, run_cli
from tests.services import ray_python
from workbench.demo import samples
from workbench.jobs import control
from workbench.project import Project

pytestmark = pytest.mark.integration

#: The cluster's Python (it has Workbench's dependencies; Workbench's code goes with the job).
CLUSTER_PYTHON = ray_python()
ROWS = 600


def ray_project(root: Path, address: str, extra: str = "") -> Project:
    samples.init(root, "fraud_detection", rows=ROWS)
    toml = root / "workbench.toml"
    toml.write_text(
        toml.read_text()
        + f'\n[ray]\naddress = "{address}"\npython = "{CLUSTER_PYTHON}"\n'
        + "pending_timeout_s = 8\n"
        + extra
    )
    return Project.load(root)


@pytest.fixture
def tiny(tmp_path: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("WORKBENCH_USER", "tester")
    return ray_project(tmp_path / "proj", ray_address)


def train(capsys: pytest.CaptureFixture[str], project: Project, *more: str) -> tuple[int, str]:
    """`workbench train --runner ray` (a few iterations): its exit code and its stderr."""
    code, _, err = run_cli(
        capsys, "--project", str(project.root), "train", "--runner", "ray", "-q",
        "--param", "num_iterations=8", *more,
    )  # fmt: skip
    return code, err


def ray_jobs(address: str) -> dict[str, str]:
    from ray.job_submission import JobSubmissionClient

    return {
        str(j.submission_id): str(j.status.value)
        for j in JobSubmissionClient(address).list_jobs()
        if j.submission_id
    }


def test_train_on_ray_is_tracked_logged_and_listed(
    tiny: Project, capsys: pytest.CaptureFixture[str], ray_address: str
) -> None:
    code, out, err = run_cli(
        capsys, "--project", str(tiny.root), "train", "--runner", "ray", "--json",
        "--param", "num_iterations=8",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "succeeded" and doc["runner"] == "ray"
    run = mlflow_client(tiny).get_run(doc["run_id"])
    assert run.info.status == "FINISHED"
    assert 0.5 < run.data.metrics["holdout_auc"] <= 1.0
    # the log came back from the cluster: Ray's own line naming our entrypoint, and our events
    code, out, _ = run_cli(capsys, "--project", str(tiny.root), "logs", doc["job_id"], "--events")
    assert code == 0
    assert f"Running entrypoint for job wb-{doc['job_id']}" in out
    assert '"event": "result"' in out
    code, out, _ = run_cli(capsys, "--project", str(tiny.root), "jobs", "--json")
    (job,) = [j for j in json.loads(out) if j["job_id"] == doc["job_id"]]
    assert job["status"] == "succeeded" and job["runner"] == "ray"
    assert job["handle"] == f"wb-{doc['job_id']}@{ray_address}"
    # reattach by the handle: the cluster still knows the job and how it ended
    assert control.runner_for("ray").status(job["handle"]) == ("exited", 0)
    assert ray_jobs(ray_address)[f"wb-{doc['job_id']}"] == "SUCCEEDED"


def test_a_failing_job_ends_as_one_line_with_its_cause(
    tiny: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = train(capsys, tiny, "--param", "boosting=nonsense")
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("runner: ")]
    assert len(lines) == 1, err
    assert "failed" in lines[0] and "Unknown boosting type nonsense" in lines[0]


def test_stopping_a_running_job(tiny: Project, ray_address: str) -> None:
    outcomes: list[control.JobOutcome] = []
    runner = control.resolve_runner(tiny, "ray")
    long = {"num_iterations": 200000, "early_stopping_round": 0}
    thread = threading.Thread(
        target=lambda: outcomes.append(control.run_training(tiny, runner, params=long))
    )
    thread.start()
    try:
        job = _wait_for(lambda: _running_ray_job(tiny, ray_address), 90)
        stopped = control.stop_job(tiny, job.job_id)  # as `workbench stop` does
        assert stopped.job_id == job.job_id
    finally:
        thread.join(60)
    (outcome,) = outcomes
    assert outcome.status == "stopped", outcome.reason
    assert ray_jobs(ray_address)[f"wb-{outcome.job_id}"] == "STOPPED"
    (listed,) = [j for j in control.list_jobs(tiny) if j.job_id == outcome.job_id]
    assert listed.status == "stopped"


def _running_ray_job(project: Project, address: str) -> control.JobInfo | None:
    for job in control.list_jobs(project, reconcile=False):
        if job.active and job.handle:
            state = ray_jobs(address).get(job.handle.partition("@")[0])
            return job if state == "RUNNING" and job.progress else None
    return None


def _wait_for(find: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        time.sleep(0.3)
    raise AssertionError(f"nothing after {timeout_s}s")


def test_an_unreachable_cluster_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = ray_project(tmp_path / "proj", "http://127.0.0.1:9")  # the discard port: closed
    code, err = train(capsys, project)
    assert code != 0
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("runner: ")]
    assert len(lines) == 1, err
    assert "cannot reach the Ray cluster at http://127.0.0.1:9" in lines[0]


def test_a_job_no_node_can_run_ends_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ray_address: str
) -> None:
    project = ray_project(tmp_path / "proj", ray_address, "\n[resources]\ngpus = 1\n")
    started = time.monotonic()
    code, err = train(capsys, project)
    assert code == 1
    assert time.monotonic() - started < 60
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("runner: ")]
    assert len(lines) == 1, err
    assert "no node of the Ray cluster has the resources the job asks (gpus=1)" in lines[0]
    assert "pending_timeout_s" in lines[0]
    (job,) = control.list_jobs(project)
    assert job.status == "failed" and not job.handle
    # never submitted: Ray would keep it PENDING, and cannot stop a job no node can place
    assert f"wb-{job.job_id}" not in ray_jobs(ray_address)


def test_a_sweep_runs_its_trials_as_ray_tasks(
    tiny: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "--project", str(tiny.root), "sweep", "--runner", "ray", "--trials", "4",
        "--param", "num_leaves=4..24", "--param", "num_iterations=8",
        "--parallel", "2", "--seed", "3", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    client = mlflow_client(tiny)
    parent = client.get_run(doc["run_id"])
    assert parent.data.tags["workbench.sweep.parallel"] == "2"
    exp = client.get_experiment_by_name(tiny.config.project.name)
    trials = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{doc['run_id']}'")
    assert sorted(r.data.tags["workbench.sweep.trial"] for r in trials) == ["1", "2", "3", "4"]
    assert all(r.info.status == "FINISHED" and "valid_auc" in r.data.metrics for r in trials)
    best = [r for r in trials if r.data.tags.get("workbench.sweep.best") == "true"]
    assert [r.info.run_id for r in best] == [doc["best_run_id"]]
    assert parent.data.tags["workbench.sweep.best_run_id"] == doc["best_run_id"]
    assert doc["model_uri"]  # the best trial's model was logged


def test_stats_and_pids_of_a_running_job_read_its_host_processes(
    tiny: Project, ray_address: str
) -> None:
    import psutil

    outcomes: list[control.JobOutcome] = []
    runner = control.resolve_runner(tiny, "ray")
    long = {"num_iterations": 200000, "early_stopping_round": 0}
    thread = threading.Thread(
        target=lambda: outcomes.append(control.run_training(tiny, runner, params=long))
    )
    thread.start()
    ray = control.runner_for("ray")
    try:
        job = _wait_for(lambda: _running_ray_job(tiny, ray_address), 90)
        pids = ray.pids(job.handle)
        assert pids and all(psutil.pid_exists(p) for p in pids)
        # the training process (our entrypoint) is among them, not Ray's supervisor actor
        cmdlines = [" ".join(psutil.Process(p).cmdline()) for p in pids]
        assert any("workbench.training" in c for c in cmdlines), cmdlines
        ray.stats(job.handle)  # the first reading starts the CPU clock
        time.sleep(1.0)
        stats = ray.stats(job.handle)
        assert set(stats) == {"cpu_percent", "memory_mb"}
        assert 0 < stats["cpu_percent"] < 100 * (psutil.cpu_count() or 1) + 50
        assert 20 < stats["memory_mb"] < 16_000
        control.stop_job(tiny, job.job_id)
    finally:
        thread.join(60)
    assert outcomes and outcomes[0].status == "stopped"
    assert ray.stats(job.handle) == {} and ray.pids(job.handle) == []
    # a handle the cluster does not know, or one of a cluster that is gone: empty, no error
    assert ray.stats(f"wb-nope@{ray_address}") == {}
    started = time.monotonic()
    assert ray.stats("wb-nope@http://127.0.0.1:9") == {} and ray.pids("garbage") == []
    assert time.monotonic() - started < 5
