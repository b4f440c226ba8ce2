"""Overview: who serves (production, staging), the latest runs, recent audit events.

Started from the cached snapshot (screens.overview_cache), its widgets hold the snapshot as
they are composed (so the first frame shows it), with "as of HH:MM UTC, refreshing…" when its
sources changed since; its load worker then reads the project and saves the snapshot again
when what it shows, or what it was read from, changed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static
from workbench_tui.base import WorkbenchScreen
from workbench_tui.formatting import ellipsize, fmt_value, fmt_version, short_id

if TYPE_CHECKING:
    from workbench_tui.overview_cache import OverviewData


class OverviewScreen(WorkbenchScreen):
    MODE_TITLE = "Overview"
    # overview.tcss is in the App's CSS_PATH (loaded with the app, not when this mounts).
    AUTO_FOCUS = "#latest-runs"
    BINDINGS: ClassVar[list[BindingType]] = []

    class Loaded(Message):
        def __init__(self, data: OverviewData) -> None:
            super().__init__()
            self.data = data

    def __init__(self) -> None:
        super().__init__()
        self.data: OverviewData | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="model-box") as box:
            self.model_box = box
            box.border_title = f"Model {escape(self.wb.facts.model)}"
            self.aliases_view = Static("[dim]loading…[/]", id="aliases")
            yield self.aliases_view
        with Vertical(id="runs-box") as box:
            self.runs_box = box
            box.border_title = "Latest runs"
            self.runs_table: DataTable[Any] = DataTable(cursor_type="row", id="latest-runs")
            yield self.runs_table
            self.empty = Static("No runs yet — press [b]t[/] to train a first model.", id="no-runs")
            yield self.empty
        with Vertical(id="audit-box") as box:
            box.border_title = "Recent audit events"
            self.audit_table: DataTable[Any] = DataTable(cursor_type="row", id="audit")
            yield self.audit_table
            self.no_audit = Static(
                "No audit events yet — promotions and rollbacks show up here.", id="no-audit"
            )
            yield self.no_audit
        self.empty.display = False
        self.no_audit.display = False
        for label, width in (
            ("when (UTC)", 11),
            ("action", 12),
            ("alias", 10),
            ("move", 7),
            ("who", 10),
            ("reason", 40),
        ):
            self.audit_table.add_column(label, width=width, key=label)
        start = self.wb.start
        if start is not None and self.data is None:
            # The snapshot is in the widgets before they mount: it is the first frame.
            self._show(start.overview, None if start.fresh else start.read_at)
        yield Footer(compact=True)

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="overview-load", exit_on_error=False)
    def _load(self) -> None:
        # First the project: started from the snapshot, this waits until it is loaded, and
        # the imports below stay off the first frame.
        project = self.project
        from workbench_tui import loaders, overview_cache

        with self.wb.database() as db:
            read_at = time.time()
            sources = overview_cache.sources(project)  # before the read: a change in it shows
            data = loaders.load_overview(project, db)
        self.post_message(self.Loaded(data))
        overview_cache.write(project, data, sources, read_at)

    def on_overview_screen_loaded(self, message: Loaded) -> None:
        self._show(message.data, None)

    def _show(self, data: OverviewData, stale_since: float | None) -> None:
        """Paint `data`; `stale_since`: it is a snapshot read then, whose sources changed."""
        self.data = data
        title = f"Model {escape(data.model)} · {data.versions} version(s)"
        if stale_since is not None:
            when = time.strftime("%H:%M UTC", time.gmtime(stale_since))
            title += f" · as of {when}, refreshing…"
        self.model_box.border_title = title
        self.aliases_view.update("\n".join(self._alias_line(data, i) for i in range(2)))
        self._show_runs(data, stale_since is not None)
        self._show_audit(data)
        if self.wb.first_paint_at is None:
            self.call_after_refresh(self.wb.mark_first_paint, len(data.runs))

    @staticmethod
    def _alias_line(data: OverviewData, i: int) -> str:
        card = data.cards[i]
        colour = "$success" if i == 0 else "$warning"
        name = f"[b {colour}]{escape(card.alias):<10}[/]"
        if card.version is None:
            return f"{name} [dim]not set[/]"
        line = (
            f"{name} [b]{fmt_version(card.version)}[/]  run {short_id(card.run_id)}  "
            f"{escape(data.metric)} [b]{fmt_value(card.metric)}[/]"
        )
        if card.champion and card.champion[0] != card.version:
            # what the gate saw: production then, scored on this version's own holdout
            line += f" [dim]vs v{card.champion[0]} {fmt_value(card.champion[1])}[/]"
        return line

    def _show_runs(self, data: OverviewData, stale: bool = False) -> None:
        table = self.runs_table
        table.clear(columns=True)
        self.runs_box.border_title = (
            f"Latest runs ({len(data.runs)} of {data.total_runs})" if data.runs else "Latest runs"
        ) + (" · refreshing…" if stale else "")
        self.empty.display = not data.runs
        table.display = bool(data.runs)
        if not data.runs:
            return
        table.add_column("run", width=8, key="run")
        table.add_column("name", width=16, key="name")
        table.add_column("status", width=8, key="status")
        table.add_column("started", width=11, key="started")
        for key in data.run_metrics:
            label = key.removeprefix("m.")
            table.add_column(label, width=max(7, len(label)), key=key)
        for run in data.runs:
            started = run["start_time"].strftime("%m-%d %H:%M") if run["start_time"] else "-"
            table.add_row(
                short_id(run["run_id"]),
                Text(ellipsize(run["run_name"] or "", 16)),
                Text(str(run["status"] or "-")),
                started,
                *[Text(fmt_value(run[k]), justify="right") for k in data.run_metrics],
                key=run["run_id"],
            )

    def _show_audit(self, data: OverviewData) -> None:
        table = self.audit_table
        table.clear()
        for ev in data.audit:
            ts = ev["ts"]
            move = f"{fmt_version(ev['from_version'])}→{fmt_version(ev['to_version'])}"
            who = str(ev["actor"] or "-").split("@")[0]
            table.add_row(
                ts.strftime("%m-%d %H:%M") if ts is not None else "-",
                Text(str(ev["action"] or "-")),
                Text(str(ev["alias"] or "-")),
                move,
                Text(ellipsize(who, 10)),
                Text(ellipsize(str(ev["reason"] or ""), 60)),
            )
        table.display = bool(data.audit)
        self.no_audit.display = not data.audit
