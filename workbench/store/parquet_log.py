"""Append-only Parquet logs, Hive-partitioned, written atomically, compacted when files pile up.

Each append writes a whole new file under a temp name in the same folder and renames it into
place, so no reader ever sees half a file. A manifest (`_manifest.json`, replaced atomically
under a file lock) lists the live files; Workbench's DuckDB views read exactly those.
Compaction merges a partition's files into one and swaps them in the manifest in one step, so
a reader sees either the parts or the merged file, never both and never neither. The parts
are deleted only after a grace period, so a query that listed them a moment earlier can
still open them.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.project import LogsRoot

if TYPE_CHECKING:
    import pyarrow as pa

    from workbench.store.s3_log import S3Log

#: Each log's columns as (name, type). Types: string, int64, float64, timestamp_us,
#: timestamp_ms (UTC), bool, map<string,float64>, map<string,string>, list<float64>,
#: list<string>.
#: Plain data, so that readers (the DuckDB views) do not import pyarrow; writers build Arrow
#: schemas from it lazily.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "audit": (
        ("ts", "timestamp_us"),
        ("actor", "string"),
        ("action", "string"),
        ("model", "string"),
        ("alias", "string"),
        ("from_version", "int64"),
        ("to_version", "int64"),
        ("reason", "string"),
        ("details", "string"),
        # The hash chain (registry/audit_chain.py); null in rows from before it.
        ("seq", "int64"),
        ("prev_hash", "string"),
        ("hash", "string"),
    ),
    "approvals": (  # one row per event of an approval request (registry/approvals.py)
        ("ts", "timestamp_us"),
        ("request_id", "string"),
        ("event", "string"),  # requested | approved | rejected | executed | expired
        ("user", "string"),  # who (the bare user name)
        ("model", "string"),
        ("alias", "string"),
        ("version", "int64"),
        ("reason", "string"),
        ("details", "string"),  # JSON: the request itself on `requested`
    ),
    "jobs": (
        ("ts", "timestamp_us"),
        ("job_id", "string"),
        ("kind", "string"),
        ("runner", "string"),
        ("status", "string"),
        ("run_id", "string"),
        ("handle", "string"),
        ("started_at", "timestamp_us"),
        ("ended_at", "timestamp_us"),
        ("exit_code", "int64"),
        ("reason", "string"),
        ("log_path", "string"),
        ("args", "string"),
    ),
    "runs": (
        ("synced_at", "timestamp_us"),
        ("run_id", "string"),
        ("experiment_id", "string"),
        ("experiment", "string"),
        ("run_name", "string"),
        ("status", "string"),
        ("lifecycle_stage", "string"),
        ("user", "string"),
        ("source", "string"),
        ("start_time", "timestamp_ms"),
        ("end_time", "timestamp_ms"),
        ("metrics", "map<string,float64>"),
        ("params", "map<string,string>"),
        ("tags", "map<string,string>"),
        ("fingerprint", "string"),
    ),
    "predictions": (
        ("ts", "timestamp_us"),
        ("request_id", "string"),
        ("model", "string"),
        ("version", "int64"),
        ("variant", "string"),
        ("features", "string"),  # the request's record, as JSON
        ("output", "float64"),  # null when the request failed
        ("latency_ms", "float64"),
        ("status", "int64"),  # the HTTP status the request got (200, 422, 500, ...)
        ("error", "string"),  # one line, when it failed
        # issue 14 (nullable; older files lack them): segment feature -> group label
        ("segments", "map<string,string>"),
        # Issue 14, nullable (files from before lack them): the JSON of the id column and
        # [serving] passthrough fields the request carried (null when none).
        ("passthrough", "string"),
        # Issue 14, nullable: the record's features typed, in its version's profile order
        # (drift/log_layout.py), for monitoring wide traffic without decoding the JSON.
        ("numeric", "list<float64>"),
        ("categorical", "list<string>"),
        # true when the lists hold the row's version's layout, else null (never false): a
        # reader skips the JSON of whole row groups by this column's statistics
        ("laid_out", "bool"),
    ),
    "drift": (  # one row per feature per check; feature "__prediction__" is prediction drift
        ("ts", "timestamp_us"),
        ("check_id", "string"),
        ("model", "string"),
        ("version", "int64"),
        ("source", "string"),  # "predictions" or the data file checked
        ("window", "string"),  # e.g. "24h", "last 5000"
        ("feature", "string"),
        ("kind", "string"),  # numeric | categorical | prediction | metric
        ("test", "string"),  # the test that decided the status
        ("score", "float64"),
        ("warn", "float64"),
        ("alert", "float64"),
        ("status", "string"),  # ok | warn | alert | no_data
        ("psi", "float64"),
        ("kl", "float64"),
        ("js", "float64"),
        ("wasserstein", "float64"),
        ("ks", "float64"),
        ("ks_p", "float64"),
        ("chi2", "float64"),
        ("chi2_p", "float64"),
        ("n_ref", "int64"),
        ("n_cur", "int64"),
        ("missing", "int64"),
        ("nonfinite", "int64"),
    ),
    "labels": (
        ("ts", "timestamp_us"),
        ("request_id", "string"),
        ("label", "float64"),
        ("source", "string"),
    ),
    "metrics": (
        ("synced_at", "timestamp_us"),
        ("run_id", "string"),
        ("key", "string"),
        ("step", "int64"),
        ("value", "float64"),
        ("timestamp", "timestamp_ms"),
    ),
}

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "timestamp_us": "TIMESTAMPTZ",
    "timestamp_ms": "TIMESTAMPTZ",
    "map<string,float64>": "MAP(VARCHAR, DOUBLE)",
    "map<string,string>": "MAP(VARCHAR, VARCHAR)",
    "bool": "BOOLEAN",
    "list<float64>": "DOUBLE[]",
    "list<string>": "VARCHAR[]",
}


def _arrow_type(spec: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "timestamp_us": pa.timestamp("us", tz="UTC"),
        "timestamp_ms": pa.timestamp("ms", tz="UTC"),
        "map<string,float64>": pa.map_(pa.string(), pa.float64()),
        "map<string,string>": pa.map_(pa.string(), pa.string()),
        "bool": pa.bool_(),
        "list<float64>": pa.list_(pa.float64()),
        "list<string>": pa.list_(pa.string()),
    }[spec]


class _ArrowSchemas(Mapping[str, "pa.Schema"]):
    """`SCHEMAS[log]`: the Arrow schema of a log, built (and pyarrow imported) on first use."""

    def __init__(self) -> None:
        self._built: dict[str, pa.Schema] = {}

    def __getitem__(self, log: str) -> pa.Schema:
        if log not in self._built:
            import pyarrow as pa

            self._built[log] = pa.schema([(n, _arrow_type(t)) for n, t in COLUMNS[log]])
        return self._built[log]

    def __iter__(self) -> Iterator[str]:
        return iter(COLUMNS)

    def __len__(self) -> int:
        return len(COLUMNS)


SCHEMAS = _ArrowSchemas()

#: The logs `[logs] uri` puts in S3, written by every server, monitor, job and CI run of a
#: team. `runs` and `metrics` stay local: they are each Workbench's cache of the tracking
#: store (rebuilt from it), and sharing them would only have every Workbench write the same rows.
SHARED_LOGS = frozenset({"predictions", "labels", "drift", "jobs", "audit", "approvals"})

#: How many files a partition may hold before `compact` merges them.
COMPACT_AT = 32
#: Seconds a file replaced by compaction stays on disk for queries that listed it already.
RETIRE_GRACE_S = 120.0
MANIFEST = "_manifest.json"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _atomic_write(table: pa.Table, folder: Path, name: str) -> Path:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _to_table(log: str, rows: Iterable[Mapping[str, Any]] | pa.Table) -> pa.Table:
    import pyarrow as pa

    schema = SCHEMAS[log]
    if isinstance(rows, pa.Table):
        return _conform(rows, schema)
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        unknown = set(row) - set(cols)
        if unknown:
            raise ValueError(f"log {log!r} has no column(s) {sorted(unknown)}")
        for name in schema.names:
            value = row.get(name)
            if isinstance(value, Mapping):
                value = list(value.items())
            cols[name].append(value)
    return pa.table(cols, schema=schema)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` in `schema`; columns it lacks (a file from before they were added) are null."""
    import pyarrow as pa

    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)


def as_root(logs_root: Path | LogsRoot) -> LogsRoot:
    return logs_root if isinstance(logs_root, LogsRoot) else LogsRoot(logs_root)


class ParquetLog:
    """One log (`audit`, `jobs`, ...) under `<logs>/<name>/`, or in S3 when the root has a
    `uri` and the log is one of SHARED_LOGS (then `remote` does the work, see s3_log.py)."""

    def __init__(self, logs_root: Path | LogsRoot, name: str) -> None:
        if name not in COLUMNS:
            raise KeyError(f"unknown log {name!r}")
        root = as_root(logs_root)
        self.name = name
        self.folder = root.local / name  # local even for a shared log (put_aside's fallback)
        self.remote: S3Log | None = None
        if root.uri is not None and name in SHARED_LOGS:
            from workbench.store.s3_log import S3Log

            self.remote = S3Log(root, name)

    @property
    def schema(self) -> pa.Schema:
        return SCHEMAS[self.name]

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "_manifest.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_manifest(self) -> dict[str, Any]:
        try:
            data = json.loads(self.manifest_path.read_text())
            return {"files": list(data.get("files", [])), "retired": list(data.get("retired", []))}
        except FileNotFoundError:
            # No manifest yet (a new log, or files written by hand): adopt what is there.
            found = sorted(self.folder.rglob("*.parquet")) if self.folder.exists() else []
            return {"files": [str(f.relative_to(self.folder)) for f in found], "retired": []}

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.folder / f"_manifest.{uuid.uuid4().hex}.tmp"
        try:
            tmp.write_text(json.dumps(manifest))
            os.replace(tmp, self.manifest_path)
        finally:
            tmp.unlink(missing_ok=True)

    def stamp(self) -> tuple[int, int] | None:
        """Changes whenever the set of live files changes (for readers caching views)."""
        try:
            st = self.manifest_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def uris(self) -> list[str]:
        """The live files as paths (local) or s3:// URIs (shared)."""
        if self.remote is not None:
            return self.remote.uris()
        return [str(f) for f in self.files()]

    def files(self) -> list[Path]:
        """The live files of a local log, as listed by the manifest."""
        if self.remote is not None:
            raise TypeError(f"log {self.name!r} is in S3: use uris()")
        if not self.folder.exists():
            return []
        return sorted(self.folder / rel for rel in self._read_manifest()["files"])

    def append(
        self,
        rows: Iterable[Mapping[str, Any]] | pa.Table,
        partition: Mapping[str, str] | None = None,
    ) -> Path | str | None:
        """Write rows as one new file (its path, or s3:// URI). Partition defaults to
        `date=YYYY-MM-DD` (UTC)."""
        table = _to_table(self.name, rows)
        if table.num_rows == 0:
            return None
        part = partition or {"date": utcnow().strftime("%Y-%m-%d")}
        if self.remote is not None:
            return self.remote.append(table, part)
        folder = self.folder.joinpath(*(f"{k}={v}" for k, v in part.items()))
        name = f"part-{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
        written = _atomic_write(table, folder, name)
        rel = str(written.relative_to(self.folder))
        with self._locked():
            manifest = self._read_manifest()
            if rel not in manifest["files"]:
                manifest["files"].append(rel)
            prefix = str(folder.relative_to(self.folder)) + os.sep
            in_partition = sum(1 for f in manifest["files"] if f.startswith(prefix))
            if in_partition >= COMPACT_AT:
                self._compact(manifest, [folder])
            self._write_manifest(manifest)
        return written

    def put_aside(self, name: str, text: str) -> str:
        """Rows set aside (JSON lines, pure ASCII) as `_quarantine/<name>` beside the log: in
        S3 for a shared log (one PUT), else a local file written whole then renamed. When S3
        refuses it (the outage that made the rows fail, most likely), the local folder takes
        it. Returns where it went; raises OSError when both fail."""
        body = text.encode("ascii", "backslashreplace")
        if self.remote is not None:
            from workbench.errors import DataError

            try:
                return self.remote.put_aside(name, body)
            except DataError:
                pass
        folder = self.folder / "_quarantine"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            tmp.write_bytes(body)
            os.replace(tmp, folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        return str(folder / name)

    def compact(self, folder: Path | None = None) -> int:
        """Merge the files of each partition into one. Returns how many files were merged."""
        if self.remote is not None:
            return self.remote.compact()
        with self._locked():
            manifest = self._read_manifest()
            live = [self.folder / f for f in manifest["files"]]
            folders = [folder] if folder else sorted({f.parent for f in live})
            merged = self._compact(manifest, folders)
            self._write_manifest(manifest)
        return merged

    def _compact(self, manifest: dict[str, Any], folders: list[Path]) -> int:
        """Merge under the lock: write the merged file, then swap it for its parts in
        `manifest` (the caller writes it). Also deletes files retired long enough ago."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        now = time.time()
        keep = []
        for entry in manifest["retired"]:
            if now - entry["at"] > RETIRE_GRACE_S:
                (self.folder / entry["path"]).unlink(missing_ok=True)
            else:
                keep.append(entry)
        manifest["retired"] = keep
        merged_count = 0
        for part in folders:
            prefix = str(part.relative_to(self.folder)) + os.sep
            rels = sorted(f for f in manifest["files"] if f.startswith(prefix))
            if len(rels) < 2:
                continue
            tables = [pq.read_table(self.folder / f, partitioning=None) for f in rels]
            merged = pa.concat_tables([_conform(t, self.schema) for t in tables])
            name = f"compact-{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
            out = _atomic_write(merged, part, name)
            gone = set(rels)
            manifest["files"] = [f for f in manifest["files"] if f not in gone]
            manifest["files"].append(str(out.relative_to(self.folder)))
            manifest["retired"] += [{"path": f, "at": now} for f in rels]
            merged_count += len(rels)
        return merged_count
