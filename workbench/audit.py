"""The audit log: who did what to which alias, when, from which version to which, and why."""

from __future__ import annotations

import getpass
import json
import os
import socket
from typing import Any

from workbench.parquet_log import ParquetLog, utcnow
from workbench.project import Project


def actor() -> str:
    user = os.environ.get("WORKBENCH_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


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
    row = {
        "ts": utcnow(),
        "actor": by or actor(),
        "action": action,
        "model": model,
        "alias": alias,
        "from_version": from_version,
        "to_version": to_version,
        "reason": reason,
        "details": json.dumps(details, default=str, sort_keys=True),
    }
    ParquetLog(project.logs, "audit").append([row])
    return row
