"""Small helpers shared by tests: the CLI run in process, and a project's stores read
directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from workbench import plugins
from workbench.project import Project
from workbench.store.db import Db


def mlflow_client(project: Project) -> Any:
    """The plain MLflow client on the project's store (what a user's own script would use)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


def audit_rows(project: Project) -> list[dict[str, Any]]:
    """Every audit row, oldest first."""
    db = Db(project.logs)
    try:
        return db.rows("SELECT * FROM audit ORDER BY ts")
    finally:
        db.close()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`workbench ARGV` in this process: its exit code, stdout and stderr (never a traceback)."""
    from workbench.cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    """`workbench ARGV --json`, which must exit with `code`: what it printed, parsed."""
    got, out, err = run_cli(capsys, *argv, "--json")
    assert got == code, err
    return json.loads(out)


@contextmanager
def plugins_forgotten() -> Iterator[None]:
    """The plugin caches cleared on entry and on exit: for a test that puts plugins of its own
    on the path."""
    plugins._registry.cache_clear()
    plugins._FOUND.clear()
    yield
    plugins._registry.cache_clear()
    plugins._FOUND.clear()
