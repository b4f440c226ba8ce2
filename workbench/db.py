"""The query layer: one in-process DuckDB connection with a view over every Parquet log.

Views: runs, metrics, jobs, audit (and the raw event logs `jobs_events`, `runs_versions`).
A view over a log with no files yet reads an empty table of the right schema, and is switched
to the Parquet glob as soon as files exist, so queries never fail on a fresh project.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from workbench.parquet_log import SCHEMAS, ParquetLog

# name -> (log, SQL over `src`, which reads the log's files)
_VIEWS: dict[str, tuple[str, str]] = {
    "audit": ("audit", "SELECT * EXCLUDE (date) FROM src ORDER BY ts"),
    "jobs_events": ("jobs", "SELECT * EXCLUDE (date) FROM src"),
    "jobs": (
        "jobs",
        "SELECT * EXCLUDE (date) FROM src "
        "QUALIFY row_number() OVER (PARTITION BY job_id ORDER BY ts DESC) = 1",
    ),
    "runs_versions": ("runs", "SELECT * EXCLUDE (date) FROM src"),
    "runs": (
        "runs",
        "SELECT * EXCLUDE (date, fingerprint, synced_at) FROM src "
        "QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY synced_at DESC) = 1 "
        "AND lifecycle_stage = 'active'",
    ),
    "metrics": (
        "metrics",
        "SELECT run_id, key, step, value, timestamp FROM src "
        "QUALIFY synced_at = max(synced_at) OVER (PARTITION BY run_id)",
    ),
}

_HIVE = {"audit": True, "jobs": True, "runs": True, "metrics": True}


class Db:
    """DuckDB over a project's Parquet logs. Use `cursor()` from worker threads."""

    def __init__(self, logs_root: Path) -> None:
        self.logs_root = logs_root
        self.con = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        self._empty: set[str] = set()
        for log, schema in SCHEMAS.items():
            extra = [("date", pa.string())] if _HIVE[log] else []
            empty = pa.schema(list(schema) + [pa.field(n, t) for n, t in extra]).empty_table()
            self.con.register("_arrow_empty", empty)
            self.con.execute(f"CREATE TABLE _empty_{log} AS SELECT * FROM _arrow_empty")
            self.con.unregister("_arrow_empty")
        self._create_views(force=True)

    def _source(self, log: str) -> tuple[str, bool]:
        plog = ParquetLog(self.logs_root, log)
        if not plog.files():
            return f"_empty_{log}", True
        hive = "true" if _HIVE[log] else "false"
        glob = plog.glob.replace("'", "''")
        return f"read_parquet('{glob}', hive_partitioning={hive}, union_by_name=true)", False

    def _create_views(self, force: bool = False) -> None:
        with self._lock:
            for view, (log, sql) in _VIEWS.items():
                if not force and view not in self._empty:
                    continue
                src, empty = self._source(log)
                if empty and not force and view in self._empty:
                    continue
                self.con.execute(
                    f"CREATE OR REPLACE VIEW {view} AS WITH src AS (SELECT * FROM {src}) {sql}"
                )
                (self._empty.add if empty else self._empty.discard)(view)

    def refresh(self) -> None:
        """Point views that were empty at their files, once files exist."""
        if self._empty:
            self._create_views()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        self.refresh()
        return self.con.cursor()

    def query(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyRelation:
        self.refresh()
        return self.con.execute(sql, params or [])

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.cursor()
        res = cur.execute(sql, params or [])
        names = [d[0] for d in res.description]
        return [dict(zip(names, row, strict=True)) for row in res.fetchall()]

    def arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        cur = self.cursor()
        return cur.sql(sql, params=params or None).to_arrow_table()

    def close(self) -> None:
        self.con.close()
