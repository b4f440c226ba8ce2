"""The TUI driven with Pilot at 80x24: on the real trained project (v1 production, v2 staging,
trained through MLflow) and on deterministic fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from workbench_tui.app import WorkbenchApp, binding_ids
from workbench_tui.base import WorkbenchScreen
from workbench_tui.compare import CompareScreen
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.experiments import ExperimentsScreen
from workbench_tui.help import HelpScreen
from workbench_tui.models import ModelsScreen
from workbench_tui.overview import OverviewScreen
from workbench_tui.train import TrainScreen

from tests.tui.helpers import palette_hits, record_notes, run_metrics, run_name, settle, wait_until
from workbench.config import TuiSection
from workbench.errors import JobFailed
from workbench.jobs.events import Progress
from workbench.jobs.observer import QUIET, JobObserver
from workbench.project import Project
from workbench.registry import audit
from workbench.registry import versions as registry
from workbench.store.db import Db

pytestmark = pytest.mark.tui

SIZE = (80, 24)
REPO = Path(__file__).resolve().parents[2]


def with_tui(project: Project, **settings: Any) -> Project:
    return Project(project.root, project.config.model_copy(update={"tui": TuiSection(**settings)}))


# --- the real, trained project -----------------------------------------------------------


async def test_opens_on_overview_with_production(trained_project: Project) -> None:
    app = WorkbenchApp(trained_project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert app.current_mode == "overview"
        assert isinstance(screen, OverviewScreen)
        assert screen.data is not None
        prod = registry.aliases(trained_project)["production"]
        card = screen.data.cards[0]
        assert (card.alias, card.version) == ("production", prod)
        text = str(screen.aliases_view.content)
        assert "production" in text and f"v{prod}" in text
        # the runs index was synced after the first paint, then the screen reloaded
        assert screen.data.total_runs == 2
        assert screen.runs_table.row_count == 2
        assert screen.audit_table.row_count >= 2


async def test_experiments_filter_mark_compare(trained_project: Project) -> None:
    app = WorkbenchApp(trained_project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        assert screen.table.row_count == 2
        assert "2 of 2 runs" in str(screen.count.content)

        # filter: nothing matches, then key=value matches both, then back to the table
        await pilot.press("slash")
        assert screen.focused is screen.filter_input
        await pilot.press(*"zzz-no-such-run")
        await settle(pilot)
        assert screen.table.row_count == 0
        assert "0 of 2 runs" in str(screen.count.content)
        screen.filter_input.value = ""
        await pilot.press(*"status=finished")
        await settle(pilot)
        assert screen.table.row_count == 2
        await pilot.press("escape")
        assert screen.focused is screen.table

        # the selected run's curve and params
        await wait_until(pilot, lambda: bool(screen.curves.curves), what="the run's curve")
        assert screen.curves.key == "valid_auc" and "valid_auc" in str(screen.legend.content)
        assert len(screen.curves.curves[0].values) > 10
        assert "learning_rate" in str(screen.params.content)

        # mark two runs and compare them
        await pilot.press("space", "down", "space")
        assert len(screen.table.marked) == 2
        await pilot.press("c")
        await pilot.pause()
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        all_rows = [r["field"] for r in compare.rows]
        assert compare.grid.row_count == len(all_rows)
        await pilot.press("d")
        await pilot.pause()
        diff_rows = [r["field"] for r in compare.rows]
        assert compare.only_diff
        assert 0 < len(diff_rows) < len(all_rows)
        assert all(r["differs"] for r in compare.rows)
        assert "run_name" in diff_rows and "experiment" not in diff_rows
        assert compare.grid.row_count == len(diff_rows)
        await pilot.press("d")
        assert [r["field"] for r in compare.rows] == all_rows
        await pilot.press("escape")
        assert app.screen is screen


async def test_promote_and_rollback_through_the_dialog(trained_project: Project) -> None:
    project = trained_project
    assert registry.aliases(project) == {"production": 1, "staging": 2}
    app = WorkbenchApp(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        models = app.screen
        assert isinstance(models, ModelsScreen)
        assert models.selected_version == 2  # newest first

        # an empty reason does not act
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "production: v1 → v2" in str(dialog.change_view.content)
        await pilot.press("enter")
        await pilot.press("space", "space", "enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "reason is required" in str(dialog.error.content)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is models
        assert registry.aliases(project)["production"] == 1

        # promote v2 with a reason
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press(*"better recall on the new data", "enter")
        await settle(pilot)
        assert app.screen is models
        assert registry.aliases(project)["production"] == 2
        db = Db(project.logs)
        try:
            rows = db.rows(
                "SELECT * FROM audit WHERE action = 'promote' AND alias = 'production' "
                "AND to_version = 2"
            )
        finally:
            db.close()
        assert len(rows) == 1
        assert rows[0]["reason"] == "better recall on the new data"
        assert rows[0]["from_version"] == 1
        assert models.data is not None and models.data.aliases["production"] == 2
        assert models.history.row_count >= 1

        # roll back: the dialog says where production goes
        await pilot.press("r")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "production: v2 → v1" in str(dialog.change_view.content)
        await pilot.press(*"v2 pages on-call", "enter")
        await settle(pilot)
        assert registry.aliases(project)["production"] == 1
        assert models.data is not None and models.data.aliases["production"] == 1

        # the overview, shown again, has reloaded
        await pilot.press("1")
        await settle(pilot)
        overview = app.screen
        assert isinstance(overview, OverviewScreen) and overview.data is not None
        assert overview.data.cards[0].version == 1
        assert overview.data.audit[0]["action"] == "rollback"


def test_first_paint_imports_no_mlflow(trained_project: Project) -> None:
    """In a fresh interpreter: no mlflow, lightgbm or sklearn at first paint, nor after the
    start-up workers (data load and runs sync) are done."""
    code = textwrap.dedent(
        """
        import asyncio, sys
        HEAVY = ("mlflow", "lightgbm", "sklearn")
        from workbench.project import Project
        project = Project.load(sys.argv[1])
        import workbench_tui.app
        at_import = [m for m in HEAVY + ("pandas",) if m in sys.modules]

        async def main():
            app = workbench_tui.app.WorkbenchApp(project)
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause()
                first = [m for m in HEAVY if m in sys.modules]
                for _ in range(200):
                    await app.workers.wait_for_complete()
                    await pilot.pause()
                    if not list(app.workers):
                        break
                after = [m for m in HEAVY if m in sys.modules]
                rows = app.screen.runs_table.row_count
            print("RESULT", at_import, first, after, rows)

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(trained_project.root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    assert line == "RESULT [] [] [] 2", line


# --- deterministic projects --------------------------------------------------------------


async def test_empty_project_says_how_to_start(empty_project: Project) -> None:
    app = WorkbenchApp(empty_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        assert screen.empty.display and not screen.runs_table.display
        assert "press [b]t[/] to train" in str(screen.empty.content)
        assert "not set" in str(screen.aliases_view.content)
        assert screen.no_audit.display and not screen.audit_table.display

        await pilot.press("2")
        await settle(pilot)
        assert "0 of 0 runs" in str(app.screen.count.content)
        await pilot.press("c")
        await pilot.press("3")
        await settle(pilot)
        models = app.screen
        assert isinstance(models, ModelsScreen)
        assert models.no_versions.display and not models.versions.display
        assert models.no_history.display
        await pilot.press("p", "r")
        await settle(pilot)
        assert app.screen is models
    severities = {s for s, _ in notes}
    assert "warning" in severities  # compare, promote: nothing to act on
    assert any("not set" in m for s, m in notes if s == "error")  # rollback: RegistryError


async def test_models_screen_shows_who_you_are_and_what_you_may_do(
    fixed_project: Project,
) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await wait_until(pilot, lambda: str(screen.whoami.content) != "", what="whoami")
        line = str(screen.whoami.content)
        user = audit.actor().split("@")[0]
        assert line == f"{user} on .workbench/mlflow.db · may promote"
    # a store whose file this user may not write reads as such
    fixed_project.mlflow_db.chmod(0o444)
    try:
        if os.access(fixed_project.mlflow_db, os.W_OK):  # root writes anyway
            return
        app = WorkbenchApp(fixed_project, sync_on_start=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await wait_until(pilot, lambda: str(screen.whoami.content) != "", what="whoami")
            assert "may promote" not in str(screen.whoami.content)
    finally:
        fixed_project.mlflow_db.chmod(0o644)


async def test_rollback_without_history_is_a_notification(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)
    errors = [m for s, m in notes if s == "error"]
    assert errors == ["nothing to roll back to: 'production' has only ever pointed at version 1"]


async def test_promote_what_already_serves_is_refused(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("down", "p")
        await pilot.pause()
        assert isinstance(app.screen, ModelsScreen)
    assert ("warning", "v1 already holds production") in notes


async def test_ten_thousand_runs(big_project: Project) -> None:
    app = WorkbenchApp(big_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        table = screen.table
        assert table.row_count == 10_000
        assert "10,000 of 10,000 runs" in str(screen.count.content)
        # newest first; only the windows on screen were ever formatted
        assert table.cursor_run_id == table.frame["run_id"][0]
        started = time.perf_counter()
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor == 9_999
        await pilot.press("pageup", "up", "home", "pagedown")
        await pilot.pause()
        assert time.perf_counter() - started < 2.0
        assert table.cursor == table.scrollable_content_region.height - 1
        assert table.rows_cached <= 4 * 64

        # filter and sort through polars, off the event loop
        await pilot.press("slash", *"auc>0.925")
        await settle(pilot)
        expected = sum(1 for i in range(10_000) if run_metrics(i)["holdout_auc"] > 0.925)
        assert table.row_count == expected
        await pilot.press("escape", "s")  # next sort column: run_name, ascending
        await settle(pilot)
        names = table.frame["run_name"].to_list()
        assert table.sort_key == "run_name" and names == sorted(names)
        await pilot.press("r")
        await settle(pilot)
        assert table.frame["run_name"].to_list() == sorted(names, reverse=True)


async def test_marks_survive_filtering(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        await pilot.press("space", "down", "space")
        marked = list(screen.table.marked)
        await pilot.press("slash", *run_name(0))
        await settle(pilot)
        assert screen.table.row_count == 1
        await pilot.press("escape", "c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        assert app.screen.run_ids == marked


async def test_help_lists_keys_per_screen(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        titles = [title for title, _ in help_screen.sections]
        assert titles[0] == "Models"  # the screen it was opened from comes first
        assert {"Everywhere", "Overview", "Experiments", "Compare runs", "Models"} <= set(titles)
        await pilot.press("escape")
        assert isinstance(app.screen, ModelsScreen)


def test_every_binding_has_an_id_and_a_tooltip() -> None:
    from workbench_tui.app import help_sections

    seen: list[str] = []
    for _title, bindings in help_sections():
        for binding in bindings:
            assert binding.id and binding.tooltip, binding
            seen.append(binding.id)
    assert len(seen) == len(set(seen)) == len(binding_ids())


async def test_keys_and_theme_from_config(fixed_project: Project) -> None:
    project = with_tui(fixed_project, theme="nord", keys={"app.models": "m", "models.promote": "P"})
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "nord"
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        shown = {b.id: help_screen.key_label(b) for _, bs in help_screen.sections for b in bs}
        assert shown["app.models"] == "m" and shown["models.promote"] == "P"


async def test_bad_theme_and_unknown_key_ids_are_warnings(fixed_project: Project) -> None:
    project = with_tui(fixed_project, theme="no-such-theme", keys={"app.nope": "x"})
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
    warnings = [m for s, m in notes if s == "warning"]
    assert any("no-such-theme" in m for m in warnings)
    assert any("app.nope" in m for m in warnings)


async def test_command_palette_runs_actions(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"go to models")
        await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen), what="models")
        await settle(pilot)
        await pilot.press("ctrl+p", *"promote selected")
        await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="dialog")


async def test_every_mode_screen_paints(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        for key, mode in (("1", "overview"), ("2", "experiments"), ("3", "models")):
            await pilot.press(key)
            await settle(pilot)
            assert app.current_mode == mode
            assert isinstance(app.screen, WorkbenchScreen)
            assert app.screen.sub_title.startswith("fraud_detection")


# --- training, with the pipeline replaced by a fake that reports like the real one --------


class FakePipeline:
    """Stands in for pipeline.run: steps, 10 iterations, then waits to be released or stopped."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def __call__(
        self,
        project: Project,
        runner: Any,
        observer: JobObserver = QUIET,
        auto_promote: Any = None,
    ) -> Any:
        self.calls += 1
        on_step = observer.on_step
        on_step("validate", "done", "100 rows, 0 warning(s)")
        on_step("train", "running", "fake on the fake runner")
        for i in range(1, 11):
            observer.on_progress(Progress(i, 40, {"valid_auc": 0.8 + i / 100}))
        observer.on_log("a line from the job")
        deadline = time.monotonic() + 20
        while not self.release.wait(0.01):
            if observer.should_stop():
                on_step("train", "failed", "stopped by user")
                raise JobFailed("training job train-1 stopped: stopped by user")
            if time.monotonic() > deadline:
                raise JobFailed("the test never released the fake job")
        on_step("train", "done", "run 0123abcd")
        return SimpleNamespace(
            model="fraud_detection", version=3, gate={"decision": "pass"}, aliases_set=["staging"]
        )


@pytest.fixture
def fake_pipeline(monkeypatch: pytest.MonkeyPatch) -> FakePipeline:
    from workbench.jobs import control as jobs
    from workbench.pipeline import flow as pipeline

    fake = FakePipeline()
    monkeypatch.setattr(pipeline, "run", fake)
    monkeypatch.setattr(
        jobs, "resolve_runner", lambda project, requested=None: SimpleNamespace(name="fake")
    )
    return fake


async def test_train_shows_progress_and_stops_on_escape(
    fixed_project: Project, fake_pipeline: FakePipeline
) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await wait_until(pilot, lambda: app.training.iteration == 10, what="progress")
        panel = app.screen
        assert isinstance(panel, TrainScreen)
        assert panel.bar.progress == 10 and panel.bar.total == 40
        assert "valid_auc 0.9000" in str(panel.scores_view.content)
        assert app.training.steps["validate"][0] == "done"
        assert "a line from the job" in app.training.log
        await pilot.press("escape")  # stop
        await wait_until(pilot, lambda: not app.training.running, what="the job to stop")
        await settle(pilot)
        assert app.training.ok is False
        assert "stopped" in app.training.outcome
        assert app.screen is panel  # stays open to show why
        await pilot.press("escape")  # close
        assert isinstance(app.screen, OverviewScreen)
    assert fake_pipeline.calls == 1


async def test_train_panel_hides_and_comes_back(
    fixed_project: Project, fake_pipeline: FakePipeline
) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        await wait_until(pilot, lambda: app.training.iteration == 10, what="progress")
        await pilot.press("h")  # hide: training goes on
        assert isinstance(app.screen, OverviewScreen)
        assert app.training.running
        await pilot.press("2")  # the UI is usable meanwhile
        await settle_except_training(pilot)
        assert isinstance(app.screen, ExperimentsScreen)
        await pilot.press("t")  # shows the panel again, does not start a second job
        await pilot.pause()
        assert isinstance(app.screen, TrainScreen)
        await pilot.press("3")  # the panel is modal: app keys wait until it is hidden
        assert isinstance(app.screen, TrainScreen)
        await pilot.press("h", "3")
        await settle_except_training(pilot)
        assert isinstance(app.screen, ModelsScreen) and app.training.running
        await pilot.press("t")
        await pilot.pause()
        panel = app.screen
        assert isinstance(panel, TrainScreen)
        assert panel.bar.progress == 10
        fake_pipeline.release.set()
        await wait_until(pilot, lambda: not app.training.running, what="the job to end")
        await settle(pilot)
        assert app.training.ok is True
        assert "fraud_detection v3 registered (staging); gate pass" in app.training.outcome
    assert fake_pipeline.calls == 1
    assert ("information", "fraud_detection v3 registered (staging); gate pass") in notes


async def settle_except_training(pilot: Any) -> None:
    app = pilot.app
    for _ in range(200):
        others = [w for w in app.workers if w.group != "train"]
        if not others:
            await pilot.pause()
            return
        await app.workers.wait_for_complete(others)
        await pilot.pause()
    raise AssertionError("workers did not settle")
