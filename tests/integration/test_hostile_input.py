"""Hostile names and environments: paths that try to leave the project, a TUI started with
no terminal, SQL that would fetch an extension. Each gets one line and touches nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli.main import main
from workbench.errors import UsageError
from workbench.jobs.control import run_job, runner_for
from workbench.project import Project
from workbench.store.db import Db
from workbench.store.sql_console import SqlError, run_query

pytestmark = pytest.mark.integration


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("job_id", ["../../../x", "../x", "/tmp/x", ".x", "a/b", "a\nb"])
def test_serve_job_id_cannot_leave_the_project(
    sample_project: Project, job_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = sample_project.root.parent
    before = _files(outside)
    code = main(["serve", "--project", str(sample_project.root), "--job-id", job_id])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error: --job-id: "), err
    assert _files(outside) == before  # nothing written anywhere, in or out of the project


def test_run_job_refuses_an_id_that_leaves_the_jobs_folder(sample_project: Project) -> None:
    before = _files(sample_project.root.parent)
    with pytest.raises(UsageError, match="job id"):
        run_job(
            sample_project, "serve", "workbench.serving", [], runner_for("local"),
            job_id="../../escaped",
        )  # fmt: skip
    after = _files(sample_project.root.parent)
    assert not [p for p in after - before if "escaped" in p.name]


def test_serve_refuses_an_alias_mlflow_reserves(
    sample_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--project", str(sample_project.root), "--alias", "latest"])
    assert code == 2
    assert "reserved" in capsys.readouterr().err


def test_run_name_with_a_line_break_is_refused(
    sample_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--project", str(sample_project.root), "--run-name", "a\nb"])
    assert code == 2
    assert capsys.readouterr().err.startswith("workbench: error: --run-name: ")


def test_unsafe_sample_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["init", str(tmp_path / "p"), "--sample", "../../etc"])
    assert code == 2
    assert "--sample" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("command", [[], ["demo"]])
def test_tui_without_a_terminal_says_so_and_exits(tmp_path: Path, command: list[str]) -> None:
    """`ssh host workbench` without -t, a CI step, a pipe: one line, exit 2, no escape codes."""
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", *command],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""  # not a single escape code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a terminal" in lines[0], proc.stderr
    assert "headless" in lines[0]
    assert not list(tmp_path.iterdir())  # the demo prepared nothing before refusing


def test_duckdb_never_installs_or_loads_an_extension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # where DuckDB would put a fetched extension
    db = Db(tmp_path / "logs")
    try:
        row = db.rows(
            "SELECT current_setting('autoinstall_known_extensions') AS install, "
            "current_setting('autoload_known_extensions') AS load"
        )[0]
        assert row == {"install": False, "load": False}
        # httpfs would be installed and loaded for this URL if autoinstall were on
        with pytest.raises(SqlError) as info:
            run_query(db, "SELECT * FROM read_parquet('https://127.0.0.1:9/x.parquet')")
        assert "\n" not in str(info.value)
        for sql in ("INSTALL httpfs", "LOAD httpfs", "SET autoinstall_known_extensions = true"):
            with pytest.raises(SqlError):
                run_query(db, sql)
        assert not (tmp_path / ".duckdb").exists()
    finally:
        db.close()


@pytest.mark.parametrize("param", ["num_iterations=-3", "learning_rate=abc", "num_leaves=1"])
def test_bad_param_override_is_refused_before_any_job(
    sample_project: Project, param: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--project", str(sample_project.root), "--param", param])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error: --param: "), err
    assert param.split("=")[0] in lines[0]
    jobs = sample_project.jobs_dir
    assert not jobs.exists() or not list(jobs.iterdir())  # no job was started
