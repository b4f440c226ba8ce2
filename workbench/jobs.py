"""Jobs: running a job through a runner, its live events, and its record in the jobs log."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench import events, plugins
from workbench.errors import UsageError
from workbench.parquet_log import ParquetLog, utcnow
from workbench.plugins import JobSpec, Runner
from workbench.project import Project

ProgressCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class JobOutcome:
    job_id: str
    status: str  # succeeded | failed | stopped
    exit_code: int
    reason: str | None
    runner: str
    log_path: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def new_job_id(kind: str) -> str:
    return f"{kind}-{utcnow().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def resolve_runner(project: Project, requested: str | None = None) -> Runner:
    """`requested` or config's default; `auto` means docker when an engine answers, else local."""
    choice = requested or project.config.runner.default
    if choice == "auto":
        if "docker" in plugins.available("runner"):
            docker = plugins.load("runner", "docker")
            if docker.available():
                return docker  # type: ignore[no-any-return]
        return plugins.load("runner", "local")  # type: ignore[no-any-return]
    runner = plugins.load("runner", choice)
    if not runner.available():
        raise UsageError(f"runner {choice!r} is not available on this machine")
    return runner  # type: ignore[no-any-return]


def _record(project: Project, **row: Any) -> None:
    ParquetLog(project.logs, "jobs").append([{"ts": utcnow(), **row}])


def run_job(
    project: Project,
    kind: str,
    module: str,
    args: list[str],
    runner: Runner,
    on_progress: ProgressCallback | None = None,
    on_log: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    job_id: str | None = None,
) -> JobOutcome:
    project.ensure_store()
    job_id = job_id or new_job_id(kind)
    log_path = project.jobs_dir / f"{job_id}.log"
    spec = JobSpec(job_id, kind, module, args, project.root, log_path)
    started: datetime = utcnow()
    base: dict[str, Any] = {
        "job_id": job_id,
        "kind": kind,
        "runner": runner.name,
        "log_path": str(log_path),
        "started_at": started,
    }
    _record(project, status="starting", **base)

    def on_start(handle: str) -> None:
        base["handle"] = handle
        _record(project, status="running", **base)

    result: dict[str, Any] = {}
    error: list[str] = []

    def on_line(line: str) -> None:
        event = events.parse(line)
        if event is None:
            if on_log:
                on_log(line)
            return
        kind_ = event.get("event")
        if kind_ == "progress" and on_progress:
            on_progress(int(event["iteration"]), int(event["total"]), event.get("metrics") or {})
        elif kind_ == "result":
            result.update({k: v for k, v in event.items() if k != "event"})
        elif kind_ == "run":
            result["run_id"] = event.get("run_id")
        elif kind_ == "error":
            error.append(str(event.get("message")))

    try:
        code, reason = runner.run(spec, on_line, should_stop, on_start)
    except KeyboardInterrupt:
        code, reason = 130, "interrupted"
    if error:
        reason = error[-1]
    if code == 0 and "model_uri" in result:
        status = "succeeded"
    elif should_stop and should_stop():
        status, reason = "stopped", "stopped by user"
    else:
        status = "failed"
        if code == 0:
            code, reason = 1, reason or "job ended without a result"
    _record(
        project,
        status=status,
        run_id=result.get("run_id"),
        ended_at=utcnow(),
        exit_code=code,
        reason=reason,
        **base,
    )
    return JobOutcome(job_id, status, code, reason, runner.name, str(log_path), result)


def run_training(
    project: Project,
    runner: Runner,
    on_progress: ProgressCallback | None = None,
    on_log: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    run_name: str | None = None,
    params: dict[str, Any] | None = None,
) -> JobOutcome:
    import json

    job_id = new_job_id("train")
    args = ["--project", str(project.root), "--job-id", job_id]
    if run_name:
        args += ["--run-name", run_name]
    if params:
        args += ["--params", json.dumps(params)]
    return run_job(
        project,
        "train",
        "workbench.training",
        args,
        runner,
        on_progress,
        on_log,
        should_stop,
        job_id,
    )
