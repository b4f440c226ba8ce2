"""What lineage reads of the Parquet logs through the DuckDB views: the audit and jobs logs
(small: read whole, once per build), drift checks (one row per check), and from the
prediction log only what a filter finds (one request, the variants a serving job answered
with), never the whole log.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from workbench.project import Project
from workbench.store.db import Db

#: Audit actions that move an alias.
ALIAS_MOVES = frozenset(
    {"promote", "auto-promote", "rollback", "set", "canary.promote", "external"}
)
#: Audit actions that change a deployment (the canary).
DEPLOY_ACTIONS = frozenset({"canary.start", "canary.traffic", "canary.rollback"})


def details(row: dict[str, Any]) -> dict[str, Any]:
    try:
        got = json.loads(row.get("details") or "{}")
    except ValueError:
        return {}
    return got if isinstance(got, dict) else {}


def utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class LogReads:
    """The reads of one lineage build over one Db (closed by `close`)."""

    def __init__(self, project: Project, db: Db | None = None) -> None:
        self.project = project
        self._own = db is None
        self.db = db or Db(project.logs_root)
        self._audit: list[dict[str, Any]] | None = None
        self._jobs: dict[str, dict[str, Any]] | None = None
        self._drift: dict[str, dict[str, Any]] | None = None

    def close(self) -> None:
        if self._own:
            self.db.close()

    def audit(self) -> list[dict[str, Any]]:
        """Every audit row, oldest first, each with its details parsed (`_details`)."""
        if self._audit is None:
            rows = self.db.rows("SELECT * FROM audit ORDER BY ts")
            for row in rows:
                row["ts"] = utc(row["ts"])
                row["_details"] = details(row)
            self._audit = rows
        return self._audit

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every job's latest record by job id, its `args` parsed (`_args`)."""
        if self._jobs is None:
            rows = self.db.rows("SELECT * FROM jobs ORDER BY started_at")
            for row in rows:
                for key in ("ts", "started_at", "ended_at"):
                    row[key] = utc(row[key])
                try:
                    row["_args"] = json.loads(row.get("args") or "{}")
                except ValueError:
                    row["_args"] = {}
            self._jobs = {r["job_id"]: r for r in rows}
        return self._jobs

    def job_of_run(self, run_id: str) -> dict[str, Any] | None:
        return next((j for j in self.jobs().values() if j.get("run_id") == run_id), None)

    def drift_checks(self) -> dict[str, dict[str, Any]]:
        """One row per drift check: id, model, version, when, source, window, alerts."""
        if self._drift is None:
            rows = self.db.rows(
                "SELECT check_id, any_value(model) AS model, any_value(version) AS version, "
                'min(ts) AS ts, any_value(source) AS source, any_value("window") AS window, '
                "count(*) FILTER (WHERE status = 'alert') AS alerts, "
                "count(*) FILTER (WHERE status = 'warn') AS warns, "
                "list(feature ORDER BY feature) FILTER (WHERE status = 'alert') AS alerted, "
                "max(n_cur) AS n_cur FROM drift GROUP BY check_id ORDER BY ts"
            )
            for row in rows:
                row["ts"] = utc(row["ts"])
            self._drift = {r["check_id"]: r for r in rows}
        return self._drift

    def request(self, request_id: str) -> dict[str, Any] | None:
        """The prediction log's row of one request (the first, for a batch's id reused)."""
        rows = self.db.rows(
            "SELECT ts, request_id, model, version, variant, output, latency_ms, status, error "
            "FROM predictions WHERE request_id = ? LIMIT 1",
            [request_id],
        )
        if not rows:
            return None
        rows[0]["ts"] = utc(rows[0]["ts"])
        return rows[0]

    def served(
        self, model: str, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]:
        """Per (version, variant): requests, first and last, between `start` and `end`."""
        where, args = ["model = ?"], [model]
        if start is not None:
            where.append("ts >= ?")
            args.append(start)  # type: ignore[arg-type]
        if end is not None:
            where.append("ts <= ?")
            args.append(end)  # type: ignore[arg-type]
        rows = self.db.rows(
            "SELECT version, variant, count(*) AS requests, min(ts) AS first, max(ts) AS last "
            f"FROM predictions WHERE {' AND '.join(where)} GROUP BY version, variant "
            "ORDER BY version, variant",
            args,
        )
        for row in rows:
            row["first"], row["last"] = utc(row["first"]), utc(row["last"])
        return rows

    def version_span(self, model: str, version: int) -> tuple[datetime, datetime] | None:
        """When `version` first and last answered a request (None: never)."""
        rows = self.db.rows(
            "SELECT min(ts) AS first, max(ts) AS last FROM predictions "
            "WHERE version = ? AND model = ?",
            [version, model],
        )
        first, last = (utc(rows[0]["first"]), utc(rows[0]["last"])) if rows else (None, None)
        return (first, last) if first and last else None
