"""The Deployments screen (key 5), driven with Pilot over real deployment state files, a real
prediction log (Parquet, written by PredictionLogger), the real audit log and, for promote,
the real MLflow registry of the trained project.

Predictions are logged with the time they are logged at, so they fall in the screen's 60 s
window while the test runs; the SVG snapshot uses a project without predictions (its numbers
would depend on the clock)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from workbench_tui.app import WorkbenchApp, help_sections
from workbench_tui.deploy_dialog import CanaryDialog
from workbench_tui.deploy_format import NO_SERVER, clamp_pct, error_level, fmt_pct
from workbench_tui.deployments import NO_CANARY, DeploymentsScreen
from workbench_tui.dialogs import ConfirmDialog

from tests.tui.helpers import (
    MODEL,
    make_project,
    palette_hits,
    record_notes,
    settle,
    wait_until,
    write_audit,
    write_registry,
    write_runs,
)
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.serving import deployments, labels
from workbench.serving.prediction_log import PredictionLogger
from workbench.store.db import Db

pytestmark = pytest.mark.tui

SIZES = [(80, 24), (120, 40)]
REPO = Path(__file__).resolve().parents[2]
PROD_REQUESTS = 30
CANARY_REQUESTS = 7


def log_predictions(project: Project, production: int, canary: int | None) -> None:
    """PROD_REQUESTS rows for production (v1), CANARY_REQUESTS for the canary (one 500)."""
    logger = PredictionLogger(project.logs)
    try:
        for i in range(PROD_REQUESTS):
            logger.log(f"p{i}", MODEL, production, "production", {"amount": i}, 0.1, 4.0 + i % 5)
        if canary is not None:
            for i in range(CANARY_REQUESTS):
                status = 500 if i == 0 else 200
                output = None if status == 500 else 0.3
                logger.log(f"c{i}", MODEL, canary, "canary", {"amount": i}, output, 6.0, status)
    finally:
        logger.close()


@pytest.fixture
def canary_project(tmp_path: Path) -> Project:
    """v1 production, v2 staging; v2 deployed as the canary on 10%; predictions for both."""
    project = make_project(tmp_path / "canary")
    write_registry(project, {1: 3, 2: 7}, {"production": 1, "staging": 2})
    deployments.start_canary(project, 2, 10, reason="try v2 on a little traffic")
    log_predictions(project, 1, 2)
    return project


@pytest.fixture
def plain_project(tmp_path: Path) -> Project:
    """v1 production, v2 staging, no canary, no predictions."""
    project = make_project(tmp_path / "plain")
    write_registry(project, {1: 3, 2: 7}, {"production": 1, "staging": 2})
    return project


async def open_deployments(pilot: Pilot[Any]) -> DeploymentsScreen:
    await pilot.press("5")
    screen = pilot.app.screen
    assert isinstance(screen, DeploymentsScreen)
    await wait_until(pilot, lambda: screen.data is not None or screen.error, what="first poll")
    await settle(pilot)
    return screen


def stats_text(screen: DeploymentsScreen, variant: str) -> str:
    panel = screen.production_panel if variant == "production" else screen.canary_panel
    return str(panel.stats.content)


def audit_rows(project: Project, action: str) -> list[dict[str, Any]]:
    db = Db(project.logs)
    try:
        return [r for r in db.rows("SELECT * FROM audit") if r["action"] == action]
    finally:
        db.close()


# --- the panels ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
async def test_panels_show_both_variants(canary_project: Project, size: tuple[int, int]) -> None:
    app = WorkbenchApp(canary_project, sync_on_start=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_deployments(pilot)
        assert app.current_mode == "deployments"
        assert screen.sub_title == "fraud_detection · Deployments"
        assert not screen.error

        prod, canary = screen.production_panel, screen.canary_panel
        assert prod.border_title == "production · v1"
        assert canary.border_title == "canary · v2"
        prod_text, canary_text = stats_text(screen, "production"), stats_text(screen, "canary")
        assert f"requests  {PROD_REQUESTS} · " in prod_text
        assert f"requests  {CANARY_REQUESTS} · " in canary_text
        assert "errors    0.00% (0 of 30)" in prod_text
        assert "errors    14.29% (1 of 7)" in canary_text
        assert "10% of traffic" in canary_text
        assert "vs prod" in canary_text and "err +14.29pt" in canary_text
        assert "no labels yet" in prod_text
        assert canary.border_subtitle.startswith("since ")

        # rate sparklines: every request is in the window
        variants = screen.data["variants"] if screen.data else {}
        assert sum(variants["production"]["rate_series"]) > 0
        assert list(prod.sparkline.data or []) == variants["production"]["rate_series"]
        assert list(canary.sparkline.data or []) == variants["canary"]["rate_series"]

        # the header and the traffic bar
        assert NO_SERVER in str(screen.server_line.content)
        state_line = str(screen.state_line.content)
        assert "desired 1" in state_line and "sticky key none" in state_line
        assert screen.traffic_bar.share == pytest.approx(0.1)
        assert str(screen.traffic_prod.content) == "production v1 90%"
        assert str(screen.traffic_canary.content) == "10% canary v2"
        # every part fits: nothing is cut off at this size
        for widget in (prod, canary, screen.traffic_bar):
            assert widget.region.width > 0 and widget.region.right <= size[0]


async def test_the_model_metric_shows_when_labels_exist(
    canary_project: Project, tmp_path: Path
) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("request_id,label\n" + "".join(f"p{i},{i % 2}\n" for i in range(PROD_REQUESTS)))
    assert labels.ingest(canary_project, csv) == PROD_REQUESTS
    app = WorkbenchApp(canary_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        text = stats_text(screen, "production")
        # every production output is 0.1: ties everywhere, so the AUC is 0.5
        assert f"auc       0.5000 ({PROD_REQUESTS} labeled)" in text


async def test_no_canary_and_no_server_say_what_to_run(plain_project: Project) -> None:
    app = WorkbenchApp(plain_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        assert screen.canary_panel.placeholder.display
        assert str(screen.canary_panel.placeholder.content) == NO_CANARY
        assert not screen.canary_panel.stats.display
        assert "0 · none in the last 60 s" in stats_text(screen, "production")
        assert str(screen.traffic_canary.content) == "no canary"
        assert screen.traffic_bar.share == 0


async def test_polls_while_shown_only(canary_project: Project) -> None:
    app = WorkbenchApp(canary_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        seen = screen.polls
        await wait_until(pilot, lambda: screen.polls >= seen + 2, what="two more polls")
        await pilot.press("1")
        await settle(pilot)
        stopped_at = screen.polls
        await pilot.pause(1.5)
        assert screen.polls <= stopped_at + 1  # at most the one already under way
        assert screen._poll_timer is None
        await pilot.press("5")
        await wait_until(pilot, lambda: screen.polls > stopped_at + 1, what="polling again")


async def test_window_cycles(canary_project: Project) -> None:
    app = WorkbenchApp(canary_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        assert screen.data is not None and screen.data["window_s"] == 60
        for seconds, label in ((300, "5 min"), (3600, "1 h"), (60, "60 s")):
            await pilot.press("w")
            await wait_until(
                pilot,
                lambda s=seconds: screen.data is not None and screen.data["window_s"] == s,
                what=f"a {seconds} s poll",
            )
            assert f"window {label}" in str(screen.state_line.content)
            assert f"last {label}" in str(screen.production_panel.caption.content)


# --- traffic ------------------------------------------------------------------------------


async def test_plus_and_minus_move_the_canary_share(canary_project: Project) -> None:
    project = canary_project
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        await pilot.press("plus")
        await settle(pilot)
        state = deployments.read_state(project)
        assert state.canary is not None and state.canary.traffic == pytest.approx(0.15)
        assert ("information", "canary traffic 10% → 15%") in notes
        await wait_until(pilot, lambda: "15% canary v2" in str(screen.traffic_canary.content))

        # presses add up, each from the state as it is then
        await pilot.press("minus", "minus", "minus")
        await settle(pilot)
        state = deployments.read_state(project)
        assert state.canary is not None and state.canary.traffic == pytest.approx(0.01)
        generation = state.generation
        traffic_rows = audit_rows(project, "canary.traffic")
        assert len(traffic_rows) == 4

        # clamped at 1%: nothing changes, and the screen says so
        await pilot.press("minus")
        await settle(pilot)
        assert deployments.read_state(project).generation == generation
        assert any(s == "warning" and "already 1%" in m for s, m in notes)

        # and at 100%
        deployments.set_traffic(project, 98)
        await pilot.press("plus")
        await settle(pilot)
        state = deployments.read_state(project)
        assert state.canary is not None and state.canary.traffic == pytest.approx(1.0)


def test_clamp_and_formats() -> None:
    assert [clamp_pct(x) for x in (-4, 0, 1, 6, 100, 105)] == [1, 1, 1, 6, 100, 100]
    assert fmt_pct(0.1) == "10%" and fmt_pct(0.125) == "12.5%" and fmt_pct(1.0) == "100%"
    assert [error_level(x) for x in (0.0, 0.02, 0.5)] == ["good", "warn", "bad"]


async def test_core_errors_are_shown_not_raised(plain_project: Project) -> None:
    project = plain_project
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        await pilot.press("plus")
        await settle(pilot)
        errors = [m for s, m in notes if s == "error"]
        assert any("no canary is deployed" in m for m in errors), notes
        assert deployments.read_state(project).generation == 0
        await pilot.press("p", "r")
        await settle(pilot)
        assert isinstance(app.screen, DeploymentsScreen)  # no dialog without a canary
        errors = [m for s, m in notes if s == "error"]
        assert "no canary is deployed; nothing to promote" in errors
        assert "no canary is deployed; nothing to roll back" in errors

        # a poll that fails says so in place, and recovers
        path = deployments.state_path(project)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{not json")
        await wait_until(pilot, lambda: bool(screen.error), what="the poll error")
        assert screen.error_line.display
        assert "cannot read the deployment" in str(screen.error_line.content)
        assert app.is_running
        path.unlink()
        await wait_until(pilot, lambda: not screen.error, what="recovery")
        assert not screen.error_line.display


# --- rollback, promote, deploy --------------------------------------------------------------


async def test_rollback_through_the_dialog(canary_project: Project) -> None:
    project = canary_project
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_deployments(pilot)
        await pilot.press("r")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert dialog.dialog_title == "Roll back canary v2"
        assert "production v1 takes all traffic" in dialog.change
        await pilot.press("enter")  # a reason is required
        await pilot.pause()
        assert app.screen is dialog
        assert "reason is required" in str(dialog.error.content)
        await pilot.press(*"p99 regression")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DeploymentsScreen)
        assert deployments.read_state(project).canary is None
        rows = audit_rows(project, "canary.rollback")
        assert len(rows) == 1
        assert rows[0]["reason"] == "p99 regression"
        assert (rows[0]["from_version"], rows[0]["to_version"]) == (2, 1)
        screen = app.screen
        await wait_until(pilot, lambda: screen.canary_panel.placeholder.display, what="no canary")


async def test_escape_cancels_and_changes_nothing(canary_project: Project) -> None:
    project = canary_project
    before = deployments.read_state(project)
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_deployments(pilot)
        for key in ("r", "p"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press(*"never mind", "escape")
            await settle(pilot)
            assert isinstance(app.screen, DeploymentsScreen)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CanaryDialog), what="dialog")
        await pilot.press("escape")
        await settle(pilot)
    assert deployments.read_state(project) == before
    assert audit_rows(project, "canary.rollback") == []
    assert audit_rows(project, "canary.promote") == []
    assert len(audit_rows(project, "canary.start")) == 1


async def test_deploy_a_canary_through_its_dialog(plain_project: Project) -> None:
    project = plain_project
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)

        # a version the registry lacks: the core's words, nothing deployed
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CanaryDialog), what="dialog")
        dialog = app.screen
        assert isinstance(dialog, CanaryDialog)
        assert dialog.version_input.value == "2"  # the staging version is suggested
        dialog.version_input.value = "9"
        await pilot.press("enter")
        await settle(pilot)
        assert any(s == "error" and "has no version 9" in m for s, m in notes), notes
        assert deployments.read_state(project).canary is None

        # a bad percentage is caught in the dialog
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CanaryDialog), what="dialog")
        dialog = app.screen
        assert isinstance(dialog, CanaryDialog)
        dialog.percent_input.value = "150"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "percentage" in str(dialog.error.content)
        dialog.percent_input.value = "20"
        dialog.reason.focus()
        await pilot.press(*"shadow v2", "enter")
        await settle(pilot)
        state = deployments.read_state(project)
        assert state.canary is not None
        assert (state.canary.version, state.canary.traffic) == (2, pytest.approx(0.2))
        rows = audit_rows(project, "canary.start")
        assert len(rows) == 1 and rows[0]["reason"] == "shadow v2"
        await wait_until(pilot, lambda: screen.canary_panel.border_title == "canary · v2")


async def test_promote_moves_the_alias(trained_project: Project) -> None:
    project = trained_project
    assert registry.aliases(project)["production"] == 1
    deployments.start_canary(project, 2, 25)
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        assert screen.canary_panel.border_title == "canary · v2"
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert dialog.change.startswith("production: v1 → v2")
        await pilot.press(*"canary healthy for a day", "enter")
        await wait_until(
            pilot,
            lambda: ("information", "v2 promoted to production") in notes,
            polls=1200,
            what="the promotion",
        )
        await settle(pilot)
        assert registry.aliases(project)["production"] == 2
        assert deployments.read_state(project).canary is None
        promoted = audit_rows(project, "canary.promote")
        assert len(promoted) == 1 and promoted[0]["reason"] == "canary healthy for a day"
        await wait_until(pilot, lambda: screen.production_panel.border_title == "production · v2")
        assert app.data_version >= 1  # the other screens reload


async def test_start_and_stop_the_server_from_the_screen(trained_project: Project) -> None:
    """`s` starts a real server (a local process on a free port), the header shows it; `x`
    asks, then stops it gracefully."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with open(trained_project.root / "workbench.toml", "a") as fh:
        fh.write(f'\n[serving]\nport = {port}\n\n[runner]\ndefault = "local"\n')
    project = Project.load(trained_project.root)
    app = WorkbenchApp(project, sync_on_start=False)
    notes = record_notes(app)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_deployments(pilot)
            await pilot.press("s")
            await wait_until(
                pilot,
                lambda: any(text.startswith("serving at http") for _, text in notes),
                polls=1200,
                what="the server to start",
            )
            assert deployments.read_server(project) is not None
            await wait_until(
                pilot, lambda: f":{port}" in str(screen.server_line.render()), what="header"
            )
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: any(text.startswith("server stopped") for _, text in notes),
                polls=1200,
                what="the server to stop",
            )
            assert deployments.read_server(project) is None
    finally:
        from workbench.serving import process as server_process

        server_process.stop(project)


# --- the app around it ----------------------------------------------------------------------


async def test_help_and_palette_know_the_screen(plain_project: Project) -> None:
    titles = [title for title, _ in help_sections("deployments")]
    assert titles[0] == "Deployments" and "Deploy canary dialog" in titles
    app = WorkbenchApp(plain_project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"deploy a canary")
        await wait_until(pilot, lambda: palette_hits(app) > 0, what="hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CanaryDialog), what="dialog")
        assert app.current_mode == "deployments"


def test_the_start_path_does_not_load_the_screen() -> None:
    code = textwrap.dedent(
        """
        import sys
        import workbench_tui.app
        lazy = ("workbench_tui.deployments", "workbench.serving.deployments",
                "workbench.serving.stats")
        print("RESULT", [m for m in lazy if m in sys.modules])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESULT []" in out.stdout


# --- snapshot -------------------------------------------------------------------------------


@pytest.fixture
def snapshot_project(tmp_path: Path) -> Iterator[Project]:
    """The fixed project with a canary written with fixed times (no predictions, no server)."""
    project = make_project(tmp_path / "snap")
    write_runs(project, 12, curves=12)
    write_audit(project)
    write_registry(project, {1: 3, 2: 7}, {"production": 1, "staging": 2})
    state = deployments.DeploymentState(
        model=MODEL,
        generation=3,
        canary=deployments.Canary(2, 0.15, "customer_id", "2026-01-20T12:00:00+00:00"),
        updated_at="2026-01-20T12:30:00+00:00",
        updated_by="tester@ci",
        reason="canary traffic 10% -> 15%",
        history=(
            {"generation": 3, "at": "2026-01-20T12:30:00+00:00", "by": "tester@ci"}
            | {"action": "canary.traffic", "reason": "canary traffic 10% -> 15%"},
        ),
    )
    path = deployments.state_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(replace(state).to_dict()))
    yield project


def test_snapshot(snap_compare: Any, snapshot_project: Project) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("5")
        screen = pilot.app.screen
        await wait_until(pilot, lambda: getattr(screen, "data", None) is not None)
        await settle(pilot)

    app = WorkbenchApp(snapshot_project, sync_on_start=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


async def test_the_value_line_shows_with_monitoring_value(tmp_path: Path) -> None:
    """`[monitoring.value]` set: each panel has a value line, priced once labels come."""
    project = make_project(tmp_path / "valued")
    toml = project.root / "workbench.toml"
    toml.write_text(
        toml.read_text() + '\n[monitoring.value]\nfalse_negative = -50.0\nunit = "EUR"\n'
    )
    project = Project.load(project.root)
    write_registry(project, {1: 3, 2: 7}, {"production": 1, "staging": 2})
    deployments.start_canary(project, 2, 10, reason="try v2")
    log_predictions(project, 1, 2)
    csv = tmp_path / "labels.csv"
    # production outputs are 0.1 (negative at 0.5), every label 1: 30 misses at -50 each
    csv.write_text("request_id,label\n" + "".join(f"p{i},1\n" for i in range(PROD_REQUESTS)))
    assert labels.ingest(project, csv) == PROD_REQUESTS
    app = WorkbenchApp(project, sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_deployments(pilot)
        prod_text, canary_text = stats_text(screen, "production"), stats_text(screen, "canary")
        assert f"value     -50,000 EUR per 1k ({PROD_REQUESTS} labeled)" in prod_text
        assert "value     no labels yet" in canary_text
