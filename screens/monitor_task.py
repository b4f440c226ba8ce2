"""The TUI's monitor (`[monitor] enabled = true`), run by the app: `monitor_loop` runs
`monitor.run_forever` in the app's thread worker, started after the first paint, and
`monitor_round` one round on demand (the Drift screen's `m`). Outcomes come back as
`MonitorReport` messages; `monitor_reported` keeps them on the app (`monitor_outcomes`, the
last MONITOR_KEEP), toasts what matters and updates the Drift screen's monitor line.

Imported lazily by the app: nothing here imports the drift engine, the monitor or the Drift
screen until a worker or a report needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.message import Message
from textual.worker import get_current_worker

from screens.base import describe_error

if TYPE_CHECKING:
    from screens.app import WorkbenchApp
    from workbench.config import MonitorSection
    from workbench.monitoring.monitor import MonitorOutcome

#: Monitor outcomes the app keeps.
MONITOR_KEEP = 20


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


def monitor_text(
    cfg: MonitorSection,
    outcomes: Sequence[MonitorOutcome],
    busy: str,
    when: str,
    style: Callable[[str], Any],
) -> Text:
    """The Drift screen's monitor line: off, or its schedule, a round under way (`busy`) and
    the latest outcome (at `when`)."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append("monitor ", style=style("key"))
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
        line.append(" · last" + (f" {when}" if when else "") + ": ", style=style("key"))
        level = "alert" if last.error else "warn" if last.fired else "ok"
        line.append(outcome_text(last), style=style(level))
    return line


def monitor_loop(app: WorkbenchApp, stop: threading.Event) -> None:
    """The body of the app's monitor worker: `monitor.run_forever` until `stop` is set (or
    the worker is cancelled); an unexpected error is reported and the loop goes on after
    the interval."""
    from workbench.monitoring import monitor
    from workbench.store.parquet_log import utcnow

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
    from workbench.monitoring import monitor
    from workbench.store.parquet_log import utcnow

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
    from screens.drift import DriftScreen

    screen = app.screen
    for candidate in (screen, *app.screen_stack):
        if isinstance(candidate, DriftScreen):
            candidate.monitor_changed(recorded)
            break
