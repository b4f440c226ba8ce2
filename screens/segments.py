"""Segments: how the served model does per group of traffic, worst group first, and the
fairness gaps between the groups of the sensitive segments.

Opened with `g` on the Drift screen (or "Show segments" in the command palette). The alerts
are at the top, then the groups (feature, group, count, the metric and the positive rate, or
the mean prediction for regression, with their bootstrap intervals, and a trend), the
selected group's metric and positive rate over time (Sparklines), and the fairness panel
(each measure of each sensitive segment: live value with its interval, the holdout's value,
the threshold, ALERT). `w` cycles the window (1h, 24h, 7d), `r` builds the report again,
escape goes back.

The report is `workbench.monitoring.segments.report(...).to_dict()` (its shape is documented
there), built in a thread worker: the screen paints a "building" line first and an error as
one line, and never blocks the event loop. The builder is imported in the worker only; a
screen may be given another one (`builder=`), which tests do. Without `[monitoring]
segments` there is nothing to build: a placeholder says how to set it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static
from workbench_tui.base import describe_error
from workbench_tui.widgets.segments_format import (
    MEASURE_LEGEND,
    NO_SEGMENTS,
    facts_text,
    summary_text,
)
from workbench_tui.widgets.segments_panels import (
    SegmentDetail,
    SegmentsText,
    alerts_text,
    fairness_renderable,
)
from workbench_tui.widgets.segments_table import SegmentTable

if TYPE_CHECKING:
    from workbench_tui.app_state import WorkbenchAppLike

    from workbench.project import Project

#: build(project, window) -> the segment report as a dict (SegmentReport.to_dict()'s shape)
Builder = Callable[["Project", str], Mapping[str, Any]]
#: The windows `w` cycles through (the project's [monitoring] window is added when not one).
WINDOWS: tuple[str, ...] = ("1h", "24h", "7d")


def default_builder(project: Project, window: str) -> Mapping[str, Any]:
    """`workbench.monitoring.segments.report(...).to_dict()`, imported on first use (in the
    worker)."""
    from workbench.monitoring import segments

    return segments.report(project, window=window).to_dict()


def open_segments(screen: Screen[Any]) -> None:
    """Push a Segments screen over `screen`."""
    screen.app.push_screen(SegmentsScreen())


class SegmentsScreen(Screen[None]):
    CSS_PATH = "segments.tcss"
    AUTO_FOCUS = "#segments-table"
    #: Which help section lists this screen's keys first (the App's `?` reads it).
    HELP_SECTION: ClassVar[str] = "segments"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "w",
            "cycle_window",
            "Window",
            id="segments.window",
            tooltip="Cycle the window the report covers: 1h, 24h, 7d",
        ),
        Binding(
            "r",
            "refresh",
            "Refresh",
            id="segments.refresh",
            tooltip="Build the segment report again (reads the logs; records nothing)",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            id="segments.back",
            tooltip="Back to the screen before (Drift)",
        ),
    ]

    class Built(Message):
        """A build finished: the report, or an error line."""

        def __init__(self, seq: int, report: Mapping[str, Any] | None, error: str = "") -> None:
            super().__init__()
            self.seq = seq
            self.report = report
            self.error = error

    def __init__(self, builder: Builder | None = None) -> None:
        super().__init__()
        self.builder: Builder = builder or default_builder
        self.report: Mapping[str, Any] | None = None
        self.error = ""
        #: Builds answered (a report or an error), for tests.
        self.builds = 0
        self.building = False
        #: The selected group's row key (`feature=group`).
        self.selected: str | None = None
        self.windows = list(WINDOWS)
        self.window_index = self.windows.index("24h")
        self._seq = 0

    @property
    def project(self) -> Project:
        return cast("WorkbenchAppLike", self.app).project

    @property
    def window(self) -> str:
        return self.windows[self.window_index]

    @property
    def configured(self) -> bool:
        return bool(self.project.config.monitoring.segments)

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="segments-top"):
            self.summary_line = SegmentsText("", id="segments-summary")
            yield self.summary_line
            self.facts_line = SegmentsText("", id="segments-facts")
            yield self.facts_line
            self.alerts_line = SegmentsText("", id="segments-alerts")
            yield self.alerts_line
            self.error_line = Label("", id="segments-error", markup=False)
            yield self.error_line
        self.placeholder = Static(NO_SEGMENTS, id="segments-placeholder", markup=False)
        yield self.placeholder
        self.table = SegmentTable(id="segments-table", cursor_type="row", zebra_stripes=True)
        yield self.table
        with Horizontal(id="segments-bottom"):
            self.detail = SegmentDetail(id="segments-detail")
            yield self.detail
            with VerticalScroll(id="segments-fairness-box") as box:
                self.fairness_box = box
                self.fairness = SegmentsText("", id="segments-fairness")
                yield self.fairness
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Workbench"
        self.sub_title = f"{self.project.name} · Segments"
        if getattr(self.app, "read_only", False):
            self.sub_title += " · READ-ONLY"
        window = self.project.config.monitoring.window
        if window not in self.windows:
            self.windows.insert(0, window)
        self.window_index = self.windows.index(window)
        self.fairness_box.border_title = "fairness"
        self.fairness_box.border_subtitle = MEASURE_LEGEND
        self.error_line.display = False
        self.facts_line.display = False
        self.table.set_columns(None)
        self.detail.clear("select a group (arrows) to see it over time")
        self.app.theme_changed_signal.subscribe(
            self, lambda _theme: self.call_after_refresh(self.show)
        )
        configured = self.configured
        self.placeholder.display = not configured
        self.table.display = configured
        self.query_one("#segments-bottom").display = configured
        self.alerts_line.display = configured
        if configured:
            self.build()
        else:
            self.summary_line.update(Text("no [monitoring] segments", style="bold"))

    # --- building ------------------------------------------------------------------------
    def build(self) -> None:
        """Say what is being built, then build the report in a worker."""
        self._seq += 1
        self.building = True
        self._show_summary()
        self._build(self._seq, self.window)

    @work(thread=True, exclusive=True, group="segments-build", exit_on_error=False)
    def _build(self, seq: int, window: str) -> None:
        try:
            report = self.builder(self.project, window)
            to_dict = getattr(report, "to_dict", None)  # a SegmentReport itself will do
            if callable(to_dict):
                report = to_dict()
        except Exception as exc:
            self.post_message(self.Built(seq, None, describe_error(exc)))
        else:
            self.post_message(self.Built(seq, report))

    def on_segments_screen_built(self, message: Built) -> None:
        if message.seq != self._seq:
            return  # an older build, overtaken by a newer one
        self.builds += 1
        self.building = False
        if message.report is None:
            self.error = message.error
            self.error_line.update(f"segment report failed: {message.error}")
            self.error_line.display = True
            self._show_summary()
            return
        self.error = ""
        self.error_line.display = False
        self.report = message.report
        self.show()

    # --- showing -------------------------------------------------------------------------
    def _show_summary(self) -> None:
        style = self.summary_line.style_of
        if self.report is None:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(self.project.config.model_name, style="bold")
            line.append(f" · {self.window}", style=style("key"))
            if self.building:
                line.append(f" · building the segment report over {self.window}…")
            else:
                line.append(" · no report", style=style("muted"))
            self.summary_line.update(line)
            return
        line = Text(
            summary_text(self.report, self.project.config.monitoring.min_count),
            no_wrap=True,
            overflow="ellipsis",
        )
        if self.building:
            line.append(f" · building {self.window}…", style=style("muted"))
        self.summary_line.update(line)

    def show(self) -> None:
        """Draw the report: summary, alerts, groups (the selection kept), fairness."""
        report = self.report
        if report is None or not self.is_attached:
            return
        self._show_summary()
        facts = facts_text(report)
        self.facts_line.update(Text(facts, style=self.facts_line.style_of("muted")))
        self.facts_line.display = bool(facts)
        self.alerts_line.update(alerts_text(report.get("alerts") or [], self.alerts_line.style_of))
        keys = self.table.fill(report)
        monitoring = self.project.config.monitoring
        self.fairness.update(
            fairness_renderable(
                report, self.fairness.style_of, monitoring.sensitive, monitoring.min_count
            )
        )
        if not keys:
            self.selected = None
            self.detail.clear(
                "no group with enough rows in this window (smaller ones are suppressed)"
            )
            return
        row = keys.index(self.selected) if self.selected in keys else 0
        self.table.move_cursor(row=row)
        self._show_group(keys[row])

    def _group(self, key: str) -> Mapping[str, Any] | None:
        for group in (self.report or {}).get("groups") or []:
            if f"{group.get('feature', '?')}={group.get('group', '?')}" == key:
                return cast(Mapping[str, Any], group)
        return None

    def _show_group(self, key: str) -> None:
        group = self._group(key)
        if group is None or self.report is None:
            return
        self.selected = key
        self.detail.show(self.report, group)

    @on(DataTable.RowHighlighted, "#segments-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_group(str(event.row_key.value))

    # --- actions -------------------------------------------------------------------------
    def action_cycle_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(self.windows)
        if self.configured:
            self.build()
        else:
            self.notify(f"window {self.window}: no [monitoring] segments to report on")

    def action_refresh(self) -> None:
        if self.configured:
            self.build()
        else:
            self.notify("no [monitoring] segments in workbench.toml", severity="warning")

    def action_back(self) -> None:
        self.dismiss(None)
