"""Jobs: every job with its runner, status, runtime, resources and progress; below, the
selected job's log, live. `/` searches the log, `f` toggles follow, `x` stops the selected
job and `R` runs it again as a new job (both ask first; no reason needed).

Polling, never blocking the event loop: a thread worker lists the jobs every REFRESH_S
(`jobs.list_jobs` also settles jobs whose process ended unobserved) with CPU and memory from
the job's runner; another reads the selected job's log every TAIL_S from where it stopped
(`jobs.read_log`, whole new lines only). Both timers pause while the screen is hidden.
Where nvidia-smi exists, a GPU column shows each running job's own GPU memory (its
processes' host pids, from the runner's optional `pids()`, matched against nvidia-smi's
compute apps) and the title shows the whole device's use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events as textual_events
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from screens.base import WorkbenchScreen, describe_error
from screens.dialogs import ConfirmDialog
from screens.formatting import ellipsize, fmt_value, short_id
from screens.widgets.log_view import LogView

if TYPE_CHECKING:
    from workbench.jobs.control import JobInfo

REFRESH_S = 2.0
TAIL_S = 0.5
#: A finished job's log is read from its last TAIL_BYTES; a live one from there on.
TAIL_BYTES = 512 * 1024
LOG_LINES = 5000
#: After a stop, jobs are listed without reconciling for this long: whoever ran the job
#: records "stopped" as soon as its process is gone, and settling it from its log first
#: could record it as failed (see `on_jobs_screen_stopped`).
STOP_SETTLE_S = 5.0
STOP_WAIT_S = 15.0
GPU_QUERY = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
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


def progress_of(event: dict[str, Any] | None) -> tuple[int, int] | None:
    """(iteration, total) of a progress event; None for any other line."""
    if event is None or event.get("event") != "progress":
        return None
    try:
        return int(event["iteration"]), int(event["total"])
    except (KeyError, TypeError, ValueError):
        return None


def read_gpu(tool: str) -> str | None:
    """The GPUs' use now, for the whole device, from `nvidia-smi` (None when it fails)."""
    try:
        out = subprocess.run(
            [tool, *GPU_QUERY], capture_output=True, text=True, timeout=3, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_gpu(out.stdout) if out.returncode == 0 else None


def parse_gpu(csv: str) -> str | None:
    """`utilization.gpu, memory.used` lines (one per GPU, MiB) -> '45% 12.3G': the mean
    utilization and the memory used on all GPUs together."""
    util: list[float] = []
    mem: list[float] = []
    for line in csv.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        # Each figure on its own: with MIG, utilization reads "[N/A]" but memory is real.
        for text, into in ((parts[0], util), (parts[1], mem)):
            with contextlib.suppress(ValueError):
                into.append(float(text))
    if not util and not mem:
        return None
    used = f"{sum(util) / len(util):.0f}%" if util else "?%"
    return f"{used} {sum(mem) / 1024:.1f}G" if mem else used


def fmt_gpu_mib(mib: float | None) -> str:
    """A job's GPU memory for the narrow gpu column: 2048 MiB -> '2.0G'; None -> '-'."""
    return "-" if mib is None else f"{mib / 1024:.1f}G"


def _style(cell: Any) -> Any:
    return cell.style if isinstance(cell, Text) else None


class JobsTable(DataTable[Any]):
    """The jobs; status colours come from the component classes (set in jobs.tcss)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"jobs-table--{status}" for status in STATUSES),
        "jobs-table--muted",
    }


class JobsScreen(WorkbenchScreen):
    MODE_TITLE = "Jobs"
    #: Where GPU use is read from (the device's, and each job's memory); the GPU column
    #: shows only when this is on the PATH.
    GPU_TOOL: ClassVar[str | None] = "nvidia-smi"
    CSS_PATH = "jobs.tcss"
    AUTO_FOCUS = "#jobs"
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
            "Clear search",
            show=False,
            id="jobs.clear_search",
            tooltip="Clear the log search and go back to the jobs table",
        ),
        Binding(
            "l",
            "focus_log",
            "Log",
            show=False,
            id="jobs.focus_log",
            tooltip="Move to the log to scroll it (escape goes back to the table)",
        ),
    ]

    class Loaded(Message):
        def __init__(
            self,
            jobs: list[JobInfo],
            stats: dict[str, dict[str, float]],
            gpu: str | None,
            runner: str,
        ) -> None:
            super().__init__()
            self.jobs = jobs
            self.stats = stats
            self.gpu = gpu
            self.runner = runner

    class LogRead(Message):
        """New lines of the selected job's log, read from byte `start` up to `next_offset`."""

        def __init__(
            self,
            seq: int,
            start: int,
            lines: list[str],
            next_offset: int,
            progress: tuple[int, int] | None,
            complete: bool,
        ) -> None:
            super().__init__()
            self.seq = seq
            self.start = start
            self.lines = lines
            self.next_offset = next_offset
            self.progress = progress
            self.complete = complete

    class Stopped(Message):
        def __init__(self, job_id: str, error: str = "") -> None:
            super().__init__()
            self.job_id = job_id
            self.error = error

    class RestartProgress(Message):
        def __init__(self, iteration: int, total: int) -> None:
            super().__init__()
            self.iteration = iteration
            self.total = total

    class Restarted(Message):
        def __init__(self, status: str, text: str) -> None:
            super().__init__()
            self.status = status  # succeeded | failed | stopped, or "error" (did not run)
            self.text = text

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
        self._finished_progress: dict[str, tuple[int, int] | None] = {}  # load worker's
        self._log_seq = 0
        self._log_offset = 0
        self._log_complete = False
        self._load_worker: Worker[None] | None = None
        self._tail_worker: Worker[None] | None = None
        self._poll_timers: list[Timer] = []
        self._last_error: dict[str, str] = {}
        self._shown_cells: dict[str, dict[str, Any]] = {}  # job id -> column key -> cell

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        self.table = JobsTable(cursor_type="row", id="jobs")
        yield self.table
        self.no_jobs = Static(
            "No jobs yet — press [b]t[/] to train a model, or run [b]workbench train[/].",
            id="no-jobs",
        )
        yield self.no_jobs
        with Vertical(id="job-detail") as detail:
            self.detail = detail
            detail.border_title = "log"
            self.info = Label("", id="job-info")
            yield self.info
            with Horizontal(id="job-progress") as row:
                self.progress_row = row
                self.bar = ProgressBar(total=None, show_eta=False, id="job-bar")
                yield self.bar
                self.iteration_label = Label("", id="job-iteration")
                yield self.iteration_label
            with Horizontal(id="search-bar"):
                self.search_input = Input(
                    placeholder="/ search the log", compact=True, id="log-search"
                )
                yield self.search_input
                self.count = Label("", id="log-count")
                yield self.count
            self.log_view = LogView(LOG_LINES, id="job-log")
            yield self.log_view
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # (WorkbenchScreen.on_mount runs too, after this: Textual calls each class's handler.)
        self.gpu_tool = shutil.which(self.GPU_TOOL) if self.GPU_TOOL else None
        self.no_jobs.display = False
        self.progress_row.display = False
        add = self.table.add_column
        add("id", width=6, key="id")
        add("kind", width=5, key="kind")
        add("runner", width=6, key="runner")
        add("status", width=9, key="status")
        add("runtime", width=7, key="runtime")
        add("cpu%", width=4, key="cpu")
        add("mem MB", width=6, key="mem")
        if self.gpu_tool:
            add("gpu mem", width=7, key="gpu")
        add("progress", width=11, key="progress")
        add("reason", width=40, key="reason")
        self.table.loading = True
        self._show_count()
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
        from workbench.jobs import control as jobs

        runner = self.runner_label or self._resolve_runner()
        with self.wb.database() as db:
            reconcile = time.monotonic() >= self._reconcile_after
            found = jobs.list_jobs(self.project, db, reconcile=reconcile)
        stats = {job.job_id: self._job_stats(job) for job in found if job.active}
        if self.gpu_tool:
            self._add_gpu_memory(found, stats, self.gpu_tool)
        for job in found:
            if job.kind == "train" and not job.active and job.progress is None:
                job.progress = self._final_progress(job)
        gpu = read_gpu(self.gpu_tool) if self.gpu_tool else None
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(found, stats, gpu, runner))

    def _resolve_runner(self) -> str:
        from workbench.jobs.control import resolve_runner

        try:
            return str(resolve_runner(self.project).name)
        except Exception as exc:
            choice = self.project.config.runner.default
            return f"{choice} ({describe_error(exc)})"

    def _job_stats(self, job: JobInfo) -> dict[str, float]:
        """CPU and memory from the job's runner (one runner instance per name is kept by the
        core, so CPU percent is measured since the previous call)."""
        from workbench.jobs import control as jobs

        return jobs.job_stats(job)

    def _add_gpu_memory(
        self, found: list[JobInfo], stats: dict[str, dict[str, float]], tool: str
    ) -> None:
        """Each running job's GPU memory (MiB) as `stats[job]["gpu_mib"]`: one nvidia-smi
        call for all jobs, the job's host pids from its runner when the runner can say."""
        from workbench.jobs.control import runner_for
        from workbench.jobs.gpu import compute_apps, job_gpu_mib

        apps = compute_apps(tool)
        if not apps:
            return
        for job in found:
            if not job.active or not job.handle:
                continue
            try:
                mib = job_gpu_mib(runner_for(job.runner).pids(job.handle), apps)
            except Exception:
                mib = None
            if mib is not None:
                stats.setdefault(job.job_id, {})["gpu_mib"] = mib

    def _final_progress(self, job: JobInfo) -> tuple[int, int] | None:
        """Where a finished training job got to, from its log's last progress event (read
        once per job: a finished job's log does not change)."""
        from workbench.jobs import events

        if job.job_id in self._finished_progress:
            return self._finished_progress[job.job_id]
        progress = None
        try:
            with open(job.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 8192))
                tail = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            tail = []
        for line in reversed(tail):
            progress = progress_of(events.parse(line))
            if progress is not None:
                break
        self._finished_progress[job.job_id] = progress
        return progress

    def on_jobs_screen_loaded(self, message: Loaded) -> None:
        self._last_error.pop("jobs-load", None)
        first = not self.loaded
        self.loaded = True
        self.table.loading = False
        if message.runner != self.runner_label or message.gpu != self.gpu:
            self.runner_label = message.runner
            self.gpu = message.gpu
            title = f"{self.project.name} · {self.MODE_TITLE} · runner: {message.runner}"
            self.sub_title = f"{title} · gpu {message.gpu}" if message.gpu else title
        self.stats = message.stats
        old_ids = [job.job_id for job in self.jobs]
        self.jobs = message.jobs
        ids = [job.job_id for job in self.jobs]
        if self.restarting and self._restart_new is None:
            new = [i for i in ids if i not in self._restart_known]
            if new:
                self._restart_new = new[0]
                self._select(new[0], move_cursor=True)
        self.stopping &= {job.job_id for job in self.jobs if job.active}
        if ids == old_ids and not first:
            for job in self.jobs:
                self._update_row(job)
        else:
            keep = self.selected_id
            self.table.clear()
            self._shown_cells.clear()
            for job in self.jobs:
                cells = self._shown_cells[job.job_id] = self._cells(job)
                self.table.add_row(*cells.values(), key=job.job_id)
            if keep in ids:
                self.table.move_cursor(row=ids.index(keep), animate=False)
        self.table.display = bool(self.jobs)
        self.no_jobs.display = not self.jobs
        if not self.jobs:
            self._select(None)
        elif self.selected_id not in ids:
            self._select(ids[min(self.table.cursor_row, len(ids) - 1)], move_cursor=True)
        self._show_selected()

    def _update_row(self, job: JobInfo) -> None:
        """Update the cells of a row that changed (most do not, between two refreshes)."""
        shown = self._shown_cells.setdefault(job.job_id, {})
        for key, value in self._cells(job).items():
            old = shown.get(key)
            if old is None or str(old) != str(value) or _style(old) != _style(value):
                shown[key] = value
                self.table.update_cell(job.job_id, key, value)

    def _cells(self, job: JobInfo) -> dict[str, Any]:
        style = self.table.get_component_rich_style
        muted = style("jobs-table--muted")
        status = "stopping…" if job.job_id in self.stopping else job.status
        status_style = style(f"jobs-table--{job.status}") if job.status in STATUSES else ""
        stats = self.stats.get(job.job_id, {})
        cpu = stats.get("cpu_percent")
        mem = stats.get("memory_mb")
        cells: dict[str, Any] = {
            "id": short_job_id(job.job_id),
            "kind": Text(job.kind or "-"),
            "runner": Text(job.runner or "-"),
            "status": Text(status, style=status_style),
            "runtime": fmt_duration(job.runtime_s),
            "cpu": Text(f"{cpu:.0f}" if cpu is not None else "-", justify="right"),
            "mem": Text(f"{mem:.0f}" if mem is not None else "-", justify="right"),
        }
        if self.gpu_tool:
            gpu = stats.get("gpu_mib") if job.active else None
            cells["gpu"] = Text(fmt_gpu_mib(gpu), justify="right")
        progress = job.progress
        if job.job_id == self.selected_id and self.progress and job.kind == "train":
            progress = self.progress
        cells["progress"] = Text(fmt_progress(progress))
        cells["reason"] = Text(job.reason or "", style=muted)
        return cells

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

    def _show_selected(self) -> None:
        job = self.selected_job
        if job is None:
            self.detail.border_title = "log"
            self.info.update("[dim]no job selected[/]")
            self.progress_row.display = False
            self._show_count()
            return
        status = "stopping…" if job.job_id in self.stopping else job.status
        self.detail.border_title = f"{escape(job.job_id)} · {escape(status)}"
        parts = [f"started {fmt_started(job.started_at)}", f"ran {fmt_duration(job.runtime_s)}"]
        if job.exit_code is not None:
            parts.append(f"exit {job.exit_code}")
        if job.run_id:
            parts.append(f"run {short_id(job.run_id)}")
        if job.reason:
            parts.append(job.reason)
        self.info.update(Text(ellipsize(" · ".join(parts), 200)))
        progress = self.progress or job.progress
        if job.kind == "train" and progress and progress[1] > 0:
            self.progress_row.display = True
            self.bar.update(total=progress[1], progress=progress[0])
            self.iteration_label.update(f"iteration {progress[0]:,}/{progress[1]:,}")
        else:
            self.progress_row.display = False
        self._show_count()

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
        from workbench.jobs import events
        from workbench.jobs.control import read_log

        offset = start
        skip_partial = False
        if start == 0:
            try:
                size = os.path.getsize(job.log_path)
            except OSError:
                size = 0
            if size > TAIL_BYTES:
                offset, skip_partial = size - TAIL_BYTES, True
        raw, next_offset = read_log(job, offset, events_too=True)
        if skip_partial:
            raw = raw[1:]
        lines: list[str] = []
        progress: tuple[int, int] | None = None
        for line in raw:
            event = events.parse(line) if line.startswith(events.PREFIX) else None
            if event is None:
                lines.append(line)
                continue
            progress = progress_of(event) or progress
            lines.append(describe_event(event))
        if not get_current_worker().is_cancelled:
            self.post_message(
                self.LogRead(seq, start, lines, next_offset, progress, complete=not job.active)
            )

    def on_jobs_screen_log_read(self, message: LogRead) -> None:
        if message.seq != self._log_seq or message.start != self._log_offset:
            return  # for another job, or lines already shown
        self._last_error.pop("jobs-tail", None)
        self._log_offset = message.next_offset
        self._log_complete = message.complete
        self.log_view.add_lines(message.lines)
        if message.progress:
            self._set_progress(message.progress)
        self._show_count()

    def _set_progress(self, progress: tuple[int, int]) -> None:
        if progress == self.progress:
            return
        self.progress = progress
        self._show_selected()
        job = self.selected_job
        if job is not None and job.job_id in self._shown_cells:
            self._update_row(job)

    def _show_count(self) -> None:
        view = self.log_view
        text = f"{view.shown:,} of {view.total:,} lines"
        if view.search:
            text += " · [b]esc[/] clears"
        text += " · follow" if view.follow else " · [b]not following[/] (f)"
        self.count.update(text)

    def action_search(self) -> None:
        self.search_input.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is self.search_input:
            self.log_view.set_search(event.value)
            self._show_count()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is self.search_input:
            self.log_view.focus()

    def action_clear_search(self) -> None:
        self.search_input.value = ""
        self.log_view.set_search("")
        self._show_count()
        self.table.focus()

    def action_toggle_follow(self) -> None:
        self.log_view.set_follow(not self.log_view.follow)
        self._show_count()

    def action_focus_log(self) -> None:
        self.log_view.focus()

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

    def on_jobs_screen_stopped(self, message: Stopped) -> None:
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

    def on_jobs_screen_restart_progress(self, message: RestartProgress) -> None:
        if self._restart_new is not None and self._restart_new == self.selected_id:
            self._set_progress((message.iteration, message.total))

    def on_jobs_screen_restarted(self, message: Restarted) -> None:
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
        if group in ("jobs-load", "jobs-tail") and event.state == WorkerState.ERROR:
            # Polled every few seconds: say so once, not on every poll.
            text = describe_error(event.worker.error)
            if self._last_error.get(group) != text:
                self._last_error[group] = text
                self.notify(text, severity="error", title="Jobs", markup=False)
            if group == "jobs-load":
                self.table.loading = False
            event.prevent_default()  # WorkbenchScreen's handler would say it again
