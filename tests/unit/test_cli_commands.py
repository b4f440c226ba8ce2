"""Every command the CLI declares: its --help, a bad option, and what start-up imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.helpers import run_cli
from workbench import __version__
from workbench.cli.main import cli, main
from workbench.project import Project


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command in the registry with its path, groups too: ("pipeline",), ("pipeline",
    "run")."""
    found: list[tuple[tuple[str, ...], click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        found.append(((*path, name), cmd))
        if isinstance(cmd, click.Group):
            found += _commands(cmd, (*path, name))
    return found


COMMANDS = [path for path, _ in _commands(cli)]
LEAVES = [path for path, cmd in _commands(cli) if not isinstance(cmd, click.Group)]


def test_the_registry_holds_every_command() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {
        "init", "demo", "validate", "train", "pipeline run", "runs", "compare", "sync",
        "models", "promote", "rollback", "history", "audit", "jobs", "logs", "stop",
        "image bootstrap", "image build", "serve", "deploy", "canary status", "canary traffic",
        "canary promote", "canary rollback", "labels ingest", "drift", "monitor", "sql",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, *path, "--help")
    assert code == 0, err
    assert out.startswith(f"Usage: workbench {' '.join(path)} ")
    if path in LEAVES:
        assert "--project DIR" in out
    assert err == ""


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_a_bad_option_is_one_line_and_exit_2(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, *path, "--no-such-option")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("workbench: error: ") and "--no-such-option" in lines[0]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["serve", "--port", "x"], "--port"),
        (["runs", "--limit", "x"], "--limit"),
        (["train", "--runner", "cloud"], "--runner"),
        (["promote", "2"], "--reason"),
        (["bogus"], "bogus"),
        (["canary"], "status"),
    ],
)
def test_argument_errors_name_the_option(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error: "), err
    assert names in lines[0]


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert "With no command, opens the TUI." in out
    assert "pipeline" in out and "canary" in out
    assert run_cli(capsys, "-h")[0] == 0
    code, out, _ = run_cli(capsys, "--version")
    assert (code, out) == (0, f"workbench {__version__}\n")


def test_help_imports_neither_mlflow_nor_lightgbm() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from workbench.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "    assert main(['sql', '--help']) == 0\n"
        "print(sorted(m for m in ('mlflow', 'lightgbm', 'polars', 'rich') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_text_starting_with_a_dash_is_an_argument_as_before(
    sample_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse read `sql "-- note ..."` (a dash, then a space) as the query; so does click."""
    root = str(sample_project.root)
    for argv in (
        ["sql", "--project", root, "-- why\nSELECT 41 + 1 AS x", "--format", "csv"],
        ["sql", "-- why\nSELECT 41 + 1 AS x", "--format", "csv", "--project", root],
        ["sql", "--project", root, "--format", "csv", "--", "-- why\nSELECT 41 + 1 AS x"],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert out.splitlines() == ["x", "42"]
    code, _, err = run_cli(capsys, "canary", "traffic", "-5", "--project", root)
    assert code == 2 and "no such option" not in err  # a negative number, not an option


def test_ctrl_c_is_130_and_a_closed_pipe_0(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli.common import Commands, Group, run

    commands = Commands()

    @commands.command("interrupted", "raises KeyboardInterrupt")
    def interrupted() -> int:
        raise KeyboardInterrupt

    @commands.command("piped", "raises BrokenPipeError")
    def piped() -> int:
        raise BrokenPipeError

    group = Group("workbench")
    for command in commands.items:
        group.add_command(command)
    assert run(group, ["interrupted"]) == 130
    assert capsys.readouterr().err == "workbench: error: interrupted\n"
    assert run(group, ["piped"]) == 0
    assert capsys.readouterr().err == ""


def test_an_unexpected_error_is_one_line_with_the_traceback_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in a command is still one line (exit 1), never a traceback on the terminal; the
    traceback goes to a file the line names."""
    from workbench.jobs import control

    root = tmp_path / "p"
    root.mkdir()
    (root / "workbench.toml").write_text(
        '[project]\nname = "p"\n[data]\npath = "d.csv"\ntarget = "y"\nsplit = "random"\n'
    )

    def boom(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(control, "list_jobs", boom)
    monkeypatch.delenv("WORKBENCH_DEBUG", raising=False)
    capsys.readouterr()
    assert main(["jobs", "--project", str(root)]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "workbench: error: unexpected RuntimeError: boom"
    )
    kept = Path(lines[0].split("the traceback is in ")[1].split(",")[0])
    assert "Traceback" in kept.read_text() and "boom" in kept.read_text()
    kept.unlink()
