"""Fixtures for the TUI tests (the data they write is described in helpers.py).

`fixed_project` is deterministic, for SVG snapshots; apps over it run with
`sync_on_start=False`, so nothing changes underneath. `big_project` holds 10,000 runs.
The real, trained project is `trained_project` (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.helpers import CONFIG, make_project, write_audit, write_registry, write_runs
from workbench.project import Project


@pytest.fixture
def fixed_project(tmp_path: Path) -> Project:
    """12 runs with curves, v1 (run 3) production, v2 (run 7) staging, 3 audit events."""
    project = make_project(tmp_path / "fixed")
    write_runs(project, 12, curves=12)
    write_audit(project)
    write_registry(project, {1: 3, 2: 7}, {"production": 1, "staging": 2})
    return project


@pytest.fixture
def empty_project(tmp_path: Path) -> Project:
    """A project with a config and nothing else: no runs, no registry, no audit."""
    root = tmp_path / "empty"
    root.mkdir()
    (root / "workbench.toml").write_text(CONFIG)
    return Project.load(root)


@pytest.fixture
def big_project(tmp_path: Path) -> Project:
    """10,000 runs (no curves)."""
    project = make_project(tmp_path / "big")
    write_runs(project, 10_000)
    return project
