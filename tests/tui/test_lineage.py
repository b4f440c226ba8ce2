"""The Lineage screen, driven with Pilot at 80x24 and the keyboard alone.

The graph builder (`workbench.lineage.graph.build`) is tested in its own module
(tests/unit/test_lineage*.py); here the screen gets Lineage objects built by hand from
`workbench.lineage.model`, through a recording builder passed in (or patched in where the
screen is opened by a key), so what is tested is the screen: the tree, the details, the
re-root, the depth, the THING input, the error line, and that the build runs in a worker.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Tree
from workbench_tui.app import WorkbenchApp
from workbench_tui.help import HelpScreen
from workbench_tui.jobs import JobsScreen
from workbench_tui.lineage import DEFAULT_DEPTH as D
from workbench_tui.lineage import LineageScreen, thing_for
from workbench_tui.models import ModelsScreen

from tests.tui.helpers import settle, wait_until
from workbench.errors import UsageError
from workbench.lineage.model import Lineage, Node
from workbench.project import Project
from workbench.registry import versions as registry

pytestmark = pytest.mark.tui

SIZE = (80, 24)
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
ROOT = "version:fraud_detection/2"
CHAIN = [  # upstream first, then the root, then downstream (key, kind, title)
    ("dataset:ab12cd34", "dataset", "data/transactions.parquet ab12cd34 (8000 rows)"),
    ("job:train-20260115-090000-a1b2", "job", "train on local a1b2"),
    ("run:0f1e2d3c", "run", "brisk-heron-103"),
    (ROOT, "version", "fraud_detection v2"),
    ("alias:fraud_detection/production@2026-01-15T09:04:00+00:00", "alias", "production v1→v2"),
    ("deployment:3", "deployment", "canary v2 10%"),
    ("serving:serve-20260115-091000-c3d4", "serving", "serve on local :8000"),
    ("drift:chk-1", "drift", "drift 0.31 fired"),
    ("retrain:train-20260116-090000-e5f6", "retrain", "retrain triggered"),
    ("version:fraud_detection/3", "version", "fraud_detection v3"),
]
LABELS = [
    *("read", "trained", "registered", "moved", "deployed"),
    *("served", "checked", "triggered", "registered"),
]


def sample_lineage(root: str = ROOT) -> Lineage:
    """The chain above, with an approval beside the alias move; rooted at `root`."""
    lineage = Lineage(root=root)
    for i, (key, kind, title) in enumerate(CHAIN):
        details: dict[str, Any] = {"step": i, "seen by": ["alice", "ci"]}
        if kind == "job":
            details.update(runner="local", image_digest=None)
        lineage.add(Node(key, kind, title, T0 + timedelta(minutes=i), details))
    for ((src, _, _), (dst, _, _)), label in zip(pairwise(CHAIN), LABELS, strict=True):
        lineage.link(src, dst, label)
    lineage.add(Node("approval:req-7", "approval", "approved by alice", None, {"state": "ok"}))
    lineage.link(ROOT, "approval:req-7", "requested")
    return lineage


class Recorder:
    """A builder that records its calls and answers with `sample_lineage`, or raises."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.threads: list[str] = []
        self.gate = gate

    def __call__(self, project: Project, thing: str, depth: int) -> Lineage:
        self.calls.append((thing, depth))
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.wait(10)
        if thing == "nope":
            raise UsageError("lineage: nothing matches 'nope' (a digest, run, version, ...)")
        keys = {thing_for(key): key for key, _, _ in CHAIN}
        return sample_lineage(keys.get(thing, ROOT))


def lines(tree: Tree[str]) -> list[tuple[int, str | None, str]]:
    """The visible lines: (depth, node key, label text)."""
    out: list[tuple[int, str | None, str]] = []

    def walk(node: Any, depth: int) -> None:
        for child in node.children:
            out.append((depth, child.data, str(child.label)))
            if child.is_expanded:
                walk(child, depth + 1)

    walk(tree.root, 0)
    return out


async def open_screen(pilot: Pilot[Any], builder: Recorder, thing: str = ROOT) -> LineageScreen:
    screen = LineageScreen(thing, builder=builder)
    await pilot.app.push_screen(screen)
    await settle(pilot)
    return screen


async def select(pilot: Pilot[Any], screen: LineageScreen, key: str) -> None:
    """Move the cursor with the arrow keys until it is on `key`."""
    await pilot.press("home")
    for _ in range(30):
        if screen.selected_key == key:
            return
        await pilot.press("down")
    raise AssertionError(f"{key} not reached; at {screen.selected_key}")


async def test_tree_shows_upstream_root_and_downstream(fixed_project: Project) -> None:
    builder = Recorder()
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_screen(pilot, builder)
        assert builder.calls == [(ROOT, D)]
        shown = lines(screen.lineage_tree)
        keys = [key for _, key, _ in shown]
        # upstream above the root, farthest first, at the top level; the root next
        assert keys[:4] == [k for k, _, _ in CHAIN[:4]]
        assert [d for d, _, _ in shown[:4]] == [0, 0, 0, 0]
        assert "↓ trained" in shown[1][2] and "◆ fraud_detection v2" in shown[3][2]
        # downstream nested below the root, each one level deeper than the one before
        depth = {key: d for d, key, _ in shown}
        for i, (key, _, _) in enumerate(CHAIN[4:]):
            assert depth[key] == i + 1, key
        assert depth["approval:req-7"] == 1
        assert len(shown) == len(CHAIN) + 1  # every node once, one line each
        assert screen.selected_key == ROOT  # the cursor starts on the root
        assert f"depth {D} · 11 nodes (↑1 ↓2)" in str(screen.status.content)
        # the root is highlighted in its line
        root_label = screen.lineage_tree.root_node.label  # type: ignore[union-attr]
        assert any("reverse" in str(span.style) for span in root_label.spans)  # type: ignore[union-attr]


async def test_enter_shows_details_of_every_node(fixed_project: Project) -> None:
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_screen(pilot, Recorder())
        assert not screen.details_box.display
        await select(pilot, screen, "job:train-20260115-090000-a1b2")
        await pilot.press("enter")
        assert screen.details_box.display
        rows = {
            str(screen.details.get_row_at(i)[0]): str(screen.details.get_row_at(i)[1])
            for i in range(screen.details.row_count)
        }
        assert rows["key"] == "job:train-20260115-090000-a1b2"
        assert rows["kind"] == "job" and rows["runner"] == "local"
        assert rows["image_digest"] == "-" and rows["seen by"] == '["alice", "ci"]'
        assert rows["time"] == "2026-01-15 09:01:00+00:00"
        # with the details open they follow the cursor: every line opens its node
        for _ in range(len(CHAIN)):
            await pilot.press("down")
            key = screen.selected_key
            assert key is not None and f"Details · {key}" in str(screen.details_box.border_title)
        # escape closes the details first, then the screen
        await pilot.press("escape")
        assert not screen.details_box.display and app.screen is screen
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen


async def test_reroot_depth_and_thing_input(fixed_project: Project) -> None:
    builder = Recorder()
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_screen(pilot, builder)
        await select(pilot, screen, "run:0f1e2d3c")
        await pilot.press("r")
        await settle(pilot)
        assert builder.calls[-1] == ("0f1e2d3c", D)  # built again around the node (its id)
        assert screen.lineage is not None and screen.lineage.root == "run:0f1e2d3c"
        assert screen.selected_key == "run:0f1e2d3c"
        await pilot.press("plus")
        await settle(pilot)
        assert builder.calls[-1] == ("0f1e2d3c", D + 1)
        await pilot.press("minus", "minus")
        await settle(pilot)
        assert builder.calls[-1] == ("0f1e2d3c", D - 1)
        await pilot.press("backspace")  # back to the root before the re-root
        await settle(pilot)
        assert builder.calls[-1] == (ROOT, D - 1)
        # a node that cannot be looked up by itself: one error line, no build
        built = len(builder.calls)
        await select(pilot, screen, "approval:req-7")
        await pilot.press("r")
        await settle(pilot)
        assert len(builder.calls) == built
        assert str(screen.status.content).startswith("error: approval:req-7: approvals are not")

        # `/` asks for a THING; an unknown one is one error line, the tree stays
        await pilot.press("slash")
        assert screen.focused is screen.thing_input
        await pilot.press(*"nope", "enter")
        await settle(pilot)
        assert builder.calls[-1] == ("nope", D - 1)
        status = str(screen.status.content)
        assert status.startswith("error: lineage: nothing matches 'nope'")
        assert "\n" not in status and screen.status.has_class("-error")
        assert len(lines(screen.lineage_tree)) == len(CHAIN) + 1
        assert screen.focused is screen.lineage_tree
        # escape leaves the input without building
        built = len(builder.calls)
        await pilot.press("slash", "x", "escape")
        await settle(pilot)
        assert not screen.thing_input.display and len(builder.calls) == built


async def test_build_runs_in_a_worker_after_a_loading_line(fixed_project: Project) -> None:
    gate = threading.Event()
    builder = Recorder(gate)
    app = WorkbenchApp(fixed_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = LineageScreen(ROOT, builder=builder)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: bool(builder.calls), what="the build to start")
        assert str(screen.status.content).startswith("loading the lineage of " + ROOT)
        assert builder.threads[0] != threading.main_thread().name
        # the event loop is free while the builder works: the help opens, Lineage first
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert help_screen.sections[0][0] == "Lineage"
        ids = {b.id for b in help_screen.sections[0][1]}  # type: ignore[union-attr]
        assert {"lineage.details", "lineage.reroot", "lineage.find", "lineage.back"} <= ids
        await pilot.press("escape")
        assert not lines(screen.lineage_tree)
        gate.set()
        await settle(pilot)
        assert len(lines(screen.lineage_tree)) == len(CHAIN) + 1


async def test_opened_with_L_from_models_runs_and_jobs(
    trained_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = Recorder()
    monkeypatch.setattr("workbench_tui.lineage.default_builder", builder)
    app = WorkbenchApp(trained_project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        models = app.screen
        assert isinstance(models, ModelsScreen) and models.selected_version == 2
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, LineageScreen)
        assert builder.calls[-1] == ("fraud_detection/2", D)
        await pilot.press("escape")
        assert app.screen is models

        await pilot.press("2")
        await settle(pilot)
        run_id = app.screen.table.cursor_run_id  # type: ignore[attr-defined]
        assert run_id
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, LineageScreen)
        assert builder.calls[-1] == (run_id, D)
        await pilot.press("escape")

        await pilot.press("4")
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await wait_until(pilot, lambda: jobs.selected_id is not None, what="a job")
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, LineageScreen)
        assert builder.calls[-1] == (jobs.selected_id, D)


def test_thing_for_names_each_node_as_the_cli_takes_it() -> None:
    assert thing_for("version:fraud_detection/3") == "fraud_detection/3"
    assert thing_for("alias:fraud_detection/production@2026-01-15T09:04:00+00:00") == (
        "models:/fraud_detection@production"
    )
    for kind in ("job", "serving", "run", "dataset", "drift", "request", "retrain"):
        assert thing_for(f"{kind}:abc-123") == "abc-123"
    assert thing_for("approval:req-7") is None and thing_for("deployment:3") is None
    assert thing_for("version:") is None and thing_for("nonsense") is None


async def test_models_L_on_a_trained_project_shows_production_lineage(
    trained_project: Project,
) -> None:
    """With the real builder (workbench.lineage.graph.build) over the real trained project."""
    prod = registry.aliases(trained_project)["production"]
    app = WorkbenchApp(trained_project, sync_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        models = app.screen
        assert isinstance(models, ModelsScreen)
        while models.selected_version != prod:
            await pilot.press("down")
        await pilot.press("L")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LineageScreen)
        assert screen.error == "" and screen.lineage is not None
        assert screen.lineage.root == f"version:fraud_detection/{prod}"
        shown = lines(screen.lineage_tree)
        keys = [key or "" for _, key, _ in shown]
        at = keys.index(screen.lineage.root)
        kinds = {k.partition(":")[0] for k in keys}
        # upstream above the root: the run it came from and the data it was trained on
        assert any(k.startswith("run:") for k in keys[:at])
        assert any(k.startswith("dataset:") for k in keys[:at])
        # downstream: production's alias move (v1 was promoted when it was registered)
        assert "alias" in kinds, keys
        assert screen.selected_key == screen.lineage.root
        await pilot.press("enter")
        assert screen.details_box.display and screen.details.row_count >= 3
