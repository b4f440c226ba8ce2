"""Jobs: running a job through a runner, its live events, and its record in the jobs log."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench import plugins
from workbench.errors import UsageError
from workbench.jobs import events
from workbench.jobs.events import Error, Progress, Run, TrainResult
from workbench.jobs.observer import QUIET, JobObserver
from workbench.jobs.watch import Watch, ends_well_of, judge
from workbench.names import check_name, inside
from workbench.plugins import EndsWell, JobSpec, Runner
from workbench.project import Project
from workbench.store.parquet_log import ParquetLog, utcnow

if TYPE_CHECKING:
    from workbench.store.db import Db


@dataclass
class JobOutcome:
    job_id: str
    status: str  # succeeded | failed | stopped
    exit_code: int
    reason: str | None
    runner: str
    log_path: str
    run_id: str | None = None  # the MLflow run the job reported, if any
    train_result: TrainResult | None = None  # what a training job reported at its end

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def new_job_id(kind: str) -> str:
    return f"{kind}-{utcnow().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def resolve_runner(
    project: Project, requested: str | None = None, notes: list[str] | None = None
) -> Runner:
    """`requested` or config's default. `auto` means docker when an engine answers and the job
    image can be had (a configured image, the project's Dockerfile, or the base image present),
    else local; the reason for falling back is appended to `notes`."""
    choice = requested or project.config.runner.default
    if choice == "auto":
        if "docker" in plugins.available("runner"):
            docker = load_runner("docker")
            why = docker.why_not_for(project)
            if why is None and docker.available():
                return docker
            if notes is not None and why:
                notes.append(why)
        return load_runner("local")
    runner = load_runner(choice)
    if not runner.available():
        why = runner.why_unavailable()
        raise UsageError(f"runner {choice!r} is not available: {why or 'not on this machine'}")
    return runner


def load_runner(name: str) -> Runner:
    """A new instance of runner plugin `name`, which must subclass `plugins.Runner`."""
    runner = plugins.load("runner", name)
    if not isinstance(runner, Runner):
        raise UsageError(f"runner plugin {name!r} does not subclass workbench.plugins.Runner")
    return runner


def _host() -> str:
    return socket.gethostname()


def _starter_gone(job: JobInfo) -> bool:
    """Did the process that started this job (on this host) end?"""
    info = _recorded(job)
    pid = info.get("starter_pid")
    if not pid or info.get("host") != _host():
        return False
    import psutil

    try:
        return bool(psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


_RUNNERS: dict[str, Runner] = {}


def runner_for(name: str) -> Runner:
    """One runner instance per name in this process (stats need two readings of one object)."""
    if name not in _RUNNERS:
        _RUNNERS[name] = load_runner(name)
    return _RUNNERS[name]


def configured_resources(project: Project) -> dict[str, Any]:
    """What the project's config gives a job ([resources] cpus, memory, gpus; [docker]'s
    where [resources] says nothing), recorded with every job whatever runs it."""
    cfg = project.config
    return {
        "cpus": cfg.resources.cpus or cfg.docker.cpus,
        "memory": cfg.resources.memory or cfg.docker.memory,
        "gpus": cfg.gpus,
    }


def _record(project: Project, **row: Any) -> None:
    ParquetLog(project.logs_root, "jobs").append([{"ts": utcnow(), **row}])


def run_job(
    project: Project,
    kind: str,
    module: str,
    args: list[str],
    runner: Runner,
    observer: JobObserver | None = None,
    job_id: str | None = None,
    ports: dict[int, tuple[str, int]] | None = None,
    env: dict[str, str] | None = None,
    ends_well: EndsWell = "result",
    record: dict[str, Any] | None = None,
) -> JobOutcome:
    """Run `python -m module args` through `runner` as a recorded job, told to `observer`.
    It succeeds when it reports a result (`ends_well="result"`, a training job), or ends
    well when stopped (`"stopped"`, a server). `record`: more facts for the job row's `args`
    (the pipeline's `pipeline`, a monitor retraining's `trigger`)."""
    observer = observer or QUIET
    project.ensure_store()
    job_id = check_name(job_id, "job id") if job_id else new_job_id(kind)
    log_path = inside(project.jobs_dir, f"{job_id}.log", where="job log")
    how = ends_well
    spec = JobSpec(job_id, kind, module, args, project.root, log_path, env or {}, ports or {}, how)
    base: dict[str, Any] = {
        "job_id": job_id,
        "kind": kind,
        "runner": runner.name,
        "log_path": str(log_path),
        "started_at": utcnow(),
        # who started it: lets another process settle a job whose starter died early
        "args": json.dumps(
            {
                "module": module,
                "args": args,
                "starter_pid": os.getpid(),
                "host": _host(),
                "ends_well": how,
                "resources": configured_resources(project),
                **({"ports": {str(k): list(v) for k, v in ports.items()}} if ports else {}),
                **(record or {}),
            }
        ),
    }
    _record(project, status="starting", **base)

    def started(handle: str) -> None:
        base["handle"] = handle
        if more := runner.job_record(job_id):  # the Docker runner: image, what it was given
            base["args"] = json.dumps({**json.loads(base["args"]), **more})
        _record(project, status="running", **base)

    watch = Watch(observer, started)
    try:
        code, reason = runner.run(spec, watch)
    except KeyboardInterrupt:
        code, reason = 130, "interrupted"
    except BaseException as exc:  # a broken pipe, a bug: the record must not stay "running"
        why = f"the runner failed: {type(exc).__name__}: {exc}"
        _record(project, status="failed", ended_at=utcnow(), exit_code=1, reason=why, **base)
        raise
    status, code, reason = judge(spec, code, reason, watch)
    _record(
        project,
        status=status,
        run_id=watch.run_id,
        ended_at=utcnow(),
        exit_code=code,
        reason=reason,
        **base,
    )
    if status != "succeeded":
        _end_runs(project, job_id, watch.run_id, status, reason)
    return JobOutcome(
        job_id, status, code, reason, runner.name, str(log_path), watch.run_id, watch.result
    )


def run_training(
    project: Project,
    runner: Runner,
    observer: JobObserver | None = None,
    run_name: str | None = None,
    params: dict[str, Any] | None = None,
    pipeline: bool = False,
    trigger: str | None = None,
) -> JobOutcome:
    """A training job: it ends well when it reports its result. Its row records whether the
    pipeline started it (`pipeline`: its data was validated first) and the drift check whose
    retraining it is (`trigger`, the monitor's)."""
    job_id = new_job_id("train")
    args = ["--project", str(project.root), "--job-id", job_id]
    if run_name:
        args += ["--run-name", run_name]
    if params:
        args += ["--params", json.dumps(params)]
    record: dict[str, Any] = {"pipeline": pipeline, **({"trigger": trigger} if trigger else {})}
    return run_job(
        project, "train", "workbench.training", args, runner, observer, job_id,
        ends_well="result", record=record,
    )  # fmt: skip


def run_sweep(
    project: Project,
    runner: Runner,
    spec_json: str,
    observer: JobObserver | None = None,
    parallel: int = 0,
) -> JobOutcome:
    """A sweep job (`workbench.training.sweep`, its spec as JSON): it ends well when it
    reports its result (the best trial). `parallel`: trials at once (the ray runner's)."""
    job_id = new_job_id("sweep")
    args = ["--project", str(project.root), "--job-id", job_id, "--sweep", spec_json]
    if parallel:
        args += ["--parallel", str(parallel)]
    return run_job(project, "sweep", "workbench.training.sweep", args, runner, observer, job_id)


# --- jobs after the fact: list, reconcile, logs, stats, stop, restart ---------------------

ACTIVE = ("starting", "running")


@dataclass
class JobInfo:
    job_id: str
    kind: str
    runner: str
    status: str
    run_id: str | None
    handle: str | None
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    reason: str | None
    log_path: str
    args: str | None = None
    progress: tuple[int, int] | None = None  # (iteration, total) of a training job

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def runtime_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at or (utcnow() if self.active else None)
        return None if end is None else (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "runtime_s": self.runtime_s}


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    names = JobInfo.__dataclass_fields__.keys() - {"progress"}
    return {k: row.get(k) for k in names}


def _log_events(path: str, tail_bytes: int | None = 65536) -> list[events.Event]:
    """The `@wb` events in a job's log (the last `tail_bytes` of it, or all of it)."""
    try:
        with open(path, "rb") as fh:
            if tail_bytes:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - tail_bytes))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [e for e in map(events.decode, text.splitlines()) if e is not None]


def _last(found: list[events.Event], kind: type[Any]) -> Any:
    return next((e for e in reversed(found) if isinstance(e, kind)), None)


def last_progress(log_path: str, tail_bytes: int = 8192) -> tuple[int, int] | None:
    """(iteration, total) of the last progress event in the tail of a job's log."""
    last: Progress | None = _last(_log_events(log_path, tail_bytes), Progress)
    return None if last is None else (last.iteration, last.total)


def _finish_from_log(
    project: Project, job: JobInfo, exit_code: int | None, why: str | None = None
) -> JobInfo:
    """A job whose process ended while nobody watched it: settle its record from its log,
    unless its starter settled it meanwhile (then keep what the starter wrote)."""
    from workbench.store.db import Db

    with Db(project.logs_root) as db:
        latest = db.rows("SELECT status FROM jobs WHERE job_id = ?", [job.job_id])
    if latest and latest[0]["status"] not in ACTIVE:
        job.status = latest[0]["status"]
        return job
    found = _log_events(job.log_path, tail_bytes=None)
    result: TrainResult | None = _last(found, TrainResult)
    error: Error | None = _last(found, Error)
    run = next((e for e in found if isinstance(e, Run)), None)
    code: int | None
    if result is not None:
        status, reason, code = "succeeded", None, 0 if exit_code is None else exit_code
    elif ends_well_of(job.kind, _recorded(job).get("ends_well")) == "stopped" and exit_code == 0:
        status, reason, code = "stopped", "stopped", 0
    else:
        status = "failed"
        reason = (
            (error.message if error else None)
            or why
            or (
                f"exited with code {exit_code}"
                if exit_code is not None
                else "ended while unobserved"
            )
        )
        code = exit_code
    job.status, job.reason, job.exit_code = status, reason, code
    job.run_id = job.run_id or (result or run or Run("")).run_id or None
    job.ended_at = utcnow()
    row = {k: v for k, v in job.to_dict().items() if k not in ("progress", "runtime_s")}
    _record(project, **row)
    if status != "succeeded":
        _end_runs(project, job.job_id, job.run_id, status, reason)
    return job


def _recorded(job: JobInfo) -> dict[str, Any]:
    """What `run_job` recorded of how the job was started (its `args` column)."""
    try:
        info = json.loads(job.args or "{}")
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def _end_runs(
    project: Project, job_id: str, run_id: str | None, status: str, why: str | None
) -> None:
    """A training job that ended without a result leaves no MLflow run RUNNING."""
    from workbench.errors import WorkbenchError
    from workbench.jobs import orphans

    # The job's record is settled either way; a store that refuses leaves the run as it was.
    with contextlib.suppress(WorkbenchError, OSError, sqlite3.Error):
        orphans.end_runs(project, job_id, run_id, status, why)


def list_jobs(
    project: Project, db: Db | None = None, reconcile: bool = True, limit: int = 200
) -> list[JobInfo]:
    """Jobs newest first. With `reconcile`, a job recorded as running whose process or
    container has ended is settled from its log (a job survives the process that started it)."""
    from workbench.store.db import Db

    with Db.borrow(db, project.logs_root) as use:
        rows = use.rows("SELECT * FROM jobs ORDER BY started_at DESC NULLS LAST LIMIT ?", [limit])
    jobs = [JobInfo(**_fields(r)) for r in rows]
    for job in jobs:
        if not job.active:
            continue
        if reconcile and not job.handle and _starter_gone(job):
            _finish_from_log(project, job, None, "its starter ended before the job ran")
            continue
        if reconcile and job.handle:
            runner = runner_for(job.runner)
            try:
                state, code = runner.status(job.handle)
                if state == "exited":
                    runner.collect(job.handle, job.log_path)  # e.g. a container's whole log
            except Exception:  # an engine that is down: leave the record as it is
                state, code = "running", None
            if state != "running":
                _finish_from_log(project, job, code)
                continue
        job.progress = last_progress(job.log_path)
    if reconcile:
        from workbench.errors import WorkbenchError
        from workbench.registry import versions as registry

        # versions a killed pipeline left without aliases (`workbench history` says if it fails)
        with contextlib.suppress(WorkbenchError, OSError, sqlite3.Error):
            registry.settle_versions(project)
    return jobs


def get_job(project: Project, job_id: str, db: Db | None = None) -> JobInfo:
    """A job by id or unique prefix."""
    jobs = list_jobs(project, db)
    matches = [j for j in jobs if j.job_id == job_id] or [
        j for j in jobs if j.job_id.startswith(job_id)
    ]
    if len(matches) != 1:
        known = ", ".join(j.job_id for j in jobs[:5]) or "none yet"
        what = "no job" if not matches else f"{len(matches)} jobs"
        raise UsageError(f"{what} matching {job_id!r} (recent: {known})")
    return matches[0]


def read_log(job: JobInfo, offset: int = 0, events_too: bool = False) -> tuple[list[str], int]:
    """Log lines written since byte `offset`, and the offset to ask from next time.
    Only whole lines are returned; `@wb` event lines are left out unless `events_too`."""
    try:
        with open(job.log_path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except OSError:
        return [], offset
    end = chunk.rfind(b"\n") + 1
    lines = chunk[:end].decode("utf-8", "replace").splitlines()
    if not events_too:
        lines = [ln for ln in lines if not ln.startswith(events.PREFIX)]
    return lines, offset + end


def job_stats(job: JobInfo) -> dict[str, float]:
    if not job.active or not job.handle:
        return {}
    try:
        return runner_for(job.runner).stats(job.handle)
    except Exception:
        return {}


def stop_job(project: Project, job_id: str) -> JobInfo:
    job = get_job(project, job_id)
    if not job.active:
        raise UsageError(f"job {job.job_id} is not running (status: {job.status})")
    if not job.handle:
        raise UsageError(f"job {job.job_id} has not started yet; try again in a moment")
    runner_for(job.runner).stop(job.handle)
    return job


def restart_job(
    project: Project,
    job_id: str,
    runner: Runner | None = None,
    observer: JobObserver = QUIET,
) -> JobOutcome:
    """Run a job again with the same arguments (as a new job), on `runner` or the same kind;
    it ends well as the first one was declared to."""
    job = get_job(project, job_id)
    if job.active:
        raise UsageError(f"job {job.job_id} is still running; stop it first")
    spec = _recorded(job)
    if "module" not in spec:
        raise UsageError(f"job {job.job_id} did not record its arguments; start it anew")
    new_id = new_job_id(job.kind)
    args = list(spec["args"])
    if "--job-id" in args:
        args[args.index("--job-id") + 1] = new_id
    runner = runner or resolve_runner(project, job.runner)
    ports = {int(k): (str(v[0]), int(v[1])) for k, v in spec.get("ports", {}).items()}
    how = ends_well_of(job.kind, spec.get("ends_well"))
    # a restarted training job is no pipeline's (nothing validates or registers after it)
    record = {"pipeline": False} if job.kind == "train" else None
    return run_job(
        project, job.kind, spec["module"], args, runner, observer, new_id, ports,
        ends_well=how, record=record,
    )  # fmt: skip
