"""Jobs: `jobs`, `logs`, `stop`, and the job images (`image bootstrap`, `image build`)."""

from __future__ import annotations

from typing import Any

import click

from workbench.cli.common import Commands, fmt, load_project, print_json

commands = Commands()


def _runtime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@commands.command(
    "jobs", "jobs and their status (a job that ended unobserved is settled)", json=True
)
@click.option("--limit", type=int, default=50)
def jobs(limit: int, as_json: bool) -> int:
    from workbench.jobs import control

    project = load_project()
    found = control.list_jobs(project, limit=limit)
    if as_json:
        print_json([j.to_dict() for j in found])
        return 0
    from workbench.cli.tables import Col, show
    from workbench.jobs import telemetry

    cols = [
        Col("job"),
        Col("kind"),
        Col("runner", optional=True),
        Col("status"),
        Col("runtime", right=True),
        Col("progress", right=True, optional=True),
        Col("run id", optional=True),
        Col("exit", right=True, optional=True),
        Col("reason", cut=12),
    ]
    rows = []
    for j in found:
        # A running job's progress from its record; a finished one's from its log's last
        # progress event, as the Jobs screen shows it (the same core function).
        at = j.progress or telemetry.final_progress(j)
        progress = f"{at[0]}/{at[1]}" if at else "-"
        rows.append(
            [
                j.job_id,
                j.kind,
                j.runner,
                j.status,
                _runtime(j.runtime_s),
                progress,
                (j.run_id or "-")[:12],
                fmt(j.exit_code),
                " ".join((j.reason or "").split()),
            ]
        )
    show(cols, rows, title=f"{len(found)} job(s)")
    return 0


@commands.command("logs", "a job's log")
@click.argument("job", metavar="JOB", help="job id or unique prefix")
@click.option("--follow", "-f", is_flag=True, help="keep printing until it ends")
@click.option("--events", is_flag=True, help="include @wb progress/result events")
def logs(job: str, follow: bool, events: bool) -> int:
    import time

    from workbench.jobs import control

    project = load_project()
    found = control.get_job(project, job)
    lines, offset = control.read_log(found, 0, events_too=events)
    for line in lines:
        print(line)
    if not follow or not found.active:
        return 0
    runner = control.runner_for(found.runner)
    stream = runner.stream_output(found.handle) if found.handle and _owner_gone(found) else None
    if stream is not None:
        # Nobody is copying the container's output into the log file: read the container.
        for i, line in enumerate(stream):
            if i >= len(lines) and (events or not line.startswith("@wb ")):
                print(line, flush=True)
        return 0
    while True:
        new, offset = control.read_log(found, offset, events_too=events)
        for line in new:
            print(line, flush=True)
        if not new:
            found = control.get_job(project, found.job_id)
            if not found.active:
                new, offset = control.read_log(found, offset, events_too=events)
                for line in new:
                    print(line, flush=True)
                return 0
            time.sleep(0.3)


def _owner_gone(job: Any) -> bool:
    """Has the job's log file stopped growing (the process that started it is gone)?"""
    import os
    import time

    try:
        return time.time() - os.path.getmtime(job.log_path) > 5
    except OSError:
        return True


@commands.command("stop", "stop a running job")
@click.argument("job", metavar="JOB", help="job id or unique prefix")
def stop(job: str) -> int:
    from workbench.jobs import control

    stopped = control.stop_job(load_project(), job)
    print(f"asked job {stopped.job_id} ({stopped.runner}) to stop")
    return 0


image = commands.group("image", "job images: bootstrap a base image, build the job image")


@image.action("bootstrap", "make a Python base image with no registry (root, debootstrap)")
@click.option("--tag", default="workbench-base:bookworm")
@click.option("--suite", default="bookworm")
@click.option("--mirror", help="Debian mirror URL (default: debootstrap's)")
def image_bootstrap(tag: str, suite: str, mirror: str | None) -> int:
    from workbench.jobs import images

    images.bootstrap_base(tag, suite, mirror)
    print(f'use it: set [docker].base_image = "{tag}" in workbench.toml')
    return 0


@image.action("build", "build the project's job image (skipped when up to date)")
@click.option("--force", is_flag=True, help="build even when up to date")
def image_build(force: bool) -> int:
    from workbench.jobs import images

    print(images.ensure_job_image(load_project(), force=force))
    return 0
