"""Formatting for the Jobs screen: short ids, durations, counts, progress, `@wb` events and
GPU memory, each fitted to its narrow column. Pure functions, no Textual; and the runner's
name for the title (`runner_name`, called in the load worker)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench_tui.formatting import fmt_value, short_id

if TYPE_CHECKING:
    from workbench.project import Project

STATUSES = ("starting", "running", "succeeded", "failed", "stopped")


def short_job_id(job_id: str) -> str:
    """`train-20260115-090000-a1b2` -> `a1b2` (the random part); other ids: the last 6."""
    last = job_id.rsplit("-", 1)[-1]
    return last if job_id.count("-") >= 3 and len(last) <= 6 else job_id[-6:]


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_count(n: int) -> str:
    """Short counts for a narrow column, rounded down: 950, 12.6k, 100k, 1.2M."""
    if n < 10_000:
        return str(n)
    if n < 100_000:
        return f"{n // 100 / 10:.1f}k".replace(".0k", "k")
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n // 100_000 / 10:.1f}M".replace(".0M", "M")


def fmt_progress(progress: tuple[int, int] | None) -> str:
    """`iteration/total`, shortened to fit 11 cells."""
    if progress is None:
        return "-"
    text = f"{progress[0]}/{progress[1]}"
    return text if len(text) <= 11 else f"{fmt_count(progress[0])}/{fmt_count(progress[1])}"


def fmt_started(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def fmt_gpu_mib(mib: float | None) -> str:
    """A job's GPU memory for the narrow gpu column: 2048 MiB -> '2.0G'; None -> '-'."""
    return "-" if mib is None else f"{mib / 1024:.1f}G"


def describe_event(event: dict[str, Any]) -> str:
    """One readable log line for a job's `@wb` event line."""
    name = str(event.get("event"))
    if name == "progress":
        metrics = event.get("metrics") or {}
        scores = "  ".join(f"{k} {fmt_value(v)}" for k, v in metrics.items())
        return f"• iteration {event.get('iteration')}/{event.get('total')}  {scores}".rstrip()
    if name == "run":
        return f"• run {event.get('run_id')}"
    if name == "result":
        metrics = event.get("metrics") or {}
        shown = "  ".join(f"{k} {fmt_value(v)}" for k, v in metrics.items() if "holdout" in k)
        return f"• result: run {short_id(event.get('run_id'))}  {shown}".rstrip()
    if name == "error":
        return f"• error: {event.get('message')}"
    return f"• {name}"


def runner_name(project: Project) -> str:
    """The runner jobs run on, for the Jobs screen's title (the choice and why if it fails).
    Called in the load worker: resolving it may ask Docker."""
    from workbench_tui.base import describe_error

    from workbench.jobs.control import resolve_runner

    try:
        return str(resolve_runner(project).name)
    except Exception as exc:
        return f"{project.config.runner.default} ({describe_error(exc)})"
