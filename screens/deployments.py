"""Deployments: production and canary side by side with their live stats from the prediction
log, the canary's traffic share, and the server's view of the deployment.

`+`/`-` move the canary's share by 5 points, `p` promotes the canary and `r` rolls it back
(both ask for a reason in a ConfirmDialog), `c` deploys a canary (version and share in a
small dialog), `w` cycles the stats window (60 s, 5 min, 1 h).

Never blocking the event loop: `deployments.status` (DuckDB over the prediction log, the
state files, the registry) runs in a thread worker every POLL_S while the screen is shown;
the next poll is scheduled (set_timer) when the previous one has answered, so polls never
pile up. A poll that fails says so in place, above the panels. Every change runs in a thread
worker too (`promote_canary` imports mlflow), and when a server runs, another worker waits
for it to apply the new generation.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from rich.text import Text
from textual import events as textual_events
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Footer, Header, Label
from textual.worker import Worker, get_current_worker
from workbench_tui import deploy_changes as changes
from workbench_tui import deploy_messages
from workbench_tui.base import DataChanged, WorkbenchScreen, describe_error
from workbench_tui.deploy_dialog import CanaryDialog
from workbench_tui.deploy_format import NO_CANARY, fmt_pct, server_text, state_text
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.formatting import fmt_version
from workbench_tui.widgets.themed_text import StatusText
from workbench_tui.widgets.traffic_bar import TrafficRow
from workbench_tui.widgets.variant_panel import VariantPanels

__all__ = ["NO_CANARY", "DeploymentsScreen"]

POLL_S = 1.0
#: The stats windows `w` cycles through: seconds, label.
WINDOWS: tuple[tuple[float, str], ...] = ((60.0, "60 s"), (300.0, "5 min"), (3600.0, "1 h"))
#: `+` and `-` move the canary's share by this many points (the core keeps it in 1..100%).
STEP_PCT = 5
#: How long a change waits for the running server to apply it.
APPLY_WAIT_S = 15.0
TRAFFIC_GROUP = Binding.Group("traffic", compact=True)


class DeploymentsScreen(WorkbenchScreen):
    MODE_TITLE = "Deployments"
    CSS_PATH = "deployments.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "plus",
            f"traffic({STEP_PCT})",
            "More canary traffic",
            id="deployments.traffic_up",
            tooltip="Send 5 more points of traffic to the canary (at most 100%)",
            group=TRAFFIC_GROUP,
        ),
        Binding(
            "minus",
            f"traffic({-STEP_PCT})",
            "Less canary traffic",
            id="deployments.traffic_down",
            tooltip="Send 5 fewer points of traffic to the canary (at least 1%)",
            group=TRAFFIC_GROUP,
        ),
        Binding(
            "p",
            "promote",
            "Promote",
            id="deployments.promote",
            tooltip="Make the canary production: it takes the alias and all traffic "
            "(asks for a reason)",
        ),
        Binding(
            "r",
            "rollback",
            "Roll back",
            id="deployments.rollback",
            tooltip="Drop the canary: production takes all traffic again (asks for a reason)",
        ),
        Binding(
            "c",
            "canary",
            "Canary",
            id="deployments.canary",
            tooltip="Deploy a version as the canary beside production (asks for version and %)",
        ),
        Binding(
            "s",
            "serve",
            "Serve",
            id="deployments.serve",
            tooltip="Start the inference server in the background ([serving] host and port)",
        ),
        Binding(
            "x",
            "stop_server",
            "Stop server",
            id="deployments.stop_server",
            tooltip="Stop the inference server gracefully (asks first)",
        ),
        Binding(
            "w",
            "cycle_window",
            "Window",
            id="deployments.window",
            tooltip="Cycle the stats window: 60 s, 5 min, 1 h",
        ),
    ]

    # The screen's messages (handlers: on_deployments_screen_polled, ...).
    Polled = deploy_messages.Polled
    Changed = deploy_messages.Changed
    Applied = deploy_messages.Applied
    CanaryPlanned = deploy_messages.CanaryPlanned

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] | None = None
        self.error = ""
        self.window_index = 0
        self.busy = ""  # the promote / rollback / deploy running, if any
        self._change_lock = threading.Lock()
        self._poll_worker: Worker[None] | None = None
        self._poll_timer: Timer | None = None
        #: Polls answered (successful or not), for tests and benchmarks.
        self.polls = 0

    @property
    def window_s(self) -> float:
        return WINDOWS[self.window_index][0]

    @property
    def window_label(self) -> str:
        return WINDOWS[self.window_index][1]

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="deploy-top"):
            self.server_line = StatusText("", id="deploy-server")
            yield self.server_line
            self.state_line = StatusText("", id="deploy-state")
            yield self.state_line
            self.error_line = Label("", id="deploy-error")
            yield self.error_line
        self.traffic = TrafficRow(id="deploy-traffic")
        self.traffic_prod, self.traffic_bar = self.traffic.production, self.traffic.bar
        self.traffic_canary = self.traffic.canary
        yield self.traffic
        self.panels = VariantPanels(id="deploy-panels")
        self.production_panel, self.canary_panel = self.panels.production, self.panels.canary
        yield self.panels
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # (WorkbenchScreen.on_mount runs too, after this one.)
        self.error_line.display = False
        self.server_line.update(Text("reading the deployment…", style="dim"))

    # --- polling -------------------------------------------------------------------------
    def reload(self) -> None:
        self._poll_now()

    def _visible(self) -> bool:
        """Shown, or under a dialog of its own mode (not in another mode)."""
        return self.is_attached and self in self.app.screen_stack

    def _poll_now(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._poll_worker = self._poll(self.window_s)

    def _poll_tick(self) -> None:
        self._poll_timer = None
        if self._visible() and (self._poll_worker is None or self._poll_worker.is_finished):
            self._poll_now()

    def _schedule_poll(self) -> None:
        if self._poll_timer is None and self._visible():
            self._poll_timer = self.set_timer(POLL_S, self._poll_tick)

    def on_screen_suspend(self, event: textual_events.ScreenSuspend) -> None:
        if self._poll_timer is not None and not self._visible():
            self._poll_timer.stop()
            self._poll_timer = None

    def on_screen_resume(self) -> None:
        # WorkbenchScreen.on_screen_resume runs after this one and reloads (polls) when the
        # app's data changed; otherwise polling starts again here.
        if self._loaded_version != self.wb.data_version:
            return
        if self._poll_timer is None and (
            self._poll_worker is None or self._poll_worker.is_finished
        ):
            self._poll_now()

    @work(thread=True, exclusive=True, group="deployments-poll", exit_on_error=False)
    def _poll(self, window_s: float) -> None:
        try:
            from workbench.serving import deployments

            with self.wb.database() as db:  # the app's shared connection
                data = deployments.status(self.project, window_s, db)
        except Exception as exc:
            message = self.Polled(window_s, None, describe_error(exc))
        else:
            message = self.Polled(window_s, data)
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    def on_deployments_screen_polled(self, message: deploy_messages.Polled) -> None:
        self.polls += 1
        self._schedule_poll()
        if message.window_s != self.window_s:
            return  # asked before the window changed; a newer poll is on its way
        if message.error:
            self.error = message.error
            self.error_line.update(Text(f"status failed: {message.error}"))
            self.error_line.display = True
            if self.data is None:
                self.server_line.update(Text(""))
            return
        self.error = ""
        self.error_line.display = False
        assert message.data is not None
        self.data = message.data
        self.show()

    # --- showing -------------------------------------------------------------------------
    @property
    def canary(self) -> dict[str, Any] | None:
        if self.data is None:
            return None
        canary: dict[str, Any] | None = self.data["state"].get("canary")
        return canary

    @property
    def production_version(self) -> int | None:
        return None if self.data is None else self.data.get("production_version")

    def show(self) -> None:
        data = self.data
        if data is None:
            return
        state = data["state"]
        server = data.get("server")
        canary = state.get("canary")
        self._show_header(state, server, canary)
        self.traffic.show(self.production_version, canary)
        serving = self.project.config.serving
        self.panels.show(data, self.window_label, serving.alias, serving.canary)

    def _show_header(
        self, state: dict[str, Any], server: dict[str, Any] | None, canary: dict[str, Any] | None
    ) -> None:
        self.server_line.update(server_text(server, self.server_line.style_of))
        self.state_line.update(
            state_text(state, server, canary, self.window_label, self.state_line.style_of)
        )

    # --- traffic -------------------------------------------------------------------------
    def action_traffic(self, points: int) -> None:
        self._set_traffic(points)

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _set_traffic(self, points: int) -> None:
        self._post_change(changes.adjust_traffic(self.project, points, self._change_lock))

    def _post_change(self, change: changes.Change) -> None:
        self.post_message(
            self.Changed(change.action, change.ok, change.text, change.generation, change.warning)
        )

    # --- promote and rollback ------------------------------------------------------------
    def _canary_or_warn(self, what: str) -> dict[str, Any] | None:
        if self._busy_warn():
            return None
        canary = self.canary
        if canary is None:
            self.notify(
                f"no canary is deployed; nothing to {what}",
                severity="error",
                title="Deployments",
                markup=False,
            )
        return canary

    def action_promote(self) -> None:
        canary = self._canary_or_warn("promote")
        if canary is None:
            return
        version = int(canary["version"])

        def confirmed(reason: str | None) -> None:
            if reason:
                self.busy = "promotion"
                self._promote(reason)

        self.app.push_screen(
            ConfirmDialog(
                f"Promote canary v{version}",
                f"production: {fmt_version(self.production_version)} → v{version}; "
                f"v{version} takes the production alias and all traffic",
                "Promote",
            ),
            callback=confirmed,
        )

    def action_rollback(self) -> None:
        canary = self._canary_or_warn("roll back")
        if canary is None:
            return
        version = int(canary["version"])

        def confirmed(reason: str | None) -> None:
            if reason:
                self.busy = "rollback"
                self._rollback(reason)

        self.app.push_screen(
            ConfirmDialog(
                f"Roll back canary v{version}",
                f"canary v{version} ({fmt_pct(float(canary['traffic']))}) is dropped; "
                f"production {fmt_version(self.production_version)} takes all traffic",
                "Roll back",
            ),
            callback=confirmed,
        )

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _promote(self, reason: str) -> None:
        self._post_change(changes.promote(self.project, reason, self._change_lock))

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _rollback(self, reason: str) -> None:
        self._post_change(changes.rollback(self.project, reason, self._change_lock))

    # --- deploy a canary -----------------------------------------------------------------
    def _busy_warn(self) -> bool:
        """True (and a warning) while a change runs: one at a time."""
        if self.busy:
            self.notify(f"a {self.busy} is already running", severity="warning")
        return bool(self.busy)

    def action_canary(self) -> None:
        if self._busy_warn():
            return
        self._plan_canary()

    @work(thread=True, exclusive=True, group="deployments-plan", exit_on_error=False)
    def _plan_canary(self) -> None:
        try:
            versions, production, suggested = changes.plan_canary(self.project)
        except Exception as exc:
            self.post_message(self.CanaryPlanned([], None, None, describe_error(exc)))
            return
        self.post_message(self.CanaryPlanned(versions, production, suggested))

    def on_deployments_screen_canary_planned(self, message: deploy_messages.CanaryPlanned) -> None:
        if message.error:
            self.notify(message.error, severity="error", title="Cannot deploy", markup=False)
            return

        def chosen(answer: tuple[int, float, str] | None) -> None:
            if answer is not None:
                self.busy = "canary deployment"
                self._deploy(*answer)

        self.app.push_screen(
            CanaryDialog(message.versions, message.production, message.suggested),
            callback=chosen,
        )

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _deploy(self, version: int, percent: float, reason: str) -> None:
        change = changes.deploy_canary(self.project, version, percent, reason, self._change_lock)
        self._post_change(change)

    # --- the server ------------------------------------------------------------------------
    def action_serve(self) -> None:
        if self._busy_warn():
            return
        if self.data is not None and self.data.get("server"):
            url = self.data["server"].get("url")
            self.notify(f"a server already runs at {url}", severity="warning", markup=False)
            return
        self.busy = "server start"
        cfg = self.project.config.serving
        self.notify(f"starting the server on {cfg.host}:{cfg.port}…", markup=False)
        self._serve()

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _serve(self) -> None:
        self._post_change(changes.start_server(self.project, self._change_lock))

    def action_stop_server(self) -> None:
        if self._busy_warn():
            return
        server = (self.data or {}).get("server")
        if not server:
            self.notify("no server is running", severity="warning")
            return

        def confirmed(answer: str | None) -> None:
            if answer is not None:
                self.busy = "server stop"
                self._stop_server()

        self.app.push_screen(
            ConfirmDialog(
                "Stop the server",
                f"the server at {server.get('url')} (job {server.get('job_id')}) stops after "
                "the requests in flight; its prediction log is flushed",
                "Stop",
                require_reason=False,
            ),
            callback=confirmed,
        )

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _stop_server(self) -> None:
        self._post_change(changes.stop_server(self.project, self._change_lock))

    # --- after a change ------------------------------------------------------------------
    def on_deployments_screen_changed(self, message: deploy_messages.Changed) -> None:
        if message.action != "traffic":
            self.busy = ""
        if not message.ok:
            self.notify(message.text, severity="error", title="Deployments", markup=False)
            return
        if message.warning:
            self.notify(message.text, severity="warning", title="Deployments", markup=False)
            return
        self.notify(message.text, title="Deployments", markup=False)
        if message.action == "promote":
            self.post_message(DataChanged("registry"))  # the app reloads; so does this screen
        else:
            self._poll_now()
        if message.generation is not None and self.data is not None and self.data.get("server"):
            self._wait_applied(message.generation)

    @work(thread=True, group="deployments-apply", exit_on_error=False)
    def _wait_applied(self, generation: int) -> None:
        from workbench.serving import deployments

        applied = deployments.wait_applied(self.project, generation, APPLY_WAIT_S)
        self.post_message(self.Applied(generation, applied))

    def on_deployments_screen_applied(self, message: deploy_messages.Applied) -> None:
        if message.applied:
            self.notify(f"the server applied generation {message.generation}", title="Deployments")
        else:
            self.notify(
                f"the server has not applied generation {message.generation} "
                f"after {APPLY_WAIT_S:g} s (is it running?)",
                severity="warning",
                title="Deployments",
            )
        self._poll_now()

    # --- window --------------------------------------------------------------------------
    def action_cycle_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(WINDOWS)
        self.notify(f"stats over the last {self.window_label}", title="Deployments")
        self._poll_now()
