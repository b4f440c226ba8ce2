"""Read-only mode in the CLI: every command of the real click tree is classed, every mutating
one is refused with one line and changes nothing, reading ones still run, --help works."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tests.helpers import audit_rows, run_cli
from workbench import readonly
from workbench.cli.main import cli
from workbench.cli.mutating import MUTATING_COMMANDS, READING_COMMANDS, WHY
from workbench.project import Project

#: Classed ahead of their commands (issue 13's other tasks add them).
PENDING = {"approve", "reject", "approvals", "audit verify", "audit head", "lineage", "card"}


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """Every command path of the tree: leaves, and groups that run on their own."""
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command:
                yield " ".join(path)
            yield from command_paths(cmd, path)
        else:
            yield " ".join(path)


def test_every_command_is_classed_once() -> None:
    paths = set(command_paths(cli))
    assert "canary traffic" in paths and "roles grant" in paths and "roles" in paths
    unclassed = paths - MUTATING_COMMANDS - READING_COMMANDS
    assert not unclassed, f"class these in workbench/cli/mutating.py: {sorted(unclassed)}"
    assert not MUTATING_COMMANDS & READING_COMMANDS
    stale = (MUTATING_COMMANDS | READING_COMMANDS) - paths - PENDING
    assert not stale, f"classed but not commands: {sorted(stale)}"
    assert all(WHY[p] for p in paths)


def _plausible_args(project: Project, tmp: Path) -> dict[str, list[str]]:
    data = str(project.data_path)
    return {
        "init": [str(tmp / "new"), "--sample", "fraud_detection"],
        "demo": [str(tmp / "demo")],
        "train": [],
        "sweep": ["--trials", "2"],
        "pipeline run": [],
        "register": ["runs:/0123456789abcdef/model"],
        "promote": ["2", "--reason", "looks good"],
        "rollback": ["--reason", "bad"],
        "roles grant": ["bob", "--alias", "production", "--role", "approver", "--reason", "r"],
        "roles revoke": ["bob", "--alias", "production", "--role", "approver", "--reason", "r"],
        "approve": ["req1", "--reason", "ok"],
        "reject": ["req1", "--reason", "no"],
        "stop": ["job-1"],
        "image bootstrap": [],
        "image build": [],
        "serve": [],
        "deploy": ["2", "--canary", "--traffic", "10"],
        "canary traffic": ["20"],
        "canary promote": ["--reason", "fine"],
        "canary rollback": ["--reason", "bad"],
        "labels ingest": [data],
        "monitor": [],
        "store migrate": ["--to", "http://127.0.0.1:9/"],
    }


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_mutating_commands_are_refused_and_change_nothing(
    trained_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.registry import versions as registry

    project = trained_project
    args = _plausible_args(project, tmp_path)
    present = set(command_paths(cli)) & MUTATING_COMMANDS
    assert present - set(args) == set(), "give the new mutating command plausible arguments"
    aliases, audit, files = (
        registry.aliases(project),
        audit_rows(project),
        _tree_digest(project.root),
    )
    for path in sorted(present):
        code, out, err = run_cli(
            capsys, "--read-only", *path.split(), "--project", str(project.root), *args[path]
        )
        assert code == 1, (path, err)
        assert out == ""
        assert err == (
            f"workbench: error: read-only: `workbench {path}` changes the project "
            "(opened with --read-only)\n"
        )
    assert not (tmp_path / "new").exists() and not (tmp_path / "demo").exists()
    assert _tree_digest(project.root) == files
    assert registry.aliases(project) == aliases
    assert audit_rows(project) == audit
    # the switch was this run's only: the next command is not read-only
    assert not readonly.enabled()
    code, _, err = run_cli(capsys, "--project", str(project.root), "promote", "2", "--reason", "r")
    assert code == 0, err
    assert len(audit_rows(project)) == len(audit) + 1


def test_reading_commands_run_and_drift_is_not_recorded(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.helpers import cli_json
    from workbench.store.db import Db

    root = str(trained_project.root)

    def drift_checks() -> int:
        db = Db(trained_project.logs)
        try:
            return int(db.rows("SELECT count(DISTINCT check_id) AS n FROM drift")[0]["n"])
        finally:
            db.close()

    before = drift_checks()
    for argv in (["models"], ["history"], ["audit"], ["sql", "SELECT 1 AS one"]):
        code, _, err = run_cli(capsys, "--read-only", "--project", root, *argv)
        assert code == 0, (argv, err)
    data = str(trained_project.data_path)
    result = cli_json(capsys, "--read-only", "--project", root, "drift", "--data", data)
    assert result["version"] == 1
    assert drift_checks() == before  # computed, not recorded
    cli_json(capsys, "--project", root, "drift", "--data", data)
    assert drift_checks() == before + 1


def test_env_var_and_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run_cli(capsys, "--read-only", "promote", "--help")
    assert code == 0 and "--reason" in out
    code, out, _ = run_cli(capsys, "--read-only", "--help")
    assert code == 0 and "--read-only" in out
    code, _, err = run_cli(capsys, "--read-only", "canary")  # a group alone: its usage error
    assert code == 2 and "missing command" in err
    monkeypatch.setenv(readonly.ENV, "1")
    code, out, err = run_cli(capsys, "canary", "traffic", "5")
    assert (code, out) == (1, "")
    assert err == (
        "workbench: error: read-only: `workbench canary traffic` changes the project "
        f"({readonly.ENV} is set)\n"
    )
    code, _, err = run_cli(capsys, "init", str(tmp_path / "p"), "--sample", "fraud_detection")
    assert code == 1 and "read-only:" in err and not (tmp_path / "p").exists()
