"""What a job looks like from outside while it runs or after it ended, for the TUI's Jobs
screen and the CLI (`workbench jobs`, `workbench logs`): the tail of its log with the `@wb`
events parsed, where a finished training job got to, and each running job's CPU, memory and
GPU memory (its runner's host pids matched to nvidia-smi's compute apps), with the device's
GPU use.

Everything here reads files, asks runners or runs nvidia-smi: call it from a worker thread,
never from a UI's event loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from workbench.jobs import control, events, gpu
from workbench.project import Project

#: A log read from its start is read from its last TAIL_BYTES (a live one from there on).
TAIL_BYTES = 512 * 1024
#: Where a finished job's last progress event is looked for: the last FINAL_BYTES of its log.
FINAL_BYTES = 8192

Progress = tuple[int, int]


def progress_of(event: dict[str, Any] | None) -> Progress | None:
    """(iteration, total) of a parsed progress event; None for any other event (or none)."""
    typed = None if event is None else events.from_fields(event)
    return (typed.iteration, typed.total) if isinstance(typed, events.Progress) else None


@dataclass
class LogTail:
    """Whole lines of a job's log read from `start` to `next_offset`: each with its `@wb`
    event (None for a plain line), and the last progress among them."""

    start: int
    next_offset: int
    lines: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    progress: Progress | None = None


def tail_log(job: control.JobInfo, start: int = 0, tail_bytes: int = TAIL_BYTES) -> LogTail:
    """The log's lines from byte `start` on (only whole lines; ask again from `next_offset`).
    From 0, a log longer than `tail_bytes` is read from its last `tail_bytes`, without the
    line cut in two there."""
    offset, skip_partial = start, False
    if start == 0:
        try:
            size = os.path.getsize(job.log_path)
        except OSError:
            size = 0
        if size > tail_bytes:
            offset, skip_partial = size - tail_bytes, True
    raw, next_offset = control.read_log(job, offset, events_too=True)
    if skip_partial:
        raw = raw[1:]
    tail = LogTail(start, next_offset)
    for line in raw:
        event = events.parse(line) if line.startswith(events.PREFIX) else None
        tail.lines.append((line, event))
        tail.progress = progress_of(event) or tail.progress
    return tail


def final_progress(job: control.JobInfo, tail_bytes: int = FINAL_BYTES) -> Progress | None:
    """Where a training job got to: its log's last progress event (None when it has none)."""
    return control.last_progress(job.log_path, tail_bytes)


class FinalProgress:
    """`final_progress`, read once per job: a finished job's log does not change."""

    def __init__(self) -> None:
        self._known: dict[str, Progress | None] = {}

    def __call__(self, job: control.JobInfo) -> Progress | None:
        if job.job_id not in self._known:
            self._known[job.job_id] = final_progress(job)
        return self._known[job.job_id]


def job_pids(job: control.JobInfo) -> list[int] | None:
    """The host pids of a running job's processes, from its runner's optional `pids()`
    (None when the job is not running or its runner cannot say)."""
    if not job.active or not job.handle:
        return None
    try:
        return list(control.runner_for(job.runner).pids(job.handle)) or None
    except Exception:
        return None


def gpu_memory(jobs: list[control.JobInfo], tool: str) -> dict[str, float]:
    """Job id -> GPU memory (MiB) of each running job that holds some: one nvidia-smi call
    for all the jobs."""
    apps = gpu.compute_apps(tool)
    if not apps:
        return {}
    out: dict[str, float] = {}
    for job in jobs:
        pids = job_pids(job)
        mib = gpu.job_gpu_mib(pids, apps) if pids else None
        if mib is not None:
            out[job.job_id] = mib
    return out


@dataclass
class JobsSnapshot:
    """The jobs (newest first), each running job's `cpu_percent`, `memory_mb` and `gpu_mib`
    (where known), and the device's GPU use ('45% 12.3G'; None without a GPU tool)."""

    jobs: list[control.JobInfo]
    stats: dict[str, dict[str, float]]
    gpu: str | None = None


def snapshot(
    project: Project,
    db: Any = None,
    *,
    reconcile: bool = True,
    gpu_tool: str | None = None,
    finished: FinalProgress | None = None,
) -> JobsSnapshot:
    """Every job with its resources now. A finished training job's progress is read from its
    log (through `finished`, to read each log once across calls); `gpu_tool` (nvidia-smi's
    path, see `gpu.find_tool`) adds each running job's GPU memory and the device's use."""
    found = control.list_jobs(project, db, reconcile=reconcile)
    stats = {job.job_id: control.job_stats(job) for job in found if job.active}
    if gpu_tool:
        for job_id, mib in gpu_memory(found, gpu_tool).items():
            stats.setdefault(job_id, {})["gpu_mib"] = mib
    progress_of_finished = finished or FinalProgress()
    for job in found:
        if job.kind in ("train", "sweep") and not job.active and job.progress is None:
            job.progress = progress_of_finished(job)
    device = gpu.device_use(gpu_tool) if gpu_tool else None
    return JobsSnapshot(found, stats, device)


#: A run's console tail reads at most the last CONSOLE_BYTES of its job's log.
CONSOLE_BYTES = 64 * 1024


@dataclass
class ConsoleTail:
    """The last lines of the log of the job that made a run (`@wb` event lines left out):
    `job_id` and `path` are None when no job is known for the run."""

    run_id: str
    job_id: str | None
    path: str | None
    lines: list[str] = field(default_factory=list)
    size: int = 0  # the log's size in bytes when read


def run_job_log(project: Project, db: Any, run_id: str) -> tuple[str | None, str | None]:
    """(job id, log path) of the job that made run `run_id`: from the jobs log, else from the
    run's `workbench.job_id` tag (a job whose record is gone: its log is where run_job put
    it). (None, None) for a run no job made (a plain MLflow script)."""
    rows = db.rows(
        "SELECT job_id, log_path FROM jobs WHERE run_id = ? ORDER BY ts DESC LIMIT 1", [run_id]
    )
    if rows and rows[0]["log_path"]:
        return str(rows[0]["job_id"]), str(rows[0]["log_path"])
    tagged = db.rows("SELECT tags['workbench.job_id'] AS job FROM runs WHERE run_id = ?", [run_id])
    job_id = tagged[0]["job"] if tagged else None
    if not job_id:
        return None, None
    return str(job_id), str(project.jobs_dir / f"{job_id}.log")


def console_tail(
    project: Project, db: Any, run_id: str, lines: int = 200, tail_bytes: int = CONSOLE_BYTES
) -> ConsoleTail:
    """The last `lines` lines of the console of the job that made run `run_id`."""
    job_id, path = run_job_log(project, db, run_id)
    tail = ConsoleTail(run_id, job_id, path)
    if path is None:
        return tail
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - tail_bytes)
            fh.seek(start)
            chunk = fh.read()
    except OSError:
        return tail
    text = chunk.decode("utf-8", "replace").splitlines()
    if start > 0 and text:
        text = text[1:]  # the line cut in two where the read began
    kept = [ln for ln in text if not ln.startswith(events.PREFIX)]
    tail.lines = kept[-lines:]
    tail.size = size
    return tail
