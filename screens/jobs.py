"""Jobs: every job with its runner, status, runtime, resources and progress; below, the
selected job's log, live. `/` searches the log (escape leaves the search and clears it), `f`
toggles follow, `x` stops the selected job and `R` runs it again as a new job (both ask
first; no reason needed).

The screen keeps no job logic: the core's `jobs.telemetry` lists the jobs with their CPU,
memory and GPU memory (`snapshot`: it also settles jobs whose process ended unobserved, and
matches each runner's host pids to nvidia-smi's compute apps) and reads the selected job's
log from where it stopped (`tail_log`, whole new lines only). Both run in thread workers on
timers (every REFRESH_S and TAIL_S) that pause while the screen is hidden. Where nvidia-smi
exists, a GPU column shows each running job's own GPU memory and the title the device's use.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, ClassVar

from textual import events as textual_events
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker
from workbench_tui import jobs_messages
from workbench_tui.base import WorkbenchScreen, describe_error
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.jobs_format import describe_event, fmt_duration, runner_name, short_job_id
from workbench_tui.widgets.job_detail import JobDetail
from workbench_tui.widgets.jobs_table import JobsTable, RowState

if TYPE_CHECKING:
    from workbench.jobs.control import JobInfo
    from workbench.jobs.telemetry import FinalProgress

REFRESH_S = 2.0
TAIL_S = 0.5
LOG_LINES = 5000
#: After a stop, jobs are listed without reconciling for this long: whoever ran the job
#: records "stopped" as soon as its process is gone, and settling it from its log first
#: could record it as failed (see `on_jobs_screen_stopped`).
STOP_SETTLE_S = 5.0
STOP_WAIT_S = 15.0


class JobsScreen(WorkbenchScreen):
    MODE_TITLE = "Jobs"
    #: Where GPU use is read from (the device's, and each job's memory); the GPU column
    #: shows only when this is on the PATH.
    GPU_TOOL: ClassVar[str | None] = "nvidia-smi"
    CSS_PATH = "jobs.tcss"
    AUTO_FOCUS = "#jobs"
    LEAVE_INPUT_ACTION = "clear_search"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "x",
            "stop",
            "Stop",
            id="jobs.stop",
            tooltip="Stop the selected job (asks first)",
        ),
        Binding(
            "R",
            "restart",
            "Restart",
            id="jobs.restart",
            tooltip="Run the selected job again, as a new job with the same arguments (asks first)",
        ),
        Binding(
            "slash",
            "search",
            "Search log",
            id="jobs.search",
            tooltip="Show only the log lines that contain some text (escape clears it)",
        ),
        Binding(
            "f",
            "toggle_follow",
            "Follow",
            id="jobs.follow",
            tooltip="Follow the log: keep the newest line in view (on by default)",
        ),
        Binding(
            "escape",
            "clear_search",
            "Leave search",
            id="jobs.clear_search",
            tooltip="Leave the log search for the jobs table (and clear it)",
        ),
        Binding(
            "l",
            "focus_log",
            "Log",
            show=False,
            id="jobs.focus_log",
            tooltip="Move to the log to scroll it (escape goes back to the table)",
        ),
        Binding("L", "lineage", "Lineage", id="jobs.lineage", tooltip="Show the job's lineage"),
    ]

    # The screen's messages (handlers: on_jobs_screen_loaded, ...).
    Loaded = jobs_messages.Loaded
    LogRead = jobs_messages.LogRead
    Stopped = jobs_messages.Stopped
    RestartProgress = jobs_messages.RestartProgress
    Restarted = jobs_messages.Restarted

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[JobInfo] = []
        self.stats: dict[str, dict[str, float]] = {}
        self.gpu: str | None = None
        self.runner_label = ""
        self.gpu_tool: str | None = None
        self.loaded = False
        self.selected_id: str | None = None
        self.progress: tuple[int, int] | None = None
        self.stopping: set[str] = set()
        self.restarting: str | None = None  # the job being run again
        self._restart_known: set[str] = set()
        self._restart_new: str | None = None
        self._stop_restart = threading.Event()
        self._reconcile_after = 0.0  # time.monotonic(); read by the load worker
        self._finished: FinalProgress | None = None  # the load worker's
        self._log_seq = 0
        self._log_offset = 0
        self._log_complete = False
        self._load_worker: Worker[None] | None = None
        self._tail_worker: Worker[None] | None = None
        self._poll_timers: list[Timer] = []
        self._last_error: dict[str, str] = {}

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        self.table = JobsTable(id="jobs")
        yield self.table
        self.no_jobs = Static(
            "No jobs yet — press [b]t[/] to train a model, or run [b]workbench train[/].",
            id="no-jobs",
        )
        yield self.no_jobs
        d = self.detail = JobDetail(LOG_LINES, id="job-detail")
        # (the panel's parts, by their names, for tests)
        self.log_view, self.search_input, self.count = d.log_view, d.search_input, d.count
        self.progress_row, self.bar, self.iteration_label = d.progress_row, d.bar, d.iteration_label
        yield d
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # (WorkbenchScreen.on_mount runs too, after this: Textual calls each class's handler.)
        from workbench.jobs.gpu import find_tool

        self.gpu_tool = find_tool(self.GPU_TOOL)
        self.no_jobs.display = False
        self.table.add_job_columns(gpu=self.gpu_tool is not None)
        self.table.loading = True
        self._poll_timers = [
            self.set_interval(REFRESH_S, self._refresh_tick),
            self.set_interval(TAIL_S, self._tail_tick),
        ]

    def on_screen_suspend(self, event: textual_events.ScreenSuspend) -> None:
        for timer in self._poll_timers:
            timer.pause()

    def on_screen_resume(self) -> None:
        # WorkbenchScreen.on_screen_resume runs after this one and reloads if data changed.
        for timer in self._poll_timers:
            timer.resume()

    def on_unmount(self) -> None:
        self._stop_restart.set()

    # --- the jobs table ------------------------------------------------------------------
    def reload(self) -> None:
        self._load_worker = self._load()

    def _refresh_tick(self) -> None:
        if self._load_worker is None or self._load_worker.is_finished:
            self.reload()

    @work(thread=True, exclusive=True, group="jobs-load", exit_on_error=False)
    def _load(self) -> None:
        from workbench.jobs import telemetry

        runner = self.runner_label or runner_name(self.project)
        if self._finished is None:
            self._finished = telemetry.FinalProgress()
        with self.wb.database() as db:
            reconcile = time.monotonic() >= self._reconcile_after
            snapshot = telemetry.snapshot(
                self.project,
                db,
                reconcile=reconcile,
                gpu_tool=self.gpu_tool,
                finished=self._finished,
            )
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(snapshot, runner))

    def on_jobs_screen_loaded(self, message: jobs_messages.Loaded) -> None:
        self._last_error.pop("jobs-load", None)
        first = not self.loaded
        self.loaded = True
        self.table.loading = False
        snapshot = message.snapshot
        if message.runner != self.runner_label or snapshot.gpu != self.gpu:
            self.runner_label = message.runner
            self.gpu = snapshot.gpu
            title = f"{self.project.name} · {self.MODE_TITLE} · runner: {message.runner}"
            self.sub_title = f"{title} · gpu {snapshot.gpu}" if snapshot.gpu else title
        self.stats = snapshot.stats
        self.jobs = snapshot.jobs
        ids = [job.job_id for job in self.jobs]
        if self.restarting and self._restart_new is None:
            new = [i for i in ids if i not in self._restart_known]
            if new:
                self._restart_new = new[0]
                self._select(new[0], move_cursor=True)
        self.stopping &= {job.job_id for job in self.jobs if job.active}
        self.table.show(self.jobs, self._row_state(), self.selected_id, rebuild=first)
        self.table.display = bool(self.jobs)
        self.no_jobs.display = not self.jobs
        if not self.jobs:
            self._select(None)
        elif self.selected_id not in ids:
            self._select(ids[min(self.table.cursor_row, len(ids) - 1)], move_cursor=True)
        self._show_selected()
        self.detail.follow_usage(self.project, self.selected_job)  # its system metrics

    def _row_state(self) -> RowState:
        live = (self.selected_id, self.progress) if self.selected_id and self.progress else None
        return RowState(self.stats, self.stopping, live)

    @property
    def selected_job(self) -> JobInfo | None:
        return next((job for job in self.jobs if job.job_id == self.selected_id), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # A rebuild moves the cursor more than once: only the event for where it ended counts.
        if (
            event.data_table is self.table
            and event.cursor_row == self.table.cursor_row
            and event.row_key.value is not None
        ):
            self._select(event.row_key.value)

    def _select(self, job_id: str | None, move_cursor: bool = False) -> None:
        if move_cursor and job_id is not None:
            ids = [job.job_id for job in self.jobs]
            if job_id in ids and self.table.row_count == len(ids):
                self.table.move_cursor(row=ids.index(job_id), animate=False)
        if job_id == self.selected_id:
            return
        self.selected_id = job_id
        self._log_seq += 1
        self._log_offset = 0
        self._log_complete = False
        job = self.selected_job
        self.progress = job.progress if job else None
        self.log_view.reset()
        self._show_selected()
        self._tail_tick(force=True)
        self.detail.follow_usage(self.project, job, force=True)

    def _show_selected(self) -> None:
        job = self.selected_job
        status = "" if job is None else "stopping…" if job.job_id in self.stopping else job.status
        self.detail.show_job(job, status, self.progress or (job.progress if job else None))

    # --- the selected job's log ----------------------------------------------------------
    def _tail_tick(self, force: bool = False) -> None:
        job = self.selected_job
        if job is None or (self._log_complete and not force):
            return
        if not force and self._tail_worker is not None and not self._tail_worker.is_finished:
            return
        self._tail_worker = self._tail(self._log_seq, job, self._log_offset)

    @work(thread=True, exclusive=True, group="jobs-tail", exit_on_error=False)
    def _tail(self, seq: int, job: JobInfo, start: int) -> None:
        from workbench.jobs.telemetry import tail_log

        tail = tail_log(job, start)
        lines = [line if event is None else describe_event(event) for line, event in tail.lines]
        if not get_current_worker().is_cancelled:
            self.post_message(self.LogRead(seq, tail, lines, complete=not job.active))

    def on_jobs_screen_log_read(self, message: jobs_messages.LogRead) -> None:
        if message.seq != self._log_seq or message.tail.start != self._log_offset:
            return  # for another job, or lines already shown
        self._last_error.pop("jobs-tail", None)
        self._log_offset = message.tail.next_offset
        self._log_complete = message.complete
        self.log_view.add_lines(message.lines)
        if message.tail.progress:
            self._set_progress(message.tail.progress)
        self.detail.show_count()

    def _set_progress(self, progress: tuple[int, int]) -> None:
        if progress == self.progress:
            return
        self.progress = progress
        self._show_selected()
        job = self.selected_job
        if job is not None:
            self.table.update_job(job, self._row_state())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_search":
            # Leaves the search box; from the table or the log, clears a search still on.
            return self.input_focused or bool(self.log_view.search) or self.log_view.has_focus
        return super().check_action(action, parameters)

    def action_search(self) -> None:
        self.search_input.focus()

    def action_clear_search(self) -> None:
        self.detail.clear_search()
        self.table.focus()

    def action_toggle_follow(self) -> None:
        self.detail.toggle_follow()

    def action_focus_log(self) -> None:
        self.log_view.focus()

    def action_lineage(self) -> None:
        from workbench_tui.lineage import open_lineage

        if (job := self._job_or_warn()) is not None:
            open_lineage(self, job.job_id)

    # --- stop ----------------------------------------------------------------------------
    def _job_or_warn(self) -> JobInfo | None:
        job = self.selected_job
        if job is None:
            self.notify("no job selected", severity="warning")
        return job

    def action_stop(self) -> None:
        job = self._job_or_warn()
        if job is None:
            return
        if not job.active:
            self.notify(
                f"job {job.job_id} is not running (status: {job.status})",
                severity="error",
                title="Cannot stop",
                markup=False,
            )
            return
        if job.job_id in self.stopping:
            self.notify(f"job {job.job_id} is already stopping", severity="warning", markup=False)
            return

        def confirmed(answer: str | None) -> None:
            if answer is None:
                return
            self.stopping.add(job.job_id)
            self._show_selected()
            if job.job_id == self._restart_new:
                # Run by this screen's restart worker: its runner stops it and the job is
                # recorded as stopped (should_stop), in this process.
                self._stop_restart.set()
                return
            self._reconcile_after = time.monotonic() + STOP_WAIT_S
            self._stop(job.job_id)

        self.app.push_screen(
            ConfirmDialog(
                f"Stop job {short_job_id(job.job_id)}",
                f"{job.job_id}: {job.kind} on the {job.runner} runner, "
                f"running for {fmt_duration(job.runtime_s)} — stop it?",
                "Stop",
                require_reason=False,
            ),
            callback=confirmed,
        )

    @work(thread=True, group="jobs-control", exit_on_error=False)
    def _stop(self, job_id: str) -> None:
        from workbench.jobs.control import stop_job

        try:
            stop_job(self.project, job_id)
        except Exception as exc:
            self.post_message(self.Stopped(job_id, describe_error(exc)))
        else:
            self.post_message(self.Stopped(job_id))

    def on_jobs_screen_stopped(self, message: jobs_messages.Stopped) -> None:
        # The process is gone; whoever ran the job records "stopped", and the next refresh
        # shows it (reloading right now could find the job ended before that record).
        # Until it has, list_jobs would see a process that ended and could settle the job from
        # its log as failed; so reconciling waits a few seconds.
        if message.error:
            self._reconcile_after = 0.0
            self.stopping.discard(message.job_id)
            self.notify(message.error, severity="error", title="Cannot stop", markup=False)
            self._show_selected()
        else:
            self._reconcile_after = time.monotonic() + STOP_SETTLE_S
            self.notify(f"job {message.job_id} stopped", title="Jobs", markup=False)

    # --- restart -------------------------------------------------------------------------
    def action_restart(self) -> None:
        job = self._job_or_warn()
        if job is None:
            return
        if job.active:
            self.notify(
                f"job {job.job_id} is still running; stop it first",
                severity="error",
                title="Cannot restart",
                markup=False,
            )
            return
        if self.restarting:
            self.notify(
                f"job {self.restarting} is being run again already; wait for it",
                severity="warning",
                markup=False,
            )
            return

        def confirmed(answer: str | None) -> None:
            if answer is not None:
                self.restarting = job.job_id
                self._restart_known = {j.job_id for j in self.jobs}
                self._restart_new = None
                self._stop_restart.clear()
                self._restart(job.job_id)
                self.reload()

        self.app.push_screen(
            ConfirmDialog(
                f"Restart job {short_job_id(job.job_id)}",
                f"{job.job_id} ({job.status}) → a new {job.kind} job with the same arguments, "
                f"on the {job.runner} runner",
                "Restart",
                require_reason=False,
            ),
            callback=confirmed,
        )

    @work(thread=True, exclusive=True, group="jobs-restart", exit_on_error=False)
    def _restart(self, job_id: str) -> None:
        from workbench.jobs.control import restart_job
        from workbench.jobs.observer import JobObserver

        post = self.post_message
        try:
            outcome = restart_job(
                self.project,
                job_id,
                observer=JobObserver(
                    on_progress=lambda p: post(self.RestartProgress(p.iteration, p.total)),
                    should_stop=self._stop_restart.is_set,
                ),
            )
        except Exception as exc:
            post(self.Restarted("error", describe_error(exc)))
            return
        text = f"job {outcome.job_id} {outcome.status}"
        if outcome.reason:
            text += f": {outcome.reason}"
        post(self.Restarted(outcome.status, text))

    def on_jobs_screen_restart_progress(self, message: jobs_messages.RestartProgress) -> None:
        if self._restart_new is not None and self._restart_new == self.selected_id:
            self._set_progress((message.iteration, message.total))

    def on_jobs_screen_restarted(self, message: jobs_messages.Restarted) -> None:
        self.restarting = None
        self._restart_new = None
        if message.status in ("succeeded", "stopped"):
            self.notify(message.text, title="Restarted job", markup=False)
        else:
            self.notify(message.text, title="Restart failed", severity="error", markup=False)
        self.reload()

    # --- errors --------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group = event.worker.group
        if group in ("jobs-load", "jobs-tail", "jobs-usage") and event.state == WorkerState.ERROR:
            # Polled every few seconds: say so once, not on every poll.
            text = describe_error(event.worker.error)
            if self._last_error.get(group) != text:
                self._last_error[group] = text
                self.notify(text, severity="error", title="Jobs", markup=False)
            if group == "jobs-load":
                self.table.loading = False
            event.prevent_default()  # WorkbenchScreen's handler would say it again
