"""MLflow setup for a project: tracking URI, experiment, client. Imports mlflow lazily."""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from typing import TYPE_CHECKING

from workbench.project import Project

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _quiet() -> None:
    # MLflow's own hints (dataset source resolution, integer columns in signatures) are noise
    # in a job log; errors still surface.
    for category in (UserWarning, FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"mlflow(\..*)?$")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.ERROR)


def setup(project: Project) -> str:
    """Point mlflow at the project's store; create the experiment. Returns its id."""
    _quiet()
    project.ensure_store()
    import mlflow

    mlflow.set_tracking_uri(project.tracking_uri)
    mlflow.set_registry_uri(project.tracking_uri)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(project.experiment_name)
    if exp is None:
        exp_id = client.create_experiment(
            project.experiment_name, artifact_location=project.artifacts.as_uri()
        )
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def client(project: Project) -> MlflowClient:
    setup(project)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


def git_commit(root: os.PathLike[str] | str) -> str | None:
    """HEAD of the project's repo, or WORKBENCH_GIT_COMMIT (set by runners whose job runs
    where there is no git, such as a container)."""
    if os.environ.get("WORKBENCH_GIT_COMMIT"):
        return os.environ["WORKBENCH_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
