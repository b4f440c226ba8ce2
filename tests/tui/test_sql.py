"""The SQL screen (key 6), driven with Pilot over the deterministic project: real Parquet
logs, real DuckDB through the app's shared connection, the real history file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea
from workbench_tui.app import WorkbenchApp, binding_ids, help_sections
from workbench_tui.sql import INITIAL_QUERY, TABLE_LIMIT, SqlScreen

from tests.tui.helpers import palette_hits, run_name, settle, wait_until
from workbench.project import Project
from workbench.store import sql_console

pytestmark = pytest.mark.tui

REPO = Path(__file__).resolve().parents[2]
RUNS = 12  # fixed_project


async def open_sql(pilot: Pilot[Any]) -> SqlScreen:
    await settle(pilot)
    await pilot.press("6")
    screen = pilot.app.screen
    assert isinstance(screen, SqlScreen)
    await wait_until(pilot, lambda: screen.shown is not None and not screen.running, what="run")
    await settle(pilot)
    return screen


async def run_typed(pilot: Pilot[Any], screen: SqlScreen, sql: str, key: str = "ctrl+r") -> None:
    """Clear the editor, type `sql` key by key, run it and wait for the answer."""
    screen.editor.focus()
    screen.editor.clear()
    await pilot.press(*sql)
    assert screen.editor.text == sql
    await pilot.press(key)
    await wait_until(pilot, lambda: not screen.running, what="the query")
    await settle(pilot)


def cell(screen: SqlScreen, row: int, col: int) -> str:
    return str(screen.results.get_cell_at((row, col))).strip()


async def test_the_initial_query_runs_and_a_typed_one_too(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        assert screen.editor.text == INITIAL_QUERY
        assert screen.editor.has_focus
        assert screen.results.row_count == RUNS
        assert screen.shown is not None and "run_name" in screen.shown.columns
        assert str(screen.status_line.render()).startswith(f"{RUNS} rows in ")

        await run_typed(
            pilot,
            screen,
            "select run_name, metrics['holdout_auc'] as auc, null as n from runs "
            "where status = 'FAILED'",
        )
        assert screen.error == ""
        assert screen.shown is not None and screen.shown.columns == ["run_name", "auc", "n"]
        assert screen.results.row_count == 1
        assert cell(screen, 0, 0) == run_name(RUNS - 3)
        assert cell(screen, 0, 2) == "NULL"
        assert str(screen.status_line.render()).startswith("1 row in ")


async def test_ctrl_enter_runs_too(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        await run_typed(pilot, screen, "select count(*) from audit", key="ctrl+enter")
        assert cell(screen, 0, 0) == "3"


async def test_a_bad_query_shows_the_error_in_place(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        await run_typed(pilot, screen, "select * from nope")
        assert screen.error.startswith("Catalog Error: Table with name nope does not exist!")
        assert "(views: runs, metrics" in screen.error
        assert screen.error_line.display
        assert "nope does not exist" in str(screen.error_line.render())
        assert 2 <= screen.error_line.size.height <= 3  # wrapped, in place, above the table
        assert screen.results.size.height >= 8  # the results still have room at 80x24
        assert screen.results.row_count == RUNS  # the last results stay
        assert "failed" in str(screen.status_line.render())

        await run_typed(pilot, screen, "drop view runs")
        assert screen.error.startswith("only read-only queries are allowed")

        # The app keeps working: a good query clears the error, other screens still load.
        await run_typed(pilot, screen, "select count(*) as n from runs")
        assert screen.error == "" and not screen.error_line.display
        assert cell(screen, 0, 0) == str(RUNS)
        await pilot.press("escape")  # out of the editor, so digits switch screens
        assert screen.results.has_focus
        await pilot.press("1")
        await settle(pilot)
        assert app.current_mode == "overview"


async def test_history_recall(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        await run_typed(pilot, screen, "select 1 as a")
        await run_typed(pilot, screen, "select 2 as b")
        screen.editor.clear()
        await pilot.press(*"select 3")  # a draft, not run yet
        await pilot.press("ctrl+up")
        assert screen.editor.text == "select 2 as b"
        await pilot.press("ctrl+up")
        assert screen.editor.text == "select 1 as a"
        assert screen.editor.border_subtitle.startswith("history 1/2 · ")
        await pilot.press("ctrl+up")  # the oldest: stays (the initial query is not history)
        assert screen.editor.text == "select 1 as a"
        await pilot.press("ctrl+down", "ctrl+down")
        assert screen.editor.text == "select 3"  # past the newest: the draft is back
        assert screen.editor.border_subtitle.startswith("history your query · ")

        # Running an older query again makes it the newest (once).
        await pilot.press("ctrl+up", "ctrl+up", "ctrl+r")
        await wait_until(pilot, lambda: not screen.running)
        await settle(pilot)
        assert screen.history == ["select 2 as b", "select 1 as a"]
        assert sql_console.load_history(fixed_project) == screen.history
        # With the newest query in the editor, ctrl+up goes straight to the one before.
        await pilot.press("ctrl+up")
        assert screen.editor.text == "select 2 as b"

    # A new app reads the history back from the store.
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        assert screen.editor.text == INITIAL_QUERY
        await pilot.press("ctrl+up")
        assert screen.editor.text == "select 1 as a"


async def test_views_panel_writes_names_into_the_query(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        assert not screen.views_tree.display
        await pilot.press("ctrl+t")
        await settle(pilot)
        tree = screen.views_tree
        assert tree.display and tree.has_focus
        names = [str(node.data) for node in tree.root.children]
        assert names[:2] == ["runs", "metrics"] and "audit" in names
        assert ("run_name", "VARCHAR") in screen.views["runs"]
        await pilot.press("ctrl+t")  # hide: back to the editor
        assert screen.editor.has_focus and not tree.display
        screen.editor.clear()
        await pilot.press(*"select")
        await pilot.press("ctrl+t")  # show again
        tree.move_cursor(tree.root.children[0])  # runs
        await pilot.press("space")  # open it
        await pilot.press("down", "down", "down", "down", "enter")  # its 4th column
        assert screen.editor.has_focus
        assert screen.editor.text == "select run_name"
        await pilot.press(*" from")
        await pilot.press("ctrl+t")  # hide
        await pilot.press("ctrl+t")  # show
        tree.move_cursor(tree.root.children[0])
        await pilot.press("enter")
        assert screen.editor.text == "select run_name from runs"


async def test_a_long_query_can_be_cancelled(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        screen.editor.text = "select sum(a.range * b.range) from range(1000000000) a, range(1000) b"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen._cursor is not None, what="the query to start")
        assert screen.running
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.running, polls=600, what="the cancel")
        assert screen.error == "the query was cancelled"
        # The shared connection is free again: the query after it runs.
        await run_typed(pilot, screen, "select 42")
        assert cell(screen, 0, 0) == "42"


async def test_large_results_are_truncated(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        await run_typed(pilot, screen, "select range as i, 'x' || range as s from range(10050)")
        status = str(screen.status_line.render())
        assert status.startswith("first 10,000 of 10,050 rows in ")
        await wait_until(pilot, lambda: screen.rows_added == TABLE_LIMIT, what="every row")
        assert cell(screen, TABLE_LIMIT - 1, 1) == "x9999"


async def test_an_empty_editor_says_so(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_sql(pilot)
        screen.editor.clear()
        await pilot.press("ctrl+r")
        assert screen.error == "the query is empty" and not screen.running


async def test_help_palette_and_keys_know_the_screen(fixed_project: Project) -> None:
    titles = [title for title, _ in help_sections("sql")]
    assert titles[0] == "SQL"
    ids = binding_ids()
    for name in ("app.sql", "sql.run", "sql.cancel", "sql.history_back", "sql.views"):
        assert name in ids
    for binding in SqlScreen.BINDINGS:
        assert binding.id and binding.tooltip  # type: ignore[union-attr]
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"go to sql")
        await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SqlScreen), what="the screen")
        assert app.current_mode == "sql"
        assert isinstance(app.screen.focused, TextArea)


def test_the_start_path_does_not_load_the_screen() -> None:
    code = textwrap.dedent(
        """
        import sys
        import workbench_tui.app
        lazy = ("workbench_tui.sql", "workbench.store.sql_console", "duckdb")
        print("RESULT", [m for m in lazy if m in sys.modules])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESULT []" in out.stdout


def test_snapshot(
    snap_compare: Any, fixed_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_console, "perf_counter", lambda: 0.0)  # "in 0.000 s"

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await open_sql(pilot)
        screen.editor.text = (
            "SELECT run_name, status, metrics['holdout_auc'] AS auc,\n"
            "       params['learning_rate'] AS lr\n"
            "FROM runs\nORDER BY auc DESC"
        )
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not screen.running)
        await pilot.press("ctrl+t")
        await settle(pilot)
        screen.views_tree.move_cursor(screen.views_tree.root.children[0])
        await pilot.press("space")
        await settle(pilot)

    app = WorkbenchApp(fixed_project, sync_on_start=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
