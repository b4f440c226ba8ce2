"""Helpers for the TUI tests: deterministic project data, and waiting on the app.

The data is fixed (run ids, names, times, metrics, per-step curves) and written straight into
the runs index (Parquet) and the audit log; the registry is a tiny SQLite file with the tables
and columns `workbench.store.mlflow_tables` reads. Nothing depends on the clock, so snapshots are
stable.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.command import CommandList
from textual.pilot import Pilot

from workbench.project import Project
from workbench.store.parquet_log import SCHEMAS, ParquetLog

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
SYNCED = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
MODEL = "fraud_detection"

CONFIG = """\
[project]
name = "fraud_detection"
description = "Deterministic project for the TUI tests."

[data]
path = "data/transactions.parquet"
target = "is_fraud"
timestamp = "ts"

[trainer.params]
num_iterations = 40
learning_rate = 0.05
num_leaves = 31

[registry]
model_name = "fraud_detection"
"""

_ADJ = ["amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hazy"]
_NOUN = ["otter", "heron", "lynx", "moth", "newt", "quail"]


def run_id(i: int) -> str:
    return hashlib.md5(f"run-{i}".encode()).hexdigest()


def run_name(i: int) -> str:
    return f"{_ADJ[i % len(_ADJ)]}-{_NOUN[i % len(_NOUN)]}-{100 + i}"


def run_metrics(i: int) -> dict[str, float]:
    auc = 0.88 + ((i * 37) % 50) / 1000
    return {
        "holdout_auc": round(auc, 4),
        "holdout_logloss": round(0.12 - (auc - 0.88), 4),
        "holdout_f1": round(0.2 + ((i * 13) % 20) / 100, 4),
        "valid_auc": round(auc - 0.004, 4),
        "valid_logloss": round(0.125 - (auc - 0.88), 4),
        "train_auc": round(min(0.999, auc + 0.07), 4),
    }


def run_params(i: int) -> dict[str, str]:
    return {
        "learning_rate": ["0.03", "0.05", "0.1"][i % 3],
        "num_leaves": ["15", "31", "63"][(i // 3) % 3],
        "num_iterations": "40",
        "seed": "42",
        "trainer": "lightgbm",
    }


def _only_schema(log: str, row: dict[str, Any]) -> dict[str, Any]:
    names = set(SCHEMAS[log].names)
    return {k: v for k, v in row.items() if k in names}


def write_runs(project: Project, n: int, curves: int = 0) -> None:
    """n FINISHED runs (the last one RUNNING and one FAILED when n > 3), newest last;
    per-step valid_auc curves for the first `curves` runs."""
    rows = []
    for i in range(n):
        status = "FINISHED"
        if n > 3 and i == n - 1:
            status = "RUNNING"
        elif n > 3 and i == n - 3:
            status = "FAILED"
        start = T0 + timedelta(minutes=7 * i)
        rows.append(
            _only_schema(
                "runs",
                {
                    "synced_at": SYNCED,
                    "run_id": run_id(i),
                    "experiment_id": "1",
                    "experiment": MODEL,
                    "run_name": run_name(i),
                    "status": status,
                    "lifecycle_stage": "active",
                    "user": "tester",
                    "source": "workbench.training",
                    "start_time": start,
                    "end_time": None if status == "RUNNING" else start + timedelta(seconds=95),
                    "metrics": run_metrics(i),
                    "params": run_params(i),
                    "tags": {"workbench.job_id": f"train-{i:04d}"},
                    "fingerprint": f"fp{i}",
                },
            )
        )
    ParquetLog(project.logs, "runs").append(rows, partition={"date": "2026-01-20"})
    points = []
    for i in range(min(curves, n)):
        final = run_metrics(i)["valid_auc"]
        for step in range(40):
            points.append(
                _only_schema(
                    "metrics",
                    {
                        "synced_at": SYNCED,
                        "run_id": run_id(i),
                        "key": "valid_auc",
                        "step": step,
                        "value": round(final - 0.08 * math.exp(-step / 8), 6),
                        "timestamp": T0 + timedelta(minutes=7 * i, seconds=step),
                    },
                )
            )
    if points:
        ParquetLog(project.logs, "metrics").append(points, partition={"date": "2026-01-20"})


def write_audit(project: Project) -> None:
    events = [
        ("set", "staging", None, 1, "pipeline candidate (gate pass: no production model yet)"),
        ("promote", "production", None, 1, "first model, reviewed by the risk team"),
        ("set", "staging", 1, 2, "pipeline candidate (gate fail: no improvement)"),
    ]
    rows = [
        {
            "ts": T0 + timedelta(hours=2, minutes=10 * k),
            "actor": "tester@ci",
            "action": action,
            "model": MODEL,
            "alias": alias,
            "from_version": frm,
            "to_version": to,
            "reason": reason,
            "details": "{}",
        }
        for k, (action, alias, frm, to, reason) in enumerate(events)
    ]
    ParquetLog(project.logs, "audit").append(rows, partition={"date": "2026-01-15"})


def write_registry(project: Project, versions: dict[int, int], aliases: dict[str, int]) -> None:
    """A minimal MLflow-shaped SQLite store: version -> run index, alias -> version."""
    project.ensure_store()
    con = sqlite3.connect(project.mlflow_db)
    try:
        con.executescript(
            """
            CREATE TABLE model_versions (name TEXT, version INTEGER, run_id TEXT, source TEXT,
                status TEXT, creation_time INTEGER, description TEXT);
            CREATE TABLE registered_model_aliases (alias TEXT, version INTEGER, name TEXT);
            CREATE TABLE latest_metrics (key TEXT, value REAL, timestamp INTEGER, step INTEGER,
                is_nan INTEGER, run_uuid TEXT);
            """
        )
        for version, i in versions.items():
            created = int((T0 + timedelta(minutes=7 * i, seconds=120)).timestamp() * 1000)
            con.execute(
                "INSERT INTO model_versions VALUES (?, ?, ?, ?, 'READY', ?, '')",
                (MODEL, version, run_id(i), f"file:///models/{version}", created),
            )
            for key, value in run_metrics(i).items():
                con.execute(
                    "INSERT INTO latest_metrics VALUES (?, ?, 0, 0, 0, ?)", (key, value, run_id(i))
                )
        for alias, version in aliases.items():
            con.execute(
                "INSERT INTO registered_model_aliases VALUES (?, ?, ?)", (alias, version, MODEL)
            )
        con.commit()
    finally:
        con.close()


def make_project(root: Path) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "workbench.toml").write_text(CONFIG)
    project = Project.load(root)
    project.ensure_store()
    return project


async def settle(pilot: Pilot[Any], rounds: int = 200) -> None:
    """Wait until no worker is left: workers post messages whose handlers start workers."""
    app = pilot.app
    for _ in range(rounds):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not list(app.workers):
            await pilot.pause()
            return
    raise AssertionError(f"workers still running: {list(app.workers)}")


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], polls: int = 400, what: str = ""
) -> None:
    """Short polls (50 ms) until `condition()` holds (at most polls * 50 ms)."""
    for _ in range(polls):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def record_notes(app: Any) -> list[tuple[str, str]]:
    """Collect (severity, message) of every notification the app raises."""
    notes: list[tuple[str, str]] = []
    original = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> None:
        notes.append((kwargs.get("severity", "information"), str(message)))
        original(message, *args, **kwargs)

    app.notify = notify
    return notes


def palette_hits(app: Any) -> int:
    lists = app.screen.query(CommandList)
    return lists.first().option_count if lists else 0
