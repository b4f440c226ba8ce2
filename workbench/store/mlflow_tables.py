"""Read MLflow's own tables directly, read-only, without importing mlflow: the SQLite store here
(functions taking a db path, and `SqliteReader`), PostgreSQL through sql_reader.py. Both run
the same SQL, written once below against `Tables` (qmark placeholders; the PostgreSQL side
rewrites them to psycopg2's).

`import mlflow` costs about a second and 200 MB; the TUI, `workbench runs` and `workbench models`
must not pay that. MLflow stays the system of record: every write goes through its client
(see tracking.py and registry/); this module is the one place that reads the tables MLflow 3
creates (runs, latest_metrics, metrics, params, tags, experiments, model_versions,
registered_model_aliases, model_version_tags, logged_models, alembic_version). Tests check it
against what the MLflow client wrote.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: (key, step, value, timestamp_ms) of one logged metric point.
MetricPoint = tuple[str, int, float, int]
_CHUNK = 500  # ids per IN (...) list


@dataclass
class StoreRun:
    run_id: str
    experiment_id: str
    experiment: str
    run_name: str | None
    status: str | None
    lifecycle_stage: str | None
    user: str | None
    source: str | None
    start_time: int | None
    end_time: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics_stamp: int = 0  # newest latest_metrics timestamp, for change detection


@dataclass
class StoreModelVersion:
    name: str
    version: int
    run_id: str | None
    source: str | None
    status: str | None
    created_ms: int | None
    description: str | None
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class Tables(Protocol):
    """One open, read-only view of MLflow's tables (a SQLite or PostgreSQL connection)."""

    def rows(self, sql: str, args: Sequence[object] = ()) -> Iterable[tuple[Any, ...]]:
        """The rows of `sql` (qmark `?` placeholders)."""
        ...

    def has(self, *tables: str) -> bool:
        """Whether every table in `tables` exists."""
        ...


class _SqliteTables:
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def rows(self, sql: str, args: Sequence[object] = ()) -> Iterable[tuple[Any, ...]]:
        return self.con.execute(sql, args)

    def has(self, *tables: str) -> bool:
        try:
            rows = self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            return set(tables) <= {r[0] for r in rows}
        except sqlite3.DatabaseError:  # not a database yet: an empty or torn file
            return False


@contextmanager
def connect_ro(db_path: Path, needs: Iterable[str] = ()) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when the store does not exist yet or lacks a table in
    `needs`: a store being created, or half-made by a crash, reads as empty, never as a
    `no such table` traceback."""
    if not db_path.exists():
        yield None
        return
    # as_uri() percent-encodes the path: a '#' or '%' in a folder name must not end the URI.
    con = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        needed = tuple(needs)
        yield con if not needed or _SqliteTables(con).has(*needed) else None
    finally:
        con.close()


@contextmanager
def _sqlite(db_path: Path) -> Iterator[Tables | None]:
    with connect_ro(db_path) as con:
        yield None if con is None else _SqliteTables(con)


def _chunks(ids: Sequence[str]) -> Iterator[tuple[Sequence[str], str]]:
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def _metric(value: Any, is_nan: Any) -> float:
    return float("nan") if is_nan else float(value)


# --- the SQL, once for every store with MLflow's schema ----------------------------------------

_RUN_TABLES = ("runs", "experiments", "latest_metrics", "params", "tags")
# Runs that may have changed at or after a time: started, ended, deleted, still running, or a
# metric logged since (latest_metrics keeps each key's newest point with its timestamp).
_CHANGED = (
    "SELECT run_uuid FROM runs WHERE start_time >= ? OR end_time >= ? OR deleted_time >= ? "
    "OR status = 'RUNNING' UNION SELECT run_uuid FROM latest_metrics WHERE timestamp >= ?"
)


def runs_of(t: Tables, since_ms: int | None = None) -> list[StoreRun]:
    """Every run (all experiments) with latest metrics, params and tags; with `since_ms`, only
    those that may have changed at or after it."""
    if not t.has(*_RUN_TABLES):
        return []
    where, run_where, args = "", "", []
    if since_ms is not None:
        where, run_where = f" WHERE run_uuid IN ({_CHANGED})", f" WHERE r.run_uuid IN ({_CHANGED})"
        args = [int(since_ms)] * 4
    runs: dict[str, StoreRun] = {}
    for row in t.rows(
        "SELECT r.run_uuid, r.experiment_id, e.name, r.name, r.status, r.lifecycle_stage, "
        "r.user_id, r.source_name, r.start_time, r.end_time "
        "FROM runs r LEFT JOIN experiments e ON e.experiment_id = r.experiment_id" + run_where,
        args,
    ):
        runs[row[0]] = StoreRun(
            run_id=row[0],
            experiment_id=str(row[1]),
            experiment=row[2] or "",
            run_name=row[3],
            status=row[4],
            lifecycle_stage=row[5],
            user=row[6],
            source=row[7],
            start_time=row[8],
            end_time=row[9],
        )
    sql = "SELECT key, value, timestamp, is_nan, run_uuid FROM latest_metrics"
    for key, value, ts, is_nan, run_id in t.rows(sql + where, args):
        run = runs.get(run_id)
        if run is not None:
            run.metrics[key] = _metric(value, is_nan)
            run.metrics_stamp = max(run.metrics_stamp, ts or 0)
    for key, value, run_id in t.rows("SELECT key, value, run_uuid FROM params" + where, args):
        if run_id in runs:
            runs[run_id].params[key] = value
    for key, value, run_id in t.rows("SELECT key, value, run_uuid FROM tags" + where, args):
        if run_id in runs:
            runs[run_id].tags[key] = value if value is not None else ""
    return list(runs.values())


def metric_history_of(t: Tables, run_ids: list[str]) -> dict[str, list[MetricPoint]]:
    """Per run: (key, step, value, timestamp_ms) for every logged metric point."""
    out: dict[str, list[MetricPoint]] = defaultdict(list)
    if not run_ids or not t.has("metrics"):
        return out
    for chunk, marks in _chunks(run_ids):
        for run_id, key, step, value, ts, is_nan in t.rows(
            f"SELECT run_uuid, key, step, value, timestamp, is_nan FROM metrics "
            f"WHERE run_uuid IN ({marks}) ORDER BY run_uuid, key, step, timestamp",
            chunk,
        ):
            out[run_id].append((key, int(step), _metric(value, is_nan), int(ts)))
    return out


def model_versions_of(t: Tables, name: str | None = None) -> list[StoreModelVersion]:
    """Registered model versions (newest first) with their aliases and tags."""
    if not t.has("model_versions", "registered_model_aliases"):
        return []
    where, args = ("WHERE name = ?", [name]) if name else ("", [])
    versions: dict[tuple[str, int], StoreModelVersion] = {}
    for row in t.rows(
        "SELECT name, version, run_id, source, status, creation_time, description "
        f"FROM model_versions {where} ORDER BY name, version DESC",
        args,
    ):
        versions[(row[0], int(row[1]))] = StoreModelVersion(
            name=row[0],
            version=int(row[1]),
            run_id=row[2],
            source=row[3],
            status=row[4],
            created_ms=row[5],
            description=row[6],
        )
    sql = f"SELECT alias, version, name FROM registered_model_aliases {where}"
    for alias, version, mname in t.rows(sql, args):
        mv = versions.get((mname, int(version)))
        if mv is not None:
            mv.aliases.append(alias)
    if t.has("model_version_tags"):
        sql = f"SELECT key, value, name, version FROM model_version_tags {where}"
        for key, value, mname, version in t.rows(sql, args):
            mv = versions.get((mname, int(version)))
            if mv is not None:
                mv.tags[key] = value
    return list(versions.values())


def aliases_of(t: Tables, name: str) -> dict[str, int]:
    """Model `name`'s aliases and the version each points at."""
    if not t.has("registered_model_aliases"):
        return {}
    sql = "SELECT alias, version FROM registered_model_aliases WHERE name = ?"
    return {alias: int(version) for alias, version in t.rows(sql, (name,))}


def latest_metrics_of(t: Tables, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """Per run in `run_ids`: its latest value of each metric."""
    out: dict[str, dict[str, float]] = {}
    if not run_ids or not t.has("latest_metrics"):
        return out
    for chunk, marks in _chunks(run_ids):
        sql = f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})"
        for run_id, key, value, is_nan in t.rows(sql, chunk):
            out.setdefault(run_id, {})[key] = _metric(value, is_nan)
    return out


def version_tags_of(t: Tables, name: str, keys: Iterable[str]) -> list[tuple[int, str, str]]:
    """(version, key, value) of model `name`'s version tags with a key in `keys`."""
    wanted = list(keys)
    if not wanted or not t.has("model_version_tags"):
        return []
    marks = ",".join("?" * len(wanted))
    sql = "SELECT version, key, value FROM model_version_tags WHERE name = ? AND key IN "
    rows = t.rows(sql + f"({marks})", (name, *wanted))
    return [(int(version), str(key), value) for version, key, value in rows]


def running_ids_of(t: Tables, tag: str, value: str, run_id: str | None = None) -> list[str]:
    """Runs MLflow still has as RUNNING: `run_id`, and those tagged `tag` = `value`."""
    if not t.has("runs", "tags"):
        return []
    rows = t.rows(
        "SELECT run_uuid FROM runs WHERE status = 'RUNNING' AND (run_uuid = ? OR run_uuid IN "
        "(SELECT run_uuid FROM tags WHERE key = ? AND value = ?))",
        (run_id or "", tag, value),
    )
    return [r[0] for r in rows]


def one_of(t: Tables, table: str, sql: str, arg: str) -> str | None:
    """The first column of `sql`'s first row, None when `table` or the row is missing."""
    if not t.has(table):
        return None
    row = next(iter(t.rows(sql, (arg,))), None)
    return str(row[0]) if row and row[0] is not None else None


LOGGED_MODEL_SQL = "SELECT artifact_location FROM logged_models WHERE model_id = ?"
RUN_ARTIFACT_SQL = "SELECT artifact_uri FROM runs WHERE run_uuid = ?"


# --- the SQLite store, by path -----------------------------------------------------------------


def read_runs(db_path: Path, since_ms: int | None = None) -> list[StoreRun]:
    """Every run in the store (all experiments), with latest metrics, params and tags."""
    with _sqlite(db_path) as t:
        return [] if t is None else runs_of(t, since_ms)


def read_metric_history(db_path: Path, run_ids: list[str]) -> dict[str, list[MetricPoint]]:
    """Per run: (key, step, value, timestamp_ms) for every logged metric point."""
    with _sqlite(db_path) as t:
        return defaultdict(list) if t is None else metric_history_of(t, run_ids)


def read_model_versions(db_path: Path, name: str | None = None) -> list[StoreModelVersion]:
    """Registered model versions (newest first) with their aliases and tags."""
    with _sqlite(db_path) as t:
        return [] if t is None else model_versions_of(t, name)


def read_aliases(db_path: Path, name: str) -> dict[str, int]:
    with _sqlite(db_path) as t:
        return {} if t is None else aliases_of(t, name)


def read_latest_metrics(db_path: Path, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """Per run in `run_ids`: its latest value of each metric."""
    with _sqlite(db_path) as t:
        return {} if t is None else latest_metrics_of(t, run_ids)


def read_version_tags(db_path: Path, name: str, keys: Iterable[str]) -> list[tuple[int, str, str]]:
    """(version, key, value) of model `name`'s version tags with a key in `keys`."""
    with _sqlite(db_path) as t:
        return [] if t is None else version_tags_of(t, name, keys)


def running_run_ids(db_path: Path, tag: str, value: str, run_id: str | None = None) -> list[str]:
    """Runs MLflow still has as RUNNING: `run_id`, and those tagged `tag` = `value`."""
    with _sqlite(db_path) as t:
        return [] if t is None else running_ids_of(t, tag, value, run_id)


def _one(db_path: Path, table: str, sql: str, arg: str) -> str | None:
    try:
        with _sqlite(db_path) as t:
            return None if t is None else one_of(t, table, sql, arg)
    except sqlite3.Error:
        return None


def logged_model_location(db_path: Path, model_id: str) -> str | None:
    """Where logged model `model_id` (m-...) keeps its artifacts (None: not in the store)."""
    return _one(db_path, "logged_models", LOGGED_MODEL_SQL, model_id)


def run_artifact_uri(db_path: Path, run_id: str) -> str | None:
    """Run `run_id`'s artifact root (None: not in the store)."""
    return _one(db_path, "runs", RUN_ARTIFACT_SQL, run_id)


class SqliteReader:
    """The StoreReader of a SQLite store: the functions above on one db path."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.location = str(self.db_path)

    def read_runs(self, since_ms: int | None = None) -> list[StoreRun]:
        return read_runs(self.db_path, since_ms)

    def read_metric_history(self, run_ids: list[str]) -> dict[str, list[MetricPoint]]:
        return read_metric_history(self.db_path, run_ids)

    def read_model_versions(self, name: str | None = None) -> list[StoreModelVersion]:
        return read_model_versions(self.db_path, name)

    def read_aliases(self, name: str) -> dict[str, int]:
        return read_aliases(self.db_path, name)

    def read_latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, float]]:
        return read_latest_metrics(self.db_path, run_ids)

    def read_version_tags(self, name: str, keys: Iterable[str]) -> list[tuple[int, str, str]]:
        return read_version_tags(self.db_path, name, keys)

    def running_run_ids(self, tag: str, value: str, run_id: str | None = None) -> list[str]:
        return running_run_ids(self.db_path, tag, value, run_id)

    def logged_model_location(self, model_id: str) -> str | None:
        return logged_model_location(self.db_path, model_id)

    def run_artifact_uri(self, run_id: str) -> str | None:
        return run_artifact_uri(self.db_path, run_id)


@dataclass
class StoreShape:
    tables: set[str]
    revision: str | None  # alembic's schema revision
    user_data: bool  # anything a user made (runs, models, experiments but the Default)


def read_shape(db_path: Path, user_tables: Iterable[str]) -> StoreShape:
    """The store's tables, schema revision and whether any of `user_tables` (or a non-default
    experiment) holds a row. Raises sqlite3.DatabaseError when the file is not a database."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return StoreShape(set(), None, False)
    con = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        revision = None
        if "alembic_version" in tables:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        user_data = any(
            con.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in user_tables if t in tables
        )
        if "experiments" in tables:  # the Default experiment (id 0) is MLflow's own
            sql = "SELECT 1 FROM experiments WHERE experiment_id != 0 LIMIT 1"
            user_data = user_data or con.execute(sql).fetchone() is not None
    finally:
        con.close()
    return StoreShape(tables, revision, user_data)
