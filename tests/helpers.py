"""Small helpers shared by tests that read a project's stores directly."""

from __future__ import annotations

from typing import Any

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
