"""The App's monitor state (screens.app_state.MonitorState) as the monitor's reports fold
into it (screens.monitor_task.next_state): pure, no app running."""

from __future__ import annotations

from workbench_tui.app_state import MONITOR_KEEP, MonitorState
from workbench_tui.monitor_task import MonitorReport, next_state

from workbench.monitoring.monitor import MonitorOutcome


def outcome(k: int, checked: bool = True) -> MonitorOutcome:
    check = {"status": "ok"} if checked else {}
    return MonitorOutcome(f"2026-01-15T09:{k:02d}:00", False, False, f"round {k}", check=check)


def test_reports_fold_into_a_new_state() -> None:
    start = MonitorState()
    busy = next_state(start, MonitorReport("started"))
    assert busy.busy == "round running…" and start.busy == ""  # replaced, never changed
    step = next_state(busy, MonitorReport("step", text="train done"))
    assert step.busy == "round: train done"
    done = next_state(step, MonitorReport("outcome", outcome(1), manual=True))
    assert done.busy == "" and done.last is not None and done.last.reason == "round 1"
    assert done.recorded == 1
    # a scheduled round's outcome leaves a manual round's busy line alone
    scheduled = next_state(busy, MonitorReport("outcome", outcome(2, checked=False)))
    assert scheduled.busy == "round running…" and scheduled.recorded == 0
    assert next_state(done, MonitorReport("stopped")) is done


def test_only_the_latest_outcomes_are_kept() -> None:
    state = MonitorState()
    for k in range(MONITOR_KEEP + 5):
        state = next_state(state, MonitorReport("outcome", outcome(k)))
    assert len(state.outcomes) == MONITOR_KEEP
    assert state.outcomes[0].reason == "round 5" and state.recorded == MONITOR_KEEP + 5
