"""The Models screen with [governance] approvals, at 80x24, on the real trained project:
a pending request is listed, `a` approves it (the move happens), `p` makes a request."""

from __future__ import annotations

import pytest
from workbench_tui.app import WorkbenchApp
from workbench_tui.dialogs import ConfirmDialog
from workbench_tui.models import ModelsScreen

from tests.tui.helpers import record_notes, settle
from workbench.project import Project
from workbench.registry import approvals
from workbench.registry import versions as registry

pytestmark = pytest.mark.tui

GOVERNED = """
[governance.aliases.production]
approvers = ["alice", "bob"]
required_approvals = 1
"""


async def test_pending_request_is_listed_and_a_approves_it(
    trained_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = trained_project.root / "workbench.toml"
    path.write_text(path.read_text() + GOVERNED)
    project = Project.load(trained_project.root)
    monkeypatch.setenv("WORKBENCH_USER", "dave")
    req = approvals.request(project, "production", 2, "better recall")
    monkeypatch.setenv("WORKBENCH_USER", "alice")
    app = WorkbenchApp(project)
    async with app.run_test(size=(80, 24)) as pilot:
        notes = record_notes(app)
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        models = app.screen
        assert isinstance(models, ModelsScreen)
        panel = models.approvals
        assert panel.display and panel.table.row_count == 1
        assert panel.selected is not None and panel.selected.id == req.id
        assert panel.region.height >= 3 and models.versions.region.height >= 2  # fits 80x24

        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "production: v1 → v2 (0/1 approvals)" in str(dialog.change_view.content)
        await pilot.press(*"checked the holdout", "enter")
        await settle(pilot)
        assert app.screen is models
        assert registry.aliases(project)["production"] == 2
        assert approvals.get(project, req.id).state == "executed"
        assert not panel.display  # nothing pending any more
        assert any(req.id in text and "v1 -> v2" in text for _, text in notes)

        # p now asks for approval instead of moving (v1 is selected: newest first, so move)
        await pilot.press("down")
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "needs 1 approval(s)" in str(app.screen.change_view.content)
        await pilot.press(*"back to v1", "enter")
        await settle(pilot)
        assert registry.aliases(project)["production"] == 2
        (pending,) = approvals.requests(project)
        assert pending.version == 1 and pending.requester == "alice"
        assert panel.display and panel.table.row_count == 1
        assert any("approval needed" in text for _, text in notes)
        # the requester may not approve it: one line, nothing moves
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*"mine", "enter")
        await settle(pilot)
        assert any(sev == "error" and "may not approve it" in t for sev, t in notes)
        # x rejects it
        await pilot.press("x")
        await pilot.pause()
        await pilot.press(*"not now", "enter")
        await settle(pilot)
        assert approvals.get(project, pending.id).state == "rejected"
        assert not panel.display
