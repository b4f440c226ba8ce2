"""Read MLflow's SQLite store directly, read-only, without importing mlflow.

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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


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
        needed = set(needs)
        if needed:
            try:
                rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                needed -= {r[0] for r in rows}
            except sqlite3.DatabaseError:  # not a database yet: an empty or torn file
                pass
        yield None if needed else con
    finally:
        con.close()


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
    ).fetchone()
    return row is not None


def read_runs(db_path: Path) -> list[StoreRun]:
    """Every run in the store (all experiments), with latest metrics, params and tags."""
    with connect_ro(db_path, ("runs", "experiments", "latest_metrics", "params", "tags")) as con:
        if con is None:
            return []
        runs: dict[str, StoreRun] = {}
        for row in con.execute(
            "SELECT r.run_uuid, r.experiment_id, e.name, r.name, r.status, r.lifecycle_stage, "
            "r.user_id, r.source_name, r.start_time, r.end_time "
            "FROM runs r LEFT JOIN experiments e ON e.experiment_id = r.experiment_id"
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
        for key, value, ts, is_nan, run_id in con.execute(
            "SELECT key, value, timestamp, is_nan, run_uuid FROM latest_metrics"
        ):
            run = runs.get(run_id)
            if run is not None:
                run.metrics[key] = float("nan") if is_nan else float(value)
                run.metrics_stamp = max(run.metrics_stamp, ts or 0)
        for key, value, run_id in con.execute("SELECT key, value, run_uuid FROM params"):
            if run_id in runs:
                runs[run_id].params[key] = value
        for key, value, run_id in con.execute("SELECT key, value, run_uuid FROM tags"):
            if run_id in runs:
                runs[run_id].tags[key] = value if value is not None else ""
        return list(runs.values())


def read_metric_history(
    db_path: Path, run_ids: list[str]
) -> dict[str, list[tuple[str, int, float, int]]]:
    """Per run: (key, step, value, timestamp_ms) for every logged metric point."""
    out: dict[str, list[tuple[str, int, float, int]]] = defaultdict(list)
    if not run_ids:
        return out
    with connect_ro(db_path, ("metrics",)) as con:
        if con is None:
            return out
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for run_id, key, step, value, ts, is_nan in con.execute(
                f"SELECT run_uuid, key, step, value, timestamp, is_nan FROM metrics "
                f"WHERE run_uuid IN ({marks}) ORDER BY run_uuid, key, step, timestamp",
                chunk,
            ):
                out[run_id].append((key, int(step), float("nan") if is_nan else float(value), ts))
    return out


def read_model_versions(db_path: Path, name: str | None = None) -> list[StoreModelVersion]:
    """Registered model versions (newest first) with their aliases and tags."""
    with connect_ro(db_path, ("model_versions", "registered_model_aliases")) as con:
        if con is None:
            return []
        where, args = ("WHERE name = ?", [name]) if name else ("", [])
        versions: dict[tuple[str, int], StoreModelVersion] = {}
        for row in con.execute(
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
        for alias, version, mname in con.execute(
            f"SELECT alias, version, name FROM registered_model_aliases {where}", args
        ):
            mv = versions.get((mname, int(version)))
            if mv is not None:
                mv.aliases.append(alias)
        if _has_table(con, "model_version_tags"):
            for key, value, mname, version in con.execute(
                f"SELECT key, value, name, version FROM model_version_tags {where}", args
            ):
                mv = versions.get((mname, int(version)))
                if mv is not None:
                    mv.tags[key] = value
        return list(versions.values())


def read_aliases(db_path: Path, name: str) -> dict[str, int]:
    with connect_ro(db_path, ("registered_model_aliases",)) as con:
        if con is None:
            return {}
        return {
            alias: int(version)
            for alias, version in con.execute(
                "SELECT alias, version FROM registered_model_aliases WHERE name = ?", (name,)
            )
        }


def read_latest_metrics(db_path: Path, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """Per run in `run_ids`: its latest value of each metric."""
    with connect_ro(db_path, ("latest_metrics",)) as con:
        if con is None or not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        out: dict[str, dict[str, float]] = {}
        for run_id, key, value, is_nan in con.execute(
            f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})",
            run_ids,
        ):
            out.setdefault(run_id, {})[key] = float("nan") if is_nan else float(value)
        return out


def read_version_tags(db_path: Path, name: str, keys: Iterable[str]) -> list[tuple[int, str, str]]:
    """(version, key, value) of model `name`'s version tags with a key in `keys`."""
    wanted = list(keys)
    with connect_ro(db_path, ("model_version_tags",)) as con:
        if con is None or not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        sql = "SELECT version, key, value FROM model_version_tags WHERE name = ? AND key IN "
        sql += f"({marks})"
        rows = con.execute(sql, (name, *wanted)).fetchall()
    return [(int(version), str(key), value) for version, key, value in rows]


def running_run_ids(db_path: Path, tag: str, value: str, run_id: str | None = None) -> list[str]:
    """Runs MLflow still has as RUNNING: `run_id`, and those tagged `tag` = `value`."""
    with connect_ro(db_path, ("runs", "tags")) as con:
        if con is None:
            return []
        rows = con.execute(
            "SELECT run_uuid FROM runs WHERE status = 'RUNNING' AND (run_uuid = ? OR run_uuid IN "
            "(SELECT run_uuid FROM tags WHERE key = ? AND value = ?))",
            (run_id or "", tag, value),
        ).fetchall()
    return [r[0] for r in rows]


def _one(db_path: Path, sql: str, arg: str) -> str | None:
    try:
        with connect_ro(db_path) as con:
            if con is None:
                return None
            row = con.execute(sql, (arg,)).fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row and row[0] is not None else None


def logged_model_location(db_path: Path, model_id: str) -> str | None:
    """Where logged model `model_id` (m-...) keeps its artifacts (None: not in the store)."""
    return _one(db_path, "SELECT artifact_location FROM logged_models WHERE model_id = ?", model_id)


def run_artifact_uri(db_path: Path, run_id: str) -> str | None:
    """Run `run_id`'s artifact root (None: not in the store)."""
    return _one(db_path, "SELECT artifact_uri FROM runs WHERE run_uuid = ?", run_id)


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
