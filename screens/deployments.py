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
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import events as textual_events
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, Sparkline, Static
from textual.worker import Worker, get_current_worker

from screens.base import DataChanged, WorkbenchScreen, describe_error
from screens.dialogs import ConfirmDialog
from screens.formatting import fmt_version

POLL_S = 1.0
#: The stats windows `w` cycles through: seconds, label.
WINDOWS: tuple[tuple[float, str], ...] = ((60.0, "60 s"), (300.0, "5 min"), (3600.0, "1 h"))
#: `+` and `-` move the canary's share by this many points, within [MIN_PCT, MAX_PCT].
STEP_PCT = 5
MIN_PCT = 1
MAX_PCT = 100
DEFAULT_CANARY_PCT = 10
#: Buckets of an empty request-rate series (serving_stats' default).
SERIES_BUCKETS = 30
#: How long a change waits for the running server to apply it.
APPLY_WAIT_S = 15.0
#: Error rates at or above these are shown as a warning, and as bad.
ERROR_WARN = 0.01
ERROR_BAD = 0.05
TRAFFIC_GROUP = Binding.Group("traffic", compact=True)
NO_SERVER = "no server running — start one: workbench serve --detach"
NO_CANARY = "no canary — deploy one: workbench deploy VERSION --canary --traffic 10 (or press c)"


def clamp_pct(value: float) -> int:
    return int(max(MIN_PCT, min(MAX_PCT, round(value))))


def fmt_pct(share: float) -> str:
    """A share (0..1) as a percentage: 0.1 -> '10%', 0.125 -> '12.5%'."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def fmt_rate(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def fmt_since(iso: str) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM UTC' (as it is when it cannot be parsed)."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return when.strftime("%Y-%m-%d %H:%M UTC")


def fmt_edge(value: float) -> str:
    return f"{value:.4g}"


def error_level(rate: float) -> str:
    if rate >= ERROR_BAD:
        return "bad"
    if rate >= ERROR_WARN:
        return "warn"
    return "good"


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


class StatusText(Static):
    """A Static whose texts take their colours from the theme, through component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status-text--good",
        "status-text--warn",
        "status-text--bad",
        "status-text--muted",
        "status-text--key",
    }

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"status-text--{level}", partial=True)


class TrafficBar(Widget):
    """One line split between production (left) and the canary (right) by the canary's share."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"traffic-bar--production", "traffic-bar--canary"}
    DEFAULT_CSS = "TrafficBar { height: 1; width: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.share = 0.0

    def set_share(self, share: float) -> None:
        self.share = max(0.0, min(1.0, share))
        self.refresh()

    def render(self) -> Text:
        width = self.size.width
        canary = round(self.share * width)
        if self.share > 0:
            canary = max(1, canary)
        prod_style = self.get_component_rich_style("traffic-bar--production", partial=True)
        canary_style = self.get_component_rich_style("traffic-bar--canary", partial=True)
        text = Text("█" * (width - canary), style=prod_style, no_wrap=True)
        text.append("█" * canary, style=canary_style)
        return text


class Histogram(Widget):
    """Bars from 0 up to the largest count (a Sparkline scales from the smallest, which shows
    an even distribution as nothing at all); each bin spans an equal share of the width."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"histogram--bar"}
    BLOCKS = " ▁▂▃▄▅▆▇█"

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.counts: list[float] = []

    def set_counts(self, counts: list[float]) -> None:
        self.counts = counts
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        top = max(self.counts, default=0.0)
        style = self.get_component_rich_style("histogram--bar", partial=True)
        if not width or not height or top <= 0:
            return Text("")
        bins = len(self.counts)
        eighths = [round(self.counts[x * bins // width] / top * height * 8) for x in range(width)]
        rows = []
        for row in range(height):
            base = (height - 1 - row) * 8
            rows.append("".join(self.BLOCKS[max(0, min(8, e - base))] for e in eighths))
        return Text("\n".join(rows), style=style, no_wrap=True)


class VariantPanel(Vertical):
    """One variant: its version and live stats, or a placeholder; a request-rate sparkline and
    the distribution of its predictions (the same bins for both variants)."""

    def __init__(self, variant: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="variant-panel")
        self.variant = variant
        self.border_title = variant

    def compose(self) -> ComposeResult:
        self.stats = StatusText("", classes="variant-stats")
        yield self.stats
        self.placeholder = Static("", classes="variant-placeholder")
        yield self.placeholder
        self.caption = Label("", classes="variant-caption")
        yield self.caption
        self.sparkline = Sparkline([], classes="variant-sparkline")
        yield self.sparkline
        self.hist_caption = Label("", classes="variant-caption")
        yield self.hist_caption
        self.hist = Histogram(classes="variant-hist")
        yield self.hist

    def on_mount(self) -> None:
        self.placeholder.display = False

    def show_placeholder(self, title: str, text: str) -> None:
        self.border_title = escape(title)
        self.border_subtitle = ""
        self.placeholder.update(Text(text))
        self.placeholder.display = True
        for widget in self._stats_widgets:
            widget.display = False

    @property
    def _stats_widgets(self) -> tuple[Widget, ...]:
        return (self.stats, self.caption, self.sparkline, self.hist_caption, self.hist)

    def show_stats(
        self,
        title: str,
        subtitle: str,
        lines: list[tuple[str, Text]],
        series: list[float],
        caption: str,
        hist: list[float],
        hist_caption: str,
    ) -> None:
        self.border_title = escape(title)
        self.border_subtitle = escape(subtitle)
        self.placeholder.display = False
        for widget in self._stats_widgets:
            widget.display = True
        key = self.stats.style_of("key")
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (name, value) in enumerate(lines):
            if i:
                text.append("\n")
            text.append(f"{name:<10}", style=key)
            text.append_text(value)
        self.stats.update(text)
        self.caption.update(Text(caption))
        self.sparkline.data = series
        self.hist_caption.update(Text(hist_caption))
        self.hist.set_counts(hist)


class CanaryDialog(ModalScreen[tuple[int, float, str] | None]):
    """Asks for the canary's version, its traffic share and an optional reason; dismisses
    with (version, percent, reason) or None. The core checks the version."""

    CSS_PATH = ["dialogs.tcss", "deployments.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="canary_dialog.cancel",
            tooltip="Close without deploying",
        ),
        Binding(
            "ctrl+s",
            "confirm",
            "Deploy",
            id="canary_dialog.confirm",
            tooltip="Deploy the canary (enter in a field does the same)",
        ),
    ]

    def __init__(
        self, versions: list[int], production: int | None, suggested: int | None = None
    ) -> None:
        super().__init__()
        self.versions = versions
        self.production = production
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as box:
            box.border_title = "Deploy a canary"
            listed = ", ".join(f"v{v}" for v in self.versions) or "none"
            yield Static(
                Text(f"production {fmt_version(self.production)} · versions: {listed}"),
                id="dialog-change",
            )
            with Horizontal(classes="canary-field"):
                yield Label("version", classes="canary-label")
                self.version_input = Input(
                    "" if self.suggested is None else str(self.suggested),
                    placeholder="version",
                    type="integer",
                    id="canary-version",
                )
                yield self.version_input
            with Horizontal(classes="canary-field"):
                yield Label("traffic %", classes="canary-label")
                self.percent_input = Input(
                    str(DEFAULT_CANARY_PCT),
                    placeholder="1-100",
                    type="number",
                    id="canary-percent",
                )
                yield self.percent_input
            self.reason = Input(
                placeholder="reason (optional, goes to the audit log)", id="canary-reason"
            )
            yield self.reason
            self.error = Label("", id="dialog-error")
            yield self.error
            with Horizontal(id="dialog-buttons"):
                yield Button("Deploy", variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.version_input.focus()

    def _fail(self, text: str, field: Input) -> None:
        self.error.update(text)
        field.focus()
        self.app.bell()

    def action_confirm(self) -> None:
        try:
            version = int(self.version_input.value.strip())
        except ValueError:
            self._fail("the version is a whole number", self.version_input)
            return
        try:
            percent = float(self.percent_input.value.strip())
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            self._fail("the traffic is a percentage in (0, 100]", self.percent_input)
            return
        self.dismiss((version, percent, self.reason.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.error.update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()


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
            "w",
            "cycle_window",
            "Window",
            id="deployments.window",
            tooltip="Cycle the stats window: 60 s, 5 min, 1 h",
        ),
    ]

    class Polled(Message):
        def __init__(self, window_s: float, data: dict[str, Any] | None, error: str = "") -> None:
            super().__init__()
            self.window_s = window_s
            self.data = data
            self.error = error

    class Changed(Message):
        """A deployment change finished: ok with a summary, or an error to show."""

        def __init__(
            self,
            action: str,
            ok: bool,
            text: str,
            generation: int | None = None,
            warning: bool = False,
        ) -> None:
            super().__init__()
            self.action = action
            self.ok = ok
            self.text = text
            self.generation = generation
            self.warning = warning

    class Applied(Message):
        def __init__(self, generation: int, applied: bool) -> None:
            super().__init__()
            self.generation = generation
            self.applied = applied

    class CanaryPlanned(Message):
        def __init__(
            self,
            versions: list[int],
            production: int | None,
            suggested: int | None,
            error: str = "",
        ) -> None:
            super().__init__()
            self.versions = versions
            self.production = production
            self.suggested = suggested
            self.error = error

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
        with Horizontal(id="deploy-traffic"):
            self.traffic_prod = Label("", id="traffic-production")
            yield self.traffic_prod
            self.traffic_bar = TrafficBar(id="traffic-bar")
            yield self.traffic_bar
            self.traffic_canary = Label("", id="traffic-canary")
            yield self.traffic_canary
        with Horizontal(id="deploy-panels"):
            self.production_panel = VariantPanel("production", id="production-panel")
            yield self.production_panel
            self.canary_panel = VariantPanel("canary", id="canary-panel")
            yield self.canary_panel
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
            from workbench import deployments

            with self.wb.database() as db:  # the app's shared connection
                data = deployments.status(self.project, window_s, db)
        except Exception as exc:
            message = self.Polled(window_s, None, describe_error(exc))
        else:
            message = self.Polled(window_s, data)
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    def on_deployments_screen_polled(self, message: Polled) -> None:
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
        self._show_traffic(canary)
        variants = data.get("variants") or {}
        prod_version = data.get("production_version")
        if prod_version is None:
            self.production_panel.show_placeholder(
                "production",
                "no production version — promote one on the models screen (3), or train one (t)",
            )
        else:
            pinned = state.get("production") is not None
            self._show_variant(
                self.production_panel,
                "production",
                prod_version,
                "pinned" if pinned else f"{self.project.config.serving.alias} alias",
                variants.get("production"),
                None,
            )
        if canary is None:
            self.canary_panel.show_placeholder("canary", NO_CANARY)
        else:
            self._show_variant(
                self.canary_panel,
                "canary",
                int(canary["version"]),
                f"{fmt_pct(float(canary['traffic']))} of traffic",
                variants.get("canary"),
                data.get("canary_vs_production"),
                since=str(canary.get("started_at") or ""),
            )

    def _show_header(
        self, state: dict[str, Any], server: dict[str, Any] | None, canary: dict[str, Any] | None
    ) -> None:
        style = self.server_line.style_of
        line = Text(no_wrap=True, overflow="ellipsis")
        desired = int(state.get("generation") or 0)
        if server is None:
            line.append("○ ", style=style("warn"))
            line.append(NO_SERVER, style=style("warn"))
        else:
            line.append("● ", style=style("good"))
            line.append(f"serving {server.get('url') or '?'}")
            details = []
            if server.get("pid"):
                details.append(f"pid {server['pid']}")
            if server.get("job_id"):
                details.append(f"job {server['job_id']}")
            if details:
                line.append(" · " + " · ".join(details), style=style("muted"))
            if server.get("last_error"):
                line.append(f" · last error: {server['last_error']}", style=style("bad"))
        self.server_line.update(line)

        style = self.state_line.style_of
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("generation ", style=style("key"))
        line.append(f"desired {desired}")
        if server is None:
            line.append(" · applied -", style=style("muted"))
        else:
            applied = int(server.get("applied_generation", -1))
            if applied >= desired:
                line.append(f" · applied {applied} ✓", style=style("good"))
            else:
                line.append(f" · applied {applied} (applying…)", style=style("warn"))
        sticky = canary.get("sticky_key") if canary else None
        line.append(" · sticky key ", style=style("key"))
        line.append(str(sticky) if sticky else "none", style="" if sticky else style("muted"))
        line.append(" · window ", style=style("key"))
        line.append(self.window_label)
        history = state.get("history") or []
        if history:
            last = history[-1]
            line.append(
                f" · last change: {last.get('action', '?')} by {last.get('by', '?')}",
                style=style("muted"),
            )
            if last.get("reason"):
                line.append(f" — {last['reason']}", style=style("muted"))
        self.state_line.update(line)

    def _show_traffic(self, canary: dict[str, Any] | None) -> None:
        share = float(canary["traffic"]) if canary else 0.0
        self.traffic_bar.set_share(share)
        prod = self.production_version
        self.traffic_prod.update(
            Text(f"production {fmt_version(prod)} {fmt_pct(1.0 - share)}", no_wrap=True)
        )
        text = f"{fmt_pct(share)} canary v{canary['version']}" if canary else "no canary"
        self.traffic_canary.update(Text(text, no_wrap=True))

    def _show_variant(
        self,
        panel: VariantPanel,
        variant: str,
        version: int,
        note: str,
        stats: dict[str, Any] | None,
        delta: dict[str, Any] | None,
        since: str = "",
    ) -> None:
        style = panel.stats.style_of
        muted = style("muted")
        title = f"{variant} · v{version}"
        subtitle = f"since {fmt_since(since)}" if since else ""
        ver = Text(f"v{version}", style="bold")
        ver.append(f" · {note}", style=muted)
        lines: list[tuple[str, Text]] = [("version", ver)]
        window = self.window_label
        if stats is None:  # no request in the window: the same lines, empty
            lines.append(("requests", Text(f"0 · none in the last {window}", style=muted)))
            for name in ("p50/95/99", "errors", "mean pred", "metric"):
                lines.append((name, Text("-", style=muted)))
            caption = f"req/s over the last {window} · no requests"
            empty = [0.0] * SERIES_BUCKETS
            hist_caption = "predictions · none"
            panel.show_stats(title, subtitle, lines, empty, caption, [0.0] * 10, hist_caption)
            return
        served = [int(v) for v in stats.get("versions") or []]
        if served and served != [version]:
            ver.append(
                f" · served {', '.join(f'v{v}' for v in served)} in the window", style=style("warn")
            )
        requests = int(stats["requests"])
        lines.append(("requests", Text(f"{requests:,} · {fmt_rate(float(stats['rps']))} req/s")))
        latency = " / ".join(fmt_ms(stats.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms"))
        lines.append(("p50/95/99", Text(f"{latency} ms")))
        rate = float(stats["error_rate"])
        errors = Text(
            f"{rate * 100:.2f}% ({int(stats['errors']):,} of {requests:,})",
            style=style(error_level(rate)),
        )
        if stats.get("client_errors"):
            errors.append(f" · {int(stats['client_errors']):,} 4xx", style=muted)
        lines.append(("errors", errors))
        mean = stats.get("prediction_mean")
        lines.append(("mean pred", Text("-" if mean is None else f"{mean:.4f}")))
        labeled = int(stats.get("labeled") or 0)
        if stats.get("metric_name") and stats.get("metric") is not None:
            name = str(stats["metric_name"])
            lines.append((name, Text(f"{stats['metric']:.4f} ({labeled:,} labeled)")))
        else:
            lines.append(("metric", Text("no labels yet", style=muted)))
        if delta is not None:
            lines.extend(self._delta_lines(panel, delta, stats.get("metric_name")))
        series = [float(x) for x in stats.get("rate_series") or []]
        peak = max(series, default=0.0)
        caption = f"req/s over the last {window} · peak {fmt_rate(peak)}"
        hist = [float(n) for n in stats.get("prediction_hist") or []]
        edges = stats.get("hist_edges") or []
        hist_caption = "predictions"
        if len(edges) >= 2:
            hist_caption += f" {fmt_edge(edges[0])} … {fmt_edge(edges[-1])}"
        panel.show_stats(title, subtitle, lines, series, caption, hist, hist_caption)

    def _delta_lines(
        self, panel: VariantPanel, delta: dict[str, Any], metric_name: str | None
    ) -> list[tuple[str, Text]]:
        """Canary minus production, coloured by the automatic-rollback rule's margins."""
        style = panel.stats.style_of
        rule = self.project.config.serving.canary
        first = Text()
        err = delta.get("error_rate_delta")
        if err is not None:
            level = "bad" if err > rule.max_error_rate_increase else "good"
            first.append(f"err {_signed(err * 100, 2)}pt", style=style(level))
        p99 = delta.get("p99_delta_ms")
        if p99 is not None:
            level = "bad" if p99 > rule.max_p99_increase_ms else "good"
            if first:
                first.append(" · ")
            first.append(f"p99 {_signed(p99, 1)}ms", style=style(level))
        second = Text()
        metric = delta.get("metric_delta")
        if metric is not None and metric_name:
            second.append(f"{metric_name} {_signed(metric, 4)}")
        mean = delta.get("prediction_mean_delta")
        if mean is not None:
            if second:
                second.append(" · ")
            second.append(f"mean {_signed(mean, 4)}")
        lines = [("vs prod", first)] if first else []
        if second:
            lines.append(("" if lines else "vs prod", second))
        return lines

    # --- traffic -------------------------------------------------------------------------
    def action_traffic(self, points: int) -> None:
        self._set_traffic(points)

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _set_traffic(self, points: int) -> None:
        from workbench import deployments

        # The core reads and moves the share under the state's lock: presses add up, also
        # against changes made meanwhile from another process.
        with self._change_lock:
            try:
                current, after = deployments.adjust_traffic(self.project, points)
            except Exception as exc:
                self.post_message(self.Changed("traffic", False, describe_error(exc)))
                return
        if after is None or after.canary is None:
            edge = "at most" if points > 0 else "at least"
            text = f"canary traffic is already {current:g}% ({edge} {current:g}%)"
            self.post_message(self.Changed("traffic", True, text, warning=True))
            return
        text = f"canary traffic {current:g}% → {after.canary.traffic * 100:g}%"
        self.post_message(self.Changed("traffic", True, text, after.generation))

    # --- promote and rollback ------------------------------------------------------------
    def _canary_or_warn(self, what: str) -> dict[str, Any] | None:
        if self.busy:
            self.notify(f"a {self.busy} is already running", severity="warning")
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
        from workbench import deployments

        with self._change_lock:
            try:
                before = deployments.read_state(self.project).canary
                after = deployments.promote_canary(self.project, reason)
            except Exception as exc:
                self.post_message(self.Changed("promote", False, describe_error(exc)))
                return
        version = fmt_version(before.version if before else None)
        self.post_message(
            self.Changed("promote", True, f"{version} promoted to production", after.generation)
        )

    @work(thread=True, group="deployments-change", exit_on_error=False)
    def _rollback(self, reason: str) -> None:
        from workbench import deployments

        with self._change_lock:
            try:
                before = deployments.read_state(self.project).canary
                after = deployments.rollback_canary(self.project, reason)
            except Exception as exc:
                self.post_message(self.Changed("rollback", False, describe_error(exc)))
                return
        version = fmt_version(before.version if before else None)
        self.post_message(
            self.Changed("rollback", True, f"canary {version} rolled back", after.generation)
        )

    # --- deploy a canary -----------------------------------------------------------------
    def action_canary(self) -> None:
        if self.busy:
            self.notify(f"a {self.busy} is already running", severity="warning")
            return
        self._plan_canary()

    @work(thread=True, exclusive=True, group="deployments-plan", exit_on_error=False)
    def _plan_canary(self) -> None:
        from workbench import deployments, registry

        try:
            versions = sorted(v.version for v in registry.list_versions(self.project))
            production = deployments.production_version(self.project)
            aliases = registry.aliases(self.project)
        except Exception as exc:
            self.post_message(self.CanaryPlanned([], None, None, describe_error(exc)))
            return
        # Suggest the staging candidate, else the newest version that is not production.
        staging = aliases.get("staging")
        others = [v for v in versions if v != production]
        suggested = staging if staging in others else (others[-1] if others else None)
        self.post_message(self.CanaryPlanned(versions, production, suggested))

    def on_deployments_screen_canary_planned(self, message: CanaryPlanned) -> None:
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
        from workbench import deployments

        with self._change_lock:
            try:
                after = deployments.start_canary(self.project, version, percent, reason=reason)
            except Exception as exc:
                self.post_message(self.Changed("canary", False, describe_error(exc)))
                return
        self.post_message(
            self.Changed(
                "canary", True, f"canary v{version} on {percent:g}% of traffic", after.generation
            )
        )

    # --- after a change ------------------------------------------------------------------
    def on_deployments_screen_changed(self, message: Changed) -> None:
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
        from workbench import deployments

        applied = deployments.wait_applied(self.project, generation, APPLY_WAIT_S)
        self.post_message(self.Applied(generation, applied))

    def on_deployments_screen_applied(self, message: Applied) -> None:
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
