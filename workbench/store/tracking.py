"""MLflow setup for a project: tracking URI, experiment, client. Imports mlflow lazily.

The SQLite store is created and migrated once, under an inter-process lock, before any
MlflowClient touches it: MLflow's own first-use migration is not safe when two processes
(two `pipeline run`s) start on a project whose store does not exist yet. A marker written
after a successful creation lets every later call skip the work with one stat and one read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.project import Project
from workbench.store import backends

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: Beside mlflow.db: written once the store is complete (MLflow version, schema head, inode).
STORE_MARKER = "mlflow.db.ready"
#: Also beside mlflow.db, in the store folder itself: a container job's user may write there
#: (the docker runner grants it the folder), not necessarily in any folder below it.
STORE_LOCK = "store.lock"
#: Tables that hold what a user made; a half-created store without any is safe to replace.
_USER_TABLES = ("runs", "registered_models", "model_versions", "logged_models", "trace_info")


def _quiet() -> None:
    # MLflow's own hints (dataset source resolution, integer columns in signatures) are noise
    # in a job log; errors still surface.
    for category in (UserWarning, FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"mlflow(\..*)?$")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created if need be), held for the block, across processes
    (and containers sharing the folder). The kernel drops it when the holder dies, so a crash
    never leaves it taken. Opened read-only: a lock file another user created still locks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _mlflow_version() -> str:
    from mlflow.version import VERSION

    return str(VERSION)


def _marker_ok(project: Project) -> bool:
    """Whether the marker says this very db file is complete for this MLflow version."""
    try:
        marker = json.loads((project.store / STORE_MARKER).read_text(encoding="utf-8"))
        inode = project.mlflow_db.stat().st_ino
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("mlflow") == _mlflow_version()
        and marker.get("inode") == inode
    )


def _write_marker(project: Project, revision: str) -> None:
    """Best effort: without the marker the next call only checks the store again, under the
    lock (a job's user that may not write it pays that check again, nothing else)."""
    marker = project.store / STORE_MARKER
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    body = {
        "mlflow": _mlflow_version(),
        "revision": revision,
        "inode": project.mlflow_db.stat().st_ino,
    }
    try:
        tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
        os.replace(tmp, marker)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _inspect(db: Path) -> dict[str, Any]:
    """Tables, schema revision and whether anything a user made is in the store."""
    from workbench.store import mlflow_tables

    try:
        shape = mlflow_tables.read_shape(db, _USER_TABLES)
    except sqlite3.DatabaseError as exc:
        raise WorkbenchError(f"{db}: not a readable MLflow store: {exc}") from None
    return {"tables": shape.tables, "revision": shape.revision, "user_data": shape.user_data}


def _create(project: Project) -> None:
    """What MLflow does on first use, done here once: the tracking and registry stores' init
    (create the tables, run every migration, add the Default experiment)."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    TrackingStore._engine_map.pop(project.tracking_uri, None)  # no pooled handle to a moved file
    TrackingStore(project.tracking_uri, project.artifacts.as_uri())  # type: ignore[no-untyped-call]
    RegistryStore(project.tracking_uri)  # type: ignore[no-untyped-call]


def _move_aside(project: Project, why: str) -> None:
    db = project.mlflow_db
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = db.with_name(f"{db.name}.broken-{stamp}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = db.with_name(db.name + suffix)
        if part.exists():
            os.replace(part, aside.with_name(aside.name + suffix))
    print(
        f"workbench: the MLflow store {db} was incomplete ({why}) and held no runs or models; "
        f"moved it to {aside.name} and created a new one",
        file=sys.stderr,
    )


def ensure_mlflow_store(project: Project) -> None:
    """Create and migrate the project's MLflow store exactly once, under
    `.workbench/store.lock`. A half-created store (a crash during creation) that holds
    nothing a user made is moved aside and recreated; one that holds runs or models is reported
    in one line (WorkbenchError), never migrated behind the user's back."""
    if _marker_ok(project):
        return
    project.ensure_store()
    with file_lock(project.store / STORE_LOCK):
        if _marker_ok(project):  # another process finished it while we waited
            return
        from mlflow.store.db.base_sql_model import Base
        from mlflow.store.db.utils import _get_latest_schema_revision

        head = _get_latest_schema_revision()  # type: ignore[no-untyped-call]
        expected = set(Base.metadata.tables)
        state = _inspect(project.mlflow_db)
        tables: set[str] = state["tables"]
        leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
        missing = sorted(expected - tables)
        if tables and (state["revision"] != head or missing or leftovers):
            why = (
                f"schema revision {state['revision'] or 'none'}, expected {head}"
                if state["revision"] != head
                else f"missing table {missing[0]}"
                if missing
                else f"leftover migration table {leftovers[0]}"
            )
            if state["user_data"]:
                raise WorkbenchError(
                    f"{project.mlflow_db}: the MLflow store is incomplete or out of date ({why}); "
                    f"back it up, then run `mlflow db upgrade {project.tracking_uri}`"
                )
            _move_aside(project, why)
            tables = set()
        if not tables:
            _create(project)
            after = _inspect(project.mlflow_db)
            if after["revision"] != head or expected - after["tables"]:
                raise WorkbenchError(
                    f"{project.mlflow_db}: creating the MLflow store did not finish "
                    f"(schema revision {after['revision']}, expected {head})"
                )
        _write_marker(project, head)


def setup(project: Project) -> str:
    """Point mlflow at the project's stores (the embedded one created once, see
    ensure_mlflow_store; a remote one checked to answer first); create the experiment.
    Returns its id. A remote store that fails is one line (WorkbenchError) naming it."""
    _quiet()
    project.ensure_store()
    embedded = project.is_embedded_store
    if not embedded:
        backends.apply_credentials(project)
        backends.check_reachable(project, project.tracking_uri)
        if project.registry_uri != project.tracking_uri:
            backends.check_reachable(project, project.registry_uri)
    import mlflow

    _quiet()  # importing mlflow sets its loggers back to INFO (its store-creation lines)
    if project.tracking_uri.startswith("sqlite:"):
        ensure_mlflow_store(project)
    mlflow.set_tracking_uri(backends.connect_uri(project, project.tracking_uri))
    mlflow.set_registry_uri(backends.connect_uri(project, project.registry_uri))
    with remote_errors(project):
        exp_id = _experiment(project)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _experiment(project: Project) -> str:
    """The project's experiment, created if need be: its artifacts under `.workbench/` for
    the embedded store; for a remote one where the server puts them (its default artifact
    root or proxied artifacts), never a path on this machine."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(project.experiment_name)
    if exp is not None:
        return str(exp.experiment_id)
    location = project.artifacts.as_uri() if project.tracking_uri.startswith("sqlite:") else None
    try:
        return str(client.create_experiment(project.experiment_name, artifact_location=location))
    except MlflowException:  # another process created it first
        exp = client.get_experiment_by_name(project.experiment_name)
        if exp is None:
            raise
        return str(exp.experiment_id)


@contextlib.contextmanager
def remote_errors(project: Project) -> Iterator[None]:
    """A remote store's connection and credential failures as one line naming the store."""
    if project.is_embedded_store:
        yield
        return
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", ""))
        first = (str(getattr(exc, "message", exc)).strip().splitlines() or [code])[0]
        if code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "401" in first[:200]:
            raise backends.unreachable(project.tracking_uri, first[:300]) from None
        if "Max retries exceeded" in first or "Connection" in first[:300]:
            raise backends.unreachable(project.tracking_uri, "no answer") from None
        raise
    except OSError as exc:
        raise backends.unreachable(project.tracking_uri, str(exc)[:300]) from None


def client(project: Project) -> MlflowClient:
    setup(project)
    from mlflow import MlflowClient

    return MlflowClient(
        tracking_uri=backends.connect_uri(project, project.tracking_uri),
        registry_uri=backends.connect_uri(project, project.registry_uri),
    )


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
