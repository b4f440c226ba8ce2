"""Read-only mode: a kernel switch every layer may ask (`enabled()`), and the one error a
refused change raises (`refuse()`).

It is on when the CLI was started with `--read-only` (`force(True)`, set by the root
group), when WORKBENCH_READ_ONLY is 1/true/yes, or, for the TUI, when the project's
`[tui] read_only = true`. Which commands and keys it refuses is classified in one place each:
`workbench.cli.mutating` and the TUI's `workbench_tui.mutating`.

Read-only mode is a safety switch for looking without touching (an auditor, a demo, a shared
screen), not an access control: whoever can edit workbench.toml or the environment can turn
it off.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from workbench.errors import ReadOnly

if TYPE_CHECKING:
    from workbench.project import Project

ENV = "WORKBENCH_READ_ONLY"
_TRUE = ("1", "true", "yes", "on")

_forced = False


def force(on: bool) -> bool:
    """Turn read-only mode on (or off) for this process (`--read-only`); the previous value."""
    global _forced
    previous, _forced = _forced, on
    return previous


def from_env() -> bool:
    return os.environ.get(ENV, "").strip().lower() in _TRUE


def enabled(project: Project | None = None) -> bool:
    """Whether changes are refused: `--read-only`, WORKBENCH_READ_ONLY, or (given a project,
    as the TUI does) `[tui] read_only = true`."""
    if _forced or from_env():
        return True
    return project is not None and project.config.tui.read_only


def why(project: Project | None = None) -> str:
    """What turned it on, in the words of the refusal's parenthesis."""
    if _forced:
        return "opened with --read-only"
    if from_env():
        return f"{ENV} is set"
    if project is not None and project.config.tui.read_only:
        return "[tui] read_only = true"
    return "opened with --read-only"


def refuse(what: str, project: Project | None = None) -> None:
    """Raise ReadOnly: `read-only: <what> changes the project (opened with --read-only)`."""
    raise ReadOnly(f"read-only: {what} changes the project ({why(project)})")
