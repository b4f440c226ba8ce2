"""The fast start: the first frame painted from the Overview's cached snapshot, without the
config's pydantic, polars, pyarrow, DuckDB or mlflow; the snapshot right, fresh or marked
stale, dropped when workbench.toml changes; the project loaded after the first frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from workbench_tui import loaders, overview_cache
from workbench_tui.app import WorkbenchApp, start_app
from workbench_tui.experiments import ExperimentsScreen
from workbench_tui.overview import OverviewScreen
from workbench_tui.overview_cache import Start

from tests.tui.helpers import run_id, settle, wait_until
from workbench.errors import ConfigError
from workbench.project import Project
from workbench.registry import audit
from workbench.store.db import Db

pytestmark = pytest.mark.tui

SIZE = (80, 24)
REPO = Path(__file__).resolve().parents[2]


def snapshot(project: Project) -> loaders.OverviewData:
    """Write the snapshot as the Overview's worker does; the data it holds."""
    with Db(project.logs_root) as db:
        sources = overview_cache.sources(project)
        data = loaders.load_overview(project, db)
    assert overview_cache.write(project, data, sources, time.time())
    return data


def test_snapshot_holds_what_the_overview_loaded(fixed_project: Project) -> None:
    data = snapshot(fixed_project)
    start = overview_cache.read(fixed_project.root)
    assert start is not None and start.fresh
    assert start.root == fixed_project.root
    assert start.facts == overview_cache.facts_of(fixed_project)
    got = start.overview
    assert (got.model, got.metric, got.versions, got.total_runs) == (
        data.model,
        data.metric,
        2,
        12,
    )
    assert got.cards == data.cards and got.cards[0].version == 1
    assert got.run_metrics == data.run_metrics
    assert got.runs == data.runs  # datetimes (with their zone) and metrics as they were
    assert [r["run_id"] for r in got.runs][:2] == [run_id(11), run_id(10)]
    assert got.audit == [{k: e[k] for k in overview_cache.AUDIT_COLUMNS} for e in data.audit]
    # the same data from the same sources: not written again
    assert not overview_cache.write(
        fixed_project, data, overview_cache.sources(fixed_project), time.time()
    )


def test_snapshot_is_stale_once_a_source_changed(fixed_project: Project) -> None:
    snapshot(fixed_project)
    audit.record(fixed_project, "promote", "fraud_detection", "production", 1, 2, "test")
    start = overview_cache.read(fixed_project.root)
    assert start is not None and not start.fresh  # the audit log's manifest was replaced


def test_snapshot_is_dropped_when_the_config_or_store_changes(
    fixed_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot(fixed_project)
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", "http://elsewhere:5000")
    assert overview_cache.read(fixed_project.root) is None
    monkeypatch.delenv("WORKBENCH_TRACKING_URI")
    assert overview_cache.read(fixed_project.root) is not None
    toml = fixed_project.root / "workbench.toml"
    toml.write_text(toml.read_text() + "\n# edited\n")
    assert overview_cache.read(fixed_project.root) is None
    assert overview_cache.read(fixed_project.root / "nowhere") is None


def test_a_project_changed_in_memory_is_not_snapshotted(fixed_project: Project) -> None:
    changed = Project(
        fixed_project.root,
        fixed_project.config.model_copy(
            update={"tui": fixed_project.config.tui.model_copy(update={"read_only": True})}
        ),
    )
    with Db(changed.logs_root) as db:
        data = loaders.load_overview(changed, db)
    assert not overview_cache.write(changed, data, None, time.time())
    assert overview_cache.read(changed.root) is None


async def test_the_app_writes_the_snapshot_then_starts_from_it(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
    start = overview_cache.read(str(fixed_project.root))
    assert start is not None and start.fresh

    app = start_app(str(fixed_project.root))
    start = app.start
    assert start is not None and app.facts.model == "fraud_detection"
    app.sync_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, OverviewScreen) and screen.data is start.overview
        assert screen.runs_table.row_count == 10
        assert "refreshing" not in str(screen.model_box.border_title)
        await settle(pilot)
        assert app.project.root == fixed_project.root  # loaded after the first frame
        assert screen.data is not start.overview  # reloaded, and the same
        assert overview_cache.encode(screen.data) == overview_cache.encode(start.overview)


async def test_a_stale_snapshot_says_so_until_reloaded(fixed_project: Project) -> None:
    snapshot(fixed_project)
    audit.record(fixed_project, "promote", "fraud_detection", "production", 1, 2, "new")
    app = start_app(fixed_project.root)
    assert app.start is not None and not app.start.fresh
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        assert "refreshing" in str(screen.model_box.border_title)
        assert "refreshing" in str(screen.runs_box.border_title)
        await settle(pilot)
        assert "refreshing" not in str(screen.model_box.border_title)
        assert screen.data is not None and screen.data.audit[0]["reason"] == "new"
    again = overview_cache.read(fixed_project.root)
    assert again is not None and again.fresh and again.overview.audit[0]["reason"] == "new"


async def test_keys_wait_for_the_project_then_run(fixed_project: Project) -> None:
    snapshot(fixed_project)
    app = start_app(fixed_project.root)
    app.sync_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")  # before the project loaded: queued, not lost
        await wait_until(pilot, lambda: isinstance(app.screen, ExperimentsScreen), what="mode")
        await settle(pilot)
        assert app.current_mode == "experiments"


async def test_a_config_that_no_longer_loads_exits_2_with_its_error(
    fixed_project: Project,
) -> None:
    """The snapshot's key is the toml's bytes, so this takes a changed environment; the app
    started from it ends with the project's one-line error and exit code 2."""
    snapshot(fixed_project)
    start = overview_cache.read(fixed_project.root)
    assert start is not None
    (fixed_project.root / "workbench.toml").write_text("[project\n")
    app = WorkbenchApp(start, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.start_error is not None, what="project load")
        await pilot.pause()
    assert isinstance(app.start_error, ConfigError)
    assert app.return_code == 2


def test_first_frame_imports_no_pydantic_polars_duckdb_or_mlflow(fixed_project: Project) -> None:
    """In a fresh interpreter, as `workbench` starts: the first frame is painted from the
    snapshot before the config (pydantic), click, polars, pyarrow, DuckDB or mlflow are
    imported; the project and its data load after it."""
    snapshot(fixed_project)
    code = textwrap.dedent(
        """
        import asyncio, sys
        HEAVY = ("pydantic", "click", "polars", "pyarrow", "duckdb", "mlflow", "lightgbm")
        import workbench.cli.main
        from workbench.cli import tui
        run_tui = tui.ui_entry()
        at_import = [m for m in HEAVY if m in sys.modules]

        async def main():
            app = sys.modules[run_tui.__module__].start_app(sys.argv[1])
            app.sync_on_start = False
            seen = []
            mark = app.mark_first_paint
            def marked(runs):
                seen.append([m for m in HEAVY if m in sys.modules])
                mark(runs)
            app.mark_first_paint = marked
            async with app.run_test(size=(80, 24)) as pilot:
                for _ in range(400):
                    await pilot.pause(0.05)
                    if seen and app.start_error is None and app._project is not None:
                        break
                rows = app.screen.runs_table.row_count
                for _ in range(200):
                    await app.workers.wait_for_complete()
                    await pilot.pause()
                    if not list(app.workers):
                        break
                after = "pydantic" in sys.modules and "duckdb" in sys.modules
                print("RESULT", at_import, seen[0], rows, app.start.fresh, after)

        asyncio.run(main())
        """
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(fixed_project.root / "cache")}
    for _ in range(2):  # the entry point looked up, then from its cache
        out = subprocess.run(
            [sys.executable, "-c", code, str(fixed_project.root)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env=env,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
        assert line == "RESULT [] [] 10 True True", line
    cached = list((fixed_project.root / "cache" / "workbench").glob("ui-entry-*.json"))
    assert len(cached) == 1
    assert json.loads(cached[0].read_text())["value"] == "workbench_tui.app:run_tui"


def test_start_is_a_dataclass_of_plain_values() -> None:
    """What the App is given to paint: no Project, no config model."""
    fields = set(Start.__dataclass_fields__)
    assert fields == {"root", "facts", "overview", "fresh", "read_at"}
