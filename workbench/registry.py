"""The model registry: versions, aliases, promote and rollback, and the history of alias moves.

MLflow holds the aliases (the truth for who serves). The audit log holds every move, which
gives the history: replaying it yields a stack per alias (promote pushes, rollback pops), so
rollback returns to the version that held the alias before, and can be repeated.
Reads go to the SQLite store directly (no mlflow import); writes go through MlflowClient.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from workbench import audit, mlflow_store, tracking
from workbench.db import Db
from workbench.errors import RegistryError, UsageError
from workbench.project import Project

MOVES = ("promote", "auto-promote", "rollback", "set")


@dataclass
class VersionInfo:
    version: int
    aliases: list[str]
    run_id: str | None
    status: str | None
    created_ms: int | None
    metrics: dict[str, float]
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_metrics(project: Project, run_ids: list[str]) -> dict[str, dict[str, float]]:
    with mlflow_store.connect_ro(project.mlflow_db) as con:
        if con is None or not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        out: dict[str, dict[str, float]] = {}
        for run_id, key, value, is_nan in con.execute(
            f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})",
            run_ids,
        ):
            out.setdefault(run_id, {})[key] = math.nan if is_nan else float(value)
        return out


def list_versions(project: Project) -> list[VersionInfo]:
    versions = mlflow_store.read_model_versions(project.mlflow_db, project.config.model_name)
    metrics = _run_metrics(project, [v.run_id for v in versions if v.run_id])
    return [
        VersionInfo(
            version=v.version,
            aliases=sorted(v.aliases),
            run_id=v.run_id,
            status=v.status,
            created_ms=v.created_ms,
            metrics=metrics.get(v.run_id or "", {}),
            source=v.source,
        )
        for v in versions
    ]


def aliases(project: Project) -> dict[str, int]:
    return mlflow_store.read_aliases(project.mlflow_db, project.config.model_name)


def register(project: Project, run_id: str, model_uri: str, description: str = "") -> int:
    client = tracking.client(project)
    from mlflow.exceptions import MlflowException

    name = project.config.model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=project.config.project.description)
    mv = client.create_model_version(name, source=model_uri, run_id=run_id, description=description)
    return int(mv.version)


def alias_history(
    project: Project, alias: str | None = None, db: Db | None = None
) -> list[dict[str, Any]]:
    """Alias moves of this project's model, oldest first."""
    own = db is None
    db = db or Db(project.logs)
    try:
        sql = (
            "SELECT ts, actor, action, alias, from_version, to_version, reason FROM audit "
            f"WHERE model = ? AND action IN ({', '.join('?' * len(MOVES))})"
        )
        args: list[Any] = [project.config.model_name, *MOVES]
        if alias:
            sql += " AND alias = ?"
            args.append(alias)
        return db.rows(sql + " ORDER BY ts", args)
    finally:
        if own:
            db.close()


def _stack(history: list[dict[str, Any]]) -> list[int]:
    stack: list[int] = []
    for ev in history:
        to = ev["to_version"]
        if ev["action"] == "rollback":
            if stack:
                stack.pop()
            if to is not None and (not stack or stack[-1] != to):
                stack.append(to)
        elif to is not None and (not stack or stack[-1] != to):
            stack.append(to)
    return stack


def rollback_target(project: Project, alias: str) -> tuple[int | None, int]:
    """(current version, version to roll back to) or RegistryError saying why there is none."""
    current = aliases(project).get(alias)
    stack = _stack(alias_history(project, alias))
    if current is not None and (not stack or stack[-1] != current):
        stack.append(current)  # moved outside Workbench (MLflow UI, a script): start from there
    if current is None:
        raise RegistryError(f"alias {alias!r} is not set on model {project.config.model_name!r}")
    if len(stack) < 2:
        raise RegistryError(
            f"nothing to roll back to: {alias!r} has only ever pointed at version {current}"
        )
    return current, stack[-2]


def _version_exists(project: Project, version: int) -> bool:
    return any(v.version == version for v in list_versions(project))


def move_alias(
    project: Project, alias: str, version: int, reason: str, action: str = "promote", **details: Any
) -> dict[str, Any]:
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    if not _version_exists(project, version):
        have = ", ".join(str(v.version) for v in list_versions(project)) or "none"
        raise RegistryError(
            f"model {project.config.model_name!r} has no version {version} (versions: {have})"
        )
    current = aliases(project).get(alias)
    client = tracking.client(project)
    client.set_registered_model_alias(project.config.model_name, alias, str(version))
    return audit.record(
        project,
        action,
        project.config.model_name,
        alias,
        current,
        version,
        reason.strip(),
        **details,
    )


def promote(
    project: Project, version: int, reason: str, alias: str | None = None
) -> dict[str, Any]:
    """Point `alias` (default: the configured production alias) at `version`."""
    alias = alias or project.config.registry.production_alias
    return move_alias(project, alias, version, reason, "promote")


def rollback(project: Project, reason: str, alias: str | None = None) -> dict[str, Any]:
    """Move `alias` (default: the production alias) back to the version that held it before."""
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    alias = alias or project.config.registry.production_alias
    _, target = rollback_target(project, alias)
    return move_alias(project, alias, target, reason, "rollback")
