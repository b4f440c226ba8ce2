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
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: The logs and their schemas. Columns named here are the contract with the DuckDB views.
SCHEMAS: dict[str, pa.Schema] = {
    "audit": pa.schema(
        [
            ("ts", pa.timestamp("us", tz="UTC")),
            ("actor", pa.string()),
            ("action", pa.string()),
            ("model", pa.string()),
            ("alias", pa.string()),
            ("from_version", pa.int64()),
            ("to_version", pa.int64()),
            ("reason", pa.string()),
            ("details", pa.string()),
        ]
    ),
    "jobs": pa.schema(
        [
            ("ts", pa.timestamp("us", tz="UTC")),
            ("job_id", pa.string()),
            ("kind", pa.string()),
            ("runner", pa.string()),
            ("status", pa.string()),
            ("run_id", pa.string()),
            ("handle", pa.string()),
            ("started_at", pa.timestamp("us", tz="UTC")),
            ("ended_at", pa.timestamp("us", tz="UTC")),
            ("exit_code", pa.int64()),
            ("reason", pa.string()),
            ("log_path", pa.string()),
        ]
    ),
    "runs": pa.schema(
        [
            ("synced_at", pa.timestamp("us", tz="UTC")),
            ("run_id", pa.string()),
            ("experiment_id", pa.string()),
            ("experiment", pa.string()),
            ("run_name", pa.string()),
            ("status", pa.string()),
            ("lifecycle_stage", pa.string()),
            ("user", pa.string()),
            ("source", pa.string()),
            ("start_time", pa.timestamp("ms", tz="UTC")),
            ("end_time", pa.timestamp("ms", tz="UTC")),
            ("metrics", pa.map_(pa.string(), pa.float64())),
            ("params", pa.map_(pa.string(), pa.string())),
            ("tags", pa.map_(pa.string(), pa.string())),
            ("fingerprint", pa.string()),
        ]
    ),
    "metrics": pa.schema(
        [
            ("synced_at", pa.timestamp("us", tz="UTC")),
            ("run_id", pa.string()),
            ("key", pa.string()),
            ("step", pa.int64()),
            ("value", pa.float64()),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
        ]
    ),
}

#: How many files a partition may hold before `compact` merges them.
COMPACT_AT = 32
#: Seconds a file replaced by compaction stays on disk for queries that listed it already.
RETIRE_GRACE_S = 120.0
MANIFEST = "_manifest.json"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _atomic_write(table: pa.Table, folder: Path, name: str) -> Path:
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
    schema = SCHEMAS[log]
    if isinstance(rows, pa.Table):
        return rows.select(schema.names).cast(schema)
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


class ParquetLog:
    """One log (`audit`, `jobs`, ...) under `<logs>/<name>/`."""

    def __init__(self, logs_root: Path, name: str) -> None:
        if name not in SCHEMAS:
            raise KeyError(f"unknown log {name!r}")
        self.name = name
        self.folder = logs_root / name
        self.schema = SCHEMAS[name]

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

    def files(self) -> list[Path]:
        """The live files, as listed by the manifest."""
        if not self.folder.exists():
            return []
        return sorted(self.folder / rel for rel in self._read_manifest()["files"])

    def append(
        self,
        rows: Iterable[Mapping[str, Any]] | pa.Table,
        partition: Mapping[str, str] | None = None,
    ) -> Path | None:
        """Write rows as one new file. Partition defaults to `date=YYYY-MM-DD` (UTC)."""
        table = _to_table(self.name, rows)
        if table.num_rows == 0:
            return None
        part = partition or {"date": utcnow().strftime("%Y-%m-%d")}
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

    def compact(self, folder: Path | None = None) -> int:
        """Merge the files of each partition into one. Returns how many files were merged."""
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
            merged = pa.concat_tables(
                [t.select(self.schema.names).cast(self.schema) for t in tables]
            )
            name = f"compact-{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
            out = _atomic_write(merged, part, name)
            gone = set(rels)
            manifest["files"] = [f for f in manifest["files"] if f not in gone]
            manifest["files"].append(str(out.relative_to(self.folder)))
            manifest["retired"] += [{"path": f, "at": now} for f in rels]
            merged_count += len(rels)
        return merged_count
