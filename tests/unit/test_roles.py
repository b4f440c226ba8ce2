"""`workbench roles`: grant and revoke edit [governance] in place (comments kept) and are
audited; a hand edit is audited once, as `roles.external`."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import audit_rows, cli_json, run_cli
from tests.tui.helpers import make_project
from workbench import readonly
from workbench.errors import UsageError
from workbench.project import Project
from workbench.registry import roles

GOVERNANCE = """
[governance]
request_ttl_h = 72            # a pending request expires after this many hours

# who may move production
[governance.aliases.production]
approvers = ["alice", "ci"]   # who may approve
required_approvals = 1        # 0: approvers move it directly
requesters = []               # who may request/move (empty: anyone)

[serving]
port = 8123                   # after governance: must stay where it is
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project whose [governance] was audited as it is (no hand edit pending)."""
    project = make_project(tmp_path / "gov")
    path = project.root / "workbench.toml"
    path.write_text(path.read_text() + GOVERNANCE)
    roles.remember(project, roles.governance(project))
    return project


def _toml(project: Project) -> str:
    return (project.root / "workbench.toml").read_text()


def _details(row: dict[str, object]) -> dict[str, object]:
    return dict(json.loads(str(row["details"])))


def test_grant_and_revoke_keep_the_file_and_are_audited(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _toml(project)
    root = str(project.root)
    code, out, err = run_cli(
        capsys, "roles", "grant", "bob", "--alias", "production", "--role", "approver",
        "--reason", "on call this week", "--project", root,
    )  # fmt: skip
    assert code == 0, err
    assert "bob added to [governance.aliases.production] approvers" in out
    after = _toml(project)
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        (
            'approvers = ["alice", "ci"]   # who may approve',
            'approvers = ["alice", "ci", "bob"]  # who may approve',
        )
    ]
    # a role the table lacks is added to it, an alias without a table gets one
    for user, alias, role in (("carol", "production", "rollback"), ("dan", "staging", "requester")):
        code, _, err = run_cli(
            capsys, "roles", "grant", user, "--alias", alias, "--role", role, "--reason", "r",
            "--project", root,
        )  # fmt: skip
        assert code == 0, err
    parsed = tomllib.loads(_toml(project))
    assert parsed["governance"]["aliases"]["production"]["rollback"] == ["carol"]
    assert parsed["governance"]["aliases"]["staging"] == {"requesters": ["dan"]}
    assert parsed["serving"] == {"port": 8123}
    assert "# who may move production" in _toml(project)
    # granting again changes nothing and writes no row
    run_cli(capsys, "roles", "grant", "bob", "--alias", "production", "--role", "approver",
            "--reason", "again", "--project", root)  # fmt: skip
    code, _, err = run_cli(
        capsys, "roles", "revoke", "ci", "--alias", "production", "--role", "approver",
        "--reason", "left the team", "--project", root,
    )  # fmt: skip
    assert code == 0, err
    rows = audit_rows(project)
    assert [r["action"] for r in rows] == ["roles.grant"] * 3 + ["roles.revoke"]
    assert _details(rows[0]) == {"user": "bob", "alias": "production", "role": "approver"}
    assert rows[0]["alias"] == "production" and rows[0]["reason"] == "on call this week"
    assert _details(rows[-1]) == {"user": "ci", "alias": "production", "role": "approver"}
    listed = cli_json(capsys, "roles", "--project", root)
    assert listed["external_change"] is False
    assert listed["aliases"]["production"]["approvers"] == ["alice", "bob"]
    assert listed["aliases"]["production"]["required_approvals"] == 1


def test_revoking_the_last_requester_needs_allow_anyone(project: Project) -> None:
    roles.change(project, "erin", "production", "requester", "r", grant=True)
    with pytest.raises(UsageError, match="allow-anyone"):
        roles.change(project, "erin", "production", "requester", "r", grant=False)
    with pytest.raises(UsageError, match="not in"):
        roles.change(project, "zed", "production", "approver", "r", grant=False)
    roles.change(project, "erin", "production", "requester", "r", grant=False, allow_anyone=True)
    assert roles.alias_roles(roles.governance(project))["production"]["requesters"] == []


def test_a_hand_edit_is_audited_once(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert roles.note_external_role_changes(project) is None
    path = project.root / "workbench.toml"
    path.write_text(path.read_text().replace('["alice", "ci"]', '["alice", "ci", "mallory"]'))
    with readonly_on():
        assert roles.note_external_role_changes(project) is not None  # noticed, not written
    assert audit_rows(project) == []
    listed = cli_json(capsys, "roles", "--project", str(project.root))
    assert listed["external_change"] is True
    assert roles.note_external_role_changes(project) is None
    cli_json(capsys, "roles", "--project", str(project.root))
    rows = audit_rows(project)
    assert [r["action"] for r in rows] == ["roles.external"]
    details = _details(rows[0])
    approvers = lambda section: section["aliases"]["production"]["approvers"]  # noqa: E731
    assert approvers(details["before"]) == ["alice", "ci"]
    assert approvers(details["after"]) == ["alice", "ci", "mallory"]
    # a grant after another hand edit: the edit first, as its own row
    path.write_text(path.read_text().replace("request_ttl_h = 72", "request_ttl_h = 1"))
    roles.change(project, "bob", "production", "approver", "r", grant=True)
    assert [r["action"] for r in audit_rows(project)][1:] == ["roles.external", "roles.grant"]
    assert roles.note_external_role_changes(project) is None


@contextmanager
def readonly_on() -> Iterator[None]:
    previous = readonly.force(True)
    try:
        yield
    finally:
        readonly.force(previous)


def test_set_list_text_forms() -> None:
    text = (
        "[project]\nname = 'x'\n\n"
        '[governance.aliases."production"]  # quoted\n'
        "approvers = [\n  \"alice\",  # lead\n  'ci',\n]  # the approvers\n"
        "required_approvals = 2\n"
    )
    new = roles.set_list_text(text, "production", "approvers", ["alice"])
    assert new.splitlines()[4] == 'approvers = ["alice"]  # the approvers'
    assert tomllib.loads(new)["governance"]["aliases"]["production"] == {
        "approvers": ["alice"],
        "required_approvals": 2,
    }
    added = roles.set_list_text(text, "production", "rollback", ["sre"])
    assert added.splitlines()[-1] == 'rollback = ["sre"]'
    fresh = roles.set_list_text("[project]\nname = 'x'\n", "staging", "approvers", ["a"])
    assert fresh.endswith('\n\n[governance.aliases.staging]\napprovers = ["a"]\n')
