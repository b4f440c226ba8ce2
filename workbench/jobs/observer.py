"""One observer for whoever waits on a job or a pipeline: its progress, its log lines, the
pipeline's steps, and whether to stop. Every hook does nothing by default, so a caller names
only what it listens to: `JobObserver(on_log=print, should_stop=stop.is_set)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workbench.jobs.events import Progress


def _nothing(*_args: object) -> None:
    return None


def _never() -> bool:
    return False


@dataclass(frozen=True)
class JobObserver:
    #: each progress event of a training job
    on_progress: Callable[[Progress], object] = _nothing
    #: each log line (event lines are parsed, never passed here)
    on_log: Callable[[str], object] = _nothing
    #: a pipeline step: (name, "running" | "done" | "failed", detail); jobs never call it
    on_step: Callable[[str, str, str], object] = _nothing
    #: polled while a job runs: True stops it
    should_stop: Callable[[], bool] = _never


#: The observer of a caller that listens to nothing.
QUIET = JobObserver()
