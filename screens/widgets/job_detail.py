"""JobDetail: the Jobs screen's lower panel for the selected job: a line about it, the latest
system metrics of its MLflow run (CPU, memory, GPU, GPU-seconds; hidden until there are
some), its training or sweep progress, a search box over its log, and the log itself
(LogView)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import Input, Label, ProgressBar
from textual.worker import Worker, get_current_worker
from workbench_tui.formatting import ellipsize, short_id
from workbench_tui.jobs_format import fmt_duration, fmt_started
from workbench_tui.widgets.log_view import LogView

if TYPE_CHECKING:
    from workbench.jobs.control import JobInfo
    from workbench.project import Project


class JobDetail(Vertical):
    class UsageRead(Message):
        """The latest system metrics of a job's run, as one line (None: it logged none)."""

        def __init__(self, job_id: str, text: str | None) -> None:
            super().__init__()
            self.job_id = job_id
            self.text = text

    def __init__(self, log_lines: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._usage_job: str | None = None  # the job whose usage is shown
        self._usage_final: set[str] = set()  # finished jobs whose usage was read after the end
        self._usage_worker: Worker[None] | None = None
        self.border_title = "log"
        self.info = Label("", id="job-info")
        self.usage = Label("", id="job-usage")
        self.progress_row = Horizontal(id="job-progress")
        self.bar = ProgressBar(total=None, show_eta=False, id="job-bar")
        self.iteration_label = Label("", id="job-iteration")
        self.search_input = Input(placeholder="/ search the log", compact=True, id="log-search")
        self.count = Label("", id="log-count")
        self.log_view = LogView(log_lines, id="job-log")

    def compose(self) -> ComposeResult:
        yield self.info
        yield self.usage
        with self.progress_row:
            yield self.bar
            yield self.iteration_label
        with Horizontal(id="search-bar"):
            yield self.search_input
            yield self.count
        yield self.log_view

    def on_mount(self) -> None:
        self.progress_row.display = False
        self.usage.display = False
        self.show_count()

    def follow_usage(self, project: Project, job: JobInfo | None, force: bool = False) -> None:
        """Read the system metrics of `job`'s run in a worker (MLflow's tables, read-only):
        a running job's at each call (the screen's refresh), a finished one's once after it
        ended; `force` for a newly selected job."""
        if job is None or job.job_id != self._usage_job:
            self._usage_job = job.job_id if job else None
            self.show_usage(None)
        if job is None or not job.run_id:
            return
        if not job.active and job.job_id in self._usage_final and not force:
            return
        if not force and self._usage_worker is not None and not self._usage_worker.is_finished:
            return
        if not job.active:
            self._usage_final.add(job.job_id)
        self._usage_worker = self._load_usage(project, job.job_id, job.run_id)

    @work(thread=True, exclusive=True, group="jobs-usage", exit_on_error=False)
    def _load_usage(self, project: Project, job_id: str, run_id: str) -> None:
        from workbench_tui import loaders

        usage = loaders.load_system_usage(project, run_id)
        if not get_current_worker().is_cancelled:
            self.post_message(self.UsageRead(job_id, usage.describe() if usage else None))

    def on_job_detail_usage_read(self, message: UsageRead) -> None:
        message.stop()
        if message.job_id == self._usage_job:
            self.show_usage(message.text)

    def show_usage(self, text: str | None) -> None:
        """The run's latest system metrics as one line (None or "": hidden)."""
        self.usage.display = bool(text)
        self.usage.update(Text(f"system: {text}" if text else "", style="dim"))

    def show_job(self, job: JobInfo | None, status: str, progress: tuple[int, int] | None) -> None:
        """The job's line and progress bar (`status` as shown: "stopping…" while it stops)."""
        if job is None:
            self.border_title = "log"
            self.info.update("[dim]no job selected[/]")
            self.progress_row.display = False
            self.show_usage(None)
            self.show_count()
            return
        self.border_title = f"{escape(job.job_id)} · {escape(status)}"
        parts = [f"started {fmt_started(job.started_at)}", f"ran {fmt_duration(job.runtime_s)}"]
        if job.exit_code is not None:
            parts.append(f"exit {job.exit_code}")
        if job.run_id:
            parts.append(f"run {short_id(job.run_id)}")
        if job.reason:
            parts.append(job.reason)
        self.info.update(Text(ellipsize(" · ".join(parts), 200)))
        if job.kind in ("train", "sweep") and progress and progress[1] > 0:
            self.progress_row.display = True
            self.bar.update(total=progress[1], progress=progress[0])
            unit = "trial" if job.kind == "sweep" else "iteration"
            self.iteration_label.update(f"{unit} {progress[0]:,}/{progress[1]:,}")
        else:
            self.progress_row.display = False
        self.show_count()

    def show_count(self) -> None:
        view = self.log_view
        text = f"{view.shown:,} of {view.total:,} lines"
        if self.search_input.has_focus:
            text += " · [b]esc[/] leaves the search"
        elif view.search:
            text += " · [b]esc[/] clears"
        text += " · follow" if view.follow else " · [b]not following[/] (f)"
        self.count.update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is self.search_input:
            self.log_view.set_search(event.value)
            self.show_count()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is self.search_input:
            self.log_view.focus()

    def on_descendant_focus(self) -> None:
        self.show_count()

    def on_descendant_blur(self) -> None:
        self.show_count()

    def clear_search(self) -> None:
        self.search_input.value = ""
        self.log_view.set_search("")
        self.show_count()

    def toggle_follow(self) -> None:
        self.log_view.set_follow(not self.log_view.follow)
        self.show_count()
