"""JobsTable: one row per job (id, kind, runner, status, runtime, cpu, memory, GPU memory,
progress, reason). `show` rebuilds the rows when the jobs changed and otherwise updates
only the cells that differ; status colours come from the component classes (jobs.tcss)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.widgets import DataTable
from workbench_tui.jobs_format import (
    STATUSES,
    fmt_duration,
    fmt_gpu_mib,
    fmt_progress,
    short_job_id,
)

if TYPE_CHECKING:
    from workbench.jobs.control import JobInfo


@dataclass
class RowState:
    """What the rows show besides each job's record."""

    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    stopping: set[str] = field(default_factory=set)
    #: The selected job's live progress (from its log), newer than its record's.
    live: tuple[str, tuple[int, int]] | None = None


def _style(cell: Any) -> Any:
    return cell.style if isinstance(cell, Text) else None


class JobsTable(DataTable[Any]):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"jobs-table--{status}" for status in STATUSES),
        "jobs-table--muted",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.gpu_column = False
        self._shown: dict[str, dict[str, Any]] = {}  # job id -> column key -> cell
        self._ids: list[str] = []

    def add_job_columns(self, gpu: bool) -> None:
        self.gpu_column = gpu
        add = self.add_column
        for label, width, key in (
            ("id", 6, "id"),
            ("kind", 5, "kind"),
            ("runner", 6, "runner"),
            ("status", 9, "status"),
            ("runtime", 7, "runtime"),
            ("cpu%", 4, "cpu"),
            ("mem MB", 6, "mem"),
            *((("gpu mem", 7, "gpu"),) if gpu else ()),
            ("progress", 11, "progress"),
            ("reason", 40, "reason"),
        ):
            add(label, width=width, key=key)

    def show(self, jobs: list[JobInfo], state: RowState, keep: str | None, rebuild: bool) -> None:
        """Show `jobs`; on a rebuild (or new ids) the cursor stays on `keep` where shown."""
        ids = [job.job_id for job in jobs]
        if ids == self._ids and not rebuild:
            for job in jobs:
                self.update_job(job, state)
            return
        self._ids = ids
        self.clear()
        self._shown.clear()
        for job in jobs:
            cells = self._shown[job.job_id] = self.cells(job, state)
            self.add_row(*cells.values(), key=job.job_id)
        if keep in ids:
            self.move_cursor(row=ids.index(keep), animate=False)

    def update_job(self, job: JobInfo, state: RowState) -> None:
        """Update the cells of a row that changed (most do not, between two refreshes)."""
        if job.job_id not in self._shown:
            return
        shown = self._shown[job.job_id]
        for key, value in self.cells(job, state).items():
            old = shown.get(key)
            if old is None or str(old) != str(value) or _style(old) != _style(value):
                shown[key] = value
                self.update_cell(job.job_id, key, value)

    def cells(self, job: JobInfo, state: RowState) -> dict[str, Any]:
        def style(name: str) -> Any:
            # Partial: the component's own colour only. The full style bakes in the table's
            # background as it is now (focused or not), and the cell keeps it: a snapshot then
            # depended on whether the load finished before or after focus moved.
            return self.get_component_rich_style(name, partial=True)

        status = "stopping…" if job.job_id in state.stopping else job.status
        status_style = style(f"jobs-table--{job.status}") if job.status in STATUSES else ""
        stats = state.stats.get(job.job_id, {})
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
        if self.gpu_column:
            gpu = stats.get("gpu_mib") if job.active else None
            cells["gpu"] = Text(fmt_gpu_mib(gpu), justify="right")
        progress = job.progress
        if (
            state.live is not None
            and state.live[0] == job.job_id
            and job.kind in ("train", "sweep")
        ):
            progress = state.live[1]
        cells["progress"] = Text(fmt_progress(progress))
        cells["reason"] = Text(job.reason or "", style=style("jobs-table--muted"))
        return cells
