"""[governance] approvals on the real trained project (v1 production, v2 staging, real MLflow
SQLite store, real Parquet logs): who may move, request, approve, reject and roll back."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import audit_rows, cli_json, run_cli
from workbench.config import parse_config
from workbench.errors import ConfigError
from workbench.project import Project
from workbench.registry import approvals
from workbench.registry import versions as registry

pytestmark = pytest.mark.integration

TWO_NEEDED = """
[governance]
request_ttl_h = 1

[governance.aliases.production]
approvers = ["alice", "bob", "carol"]
required_approvals = 2
rollback = ["oncall"]
"""

APPROVERS_MOVE = """
[governance.aliases.production]
approvers = ["alice", "ci"]
required_approvals = 0
"""


def governed(project: Project, text: str) -> Project:
    """The project with `text` added to its workbench.toml, loaded again."""
    path = project.root / "workbench.toml"
    path.write_text(path.read_text() + text)
    return Project.load(project.root)


def as_user(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    monkeypatch.setenv("WORKBENCH_USER", user)


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(autouse=True)
def _outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


def test_governance_config_errors_name_the_key() -> None:
    base = '[project]\nname = "p"\n[data]\npath = "d.csv"\ntarget = "y"\nsplit = "random"\n'
    assert parse_config(base).governance.aliases == {}
    with pytest.raises(ConfigError) as too_many:
        parse_config(base + TWO_NEEDED.replace('"bob", "carol"', '"bob"').replace("2", "3"))
    assert "[governance].aliases.production: required_approvals = 3" in str(too_many.value)
    with pytest.raises(ConfigError) as unknown:
        parse_config(base + "[governance.aliases.production]\napprover = ['a']\n")
    assert "[governance].aliases.production.approver: unknown key" in str(unknown.value)


def test_default_config_moves_as_before(
    trained_project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, "anyone")
    root = str(trained_project.root)
    code, out, err = run_cli(capsys, "--project", root, "promote", "2", "--reason", "better")
    assert code == 0, err
    assert "production: v1 -> v2" in out
    assert registry.aliases(trained_project)["production"] == 2
    assert approvals.requests(trained_project, all_states=True) == []
    assert cli_json(capsys, "--project", root, "approvals") == []


def test_two_approvals_then_the_move(
    trained_project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = governed(trained_project, TWO_NEEDED)
    root = str(project.root)
    # nobody moves it directly (deploy and canary promote go through the same check)
    as_user(monkeypatch, "alice")
    with pytest.raises(Exception, match="needs 2 approval"):
        registry.promote(project, 2, "direct")

    as_user(monkeypatch, "dave")
    code, out, err = run_cli(capsys, "--project", root, "promote", "2", "--reason", "recall")
    assert code == 0, err
    assert "needs 2 approval(s)" in out
    rid = out.split()[1].rstrip(":")
    assert rid.startswith("r-") and len(rid) == 8
    assert registry.aliases(project)["production"] == 1  # not moved

    code, out, err = run_cli(capsys, "--project", root, "approvals")
    assert code == 0, err
    assert rid in out and "dave" in out and "0/2" in out
    listed = cli_json(capsys, "--project", root, "approvals")
    assert [r["id"] for r in listed] == [rid]
    assert listed[0]["requester"] == "dave" and listed[0]["version"] == 2
    assert listed[0]["from_version"] == 1 and listed[0]["state"] == "pending"
    assert listed[0]["evidence"]["gate"].startswith("gate ")
    assert "holdout_auc" in listed[0]["evidence"]["metrics"]

    # a second request for the same move is refused
    code, _, err = run_cli(capsys, "--project", root, "promote", "2", "--reason", "again")
    assert code == 1 and rid in error_line(err)

    # a non-approver cannot approve
    as_user(monkeypatch, "mallory")
    code, _, err = run_cli(capsys, "--project", root, "approve", rid, "--reason", "lgtm")
    assert code == 1
    assert error_line(err).endswith(
        "permission denied: mallory may not approve requests for alias production of model "
        f"{project.config.model_name} (approvers: alice, bob, carol)"
    )
    # the first approval does not move it
    as_user(monkeypatch, "alice")
    code, out, err = run_cli(capsys, "--project", root, "approve", rid, "--reason", "lgtm")
    assert code == 0, err
    assert "1/2 approvals" in out
    assert registry.aliases(project)["production"] == 1
    code, _, err = run_cli(capsys, "--project", root, "approve", rid, "--reason", "twice")
    assert code == 1 and "approved" in error_line(err)
    # the second one does
    as_user(monkeypatch, "bob")
    code, out, err = run_cli(capsys, "--project", root, "approve", rid, "--reason", "ok")
    assert code == 0, err
    assert "production: v1 -> v2" in out
    assert registry.aliases(project)["production"] == 2
    assert cli_json(capsys, "--project", root, "approvals") == []
    (done,) = cli_json(capsys, "--project", root, "approvals", "--all")
    assert done["state"] == "executed" and done["approvers"] == ["alice", "bob"]

    rows = audit_rows(project)
    actions = [r["action"] for r in rows if r["action"].startswith("approval.")]
    assert actions == ["approval.request", "approval.approve", "approval.approve"]
    (promoted,) = [r for r in rows if r["action"] == "promote" and r["to_version"] == 2]
    details = json.loads(promoted["details"])
    assert details["request_id"] == rid and details["approvers"] == ["alice", "bob"]
    assert promoted["from_version"] == 1 and promoted["reason"] == "recall"
    # history reads it as a normal move, so rollback goes back to v1, immediately, for on-call
    as_user(monkeypatch, "alice")
    code, _, err = run_cli(capsys, "--project", root, "rollback", "--reason", "pages")
    assert code == 1 and "may not roll back alias production" in error_line(err)
    as_user(monkeypatch, "oncall")
    code, out, err = run_cli(capsys, "--project", root, "rollback", "--reason", "pages")
    assert code == 0, err
    assert registry.aliases(project)["production"] == 1


def test_requester_may_not_self_approve_and_reject_closes(
    trained_project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = governed(trained_project, TWO_NEEDED)
    root = str(project.root)
    as_user(monkeypatch, "alice")
    req = approvals.request(project, "production", 2, "mine")
    code, _, err = run_cli(capsys, "--project", root, "approve", req.id, "--reason", "me")
    assert code == 1
    assert error_line(err).endswith(f"alice requested {req.id} and may not approve it "
                                    "(another approver must)")  # fmt: skip
    as_user(monkeypatch, "carol")
    code, out, err = run_cli(capsys, "--project", root, "reject", req.id, "--reason", "no holdout")
    assert code == 0, err
    assert "rejected by carol" in out
    assert approvals.get(project, req.id).state == "rejected"
    as_user(monkeypatch, "bob")
    code, _, err = run_cli(capsys, "--project", root, "approve", req.id, "--reason", "late")
    assert code == 1 and "is rejected already" in error_line(err)
    assert registry.aliases(project)["production"] == 1
    assert [r["action"] for r in audit_rows(project)][-1] == "approval.reject"


def test_an_expired_request_cannot_be_approved(
    trained_project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = governed(trained_project, TWO_NEEDED)
    root = str(project.root)
    as_user(monkeypatch, "dave")
    req = approvals.request(project, "production", 2, "old news")
    later = req.created + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(approvals, "now", lambda: later)
    assert approvals.requests(project) == []  # not pending any more: the clock says so
    as_user(monkeypatch, "alice")
    for _ in range(2):
        code, _, err = run_cli(capsys, "--project", root, "approve", req.id, "--reason", "ok")
        assert code == 1
        assert f"request {req.id} expired at" in error_line(err)
    expired = [r for r in audit_rows(project) if r["action"] == "approval.expire"]
    assert len(expired) == 1  # written the first time it was noticed only
    assert json.loads(expired[0]["details"])["request_id"] == req.id
    assert registry.aliases(project)["production"] == 1


def test_no_approvals_required_restricts_who_moves(
    trained_project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = governed(trained_project, APPROVERS_MOVE)
    root = str(project.root)
    as_user(monkeypatch, "mallory")
    code, _, err = run_cli(capsys, "--project", root, "promote", "2", "--reason", "mine now")
    assert code == 1
    assert error_line(err).endswith(
        "permission denied: mallory may not move alias production of model "
        f"{project.config.model_name} (approvers: alice, ci)"
    )
    # another alias has no rules: anyone moves it
    code, _, err = run_cli(capsys, "--project", root, "promote", "2", "--alias", "shadow",
                           "--reason", "try")  # fmt: skip
    assert code == 0, err
    as_user(monkeypatch, "ci")
    code, _, err = run_cli(capsys, "--project", root, "promote", "2", "--reason", "nightly")
    assert code == 0, err
    assert registry.aliases(project)["production"] == 2
    # rollback lists nobody: anyone rolls back at once
    as_user(monkeypatch, "mallory")
    code, _, err = run_cli(capsys, "--project", root, "rollback", "--reason", "broken")
    assert code == 0, err
    assert registry.aliases(project)["production"] == 1


def test_current_user_is_the_env_then_the_team_store_then_the_os_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    from workbench.demo import samples

    root = samples.init(tmp_path / "p", "fraud_detection", rows=500)
    local = Project.load(root)
    as_user(monkeypatch, "alice")
    assert approvals.current_user(local) == "alice"
    monkeypatch.delenv("WORKBENCH_USER")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    assert approvals.current_user(local) == getpass.getuser()  # embedded store: the OS user
    team = governed(
        local, '[store]\ntracking_uri = "http://127.0.0.1:9"\nusername_env = "TEAM_U"\n'
    )
    assert approvals.current_user(team) == "bob"
    monkeypatch.setenv("TEAM_U", "carol")
    assert approvals.current_user(team) == "carol"


def test_auto_promote_asks_instead_of_moving(
    trained_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.jobs.control import resolve_runner
    from workbench.jobs.observer import JobObserver
    from workbench.pipeline import flow

    path = trained_project.root / "workbench.toml"
    text = path.read_text().replace("min_improvement = 0.0", "min_improvement = -1.0")
    path.write_text(text.replace("num_iterations = 150", "num_iterations = 10"))
    project = governed(trained_project, TWO_NEEDED)
    as_user(monkeypatch, "ci")
    steps: list[tuple[str, str, str]] = []
    observer = JobObserver(on_step=lambda *s: steps.append(s))
    result = flow.run(project, resolve_runner(project), observer, auto_promote=True)
    assert result.gate["passed"] and result.request_id is not None
    assert registry.aliases(project)["production"] == 1  # not moved: asked
    (req,) = approvals.requests(project)
    assert (req.id, req.version, req.requester) == (result.request_id, result.version, "ci")
    assert req.reason.startswith("auto-promote: ")
    (alias_step,) = [s for s in steps if s[0] == "alias"]
    assert f"production needs approval: request {req.id}" in alias_step[2]
