"""Watching a running job: the runner's observer that parses each line once, and the
verdict on how the job ended (by what its caller declared, never by its kind)."""

from __future__ import annotations

from collections.abc import Callable

from workbench.jobs import events
from workbench.jobs.events import Error, Progress, Run, TrainResult
from workbench.jobs.observer import JobObserver
from workbench.plugins import EndsWell, JobSpec, RunObserver


def ends_well_of(kind: str, declared: str | None) -> EndsWell:
    """How a recorded job ends well: as its caller declared (recorded with the job), else,
    for a record written before jobs recorded it, as its kind meant then."""
    if declared in ("result", "stopped"):
        return "stopped" if declared == "stopped" else "result"
    return "stopped" if kind == "serve" else "result"  # records from before `ends_well`


class Watch(RunObserver):
    """The runner's observer of one job: records its start, parses each line once, keeps
    what the job reported and passes progress and log lines on to the caller's observer."""

    def __init__(self, observer: JobObserver, started: Callable[[str], None]) -> None:
        self.observer, self._started = observer, started
        self.run_id: str | None = None
        self.result: TrainResult | None = None
        self.error: str | None = None

    def on_start(self, handle: str) -> None:
        self._started(handle)

    def on_line(self, line: str) -> None:
        event = events.decode(line)
        if event is None:
            self.observer.on_log(line)
        elif isinstance(event, Progress):
            self.observer.on_progress(event)
        elif isinstance(event, TrainResult):
            self.result, self.run_id = event, event.run_id
        elif isinstance(event, Run):
            self.run_id = event.run_id
        elif isinstance(event, Error):
            self.error = event.message

    def should_stop(self) -> bool:
        return self.observer.should_stop()


def judge(
    spec: JobSpec, code: int, reason: str | None, watch: Watch
) -> tuple[str, int, str | None]:
    """(status, exit code, reason) of a job the runner saw end."""
    reason = watch.error or reason
    if spec.ends_well == "stopped" and code == 0:
        return "stopped", code, "stopped"
    if spec.ends_well == "result" and code == 0 and watch.result is not None:
        return "succeeded", code, reason
    if reason == "stopped" or watch.should_stop():
        return "stopped", code, "stopped by user"
    if code == 0:
        return "failed", 1, reason or "job ended without a result"
    return "failed", code, reason
