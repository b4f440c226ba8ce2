"""Append-only Parquet logs, Hive-partitioned, written atomically, compacted when files pile up.

Each append writes a whole new file under a temp name in the same folder and renames it into
place, so a reader (DuckDB globbing `**/*.parquet`) never sees half a file. Compaction merges a
partition's small files into one, again through temp file + rename, then deletes the parts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
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
    def glob(self) -> str:
        return str(self.folder / "**" / "*.parquet")

    def files(self) -> list[Path]:
        return sorted(self.folder.rglob("*.parquet")) if self.folder.exists() else []

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
        if len(list(folder.glob("*.parquet"))) >= COMPACT_AT:
            self.compact(folder)
        return written

    def compact(self, folder: Path | None = None) -> int:
        """Merge the small files of each partition into one. Returns files removed."""
        folders = [folder] if folder else sorted({f.parent for f in self.files()})
        removed = 0
        for part in folders:
            files = sorted(part.glob("*.parquet"))
            if len(files) < 2:
                continue
            merged = pa.concat_tables([pq.read_table(f, partitioning=None) for f in files])
            name = f"compact-{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
            _atomic_write(merged.select(self.schema.names).cast(self.schema), part, name)
            for f in files:
                f.unlink(missing_ok=True)
                removed += 1
        return removed
