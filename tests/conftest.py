"""Shared fixtures. Everything here is real: generated data, a real MLflow SQLite store,
real LightGBM training through the local runner, real Parquet logs and DuckDB."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.demo import acts as demo
from workbench.demo import samples
from workbench.project import Project

#: The team services' fixtures (PostgreSQL, S3, the MLflow server, Ray): tests/services.py.
pytest_plugins = ["tests.services"]

os.environ.setdefault("WORKBENCH_USER", "tester")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

#: Small enough to train in a couple of seconds, large enough for a meaningful AUC.
ROWS = 8_000


@pytest.fixture
def sample_project(tmp_path: Path) -> Project:
    """A fresh fraud_detection project with generated data and nothing trained."""
    return Project.load(samples.init(tmp_path / "proj", "fraud_detection", rows=ROWS))


@pytest.fixture(scope="session")
def _trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained once per session: v1 (production) and v2 (staging), via the real pipeline."""
    root = tmp_path_factory.mktemp("trained") / "proj"
    demo.prepare(root, echo=lambda _msg: None, rows=ROWS)
    return root


@pytest.fixture
def trained_project(_trained_template: Path, tmp_path: Path) -> Iterator[Project]:
    """A private copy of the trained project (safe to promote, roll back, retrain).

    Model artifacts stay in the template (absolute file URIs), which lives for the session."""
    root = tmp_path / "trained"
    shutil.copytree(_trained_template, root)
    yield Project.load(root)
