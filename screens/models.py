"""Models: registered versions with their aliases and metrics, and the alias history.
`p` promotes the selected version to production, `r` rolls production back; both ask for a
reason in a ConfirmDialog and call the registry in a thread worker. The top line says who you
are on the store and what you may do there (asked in a worker: a tracking server may be slow).
With [governance] approvals, `p` makes a request; the pending ones are listed (approvals_panel),
`a` approves the selected one and `x` rejects it, each after a reason, in a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static
from workbench_tui.base import DataChanged, WorkbenchScreen, describe_error
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.formatting import ellipsize, fmt_ms, fmt_value, fmt_version, short_id
from workbench_tui.widgets.approvals_panel import ApprovalsPanel

if TYPE_CHECKING:
    from workbench_tui.loaders import ModelsData

    from workbench.registry.approvals import Request


class ModelsScreen(WorkbenchScreen):
    MODE_TITLE = "Models"
    CSS_PATH = "models.tcss"
    AUTO_FOCUS = "#versions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "p",
            "promote",
            "Promote",
            id="models.promote",
            tooltip="Point the production alias at the selected version (asks for a reason)",
        ),
        Binding(
            "r",
            "rollback",
            "Roll back",
            id="models.rollback",
            tooltip="Move production back to the version that held it before (asks for a reason)",
        ),
        Binding(
            "a",
            "approve",
            "Approve",
            id="models.approve",
            tooltip="Approve the selected pending request ([governance]; asks for a reason)",
        ),
        Binding(
            "x",
            "reject",
            "Reject",
            id="models.reject",
            tooltip="Reject the selected pending request ([governance]; asks for a reason)",
        ),
        Binding(
            "c",
            "card",
            "Card",
            id="models.card",
            tooltip="Show the selected version's model card: use, data, training, evaluation",
        ),
        Binding(
            "L",
            "lineage",
            "Lineage",
            id="models.lineage",
            show=False,  # in `?`; at 80 columns the footer keeps "? Help"
            tooltip="Show the selected version's lineage: data, job, run, aliases, deployments",
        ),
    ]

    class Loaded(Message):
        def __init__(self, data: ModelsData) -> None:
            super().__init__()
            self.data = data

    class RollbackPlanned(Message):
        def __init__(self, current: int | None, target: int | None, error: str = "") -> None:
            super().__init__()
            self.current = current
            self.target = target
            self.error = error

    class Identified(Message):
        """Who you are on the store, as one line."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class RequestsLoaded(Message):
        """The pending approval requests."""

        def __init__(self, requests: list[Request]) -> None:
            super().__init__()
            self.requests = requests

    class Moved(Message):
        """An alias move finished: ok with a summary, or an error to show."""

        def __init__(self, ok: bool, text: str) -> None:
            super().__init__()
            self.ok = ok
            self.text = text

    def __init__(self) -> None:
        super().__init__()
        self.data: ModelsData | None = None
        self.busy = False

    @property
    def production_alias(self) -> str:
        return self.project.config.registry.production_alias

    def compose(self) -> ComposeResult:
        yield Header()
        self.whoami = Static("", id="whoami")
        yield self.whoami
        with Vertical(id="versions-box") as box:
            self.versions_box = box
            box.border_title = "Versions"
            self.versions: DataTable[Any] = DataTable(cursor_type="row", id="versions")
            yield self.versions
            self.no_versions = Static(
                "No registered versions yet — press t to train one.", classes="placeholder"
            )
            yield self.no_versions
        self.approvals = ApprovalsPanel()
        yield self.approvals
        with Vertical(id="history-box") as box:
            box.border_title = "Alias history (newest first)"
            self.history: DataTable[Any] = DataTable(cursor_type="row", id="history")
            yield self.history
            self.no_history = Static(
                "No alias moves yet — promote a version with p.", classes="placeholder"
            )
            yield self.no_history
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._identify()
        self.no_versions.display = False
        self.no_history.display = False
        metric = f"holdout_{self.project.config.metric}"
        self.versions.add_column("version", width=7, key="version")
        self.versions.add_column("aliases", width=16, key="aliases")
        self.versions.add_column("run", width=8, key="run")
        self.versions.add_column("created", width=16, key="created")
        self.versions.add_column(metric, width=max(8, len(metric)), key="metric")
        self.versions.add_column("prod then", width=9, key="champion")
        for label, width in (
            ("when (UTC)", 16),
            ("alias", 10),
            ("action", 12),
            ("move", 8),
            ("reason", 60),
        ):
            self.history.add_column(label, width=width, key=label)

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        self.versions.loading = self.data is None
        self._load()
        self._load_requests()

    @work(thread=True, exclusive=True, group="models-load", exit_on_error=False)
    def _load(self) -> None:
        from workbench_tui import loaders

        with self.wb.database() as db:
            data = loaders.load_models(self.project, db)
        self.post_message(self.Loaded(data))

    @work(thread=True, exclusive=True, group="models-requests", exit_on_error=False)
    def _load_requests(self) -> None:
        from workbench.registry import approvals

        self.post_message(self.RequestsLoaded(approvals.requests(self.project)))

    def on_models_screen_requests_loaded(self, message: RequestsLoaded) -> None:
        from workbench.registry import approvals

        self.approvals.show(message.requests, approvals.now())
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "reject"):  # shown (and acting) while a request is pending
            return bool(self.approvals.requests)
        return super().check_action(action, parameters)

    @work(thread=True, exclusive=True, group="models-identity", exit_on_error=False)
    def _identify(self) -> None:
        from workbench.errors import WorkbenchError
        from workbench.registry.identity import identity

        try:
            text = identity(self.project).line()
        except WorkbenchError as exc:
            text = f"store: {exc}"
        self.post_message(self.Identified(text))

    def on_models_screen_identified(self, message: Identified) -> None:
        self.whoami.update(Text(message.text))

    def on_models_screen_loaded(self, message: Loaded) -> None:
        data = self.data = message.data
        self.versions.loading = False
        self.versions_box.border_title = f"Versions of {data.model}"
        selected = self.selected_version
        self.versions.clear()
        for v in data.versions:
            aliases = ", ".join(v.aliases) or "-"
            style = "bold" if self.production_alias in v.aliases else ""
            self.versions.add_row(
                Text(f"v{v.version}", style=style),
                Text(aliases, style=style),
                short_id(v.run_id),
                fmt_ms(v.created_ms),
                fmt_value(v.metrics.get(data.metric)),
                _champion_cell(v.champion(data.metric)),
                key=str(v.version),
            )
        self.versions.display = bool(data.versions)
        self.no_versions.display = not data.versions
        if selected is not None:
            keys = [v.version for v in data.versions]
            if selected in keys:
                self.versions.move_cursor(row=keys.index(selected))
        self.history.clear()
        for ev in data.history:
            ts = ev["ts"]
            when = ts.strftime("%Y-%m-%d %H:%M") if ts is not None else "-"
            move = f"{fmt_version(ev['from_version'])}→{fmt_version(ev['to_version'])}"
            self.history.add_row(
                when,
                Text(str(ev["alias"] or "-")),
                Text(str(ev["action"])),
                move,
                Text(ellipsize(str(ev["reason"] or ""), 80)),
            )
        self.history.display = bool(data.history)
        self.no_history.display = not data.history

    @property
    def selected_version(self) -> int | None:
        if self.data is None or not self.data.versions or not self.versions.row_count:
            return None
        row = self.versions.cursor_row
        if not 0 <= row < len(self.data.versions):
            return None
        return self.data.versions[row].version

    def action_lineage(self) -> None:
        from workbench_tui.lineage import open_lineage

        version = self.selected_version
        if version is None or self.data is None:
            self.notify("no version selected", severity="warning")
            return
        open_lineage(self, f"{self.data.model}/{version}")

    # --- promote -------------------------------------------------------------------------
    def action_promote(self) -> None:
        if self.busy:
            self.notify("a registry change is already running", severity="warning")
            return
        version = self.selected_version
        if version is None or self.data is None:
            self.notify("no version selected", severity="warning")
            return
        alias = self.production_alias
        current = self.data.aliases.get(alias)
        if current == version:
            self.notify(f"v{version} already holds {alias}", severity="warning")
            return

        def confirmed(reason: str | None) -> None:
            if reason:
                self._start_move()
                self._move("promote", reason, version)

        from workbench.registry import approvals_policy

        needed = approvals_policy.required(self.project, alias)
        asks = f" (needs {needed} approval(s): a request)" if needed else ""
        self.app.push_screen(
            ConfirmDialog(
                f"{'Request' if needed else 'Promote'} v{version} to {alias}",
                f"{alias}: {fmt_version(current)} → v{version}{asks}",
                "Request" if needed else "Promote",
            ),
            callback=confirmed,
        )

    @work(thread=True, exclusive=True, group="models-registry", exit_on_error=False)
    def _move(self, action: str, reason: str, version: int | None = None) -> None:
        """Promote `version`, or roll back, in a worker; report with a Moved message."""
        from workbench.registry import approvals
        from workbench.registry import versions as registry

        alias = self.production_alias
        try:
            if action == "promote":
                assert version is not None
                done = approvals.promote(self.project, version, reason, alias=alias)
                if done.request is not None:
                    q = done.request
                    text = f"approval needed: request {q.id} asks for v{q.version} on {alias} "
                    self.post_message(self.Moved(True, text + f"({q.needs()})"))
                    return
                assert done.row is not None
                row = done.row
            else:
                row = registry.rollback(self.project, reason, alias=alias)
        except Exception as exc:
            self.post_message(self.Moved(False, describe_error(exc)))
        else:
            move = f"{fmt_version(row['from_version'])} → {fmt_version(row['to_version'])}"
            label = alias if action == "promote" else f"rolled back {alias}"
            self.post_message(self.Moved(True, f"{label}: {move}"))

    # --- rollback ------------------------------------------------------------------------
    def action_rollback(self) -> None:
        if self.busy:
            self.notify("a registry change is already running", severity="warning")
            return
        self._plan_rollback()

    @work(thread=True, exclusive=True, group="models-registry", exit_on_error=False)
    def _plan_rollback(self) -> None:
        from workbench.registry import versions as registry

        try:
            current, target = registry.rollback_target(self.project, self.production_alias)
        except Exception as exc:
            self.post_message(self.RollbackPlanned(None, None, describe_error(exc)))
        else:
            self.post_message(self.RollbackPlanned(current, target))

    def on_models_screen_rollback_planned(self, message: RollbackPlanned) -> None:
        if message.error:
            self.notify(message.error, severity="error", title="Cannot roll back", markup=False)
            return
        alias = self.production_alias

        def confirmed(reason: str | None) -> None:
            if reason:
                self._start_move()
                self._move("rollback", reason)

        self.app.push_screen(
            ConfirmDialog(
                f"Roll back {alias}",
                f"{alias}: {fmt_version(message.current)} → {fmt_version(message.target)}",
                "Roll back",
            ),
            callback=confirmed,
        )

    # --- approval requests ([governance]) --------------------------------------------------
    def action_approve(self) -> None:
        self._decide("approve")

    def action_reject(self) -> None:
        self._decide("reject")

    def _decide(self, what: str) -> None:
        if self.busy:
            self.notify("a registry change is already running", severity="warning")
            return
        req = self.approvals.selected
        if req is None:
            self.notify("no pending approval request", severity="warning")
            return

        def confirmed(reason: str | None) -> None:
            if reason:
                self._start_move()
                self._close_request(what, req.id, reason)

        got = f"{len(req.approvals)}/{req.required} approvals"
        self.app.push_screen(
            ConfirmDialog(
                f"{what.capitalize()} {req.id} by {req.requester}",
                f"{req.alias}: {fmt_version(req.from_version)} → v{req.version} ({got})",
                what.capitalize(),
            ),
            callback=confirmed,
        )

    @work(thread=True, exclusive=True, group="models-registry", exit_on_error=False)
    def _close_request(self, what: str, request_id: str, reason: str) -> None:
        from workbench.registry import approvals

        try:
            if what == "approve":
                text = approvals.approve(self.project, request_id, reason).line()
            else:
                req = approvals.reject(self.project, request_id, reason)
                text = f"{req.id} rejected: v{req.version} stays off {req.alias}"
        except Exception as exc:
            self.post_message(self.Moved(False, describe_error(exc)))
        else:
            self.post_message(self.Moved(True, text))

    def action_card(self) -> None:
        from workbench_tui.card_view import CardScreen

        version = self.selected_version
        if version is None:
            self.notify("no version selected", severity="warning")
            return
        self.app.push_screen(CardScreen(self.project, version))

    # --- after a move --------------------------------------------------------------------
    def _start_move(self) -> None:
        self.busy = True
        self.versions.loading = True

    def on_models_screen_moved(self, message: Moved) -> None:
        self.busy = False
        self.versions.loading = False
        if message.ok:
            self.notify(message.text, title="Registry", markup=False)
            self.post_message(DataChanged("registry"))
        else:
            self.notify(message.text, severity="error", title="Registry", markup=False)


def _champion_cell(champion: tuple[int, float] | None) -> str:
    """Production's metric on this version's own holdout (what the gate compared), or -."""
    return f"{fmt_value(champion[1])} v{champion[0]}" if champion else "-"
