"""The way out of an input, the same on every screen that has one (SQL editor, Experiments
filter, Jobs log search): while it has focus the number keys type into it (Textual leaves
the keys an input consumes out of the footer), the footer shows escape as the way out, and
escape leaves it for the screen's table, where 1-7 switch screens again. At 80x24, over the
fixed project."""

from __future__ import annotations

from typing import Any

import pytest
from workbench_tui.app import WorkbenchApp
from workbench_tui.drift import DriftScreen
from workbench_tui.experiments import ExperimentsScreen
from workbench_tui.jobs import JobsScreen
from workbench_tui.models import ModelsScreen
from workbench_tui.overview import OverviewScreen
from workbench_tui.sql import EDITOR_HINT, SqlScreen

from tests.tui.helpers import settle, wait_until
from workbench.project import Project

pytestmark = pytest.mark.tui

SIZE = (80, 24)


def footer_state(app: Any) -> dict[str, tuple[str, bool, bool]]:
    """Key -> (action, shown in the footer, enabled) of the bindings active now."""
    return {
        key: (active.binding.action, active.binding.show, active.enabled)
        for key, active in app.screen.active_bindings.items()
    }


async def test_sql_editor_escape_then_7_goes_to_drift(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SqlScreen) and screen.focused is screen.editor
        # the way out, where you look while typing: the footer and the editor's border
        keys = footer_state(app)
        assert keys["escape"] == ("leave_editor", True, True)
        assert "7" not in keys  # 7 types into the query here
        assert EDITOR_HINT in str(screen.editor.border_subtitle)

        screen.editor.text = ""
        await pilot.press(*"SELECT 1")
        await pilot.press("7")  # typing: the 7 goes into the query, the screen stays
        await pilot.pause()
        assert isinstance(app.screen, SqlScreen) and screen.editor.text == "SELECT 17"
        await pilot.press("backspace", "escape")
        await pilot.pause()
        assert screen.focused is screen.results
        assert EDITOR_HINT not in str(screen.editor.border_subtitle)
        keys = footer_state(app)
        assert keys["7"][2] is True and keys.get("escape", ("",))[0] != "leave_editor"
        await pilot.press("7")
        await pilot.pause()
        assert isinstance(app.screen, DriftScreen)
        assert screen.editor.text == "SELECT 1" and not screen.editor.text.endswith("7")


async def test_experiments_filter_escape_keeps_the_filter(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        assert footer_state(app).get("escape", ("",))[0] != "focus_table"  # no input focused
        await pilot.press("slash", *"amber")
        await settle(pilot)
        assert screen.focused is screen.filter_input
        keys = footer_state(app)
        assert keys["escape"] == ("focus_table", True, True) and "3" not in keys
        await pilot.press("escape")
        await pilot.pause()
        assert screen.focused is screen.table and screen.filter_input.value == "amber"
        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)
        assert screen.filter_input.value == "amber"  # not "amber3"


async def test_jobs_search_escape_then_1_goes_to_overview(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, JobsScreen)
        await wait_until(pilot, lambda: screen.loaded, what="the jobs list")
        await pilot.press("slash", *"error")
        await pilot.pause()
        assert screen.focused is screen.search_input
        keys = footer_state(app)
        assert keys["escape"] == ("clear_search", True, True) and "1" not in keys
        assert "esc" in str(screen.count.content) and "leaves the search" in str(
            screen.count.content
        )
        await pilot.press("escape")
        await pilot.pause()
        assert screen.focused is screen.table and screen.search_input.value == ""
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert screen.search_input.value == ""  # not "error1"


async def test_screen_keys_come_back_off_the_input(fixed_project: Project) -> None:
    """While the filter has focus, every app key it would type is out of the footer; once
    escape left it, they are all back, enabled."""
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        before = {k for k in footer_state(app) if k in "1234567t"}
        assert before == set("1234567t")
        await pilot.press("slash")
        await pilot.pause()
        assert not {k for k in footer_state(app) if k in "1234567t"}
        await pilot.press("escape")
        await pilot.pause()
        back = {k: v for k, v in footer_state(app).items() if k in "1234567t"}
        assert back.keys() == before and all(enabled for _, _, enabled in back.values())
