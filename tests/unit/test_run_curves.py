"""The Experiments screen's core reads: per-step curves and min/max/last over the runs index
(real Parquet through DuckDB), live points from a MLflow-shaped SQLite store, the choice kept
in the project, and a run's console tail from its job's log."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workbench.jobs import telemetry
from workbench.project import Project
from workbench.store import run_curves, view_prefs
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def _project(tmp_path: Path) -> Project:
    (tmp_path / "workbench.toml").write_text(
        '[project]\nname = "p"\n[data]\npath = "d.parquet"\ntarget = "y"\ntimestamp = "ts"\n'
    )
    project = Project.load(tmp_path)
    project.ensure_store()
    return project


def _points(project: Project, synced: datetime, rows: list[tuple[str, str, int, float]]) -> None:
    ParquetLog(project.logs, "metrics").append(
        {
            "synced_at": synced,
            "run_id": run,
            "key": key,
            "step": step,
            "value": value,
            "timestamp": T0 + timedelta(seconds=step),
        }
        for run, key, step, value in rows
    )


def test_min_max_last_over_the_newest_sync_without_nan(tmp_path: Path) -> None:
    project = _project(tmp_path)
    old = [("a", "loss", s, 9.0) for s in range(3)]  # an older sync of run a: replaced
    _points(project, T0, old)
    loss = [0.5, 0.3, float("nan"), 0.2, 0.25, 0.4]
    rows = [("a", "loss", s, v) for s, v in enumerate(loss)]
    rows += [("b", "loss", 0, 0.7), ("a", "auc", 0, 0.9), ("b", "auc", 0, 0.8)]
    rows += [("b", "system/cpu_utilization_percentage", s, 10.0 * s) for s in range(3)]
    _points(project, T0 + timedelta(hours=1), rows)
    with Db(project.logs) as db:
        stats = run_curves.metric_stats(db, ["loss"])
        assert stats["a"] == {"s.loss.min": 0.2, "s.loss.max": 0.5, "s.loss.last": 0.4}
        assert stats["b"] == {"s.loss.min": 0.7, "s.loss.max": 0.7, "s.loss.last": 0.7}
        # auc has one point per run: not a curve; the system samples come last
        assert run_curves.stepped_keys(db) == ["loss", "system/cpu_utilization_percentage"]
        assert run_curves.stepped_keys(db, ["b"]) == ["system/cpu_utilization_percentage"]
        assert run_curves.stepped_keys(db, []) == []
        curves = run_curves.histories(db, ["a", "b", "c"], "loss")
        assert curves["a"].steps == [0, 1, 3, 4, 5] and curves["a"].values[-1] == 0.4
        assert curves["b"].values == [0.7] and "c" not in curves
        assert run_curves.metric_stats(db, []) == {}


def test_the_curve_drawn_first_and_which_way_is_better() -> None:
    assert run_curves.curve_key(["loss", "train_auc", "valid_auc"], "auc") == "valid_auc"
    assert run_curves.curve_key(["loss", "train_auc"], "auc") == "train_auc"
    assert run_curves.curve_key(["system/cpu", "loss"], "auc") == "loss"
    assert run_curves.curve_key(["system/cpu"], "auc") == "system/cpu"
    assert run_curves.curve_key([], "auc") is None
    assert run_curves.lower_is_better("valid_logloss") and run_curves.lower_is_better("rmse")
    assert not run_curves.lower_is_better("valid_auc")
    assert run_curves.parse_stat_column("s.system/gpu_0.x.max") == ("system/gpu_0.x", "max")
    assert run_curves.parse_stat_column("s.auc.median") is None
    assert run_curves.parse_stat_column("m.auc") is None


def test_live_points_from_the_store(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert run_curves.live_histories(project, ["a"]) == {}  # no store yet
    con = sqlite3.connect(project.mlflow_db)
    con.execute(
        "CREATE TABLE metrics (key TEXT, value REAL, timestamp INTEGER, run_uuid TEXT, "
        "step INTEGER, is_nan INTEGER)"
    )
    con.executemany(
        "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
        [("auc", 0.5 + s / 10, s, "a", s, 0) for s in range(4)]
        + [("auc", math.nan, 9, "a", 9, 1), ("auc", 0.1, 0, "b", 0, 0)],
    )
    con.commit()
    con.close()
    live = run_curves.live_histories(project, ["a", "b"])
    assert live["a"]["auc"].steps == [0, 1, 2, 3]  # the NaN point left out
    assert live["a"]["auc"].values[-1] == 0.8
    assert run_curves.live_keys(live) == {"auc"}  # b's single point is no curve


def test_the_choice_is_kept_and_a_bad_file_reads_as_none(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert view_prefs.load(project) == view_prefs.ExperimentsPrefs()
    view_prefs.save(project, view_prefs.ExperimentsPrefs(["m.auc", "s.loss.min"], "run1"))
    assert view_prefs.load(project) == view_prefs.ExperimentsPrefs(["m.auc", "s.loss.min"], "run1")
    path = view_prefs.prefs_path(project)
    assert path.parent.name == "tui" and path.parent.parent == project.store
    for bad in ("{not json", "[1, 2]", '{"columns": [1], "baseline": 3}'):
        path.write_text(bad)
        assert view_prefs.load(project) == view_prefs.ExperimentsPrefs()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_a_runs_console_tail_comes_from_its_jobs_log(tmp_path: Path) -> None:
    project = _project(tmp_path)
    ParquetLog(project.logs, "runs").append(
        [
            {
                "synced_at": T0,
                "run_id": run,
                "experiment": "p",
                "status": "RUNNING",
                "lifecycle_stage": "active",
                "start_time": T0,
                "metrics": {},
                "params": {},
                "tags": tags,
                "fingerprint": run,
            }
            for run, tags in (("r1", {"workbench.job_id": "train-1"}), ("r2", {}))
        ]
    )
    log = project.jobs_dir / "train-1.log"
    lines = [f"line {n} " + "x" * 50 for n in range(2000)]
    log.write_text("\n".join([*lines[:1000], '@wb {"event":"progress"}', *lines[1000:]]) + "\n")
    with Db(project.logs) as db:
        tail = telemetry.console_tail(project, db, "r1", lines=50, tail_bytes=4096)
        assert (tail.job_id, tail.path) == ("train-1", str(log))
        # from the last 4 kB: whole lines only, the newest 50 of them
        assert tail.lines == lines[-50:] and tail.size == log.stat().st_size
        short = telemetry.console_tail(project, db, "r1", lines=5000, tail_bytes=4096)
        assert short.lines[0] in lines and len(short.lines) < 4096 // 50
        assert telemetry.console_tail(project, db, "r2").job_id is None
        # the jobs log's record wins over the tag
        ParquetLog(project.logs, "jobs").append(
            [{"ts": T0, "job_id": "train-9", "run_id": "r2", "log_path": str(log)}]
        )
        db.refresh()
        assert telemetry.run_job_log(project, db, "r2") == ("train-9", str(log))
