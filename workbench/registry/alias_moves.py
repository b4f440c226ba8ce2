"""Alias moves as one step: read the alias, set it in MLflow, append the audit row, all under
one inter-process lock, so the alias history is a chain (each move's `from` is the previous
move's `to`) however many processes promote at once.

A move first writes its audit row, unwritten, to a write-ahead file beside the lock; the next
holder of the lock finishes a move that a kill cut short (MLflow moved, no audit row yet) or
drops it (MLflow never moved). Moves made outside Workbench (the MLflow UI, a script with the
plain client) are found by comparing MLflow's aliases with the last audited state of each
alias, and recorded as moves by `mlflow`.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.errors import RegistryError
from workbench.project import Project
from workbench.registry import audit, card_store, identity
from workbench.store import backends
from workbench.store.db import Db
from workbench.store.parquet_log import utcnow

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: Audit actions that move an MLflow alias (the alias history is made of these).
MOVES = ("promote", "auto-promote", "rollback", "set", "canary.promote", "external")
#: The actor of a move found in MLflow that no Workbench command made.
EXTERNAL_ACTOR = "mlflow"

T = TypeVar("T")
_held = threading.local()


def lock_path(project: Project) -> Path:
    return project.store / "locks" / "registry.lock"


def _wal_path(project: Project) -> Path:
    return project.store / "locks" / "registry.pending.json"


def cut_short(project: Project) -> bool:
    """Did a kill leave a move half done (the next holder of the lock settles it)?"""
    return _wal_path(project).exists()


@contextmanager
def locked(project: Project) -> Iterator[None]:
    """Hold the registry lock (an flock; re-entrant within a thread). Whoever takes it first
    finishes or drops a move that a kill left half done."""
    path = lock_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        depth[key] = 1
        try:
            _recover(project)
            yield
        finally:
            depth[key] = 0
            fcntl.flock(fh, fcntl.LOCK_UN)
            card_store.flush()  # the cards of the versions moved, outside the lock


def mlflow_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a registry write; an MlflowException becomes one line (RegistryError)."""
    from mlflow.exceptions import MlflowException

    try:
        return fn(*args, **kwargs)
    except MlflowException as exc:
        raise refusal(exc) from None


def refusal(exc: Exception) -> RegistryError:
    """An MlflowException as one line."""
    first = (str(getattr(exc, "message", exc)).strip().splitlines() or ["(no message)"])[0]
    return RegistryError(f"MLflow refused the change: {first}")


def current_aliases(project: Project) -> dict[str, int]:
    return backends.reader_for(project, registry=True).read_aliases(project.config.model_name)


def moves(project: Project, db: Db | None = None) -> list[dict[str, Any]]:
    """Every audited move of this project's model's aliases, oldest first."""
    with Db.borrow(db, project.logs_root) as use:
        return use.rows(
            "SELECT ts, actor, action, alias, from_version, to_version, reason FROM audit "
            f"WHERE model = ? AND action IN ({', '.join('?' * len(MOVES))}) ORDER BY ts",
            [project.config.model_name, *MOVES],
        )


def last_states(history: list[dict[str, Any]]) -> dict[str, int | None]:
    """Per alias, the version its last audited move left it at (None: removed)."""
    return {ev["alias"]: ev["to_version"] for ev in history}


def differences(
    history: list[dict[str, Any]], now: dict[str, int]
) -> list[tuple[str, int | None, int | None]]:
    """(alias, last audited, in MLflow now) for every alias where the two disagree."""
    last = last_states(history)
    return [
        (alias, last.get(alias), now.get(alias))
        for alias in sorted(set(last) | set(now))
        if last.get(alias) != now.get(alias)
    ]


def record_external(project: Project, db: Db | None = None) -> list[dict[str, Any]]:
    """Under the lock: audit every alias move found in MLflow that no audit row explains."""
    found = differences(moves(project, db), current_aliases(project))
    rows = []
    for alias, before, after in found:
        now = utcnow()
        what = "moved" if after is not None else "removed"
        reason = f"{what} outside Workbench (found on {now:%Y-%m-%d %H:%M:%S} UTC)"
        rows.append(
            audit.record(
                project,
                "external",
                project.config.model_name,
                alias,
                before,
                after,
                reason,
                by=EXTERNAL_ACTOR,
                found_by=audit.actor(),
            )
        )
    return rows


def move_locked(
    project: Project,
    client: MlflowClient,
    alias: str,
    version: int,
    reason: str,
    action: str,
    by: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Move `alias` to `version` and audit it; the caller holds the lock and has recorded
    outside moves, so `from_version` is the previous audited `to_version`."""
    name = project.config.model_name
    before = current_aliases(project).get(alias)
    row = audit.make_row(action, name, alias, before, version, reason, by, **details)
    _write_wal(project, row)
    try:
        _set_alias(project, client, alias, version)
    except BaseException:
        _wal_path(project).unlink(missing_ok=True)  # MLflow did not move: nothing to audit
        raise
    audit.append(project, row)
    _wal_path(project).unlink(missing_ok=True)
    card_store.after_move(project, before, version)
    return row


def _set_alias(project: Project, client: MlflowClient, alias: str, version: int) -> None:
    """Set the alias in MLflow; a store that refuses this user is one line saying so."""
    from mlflow.exceptions import MlflowException

    try:
        client.set_registered_model_alias(project.config.model_name, alias, str(version))
    except MlflowException as exc:
        if exc.error_code == "PERMISSION_DENIED":
            raise identity.denied(project) from None
        raise refusal(exc) from None


def _write_wal(project: Project, row: dict[str, Any]) -> None:
    path = _wal_path(project)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w") as fh:
            json.dump({**row, "ts": row["ts"].isoformat()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _recover(project: Project) -> None:
    """A move a kill cut short: audit it if MLflow made it, else forget it."""
    path = _wal_path(project)
    try:
        row = json.loads(path.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        path.unlink(missing_ok=True)  # torn before the rename cannot happen; be safe anyway
        return
    row["ts"] = datetime.fromisoformat(row["ts"])
    if current_aliases(project).get(row["alias"]) == row["to_version"]:
        with Db(project.logs_root) as db:
            (seen,) = db.rows(
                "SELECT count(*) AS n FROM audit WHERE model = ? AND alias = ? AND ts = ?",
                [row["model"], row["alias"], row["ts"]],
            )
        if not seen["n"]:
            details = json.loads(row["details"] or "{}")
            details["recovered_by"] = audit.actor()
            audit.append(project, {**row, "details": json.dumps(details, sort_keys=True)})
    path.unlink(missing_ok=True)
