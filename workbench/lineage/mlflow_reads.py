"""What lineage reads of the MLflow store, without importing mlflow: one run (params, metrics,
tags), its dataset inputs, the runs of a dataset or a job, ids by prefix.

A SQL store (the embedded SQLite file, PostgreSQL) is asked exactly these rows through MLflow's
own tables (`workbench.store.mlflow_tables.Tables`); a tracking server over REST has no such
queries, so its runs are read once (`StoreReader.read_runs`) and filtered here, without the
dataset inputs (the run's `workbench.data_digest` tag still names the snapshot).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from workbench.project import Project
from workbench.store import backends
from workbench.store.mlflow_tables import SqliteReader, StoreModelVersion, StoreRun, Tables
from workbench.store.reader import StoreReader

T = TypeVar("T")

DIGEST_TAG = "workbench.data_digest"
JOB_TAG = "workbench.job_id"


@dataclass
class DatasetInput:
    name: str
    digest: str
    source_type: str | None = None
    source: str | None = None  # JSON, e.g. {"uri": "/path/data.parquet"}
    schema: str | None = None  # JSON, MLflow's {"mlflow_colspec": [...]}
    profile: str | None = None  # JSON, e.g. {"num_rows": 4800, ...}
    tags: dict[str, str] = field(default_factory=dict)  # mlflow.data.context: training

    def path(self) -> str | None:
        try:
            uri = json.loads(self.source or "{}").get("uri")
        except (ValueError, AttributeError):
            return self.source
        return str(uri) if uri else None

    def columns(self) -> list[dict[str, Any]]:
        """[{name, type}] from the schema, [] when it cannot be read."""
        try:
            spec = json.loads(self.schema or "{}").get("mlflow_colspec") or []
            return [{"name": str(c.get("name")), "type": str(c.get("type"))} for c in spec]
        except (ValueError, AttributeError, TypeError):
            return []

    def rows(self) -> int | None:
        try:
            n = json.loads(self.profile or "{}").get("num_rows")
        except (ValueError, AttributeError):
            return None
        return int(n) if isinstance(n, int | float) else None


class _Sqlite:
    """One read-only connection for a build; its table names read once."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con
        self._tables: set[str] | None = None

    def rows(self, sql: str, args: Sequence[object] = ()) -> Iterable[tuple[Any, ...]]:
        return self.con.execute(sql, args)

    def has(self, *tables: str) -> bool:
        if self._tables is None:
            rows = self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            self._tables = {r[0] for r in rows}
        return set(tables) <= self._tables


_CHUNK = 500  # ids per IN (...): SQLite allows 999 parameters (older builds)


def _marks(ids: Sequence[str]) -> str:
    return ",".join("?" * len(ids))


def _runs_of(t: Tables, run_ids: Sequence[str]) -> dict[str, StoreRun]:
    """The runs of `run_ids` (those that exist), each with its params, tags and metrics: four
    queries for them all."""
    if not t.has("runs", "params", "tags", "latest_metrics") or not run_ids:
        return {}
    found: dict[str, StoreRun] = {}
    for start in range(0, len(run_ids), _CHUNK):
        ids = list(run_ids[start : start + _CHUNK])
        for row in t.rows(
            "SELECT r.run_uuid, r.experiment_id, e.name, r.name, r.status, r.lifecycle_stage,"
            " r.user_id, r.source_name, r.start_time, r.end_time FROM runs r LEFT JOIN"
            " experiments e ON e.experiment_id = r.experiment_id"
            f" WHERE r.run_uuid IN ({_marks(ids)})",
            ids,
        ):
            found[row[0]] = StoreRun(row[0], str(row[1]), row[2] or "", *row[3:10])
        where = f"WHERE run_uuid IN ({_marks(ids)})"
        for run_id, key, value in t.rows(f"SELECT run_uuid, key, value FROM params {where}", ids):
            found[run_id].params[key] = value
        for run_id, key, value in t.rows(f"SELECT run_uuid, key, value FROM tags {where}", ids):
            found[run_id].tags[key] = value or ""
        sql = f"SELECT run_uuid, key, value, is_nan FROM latest_metrics {where}"
        for run_id, key, value, is_nan in t.rows(sql, ids):
            found[run_id].metrics[key] = float("nan") if is_nan else float(value)
    return found


def _inputs_of(t: Tables, run_id: str) -> list[DatasetInput]:
    if not t.has("inputs", "datasets"):
        return []
    found: list[DatasetInput] = []
    for row in t.rows(
        "SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, "
        "d.dataset_schema, d.dataset_profile FROM inputs i JOIN datasets d "
        "ON d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' "
        "AND i.destination_type = 'RUN' AND i.destination_id = ?",
        (run_id,),
    ):
        item = DatasetInput(row[1], row[2], *row[3:7])
        if t.has("input_tags"):
            sql = "SELECT name, value FROM input_tags WHERE input_uuid = ?"
            item.tags = {k: v for k, v in t.rows(sql, (row[0],))}
        found.append(item)
    return found


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _runs_like(t: Tables, prefix: str) -> list[str]:
    if not t.has("runs"):
        return []
    sql = "SELECT run_uuid FROM runs WHERE run_uuid LIKE ? ESCAPE '\\' LIMIT 2"
    return [r[0] for r in t.rows(sql, (_like(prefix),))]


def _digests_like(t: Tables, prefix: str) -> list[str]:
    found: set[str] = set()
    like = _like(prefix)
    if t.has("datasets"):
        sql = "SELECT DISTINCT digest FROM datasets WHERE digest LIKE ? ESCAPE '\\' LIMIT 2"
        found |= {r[0] for r in t.rows(sql, (like,))}
    if t.has("tags"):
        sql = "SELECT DISTINCT value FROM tags WHERE key = ? AND value LIKE ? ESCAPE '\\' LIMIT 2"
        found |= {r[0] for r in t.rows(sql, (DIGEST_TAG, like))}
    return sorted(found)


def _runs_of_digest(t: Tables, digest: str) -> list[str]:
    """The runs that read the snapshot `digest` (a dataset input or the digest tag), oldest
    first (by start time)."""
    if not t.has("runs"):
        return []
    parts, args = [], []
    if t.has("inputs", "datasets"):
        parts.append(
            "SELECT i.destination_id FROM inputs i JOIN datasets d ON d.dataset_uuid = "
            "i.source_id WHERE i.destination_type = 'RUN' AND d.digest = ?"
        )
        args.append(digest)
    if t.has("tags"):
        parts.append("SELECT run_uuid FROM tags WHERE key = ? AND value = ?")
        args += [DIGEST_TAG, digest]
    if not parts:
        return []
    sql = (
        f"SELECT run_uuid FROM runs WHERE run_uuid IN ({' UNION '.join(parts)}) "
        "ORDER BY start_time, run_uuid"
    )
    return [r[0] for r in t.rows(sql, args)]


def _tag_of(t: Tables, run_ids: Sequence[str], key: str) -> dict[str, str]:
    """run id -> the value of its tag `key`, for those of `run_ids` that have it."""
    if not t.has("tags") or not run_ids:
        return {}
    found: dict[str, str] = {}
    for start in range(0, len(run_ids), _CHUNK):
        ids = list(run_ids[start : start + _CHUNK])
        sql = f"SELECT run_uuid, value FROM tags WHERE key = ? AND run_uuid IN ({_marks(ids)})"
        found.update({r[0]: r[1] or "" for r in t.rows(sql, [key, *ids])})
    return found


def _runs_tagged(t: Tables, key: str, value: str) -> list[str]:
    if not t.has("tags"):
        return []
    return [
        r[0] for r in t.rows("SELECT run_uuid FROM tags WHERE key = ? AND value = ?", (key, value))
    ]


class MlflowReads:
    """The reads of one lineage build (nothing kept between builds)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.reader: StoreReader = backends.reader_for(project)
        self.registry: StoreReader = backends.reader_for(project, registry=True)
        self._all: dict[str, StoreRun] | None = None
        self._versions: dict[str, list[StoreModelVersion]] = {}
        self._runs: dict[str, StoreRun | None] = {}
        self._digests: dict[str, list[str]] = {}
        self._con: _Sqlite | None = None
        self._opened = False

    def close(self) -> None:
        if self._con is not None:
            self._con.con.close()
            self._con = None

    def _sqlite(self, db_path: Path) -> _Sqlite | None:
        """The build's one read-only connection to the SQLite store (None: no store yet)."""
        if not self._opened:
            self._opened = True
            if db_path.exists():
                # as_uri() percent-encodes the path: a '#' or '%' in a folder name is kept.
                uri = f"{db_path.resolve().as_uri()}?mode=ro"
                self._con = _Sqlite(sqlite3.connect(uri, uri=True, timeout=10))
        return self._con

    def _sql(self, fn: Callable[[Tables], T], empty: T) -> T | None:
        """`fn` over the store's tables; None when the store has no SQL (a REST server)."""
        if isinstance(self.reader, SqliteReader):
            con = self._sqlite(self.reader.db_path)
            if con is None:
                return empty
            try:
                return fn(con)
            except sqlite3.DatabaseError:  # not a database yet: an empty or torn file
                return empty
        read = getattr(self.reader, "_read", None)  # SqlReader: one REPEATABLE READ snapshot
        if callable(read):
            result: T = read(fn, empty)
            return result
        return None

    def _every_run(self) -> dict[str, StoreRun]:
        if self._all is None:
            self._all = {r.run_id: r for r in self.reader.read_runs()}
        return self._all

    def run(self, run_id: str) -> StoreRun | None:
        self.prefetch([run_id])
        return self._runs.get(run_id)

    def prefetch(self, run_ids: Iterable[str]) -> None:
        """Read the runs of `run_ids` not read yet in one go (a node's neighbours)."""
        wanted = [r for r in dict.fromkeys(run_ids) if r not in self._runs]
        if not wanted:
            return
        empty: dict[str, StoreRun] = {}
        got = self._sql(lambda t: _runs_of(t, wanted), empty)
        if got is None:
            every = self._every_run()
            got = {r: every[r] for r in wanted if r in every}
        for run_id in wanted:
            self._runs[run_id] = got.get(run_id)

    def _has_sql(self) -> bool:
        return isinstance(self.reader, SqliteReader) or callable(
            getattr(self.reader, "_read", None)
        )

    def inputs(self, run_id: str) -> list[DatasetInput]:
        return self._sql(lambda t: _inputs_of(t, run_id), []) or []

    def runs_like(self, prefix: str) -> list[str]:
        none: list[str] = []
        got = self._sql(lambda t: _runs_like(t, prefix), none)
        if got is None:
            got = [r for r in self._every_run() if r.startswith(prefix)][:2]
        return got

    def digests_like(self, prefix: str) -> list[str]:
        none: list[str] = []
        got = self._sql(lambda t: _digests_like(t, prefix), none)
        if got is None:
            tagged = {r.tags.get(DIGEST_TAG, "") for r in self._every_run().values()}
            got = sorted(d for d in tagged if d and d.startswith(prefix))
        return got

    def runs_of_digest(self, digest: str) -> list[str]:
        """The runs that read the snapshot, oldest first."""
        if digest not in self._digests:
            none: list[str] = []
            got = self._sql(lambda t: _runs_of_digest(t, digest), none)
            if got is None:
                runs = [r for r in self._every_run().values() if r.tags.get(DIGEST_TAG) == digest]
                got = [r.run_id for r in sorted(runs, key=lambda r: r.start_time or 0)]
            self._digests[digest] = got
        return self._digests[digest]

    def tag_of(self, run_ids: Sequence[str], key: str) -> dict[str, str]:
        """run id -> its tag `key`, for the runs of `run_ids` that have it (one query)."""
        none: dict[str, str] = {}
        got = self._sql(lambda t: _tag_of(t, run_ids, key), none)
        if got is None:
            every = self._every_run()
            got = {r: every[r].tags[key] for r in run_ids if r in every and key in every[r].tags}
        return got

    def runs_of_job(self, job_id: str) -> list[str]:
        none: list[str] = []
        got = self._sql(lambda t: _runs_tagged(t, JOB_TAG, job_id), none)
        if got is None:
            got = [r.run_id for r in self._every_run().values() if r.tags.get(JOB_TAG) == job_id]
        return got

    def versions(self, model: str) -> list[StoreModelVersion]:
        """The model's versions, newest first (with aliases and tags)."""
        if model not in self._versions:
            self._versions[model] = self.registry.read_model_versions(model)
        return self._versions[model]

    def version(self, model: str, number: int) -> StoreModelVersion | None:
        return next((v for v in self.versions(model) if v.version == number), None)

    def versions_of_run(self, run_id: str) -> list[StoreModelVersion]:
        model = self.project.config.model_name
        return [v for v in self.versions(model) if v.run_id == run_id]
