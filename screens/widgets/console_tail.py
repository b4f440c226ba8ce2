"""ConsoleTail: the last lines of the console of the job that made the selected run, kept up
to date while the run runs (the screen reads the log in a worker and hands the lines in)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Log

if TYPE_CHECKING:
    from workbench.jobs.telemetry import ConsoleTail as Tail


class ConsoleTail(Log):
    DEFAULT_CSS = """
    ConsoleTail {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=1000, id=id, classes=classes)
        self.can_focus = False
        self.run_id: str | None = None
        self.shown: list[str] = []
        self._log_size = -1

    def show(self, tail: Tail) -> None:
        """Show `tail`; the same run's log grown since appends only the new lines."""
        if tail.run_id == self.run_id and tail.size == self._log_size:
            return
        if tail.job_id is None:
            lines = ["(no job made this run: its console is not kept by Workbench)"]
        elif not tail.lines and tail.size == 0:
            lines = [f"(job {tail.job_id}: no console output yet)"]
        else:
            lines = tail.lines
        same_run = tail.run_id == self.run_id and self.shown and tail.job_id is not None
        new = _new_lines(self.shown, lines) if same_run else None
        if new is None:
            self.clear()
            self.write_lines(lines)
        elif new:
            self.write_lines(new)
        self.run_id = tail.run_id
        self.shown = lines
        self._log_size = tail.size


def _new_lines(old: list[str], new: list[str]) -> list[str] | None:
    """The lines of `new` after the end of `old` when `new` continues `old` (None when it
    does not: the tail moved past, or the log was replaced)."""
    if not old:
        return None
    last = old[-1]
    for i in range(len(new) - 1, -1, -1):
        if new[i] == last and new[max(0, i - len(old) + 1) : i + 1] == old[-(i + 1) :]:
            return new[i + 1 :]
    return None
