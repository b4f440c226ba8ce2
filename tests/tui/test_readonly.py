"""Read-only mode in the TUI: every binding id is classed, every mutating key only notifies
(and changes nothing), the header says READ-ONLY, the palette is refused too."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import workbench_tui
from textual.binding import Binding
from textual.screen import Screen
from workbench_tui import mutating
from workbench_tui.app import WorkbenchApp
from workbench_tui.deploy_dialog import CanaryDialog
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.models import ModelsScreen
from workbench_tui.train import TrainScreen

from tests.helpers import audit_rows
from tests.tui.helpers import palette_hits, record_notes, settle, wait_until
from workbench import readonly
from workbench.config import TuiSection
from workbench.project import Project

pytestmark = pytest.mark.tui

SIZE = (100, 30)
#: Ids another task of issue 13 adds: classed already, not required to exist here.
PENDING = {"models.approve", "models.reject", "models.card", "models.lineage", "runs.lineage"}
PENDING |= {"jobs.lineage"}
#: Where each id prefix's keys are pressed: a mode, or a screen pushed over the overview.
WHERE: dict[str, Any] = {
    "app": "overview",
    "models": "models",
    "jobs": "jobs",
    "deployments": "deployments",
    "drift": "drift",
    "train": TrainScreen,
    "dialog": lambda: ConfirmDialog("Promote", "production -> v2"),
    "canary_dialog": lambda: CanaryDialog([1, 2], 1, 2),
}


def declared_bindings() -> dict[str, Binding]:
    """Every Binding a class of workbench_tui declares (screens, widgets, dialogs, the App)."""
    found: dict[str, Binding] = {}
    for info in pkgutil.walk_packages(workbench_tui.__path__, "workbench_tui."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not cls.__module__.startswith("workbench_tui."):
                continue
            for item in cls.__dict__.get("BINDINGS", ()):
                if isinstance(item, Binding):
                    assert item.id, f"{cls.__name__}: give the {item.key!r} binding an id"
                    found[item.id] = item
    return found


def test_every_binding_id_is_classed() -> None:
    bindings = declared_bindings()
    assert {"app.train", "models.promote", "jobs.stop", "deployments.traffic_up"} <= set(bindings)
    unclassed = sorted(i for i in bindings if not mutating.is_classified(i))
    assert not unclassed, f"class these in screens/mutating.py: {unclassed}"
    both = [i for i in bindings if i in mutating.MUTATING_KEYS and i in mutating.READING_KEYS]
    assert not both
    stale = mutating.MUTATING_KEYS - set(bindings) - PENDING
    assert not stale, f"classed as mutating but no binding has the id: {sorted(stale)}"
    assert mutating.is_classified("lineage.anything") and not mutating.is_mutating("sql.run")


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_only(project: Project) -> Project:
    tui = project.config.tui.model_copy(update={"read_only": True})
    return Project(project.root, project.config.model_copy(update={"tui": tui}))


async def test_every_mutating_key_only_notifies(fixed_project: Project) -> None:
    project = read_only(fixed_project)
    bindings = declared_bindings()
    keys = sorted(i for i in bindings if mutating.is_mutating(i))
    assert {i.split(".")[0] for i in keys} <= set(WHERE), "say where the new key is pressed"
    files, audit = _digest(project.root), audit_rows(project)
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "READ-ONLY" in app.screen.sub_title
        for prefix, where in WHERE.items():
            if isinstance(where, str):
                await app.switch_mode(where)
                await settle(pilot)
            else:
                await app.push_screen(where())
                await pilot.pause()
            screen: Screen[Any] = app.screen
            for binding_id in (i for i in keys if i.split(".")[0] == prefix):
                binding = bindings[binding_id]
                del notes[:]
                await pilot.press(binding.key.split(",")[0])
                await pilot.pause()
                assert notes == [("warning", mutating.refusal(binding))], binding_id
                assert notes[0][1].startswith(f"read-only: {binding.description} ")
                assert app.screen is screen, f"{binding_id} opened or closed a screen"
                assert not app.training.running
            if not isinstance(where, str):
                await app.pop_screen()
        await settle(pilot)
    assert _digest(project.root) == files
    assert audit_rows(project) == audit


async def test_palette_and_env_switch(
    fixed_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(readonly.ENV, "1")
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for query, screen_type in (("promote selected", ModelsScreen), ("train a model", None)):
            await pilot.press("ctrl+p", *query)
            await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
            await pilot.press("enter")
            await settle(pilot)
            if screen_type is not None:
                assert isinstance(app.screen, screen_type)  # went there, opened no dialog
        assert not app.training.running
        await pilot.press("6")  # reading keys still work
        await settle(pilot)
        assert app.current_mode == "sql"
    refused = [m for s, m in notes if s == "warning" and m.startswith("read-only:")]
    assert refused == [
        "read-only: Promote (models.promote) is disabled",
        "read-only: Train (app.train) is disabled",
    ]


async def test_not_read_only_by_default(fixed_project: Project) -> None:
    project = Project(fixed_project.root, fixed_project.config.model_copy(
        update={"tui": TuiSection()}))  # fmt: skip
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        assert "READ-ONLY" not in app.screen.sub_title
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)


def test_read_only_flag_reaches_the_app(fixed_project: Project) -> None:
    """`workbench --read-only` (no command) opens the TUI in the same process: it is read-only."""
    previous = readonly.force(True)
    try:
        assert WorkbenchApp(fixed_project, sync_on_start=False).read_only
    finally:
        readonly.force(previous)
    assert not WorkbenchApp(fixed_project, sync_on_start=False).read_only
