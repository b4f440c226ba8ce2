"""The Jobs screen's messages, from its workers to the screen (handlers:
`on_jobs_screen_loaded`, `on_jobs_screen_log_read`, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from workbench.jobs.telemetry import JobsSnapshot, LogTail


class Loaded(Message, namespace="jobs_screen"):
    def __init__(self, snapshot: JobsSnapshot, runner: str) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.runner = runner


class LogRead(Message, namespace="jobs_screen"):
    """New lines of the selected job's log (`tail`), for the job selected as `seq`."""

    def __init__(self, seq: int, tail: LogTail, lines: list[str], complete: bool) -> None:
        super().__init__()
        self.seq = seq
        self.tail = tail
        self.lines = lines
        self.complete = complete


class Stopped(Message, namespace="jobs_screen"):
    def __init__(self, job_id: str, error: str = "") -> None:
        super().__init__()
        self.job_id = job_id
        self.error = error


class RestartProgress(Message, namespace="jobs_screen"):
    def __init__(self, iteration: int, total: int) -> None:
        super().__init__()
        self.iteration = iteration
        self.total = total


class Restarted(Message, namespace="jobs_screen"):
    def __init__(self, status: str, text: str) -> None:
        super().__init__()
        self.status = status  # succeeded | failed | stopped, or "error" (did not run)
        self.text = text
