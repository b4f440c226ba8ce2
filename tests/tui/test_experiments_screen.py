"""The Experiments screen's curves, baseline, column chooser, min/max/last columns, live
running run and console tail (Pilot, on the deterministic project: its runs index in Parquet,
a MLflow-shaped SQLite store read by the real store reader, job logs in the store)."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import SelectionList
from workbench_tui.app import WorkbenchApp
from workbench_tui.compare import CompareScreen
from workbench_tui.experiments import ExperimentsScreen
from workbench_tui.widgets.column_chooser import ColumnChooser
from workbench_tui.widgets.curves_plot import BASELINE_COLOUR

from tests.tui.helpers import SYNCED, T0, run_id, run_metrics, run_name, settle, wait_until
from workbench.project import Project
from workbench.store import view_prefs
from workbench.store.parquet_log import ParquetLog

pytestmark = pytest.mark.tui

SIZE = (80, 24)
#: The fixed project's newest run (the cursor's first row) is RUNNING: run 11 of 12.
RUNNING_RUN = 11


async def _experiments(app: WorkbenchApp, pilot: Any) -> ExperimentsScreen:
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, ExperimentsScreen)
    await wait_until(pilot, lambda: bool(screen.curves.curves), what="the first curve")
    return screen


def _curve(i: int, step: int) -> float:
    """The helpers' valid_auc curve of run i at `step`."""
    return round(run_metrics(i)["valid_auc"] - 0.08 * math.exp(-step / 8), 6)


async def test_marked_runs_are_overlaid_with_a_legend_and_the_pinned_baseline(
    fixed_project: Project,
) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _experiments(app, pilot)
        # only the cursor's run at first
        assert list(screen.curves.points) == [run_id(RUNNING_RUN)]
        # mark the 2nd and 3rd newest runs, pin the 4th
        await pilot.press("down", "space", "down", "space", "down", "b")
        await settle(pilot)
        ids = [run_id(10), run_id(9), run_id(8)]
        await wait_until(pilot, lambda: list(screen.curves.points) == [ids[2], *ids[:2]])
        assert screen.curves.points == dict.fromkeys([ids[2], *ids[:2]], 40)
        curves = {c.run_id: c for c in screen.curves.curves}
        assert curves[ids[2]].baseline and curves[ids[2]].colour == BASELINE_COLOUR
        assert not curves[ids[0]].baseline and curves[ids[0]].colour != BASELINE_COLOUR
        assert curves[ids[0]].values[0] == _curve(10, 0)
        assert curves[ids[0]].values[-1] == _curve(10, 39)
        # the legend: the metric, then each run with its last and best value
        legend = str(screen.legend.content)
        assert legend.splitlines()[0].split() == ["valid_auc", "last", "best"]
        lines = legend.splitlines()[1:]
        assert [line[2:16].strip() for line in lines] == [run_name(8), run_name(10), run_name(9)]
        assert lines[0].startswith("◆ ") and lines[1].startswith("━ ")
        assert f"{_curve(10, 39):.4f}" in lines[1]
        # the plot really draws: axes with the step on x, points in braille and baseline dots
        drawn = screen.curves.plt.build()
        assert "step" in drawn and "•" in drawn and any("⠁" <= ch <= "⣿" for ch in drawn)
        assert "◆ " + run_name(8) in str(screen.count.content)
        # the baseline stays in the comparison, first, even though it is not marked
        await pilot.press("c")
        await pilot.pause()
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert compare.run_ids == [ids[2], *ids[:2]] and compare.baseline == ids[2]
        assert "baseline" in str(compare.caption.content)
        await pilot.press("escape")
        # b again on the baseline unpins it
        await pilot.press("b")
        await settle(pilot)
        await wait_until(pilot, lambda: not any(c.baseline for c in screen.curves.curves))
        assert list(screen.curves.points) == [*ids[:2], ids[2]]  # the marked, the cursor's
        assert screen.baseline is None and not screen.table.baseline


async def test_the_column_choice_and_the_baseline_survive_a_restart(
    fixed_project: Project,
) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _experiments(app, pilot)
        assert [c.key for c in screen.columns][4:6] == ["m.holdout_auc", "m.valid_auc"]
        await pilot.press("b")  # pin the newest run
        await pilot.press("C")
        await pilot.pause()
        chooser = app.screen
        assert isinstance(chooser, ColumnChooser)
        listing: SelectionList[str] = chooser.query_one(SelectionList)
        keys = [key for key, _ in chooser.options]
        assert {"s.valid_auc.min", "s.valid_auc.max", "s.valid_auc.last", "p.seed"} <= set(keys)
        listing.deselect_all()
        for key in ("m.holdout_f1", "s.valid_auc.min", "s.valid_auc.last", "p.learning_rate"):
            listing.select(key)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        chosen = ["m.holdout_f1", "s.valid_auc.min", "s.valid_auc.last", "p.learning_rate"]
        await wait_until(pilot, lambda: [c.key for c in screen.columns][4:] == chosen)
        assert [c.label for c in screen.table.columns][4:] == [
            "holdout_f1",
            "valid_auc·min",
            "valid_auc·last",
            "learning_rate",
        ]
    saved = json.loads(view_prefs.prefs_path(fixed_project).read_text())
    assert saved["columns"] == chosen and saved["baseline"] == run_id(RUNNING_RUN)

    again = WorkbenchApp(Project.load(fixed_project.root), sync_on_start=False)
    async with again.run_test(size=SIZE) as pilot:
        screen = await _experiments(again, pilot)
        assert [c.key for c in screen.table.columns][4:] == chosen
        assert screen.baseline == run_id(RUNNING_RUN)
        assert screen.curves.curves[0].baseline
        # d in the chooser goes back to the default columns (and says so in the file)
        await pilot.press("C")
        await pilot.pause()
        await pilot.press("d")
        await settle(pilot)
        await wait_until(pilot, lambda: [c.key for c in screen.columns][4] == "m.holdout_auc")
    assert json.loads(view_prefs.prefs_path(fixed_project).read_text())["columns"] is None


def _log_metric(project: Project, i: int, key: str, values: list[float]) -> None:
    """Per-step points of run i's `key` in the runs index (as a sync writes them)."""
    rows = [
        {
            "synced_at": SYNCED,
            "run_id": run_id(i),
            "key": key,
            "step": step,
            "value": value,
            "timestamp": T0 + timedelta(seconds=step),
        }
        for step, value in enumerate(values)
    ]
    ParquetLog(project.logs, "metrics").append(rows, partition={"date": "2026-01-20"})


async def test_min_max_last_columns_match_the_logged_metrics(fixed_project: Project) -> None:
    # A loss that dips then rises: min, max and last are three different points.
    losses = {0: [0.5, 0.3, 0.2, 0.25, 0.4], 1: [0.6, 0.45, 0.35, 0.3, 0.28]}
    for i, values in losses.items():
        _log_metric(fixed_project, i, "valid_logloss", values)
    cols = [f"s.valid_logloss.{s}" for s in ("min", "max", "last")] + ["s.valid_auc.max"]
    view_prefs.save(fixed_project, view_prefs.ExperimentsPrefs(columns=cols))
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _experiments(app, pilot)
        frame = screen.frame
        assert frame is not None
        by_id = {r["run_id"]: r for r in frame.iter_rows(named=True)}
        for i, values in losses.items():
            row = by_id[run_id(i)]
            assert row["s.valid_logloss.min"] == min(values)
            assert row["s.valid_logloss.max"] == max(values)
            assert row["s.valid_logloss.last"] == values[-1]
            assert row["s.valid_auc.max"] == _curve(i, 39)
        assert by_id[run_id(2)]["s.valid_logloss.min"] is None  # logged no loss curve
        # the table shows them: sort by the min column, the lowest first
        await pilot.press("s", "s", "s", "r")
        await settle(pilot)
        assert screen.sort_key == "s.valid_logloss.min" and not screen.descending
        await wait_until(pilot, lambda: screen.table.cursor_run_id is not None)
        assert screen.table.row(0)["run_id"] == run_id(0)  # type: ignore[index]
        header = screen.table.render_line(0).text
        assert "valid_logloss·min" in header


def _store_points(project: Project, i: int, key: str, points: list[tuple[int, float]]) -> None:
    """Points logged into the MLflow store (its `metrics` and `latest_metrics` tables)."""
    con = sqlite3.connect(project.mlflow_db)
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS metrics (key TEXT, value REAL, timestamp INTEGER, "
            "run_uuid TEXT, step INTEGER, is_nan INTEGER)"
        )
        for step, value in points:
            con.execute(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, 0)",
                (key, value, 1_700_000_000_000 + step, run_id(i), step),
            )
        step, value = points[-1]
        con.execute("DELETE FROM latest_metrics WHERE run_uuid = ? AND key = ?", (run_id(i), key))
        con.execute(
            "INSERT INTO latest_metrics VALUES (?, ?, 0, ?, 0, ?)", (key, value, step, run_id(i))
        )
        con.commit()
    finally:
        con.close()


async def test_a_running_runs_curve_and_system_metrics_grow_live(fixed_project: Project) -> None:
    run = run_id(RUNNING_RUN)
    _store_points(fixed_project, RUNNING_RUN, "valid_auc", [(s, 0.8 + s / 100) for s in range(5)])
    _store_points(fixed_project, RUNNING_RUN, "system/cpu_utilization_percentage", [(0, 37.0)])
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _experiments(app, pilot)
        # the store's 5 points, not the index's 40 (a running run's index copy is stale)
        await wait_until(pilot, lambda: screen.curves.points.get(run) == 5, what="5 points")
        await wait_until(pilot, lambda: "cpu 37%" in str(screen.params.content))
        assert "▶" in str(screen.legend.content)
        more = [(s, 0.8 + s / 100) for s in range(5, 12)]
        _store_points(fixed_project, RUNNING_RUN, "valid_auc", more)
        _store_points(fixed_project, RUNNING_RUN, "system/cpu_utilization_percentage", [(1, 81.0)])
        await wait_until(pilot, lambda: screen.curves.points.get(run) == 12, what="12 points")
        curve = screen.curves.curves[0]
        assert curve.steps == list(range(12)) and curve.values[-1] == pytest.approx(0.91)
        await wait_until(pilot, lambda: "cpu 81%" in str(screen.params.content))
        # a live read that finds no new point neither redraws nor rebuilds the plot
        await settle(pilot)
        await pilot.pause()  # the last change painted
        builds, version = screen.curves.builds, screen.curves._version
        screen.detail._live_tick()
        await settle(pilot)
        assert (screen.curves.builds, screen.curves._version) == (builds, version)
        # a finished run is read once: its curve comes from the index
        await pilot.press("down")
        await wait_until(pilot, lambda: screen.curves.points == {run_id(10): 40})


async def test_the_console_tail_of_a_run_follows_its_job_log(fixed_project: Project) -> None:
    log = fixed_project.jobs_dir / f"train-{RUNNING_RUN:04d}.log"  # the run's workbench.job_id
    lines = [f"[{n:03d}] valid_auc: 0.{800 + n}" for n in range(300)]
    log.write_text("\n".join([*lines[:150], '@wb {"event": "progress"}', *lines[150:]]) + "\n")
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _experiments(app, pilot)
        await pilot.press("v")
        assert screen.switcher.current == "console"
        console = screen.console
        await wait_until(pilot, lambda: console.shown == lines[-200:], what="the tail")
        assert console.line_count == 200 and not any("@wb" in ln for ln in console.lines)
        # the run is running: new lines show without a key
        with log.open("a") as fh:
            fh.write("[300] done\n")
        await wait_until(pilot, lambda: console.shown[-1] == "[300] done", what="a new line")
        assert console.lines[-1] == "[300] done" and console.line_count == 201
        # a run no job made says so
        await pilot.press("down")
        await wait_until(pilot, lambda: console.run_id == run_id(10))
        assert console.shown == ["(job train-0010: no console output yet)"]
        await pilot.press("v")
        assert screen.switcher.current == "curves"


def test_snapshot_baseline_marked_and_the_chooser(
    snap_compare: Any, fixed_project: Project
) -> None:
    """80x24: a pinned baseline (white dots, ◆) under a marked run; then the column chooser."""
    from tests.tui.test_snapshots import snap

    assert snap(snap_compare, fixed_project, ["2", "down", "b", "down", "space"])
    assert snap(snap_compare, fixed_project, ["2", "C"])
