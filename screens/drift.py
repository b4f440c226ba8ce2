"""Drift: the served version's features sorted by drift score, with a colour per status; the
selected feature's reference and current histograms side by side, its score over time (from
the drift log), prediction drift and model performance, and the TUI's monitor.

`r` re-runs the check (and records it in the drift log), `w` cycles the window (1 h, 24 h,
7 d, the last 1,000 predictions), `m` runs one monitor round now (asks first: it can
retrain), arrows and enter select a feature.

Never blocking the event loop: `drift_checks.check` runs in an exclusive thread worker, with
a progress bar fed by its `on_progress`; the screen re-checks every REFRESH_S while shown
(those checks are not recorded: looking at the screen writes nothing). A check that fails
(no production version, no reference profile) says so in place.

The monitor (`[monitor] enabled = true`) is the app's: `monitor_loop` runs
`monitor.run_forever` in the app's thread worker, started after the first paint; its
outcomes come back as `MonitorReport` messages, are kept on the app (`monitor_outcomes`, the
last MONITOR_KEEP) and shown on this screen's monitor line.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events as textual_events
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.markup import escape
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Sparkline, Static
from textual.worker import Worker, get_current_worker

from screens.base import WorkbenchScreen, describe_error
from screens.dialogs import ConfirmDialog
from screens.formatting import fmt_version

if TYPE_CHECKING:
    from screens.app import WorkbenchApp
    from workbench.drift import FeatureDrift
    from workbench.drift_checks import CheckResult
    from workbench.monitor import MonitorOutcome

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
#: Monitor outcomes the app keeps.
MONITOR_KEEP = 20
#: Times (check time, seconds taken, monitor outcomes) are shown; a deterministic screenshot
#: turns this off.
SHOW_TIMES = True
#: Bin labels of the categories the reference did not list, pooled tails, and the rest.
UNSEEN_LABELS = {"__unseen__": "unseen", "__other__": "other", "__rest__": "rest"}
STATUS_LABEL = {"alert": "alert", "warn": "warn", "ok": "ok", "no_data": "n/a"}
#: The feature column's width when the table is narrow (longer names end in "…").
NARROW_FEATURE_W = 18
OTHER_COLUMNS_W = 6 + 4 + 7 + 7 + 4 + 2 * 6 + 1
TEST_LABEL = {"wasserstein": "wass"}
PREDICTION_FEATURE = "__prediction__"
METRIC_FEATURE = "__metric__"
NO_FEATURE = "select a feature (arrows, enter) to see its histograms"


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A score or statistic in a few significant digits; '-' when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fmt_pct_share(share: float) -> str:
    """A proportion (0..1) in at most 4 characters: '12%', '<1%', '0%'."""
    if share <= 0:
        return "0%"
    if share < 0.005:
        return "<1%"
    return f"{share * 100:.0f}%"


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
            return when
    when = when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if when.date() == datetime.now(UTC).date():
        return when.strftime("%H:%M:%S UTC")
    return when.strftime("%Y-%m-%d %H:%M UTC")


def status_level(status: str) -> str:
    return {"alert": "alert", "warn": "warn", "ok": "ok"}.get(status, "muted")


def histogram_rows(
    labels: Sequence[str],
    ref: Sequence[float],
    cur: Sequence[float],
    categorical: bool,
    rows: int,
) -> list[tuple[str, float, float]]:
    """(label, reference share, current share) per drawn row, at most `rows` of them.

    Numeric bins next to each other are merged (labelled by the lower edge of the first);
    categories keep the largest (on either side) and pool the rest in one row, and a bin of
    unseen categories with current rows always stays."""
    n = min(len(labels), len(ref), len(cur))
    items = [(str(labels[i]), float(ref[i]), float(cur[i])) for i in range(n)]
    rows = max(1, rows)
    if n <= rows:
        return items
    if not categorical:
        group = math.ceil(n / rows)
        merged = []
        for start in range(0, n, group):
            part = items[start : start + group]
            merged.append((part[0][0], sum(p[1] for p in part), sum(p[2] for p in part)))
        return merged
    keep = rows - 1
    forced = {i for i, (label, _, c) in enumerate(items) if label in UNSEEN_LABELS and c > 0}
    ranked = sorted(
        (i for i in range(n) if i not in forced), key=lambda i: -max(items[i][1], items[i][2])
    )
    chosen = sorted(forced | set(ranked[: max(0, keep - len(forced))]))
    rest = [items[i] for i in range(n) if i not in chosen]
    out = [items[i] for i in chosen]
    if rest:
        out.append((f"+{len(rest)} more", sum(r[1] for r in rest), sum(r[2] for r in rest)))
    return out


class MonitorReport(Message):
    """From the monitor's worker to the app: a round started, a step of a retraining, or an
    outcome (`outcome`, or `error` when the round could not run at all)."""

    def __init__(
        self,
        kind: str,
        outcome: MonitorOutcome | None = None,
        text: str = "",
        manual: bool = False,
    ) -> None:
        super().__init__()
        self.kind = kind  # "started" | "step" | "outcome" | "stopped"
        self.outcome = outcome
        self.text = text
        self.manual = manual


class DriftText(Static):
    """A Static whose texts take their colours from the theme, through component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "drift-text--alert",
        "drift-text--warn",
        "drift-text--ok",
        "drift-text--muted",
        "drift-text--key",
    }

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"drift-text--{level}", partial=True)


class FeatureTable(DataTable[Any]):
    """The features, one row each, the status coloured from the theme."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "feature-table--alert",
        "feature-table--warn",
        "feature-table--ok",
        "feature-table--muted",
    }

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"feature-table--{level}", partial=True)


class DriftHistogram(Widget):
    """The reference and current distributions of one feature, as horizontal bars side by
    side: one row per bin (numeric bins merged, or the largest categories, to fit), both
    scaled to the same largest share so they compare; unseen categories in their own
    colour."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "drift-hist--reference",
        "drift-hist--current",
        "drift-hist--label",
        "drift-hist--unseen",
        "drift-hist--legend",
    }
    BLOCKS = " ▏▎▍▌▋▊▉█"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.labels: list[str] = []
        self.ref: list[float] = []
        self.cur: list[float] = []
        self.categorical = False
        #: Lines the widgets below it need (set by the screen).
        self.reserve = 5
        #: The rows drawn at the last render (label, reference, current), for tests.
        self.drawn: list[tuple[str, float, float]] = []

    def set_data(
        self, labels: Sequence[str], ref: Sequence[float], cur: Sequence[float], categorical: bool
    ) -> None:
        self.labels, self.ref, self.cur = list(labels), list(ref), list(cur)
        self.categorical = categorical
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As tall as its bins and the legend, within what its parent has left after
        `reserve` lines for the widgets below it (bins are merged to fit)."""
        room = max(2, container.height - self.reserve)
        rows = len(histogram_rows(self.labels, self.ref, self.cur, self.categorical, room - 1))
        return max(3, min(rows + 1, room))

    def clear(self) -> None:
        self.set_data([], [], [], False)

    def _bar(self, share: float, top: float, width: int) -> str:
        if width <= 0 or top <= 0 or share <= 0:
            return ""
        eighths = max(1, round(share / top * width * 8))
        full, part = divmod(min(eighths, width * 8), 8)
        return "█" * full + (self.BLOCKS[part] if part else "")

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        self.drawn = []
        if not width or height < 2 or not self.labels:
            return Text("")
        rows = histogram_rows(self.labels, self.ref, self.cur, self.categorical, height - 1)
        self.drawn = rows
        style = self.get_component_rich_style
        ref_style = style("drift-hist--reference", partial=True)
        cur_style = style("drift-hist--current", partial=True)
        label_style = style("drift-hist--label", partial=True)
        unseen_style = style("drift-hist--unseen", partial=True)
        legend_style = style("drift-hist--legend", partial=True)
        names = [UNSEEN_LABELS.get(label, label) for label, _, _ in rows]
        label_w = max(3, min(max(len(n) for n in names), max(6, width // 4)))
        bar_w = max(1, (width - label_w - 2) // 2)
        pct = bar_w >= 12  # room for the share after the bar
        bar_len = bar_w - 5 if pct else bar_w
        top = max((max(r, c) for _, r, c in rows), default=0.0)
        text = Text(no_wrap=True, overflow="crop")
        text.append(" " * (label_w + 1))
        text.append("reference"[:bar_w].ljust(bar_w), style=ref_style + legend_style)
        text.append(" ")
        text.append("current"[:bar_w], style=cur_style + legend_style)
        for (label, r, c), name in zip(rows, names, strict=True):
            text.append("\n")
            shown = name if len(name) <= label_w else name[: label_w - 1] + "…"
            unseen = label in UNSEEN_LABELS and label != "__rest__"
            text.append(shown.rjust(label_w), style=unseen_style if unseen else label_style)
            text.append(" ")
            for share, bar_style, last in ((r, ref_style, False), (c, cur_style, True)):
                bar = self._bar(share, top, bar_len)
                cell = bar + (" " + fmt_pct_share(share) if pct else "")
                text.append(bar, style=unseen_style if unseen and last and share else bar_style)
                text.append(cell[len(bar) :], style=label_style)
                if not last:
                    text.append(" " * max(0, bar_w - len(cell)) + " ")
        return text


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
            with Vertical(id="drift-right"):
                self.placeholder = Static("", id="drift-placeholder")
                yield self.placeholder
                self.hist = DriftHistogram(id="drift-hist")
                yield self.hist
                self.unseen_line = DriftText("", id="drift-unseen")
                yield self.unseen_line
                self.history_caption = Label("", id="drift-history-caption")
                yield self.history_caption
                self.sparkline = Sparkline([], id="drift-sparkline")
                yield self.sparkline
                self.detail_line = DriftText("", id="drift-detail")
                yield self.detail_line
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
        self._set_columns(None)
        self.summary_line.update(Text(f"checking drift over {self.window_label}…", style="dim"))
        self._show_detail_placeholder(NO_FEATURE)
        self.prediction_panel.update(Text("-", style="dim"))
        self.performance_panel.update(Text("-", style="dim"))
        self.show_monitor()
        # Colours are baked into the texts: draw them again in a new theme's colours.
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.call_after_refresh(self.show)
        self.call_after_refresh(self.show_monitor)

    def _set_columns(self, feature_width: int | None) -> None:
        """(Re)create the columns: the feature column as wide as the names, when it fits."""
        self.table.clear(columns=True)
        for name, width in (
            ("feature", feature_width),
            ("status", 6),
            ("test", 4),
            ("score", 7),
            ("psi", 7),
            ("miss", 4),
        ):
            self.table.add_column(name, key=name, width=width)

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
        self.show_monitor()
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
            from workbench import drift_checks

            with self.wb.database() as db:  # the app's shared connection
                result = drift_checks.check(
                    self.project,
                    window=window,
                    last_n=last_n,
                    db=db,
                    on_progress=progress,
                    record=record,
                )
                history = self._history(db, result.model)
        except Exception as exc:
            message = self.Checked(token, None, error=describe_error(exc))
        else:
            message = self.Checked(token, result, history, recorded=record)
        if not worker.is_cancelled:
            self.post_message(message)

    @staticmethod
    def _history(db: Any, model: str) -> dict[str, list[tuple[datetime, float | None, str]]]:
        """Every feature's score over time from the drift log (its newest HISTORY_POINTS)."""
        rows = db.rows(
            "SELECT feature, ts, score, status FROM drift WHERE model = ? "
            "QUALIFY row_number() OVER (PARTITION BY feature ORDER BY ts DESC) <= ? "
            "ORDER BY feature, ts",
            [model, HISTORY_POINTS],
        )
        out: dict[str, list[tuple[datetime, float | None, str]]] = {}
        for row in rows:
            out.setdefault(row["feature"], []).append((row["ts"], row["score"], row["status"]))
        return out

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
        table = self.table
        style = table.style_of
        features = result.report.features
        keep = self.selected
        longest = max((len(fd.feature) for fd in features), default=7)
        # the other columns and every column's padding take OTHER_COLUMNS_W
        fits = table.size.width >= longest + OTHER_COLUMNS_W
        width = longest if fits else min(longest, NARROW_FEATURE_W)
        self._set_columns(max(7, width))
        for fd in features:
            level = status_level(fd.status)
            missing = fd.missing + fd.nonfinite
            name = fd.feature if len(fd.feature) <= width else fd.feature[: width - 1] + "…"
            table.add_row(
                Text(name),
                Text(STATUS_LABEL.get(fd.status, fd.status), style=style(level)),
                Text(TEST_LABEL.get(fd.test, fd.test)),
                Text(fmt_num(fd.score), justify="right", style=style(level)),
                Text(fmt_num(fd.stats.get("psi")), justify="right"),
                Text(f"{missing:,}" if missing else "0", justify="right"),
                key=fd.feature,
            )
        names = [fd.feature for fd in features]
        if keep not in names:
            keep = names[0] if names else None
        self.selected = keep
        if keep is not None:
            table.move_cursor(row=names.index(keep), animate=False)

    def feature(self, name: str | None = None) -> FeatureDrift | None:
        name = self.selected if name is None else name
        if self.result is None or name is None:
            return None
        return next((fd for fd in self.result.report.features if fd.feature == name), None)

    def _show_detail_placeholder(self, text: str) -> None:
        self.placeholder.update(Text(text))
        self.placeholder.display = True
        for widget in self._detail_widgets:
            widget.display = False
        self.query_one("#drift-right", Vertical).border_title = "feature"

    @property
    def _detail_widgets(self) -> tuple[Widget, ...]:
        return (
            self.hist,
            self.unseen_line,
            self.history_caption,
            self.sparkline,
            self.detail_line,
        )

    def show_feature(self) -> None:
        fd = self.feature()
        if fd is None:
            self.hist.clear()
            self._show_detail_placeholder(NO_FEATURE)
            return
        self.placeholder.display = False
        for widget in self._detail_widgets:
            widget.display = True
        right = self.query_one("#drift-right", Vertical)
        right.border_title = escape(f"{fd.feature} · {fd.kind}")
        right.border_subtitle = escape(f"{fd.test} {fmt_num(fd.score)}")
        self.hist.set_data(fd.hist_labels, fd.ref_hist, fd.cur_hist, fd.kind == "categorical")
        style = self.unseen_line.style_of
        if fd.unseen:
            total = sum(fd.unseen.values())
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"unseen {total:,}: ", style=style("warn"))
            line.append(", ".join(f"{k} {v:,}" for k, v in fd.unseen.items()))
            self.unseen_line.update(line)
            self.unseen_line.display = True
        else:
            self.unseen_line.display = False
        # caption 1, sparkline 2 at least, detail 2, and the unseen line when shown
        self.hist.reserve = 5 + (1 if fd.unseen else 0)
        points = [(ts, score) for ts, score, _ in self.history.get(fd.feature, [])]
        series = [float(s) for _, s in points if s is not None and math.isfinite(s)]
        if not self._recorded and math.isfinite(fd.score):
            series.append(float(fd.score))  # this check, not in the log
        checks = len(series)
        caption = f"{fd.test} over time · {checks} check{'s' if checks != 1 else ''}"
        if fd.test in ("ks", "chi2"):
            caption += f" · p-value; alert below {fmt_num(fd.alert)}"
        else:
            caption += f" · alert at {fmt_num(fd.alert)}"
        self.history_caption.update(Text(caption))
        self.series = series
        self.sparkline.data = series if len(series) >= 2 else []  # one point draws a wall
        detail = Text(no_wrap=True, overflow="ellipsis")
        key = self.detail_line.style_of("key")
        detail.append(f"{fd.test} ", style=key)
        level = status_level(fd.status)
        detail.append(fmt_num(fd.score), style=self.detail_line.style_of(level))
        detail.append(
            f" {STATUS_LABEL.get(fd.status, fd.status)}", style=self.detail_line.style_of(level)
        )
        stats = fd.stats
        shown = [
            k
            for k in ("psi", "js", "ks", "wasserstein", "chi2_p")
            if k != fd.test and stats.get(k) is not None
        ]
        for name in shown:
            detail.append(f" · {name} ", style=key)
            detail.append(fmt_num(stats.get(name)))
        detail.append("\n")
        if fd.ref_mean is not None and fd.cur_mean is not None:
            detail.append("mean ", style=key)
            detail.append(f"{fmt_num(fd.ref_mean, 4)} → {fmt_num(fd.cur_mean, 4)} · ")
        detail.append("rows ", style=key)
        detail.append(f"{fd.n_ref:,} ref / {fd.n_cur:,} now")
        if fd.missing or fd.nonfinite:
            detail.append(" · missing ", style=key)
            detail.append(f"{fd.missing + fd.nonfinite:,}")
        self.detail_line.update(detail)

    def _show_prediction(self, result: CheckResult) -> None:
        panel = self.prediction_panel
        style = panel.style_of
        pred = result.report.prediction
        if pred is None:
            panel.update(Text("no predictions in the window", style=style("muted")))
            return
        level = status_level(pred.status)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(STATUS_LABEL.get(pred.status, pred.status), style=style(level))
        text.append(f" · {pred.test} ", style=style("key"))
        text.append(fmt_num(pred.score), style=style(level))
        text.append(f" · n {pred.n_cur:,}", style=style("key"))
        text.append("\nmean ", style=style("key"))
        text.append(f"{fmt_num(pred.ref_mean, 4)} ref → {fmt_num(pred.cur_mean, 4)} now")
        panel.update(text)

    def _show_performance(self, result: CheckResult) -> None:
        panel = self.performance_panel
        style = panel.style_of
        metric = result.metric or {}
        name = str(metric.get("name") or "metric")
        labeled = int(metric.get("labeled") or 0)
        reference = metric.get("reference")
        text = Text(no_wrap=True, overflow="ellipsis")
        if not metric or labeled == 0:
            text.append("no labels yet", style=style("muted"))
            text.append(f"\n{name} holdout ", style=style("key"))
            text.append(fmt_num(reference, 4))
            panel.update(text)
            return
        current = metric.get("current")
        if current is None:
            text.append(f"{labeled:,} labeled, one class only: no {name} yet", style=style("muted"))
        else:
            drop = metric.get("drop")
            limit = self.project.config.monitor.metric_drop
            level = (
                "ok" if drop is None or drop < limit / 2 else "warn" if drop < limit else "alert"
            )
            text.append(f"{name} ", style=style("key"))
            text.append(f"{current:.4f}", style=style(level))
            text.append(" now · ", style=style("key"))
            text.append(f"{labeled:,} labeled")
            if drop is not None:
                text.append(" · drop ", style=style("key"))
                text.append(f"{drop:+.4f}", style=style(level))
        text.append("\nholdout ", style=style("key"))
        text.append(fmt_num(reference, 4))
        panel.update(text)

    def show_monitor(self) -> None:
        """The monitor line: off, or its schedule, a round under way and the latest outcome."""
        app = self.wb
        style = self.monitor_line.style_of
        cfg = self.project.config.monitor
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("monitor ", style=style("key"))
        outcomes: Sequence[MonitorOutcome] = getattr(app, "monitor_outcomes", ())
        busy = str(getattr(app, "monitor_busy", "") or "")
        if cfg.enabled:
            line.append(f"every {cfg.interval_s:g} s")
        else:
            line.append("off", style=style("muted"))
            if not outcomes and not busy:
                line.append(" ([monitor] enabled = true runs it here) · m runs one round now",
                            style=style("muted"))  # fmt: skip
        if busy:
            line.append(f" · {busy}", style=style("warn"))
        if outcomes:
            last = outcomes[-1]
            fired = sum(1 for o in outcomes if o.fired)
            line.append(f" · {len(outcomes)} round(s), {fired} fired", style=style("muted"))
            when = fmt_clock(last.at)
            line.append(" · last" + (f" {when}" if when else "") + ": ", style=style("key"))
            level = "alert" if last.error else "warn" if last.fired else "ok"
            line.append(outcome_text(last), style=style(level))
        self.monitor_line.update(line)

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
        app = self.wb
        if getattr(app, "monitor_busy", ""):
            self.notify("a monitor round is already running", severity="warning", title="Monitor")
            return
        cfg = self.project.config.monitor
        version = fmt_version(self.result.version) if self.result else "production"
        change = (
            f"check {version} over {self.project.config.drift.window}; when {cfg.alert_features} "
            f"feature(s) alert or the metric drops {cfg.metric_drop:g}, retrain and register "
            "a candidate"
            + (
                f" (a canary on {cfg.canary_traffic:g}% if a server runs)"
                if cfg.canary_traffic
                else ""
            )
        )

        def confirmed(answer: str | None) -> None:
            if answer is not None:
                app.run_monitor_round()

        self.app.push_screen(
            ConfirmDialog("Run a monitor round now", change, "Run", require_reason=False),
            callback=confirmed,
        )

    def monitor_changed(self, recorded: bool) -> None:
        """Called by the app when the monitor reported; a recorded check re-reads history."""
        self.show_monitor()
        if recorded and self._visible() and not self.checking:
            self._check_now(record=False)


# --- the monitor, run by the app ------------------------------------------------------------


def outcome_text(outcome: MonitorOutcome) -> str:
    """One line for a monitor outcome."""
    if outcome.error:
        return f"{outcome.reason}: {outcome.error}" if outcome.reason else outcome.error
    text = outcome.reason
    if outcome.acted and outcome.candidate is not None:
        text += f" → retrained v{outcome.candidate}"
        if outcome.canary:
            text += " (canary)"
    return text


def monitor_loop(app: WorkbenchApp, stop: threading.Event) -> None:
    """The body of the app's monitor worker: `monitor.run_forever` until `stop` is set (or
    the worker is cancelled); an unexpected error is reported and the loop goes on after
    the interval."""
    from workbench import monitor
    from workbench.parquet_log import utcnow

    worker = get_current_worker()
    project = app.project

    def should_stop() -> bool:
        return stop.is_set() or worker.is_cancelled

    def on_outcome(outcome: MonitorOutcome) -> None:
        if not should_stop():
            app.post_message(MonitorReport("outcome", outcome))

    interval = project.config.monitor.interval_s
    while not should_stop():
        try:
            monitor.run_forever(
                project, interval_s=interval, on_outcome=on_outcome, should_stop=should_stop
            )
        except Exception as exc:
            at = utcnow().isoformat(timespec="seconds")
            failed = monitor.MonitorOutcome(
                at, False, False, "monitor round failed", error=describe_error(exc)
            )
            on_outcome(failed)
            stop.wait(interval)


def monitor_round(app: WorkbenchApp) -> None:
    """The body of the app's one-round worker (`m`): `check_once`, which may retrain."""
    from workbench import monitor
    from workbench.parquet_log import utcnow

    post = app.post_message

    def on_step(name: str, status: str, detail: str) -> None:
        post(MonitorReport("step", text=f"{name} {status}" + (f": {detail}" if detail else "")))

    try:
        outcome = monitor.check_once(
            app.project, on_step=on_step, should_stop=app._stop_monitor.is_set
        )
    except Exception as exc:
        at = utcnow().isoformat(timespec="seconds")
        outcome = monitor.MonitorOutcome(
            at, False, False, "monitor round failed", error=describe_error(exc)
        )
    post(MonitorReport("outcome", outcome, manual=True))


def monitor_reported(app: WorkbenchApp, message: MonitorReport) -> None:
    """The app's handler: keep outcomes, toast what matters, update the Drift screen."""
    from collections import deque

    outcomes = getattr(app, "monitor_outcomes", None)
    if outcomes is None:
        outcomes = app.monitor_outcomes = deque(maxlen=MONITOR_KEEP)
    recorded = False
    if message.kind == "started":
        app.monitor_busy = "round running…"
    elif message.kind == "step":
        app.monitor_busy = f"round: {message.text}"
    elif message.kind == "outcome" and message.outcome is not None:
        outcome = message.outcome
        if message.manual:
            app.monitor_busy = ""
        outcomes.append(outcome)
        recorded = bool(outcome.check)
        text = outcome_text(outcome)
        if outcome.error:
            app.notify(text, title="Monitor", severity="error", markup=False)
        elif outcome.acted:
            app.notify(text, title="Monitor: retrained", severity="warning", markup=False)
            app.request_sync(force=False)
            app.data_changed()
        elif outcome.fired:
            app.notify(text, title="Monitor: drift", severity="warning", markup=False)
        elif message.manual:
            app.notify(text, title="Monitor", markup=False)
    screen = app.screen
    for candidate in (screen, *app.screen_stack):
        if isinstance(candidate, DriftScreen):
            candidate.monitor_changed(recorded)
            break
