"""The App's start from the cached Overview snapshot (screens.overview_cache).

`StartingApp` is WorkbenchApp's base: given a loaded Project it is that project; given a
`Start` (the snapshot) it paints with the snapshot's `facts` and loads the project in a
worker once asked (`_load_project_soon`, after the first frame). Until then `project`
makes a worker wait for it, and an action of the App or of a screen (a mode key, the
palette) is queued and run once it is loaded; a widget's (a table's cursor) and quit run at
once. A project that no longer loads ends the app with exit code 2 and its one-line error
(`start_error`; run_tui raises it)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from textual import work
from textual.actions import ActionParseResult
from textual.app import App
from textual.dom import DOMNode
from textual.message import Message
from workbench_tui import overview_cache
from workbench_tui.base import describe_error
from workbench_tui.overview_cache import ProjectFacts, Start

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project


class ProjectLoaded(Message):
    """The project of a start from the snapshot loaded (error: why not, in one line)."""

    def __init__(self, error: WorkbenchError | None = None) -> None:
        super().__init__()
        self.error = error


class StartingApp(App[int]):
    """An app over a project that may still be loading."""

    def __init__(self, project: Project | Start) -> None:
        super().__init__()
        #: The snapshot this app paints first (None: given a loaded project).
        self.start: Start | None = project if isinstance(project, Start) else None
        self._project: Project | None = None if isinstance(project, Start) else project
        self._project_ready = threading.Event()
        self._project_error: WorkbenchError | None = None
        self._project_loading = False
        self._pending_actions: list[tuple[Any, ...]] = []
        #: What the first frame needs of the config (from the snapshot, or the project).
        self.facts: ProjectFacts
        if isinstance(project, Start):
            self.facts = project.facts
        else:
            self.facts = overview_cache.facts_of(project)
            self._project_ready.set()

    @property
    def project(self) -> Project:
        """The loaded project. Started from the snapshot, a worker that asks before it is
        loaded waits for it; the event loop never asks before (actions wait, see
        run_action)."""
        if self._project is None:
            self._project_ready.wait()
            if self._project is None:
                raise self._project_error or WorkbenchError("the project did not load")
        return self._project

    @property
    def start_error(self) -> WorkbenchError | None:
        """Why the project of a start from the snapshot did not load (the app then exits 2)."""
        return self._project_error

    def _load_project_soon(self) -> None:
        if self._project is None and not self._project_loading:
            self._project_loading = True
            self._load_project()

    @work(thread=True, exclusive=True, group="project", exit_on_error=False)
    def _load_project(self) -> None:
        assert self.start is not None
        try:
            from workbench.project import Project

            self._project = Project.load(self.start.root)
        except WorkbenchError as exc:
            self._project_error = exc
        except Exception as exc:
            self._project_error = WorkbenchError(describe_error(exc))
        finally:
            self._project_ready.set()
        self.post_message(ProjectLoaded(self._project_error))

    async def on_project_loaded(self, message: ProjectLoaded) -> None:
        pending, self._pending_actions = self._pending_actions, []
        if message.error is not None:
            self.exit(2, return_code=2)
            return
        for action, namespace, namespaces in pending:
            await self.run_action(action, namespace, namespaces)

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        if not self._project_ready.is_set():
            node = self if default_namespace is None else default_namespace
            target, name, _ = self._parse_action(action, node, namespaces)
            if name != "quit" and _needs_project(target):
                self._pending_actions.append((action, default_namespace, namespaces))
                return True
        return await super().run_action(action, default_namespace, namespaces)


def _needs_project(target: DOMNode) -> bool:
    """An action of the App or a screen may use the project; a widget's does not."""
    from textual.screen import Screen

    return isinstance(target, App | Screen)
