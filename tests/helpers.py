"""Small helpers shared by tests: the CLI run in process, and a project's stores read
directly."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable, Iterator
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_connection_per_worker(
    connect: Callable[[], http.client.HTTPConnection], workers: int, tries: int = 300
) -> dict[int, http.client.HTTPConnection]:
    """Keep-alive connections, one answered by each worker of `serve --workers` (by the
    x-worker-pid header; a new connection lands on whichever worker accepts first)."""
    found: dict[int, http.client.HTTPConnection] = {}
    for _ in range(tries):
        conn = connect()
        conn.request("GET", "/health")
        resp = conn.getresponse()
        resp.read()
        pid = int(resp.getheader("x-worker-pid") or 0)
        if pid and pid not in found:
            found[pid] = conn
            if len(found) == workers:
                return found
        else:
            conn.close()
    raise AssertionError(f"only workers {sorted(found)} answered {tries} new connections")
