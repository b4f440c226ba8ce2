"""The query layer: one in-process DuckDB connection with a view over every Parquet log.

Views: runs, metrics, jobs, audit, approvals (and the raw event logs `jobs_events`,
`runs_versions`).
A view over a log with no files yet reads an empty table of the right schema. Views read the
files each log's manifest lists (see parquet_log.py) and are rebuilt when it changes, so a
query never sees a half-written file, or a compacted file beside its parts. Shared logs in S3
are listed (in parallel) at most once per `[logs] refresh_s` per process (see s3_log.py); a
query that meets an object deleted since its listing lists the logs anew and runs again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from workbench.project import LogsRoot
from workbench.store.parquet_log import COLUMNS, DUCKDB_TYPES, SCHEMAS, ParquetLog, as_root
from workbench.store.s3_log import Snapshot, forget_listings, vanished

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

T = TypeVar("T")

# name -> (log, SQL over `src`, which reads the log's files)
_VIEWS: dict[str, tuple[str, str]] = {
    "audit": ("audit", "SELECT * EXCLUDE (date) FROM src ORDER BY ts"),
    "approvals": ("approvals", "SELECT * EXCLUDE (date) FROM src ORDER BY ts"),
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
    "predictions": ("predictions", "SELECT * EXCLUDE (date) FROM src"),
    "drift": ("drift", "SELECT * EXCLUDE (date) FROM src"),
    "labels": (
        "labels",
        "SELECT * EXCLUDE (date) FROM src "
        "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts DESC) = 1",
    ),
    "metrics": (
        "metrics",
        "SELECT run_id, key, step, value, timestamp FROM src "
        "QUALIFY synced_at = max(synced_at) OVER (PARTITION BY run_id)",
    ),
}


_SAFE: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


class Db:
    """DuckDB over a project's Parquet logs. Use `cursor()` from worker threads.

    `with Db(logs) as db:` closes it at the end; `with Db.borrow(db, logs) as db:` uses the
    caller's `db` when it has one (left open) and else opens and closes its own."""

    def __init__(self, logs_root: Path | LogsRoot, views: Iterable[str] | None = None) -> None:
        """`views`: only these views (more with `add_views`), for a caller that knows what it
        queries and wants the connection cheap to open: making a view reads the schemas of
        its log's files (lineage). Default: every view."""
        self.root = as_root(logs_root)
        self._views = dict(_VIEWS) if views is None else {v: _VIEWS[v] for v in views}
        self._logs = [log for log in COLUMNS if any(w[0] == log for w in self._views.values())]
        self.logs_root = self.root.local
        # No extension is ever fetched or loaded behind a query's back: offline there is
        # nothing to fetch, and a read-only console must not write an extension to disk.
        self.con = duckdb.connect(":memory:", config=_SAFE)
        self._lock = threading.RLock()
        self._stamps: dict[str, object] = {}
        #: A shared log's live files as a lazy Arrow dataset, registered as `_src_<log>` on
        #: the connection and on every cursor (DuckDB scans it with filter pushdown).
        self._remote: dict[str, pads.Dataset] = {}
        for log in self._logs:
            self._empty(log)
        self._create_views(force=True)

    def _empty(self, log: str) -> None:
        # Plain DDL: registering an Arrow table would make DuckDB import pandas (~0.25 s).
        cols = [f'"{name}" {DUCKDB_TYPES[kind]}' for name, kind in COLUMNS[log]]
        cols.append('"date" VARCHAR')  # every log is partitioned by date=
        self.con.execute(f"CREATE TABLE _empty_{log} ({', '.join(cols)})")

    def add_views(self, *views: str) -> None:
        """Make these views too (a Db opened with `views=`), when first needed."""
        with self._lock:
            new = {v: _VIEWS[v] for v in views if v not in self._views}
            if not new:
                return
            self._views.update(new)
            for log in dict.fromkeys(log for log, _ in new.values()):
                if log not in self._logs:
                    self._logs.append(log)
                    self._empty(log)
                self._stamps.pop(log, None)  # its views are made at the next look
            self._create_views()

    def _source(self, log: str) -> str:
        files = ParquetLog(self.root, log).files()
        if not files:
            return f"_empty_{log}"
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        return f"read_parquet([{listed}], hive_partitioning=true, union_by_name=true)"

    def _create_views(self, force: bool = False) -> None:
        """(Re)create the views of every log whose manifest changed since the last look."""
        with self._lock:
            plogs = [ParquetLog(self.root, log) for log in self._logs]
            remote = [p.remote for p in plogs if p.remote is not None]
            snaps = {}
            if len(remote) > 1 and not all(r.listed() for r in remote):
                with ThreadPoolExecutor(len(remote)) as pool:  # one round trip, not five
                    snaps = dict(zip(remote, pool.map(lambda r: r.snapshot(), remote), strict=True))
            for plog in plogs:
                log = plog.name
                if plog.remote is not None:
                    snap = snaps.get(plog.remote) or plog.remote.snapshot()
                    stamp: object = snap.live
                    if not force and self._stamps.get(log, ()) == stamp:
                        continue
                    src = self._remote_source(plog, snap)
                else:
                    stamp = plog.stamp()
                    if not force and self._stamps.get(log, ()) == stamp:
                        continue
                    src = self._source(log)
                for view, (view_log, sql) in self._views.items():
                    if view_log == log:
                        body = f"WITH src AS (SELECT * FROM {src}) {sql}"
                        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
                self._stamps[log] = stamp

    def _remote_source(self, plog: ParquetLog, snap: Snapshot) -> str:
        assert plog.remote is not None
        self._remote.pop(plog.name, None)
        if not snap.live:
            return f"_empty_{plog.name}"
        dataset = plog.remote.dataset(snap, SCHEMAS[plog.name])
        self.con.register(f"_src_{plog.name}", dataset)
        self._remote[plog.name] = dataset
        return f"_src_{plog.name}"

    def refresh(self) -> None:
        """Point the views at the current live files (a few stat calls when nothing changed;
        for a log in S3, this process's listing when younger than `[logs] refresh_s`)."""
        self._create_views()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for this caller (thread-safe), with current views."""
        with self._lock:
            self._create_views()
            cur = self.con.cursor()
            for log, dataset in self._remote.items():
                cur.register(f"_src_{log}", dataset)
            return cur

    def query(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection = self._retrying(
            lambda: self.cursor().execute(sql, params or [])
        )
        return cur

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            res = self.cursor().execute(sql, params or [])
            names = [d[0] for d in res.description]
            return [dict(zip(names, row, strict=True)) for row in res.fetchall()]

        rows: list[dict[str, Any]] = self._retrying(run)
        return rows

    def arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        return self._retrying(
            lambda: self.cursor().sql(sql, params=params or None).to_arrow_table()
        )

    def retrying(self, fn: Callable[[], T]) -> T:
        """`fn()` (which takes its own `cursor()`), run again after a file vanished under it
        (see `_retrying`): for callers that need the cursor itself, like the SQL console."""
        result: T = self._retrying(fn)
        return result

    def _retrying(self, fn: Any) -> Any:
        """A file can vanish under a query only if someone deletes it outside the manifest's
        grace period (or by hand), or a reader holds an S3 listing longer than the grace
        period; re-list the files and try again before giving up. A local file that vanished
        is DuckDB's IOException; an S3 object read through the Arrow dataset fails the scan
        as InvalidInputException "reading the stream registered as '_src_<log>' failed:
        IOError: ..." (`s3_log.vanished`); then the S3 listings are dropped and taken anew."""
        for attempt in range(3):
            try:
                return fn()
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                if attempt == 2 or not (
                    isinstance(exc, duckdb.IOException) or (self._remote and vanished(exc))
                ):
                    raise
                if self._remote:
                    forget_listings()
                self._create_views(force=True)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Db:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @classmethod
    def borrow(cls, db: Db | None, logs_root: Path | LogsRoot) -> AbstractContextManager[Db]:
        """`db` itself, left open, when the caller has one; else a new Db, closed after."""
        return contextlib.nullcontext(db) if db is not None else cls(logs_root)
