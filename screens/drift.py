"""Drift: the served version's features sorted by drift score, with a colour per status; the
selected feature's reference and current histograms side by side, its score over time (from
the drift log), prediction drift and model performance, and the TUI's monitor.

`r` re-runs the check (and records it in the drift log), `w` cycles the window (1 h, 24 h,
7 d, the last 1,000 predictions), `m` runs one monitor round now (asks first: it can
retrain), arrows and enter select a feature, `g` opens the Segments screen (screens.segments).

Never blocking the event loop: `drift_checks.check` runs in an exclusive thread worker, with
a progress bar fed by its `on_progress`; the screen re-checks every REFRESH_S while shown
(those checks are not recorded: looking at the screen writes nothing). A check that fails
(no production version, no reference profile) says so in place.

The monitor (`[monitor] enabled = true`) is the app's (screens.monitor_task): its state is
the App's reactive `monitor`, which this screen watches for its monitor line (a new recorded
check re-reads the history); `m` asks the App for a round with a RunMonitorRound message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events as textual_events
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar
from textual.worker import Worker, get_current_worker
from workbench_tui.app_state import MonitorState, RunMonitorRound
from workbench_tui.base import WorkbenchScreen, describe_error
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.drift_format import STATUS_LABEL, performance_text, prediction_text, status_level
from workbench_tui.formatting import fmt_version
from workbench_tui.monitor_task import monitor_text
from workbench_tui.widgets.feature_detail import FeatureDetail
from workbench_tui.widgets.feature_table import FeatureTable
from workbench_tui.widgets.themed_text import DriftText

if TYPE_CHECKING:
    from workbench.drift.evaluate import FeatureDrift
    from workbench.monitoring.checks import CheckResult

#: Seconds between two checks while the screen is shown.
REFRESH_S = 30.0
#: The windows `w` cycles through: (label, window text for the core, last_n).
WINDOWS: tuple[tuple[str, str | None, int | None], ...] = (
    ("1h", "1h", None),
    ("24h", "24h", None),
    ("7d", "7d", None),
    ("last 1000", None, 1000),
)
#: Points of a feature's score history drawn in the sparkline.
HISTORY_POINTS = 120
#: Times (check time, seconds taken, monitor outcomes) are shown; a deterministic screenshot
#: turns this off.
SHOW_TIMES = True
PREDICTION_FEATURE = "__prediction__"
METRIC_FEATURE = "__metric__"
NO_FEATURE = "select a feature (arrows, enter) to see its histograms"


def fmt_clock(iso_or_dt: str | datetime | None) -> str:
    """A time as 'HH:MM:SS UTC' today, else 'YYYY-MM-DD HH:MM UTC' ('' when times are hidden
    or unknown)."""
    if not SHOW_TIMES or iso_or_dt is None:
        return ""
    when = iso_or_dt
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            return iso_or_dt if isinstance(iso_or_dt, str) else ""
    when = when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if when.date() == datetime.now(UTC).date():
        return when.strftime("%H:%M:%S UTC")
    return when.strftime("%Y-%m-%d %H:%M UTC")


class DriftScreen(WorkbenchScreen):
    MODE_TITLE = "Drift"
    CSS_PATH = "drift.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "r",
            "recheck",
            "Re-check",
            id="drift.recheck",
            tooltip="Re-run the drift check now and record it in the drift log",
        ),
        Binding(
            "w",
            "cycle_window",
            "Window",
            id="drift.window",
            tooltip="Cycle the window checked: 1h, 24h, 7d, the last 1000 predictions",
        ),
        Binding(
            "m",
            "monitor_round",
            "Monitor round",
            id="drift.monitor",
            tooltip="Run one monitor round now: check, and retrain when the [monitor] "
            "policy fires (asks first)",
        ),
        Binding(
            "enter",
            "select_feature",
            "Select",
            show=False,
            id="drift.select",
            tooltip="Show the highlighted feature's histograms and score over time (arrows move)",
        ),
        Binding(
            "g",
            "segments",
            "Segments",
            show=False,
            id="drift.segments",
            tooltip="Show the segments: the metric per group of traffic, worst first, and "
            "the fairness gaps ([monitoring] segments)",
        ),
    ]

    class Checked(Message):
        def __init__(
            self,
            token: int,
            result: CheckResult | None,
            history: dict[str, list[tuple[datetime, float | None, str]]] | None = None,
            error: str = "",
            recorded: bool = False,
        ) -> None:
            super().__init__()
            self.token = token
            self.result = result
            self.history = history or {}
            self.error = error
            self.recorded = recorded

    class CheckProgress(Message):
        def __init__(self, token: int, done: int, total: int) -> None:
            super().__init__()
            self.token = token
            self.done = done
            self.total = total

    def __init__(self) -> None:
        super().__init__()
        self.result: CheckResult | None = None
        self.history: dict[str, list[tuple[datetime, float | None, str]]] = {}
        self.error = ""
        self.selected: str | None = None
        self.checked_at: datetime | None = None
        #: Checks answered (successful or not), for tests.
        self.checks = 0
        self.checking = False
        self._token = 0
        self._check_worker: Worker[None] | None = None
        self._refresh_timer: Timer | None = None
        self._recorded = False  # whether the check shown is in the drift log
        #: The selected feature's scores over time, as drawn (oldest first).
        self.series: list[float] = []
        cfg = self.project.config.drift
        # The windows `w` cycles through, starting at the project's ([drift] window/last_n).
        self.windows = list(WINDOWS)
        if cfg.last_n:
            entry: tuple[str, str | None, int | None] = (f"last {cfg.last_n}", None, cfg.last_n)
        else:
            entry = (cfg.window, cfg.window, None)
        labels = [w[0] for w in self.windows]
        if entry[0] not in labels:
            self.windows.insert(0, entry)
            labels.insert(0, entry[0])
        self.window_index = labels.index(entry[0])

    @property
    def window_label(self) -> str:
        return self.windows[self.window_index][0]

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="drift-top"):
            self.summary_line = DriftText("", id="drift-summary")
            yield self.summary_line
            self.monitor_line = DriftText("", id="drift-monitor")
            yield self.monitor_line
            self.error_line = Label("", id="drift-error")
            yield self.error_line
            with Horizontal(id="drift-busy"):
                self.busy_label = Label("", id="drift-busy-label")
                yield self.busy_label
                self.progress = ProgressBar(total=None, show_eta=False, id="drift-progress")
                yield self.progress
        with Horizontal(id="drift-main"):
            with Vertical(id="drift-left"):
                self.table = FeatureTable(
                    id="drift-features", cursor_type="row", zebra_stripes=True
                )
                yield self.table
            self.detail = FeatureDetail(id="drift-right")
            # (the panel's parts, by their names, for tests)
            self.placeholder, self.hist = self.detail.placeholder, self.detail.hist
            self.unseen_line, self.sparkline = self.detail.unseen_line, self.detail.sparkline
            self.history_caption = self.detail.history_caption
            self.detail_line = self.detail.detail_line
            yield self.detail
        with Horizontal(id="drift-bottom"):
            self.prediction_panel = DriftText("", id="drift-prediction", classes="drift-panel")
            yield self.prediction_panel
            self.performance_panel = DriftText("", id="drift-performance", classes="drift-panel")
            yield self.performance_panel
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # (WorkbenchScreen.on_mount runs too, after this one.)
        self.prediction_panel.border_title = "prediction drift"
        self.performance_panel.border_title = "performance"
        self.error_line.display = False
        self.query_one("#drift-busy").display = False
        self.table.set_columns(None)
        self.summary_line.update(Text(f"checking drift over {self.window_label}…", style="dim"))
        self._show_detail_placeholder(NO_FEATURE)
        self.prediction_panel.update(Text("-", style="dim"))
        self.performance_panel.update(Text("-", style="dim"))
        self.watch(self.app, "monitor", self._monitor_changed)
        # Colours are baked into the texts: draw them again in a new theme's colours.
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.call_after_refresh(self.show)
        self.call_after_refresh(self.show_monitor)

    # --- checking ------------------------------------------------------------------------
    def reload(self) -> None:
        self._check_now(record=False)

    def _visible(self) -> bool:
        """Shown, or under a dialog of its own mode (not in another mode)."""
        return self.is_attached and self in self.app.screen_stack

    def _check_now(self, record: bool) -> None:
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
            self._refresh_timer = None
        self._token += 1
        label, window, last_n = self.windows[self.window_index]
        self.checking = True
        self.busy_label.update(Text(f"checking {label}…"))
        self.progress.update(total=None, progress=0)
        self.query_one("#drift-busy").display = True
        self._check_worker = self._check(self._token, window, last_n, record)

    def _refresh_tick(self) -> None:
        self._refresh_timer = None
        if self._visible() and not self.checking:
            self._check_now(record=False)

    def _schedule_refresh(self, delay: float | None = None) -> None:
        if self._refresh_timer is None and self._visible():
            delay = REFRESH_S if delay is None else delay
            self._refresh_timer = self.set_timer(max(0.05, delay), self._refresh_tick)

    def on_screen_suspend(self, event: textual_events.ScreenSuspend) -> None:
        if self._refresh_timer is not None and not self._visible():
            self._refresh_timer.stop()
            self._refresh_timer = None

    def on_screen_resume(self) -> None:
        # WorkbenchScreen.on_screen_resume runs after this one and reloads (checks) when the
        # app's data changed; otherwise checking resumes where the timer left off.
        if self._loaded_version != self.wb.data_version or self.checking:
            return
        if self._refresh_timer is None:
            age = (
                REFRESH_S
                if self.checked_at is None
                else (datetime.now(UTC) - self.checked_at).total_seconds()
            )
            if age >= REFRESH_S:
                self._check_now(record=False)
            else:
                self._schedule_refresh(REFRESH_S - age)

    @work(thread=True, exclusive=True, group="drift-check", exit_on_error=False)
    def _check(self, token: int, window: str | None, last_n: int | None, record: bool) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if not worker.is_cancelled:
                self.post_message(self.CheckProgress(token, done, total))

        try:
            from workbench.monitoring import checks as drift_checks
            from workbench.monitoring import queries

            with self.wb.database() as db:  # the app's shared connection
                result = drift_checks.check(
                    self.project,
                    window=window,
                    last_n=last_n,
                    db=db,
                    on_progress=progress,
                    record=record,
                )
                history = queries.drift_history(db, result.model, HISTORY_POINTS)
        except Exception as exc:
            message = self.Checked(token, None, error=describe_error(exc))
        else:
            message = self.Checked(token, result, history, recorded=record)
        if not worker.is_cancelled:
            self.post_message(message)

    def on_drift_screen_check_progress(self, message: CheckProgress) -> None:
        if message.token != self._token:
            return
        self.progress.update(total=max(1, message.total), progress=message.done)

    def on_drift_screen_checked(self, message: Checked) -> None:
        if message.token != self._token:
            return  # a newer check is on its way
        self.checks += 1
        self.checking = False
        self.query_one("#drift-busy").display = False
        self.checked_at = datetime.now(UTC)
        self._schedule_refresh()
        if message.result is None:
            self.error = message.error
            self.error_line.update(Text(f"drift check failed: {message.error}"))
            self.error_line.display = True
            if self.result is None:
                self.summary_line.update(Text(f"{self.project.config.model_name} · no check"))
                self._show_detail_placeholder(message.error)
            return
        self.error = ""
        self.error_line.display = False
        self.result = message.result
        self.history = message.history
        self._recorded = message.recorded
        self.show()

    # --- showing -------------------------------------------------------------------------
    def show(self) -> None:
        result = self.result
        if result is None:
            return
        self._show_summary(result)
        self._fill_table(result)
        self._show_prediction(result)
        self._show_performance(result)
        self.show_feature()

    def _show_summary(self, result: CheckResult) -> None:
        report = result.report
        style = self.summary_line.style_of
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"v{result.version}", style="bold")
        line.append(" · ", style=style("key"))
        line.append(result.window)
        line.append(" · ", style=style("key"))
        line.append(f"{report.n_rows:,} rows")
        line.append(" · ", style=style("key"))
        level = status_level(report.status)
        line.append(STATUS_LABEL.get(report.status, report.status).upper(), style=style(level))
        if report.alerts or report.warnings:
            line.append(f" ({report.alerts} alert, {report.warnings} warn)")
        if SHOW_TIMES:
            line.append(f" · {report.seconds:.2f} s", style=style("muted"))
            if self.checked_at is not None:
                line.append(f" at {fmt_clock(self.checked_at)}", style=style("muted"))
        self.summary_line.update(line)

    def _fill_table(self, result: CheckResult) -> None:
        features = result.report.features
        keep = self.selected
        self.table.fill(features)
        names = [fd.feature for fd in features]
        if keep not in names:
            keep = names[0] if names else None
        self.selected = keep
        if keep is not None:
            self.table.move_cursor(row=names.index(keep), animate=False)

    def feature(self, name: str | None = None) -> FeatureDrift | None:
        name = self.selected if name is None else name
        if self.result is None or name is None:
            return None
        return next((fd for fd in self.result.report.features if fd.feature == name), None)

    def _show_detail_placeholder(self, text: str) -> None:
        self.detail.show_placeholder(text)

    def show_feature(self) -> None:
        fd = self.feature()
        if fd is None:
            self.detail.show_placeholder(NO_FEATURE, clear=True)
            return
        history = self.history.get(fd.feature, [])
        self.series = self.detail.show_feature(fd, history, self._recorded)

    def _show_prediction(self, result: CheckResult) -> None:
        panel = self.prediction_panel
        task = result.task.type
        panel.update(prediction_text(result.report.prediction, panel.style_of, task))

    def _show_performance(self, result: CheckResult) -> None:
        panel = self.performance_panel
        limit = self.project.config.monitor.metric_drop
        panel.update(performance_text(result.metric or {}, limit, panel.style_of))

    def show_monitor(self) -> None:
        """The monitor line: off, or its schedule, a round under way and the latest outcome."""
        state = self.wb.monitor
        when = fmt_clock(state.last.at) if state.last else ""
        cfg = self.project.config.monitor
        self.monitor_line.update(
            monitor_text(cfg, state.outcomes, state.busy, when, self.monitor_line.style_of)
        )

    def _monitor_changed(self, old: MonitorState, new: MonitorState) -> None:
        """The App's monitor state changed: a recorded check re-reads the history."""
        self.show_monitor()
        if new.recorded > old.recorded and self._visible() and not self.checking:
            self._check_now(record=False)

    def on_resize(self, event: textual_events.Resize) -> None:
        if self.result is not None:
            self.call_after_refresh(self._fill_table, self.result)

    # --- selecting -----------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        name = event.row_key.value if event.row_key is not None else None
        if name is not None and name != self.selected:
            self.selected = str(name)
            self.show_feature()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        name = event.row_key.value if event.row_key is not None else None
        if name is not None:
            self.selected = str(name)
            self.show_feature()

    def action_select_feature(self) -> None:
        self.table.focus()
        if self.table.row_count:
            row_key, _ = self.table.coordinate_to_cell_key(self.table.cursor_coordinate)
            if row_key.value is not None:
                self.selected = str(row_key.value)
                self.show_feature()

    # --- actions -------------------------------------------------------------------------
    def action_recheck(self) -> None:
        self._check_now(record=True)

    def action_cycle_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(self.windows)
        self.notify(f"drift over {self.window_label}", title="Drift")
        self._check_now(record=False)

    def action_monitor_round(self) -> None:
        if self.wb.monitor.busy:
            self.notify("a monitor round is already running", severity="warning", title="Monitor")
            return
        cfg = self.project.config.monitor
        version = fmt_version(self.result.version) if self.result else "production"
        change = (
            f"check {version} over {self.project.config.drift.window}; when {cfg.alert_features} "
            f"feature(s) alert or the {self.project.config.metric} gets worse than its holdout "
            "value by more than the allowed worsening, retrain and register "
            "a candidate"
            + (
                f" (a canary on {cfg.canary_traffic:g}% if a server runs)"
                if cfg.canary_traffic
                else ""
            )
        )

        def confirmed(answer: str | None) -> None:
            if answer is not None:
                self.post_message(RunMonitorRound())

        self.app.push_screen(
            ConfirmDialog("Run a monitor round now", change, "Run", require_reason=False),
            callback=confirmed,
        )

    def action_segments(self) -> None:
        from workbench_tui.segments import open_segments

        open_segments(self)
