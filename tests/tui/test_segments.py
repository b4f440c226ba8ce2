"""The Segments screen, driven with Pilot at 80x24 and the keyboard alone.

The segment report itself (`workbench.monitoring.segments.report`) is tested in its own module
(tests/unit/test_segments*.py); here the screen gets dicts of `SegmentReport.to_dict()`'s shape
(issue 14's contract) through a recording builder passed in (or patched in where the screen is
opened by a key), so what is tested is the screen: the groups worst first, the alerts and the
fairness panel, the window key, the placeholder without `[monitoring] segments`, the help, and
that the report is built off the event loop.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import polars as pl
import pytest
from rich.console import Console
from textual.binding import Binding
from textual.pilot import Pilot
from workbench_tui.app import WorkbenchApp
from workbench_tui.drift import DriftScreen
from workbench_tui.help import HelpScreen
from workbench_tui.segments import SegmentsScreen
from workbench_tui.widgets.segments_format import fmt_value, spark

from tests.tui.helpers import palette_hits, record_notes, settle, wait_until
from workbench.config_monitoring import MonitoringSection
from workbench.errors import DataError
from workbench.monitoring import segments
from workbench.project import Project
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.predictors import model_dir_for
from workbench.store.parquet_log import ParquetLog, utcnow

pytestmark = pytest.mark.tui

SIZE = (80, 24)


def _series(metric: list[float | None], rate: list[float]) -> list[dict[str, Any]]:
    return [
        {"start": f"2026-01-15T{9 + i:02d}:00:00+00:00", "count": 200, "metric": m,
         "positive_rate": r}
        for i, (m, r) in enumerate(zip(metric, rate, strict=True))
    ]  # fmt: skip


REPORT: dict[str, Any] = {
    "model": "fraud_detection",
    "version": 2,
    "window": "24h",
    "task": "binary",
    "metric": "auc",
    "groups": [  # worst first
        {"feature": "merchant_category", "group": "online", "count": 1234, "labelled": 800,
         "metric": 0.712, "metric_ci": [0.66, 0.76], "positive_rate": 0.061,
         "positive_rate_ci": [0.05, 0.072],
         "series": _series([0.8, 0.75, 0.7, 0.65], [0.04, 0.05, 0.07, 0.08])},
        {"feature": "is_foreign", "group": "1", "count": 420, "labelled": 300,
         "metric": 0.78, "metric_ci": None, "positive_rate": 0.09, "positive_rate_ci": None,
         "series": _series([None, 0.78], [0.08, 0.1])},
        {"feature": "merchant_category", "group": "grocery", "count": 5000, "labelled": 0,
         "metric": None, "metric_ci": None, "positive_rate": 0.01,
         "positive_rate_ci": [0.008, 0.012], "series": _series([None, None], [0.01, 0.01])},
    ],
    "suppressed": 3,
    "fairness": [
        {"feature": "is_foreign", "measure": "demographic_parity_difference", "value": 0.14,
         "ci": [0.09, 0.19], "threshold": 0.1, "alert": True, "source": "live"},
        {"feature": "is_foreign", "measure": "demographic_parity_difference", "value": 0.05,
         "ci": None, "threshold": 0.1, "alert": False, "source": "holdout"},
        {"feature": "is_foreign", "measure": "equal_opportunity_difference", "value": 0.04,
         "ci": [0.01, 0.07], "threshold": 0.1, "alert": False, "source": "holdout"},
    ],
    "alerts": ["is_foreign: demographic parity difference 0.14 > 0.10 (live)"],
    "note": "",
    "rows": 6654,
    "seconds": 0.4213,
}  # fmt: skip
KEYS = ["merchant_category=online", "is_foreign=1", "merchant_category=grocery"]


class Recorder:
    """A builder that records its calls (window, thread) and answers with REPORT over that
    window; it waits on `gate` first when given one, and raises for the window `fail`."""

    def __init__(self, gate: threading.Event | None = None, fail: str = "") -> None:
        self.calls: list[str] = []
        self.threads: list[str] = []
        self.gate = gate
        self.fail = fail

    def __call__(self, project: Project, window: str) -> dict[str, Any]:
        self.calls.append(window)
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.wait(10)
        if window == self.fail:
            raise DataError(f"segments: no predictions logged in the last {window}")
        return dict(copy.deepcopy(REPORT), window=window)


def with_segments(project: Project) -> Project:
    monitoring = MonitoringSection(
        segments=["merchant_category", "is_foreign"], sensitive=["is_foreign"], min_count=100
    )
    return Project(project.root, project.config.model_copy(update={"monitoring": monitoring}))


async def open_screen(pilot: Pilot[Any], builder: Recorder) -> SegmentsScreen:
    screen = SegmentsScreen(builder=builder)
    await pilot.app.push_screen(screen)
    await settle(pilot)
    return screen


def plain(renderable: Any, width: int = 60) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def row_texts(screen: SegmentsScreen, row: int) -> list[str]:
    return [str(cell) for cell in screen.table.get_row_at(row)]


async def test_groups_worst_first_with_intervals_and_their_series(
    fixed_project: Project,
) -> None:
    app = WorkbenchApp(with_segments(fixed_project), sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_screen(pilot, Recorder())
        table = screen.table
        assert [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(3)] == KEYS
        assert row_texts(screen, 0)[:5] == [
            "merchant_ca…", "online", "1,234", "0.712 [.66,.76]", "6.1% [5.0,7.2]"
        ]  # fmt: skip
        assert row_texts(screen, 0)[5] == spark([0.8, 0.75, 0.7, 0.65]) == "█▆▃▁"
        assert row_texts(screen, 1)[3:5] == ["0.780", "9.0%"]  # no interval: none shown
        assert row_texts(screen, 2)[3] == "-"  # no labels yet: no metric
        assert row_texts(screen, 2)[5] == spark([0.01, 0.01])  # its trend: the positive rate
        assert [c.label.plain for c in table.ordered_columns][3:5] == ["auc", "pos rate"]
        assert table.virtual_size.width <= table.size.width  # every column fits in 80
        summary = str(screen.summary_line.content)
        assert "fraud_detection v2 · 24h · auc · 3 groups · 3 suppressed (< 100 rows)" in summary
        facts = str(screen.facts_line.content)
        assert facts == "6,654 predictions with segments · built in 0.42 s"
        # the worst group is selected: its series below
        assert screen.selected == KEYS[0]
        assert screen.detail.metric_spark.data == [0.8, 0.75, 0.7, 0.65]
        assert screen.detail.rate_spark.data == [0.04, 0.05, 0.07, 0.08]
        assert screen.detail.border_title == KEYS[0]
        assert "n 1,234 · 800 labelled" in str(screen.detail.caption.content)
        await pilot.press("down")
        assert screen.selected == KEYS[1] and screen.detail.metric_spark.data == [0.78]
        await pilot.press("down")
        assert "no labelled window yet" in str(screen.detail.metric_caption.content)
        # a rebuild keeps the selection
        await pilot.press("r")
        await settle(pilot)
        assert screen.selected == KEYS[2] and table.cursor_row == 2


async def test_the_fairness_alert_shows_at_the_top_and_in_the_panel(
    fixed_project: Project,
) -> None:
    app = WorkbenchApp(with_segments(fixed_project), sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_screen(pilot, Recorder())
        alerts = screen.alerts_line.content
        assert str(alerts) == "ALERT is_foreign: demographic parity difference 0.14 > 0.10 (live)"
        error = screen.alerts_line.style_of("alert")
        assert any(span.style == error for span in alerts.spans)  # type: ignore[union-attr]
        panel = plain(screen.fairness.content)
        lines = [line.split() for line in panel.splitlines() if line.strip()]
        assert lines[1] == ["is_foreign"]
        assert lines[2] == ["DP", "diff", "0.140", "[.09,.19]", "0.050", "≤", "0.10", "ALERT"]
        assert lines[3] == ["EO", "diff", "-", "0.040", "≤", "0.10", "ok"]  # holdout only
        assert screen.fairness_box.border_title == "fairness"
        # the panel fits its box: nothing cut short at the width it gets
        width = screen.fairness.size.width
        assert width >= 45
        narrow = plain(screen.fairness.content, width)
        assert "holdout" in narrow and "0.140 [.09,.19]" in narrow and "…" not in narrow
        # without alerts: said so
        screen.report = dict(REPORT, alerts=[], fairness=[])
        screen.show()
        assert str(screen.alerts_line.content) == "no fairness alerts"
        why = " ".join(plain(screen.fairness.content).split())
        assert why.startswith("no fairness measures yet: is_foreign needs two groups of")
        assert why.endswith("at least 100 rows in this window")


async def test_the_window_key_rebuilds_over_the_next_window(fixed_project: Project) -> None:
    builder = Recorder(fail="1h")
    app = WorkbenchApp(with_segments(fixed_project), sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_screen(pilot, builder)
        assert builder.calls == ["24h"]  # [monitoring] window
        await pilot.press("w")
        await settle(pilot)
        assert builder.calls[-1] == "7d" and screen.report is not None
        assert screen.report["window"] == "7d"
        assert " · 7d · " in str(screen.summary_line.content)
        # a failing build is one error line; the report before stays shown
        await pilot.press("w")
        await settle(pilot)
        assert builder.calls[-1] == "1h"
        error = str(screen.error_line.content)
        assert error == "segment report failed: segments: no predictions logged in the last 1h"
        assert screen.error_line.display and "\n" not in error
        assert screen.table.row_count == 3
        await pilot.press("w", "r")
        await settle(pilot)
        assert builder.calls == ["24h", "7d", "1h", "24h", "24h"]
        assert not screen.error_line.display and screen.report["window"] == "24h"


async def test_placeholder_without_segments(fixed_project: Project) -> None:
    builder = Recorder()
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_screen(pilot, builder)
        text = str(screen.placeholder.content)
        assert screen.placeholder.display and not screen.table.display
        assert "workbench.toml" in text and "[monitoring]" in text
        assert 'segments = ["merchant_category", "is_foreign"]' in text
        assert "sensitive = " in text
        await pilot.press("r")
        await pilot.pause()
        assert builder.calls == []  # nothing to build
        assert ("warning", "no [monitoring] segments in workbench.toml") in notes


async def test_opened_from_drift_and_the_palette(
    fixed_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = Recorder()
    monkeypatch.setattr("workbench_tui.segments.default_builder", builder)
    app = WorkbenchApp(with_segments(fixed_project), sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        drift = app.screen
        assert isinstance(drift, DriftScreen)
        await pilot.press("g")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SegmentsScreen) and builder.calls == ["24h"]
        assert screen.table.row_count == 3
        await pilot.press("escape")  # the segments
        await pilot.pause()
        assert app.screen is drift
        await pilot.press("ctrl+p", *"show seg")
        await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SegmentsScreen), what="screen")
        await settle(pilot)
        assert builder.calls == ["24h", "24h"]


async def test_the_report_is_built_off_the_event_loop(fixed_project: Project) -> None:
    gate = threading.Event()
    builder = Recorder(gate)
    app = WorkbenchApp(with_segments(fixed_project), sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = SegmentsScreen(builder=builder)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: bool(builder.calls), what="the build to start")
        assert builder.threads[0] != threading.main_thread().name
        assert "building the segment report over 24h…" in str(screen.summary_line.content)
        # the event loop answers while the builder works: the help opens, Segments first
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert help_screen.sections[0][0] == "Segments"
        ids = {
            title: {b.id for b in bindings if isinstance(b, Binding)}
            for title, bindings in help_screen.sections
        }
        assert ids["Segments"] == {"segments.window", "segments.refresh", "segments.back"}
        assert "drift.segments" in ids["Drift"]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and screen.table.row_count == 0
        gate.set()
        await settle(pilot)
        assert screen.table.row_count == 3 and screen.builds == 1


def test_formats() -> None:
    assert fmt_value(None) == "-"
    assert fmt_value(0.8123, [0.781, 0.84]) == "0.812 [.78,.84]"
    assert fmt_value(0.03, [0.02, 0.04], percent=True) == "3.0% [2.0,4.0]"
    assert fmt_value(0.125, [0.102, 0.148], percent=True) == "12.5% [10,15]"
    assert fmt_value(153.2, [140.0, 166.0]) == "153.2 [140,166]"  # regression: mean prediction
    assert spark([]) == "" and len(spark([float(i) for i in range(100)], 8)) == 8
    assert spark([1.0, 1.0, 1.0]) == "▄▄▄"


# --- on a real project (after the report landed) ---------------------------------------------


async def test_a_real_report_on_the_trained_project(trained_project: Project) -> None:
    """The real builder (workbench.monitoring.segments.report) over 600 logged predictions of
    the trained project, a third of them labelled: the screen shows the report's groups in
    its order."""
    path = trained_project.root / "workbench.toml"
    path.write_text(
        path.read_text() + '\n[monitoring]\nsegments = ["merchant_category", "is_foreign"]\n'
        'sensitive = ["is_foreign"]\nmin_count = 20\nbootstrap = 20\n'
    )
    project = Project.load(trained_project.root)
    frame = pl.read_parquet(project.data_path).head(600)
    records = frame.select(project.config.features).to_dicts()
    labels = frame[project.config.data.target].to_list()
    logger = PredictionLogger(project.logs)
    try:
        logger.use_version(project, 1, model_dir_for(project, 1))
        ids = logger.new_ids(len(records))
        outputs = [0.02 + (i % 7) / 100 + 0.5 * y for i, y in enumerate(labels)]
        logger.log_many(ids, project.config.model_name, 1, "production", records, outputs, 3.0)
    finally:
        logger.close()
    ParquetLog(project.logs, "labels").append(
        [
            {"ts": utcnow(), "request_id": ids[i], "label": float(labels[i])}
            for i in range(0, 600, 3)
        ]
    )
    expected = segments.report(project).to_dict()
    assert expected["groups"]
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SegmentsScreen)
        assert not screen.error and screen.report is not None
        table = screen.table
        keys = [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(table.row_count)]
        assert keys == [f"{g['feature']}={g['group']}" for g in expected["groups"]]
        assert screen.report["version"] == 1 and screen.report["metric"] == expected["metric"]
        assert str(screen.summary_line.content).startswith("fraud_detection v1 · 24h · ")
        assert screen.detail.rate_spark.data  # the worst group's series
