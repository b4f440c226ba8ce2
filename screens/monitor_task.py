"""The TUI's monitor (`[monitor] enabled = true`), run by the app: `monitor_loop` runs
`monitor.run_forever` in the app's thread worker, started after the first paint, and
`monitor_round` one round on demand (the Drift screen's `m`, through a RunMonitorRound
message). Outcomes come back to the app as `MonitorReport` messages; `next_state` folds one
into the app's `monitor` state (screens.app_state.MonitorState), which the Drift screen
watches for its monitor line.

Imported by the app: nothing here imports the drift engine or the monitor until a worker
needs it, and nothing here knows any screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.message import Message
from textual.worker import get_current_worker
from workbench_tui.app_state import MonitorState
from workbench_tui.base import describe_error

if TYPE_CHECKING:
    from workbench.config import MonitorSection
    from workbench.monitoring.monitor import MonitorOutcome
    from workbench.project import Project

Post = Callable[[Message], object]


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


def next_state(state: MonitorState, message: MonitorReport) -> MonitorState:
    """The app's monitor state after a report: a round under way, or one more outcome."""
    if message.kind == "started":
        return state.with_busy("round running…")
    if message.kind == "step":
        return state.with_busy(f"round: {message.text}")
    if message.kind == "outcome" and message.outcome is not None:
        return state.with_outcome(message.outcome, message.manual)
    return state


def _failed(exc: BaseException) -> MonitorOutcome:
    from workbench.monitoring import monitor
    from workbench.store.parquet_log import utcnow

    at = utcnow().isoformat(timespec="seconds")
    return monitor.MonitorOutcome(
        at, False, False, "monitor round failed", error=describe_error(exc)
    )


def monitor_loop(project: Project, post: Post, stopped: Callable[[], bool]) -> None:
    """The body of the app's monitor worker: `monitor.run_forever` until `stopped()` (or
    the worker is cancelled); an unexpected error is reported and the loop goes on after
    the interval."""
    import time

    from workbench.monitoring import monitor

    worker = get_current_worker()

    def should_stop() -> bool:
        return stopped() or worker.is_cancelled

    def on_outcome(outcome: MonitorOutcome) -> None:
        if not should_stop():
            post(MonitorReport("outcome", outcome))

    interval = project.config.monitor.interval_s
    while not should_stop():
        try:
            monitor.run_forever(
                project, interval_s=interval, on_outcome=on_outcome, should_stop=should_stop
            )
        except Exception as exc:
            on_outcome(_failed(exc))
            deadline = time.monotonic() + interval
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(min(0.2, interval))


def monitor_round(project: Project, post: Post, stopped: Callable[[], bool]) -> None:
    """The body of the app's one-round worker (`m`): `check_once`, which may retrain."""
    from workbench.monitoring import monitor

    def on_step(name: str, status: str, detail: str) -> None:
        post(MonitorReport("step", text=f"{name} {status}" + (f": {detail}" if detail else "")))

    try:
        outcome = monitor.check_once(project, on_step=on_step, should_stop=stopped)
    except Exception as exc:
        outcome = _failed(exc)
    post(MonitorReport("outcome", outcome, manual=True))
