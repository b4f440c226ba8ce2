"""The audit log: who did what to which alias, when, from which version to which, and why.

Every row is a record of a hash chain (audit_chain.py: seq, prev_hash, hash), appended under
a lock (local) or a conditional create (S3); `verify` (audit_verify.py) replays it."""

from __future__ import annotations

import getpass
import json
import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench.project import Project
from workbench.registry import audit_chain
from workbench.store.parquet_log import utcnow

if TYPE_CHECKING:
    from workbench.store.db import Db


def actor() -> str:
    user = os.environ.get("WORKBENCH_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


def make_row(
    action: str,
    model: str,
    alias: str | None,
    from_version: int | None,
    to_version: int | None,
    reason: str,
    by: str | None = None,
    ts: datetime | None = None,
    **details: Any,
) -> dict[str, Any]:
    """One audit row, not yet written; `by` names an actor other than the user."""
    return {
        "ts": ts or utcnow(),
        "actor": by or actor(),
        "action": action,
        "model": model,
        "alias": alias,
        "from_version": from_version,
        "to_version": to_version,
        "reason": reason,
        "details": json.dumps(details, default=str, sort_keys=True),
    }


def append(project: Project, row: dict[str, Any]) -> dict[str, Any]:
    """Write `row` as the chain's next record; returns it with its seq, prev_hash and hash."""
    return audit_chain.append(project.logs_root, row)


def record(
    project: Project,
    action: str,
    model: str,
    alias: str | None,
    from_version: int | None,
    to_version: int | None,
    reason: str,
    by: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Append one audit row; `by` names an actor other than the user (e.g. "auto-rollback")."""
    row = make_row(action, model, alias, from_version, to_version, reason, by, **details)
    return append(project, row)


def recent(db: Db, limit: int = 5) -> list[dict[str, Any]]:
    """The newest `limit` audit rows, newest first (every column of the `audit` view)."""
    return db.rows("SELECT * FROM audit ORDER BY ts DESC LIMIT ?", [limit])
