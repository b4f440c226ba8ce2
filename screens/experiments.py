"""Experiments: every run in a virtual table; filter, sort, mark, compare; the selected run's
metric curve, its latest system metrics (CPU, memory, GPU, GPU-seconds: from the runs frame
already loaded) and key params below."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import Footer, Header, Input, Label, Sparkline, Static
from textual.worker import get_current_worker
from workbench_tui.base import WorkbenchScreen
from workbench_tui.compare import CompareScreen
from workbench_tui.formatting import fmt_value, short_id
from workbench_tui.widgets.runs_table import Column, RunsTable

if TYPE_CHECKING:
    import polars as pl
    from workbench_tui.loaders import Curve

#: Sort keys before the metric columns.
BASE_SORTS = ("start_time", "run_name", "status")
#: Params that say little in a summary.
_DULL_PARAMS = {"p.data_digest", "p.features", "p.rows_train", "p.rows_valid", "p.rows_holdout"}


def table_columns(metric_cols: list[str]) -> list[Column]:
    cols = [
        Column("run_id", "run", 8),
        Column("run_name", "name", 16),
        Column("status", "status", 8),
        Column("start_time", "started", 11),
    ]
    for key in metric_cols:
        label = key.removeprefix("m.")
        cols.append(Column(key, label, max(7, min(len(label) + 1, 18)), numeric=True))
    return cols


class ExperimentsScreen(WorkbenchScreen):
    MODE_TITLE = "Experiments"
    CSS_PATH = "experiments.tcss"
    AUTO_FOCUS = "RunsTable"
    LEAVE_INPUT_ACTION = "focus_table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "filter",
            "Filter",
            id="experiments.filter",
            tooltip="Filter runs: words, key=value, auc>0.9 (escape returns to the table)",
        ),
        Binding(
            "s",
            "cycle_sort",
            "Sort",
            id="experiments.sort",
            tooltip="Sort by the next column: start time, name, status, then each metric",
        ),
        Binding(
            "r,S",
            "reverse_sort",
            "Reverse",
            show=False,
            id="experiments.reverse",
            tooltip="Reverse the sort order",
        ),
        Binding(
            "c",
            "compare",
            "Compare",
            id="experiments.compare",
            tooltip="Compare the marked runs side by side (mark with space)",
        ),
        Binding(
            "escape",
            "focus_table",
            "Leave filter",
            id="experiments.focus_table",
            tooltip="Leave the filter for the runs table (the filter stays on)",
        ),
        Binding(
            "u",
            "clear_marks",
            "Unmark all",
            show=False,
            id="experiments.unmark",
            tooltip="Clear every mark",
        ),
    ]

    class Loaded(Message):
        def __init__(self, frame: pl.DataFrame) -> None:
            super().__init__()
            self.frame = frame

    class Viewed(Message):
        def __init__(self, seq: int, view: pl.DataFrame, cursor: int) -> None:
            super().__init__()
            self.seq = seq
            self.view = view
            self.cursor = cursor

    class CurveLoaded(Message):
        def __init__(self, curve: Curve) -> None:
            super().__init__()
            self.curve = curve

    def __init__(self) -> None:
        super().__init__()
        self.frame: pl.DataFrame | None = None
        self.view: pl.DataFrame | None = None
        self.sort_keys: list[str] = list(BASE_SORTS)
        self.sort_index = 0
        self.descending = True
        self.filter_text = ""
        self.columns: list[Column] = []
        self._view_seq = 0
        self._curve_run: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filter-bar"):
            self.filter_input = Input(
                placeholder="/ filter: words, key=value, auc>0.9",
                compact=True,
                id="filter",
            )
            yield self.filter_input
            self.count = Label("loading…", id="count")
            yield self.count
        self.table = RunsTable(empty_text="loading runs…", id="runs")
        yield self.table
        with Vertical(id="detail") as detail:
            self.detail = detail
            detail.border_title = "run"
            with Horizontal():
                with Vertical(id="curve-box"):
                    self.curve_label = Label("", id="curve-label")
                    yield self.curve_label
                    self.sparkline = Sparkline([], id="curve")
                    yield self.sparkline
                self.params = Static("", id="params")
                yield self.params
        yield Footer(compact=True)

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="experiments-load", exit_on_error=False)
    def _load(self) -> None:
        from workbench_tui import loaders

        with self.wb.database() as db:
            frame = loaders.load_runs(db)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(frame))

    def on_experiments_screen_loaded(self, message: Loaded) -> None:
        from workbench_tui.loaders import key_metrics

        self.frame = message.frame
        metric_cols = key_metrics(self.frame.columns, self.project.config.metric)
        current = self.sort_key
        self.sort_keys = [*BASE_SORTS, *metric_cols]
        self.sort_index = self.sort_keys.index(current) if current in self.sort_keys else 0
        self.columns = table_columns(metric_cols)
        self._refresh_view()

    @property
    def sort_key(self) -> str:
        return self.sort_keys[self.sort_index] if self.sort_keys else "start_time"

    def _refresh_view(self) -> None:
        if self.frame is None:
            return
        self._view_seq += 1
        self._make_view(
            self._view_seq,
            self.frame,
            self.sort_key,
            self.descending,
            self.filter_text,
            self.table.cursor_run_id,
        )

    @work(thread=True, exclusive=True, group="experiments-view", exit_on_error=False)
    def _make_view(
        self,
        seq: int,
        frame: pl.DataFrame,
        sort_key: str,
        descending: bool,
        text: str,
        keep: str | None,
    ) -> None:
        from workbench_tui import loaders

        view, cursor = loaders.view_runs(frame, sort_key, descending, text, keep)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Viewed(seq, view, cursor))

    def on_experiments_screen_viewed(self, message: Viewed) -> None:
        if message.seq != self._view_seq or self.frame is None:
            return  # a newer filter or sort is on its way
        self.view = message.view
        self.table.empty_text = (
            "no run matches the filter"
            if self.frame.height
            else "no runs yet — press t to train a first model"
        )
        self.table.show(
            message.view,
            self.columns,
            sort_key=self.sort_key,
            descending=self.descending,
            cursor=message.cursor,
        )
        self._show_count()

    def _show_count(self) -> None:
        total = 0 if self.frame is None else self.frame.height
        shown = 0 if self.view is None else self.view.height
        marked = len(self.table.marked)
        text = f"{shown:,} of {total:,} runs"
        if marked:
            text += f" · {marked} marked"
        self.count.update(text)

    # --- the selected run ----------------------------------------------------------------
    def on_runs_table_cursor_moved(self, message: RunsTable.CursorMoved) -> None:
        row = message.row
        if row is None:
            self.detail.border_title = "run"
            self.curve_label.update("")
            self.sparkline.data = []
            self.params.update("")
            self._curve_run = None
            return
        name = row.get("run_name") or short_id(row["run_id"])
        self.detail.border_title = (
            f"{escape(name)} · {short_id(row['run_id'])} · {escape(str(row.get('status')))}"
        )
        self.params.update(self._params_text(row))
        if row["run_id"] != self._curve_run:
            self._curve_run = row["run_id"]
            self.curve_label.update("[dim]loading curve…[/]")
            self._load_curve(row["run_id"])

    def _params_text(self, row: dict[str, Any]) -> str:
        chosen = [f"p.{k}" for k in self.project.config.trainer.params]
        keys = [k for k in chosen if k in row] + sorted(
            k for k in row if k.startswith("p.") and k not in chosen and k not in _DULL_PARAMS
        )
        lines = []
        for key in keys:
            value = row.get(key)
            if value is None:
                continue
            lines.append(f"[dim]{escape(key[2:]):<16}[/] {escape(fmt_value(value))}")
        text = "\n".join(lines) or "[dim]no params[/]"
        from workbench_tui.loaders import system_usage

        metrics = {k[2:]: v for k, v in row.items() if k.startswith("m.") and v is not None}
        usage = system_usage(row["run_id"], metrics)
        return f"[dim]system[/] {escape(usage.describe())}\n{text}" if usage else text

    @work(thread=True, exclusive=True, group="experiments-curve", exit_on_error=False)
    def _load_curve(self, run_id: str) -> None:
        from workbench_tui import loaders

        with self.wb.database() as db:
            curve = loaders.load_curve(db, run_id, self.project.config.metric)
        if not get_current_worker().is_cancelled:
            self.post_message(self.CurveLoaded(curve))

    def on_experiments_screen_curve_loaded(self, message: CurveLoaded) -> None:
        curve = message.curve
        if curve.run_id != self._curve_run:
            return
        if not curve.key or not curve.values:
            self.curve_label.update("[dim]no per-step metrics logged[/]")
            self.sparkline.data = []
            return
        values = curve.values
        best = max(values) if not curve.key.endswith("logloss") else min(values)
        self.curve_label.update(
            f"[b]{escape(curve.key)}[/] per step · {len(values)} steps\n"
            f"{values[0]:.4f} → {values[-1]:.4f} · best {best:.4f}"
        )
        self.sparkline.data = values

    # --- marks, filter, sort, compare ----------------------------------------------------
    def on_runs_table_marks_changed(self, message: RunsTable.MarksChanged) -> None:
        self._show_count()

    def action_filter(self) -> None:
        self.filter_input.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is self.filter_input:
            self.filter_text = event.value
            self._refresh_view()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is self.filter_input:
            self.table.focus()

    def action_focus_table(self) -> None:
        self.table.focus()

    def action_cycle_sort(self) -> None:
        if not self.sort_keys:
            return
        self.sort_index = (self.sort_index + 1) % len(self.sort_keys)
        self.descending = self.sort_key != "run_name"
        self._refresh_view()

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self._refresh_view()

    def action_clear_marks(self) -> None:
        self.table.clear_marks()

    def action_compare(self) -> None:
        known = set() if self.frame is None else set(self.frame.get_column("run_id").to_list())
        marked = [run_id for run_id in self.table.marked if run_id in known]
        if len(marked) < 2 or self.frame is None:
            self.notify("mark at least two runs with space, then press c", severity="warning")
            return
        self.app.push_screen(CompareScreen(self.frame, marked))
