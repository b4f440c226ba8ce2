"""MLflow runs left RUNNING by a training job that ended without a result.

A training job killed mid-way (kill -9, a container removed, a lost host process) never ends
its MLflow run; when its job is settled as failed or stopped, the run is ended too, with an end
time and a tag saying why. The run is the one the job announced (its `run` event), or the one
tagged with the job's id (training sets `workbench.job_id` when it creates the run).
"""

from __future__ import annotations

import time

from workbench.project import Project
from workbench.registry.alias_moves import mlflow_call
from workbench.store import backends, tracking

#: MLflow's run status for a job settled as failed / stopped.
RUN_STATUS = {"failed": "FAILED", "stopped": "KILLED"}


def running_runs(project: Project, job_id: str, run_id: str | None = None) -> list[str]:
    """The job's runs that MLflow still has as RUNNING (one read of the store, no mlflow import)."""
    return backends.reader_for(project).running_run_ids("workbench.job_id", job_id, run_id)


def end_runs(
    project: Project, job_id: str, run_id: str | None, job_status: str, why: str | None
) -> list[str]:
    """End the runs a job settled as `job_status` left RUNNING; returns their ids."""
    status = RUN_STATUS.get(job_status)
    if status is None:
        return []
    runs = running_runs(project, job_id, run_id)
    if not runs:
        return []
    client = tracking.client(project)
    now_ms = int(time.time() * 1000)
    for rid in runs:
        note = f"job {job_id} {job_status}: {why or 'ended without a result'}"
        mlflow_call(client.set_tag, rid, "workbench.ended_by", note[:5000])
        mlflow_call(client.set_terminated, rid, status=status, end_time=now_ms)
    return runs
