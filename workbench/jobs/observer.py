"""One observer for whoever waits on a job or a pipeline: its progress, its log lines, the
pipeline's steps, and whether to stop. Every hook does nothing by default, so a caller names
only what it listens to: `JobObserver(on_log=print, should_stop=stop.is_set)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def legacy_observer(
    observer: JobObserver | None,
    on_progress: Callable[[int, int, dict[str, float]], object] | None = None,
    on_log: Callable[[str], object] | None = None,
    on_step: Callable[[str, str, str], object] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> JobObserver:
    """DEPRECATED shim, to be removed once workbench/cli/ passes a JobObserver: the old
    callback keywords (`on_progress(iteration, total, metrics)`, ...) folded into one
    observer. Only `pipeline.run`, `run_training` and `run_job` accept them."""
    base = observer or QUIET
    legacy: dict[str, Any] = {}
    if on_progress is not None:
        legacy["on_progress"] = lambda p: on_progress(p.iteration, p.total, p.metrics)
    if on_log is not None:
        legacy["on_log"] = on_log
    if on_step is not None:
        legacy["on_step"] = on_step
    if should_stop is not None:
        legacy["should_stop"] = should_stop
    if not legacy:
        return base
    from dataclasses import replace

    return replace(base, **legacy)
