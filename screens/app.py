"""The Workbench TUI: one screen per area (MODES), switched with 1/2/3/4/5/6/7.

App-wide state lives here as reactive attributes (screens.app_state): `training` (the
training run in the App's worker), `monitor` (the monitor's outcomes and the round under
way) and `data_version` (bumped when runs or the registry changed). Screens and the training
panel watch them; they ask for changes with messages (StopTraining, RunMonitorRound).

Start path (`run_tui` given a folder: `workbench` with no command): textual, the Overview
and screens.overview_cache only. The first frame is the cached Overview snapshot (marked
when its sources changed since); the project (pydantic config), DuckDB, polars and the
registry load in workers after it, and the Overview repaints. Until the project is loaded,
an app or screen action (a mode switch, the palette) waits for it (queued, never blocking
the loop); quit does not. Without a snapshot that holds, the project is loaded first, as it
is when a Project is given. The runs index is synced in a worker after the first paint.
mlflow is only ever imported inside thread workers (promote, rollback, train).
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual._path import CSSPathType
from textual.actions import ActionParseResult
from textual.app import App
from textual.binding import BindingType
from textual.dom import DOMNode
from textual.message import Message
from textual.reactive import var
from textual.screen import ModalScreen
from workbench_tui import mutating, overview_cache
from workbench_tui.app_start import StartingApp
from workbench_tui.app_state import MonitorState, RunMonitorRound, StopTraining, TrainState
from workbench_tui.base import DataChanged, describe_error
from workbench_tui.commands import WorkbenchCommands
from workbench_tui.keys import APP_BINDINGS, binding_ids, help_sections
from workbench_tui.overview import OverviewScreen
from workbench_tui.overview_cache import Start

from workbench import readonly
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench_tui import monitor_task
    from workbench_tui.train import (
        TrainFinished,
        TrainLog,
        TrainProgress,
        TrainScreen,
        TrainStep,
    )

    from workbench.monitoring.monitor import MonitorOutcome
    from workbench.project import Project
    from workbench.store.db import Db
    from workbench.store.runs_index import SyncResult

__all__ = ["WorkbenchApp", "binding_ids", "help_sections", "run_tui", "start_app"]


class Synced(Message):
    """The runs index sync finished (result is None when it failed)."""

    def __init__(
        self,
        result: SyncResult | None,
        registry_state: tuple[Any, ...] | None,
        error: str = "",
        force: bool = False,
    ) -> None:
        super().__init__()
        self.result = result
        self.registry_state = registry_state
        self.error = error
        self.force = force


def _lazy(module: str, name: str) -> Any:
    def make() -> Any:
        return getattr(importlib.import_module(module), name)()

    return make


class WorkbenchApp(StartingApp):
    """Workbench's TUI over one project."""

    TITLE = "Workbench"
    #: The Overview's too: as a screen's own CSS_PATH it would re-parse every stylesheet and
    #: restyle the app as the first screen mounts.
    CSS_PATH: ClassVar[CSSPathType | None] = ["app.tcss", "overview.tcss"]
    MODES: ClassVar[dict[str, Any]] = {
        "overview": OverviewScreen,
        # The other screens load on first use: their imports stay off the first paint.
        "experiments": _lazy("workbench_tui.experiments", "ExperimentsScreen"),
        "models": _lazy("workbench_tui.models", "ModelsScreen"),
        "jobs": _lazy("workbench_tui.jobs", "JobsScreen"),
        "deployments": _lazy("workbench_tui.deployments", "DeploymentsScreen"),
        "sql": _lazy("workbench_tui.sql", "SqlScreen"),
        "drift": _lazy("workbench_tui.drift", "DriftScreen"),
        # Later: "data", "audit".
    }
    DEFAULT_MODE = "overview"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    BINDINGS: ClassVar[list[BindingType]] = APP_BINDINGS

    #: Bumped whenever runs or the registry changed; screens reload when they see a new one.
    data_version: var[int] = var(0)
    #: The training run (changed in place by the handlers, then `mutate_reactive`).
    training: var[TrainState] = var(TrainState, always_update=True)
    #: The monitor's outcomes and the round under way (replaced on every report).
    monitor: var[MonitorState] = var(MonitorState)

    def __init__(
        self,
        project: Project | Start,
        *,
        sync_on_start: bool = True,
        poll_interval: float | None = 30.0,
    ) -> None:
        super().__init__(project)
        self.sync_on_start = sync_on_start
        self.poll_interval = poll_interval if sync_on_start else None
        self._db: Db | None = None
        self._db_lock = threading.RLock()
        self._stop_training = threading.Event()
        self._train_panel: TrainScreen | None = None
        self._syncing = False
        self._sync_again = False
        self._registry_state: tuple[Any, ...] | None = None
        self._sync_error = ""
        self._stop_monitor = threading.Event()
        self._monitor_started = False
        #: perf_counter() when the first screen was painted with its data (for benchmarks).
        self.first_paint_at: float | None = None
        self.runs_on_first_paint = 0
        facts = self.facts
        #: `--read-only`, WORKBENCH_READ_ONLY or [tui] read_only: mutating keys only say so.
        self.read_only = readonly.enabled() or facts.read_only
        self.keymap_overrides: dict[str, str] = dict(facts.keys)
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self._theme_error = ""
        if facts.theme:
            try:
                self.theme = facts.theme
            except Exception as exc:  # InvalidThemeError: say so once mounted
                self._theme_error = describe_error(exc)

    # --- shared state --------------------------------------------------------------------
    @contextmanager
    def database(self) -> Iterator[Db]:
        """The project's DuckDB query layer, for one worker at a time.

        Created on first use, from a worker thread (importing DuckDB and building the views
        stays off the event loop). Workers take turns: one DuckDB connection shared by
        threads that also recreate its views is not safe to use concurrently, and the
        queries here take milliseconds."""
        with self._db_lock:
            if self._db is None:
                from workbench.store.db import Db

                self._db = Db(self.project.logs_root)
            yield self._db

    def mark_first_paint(self, runs_shown: int) -> None:
        if self.first_paint_at is None:
            self.first_paint_at = time.perf_counter()
            self.runs_on_first_paint = runs_shown
        self._load_project_soon()  # after the first frame: it holds the GIL for a while

    def data_changed(self) -> None:
        self.data_version += 1

    @property
    def monitor_outcomes(self) -> Sequence[MonitorOutcome]:
        return self.monitor.outcomes

    @property
    def monitor_busy(self) -> str:
        return self.monitor.busy

    # --- lifecycle -----------------------------------------------------------------------
    def on_mount(self) -> None:
        if self._theme_error:
            self.notify(f"[tui].theme: {self._theme_error}", severity="warning", markup=False)
        unknown = (
            sorted(set(self.keymap_overrides) - set(binding_ids())) if self.keymap_overrides else []
        )
        if unknown:
            self.notify(
                f"[tui].keys: unknown binding id(s): {', '.join(unknown)} (press ? for the list)",
                severity="warning",
                markup=False,
            )
        if self._project is None:
            # Loaded once the Overview painted its snapshot, or by now in any case.
            self.set_timer(0.5, self._load_project_soon)
        if self.sync_on_start:
            self.call_after_refresh(self.request_sync)
            if self.poll_interval:
                self.set_interval(self.poll_interval, self.request_sync)
        if self.facts.monitor and not self.read_only:
            self.call_after_refresh(self.start_monitor)  # it records checks and retrains

    def on_unmount(self) -> None:
        self._stop_training.set()
        self._stop_monitor.set()
        # A worker may still be querying: close only if it lets go of the connection soon.
        if self._db is not None and self._db_lock.acquire(timeout=2):
            try:
                self._db.close()
                self._db = None
            finally:
                self._db_lock.release()

    # --- syncing -------------------------------------------------------------------------
    def request_sync(self, force: bool = False) -> None:
        """Sync the runs index in a worker; one at a time, a request while busy runs after."""
        if self._syncing:
            self._sync_again = True
            return
        self._syncing = True
        self._sync(force)

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    def _sync(self, force: bool) -> None:
        try:
            project = self.project  # first: a start from the snapshot waits for it here
            from workbench.registry import versions as registry
            from workbench.store import runs_index

            # Its own short-lived Db: a long sync does not hold up the screens' queries.
            result = runs_index.sync(project)
            state = (
                tuple(sorted(registry.aliases(project).items())),
                len(registry.list_versions(project)),
            )
        except Exception as exc:
            self.post_message(Synced(None, None, describe_error(exc), force))
        else:
            self.post_message(Synced(result, state, force=force))

    def on_synced(self, message: Synced) -> None:
        self._syncing = False
        if message.error and (message.force or message.error != self._sync_error):
            self.notify(f"sync failed: {message.error}", severity="error", markup=False)
        self._sync_error = message.error
        registry_moved = (
            message.registry_state is not None
            and self._registry_state is not None
            and message.registry_state != self._registry_state
        )
        if message.registry_state is not None:
            self._registry_state = message.registry_state
        changed = message.result is not None and message.result.changed > 0
        if changed or registry_moved or message.force:
            self.data_changed()
        if message.force and message.result is not None:
            self.notify(
                f"{message.result.total} run(s), {message.result.changed} new or changed",
                title="Refreshed",
            )
        if self._sync_again:
            self._sync_again = False
            self.request_sync()

    def on_data_changed(self, message: DataChanged) -> None:
        self.data_changed()

    # --- actions -------------------------------------------------------------------------
    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """Every key, footer click and palette command comes through here: in read-only mode
        an action of a mutating binding (workbench_tui.mutating) only notifies, once."""
        if self.read_only:
            node = self if default_namespace is None else default_namespace
            target, name, params = self._parse_action(action, node, namespaces)
            refused = mutating.refused_binding(target, name, params)
            if refused is not None:
                self.notify(mutating.refusal(refused), severity="warning", markup=False)
                return True
        # Started from the snapshot, StartingApp queues it until the project is loaded.
        return await super().run_action(action, default_namespace, namespaces)

    def action_refresh(self) -> None:
        self.request_sync(force=True)

    def action_help(self) -> None:
        from workbench_tui.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        # A pushed screen with its own section (Lineage) lists its keys first.
        section = getattr(self.screen, "HELP_SECTION", self.current_mode)
        self.push_screen(HelpScreen(help_sections(section), self.keymap_overrides))

    async def action_quit(self) -> None:
        self._stop_training.set()
        self._stop_monitor.set()
        self.exit(0)

    async def action_switch_mode(self, mode: str) -> None:
        """Switch screens; a dialog or panel open on this one is closed first (cancelled), so
        nothing is left waiting on a screen you cannot see. Training goes on."""
        if isinstance(self.screen, ModalScreen):
            await self.screen.dismiss(None)
        await self.switch_mode(mode)

    async def run_in_mode(self, mode: str, action: str) -> None:
        """Switch to `mode` and run one of its screen's actions (used by the command palette)."""
        await self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        await self.screen.run_action(action)

    # --- the monitor: drift checks on a schedule ([monitor] enabled = true) ---------------
    def start_monitor(self) -> None:
        """Start the background monitor (after the first paint; it imports in its worker)."""
        if not self._monitor_started and not self._stop_monitor.is_set():
            self._monitor_started = True
            self._monitor()

    @work(thread=True, exclusive=True, group="monitor", exit_on_error=False)
    def _monitor(self) -> None:
        from workbench_tui import monitor_task

        monitor_task.monitor_loop(self.project, self.post_message, self._stop_monitor.is_set)

    def on_run_monitor_round(self, message: RunMonitorRound) -> None:
        """One monitor round now (the Drift screen's `m`, after it asked)."""
        if self.monitor.busy:
            self.notify("a monitor round is already running", severity="warning", title="Monitor")
            return
        self.monitor = self.monitor.with_busy("round running…")
        self._monitor_round()

    @work(thread=True, exclusive=True, group="monitor-round", exit_on_error=False)
    def _monitor_round(self) -> None:
        from workbench_tui import monitor_task

        monitor_task.monitor_round(self.project, self.post_message, self._stop_monitor.is_set)

    def on_monitor_report(self, message: monitor_task.MonitorReport) -> None:
        from workbench_tui import monitor_task

        self.monitor = monitor_task.next_state(self.monitor, message)
        outcome = message.outcome
        if message.kind != "outcome" or outcome is None:
            return
        text = monitor_task.outcome_text(outcome)
        if outcome.error:
            self.notify(text, title="Monitor", severity="error", markup=False)
        elif outcome.acted:
            self.notify(text, title="Monitor: retrained", severity="warning", markup=False)
            self.request_sync(force=False)
            self.data_changed()
        elif outcome.fired:
            self.notify(text, title="Monitor: drift", severity="warning", markup=False)
        elif message.manual:
            self.notify(text, title="Monitor", markup=False)

    # --- training ------------------------------------------------------------------------
    def _training_changed(self) -> None:
        self.mutate_reactive(WorkbenchApp.training)

    def action_train(self) -> None:
        if not self.training.running:
            self.training = TrainState(running=True)
            self._stop_training.clear()
            self._train()
        self.show_train_panel()

    def show_train_panel(self) -> None:
        from workbench_tui.train import TrainScreen

        if self._train_panel is not None and self._train_panel.is_attached:
            return
        self._train_panel = TrainScreen()
        self.push_screen(self._train_panel, callback=self._train_panel_closed)

    def _train_panel_closed(self, _result: object) -> None:
        self._train_panel = None

    def on_stop_training(self, message: StopTraining) -> None:
        if self.training.running and not self.training.stopping:
            self.training.stopping = True
            self._stop_training.set()
            self._training_changed()

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def _train(self) -> None:
        from workbench_tui.train import TrainFinished, TrainLog, TrainProgress, TrainStep

        from workbench.jobs.control import resolve_runner
        from workbench.jobs.observer import JobObserver
        from workbench.pipeline import flow as pipeline

        post = self.post_message
        try:
            runner = resolve_runner(self.project)
            post(TrainLog(f"runner: {runner.name}"))
            observer = JobObserver(
                on_step=lambda name, status, detail: post(TrainStep(name, status, detail)),
                on_progress=lambda p: post(TrainProgress(p.iteration, p.total, p.metrics)),
                on_log=lambda line: post(TrainLog(line)),
                should_stop=self._stop_training.is_set,
            )
            result = pipeline.run(self.project, runner, observer)
        except WorkbenchError as exc:
            post(TrainFinished(False, str(exc)))
        except Exception as exc:
            post(TrainFinished(False, describe_error(exc)))
        else:
            gate = result.gate.get("decision", "?")
            aliases = ", ".join(result.aliases_set) or "no alias"
            post(
                TrainFinished(
                    True,
                    f"{result.model} v{result.version} registered ({aliases}); gate {gate}",
                )
            )

    def on_train_step(self, message: TrainStep) -> None:
        self.training.steps[message.name] = (message.status, message.detail)
        self._training_changed()

    def on_train_progress(self, message: TrainProgress) -> None:
        self.training.iteration = message.iteration
        self.training.total = message.total
        self.training.scores = message.scores
        self._training_changed()

    def on_train_log(self, message: TrainLog) -> None:
        self.training.log.append(message.line)
        self._training_changed()

    def on_train_finished(self, message: TrainFinished) -> None:
        state = self.training
        state.running = False
        state.ok = message.ok
        state.outcome = message.text
        if state.stopping and not message.ok:
            state.outcome = "stopped: " + message.text
        self._training_changed()
        if message.ok:
            self.notify(message.text, title="Training done", markup=False)
        else:
            self.notify(state.outcome, title="Training failed", severity="error", markup=False)
        self.request_sync(force=False)
        self.data_changed()


def start_app(project: Project | str | os.PathLike[str] | None) -> WorkbenchApp:
    """The app `run_tui` runs: over a loaded project, or for a folder (None: the nearest
    project) from the cached Overview snapshot when one holds for it, else over the project
    loaded now (a bad workbench.toml is a WorkbenchError before any frame)."""
    if project is None or isinstance(project, str | os.PathLike):
        start = overview_cache.read(project)
        if start is not None:
            return WorkbenchApp(start)
        from workbench.project import Project

        return WorkbenchApp(Project.load(Path(project) if project is not None else None))
    return WorkbenchApp(project)


def run_tui(project: Project | str | os.PathLike[str] | None) -> int:
    """Entry point (`workbench.ui:tui`): run the TUI on `project` (a Project, or its folder,
    None for the nearest one) until the user quits."""
    app = start_app(project)
    code = app.run()
    if app.start_error is not None:
        raise app.start_error
    return int(code or app.return_code or 0)
