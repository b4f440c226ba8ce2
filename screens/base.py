"""What every mode screen shares: Header and Footer, reloading when the app's data changes,
and worker errors shown as notifications (never a traceback)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from screens.app import WorkbenchApp
    from workbench.project import Project


def describe_error(exc: BaseException | None) -> str:
    """One line for the user: a WorkbenchError's own words, else the type and message."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, WorkbenchError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class DataChanged(Message):
    """Posted by a screen when it changed what other screens show (an alias moved)."""

    def __init__(self, what: str = "") -> None:
        super().__init__()
        self.what = what


class WorkbenchScreen(Screen[None]):
    """A mode screen. Subclasses implement `reload()`, which starts their load worker."""

    #: Shown after the project name in the header.
    MODE_TITLE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self._loaded_version = -1

    @property
    def wb(self) -> WorkbenchApp:
        return cast("WorkbenchApp", self.app)

    @property
    def project(self) -> Project:
        return self.wb.project

    def on_mount(self) -> None:
        self.title = "Workbench"
        self.sub_title = f"{self.project.name} · {self.MODE_TITLE}"

    def on_screen_resume(self) -> None:
        if self._loaded_version != self.wb.data_version:
            self.data_changed()

    def data_changed(self) -> None:
        """Called by the app when runs or the registry changed (and on first show)."""
        self._loaded_version = self.wb.data_version
        self.reload()

    def reload(self) -> None:
        """Start the worker that loads this screen's data."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(
                describe_error(event.worker.error), severity="error", title="Error", markup=False
            )
