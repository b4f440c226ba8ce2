"""Experiments: every run in a virtual table; filter, sort, mark, compare.

Below the table: the per-step curves of the cursor's run, of every marked run and of the
pinned baseline (`b`), overlaid on real axes with a legend (`k` draws the next metric); `v`
swaps the curves for the console tail of the cursor's run. A running run's curves, system
metrics and console are read again every second, in a worker. The columns (`C`: metrics,
min/max/last of a per-step metric, params) and the baseline are kept in the project
(`.workbench/tui/experiments.json`) across visits and restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.markup import escape
from textual.message import Message
from textual.widgets import Footer, Header, Input, Label
from textual.worker import get_current_worker
from workbench_tui.base import WorkbenchScreen
from workbench_tui.compare import CompareScreen
from workbench_tui.formatting import short_id
from workbench_tui.widgets.runs_table import Column, RunsTable

from workbench.store.view_prefs import ExperimentsPrefs

if TYPE_CHECKING:
    import polars as pl
    from textual.widgets import ContentSwitcher, Static
    from workbench_tui.experiments_data import RunsData
    from workbench_tui.widgets.console_tail import ConsoleTail
    from workbench_tui.widgets.curves_plot import CurvesPlot

#: Sort keys before the metric columns.
BASE_SORTS = ("start_time", "run_name", "status")


def column_label(key: str) -> str:
    """`m.auc` -> auc, `p.lr` -> lr, `s.valid_auc.min` -> valid_auc·min."""
    if key.startswith("s."):
        name, _, stat = key[2:].rpartition(".")
        return f"{name.rsplit('/', 1)[-1]}·{stat}"
    return key[2:] if key[:2] in ("m.", "p.") else key


def table_columns(keys: list[str]) -> list[Column]:
    cols = [
        Column("run_id", "run", 8),
        Column("run_name", "name", 16),
        Column("status", "status", 8),
        Column("start_time", "started", 11),
    ]
    for key in keys:
        label = column_label(key)
        numeric = not key.startswith("p.")
        cols.append(Column(key, label, max(7, min(len(label) + 1, 18)), numeric=numeric))
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
            show=False,  # the filter bar says "/ filter"; the footer has no room left at 80
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
            tooltip="Compare the marked runs (and the baseline) side by side",
        ),
        Binding(
            "b",
            "pin",
            "Pin",
            id="experiments.pin",
            tooltip="Pin the run under the cursor as the baseline (again: unpin); its curve "
            "is drawn in white dots, and it stays in every comparison",
        ),
        Binding(
            "C",
            "columns",
            "Cols",
            id="experiments.columns",
            tooltip="Choose the columns: metrics, min/max/last of a per-step metric, params "
            "(kept in the project)",
        ),
        Binding(
            "v",
            "toggle_view",
            "Log",
            id="experiments.view",
            tooltip="Show the console tail of the run under the cursor (again: the curves)",
        ),
        Binding(
            "k",
            "next_metric",
            "Metric",
            show=False,
            id="experiments.metric",
            tooltip="Draw the next per-step metric",
        ),
        Binding(
            "z",
            "zoom",
            "Zoom",
            show=False,
            id="experiments.zoom",
            tooltip="Make the curves panel taller (again: back)",
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
        def __init__(self, data: RunsData, prefs: ExperimentsPrefs | None) -> None:
            super().__init__()
            self.data = data
            self.prefs = prefs

    class Viewed(Message):
        def __init__(self, seq: int, view: pl.DataFrame, cursor: int) -> None:
            super().__init__()
            self.seq = seq
            self.view = view
            self.cursor = cursor

    def __init__(self) -> None:
        super().__init__()
        self.frame: pl.DataFrame | None = None
        self.view: pl.DataFrame | None = None
        self.sort_keys: list[str] = list(BASE_SORTS)
        self.sort_index = 0
        self.descending = True
        self.filter_text = ""
        self.columns: list[Column] = []
        self.prefs: ExperimentsPrefs | None = None
        self.stepped: list[str] = []
        self.status: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self._view_seq = 0

    @property
    def baseline(self) -> str | None:
        return None if self.prefs is None else self.prefs.baseline

    def compose(self) -> ComposeResult:
        from workbench_tui.widgets.run_detail import RunDetail

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
        self.detail = RunDetail(id="detail")
        yield self.detail
        # ctrl+p still opens the palette (the help lists it): its room is the screen's keys'
        yield Footer(compact=True, show_command_palette=False)

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        self._load(self.prefs)

    @work(thread=True, exclusive=True, group="experiments-load", exit_on_error=False)
    def _load(self, prefs: ExperimentsPrefs | None) -> None:
        from workbench_tui.experiments_data import load_runs_data

        from workbench.store import view_prefs

        if prefs is None:  # the first load reads what was chosen before
            prefs = view_prefs.load(self.project)
        with self.wb.database() as db:
            data = load_runs_data(db, prefs.columns)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(data, prefs))

    def on_experiments_screen_loaded(self, message: Loaded) -> None:
        from workbench_tui.loaders import key_metrics

        if self.prefs is None:
            self.prefs = message.prefs
            self.table.baseline = self.baseline
        self.frame = frame = message.data.frame
        self.stepped = message.data.stepped
        ids = frame.get_column("run_id").to_list()
        self.status = dict(zip(ids, (str(s).upper() for s in frame["status"]), strict=True))
        self.names = {
            r: n or short_id(r) for r, n in zip(ids, frame["run_name"].to_list(), strict=True)
        }
        defaults = key_metrics(frame.columns, self.project.config.metric)
        chosen = None if self.prefs is None else self.prefs.columns
        shown = defaults if chosen is None else [c for c in chosen if c in frame.columns]
        current = self.sort_key
        self.sort_keys = [*BASE_SORTS, *(c for c in shown if not c.startswith("p."))]
        self.sort_index = self.sort_keys.index(current) if current in self.sort_keys else 0
        self.columns = table_columns(shown)
        self._refresh_view()
        self.detail.set_runs(self.status, self.names)

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
        if self.baseline and self.baseline in self.names:
            text += f" · ◆ {escape(self.names[self.baseline])}"
        self.count.update(text)

    # --- the selected run ----------------------------------------------------------------
    def on_runs_table_cursor_moved(self, message: RunsTable.CursorMoved) -> None:
        self._follow(message.row)

    def _follow(self, row: dict[str, Any] | None = None, *, keep_row: bool = False) -> None:
        row = self.detail.row if keep_row else row
        self.detail.follow(row, list(self.table.marked), self.baseline)

    # --- the detail panel's parts (for tests and the keys) -------------------------------
    @property
    def curves(self) -> CurvesPlot:
        return self.detail.curves

    @property
    def console(self) -> ConsoleTail:
        return self.detail.console

    @property
    def legend(self) -> Static:
        return self.detail.legend

    @property
    def params(self) -> Static:
        return self.detail.params

    @property
    def switcher(self) -> ContentSwitcher:
        return self.detail.switcher

    def action_next_metric(self) -> None:
        if not self.detail.next_metric():
            self.notify("no per-step metrics logged for these runs", severity="warning")

    def action_toggle_view(self) -> None:
        self.detail.toggle_view()

    def action_zoom(self) -> None:
        self.detail.zoom()

    # --- baseline and columns ------------------------------------------------------------
    def action_pin(self) -> None:
        run_id = self.table.cursor_run_id
        if run_id is None or self.prefs is None:
            return
        unpin = self.prefs.baseline == run_id
        self.prefs.baseline = None if unpin else run_id
        self.table.baseline = self.prefs.baseline
        self.table.refresh()
        self._save_prefs()
        self._show_count()
        self._follow(keep_row=True)

    def action_columns(self) -> None:
        from workbench_tui.experiments_data import column_options
        from workbench_tui.widgets.column_chooser import ColumnChooser

        if self.frame is None or self.prefs is None:
            return
        options = column_options(self.frame, self.stepped, self.project.config.metric)
        current = [c.key for c in self.columns[4:]]
        self.app.push_screen(ColumnChooser(options, current), self._columns_chosen)

    def _columns_chosen(self, chosen: list[str] | None) -> None:
        from workbench_tui.widgets.column_chooser import DEFAULTS

        if chosen is None or self.prefs is None:
            return
        self.prefs.columns = None if chosen == [DEFAULTS] else chosen
        self._save_prefs()
        self._load(self.prefs)  # min/max/last columns are read from the metrics log

    def _save_prefs(self) -> None:
        if self.prefs is None or getattr(self.app, "read_only", False):
            return  # read-only: the choice holds for this session only
        prefs = self.prefs
        columns = None if prefs.columns is None else list(prefs.columns)
        self._write_prefs(ExperimentsPrefs(columns, prefs.baseline, dict(prefs.extra)))

    @work(thread=True, group="experiments-prefs", exit_on_error=False)
    def _write_prefs(self, prefs: ExperimentsPrefs) -> None:
        from workbench.store import view_prefs

        view_prefs.save(self.project, prefs)

    # --- marks, filter, sort, compare ----------------------------------------------------
    def on_runs_table_marks_changed(self, message: RunsTable.MarksChanged) -> None:
        self._show_count()
        self._follow(keep_row=True)

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
        known = set(self.status)
        marked = [run_id for run_id in self.table.marked if run_id in known]
        baseline = self.baseline if self.baseline in known else None
        runs = list(dict.fromkeys([*([baseline] if baseline else []), *marked]))
        if len(runs) < 2 or self.frame is None:
            self.notify(
                "mark at least two runs with space (or one and a baseline: b), then press c",
                severity="warning",
            )
            return
        self.app.push_screen(CompareScreen(self.frame, runs, baseline=baseline))
