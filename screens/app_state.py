"""App-wide state, and the app as the screens see it.

State flows one way: the App owns it as reactive attributes (`training`, `monitor`,
`data_version`), screens and panels watch them (`self.watch(self.app, "monitor", ...)`) and
ask for changes with messages that bubble up to the App (`StopTraining`,
`RunMonitorRound`). No screen reaches into another, and none walks the screen stack to find
one to update.

`WorkbenchAppLike` is what a screen may use of the App: screens type `self.app` as it, so
screens/base.py never imports screens/app.py (which imports the screens).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message

if TYPE_CHECKING:
    from workbench_tui.overview_cache import ProjectFacts, Start

    from workbench.monitoring.monitor import MonitorOutcome
    from workbench.project import Project
    from workbench.store.db import Db

#: Monitor outcomes the app keeps.
MONITOR_KEEP = 20


@dataclass
class TrainState:
    """The training run in the App's worker: steps, progress, log and outcome. Changed by
    the App's message handlers only (each change is signalled with `mutate_reactive`)."""

    running: bool = False
    stopping: bool = False
    steps: dict[str, tuple[str, str]] = field(default_factory=dict)
    iteration: int = 0
    total: int | None = None
    scores: dict[str, float] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    ok: bool | None = None
    outcome: str = ""


@dataclass(frozen=True)
class MonitorState:
    """The monitor's outcomes (the last MONITOR_KEEP, oldest first), the round under way
    (`busy`, "" when none) and how many outcomes recorded a check in the drift log (a new
    one means the drift history changed). Replaced, never changed in place, so a watcher
    gets the old and the new state."""

    outcomes: tuple[MonitorOutcome, ...] = ()
    busy: str = ""
    recorded: int = 0

    @property
    def last(self) -> MonitorOutcome | None:
        return self.outcomes[-1] if self.outcomes else None

    def with_busy(self, busy: str) -> MonitorState:
        return replace(self, busy=busy)

    def with_outcome(self, outcome: MonitorOutcome, manual: bool) -> MonitorState:
        """After an outcome: kept, and a manual round is no longer under way."""
        return MonitorState(
            outcomes=(*self.outcomes, outcome)[-MONITOR_KEEP:],
            busy="" if manual else self.busy,
            recorded=self.recorded + (1 if outcome.check else 0),
        )


class StopTraining(Message):
    """From the training panel to the App: ask the training worker to stop."""


class RunMonitorRound(Message):
    """From the Drift screen to the App: run one monitor round now (the user confirmed)."""


class WorkbenchAppLike(Protocol):
    """What the screens use of the App (screens.app.WorkbenchApp)."""

    @property
    def project(self) -> Project:
        """The loaded project. Until it is (a start from the cached snapshot), only workers
        may ask (they wait for it); the event loop uses `facts` and `start`."""
        ...

    @property
    def facts(self) -> ProjectFacts: ...

    @property
    def start(self) -> Start | None:
        """The cached snapshot the app started from (None: started from a loaded project)."""
        ...

    @property
    def data_version(self) -> int: ...

    @property
    def training(self) -> TrainState: ...

    @property
    def monitor(self) -> MonitorState: ...

    @property
    def first_paint_at(self) -> float | None: ...

    def database(self) -> AbstractContextManager[Db]: ...

    def mark_first_paint(self, runs_shown: int) -> None: ...

    def switch_mode(self, mode: str) -> Any: ...

    async def run_in_mode(self, mode: str, action: str) -> None: ...

    def action_train(self) -> None: ...

    def action_refresh(self) -> None: ...

    def action_help(self) -> None: ...

    async def action_quit(self) -> None: ...
