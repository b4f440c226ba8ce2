"""`workbench sql` end to end through main(): real logs (ParquetLog), real DuckDB; the output
as a table, CSV and JSON, the query from stdin, one-line errors with exit code 1."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.unit.test_sql_console import CONFIG, RUNS, T0, write_logs
from workbench.cli.main import main
from workbench.project import Project
from workbench.store.sql_console import load_history


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "workbench.toml").write_text(CONFIG)
    project = Project.load(root)
    project.ensure_store()
    write_logs(project.logs)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no workbench.toml here: --project says which
    return project


def run(capsys: pytest.CaptureFixture[str], project: Project, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["sql", "--project", str(project.root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_table(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, project, "SELECT run_name, metrics['auc'] AS auc FROM runs ORDER BY run_name"
    )
    assert code == 0
    for i in range(RUNS):
        assert f"run-{i}" in out
    assert "run_name" in out and "auc" in out and "double" in out  # names and types
    assert err.strip().startswith(f"{RUNS} rows in ")


def test_csv(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        project,
        "SELECT run_name, start_time FROM runs ORDER BY run_name",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["run_name"] for r in rows] == [f"run-{i}" for i in range(RUNS)]
    assert datetime.fromisoformat(rows[0]["start_time"]) == T0
    assert "rows in" in err and "rows in" not in out  # stdout holds only the CSV


def test_json(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        project,
        "SELECT variant, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out) == [{"variant": "canary", "n": 1}, {"variant": "production", "n": 3}]
    code, out2, _ = run(
        capsys, project, "SELECT variant, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1",
        "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out2) == json.loads(out)


def test_query_from_stdin(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("-- from a file\nSELECT count(*) AS n\nFROM runs\n")
    )
    code, out, _ = run(capsys, project, "-", "--format", "json")
    assert code == 0
    assert json.loads(out) == [{"n": RUNS}]


def test_limit(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, project, "FROM metrics", "--format", "csv", "--limit", "7")
    assert code == 0
    assert len(out.strip().splitlines()) == 1 + 7
    assert "first 7 of 150 rows" in err and "--limit 0" in err
    code, out, _ = run(capsys, project, "FROM metrics", "--format", "csv", "--limit", "0")
    assert len(out.strip().splitlines()) == 1 + 150


@pytest.mark.parametrize(
    ("sql", "start"),
    [
        ("SELECT * FROM nope", "workbench: error: Catalog Error: Table with name nope does not"),
        ("SELEC 1", "workbench: error: Parser Error: syntax error"),
        ("DROP VIEW runs", "workbench: error: only read-only queries are allowed (SELECT"),
        ("COPY runs TO 'x.csv'", "workbench: error: only read-only queries are allowed (SELECT"),
    ],
)
def test_errors_exit_1_with_one_line(
    project: Project, capsys: pytest.CaptureFixture[str], sql: str, start: str
) -> None:
    code, out, err = run(capsys, project, sql)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(start)
    if "nope" in sql:
        assert "(views: runs, metrics" in lines[0]
    assert not Path("x.csv").exists()


def test_an_empty_query_is_a_usage_error(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    code, _, err = run(capsys, project, "-")
    assert code == 2
    assert err.startswith("workbench: error: the query is empty")


def test_queries_go_to_the_history(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, project, "SELECT 1")
    run(capsys, project, "SELECT * FROM nope")  # failed queries too: fix them from there
    run(capsys, project, "SELECT 1")
    assert load_history(project) == ["SELECT * FROM nope", "SELECT 1"]
