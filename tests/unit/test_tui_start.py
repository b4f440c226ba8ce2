"""`workbench` with no command: the TUI's start path skips click and the command modules,
and says what is wrong in one line, as any command does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import readonly
from workbench.cli import tui
from workbench.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_the_console_script_module_imports_no_click_nor_config() -> None:
    code = (
        "import sys, workbench.cli.main; "
        "print([m for m in ('click', 'pydantic', 'rich.console', 'workbench.cli.common') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_click_group_is_still_there() -> None:
    from workbench.cli.main import MODULES, cli

    assert "runs" in cli.commands and len(MODULES) > 10


@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["--help"],
        ["--version"],
        ["--project"],
        ["--project", "--read-only"],
        ["--project="],
        ["--read-only", "models", "--json"],
        ["--bogus"],
    ],
)
def test_anything_but_the_tui_goes_to_click(args: list[str]) -> None:
    assert tui.start(args) is None


@pytest.mark.parametrize("args", [[], ["--read-only"], ["--project", "."], ["--project=."]])
def test_without_a_terminal_one_line_and_exit_2(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench: error: the TUI needs a terminal")
    assert not readonly.enabled()  # --read-only is this run's only


def test_a_missing_project_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tui, "_need_terminal", lambda what, instead: None)
    assert main(["--project", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"workbench: error: --project {tmp_path / 'nowhere'}: no such folder"]


def test_the_entry_point_is_cached_until_sys_path_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = tui.ui_entry()
    (cache,) = (tmp_path / "workbench").glob("ui-entry-*.json")
    body = json.loads(cache.read_text())
    assert body["value"] == "workbench_tui.app:run_tui"
    assert tui.ui_entry() is first  # from the cache
    # A cache that names something else, under a stale stamp, is not believed.
    cache.write_text(json.dumps({"stamp": [0], "value": "os:getcwd"}))
    assert tui.ui_entry() is first
    assert json.loads(cache.read_text())["stamp"] == body["stamp"]
    cache.write_text("{not json")
    assert tui.ui_entry() is first
