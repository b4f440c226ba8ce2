"""The Drift screen (key 7) and the TUI's monitor, driven with Pilot over real projects: the
trained project (its versions carry the reference profile the training job saved), real
predictions written by PredictionLogger from the project's own data rows (`amount` x3 for a
drifted set), the real drift log and DuckDB.

The SVG snapshot uses a project whose registry is the tests' tiny MLflow-shaped store and
whose model folder holds a profile built from the sample data (no training, so nothing in
it depends on the machine); times are hidden (`drift.SHOW_TIMES`)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import workbench_tui.drift as drift_screen
from textual.pilot import Pilot
from workbench_tui.app import WorkbenchApp, binding_ids, help_sections
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.drift import DriftScreen
from workbench_tui.drift_format import fmt_num, fmt_pct_share
from workbench_tui.widgets.drift_histogram import histogram_rows

from tests.tui.helpers import (
    MODEL,
    palette_hits,
    record_notes,
    settle,
    wait_until,
    write_registry,
)
from workbench.demo import samples
from workbench.drift import PROFILE_FILE
from workbench.drift.profile import build_profile
from workbench.project import Project
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.predictors import model_dir_for
from workbench.store.db import Db

pytestmark = pytest.mark.tui

SIZES = [(80, 24), (120, 40)]
REPO = Path(__file__).resolve().parents[2]
ROWS = 1_500
#: Never retrains: a round judges nothing with fewer predictions than this.
MONITOR_CONFIG = "\n[monitor]\nenabled = {enabled}\ninterval_s = 0.5\nmin_rows = 1000000\n"


def log_predictions(
    project: Project, n: int = ROWS, shift: float = 3.0, unseen: int = 0, version: int = 1
) -> None:
    """`n` rows of the project's data as production predictions of `version`, `amount`
    multiplied by `shift`, the first `unseen` with a merchant category training never saw."""
    frame = pl.read_parquet(project.data_path).select(project.config.features).head(n)
    frame = frame.with_columns(pl.col("amount") * shift)
    records = frame.to_dicts()
    for record in records[:unseen]:
        record["merchant_category"] = "crypto_exchange"
    outputs = [0.02 + (i % 7) / 100 for i in range(len(records))]
    logger = PredictionLogger(project.logs)
    try:
        logger.log_many(
            logger.new_ids(len(records)), MODEL, version, "production", records, outputs, 3.0
        )
    finally:
        logger.close()


def add_config(project: Project, text: str) -> Project:
    path = project.root / "workbench.toml"
    path.write_text(path.read_text() + text)
    return Project.load(project.root)


def drift_rows(project: Project) -> list[dict[str, Any]]:
    db = Db(project.logs)
    try:
        return db.rows("SELECT * FROM drift ORDER BY ts, feature")
    finally:
        db.close()


@pytest.fixture
def drifted_project(trained_project: Project) -> Project:
    """The trained project (v1 production) with ROWS predictions whose amount is tripled."""
    log_predictions(trained_project, unseen=40)
    return trained_project


async def open_drift(pilot: Pilot[Any]) -> DriftScreen:
    await pilot.press("7")
    screen = pilot.app.screen
    assert isinstance(screen, DriftScreen)
    await wait_until(pilot, lambda: screen.checks > 0, what="the first check")
    await pilot.pause()
    return screen


def table_rows(screen: DriftScreen) -> list[list[str]]:
    table = screen.table
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


# --- features, histograms, panels ------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
async def test_features_sorted_by_drift_with_the_drifted_one_first(
    drifted_project: Project, size: tuple[int, int]
) -> None:
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_drift(pilot)
        assert app.current_mode == "drift"
        assert screen.sub_title == "fraud_detection · Drift"
        assert not screen.error and not screen.error_line.display
        result = screen.result
        assert result is not None and result.version == 1 and result.window == "24h"
        report = result.report
        assert report.n_rows == ROWS

        # the table follows the report's order: the drifted feature first, with its status
        rows = table_rows(screen)
        assert [r[0] for r in rows][:1] == ["amount"]
        assert len(rows) == len(report.features) == len(drifted_project.config.features)
        assert [screen.table.coordinate_to_cell_key((i, 0))[0].value for i in range(len(rows))] == [
            fd.feature for fd in report.features
        ]
        assert rows[0][1] == "alert" and report.features[0].status == "alert"
        assert all(r[1] in ("ok", "warn") for r in rows[1:] if r[0] != "merchant_category")
        # the status is coloured from the theme (the table's component classes)
        status_cell = screen.table.get_row_at(0)[1]
        assert status_cell.style == screen.table.style_of("alert")
        assert screen.table.style_of("alert") != screen.table.style_of("ok")

        # the header line
        summary = str(screen.summary_line.content)
        assert summary.startswith("v1 · 24h · 1,500 rows · ALERT")
        assert " s at " in summary and "UTC" in summary

        # the drifted feature is selected: both histograms are drawn
        assert screen.selected == "amount"
        drawn = screen.hist.drawn
        assert drawn, "no histogram rows drawn"
        assert sum(r for _, r, _ in drawn) == pytest.approx(1.0)
        assert sum(c for _, _, c in drawn) == pytest.approx(1.0)
        hist_text = str(screen.hist.render())
        assert "reference" in hist_text and "current" in hist_text and "█" in hist_text
        assert screen.query_one("#drift-right").border_title == "amount · numeric"

        # prediction drift and performance (no labels in this project)
        prediction = str(screen.prediction_panel.content)
        assert report.prediction is not None
        assert prediction.startswith(report.prediction.status)
        assert "ref →" in prediction and "now" in prediction
        performance = str(screen.performance_panel.content)
        assert "no labels yet" in performance and "auc holdout 0.9" in performance

        # every part fits the terminal
        for widget in (
            screen.table,
            screen.hist,
            screen.sparkline,
            screen.prediction_panel,
            screen.performance_panel,
        ):
            assert widget.region.width > 0 and widget.region.right <= size[0], widget
            assert widget.region.bottom <= size[1], widget
        assert screen.hist.region.height >= 4


async def test_status_colours_follow_the_theme(drifted_project: Project) -> None:
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        before = screen.table.get_row_at(0)[1].style
        app.theme = "gruvbox"  # its error colour differs from the default theme's
        await wait_until(
            pilot, lambda: screen.table.get_row_at(0)[1].style != before, what="new colours"
        )
        assert screen.table.get_row_at(0)[1].style == screen.table.style_of("alert")


async def test_selecting_features_draws_their_histograms(drifted_project: Project) -> None:
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_drift(pilot)
        report = screen.result.report if screen.result else None
        assert report is not None
        screen.table.focus()
        await pilot.press("down")
        await pilot.pause()
        second = report.features[1]
        assert screen.selected == second.feature
        assert screen.hist.labels == second.hist_labels
        assert screen.hist.ref == second.ref_hist and screen.hist.cur == second.cur_hist

        # the categorical feature: categories as labels, the unseen one named and drawn
        names = [fd.feature for fd in report.features]
        index = names.index("merchant_category")
        await pilot.press(*(["down"] * (index - 1)), "enter")
        await pilot.pause()
        assert screen.selected == "merchant_category"
        category = report.features[index]
        assert category.kind == "categorical"
        assert category.unseen == {"crypto_exchange": 40}
        labels = [label for label, _, _ in screen.hist.drawn]
        assert "grocery" in labels and "__unseen__" in labels
        assert "unseen" in str(screen.hist.render())
        assert screen.unseen_line.display
        assert "crypto_exchange 40" in str(screen.unseen_line.content)
        assert screen.query_one("#drift-right").border_title == "merchant_category · categorical"

        # and back up to the top with the arrows
        await pilot.press(*(["up"] * index))
        await pilot.pause()
        assert screen.selected == "amount"
        assert not screen.unseen_line.display


async def test_an_undrifted_window_is_ok(trained_project: Project) -> None:
    log_predictions(trained_project, shift=1.0)
    app = WorkbenchApp(trained_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        assert screen.result is not None
        statuses = {fd.feature: fd.status for fd in screen.result.report.features}
        assert statuses["amount"] == "ok"
        assert "alert" not in [r[1] for r in table_rows(screen)]


async def test_window_cycles(drifted_project: Project) -> None:
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        assert screen.window_label == "24h"
        for label, rows in (("7d", ROWS), ("last 1000", 1000), ("1h", ROWS), ("24h", ROWS)):
            await pilot.press("w")
            await wait_until(
                pilot,
                lambda w=label: screen.result is not None and screen.result.window == w,
                what=f"a check over {label}",
            )
            assert screen.window_label == label
            assert screen.result is not None and screen.result.report.n_rows == rows
            assert str(screen.summary_line.content).startswith(f"v1 · {label} · {rows:,} rows")
            assert ("information", f"drift over {label}") in notes
        assert drift_rows(drifted_project) == []  # looking writes nothing to the drift log


async def test_recheck_records_and_draws_the_score_over_time(drifted_project: Project) -> None:
    project = drifted_project
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        # not recorded yet: the sparkline holds this check only
        assert screen.result is not None
        assert screen.series == [pytest.approx(screen.result.report.features[0].score)]
        assert list(screen.sparkline.data or []) == []  # one point: nothing to draw yet
        for recorded in (1, 2):
            checks = screen.checks
            await pilot.press("r")
            await wait_until(pilot, lambda c=checks: screen.checks > c, what="the re-check")
            await pilot.pause()
            rows = drift_rows(project)
            amount = [r for r in rows if r["feature"] == "amount"]
            assert len(amount) == recorded
            assert all(r["status"] == "alert" and r["model"] == MODEL for r in amount)
            assert len(screen.history["amount"]) == recorded
            assert len(screen.series) == recorded
            assert len(list(screen.sparkline.data or [])) == (recorded if recorded > 1 else 0)
            assert f"psi over time · {recorded} check" in str(screen.history_caption.content)
        features = {r["feature"] for r in drift_rows(project)}
        assert "__prediction__" in features and "amount" in features


async def test_auto_refresh_while_shown_only(
    drifted_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drift_screen, "REFRESH_S", 0.3)
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        seen = screen.checks
        await wait_until(pilot, lambda: screen.checks >= seen + 2, what="two refreshes")
        await pilot.press("1")
        await settle(pilot)
        stopped_at = screen.checks
        await pilot.pause(1.0)
        assert screen.checks <= stopped_at + 1  # at most the one under way
        assert screen._refresh_timer is None
        await pilot.press("7")
        await wait_until(pilot, lambda: screen.checks > stopped_at + 1, what="refreshing again")


async def test_progress_shows_and_the_ui_answers_while_checking(drifted_project: Project) -> None:
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # Hold the app's database: the check's worker waits for it, as behind a slow query.
        app._db_lock.acquire()
        try:
            await pilot.press("7")
            screen = app.screen
            assert isinstance(screen, DriftScreen)
            await pilot.pause(0.2)
            assert screen.checking and screen.checks == 0
            assert screen.query_one("#drift-busy").display
            assert "checking 24h" in str(screen.busy_label.content)
            # the event loop is free: keys work meanwhile
            await pilot.press("question_mark")
            await pilot.pause()
            assert app.screen is not screen
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen
        finally:
            app._db_lock.release()
        await wait_until(pilot, lambda: screen.checks > 0, what="the first check")
        await pilot.pause()
        assert not screen.checking and not screen.query_one("#drift-busy").display
        # the check reported its progress (rows done of rows total) on the way
        assert screen.progress.total == ROWS and screen.progress.progress == ROWS


# --- errors in place ----------------------------------------------------------------------


async def test_a_version_without_a_profile_gets_one_or_says_why_in_place(
    trained_project: Project, tmp_path: Path
) -> None:
    """v1's model folder without its profile (a copy: the trained template is shared): the
    first check makes the profile beside it; a model that cannot score the data is an error
    shown in place."""
    project = trained_project
    old = tmp_path / "old-model"
    shutil.copytree(model_dir_for(project, 1), old)
    (old / PROFILE_FILE).unlink()
    model_file = old / "model.lgb"
    kept = model_file.read_bytes()
    model_file.write_text("not a model")  # and it cannot be scored: no profile can be made
    con = sqlite3.connect(project.mlflow_db)
    try:
        con.execute("UPDATE model_versions SET source = ? WHERE version = 1", (old.as_uri(),))
        con.commit()
    finally:
        con.close()
    assert model_dir_for(project, 1) == old
    log_predictions(project)
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        assert screen.result is None
        assert "version 1 has no reference profile, and making one failed" in screen.error
        assert screen.error_line.display
        assert "drift check failed: version 1 has no reference profile" in str(
            screen.error_line.content
        )
        assert screen.placeholder.display
        assert screen.table.row_count == 0
        # the model is whole again: r checks again, and the profile is made in place
        model_file.write_bytes(kept)
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.result is not None, what="a check")
        assert app.is_running and not screen.error_line.display
        assert screen.table.row_count > 0
    assert "built on first use" in (old / PROFILE_FILE).read_text()


async def test_no_production_version_is_shown_in_place(tmp_path: Path) -> None:
    project = Project.load(samples.init(tmp_path / "bare", "fraud_detection", rows=600))
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        assert "has no production version to check" in screen.error
        assert "has no production version" in str(screen.placeholder.content)
        assert str(screen.performance_panel.content) == "-"


# --- the monitor --------------------------------------------------------------------------


async def test_the_monitor_runs_in_the_background_and_reports(drifted_project: Project) -> None:
    project = add_config(drifted_project, MONITOR_CONFIG.format(enabled="true"))
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: len(app.monitor_outcomes) >= 1, what="a monitor round")
        outcome = app.monitor_outcomes[-1]
        assert not outcome.fired and not outcome.acted and outcome.error is None
        assert outcome.reason == f"only {ROWS} predictions in the window (min_rows 1000000)"
        assert outcome.check["version"] == 1 and "amount" in outcome.check["alerts"]
        screen = await open_drift(pilot)
        await wait_until(pilot, lambda: len(app.monitor_outcomes) >= 2, what="another round")
        await pilot.pause()
        line = str(screen.monitor_line.content)
        assert line.startswith("monitor every 0.5 s · ")
        assert "round(s), 0 fired" in line
        assert f"only {ROWS} predictions in the window" in line
        # each round recorded its check; the screen's history shows them
        assert len([r for r in drift_rows(project) if r["feature"] == "amount"]) >= 2
        await wait_until(pilot, lambda: len(screen.history.get("amount", [])) >= 2)
        # quiet rounds raise no toast
        assert not [n for n in notes if "predictions in the window" in n[1]]
    assert app._stop_monitor.is_set()


async def test_the_monitor_stays_off_unless_enabled(drifted_project: Project) -> None:
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        await settle(pilot)
        assert not app._monitor_started
        assert list(app.monitor_outcomes) == []
        assert str(screen.monitor_line.content).startswith("monitor off")


async def test_a_monitor_round_asks_first(drifted_project: Project) -> None:
    project = add_config(drifted_project, MONITOR_CONFIG.format(enabled="false"))
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_drift(pilot)
        await pilot.press("m")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert dialog.dialog_title == "Run a monitor round now"
        assert "retrain" in dialog.change
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DriftScreen) and list(app.monitor_outcomes) == []

        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # no reason needed
        await wait_until(pilot, lambda: len(app.monitor_outcomes) == 1, what="the round")
        await settle(pilot)
        assert app.monitor_busy == ""
        reason = f"only {ROWS} predictions in the window (min_rows 1000000)"
        assert ("information", reason) in notes
        assert reason in str(screen.monitor_line.content)
        assert str(screen.monitor_line.content).startswith("monitor off · 1 round(s), 0 fired")


# --- the app around it ----------------------------------------------------------------------


async def test_help_palette_and_keys_know_the_screen(drifted_project: Project) -> None:
    titles = [title for title, _ in help_sections("drift")]
    assert titles[0] == "Drift"
    ids = binding_ids()
    for name in ("app.drift", "drift.recheck", "drift.window", "drift.monitor", "drift.select"):
        assert name in ids
    app = WorkbenchApp(drifted_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"go to drift")
        await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DriftScreen), what="the screen")
        assert app.current_mode == "drift"
        await settle(pilot)
        await pilot.press("ctrl+p", *"run a monitor round now")
        await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the dialog")
        await pilot.press("escape")


def test_the_start_path_does_not_load_the_screen_or_the_engine() -> None:
    code = textwrap.dedent(
        """
        import sys
        import workbench_tui.app
        lazy = ("workbench_tui.drift", "workbench.drift.evaluate", "workbench.monitoring.checks",
                "workbench.monitoring.monitor", "numpy")
        print("RESULT", [m for m in lazy if m in sys.modules])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESULT []" in out.stdout


def test_histogram_rows_fit_the_height() -> None:
    labels = [str(i) for i in range(20)]
    ref = [0.05] * 20
    cur = [0.1] * 10 + [0.0] * 10
    assert len(histogram_rows(labels, ref, cur, False, 30)) == 20
    merged = histogram_rows(labels, ref, cur, False, 7)
    assert [m[0] for m in merged] == ["0", "3", "6", "9", "12", "15", "18"]
    assert sum(m[1] for m in merged) == pytest.approx(1.0)
    assert sum(m[2] for m in merged) == pytest.approx(1.0)
    # categories: the largest stay, the rest pooled, the unseen bin kept
    cats = ["a", "b", "c", "d", "__unseen__"]
    rows = histogram_rows(cats, [0.4, 0.3, 0.2, 0.1, 0.0], [0.1, 0.1, 0.5, 0.1, 0.2], True, 3)
    assert [r[0] for r in rows] == ["c", "__unseen__", "+3 more"]
    assert rows[-1][1] == pytest.approx(0.8) and rows[-1][2] == pytest.approx(0.3)


def test_formats() -> None:
    assert [fmt_num(x) for x in (None, float("nan"), 0.0, 1.1731, 0.0046585, 12345.6)] == [
        "-",
        "-",
        "0",
        "1.17",
        "0.00466",
        "12,346",
    ]
    assert [fmt_pct_share(x) for x in (0.0, 0.001, 0.123, 1.0)] == ["0%", "<1%", "12%", "100%"]


# --- snapshot -------------------------------------------------------------------------------


@pytest.fixture
def snapshot_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """The sample data (fixed seed) profiled into v1's model folder, the tests' registry (v1
    production), ROWS drifted predictions; no training, so nothing depends on the machine."""
    monkeypatch.setattr(drift_screen, "SHOW_TIMES", False)
    project = Project.load(samples.init(tmp_path / "snap", "fraud_detection", rows=4000))
    write_registry(project, {1: 3}, {"production": 1})
    model = tmp_path / "models" / "1"
    model.mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    frame = pl.read_parquet(project.data_path)
    features = project.config.features
    predictions = np.linspace(0.0, 0.2, frame.height)
    profile = build_profile(
        frame.select(features), features, {"merchant_category"}, predictions=predictions
    )
    profile.save(model / PROFILE_FILE)
    con = sqlite3.connect(project.mlflow_db)
    try:
        con.execute("UPDATE model_versions SET source = ?", (model.as_uri(),))
        con.commit()
    finally:
        con.close()
    log_predictions(project, unseen=40)
    yield project


def test_snapshot(snap_compare: Any, snapshot_project: Project) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("7")
        screen = pilot.app.screen
        await wait_until(pilot, lambda: getattr(screen, "checks", 0) > 0)
        await settle(pilot)

    app = WorkbenchApp(snapshot_project, sync_on_start=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
