"""A job seen from outside (workbench.jobs.telemetry), the device's GPU use
(workbench.jobs.gpu) and the reads the screens share with the CLI (drift history, recent
audit). Real files, real job records, a real local runner and a real child process; only
nvidia-smi's output is canned, in its documented `--format=csv,noheader,nounits` layout."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench.jobs import control, events, telemetry
from workbench.jobs.gpu import device_use, find_tool, parse_device_use
from workbench.monitoring.queries import drift_history
from workbench.project import Project
from workbench.registry import audit
from workbench.store.db import Db
from workbench.store.parquet_log import SCHEMAS, ParquetLog

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def progress(i: int, total: int = 40) -> str:
    return events.PREFIX + json.dumps({"event": "progress", "iteration": i, "total": total})


def job(
    tmp_path: Path, lines: list[str], status: str = "succeeded", **kw: object
) -> control.JobInfo:
    log = tmp_path / "job.log"
    log.write_text("".join(line + "\n" for line in lines))
    fields: dict[str, object] = {
        "job_id": "train-20260115-090000-a1b2",
        "kind": "train",
        "runner": "local",
        "status": status,
        "run_id": None,
        "handle": None,
        "started_at": T0,
        "ended_at": None,
        "exit_code": None,
        "reason": None,
        "log_path": str(log),
    }
    fields.update(kw)
    return control.JobInfo(**fields)  # type: ignore[arg-type]


def test_progress_of() -> None:
    assert telemetry.progress_of({"event": "progress", "iteration": 3, "total": 9}) == (3, 9)
    assert telemetry.progress_of({"event": "progress", "iteration": "x", "total": 9}) is None
    assert telemetry.progress_of({"event": "result"}) is None
    assert telemetry.progress_of(None) is None


def test_tail_log_parses_events_and_goes_on_from_its_offset(tmp_path: Path) -> None:
    j = job(tmp_path, ["hello", progress(1), progress(2), "[LightGBM] done"])
    tail = telemetry.tail_log(j)
    assert [line for line, _ in tail.lines] == [
        "hello",
        progress(1),
        progress(2),
        "[LightGBM] done",
    ]
    assert [e is not None for _, e in tail.lines] == [False, True, True, False]
    assert tail.progress == (2, 40) and tail.start == 0
    # a half-written line waits for its newline
    with open(j.log_path, "a") as fh:
        fh.write(progress(3) + "\nhalf a li")
    more = telemetry.tail_log(j, tail.next_offset)
    assert [line for line, _ in more.lines] == [progress(3)] and more.progress == (3, 40)
    again = telemetry.tail_log(j, more.next_offset)
    assert again.lines == [] and again.next_offset == more.next_offset


def test_tail_log_of_a_long_log_starts_at_a_whole_line(tmp_path: Path) -> None:
    j = job(tmp_path, [f"line {i:04d}" for i in range(1000)])
    tail = telemetry.tail_log(j, 0, tail_bytes=100)
    shown = [line for line, _ in tail.lines]
    assert shown[-1] == "line 0999" and all(len(s) == 9 for s in shown) and len(shown) < 11
    assert telemetry.tail_log(j, 0).lines[0][0] == "line 0000"  # under the default tail


def test_tail_log_of_a_missing_log(tmp_path: Path) -> None:
    j = job(tmp_path, [])
    Path(j.log_path).unlink()
    tail = telemetry.tail_log(j)
    assert tail.lines == [] and tail.next_offset == 0


def test_final_progress_is_the_last_progress_and_read_once(tmp_path: Path) -> None:
    j = job(tmp_path, [progress(10), progress(40), events.PREFIX + '{"event": "result"}'])
    assert telemetry.final_progress(j) == (40, 40)
    memo = telemetry.FinalProgress()
    assert memo(j) == (40, 40)
    Path(j.log_path).write_text(progress(5) + "\n")
    assert memo(j) == (40, 40)  # read once: a finished job's log does not change
    assert telemetry.final_progress(j) == (5, 40)
    Path(j.log_path).unlink()
    assert telemetry.final_progress(j) is None


def test_parse_device_use() -> None:
    assert parse_device_use("45, 1024\n55, 2048\n") == "50% 3.0G"
    assert parse_device_use("[N/A], [N/A]\n") is None and parse_device_use("") is None
    # MIG: utilization reads N/A while memory is real; neither figure may shift the other
    assert parse_device_use("[N/A], 36537\n58, 23100\n") == "58% 58.2G"
    assert parse_device_use("58, [N/A]\n") == "58%"
    assert parse_device_use("[N/A], 2048\n") == "?% 2.0G"


def fake_smi(tmp_path: Path, apps: str) -> str:
    tool = tmp_path / "nvidia-smi"
    tool.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f"  *--query-compute-apps=*) printf '{apps}' ;;\n"
        '  *--query-gpu=*) echo "50, 4096" ;;\n'
        "  *) exit 2 ;;\n"
        "esac\n"
    )
    tool.chmod(0o755)
    return str(tool)


def test_device_use_and_find_tool(tmp_path: Path) -> None:
    assert device_use(fake_smi(tmp_path, "")) == "50% 4.0G"
    assert device_use(str(tmp_path / "missing")) is None
    assert find_tool(None) is None and find_tool(str(tmp_path / "missing")) is None
    assert find_tool(sys.executable) == sys.executable


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_gpu_memory_matches_a_running_jobs_pids(
    tmp_path: Path, child: subprocess.Popen[bytes]
) -> None:
    """A real child process run as a local job's handle; the fake nvidia-smi gives it 2048
    MiB (and some to a pid that is not the job's)."""
    tool = fake_smi(tmp_path, f"{child.pid}, 2048\\n1, 999\\n")
    running = job(tmp_path, [], status="running", handle=str(child.pid))
    done = job(tmp_path, [], job_id="train-old", status="succeeded", handle=str(child.pid))
    assert telemetry.job_pids(done) is None
    assert child.pid in (telemetry.job_pids(running) or [])
    assert telemetry.gpu_memory([running, done], tool) == {running.job_id: 2048.0}
    assert telemetry.gpu_memory([running], str(tmp_path / "missing")) == {}


def _project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "workbench.toml").write_text(
        '[project]\nname = "p"\n[data]\npath = "d.parquet"\ntarget = "y"\ntimestamp = "ts"\n'
        '[registry]\nmodel_name = "m"\n'
    )
    project = Project.load(root)
    project.ensure_store()
    return project


def test_snapshot_lists_jobs_with_their_final_progress(tmp_path: Path) -> None:
    project = _project(tmp_path)
    log = tmp_path / "train.log"
    log.write_text(progress(10) + "\n" + progress(40) + "\n")
    names = set(SCHEMAS["jobs"].names)
    row = {
        "ts": T0,
        "job_id": "train-20260115-090000-a1b2",
        "kind": "train",
        "runner": "local",
        "status": "succeeded",
        "started_at": T0,
        "ended_at": T0 + timedelta(seconds=5),
        "exit_code": 0,
        "log_path": str(log),
    }
    ParquetLog(project.logs, "jobs").append([{k: v for k, v in row.items() if k in names}])
    snap = telemetry.snapshot(project, reconcile=False)
    assert [j.job_id for j in snap.jobs] == [row["job_id"]]
    assert snap.jobs[0].progress == (40, 40) and snap.stats == {} and snap.gpu is None


def test_drift_history_and_recent_audit(tmp_path: Path) -> None:
    project = _project(tmp_path)
    names = set(SCHEMAS["drift"].names)
    rows = [
        {
            "ts": T0 + timedelta(minutes=k),
            "check_id": f"c{k}",
            "model": "m",
            "feature": feature,
            "score": 0.1 * k,
            "status": "ok",
        }
        for k in range(5)
        for feature in ("amount", "hour")
    ]
    rows.append({**rows[0], "model": "other"})
    ParquetLog(project.logs, "drift").append(
        [{k: v for k, v in r.items() if k in names} for r in rows]
    )
    audit.append(project, audit.make_row("promote", "m", "production", None, 1, "first"))
    audit.append(project, audit.make_row("set", "m", "staging", None, 2, "second"))
    db = Db(project.logs)
    try:
        history = drift_history(db, "m", points=3)
        assert sorted(history) == ["amount", "hour"]
        assert [round(s or 0, 2) for _, s, _ in history["amount"]] == [0.2, 0.3, 0.4]
        assert drift_history(db, "nobody") == {}
        newest = audit.recent(db, 1)
        assert [r["reason"] for r in newest] == ["second"]
        assert len(audit.recent(db)) == 2
    finally:
        db.close()
