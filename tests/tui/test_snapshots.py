"""SVG snapshots of each screen at 80x24 on the deterministic project (no sync, no clock).

Update them after a deliberate change with `pytest tests/tui --snapshot-update`, and look at
the report before committing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from workbench_tui.app import WorkbenchApp

from tests.tui.helpers import settle
from workbench.project import Project

pytestmark = pytest.mark.tui

SIZE = (80, 24)


def keys_then_settle(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Settle, press each key (settling after each), freeze input cursors, settle again."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        await settle(pilot)

    return run_before


def snap(snap_compare: Any, project: Project, keys: Iterable[str] = ()) -> bool:
    app = WorkbenchApp(project, sync_on_start=False)
    return bool(snap_compare(app, terminal_size=SIZE, run_before=keys_then_settle(*keys)))


def test_overview(snap_compare: Any, fixed_project: Project) -> None:
    assert snap(snap_compare, fixed_project)


def test_overview_empty_project(snap_compare: Any, empty_project: Project) -> None:
    assert snap(snap_compare, empty_project)


def test_experiments(snap_compare: Any, fixed_project: Project) -> None:
    """Runs table with two marked runs, the cursor on the second, its curve and params."""
    assert snap(snap_compare, fixed_project, ["2", "space", "down", "space"])


def test_experiments_filtered_and_sorted(snap_compare: Any, fixed_project: Project) -> None:
    keys = ["2", "slash", *"learning_rate=0.05", "escape", "s", "s", "s"]  # holdout_auc
    assert snap(snap_compare, fixed_project, keys)


def test_compare_only_differs(snap_compare: Any, fixed_project: Project) -> None:
    assert snap(snap_compare, fixed_project, ["2", "space", "down", "space", "c", "d"])


def test_models(snap_compare: Any, fixed_project: Project) -> None:
    assert snap(snap_compare, fixed_project, ["3"])


def test_promote_dialog(snap_compare: Any, fixed_project: Project) -> None:
    assert snap(snap_compare, fixed_project, ["3", "p", "enter"])


def test_help(snap_compare: Any, fixed_project: Project) -> None:
    assert snap(snap_compare, fixed_project, ["2", "question_mark"])


def test_models_empty_project(snap_compare: Any, empty_project: Project) -> None:
    assert snap(snap_compare, empty_project, ["3"])
