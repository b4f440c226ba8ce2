"""The `workbench` command on real projects: exit codes, one-line errors and JSON output."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import tomli_w

from tests.helpers import run_cli
from workbench.demo import acts as demo
from workbench.project import Project
from workbench.registry import versions as registry

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _outside_any_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every command from a folder with no workbench.toml above it."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("WORKBENCH_USER", "tester")


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("workbench: error: ")
    return lines[0]


def as_json(out: str) -> Any:
    return json.loads(out)


# ---------------------------------------------------------------- init


def test_init_creates_a_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new"
    code, out, err = run_cli(
        capsys, "init", str(target), "--sample", "fraud_detection", "--rows", "2000"
    )
    assert code == 0, err
    assert "created project 'fraud_detection'" in out
    for name in ("workbench.toml", "generate.py", "data/transactions.parquet"):
        assert (target / name).is_file(), name
    assert (target / ".gitignore").read_text() == ".workbench/\n"
    frame = pl.read_parquet(target / "data" / "transactions.parquet")
    assert frame.height == 2000
    assert {"is_fraud", "amount", "merchant_category", "ts"} <= set(frame.columns)
    project = Project.load(target)
    assert project.name == "fraud_detection"
    assert not project.store.exists()  # nothing is created before it is needed
    # the fresh project validates
    assert run_cli(capsys, "validate", "--project", str(target))[0] == 0


def test_init_again_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new"
    assert run_cli(capsys, "init", str(target), "--rows", "500")[0] == 0
    (target / "workbench.toml").write_text(
        (target / "workbench.toml").read_text() + "\n# my edit\n"
    )
    code, _, err = run_cli(capsys, "init", str(target), "--rows", "500")
    assert code == 2
    assert "already exists (use --force" in one_error(err)
    assert "# my edit" in (target / "workbench.toml").read_text()  # untouched
    assert run_cli(capsys, "init", str(target), "--rows", "500", "--force")[0] == 0
    assert "# my edit" not in (target / "workbench.toml").read_text()


def test_init_unknown_sample_lists_the_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "init", str(tmp_path / "x"), "--sample", "nope")
    assert code == 2
    line = one_error(err)
    assert "--sample nope: no such sample" in line
    assert "available: delivery_time, fraud_detection, ticket_routing" in line
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- registry commands


def test_models_json(trained_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "--project", str(trained_project.root), "--json")
    assert code == 0
    data = as_json(out)
    assert data["model"] == "fraud_detection"
    versions = data["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["aliases"] for v in versions] == [["staging"], ["production"]]
    for v in versions:
        assert len(v["run_id"]) == 32
        assert v["status"] == "READY"
        assert v["metrics"]["holdout_auc"] > 0.8
        assert v["source"].endswith("/model")


def test_models_table(trained_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "--project", str(trained_project.root))
    assert code == 0
    assert "model fraud_detection" in out
    assert "production" in out and "staging" in out


def test_promote_rollback_history_audit(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(trained_project.root)
    code, out, err = run_cli(capsys, "promote", "2", "--project", root, "--reason", "x")
    assert code == 0, err
    assert out.strip() == "fraud_detection@production: v1 -> v2"
    assert registry.aliases(trained_project)["production"] == 2

    code, out, err = run_cli(capsys, "rollback", "--project", root, "--reason", "y")
    assert code == 0, err
    assert out.strip() == "fraud_detection@production rolled back: v2 -> v1"
    assert registry.aliases(trained_project)["production"] == 1

    code, out, _ = run_cli(capsys, "history", "--project", root, "--json")
    assert code == 0
    moves = as_json(out)
    assert [(m["alias"], m["action"], m["from_version"], m["to_version"]) for m in moves] == [
        ("staging", "set", None, 1),
        ("production", "promote", None, 1),
        ("staging", "set", 1, 2),
        ("production", "promote", 1, 2),
        ("production", "rollback", 2, 1),
    ]
    assert [m["reason"] for m in moves[-2:]] == ["x", "y"]
    assert all(m["actor"].startswith("tester@") for m in moves[-2:])

    code, out, _ = run_cli(capsys, "history", "--project", root, "--alias", "production", "--json")
    assert [m["action"] for m in as_json(out)] == ["promote", "promote", "rollback"]

    code, out, _ = run_cli(capsys, "audit", "--project", root, "--json")
    assert code == 0
    audit = as_json(out)
    assert len(audit) == 7  # the 5 moves, and the pipeline's registrations of v1 and v2
    assert sorted(r["seq"] for r in audit) == list(range(1, 8))  # one hash chain
    newest = audit[0]  # newest first
    assert (newest["action"], newest["from_version"], newest["to_version"]) == ("rollback", 2, 1)
    assert newest["reason"] == "y" and newest["model"] == "fraud_detection"
    assert json.loads(newest["details"]) == {}
    assert [a["ts"] for a in audit] == sorted((a["ts"] for a in audit), reverse=True)
    code, out, _ = run_cli(capsys, "audit", "--project", root, "--limit", "2", "--json")
    assert len(as_json(out)) == 2

    # the tables render too
    assert "rollback" in run_cli(capsys, "history", "--project", root)[1]
    assert "rollback" in run_cli(capsys, "audit", "--project", root)[1]


def test_promote_without_reason_exits_2(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "promote", "2", "--project", str(trained_project.root))
    assert code == 2
    assert "--reason" in one_error(err)
    code, _, err = run_cli(
        capsys, "promote", "2", "--project", str(trained_project.root), "--reason", " "
    )
    assert code == 2
    assert "reason is required" in one_error(err)
    assert registry.aliases(trained_project)["production"] == 1


def test_promote_unknown_version_exits_1(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "promote", "9", "--project", str(trained_project.root), "--reason", "x"
    )
    assert code == 1
    assert "has no version 9 (versions: 2, 1)" in one_error(err)


def test_rollback_with_nothing_to_roll_back_exits_1(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "rollback", "--project", str(trained_project.root), "--reason", "y"
    )
    assert code == 1
    assert out == ""
    assert "nothing to roll back to" in one_error(err)
    assert registry.aliases(trained_project)["production"] == 1


@pytest.mark.parametrize("where", ["nowhere", "empty-dir"])
def test_project_pointing_nowhere_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    target = tmp_path / where
    if where == "empty-dir":
        target.mkdir()
    code, _, err = run_cli(capsys, "models", "--project", str(target), "--json")
    assert code == 2
    line = one_error(err)
    assert str(target) in line
    assert ("no such folder" if where == "nowhere" else "no workbench.toml") in line


def test_no_project_anywhere_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "models")
    assert code == 2
    assert "no workbench.toml found" in one_error(err)


@pytest.mark.parametrize(
    "argv",
    [["bogus"], ["promote"], ["pipeline"], ["runs", "--limit", "x"], ["models", "--nope"]],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    one_error(err)


def test_project_option_before_the_command(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "--project", str(trained_project.root), "models", "--json")
    assert code == 0, err
    assert [v["version"] for v in as_json(out)["versions"]] == [2, 1]


def test_promote_default_alias_follows_config(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = trained_project.root / "workbench.toml"
    raw = tomllib.loads(path.read_text())
    raw["registry"]["production_alias"] = "live"
    path.write_text(tomli_w.dumps(raw))
    project = Project.load(trained_project.root)
    code, _, err = run_cli(capsys, "promote", "2", "--project", str(project.root), "--reason", "x")
    assert code == 0, err
    assert registry.aliases(project).get("live") == 2


def test_sync_command(trained_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "sync", "--project", str(trained_project.root))
    assert code == 0
    assert out.strip() == "runs index: 2 run(s), 2 new or changed"
    code, out, _ = run_cli(capsys, "sync", "--project", str(trained_project.root))
    assert out.strip() == "runs index: 2 run(s), 0 new or changed"


# ---------------------------------------------------------------- demo


def test_demo_prepare_then_headless_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "demo"
    said: list[str] = []
    assert demo.prepare(root, echo=said.append, rows=3000) == root
    assert any("challenger" in line for line in said)
    project = Project.load(root)
    assert registry.aliases(project) == {"production": 1, "staging": 2}
    versions = {v.version: v for v in registry.list_versions(project)}
    assert set(versions) == {1, 2}

    # the challenger really is a different model: its own params, logged on its run
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=project.tracking_uri)
    v1 = client.get_run(versions[1].run_id or "").data.params
    v2 = client.get_run(versions[2].run_id or "").data.params
    assert v1["learning_rate"] == "0.05"
    assert v2["learning_rate"] == "0.1"
    assert v1["rows_train"] == v2["rows_train"]

    # preparing again trains nothing; the headless demo prints the summary as JSON
    said.clear()
    demo.prepare(root, echo=said.append, rows=3000)
    assert said == []
    code, out, err = run_cli(capsys, "demo", str(root), "--headless", "--json", "--first-act-only")
    assert code == 0, err
    summary = as_json(out)
    assert summary["model"] == "fraud_detection"
    assert summary["aliases"] == {"production": 1, "staging": 2}
    assert [v["version"] for v in summary["versions"]] == [2, 1]
    assert len(registry.list_versions(project)) == 2
