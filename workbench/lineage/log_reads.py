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
#: A serving job's versions looked up at most (each costs two more queries).
_MAX_VERSIONS = 50


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
    """The reads of one lineage build over one Db, closed by `close`. Its own Db is opened
    at the first query and makes each view when first queried (making a view reads its log's
    file schemas: a build that never asks the prediction log does not pay for it)."""

    def __init__(self, project: Project, db: Db | None = None) -> None:
        self.project = project
        self._own = db is None
        self._db = db
        self._audit: list[dict[str, Any]] | None = None
        self._jobs: dict[str, dict[str, Any]] | None = None
        self._by_run: dict[str, dict[str, Any]] = {}
        self._drift: dict[str, dict[str, Any]] | None = None

    def _rows(self, view: str, sql: str, args: list[Any] | None = None) -> list[dict[str, Any]]:
        if self._db is None:
            self._db = Db(self.project.logs_root, views=())
        self._db.add_views(view)
        return self._db.rows(sql, args)

    def close(self) -> None:
        if self._own and self._db is not None:
            self._db.close()
            self._db = None

    def audit(self) -> list[dict[str, Any]]:
        """Every audit row, oldest first, each with its details parsed (`_details`)."""
        if self._audit is None:
            rows = self._rows("audit", "SELECT * FROM audit ORDER BY ts")
            for row in rows:
                row["ts"] = utc(row["ts"])
                row["_details"] = details(row)
            self._audit = rows
        return self._audit

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every job's latest record by job id, its `args` parsed (`_args`)."""
        if self._jobs is None:
            rows = self._rows("jobs", "SELECT * FROM jobs ORDER BY started_at")
            for row in rows:
                for key in ("ts", "started_at", "ended_at"):
                    row[key] = utc(row[key])
                try:
                    row["_args"] = json.loads(row.get("args") or "{}")
                except ValueError:
                    row["_args"] = {}
            self._jobs = {r["job_id"]: r for r in rows}
            for row in rows:  # the first job that recorded the run
                if row.get("run_id"):
                    self._by_run.setdefault(row["run_id"], row)
        return self._jobs

    def job_of_run(self, run_id: str) -> dict[str, Any] | None:
        self.jobs()
        return self._by_run.get(run_id)

    def drift_checks(self) -> dict[str, dict[str, Any]]:
        """One row per drift check: id, model, version, when, source, window, alerts."""
        if self._drift is None:
            rows = self._rows(
                "drift",
                "SELECT check_id, any_value(model) AS model, any_value(version) AS version, "
                'min(ts) AS ts, any_value(source) AS source, any_value("window") AS window, '
                "count(*) FILTER (WHERE status = 'alert') AS alerts, "
                "count(*) FILTER (WHERE status = 'warn') AS warns, "
                "list(feature ORDER BY feature) FILTER (WHERE status = 'alert') AS alerted, "
                "max(n_cur) AS n_cur FROM drift GROUP BY check_id ORDER BY ts",
            )
            for row in rows:
                row["ts"] = utc(row["ts"])
            self._drift = {r["check_id"]: r for r in rows}
        return self._drift

    def request(self, request_id: str) -> dict[str, Any] | None:
        """The prediction log's row of one request (the first, for a batch's id reused)."""
        rows = self._rows(
            "predictions",
            "SELECT ts, request_id, model, version, variant, output, latency_ms, status, error "
            "FROM predictions WHERE request_id = ? LIMIT 1",
            [request_id],
        )
        if not rows:
            return None
        rows[0]["ts"] = utc(rows[0]["ts"])
        return rows[0]

    def served(self, model: str, start: datetime | None, end: datetime | None) -> list[int]:
        """The versions of `model` that answered a request between `start` and `end`, without
        scanning the window: one `LIMIT 1` query finds a version in a range of versions, then
        the ranges below and above it are asked the same (2k + 1 queries for k versions), each
        skipping the files and row groups whose min/max statistics of ts and version rule
        them out, and stopping at its first row."""
        where, base = ["model = ?", "version IS NOT NULL"], [model]
        if start is not None:
            where.append("ts >= ?")
            base.append(start)  # type: ignore[arg-type]
        if end is not None:
            where.append("ts <= ?")
            base.append(end)  # type: ignore[arg-type]
        found: list[int] = []
        ranges: list[tuple[int | None, int | None]] = [(None, None)]
        while ranges and len(found) < _MAX_VERSIONS:
            lo, hi = ranges.pop()
            cond, args = list(where), list(base)
            if lo is not None:
                cond.append("version > ?")
                args.append(lo)  # type: ignore[arg-type]
            if hi is not None:
                cond.append("version < ?")
                args.append(hi)  # type: ignore[arg-type]
            rows = self._rows(
                "predictions",
                f"SELECT version FROM predictions WHERE {' AND '.join(cond)} LIMIT 1",
                args,
            )
            if rows:
                v = int(rows[0]["version"])
                found.append(v)
                ranges += [(lo, v), (v, hi)]
        return sorted(found)

    def answered(
        self, model: str, version: int, start: datetime | None, end: datetime | None
    ) -> bool:
        """Whether `version` answered any request between `start` and `end` (a first row
        found ends the scan; the statistics skip files outside the window)."""
        where, args = ["model = ?", "version = ?"], [model, version]
        if start is not None:
            where.append("ts >= ?")
            args.append(start)
        if end is not None:
            where.append("ts <= ?")
            args.append(end)
        sql = f"SELECT 1 AS hit FROM predictions WHERE {' AND '.join(where)} LIMIT 1"
        return bool(self._rows("predictions", sql, args))
