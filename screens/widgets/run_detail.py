"""RunDetail: the Experiments screen's lower panel. The per-step curves of the cursor's run, of
the marked runs and of the baseline overlaid (CurvesPlot) or the cursor's run's console tail
(ConsoleTail), and beside them the legend, the run's system metrics and its params.

The screen says which runs to show with `follow()` (and `set_runs()` after each load); the
panel reads them in a thread worker, one read at a time, and again every second while one of
them is running (its points from the MLflow store, its console as it is written)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import ContentSwitcher, Static
from workbench_tui.formatting import fmt_value, short_id
from workbench_tui.widgets.console_tail import ConsoleTail
from workbench_tui.widgets.curves_plot import Curve, CurvesPlot, assign_colours, legend

if TYPE_CHECKING:
    from workbench_tui.app_state import WorkbenchAppLike
    from workbench_tui.experiments_data import CurvesData

#: Statuses of a run whose metrics still grow.
RUNNING = ("RUNNING", "SCHEDULED")
#: Seconds between two reads of a running run's curves, system metrics and console.
LIVE_S = 1.0
#: Params that say little in a summary.
_DULL_PARAMS = {"p.data_digest", "p.features", "p.rows_train", "p.rows_valid", "p.rows_holdout"}


class RunDetail(Vertical):
    class CurvesLoaded(Message):
        def __init__(self, data: CurvesData) -> None:
            super().__init__()
            self.data = data

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.status: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.row: dict[str, Any] | None = None  # the cursor's run
        self.marked: list[str] = []
        self.baseline: str | None = None
        self.curve_key: str | None = None  # the metric drawn (None: the most telling)
        self.curve_keys: list[str] = []
        self._seq = 0
        self._busy = False
        self._again = False

    def compose(self) -> ComposeResult:
        with Horizontal():
            with ContentSwitcher(initial="curves", id="detail-view") as switcher:
                self.switcher = switcher
                self.curves = CurvesPlot(id="curves")
                yield self.curves
                self.console = ConsoleTail(id="console")
                yield self.console
            with Vertical(id="side"):
                self.legend = Static("", id="legend")
                yield self.legend
                self.params = Static("", id="params")
                yield self.params

    def on_mount(self) -> None:
        self.border_title = "run"
        self.set_interval(LIVE_S, self._live_tick)

    @property
    def wb(self) -> WorkbenchAppLike:
        return cast("WorkbenchAppLike", self.app)

    # --- what to show --------------------------------------------------------------------
    def set_runs(self, status: dict[str, str], names: dict[str, str]) -> None:
        """Every run's status and name (after each load of the runs)."""
        self.status, self.names = status, names
        self.request()

    def follow(self, row: dict[str, Any] | None, marked: list[str], baseline: str | None) -> None:
        """Show the run `row` (the cursor's), with the marked runs and the baseline."""
        if row is not self.row:
            self.row = row
            if row is None:
                self.border_title = "run"
                self.params.update("")
            else:
                name = row.get("run_name") or short_id(row["run_id"])
                status = escape(str(row.get("status")))
                self.border_title = f"{escape(name)} · {short_id(row['run_id'])} · {status}"
                self.params.update(self._params_text(row))
        self.marked, self.baseline = marked, baseline
        self.request()

    def curve_runs(self) -> list[str]:
        """The runs drawn: the baseline, the marked runs, the cursor's run."""
        cursor = None if self.row is None else self.row["run_id"]
        wanted = [self.baseline, *self.marked, cursor]
        return [r for r in dict.fromkeys(wanted) if r is not None and r in self.status]

    def _params_text(self, row: dict[str, Any], usage_text: str | None = None) -> str:
        chosen = [f"p.{k}" for k in self.wb.project.config.trainer.params]
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
        if usage_text is None:
            from workbench_tui.loaders import system_usage

            metrics = {k[2:]: v for k, v in row.items() if k.startswith("m.") and v is not None}
            usage = system_usage(row["run_id"], metrics)
            usage_text = usage.describe() if usage else ""
        return f"[dim]system[/] {escape(usage_text)}\n{text}" if usage_text else text

    # --- reading, live -------------------------------------------------------------------
    def _running_of(self, run_ids: list[str]) -> list[str]:
        return [r for r in run_ids if self.status.get(r) in RUNNING]

    def request(self) -> None:
        """Read the curves (and the console, when shown) again, one read at a time."""
        if not self.status and self.row is None:
            return
        if self._busy:
            self._again = True
            return
        self._busy = True
        self._seq += 1
        runs = self.curve_runs()
        cursor = None if self.row is None else self.row["run_id"]
        console = self.switcher.current == "console"
        self._load(self._seq, runs, self._running_of(runs), self.curve_key, cursor, console)

    def _live_tick(self) -> None:
        if self.screen is not self.app.screen or self._busy:
            return
        if self._running_of(self.curve_runs()):
            self.request()

    @work(thread=True, group="experiments-curves", exit_on_error=False)
    def _load(
        self,
        seq: int,
        run_ids: list[str],
        running: list[str],
        key: str | None,
        cursor: str | None,
        console: bool,
    ) -> None:
        from workbench_tui.experiments_data import load_curves

        project = self.wb.project
        try:
            with self.wb.database() as db:
                data = load_curves(
                    project, db, seq, run_ids, running, key, project.config.metric, cursor, console
                )
            self.post_message(self.CurvesLoaded(data))
        finally:
            self.app.call_from_thread(self._done)

    def _done(self) -> None:
        self._busy = False
        if self._again:
            self._again = False
            self.request()

    def on_run_detail_curves_loaded(self, message: CurvesLoaded) -> None:
        from workbench.store.run_curves import lower_is_better

        message.stop()
        data = message.data
        if data.seq != self._seq:
            return  # a newer request is on its way
        self.curve_keys = data.keys
        curves = []
        for run_id in self.curve_runs():
            series = data.series.get(run_id)
            curves.append(
                Curve(
                    run_id,
                    self.names.get(run_id, short_id(run_id)),
                    [] if series is None else series.steps,
                    [] if series is None else series.values,
                    baseline=run_id == self.baseline,
                    running=self.status.get(run_id) in RUNNING,
                )
            )
        assign_colours(curves)
        self.curves.show(curves, data.key)
        self.legend.update(legend(curves, data.key, lower_is_better(data.key or "")))
        row = self.row
        if row is not None and data.usage_run == row["run_id"]:
            usage = data.usage.describe() if data.usage else None
            self.params.update(self._params_text(row, usage))
        if data.console is not None:
            self.console.show(data.console)

    # --- keys (bound by the screen) ------------------------------------------------------
    def next_metric(self) -> bool:
        """Draw the next per-step metric (False when there is none)."""
        keys = self.curve_keys
        if not keys:
            return False
        now = self.curves.key
        self.curve_key = keys[(keys.index(now) + 1) % len(keys)] if now in keys else keys[0]
        self.request()
        return True

    def toggle_view(self) -> None:
        self.switcher.current = "curves" if self.switcher.current == "console" else "console"
        self.request()

    def zoom(self) -> None:
        self.toggle_class("tall")
