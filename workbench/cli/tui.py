"""No command: open the TUI, found through the `workbench.ui` entry point (the core never
imports screens/). Without a terminal it says so in one line instead of drawing escape codes."""

from __future__ import annotations

import sys

from workbench.errors import UsageError, WorkbenchError

HEADLESS = (
    "validate, pipeline run, train, runs, models, promote, rollback, history, serve, "
    "canary, drift, monitor, sql, jobs, logs"
)


def _need_terminal(what: str, instead: str) -> None:
    """The TUI draws on a terminal; with a pipe (CI, `ssh host workbench` without -t) it would
    write escape codes for ever. Say so in one line instead."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    which = "standard input" if not sys.stdin.isatty() else "standard output"
    raise UsageError(f"{what} needs a terminal ({which} is not one; `ssh -t` gives one); {instead}")


def open_tui(project_dir: str | None) -> int:
    """Open the TUI on the project at `project_dir` (None: the nearest one)."""
    from importlib.metadata import entry_points

    from workbench.project import Project

    _need_terminal(
        "the TUI", f"the same steps run headless as commands: {HEADLESS} (workbench --help)"
    )
    project = Project.load(project_dir)
    eps = [ep for ep in entry_points(group="workbench.ui") if ep.name == "tui"]
    if not eps:
        raise WorkbenchError("the TUI is not installed (entry point workbench.ui:tui is missing)")
    run_tui = eps[0].load()
    return int(run_tui(project) or 0)
