"""The Jobs screen (key 4), driven with Pilot at 80x24 over real jobs: real training through
the real local runner on a fresh sample project, real Parquet job records, real log files.

There is no GPU on the machines these tests were written on: the GPU column shows only where
`nvidia-smi` is on the PATH, so it is hidden here (nvidia-smi is never faked)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from workbench_tui.app import WorkbenchApp
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.jobs import JobsScreen
from workbench_tui.jobs_format import describe_event, fmt_duration, fmt_progress, short_job_id

from tests.tui.helpers import CONFIG, make_project, palette_hits, record_notes, run_id, settle
from workbench import plugins
from workbench.jobs import control as jobs
from workbench.jobs import events
from workbench.jobs.gpu import parse_device_use as parse_gpu
from workbench.project import Project
from workbench.store.parquet_log import ParquetLog

pytestmark = pytest.mark.tui

SIZE = (80, 24)
REPO = Path(__file__).resolve().parents[2]


async def poll(pilot: Pilot[Any], condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Short pauses until `condition()` holds, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            screen = pilot.app.screen
            seen = [(j.job_id, j.status, j.reason) for j in getattr(screen, "jobs", [])]
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; jobs: {seen}")
        await pilot.pause(0.2)


async def open_jobs(pilot: Pilot[Any]) -> JobsScreen:
    await pilot.press("4")
    screen = pilot.app.screen
    assert isinstance(screen, JobsScreen)
    await poll(pilot, lambda: screen.loaded, 30, "the first jobs list")
    return screen


def job(screen: JobsScreen, job_id: str) -> jobs.JobInfo | None:
    return next((j for j in screen.jobs if j.job_id == job_id), None)


def cell(screen: JobsScreen, job_id: str, column: str) -> str:
    return str(screen.table.get_cell(job_id, column))


# --- real jobs ----------------------------------------------------------------------------


#: Runs a long training job through the local runner and prints how it ended.
STARTER = """
import json, sys
from workbench import plugins
from workbench.jobs import control as jobs
from workbench.project import Project
project = Project.load(sys.argv[1])
runner = plugins.load("runner", "local")
outcome = jobs.run_training(project, runner, params={"num_iterations": 100_000})
print(json.dumps({"status": outcome.status, "reason": outcome.reason}))
"""


async def test_stop_a_running_job(sample_project: Project) -> None:
    """A long training job started by another process (as `workbench train` in another
    terminal would) shows up running with live progress, CPU and memory; x and a
    confirmation stop it, and it ends as stopped.

    Another process, not a thread of this one: a job run by this very process and stopped
    through `jobs.stop_job` from it can end "failed" (the local runner's stop() reaps the
    child with psutil before the runner's own wait does, which then reads exit code 0)."""
    project = sample_project
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(project.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        app = WorkbenchApp(project, sync_on_start=False)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_jobs(pilot)
            await poll(
                pilot,
                lambda: any(j.status == "running" for j in screen.jobs),
                60,
                "the job to run",
            )
            running = next(j for j in screen.jobs if j.status == "running")
            assert running.runner == "local" and running.kind == "train"
            await pilot.press("home")  # select it (it is the only job)
            assert screen.selected_id == running.job_id

            # live: progress from the log's events, CPU and memory from the runner
            await poll(
                pilot,
                lambda: screen.progress is not None and screen.progress[0] > 0,
                90,
                "training progress",
            )
            assert screen.progress is not None and screen.progress[1] == 100_000
            assert screen.progress_row.display and screen.bar.total == 100_000
            assert "iteration" in str(screen.iteration_label.content)
            assert any("iteration" in line for line in screen.log_view.lines)
            await poll(
                pilot,
                lambda: screen.stats.get(running.job_id, {}).get("cpu_percent", 0) > 0,
                10,
                "a CPU reading",
            )
            assert screen.stats[running.job_id]["memory_mb"] > 10
            assert cell(screen, running.job_id, "mem") != "-"
            assert "running" in cell(screen, running.job_id, "status")

            await pilot.press("x")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog)
            assert running.job_id in dialog.change
            await pilot.press("enter")  # the Stop button has focus; no reason needed
            await poll(pilot, lambda: app.screen is screen, 5, "the dialog to close")
            await poll(
                pilot,
                lambda: (j := job(screen, running.job_id)) is not None and j.status == "stopped",
                30,
                "the job to be stopped",
            )
            assert cell(screen, running.job_id, "status") == "stopped"
            assert screen.table.get_cell(running.job_id, "status").style  # coloured
            assert "stopped" in str(screen.detail.border_title)
    finally:
        if starter.poll() is None:  # the test failed early: stop the job, then the starter
            for left in jobs.list_jobs(project):
                if left.active and left.handle:
                    jobs.stop_job(project, left.job_id)
        out, err = starter.communicate(timeout=60)
    assert starter.returncode == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1]) == {
        "status": "stopped",
        "reason": "stopped by user",
    }
    assert jobs.get_job(project, running.job_id).status == "stopped"


async def test_gpu_memory_of_a_running_job(
    sample_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real local job and a FAKE nvidia-smi (no GPU on CI machines; its output is written in
    the documented `--format=csv,noheader,nounits` layout): once the fake reports 2048 MiB for
    the job's pid (its handle), the job's row shows 2.0G; the device's use is in the title."""
    project = sample_project
    pid_file = tmp_path / "gpu-pid"
    tool = tmp_path / "nvidia-smi"
    tool.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *--query-compute-apps=*) [ -f {pid_file} ] && echo "$(cat {pid_file}), 2048" ;;\n'
        '  *--query-gpu=*) echo "50, 4096" ;;\n'
        "  *) exit 2 ;;\n"
        "esac\n"
        "exit 0\n"
    )
    tool.chmod(0o755)
    monkeypatch.setattr(JobsScreen, "GPU_TOOL", str(tool))
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(project.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        app = WorkbenchApp(project, sync_on_start=False)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_jobs(pilot)
            await poll(
                pilot,
                lambda: any(j.status == "running" and j.handle for j in screen.jobs),
                60,
                "the job to run",
            )
            running = next(j for j in screen.jobs if j.status == "running" and j.handle)
            assert cell(screen, running.job_id, "gpu") == "-"  # not on the GPU yet
            assert "gpu 50% 4.0G" in screen.sub_title
            pid_file.write_text(str(running.handle))
            await poll(
                pilot,
                lambda: cell(screen, running.job_id, "gpu") == "2.0G",
                15,
                "the job's GPU memory",
            )
            assert screen.stats[running.job_id]["gpu_mib"] == 2048
    finally:
        for left in jobs.list_jobs(project):
            if left.active and left.handle:
                jobs.stop_job(project, left.job_id)
        _out, err = starter.communicate(timeout=60)
    assert starter.returncode == 0, err[-2000:]


async def test_finished_job_log_search_and_restart(sample_project: Project) -> None:
    """A finished job: its whole log (events as readable lines), the search filter with
    counts, stop refused with an error, and restart making a new job that succeeds."""
    project = sample_project
    first = jobs.run_training(
        project, plugins.load("runner", "local"), params={"num_iterations": 20}
    )
    assert first.ok
    raw = Path(first.log_path).read_text().splitlines()
    expected = [
        describe_event(e) if (e := events.parse(line)) is not None else line for line in raw
    ]
    with_iteration = [line for line in expected if "iteration" in line.lower()]
    assert 0 < len(with_iteration) < len(expected)

    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_jobs(pilot)
        runner_name = jobs.resolve_runner(project).name
        assert screen.sub_title.endswith(f"runner: {runner_name}")
        assert screen.selected_id == first.job_id
        await poll(pilot, lambda: screen.log_view.total == len(expected), 10, "the whole log")
        assert list(screen.log_view.lines) == expected
        assert screen.progress == (20, 20)
        assert cell(screen, first.job_id, "status") == "succeeded"
        assert cell(screen, first.job_id, "progress") == "20/20"
        n = len(expected)
        assert f"{n} of {n} lines" in str(screen.count.content)

        # search: case-insensitive substring, with counts
        await pilot.press("slash")
        assert screen.focused is screen.search_input
        await pilot.press(*"ITERATION")
        await pilot.pause()
        assert screen.log_view.shown == len(with_iteration)
        assert list(screen.log_view.lines) == with_iteration
        assert f"{len(with_iteration)} of {n} lines" in str(screen.count.content)
        screen.search_input.value = ""
        await pilot.press(*"no such text anywhere")
        await pilot.pause()
        assert screen.log_view.shown == 0 and f"0 of {n} lines" in str(screen.count.content)
        await pilot.press("escape")  # clears the search, back to the table
        await pilot.pause()
        assert screen.search_input.value == ""
        assert screen.log_view.shown == n and screen.focused is screen.table

        # follow toggles
        await pilot.press("f")
        assert not screen.log_view.follow and "not following" in str(screen.count.content)
        await pilot.press("f")
        assert screen.log_view.follow

        # a finished job cannot be stopped: an error, no dialog
        await pilot.press("x")
        await pilot.pause()
        assert app.screen is screen
        assert ("error", f"job {first.job_id} is not running (status: succeeded)") in notes

        # restart: a new job with the same arguments, which succeeds
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")
        await poll(pilot, lambda: len(screen.jobs) == 2, 30, "the new job")
        new = next(j for j in screen.jobs if j.job_id != first.job_id)
        assert screen.selected_id == new.job_id  # the new job is selected to follow it
        await poll(
            pilot,
            lambda: (j := job(screen, new.job_id)) is not None and j.status == "succeeded",
            120,
            "the restarted job to succeed",
        )
        await poll(pilot, lambda: not screen.restarting, 10, "the restart worker")
        await poll(pilot, lambda: screen.progress == (20, 20), 10, "the new job's progress")
        assert any("result" in line for line in screen.log_view.lines)
    assert ("information", f"job {new.job_id} succeeded") in notes
    assert not [m for s, m in notes if s == "error" and "not running" not in m]
    records = jobs.list_jobs(project)
    assert [j.status for j in records] == ["succeeded", "succeeded"]
    assert json.loads(records[0].args or "{}")["module"] == "workbench.training"


async def test_no_jobs_yet(empty_project: Project) -> None:
    """An empty project: a hint instead of the table; the actions say there is no job."""
    app = WorkbenchApp(empty_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_jobs(pilot)
        await settle(pilot)
        assert screen.no_jobs.display and not screen.table.display
        assert "runner: " in screen.sub_title
        has_gpu = shutil.which("nvidia-smi") is not None
        assert ("gpu" in [str(k.value) for k in screen.table.columns]) is has_gpu
        await pilot.press("x", "R")
        await pilot.pause()
        assert app.screen is screen

        # the command palette reaches the jobs screen's actions from another screen
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("ctrl+p", *"stop selected job")
        await poll(pilot, lambda: palette_hits(app) > 0, 10, "palette hits")
        await pilot.press("enter")
        await poll(pilot, lambda: app.screen is screen, 10, "the jobs screen")
        await pilot.pause()
    assert notes.count(("warning", "no job selected")) == 3


def test_formats() -> None:
    """Cells that must fit narrow columns, and nvidia-smi's CSV (as documented for
    `--query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits`)."""
    assert [fmt_progress(p) for p in [None, (20, 20), (9_175, 100_000), (99_999, 100_000)]] == [
        "-",
        "20/20",
        "9175/100000",
        "99.9k/100k",
    ]
    assert fmt_progress((1_999_999, 2_000_000)) == "1.9M/2M"
    assert [fmt_duration(s) for s in [None, 5, 95, 3725, 90_000]] == [
        "-",
        "5s",
        "1m35s",
        "1h02m",
        "1d01h",
    ]
    assert short_job_id("train-20260115-090000-a1b2") == "a1b2"
    assert parse_gpu("45, 1024\n55, 2048\n") == "50% 3.0G"
    assert parse_gpu("[N/A], [N/A]\n") is None and parse_gpu("") is None
    # MIG: utilization reads N/A while memory is real; neither figure may shift the other
    assert parse_gpu("[N/A], 36537\n58, 23100\n") == "58% 58.2G"
    assert parse_gpu("58, [N/A]\n") == "58%"
    assert parse_gpu("[N/A], 2048\n") == "?% 2.0G"


# --- a deterministic snapshot -------------------------------------------------------------

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
FAILED = "num_leaves must be greater than 1"
LOG_LINES = [
    "2026/01/15 09:00:02 INFO mlflow.store.db.utils: Creating initial MLflow database tables...",
    events.PREFIX + json.dumps({"event": "run", "run_id": run_id(3)}),
    *(
        events.PREFIX
        + json.dumps(
            {
                "event": "progress",
                "iteration": i,
                "total": 40,
                "metrics": {"valid_auc": round(0.85 + i / 1000, 4), "valid_logloss": 0.07},
            }
        )
        for i in (1, 10, 20, 30, 40)
    ),
    "[LightGBM] [Warning] No further splits with positive gain, best gain: -inf",
    events.PREFIX
    + json.dumps(
        {
            "event": "result",
            "run_id": run_id(3),
            "metrics": {"holdout_auc": 0.9123, "holdout_logloss": 0.0712},
        }
    ),
]


def write_jobs(project: Project) -> None:
    """Three finished jobs, newest first: stopped, failed (docker), succeeded with a log."""
    logs = project.jobs_dir
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    error = events.PREFIX + json.dumps({"event": "error", "message": FAILED})
    for k, (status, runner, code, reason, seconds, lines, token) in enumerate(
        [
            ("succeeded", "local", 0, None, 95, LOG_LINES, "a1b2"),
            ("failed", "docker", 1, FAILED, 12, [LOG_LINES[0], error], "c3d4"),
            ("stopped", "local", -15, "stopped by user", 3725, LOG_LINES[:5], "e5f6"),
        ]
    ):
        started = T0 + timedelta(minutes=30 * k)
        job_id = f"train-20260115-{started:%H%M%S}-{token}"
        log_path = logs / f"{job_id}.log"
        log_path.write_text("\n".join(lines) + "\n")
        rows.append(
            {
                "ts": started + timedelta(seconds=seconds),
                "job_id": job_id,
                "kind": "train",
                "runner": runner,
                "status": status,
                "run_id": run_id(3 + k),
                "handle": str(4000 + k),
                "started_at": started,
                "ended_at": started + timedelta(seconds=seconds),
                "exit_code": code,
                "reason": reason,
                "log_path": str(log_path),
                "args": json.dumps({"module": "workbench.training", "args": []}),
            }
        )
    ParquetLog(project.logs, "jobs").append(rows, partition={"date": "2026-01-15"})


def test_jobs_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The succeeded job selected (third row), its log searched for "auc". The runner is
    pinned to local in the config; the GPU column is hidden even where nvidia-smi exists,
    so the picture is the same on every machine."""
    project = make_project(tmp_path / "jobs")
    (project.root / "workbench.toml").write_text(CONFIG + '\n[runner]\ndefault = "local"\n')
    project = Project.load(project.root)
    write_jobs(project)
    monkeypatch.setattr(JobsScreen, "GPU_TOOL", None)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in ["4", "down", "down", "slash", "a", "u", "c"]:
            await pilot.press(key)
            await settle(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        await settle(pilot)

    app = WorkbenchApp(project, sync_on_start=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
