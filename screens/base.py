"""What every mode screen shares: Header and Footer, reloading when the app's data changes
(it watches the App's `data_version`), the way out of an input (escape, shown in the footer
while one has focus) and worker errors shown as notifications (never a traceback)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, ClassVar, cast

from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench_tui.app_state import WorkbenchAppLike

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


def is_text_input(widget: Widget | None) -> bool:
    """Whether keys typed go into `widget` (digits and letters too, not the screen's keys)."""
    if isinstance(widget, Input):
        return True
    # A TextArea is one only once its module is loaded (the SQL screen's): importing it
    # (tree-sitter, documents) would cost the first frame ~15 ms.
    text_area = sys.modules.get("textual.widgets._text_area")
    return text_area is not None and isinstance(widget, text_area.TextArea)


class WorkbenchScreen(Screen[None]):
    """A mode screen. Subclasses implement `reload()`, which starts their load worker.

    A screen with an input binds escape to leave it (`LEAVE_INPUT_ACTION` names that
    action): the binding shows in the footer only while the input has focus, where the
    number keys type into the input instead of switching screens."""

    #: Shown after the project name in the header.
    MODE_TITLE: ClassVar[str] = ""
    #: The action escape runs to leave this screen's input (None: the screen has none).
    LEAVE_INPUT_ACTION: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__()
        self._loaded_version = -1

    @property
    def wb(self) -> WorkbenchAppLike:
        return cast("WorkbenchAppLike", self.app)

    @property
    def project(self) -> Project:
        return self.wb.project

    @property
    def input_focused(self) -> bool:
        return is_text_input(self.focused)

    def on_mount(self) -> None:
        self.title = "Workbench"
        self.sub_title = f"{self.wb.facts.name} · {self.MODE_TITLE}"
        if getattr(self.app, "read_only", False):
            self.sub_title += " · READ-ONLY"
        self.watch(self.app, "data_version", self._app_data_changed, init=False)

    def _app_data_changed(self) -> None:
        # Only the screen on top reloads now; another one does when it is shown again.
        if self.app.screen is self:
            self.data_changed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides the binding and lets the key fall through to the next one.
        if action == self.LEAVE_INPUT_ACTION:
            return self.input_focused
        return True

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
