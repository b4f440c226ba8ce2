"""Append-only Parquet logs (atomic writes, Hive partitions, compaction) and the DuckDB views."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.store import parquet_log
from workbench.store.db import Db
from workbench.store.parquet_log import SCHEMAS, ParquetLog, utcnow

ROWS_PER_APPEND = 5


def _audit_row(i: int, **kw: Any) -> dict[str, Any]:
    row = {
        "ts": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        "actor": "tester@host",
        "action": "promote",
        "model": "m",
        "alias": "production",
        "from_version": i,
        "to_version": i + 1,
        "reason": f"r{i}",
        "details": "{}",
    }
    row.update(kw)
    return row


def _batch(start: int, n: int = ROWS_PER_APPEND) -> list[dict[str, Any]]:
    return [_audit_row(start + k) for k in range(n)]


def _count(db: Db, view: str = "audit") -> int:
    return int(db.rows(f"SELECT count(*) AS n FROM {view}")[0]["n"])


# ---------------------------------------------------------------- append / partitions


def test_append_writes_a_hive_partition_readable_through_db(tmp_path: Path) -> None:
    log = ParquetLog(tmp_path, "audit")
    written = log.append(_batch(0))
    assert written is not None and written.exists()
    today = utcnow().strftime("%Y-%m-%d")
    assert written.parent == tmp_path / "audit" / f"date={today}"
    assert written.name.startswith("part-") and written.suffix == ".parquet"
    # The file itself holds the log's schema, the partition lives in the path only.
    assert pq.read_schema(written).names == SCHEMAS["audit"].names

    db = Db(tmp_path)
    rows = db.rows("SELECT * FROM audit")
    assert len(rows) == ROWS_PER_APPEND
    assert "date" not in rows[0]  # the view hides the partition column
    assert [r["reason"] for r in rows] == [f"r{i}" for i in range(ROWS_PER_APPEND)]
    assert rows[0]["from_version"] == 0 and rows[0]["to_version"] == 1
    assert rows[0]["ts"] == datetime(2025, 1, 1, tzinfo=UTC)


def test_explicit_partitions_are_all_read(tmp_path: Path) -> None:
    log = ParquetLog(tmp_path, "audit")
    log.append(_batch(0), partition={"date": "2024-01-01"})
    log.append(_batch(10), partition={"date": "2024-01-02"})
    assert {p.name for p in (tmp_path / "audit").iterdir() if p.is_dir()} == {
        "date=2024-01-01",
        "date=2024-01-02",
    }
    db = Db(tmp_path)
    assert _count(db) == 2 * ROWS_PER_APPEND
    # the audit view is ordered by ts
    ts = [r["ts"] for r in db.rows("SELECT ts FROM audit")]
    assert ts == sorted(ts)


def test_append_accepts_an_arrow_table_and_casts_it(tmp_path: Path) -> None:
    rows = _batch(0, 2)
    table = pa.Table.from_pylist(rows).append_column("extra", pa.array(["x", "y"]))
    table = table.set_column(
        table.schema.get_field_index("from_version"),
        "from_version",
        pa.array([1, 2], pa.int32()),  # cast to the log's int64
    )
    written = ParquetLog(tmp_path, "audit").append(table, partition={"date": "2025-01-01"})
    assert written is not None
    stored = pq.read_table(written, partitioning=None)
    assert stored.schema.equals(SCHEMAS["audit"])  # column order and types; extra dropped
    assert stored.column("from_version").to_pylist() == [1, 2]


def test_append_rejects_unknown_columns_and_skips_empty(tmp_path: Path) -> None:
    log = ParquetLog(tmp_path, "audit")
    with pytest.raises(ValueError, match="bogus"):
        log.append([{**_audit_row(0), "bogus": 1}])
    assert log.append([]) is None
    assert log.files() == []


def test_unknown_log_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        ParquetLog(tmp_path, "nope")


def test_map_columns_round_trip(tmp_path: Path) -> None:
    row = {
        "synced_at": utcnow(),
        "run_id": "r1",
        "experiment_id": "1",
        "experiment": "e",
        "run_name": "n",
        "status": "FINISHED",
        "lifecycle_stage": "active",
        "metrics": {"auc": 0.9, "logloss": 0.2},
        "params": {"lr": "0.1"},
        "tags": {},
        "fingerprint": "f",
    }
    ParquetLog(tmp_path, "runs").append([row])
    got = Db(tmp_path).rows("SELECT metrics['auc'] AS auc, params['lr'] AS lr FROM runs")
    assert got == [{"auc": 0.9, "lr": "0.1"}]


# ---------------------------------------------------------------- atomicity under readers


def test_concurrent_appends_leave_no_temp_files_and_readers_see_whole_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends (no compaction) race a reader: every listed file is complete, every count is a
    whole number of appends, counts never go down, and no temp file is left behind."""
    monkeypatch.setattr(parquet_log, "COMPACT_AT", 10**9)
    log = ParquetLog(tmp_path, "audit")
    db = Db(tmp_path)
    appends = 150
    started = [0]
    done = threading.Event()
    problems: list[str] = []
    counts: list[int] = []

    def writer() -> None:
        try:
            for i in range(appends):
                started[0] = i + 1
                log.append(_batch(i * ROWS_PER_APPEND))
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set():
            try:
                n = _count(db)
                if n % ROWS_PER_APPEND or n > started[0] * ROWS_PER_APPEND:
                    problems.append(f"count {n} with {started[0]} appends started")
                counts.append(n)
                for f in log.files():
                    rows = pq.read_table(f, partitioning=None).num_rows
                    if rows != ROWS_PER_APPEND:
                        problems.append(f"{f.name}: {rows} rows")
            except Exception as exc:  # any error is a failure of the atomic-write contract
                problems.append(repr(exc))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert problems == []
    assert counts == sorted(counts)
    assert _count(db) == appends * ROWS_PER_APPEND
    assert len(log.files()) == appends
    assert list(tmp_path.rglob("*.tmp")) == []
    assert all(not p.name.startswith(".") for p in tmp_path.rglob("*"))


def test_queries_never_error_while_appends_compact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_log, "COMPACT_AT", 4)  # compact often: many chances to race
    log = ParquetLog(tmp_path, "audit")
    db = Db(tmp_path)
    done = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        try:
            for i in range(400):
                if errors:
                    break  # the failure has shown itself; no need to go on
                log.append(_batch(i * ROWS_PER_APPEND))
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set():
            try:
                _count(db)
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_reader_never_sees_rows_twice_during_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = ParquetLog(tmp_path, "audit")
    folder = tmp_path / "audit" / "date=2025-01-01"
    for i in range(4):
        log.append(_batch(i * ROWS_PER_APPEND), partition={"date": "2025-01-01"})
    db = Db(tmp_path)
    seen: list[int] = []
    real_write = parquet_log._atomic_write

    def observed_write(table: pa.Table, where: Path, name: str) -> Path:
        out = real_write(table, where, name)
        if name.startswith("compact-"):
            seen.append(_count(db))  # what any reader sees right after the merged file lands
        return out

    monkeypatch.setattr(parquet_log, "_atomic_write", observed_write)
    assert log.compact(folder) == 4
    assert seen, "compaction did not write a merged file"
    assert seen == [4 * ROWS_PER_APPEND]


# ---------------------------------------------------------------- compaction


def test_compact_merges_each_partition_and_keeps_every_row(tmp_path: Path) -> None:
    log = ParquetLog(tmp_path, "audit")
    for i in range(3):
        log.append(_batch(i * 10), partition={"date": "2025-01-01"})
    for i in range(2):
        log.append(_batch(100 + i * 10), partition={"date": "2025-01-02"})
    log.append(_batch(500), partition={"date": "2025-01-03"})  # one file: left alone
    before = sorted(r["reason"] for r in Db(tmp_path).rows("SELECT reason FROM audit"))
    single = log.files()[-1]

    assert log.compact() == 5
    files = log.files()
    assert len(files) == 3
    assert {f.parent.name for f in files} == {
        "date=2025-01-01",
        "date=2025-01-02",
        "date=2025-01-03",
    }
    assert single in files
    after = sorted(r["reason"] for r in Db(tmp_path).rows("SELECT reason FROM audit"))
    assert after == before
    assert len(after) == 6 * ROWS_PER_APPEND
    merged = next(f for f in files if f.parent.name == "date=2025-01-01")
    assert merged.name.startswith("compact-")
    assert pq.read_table(merged, partitioning=None).schema.equals(SCHEMAS["audit"])
    assert log.compact() == 0  # nothing left to merge
    assert list(tmp_path.rglob("*.tmp")) == []


def test_append_compacts_when_files_pile_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_log, "COMPACT_AT", 6)
    log = ParquetLog(tmp_path, "audit")
    for i in range(5):
        log.append(_batch(i * ROWS_PER_APPEND), partition={"date": "2025-01-01"})
    assert len(log.files()) == 5
    log.append(_batch(50), partition={"date": "2025-01-01"})
    assert len(log.files()) == 1
    assert _count(Db(tmp_path)) == 6 * ROWS_PER_APPEND


# ---------------------------------------------------------------- metrics view


def _metric_rows(run: str, n: int, value: float, synced: datetime) -> list[dict[str, Any]]:
    ts = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        {
            "synced_at": synced,
            "run_id": run,
            "key": "auc",
            "step": s,
            "value": value,
            "timestamp": ts,
        }
        for s in range(n)
    ]


def test_metrics_view_keeps_only_the_newest_sync_of_each_run(tmp_path: Path) -> None:
    log = ParquetLog(tmp_path, "metrics")
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    log.append(_metric_rows("a", 3, 0.1, t0))
    log.append(_metric_rows("b", 2, 0.2, t0))
    log.append(_metric_rows("a", 4, 0.3, t0 + timedelta(seconds=1)))
    got = Db(tmp_path).rows(
        "SELECT run_id, count(*) AS n, min(value) AS lo, max(value) AS hi "
        "FROM metrics GROUP BY run_id ORDER BY run_id"
    )
    assert got == [
        {"run_id": "a", "n": 4, "lo": 0.3, "hi": 0.3},
        {"run_id": "b", "n": 2, "lo": 0.2, "hi": 0.2},
    ]


# ---------------------------------------------------------------- Db views


@pytest.mark.parametrize(
    "view", ["audit", "jobs", "jobs_events", "runs", "runs_versions", "metrics"]
)
def test_views_on_a_fresh_project_are_empty_not_failing(tmp_path: Path, view: str) -> None:
    db = Db(tmp_path / "logs-that-do-not-exist")
    assert _count(db, view) == 0
    cols = [d[0] for d in db.query(f"SELECT * FROM {view} LIMIT 0").description]
    assert "date" not in cols
    assert cols[0] in {"ts", "synced_at", "run_id"}


def test_views_pick_up_files_written_after_the_db_was_created(tmp_path: Path) -> None:
    db = Db(tmp_path)
    assert _count(db) == 0
    assert _count(db, "jobs") == 0
    ParquetLog(tmp_path, "audit").append(_batch(0))
    assert _count(db) == ROWS_PER_APPEND
    ParquetLog(tmp_path, "audit").append(_batch(10))
    assert _count(db) == 2 * ROWS_PER_APPEND
    # through a worker-thread cursor too
    ParquetLog(tmp_path, "jobs").append(
        [{"ts": utcnow(), "job_id": "j1", "kind": "train", "status": "running"}]
    )
    cur = db.cursor()
    assert cur.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    assert db.arrow("SELECT * FROM audit").num_rows == 2 * ROWS_PER_APPEND


def test_jobs_view_keeps_the_newest_event_per_job(tmp_path: Path) -> None:
    log = ParquetLog(tmp_path, "jobs")
    t0 = utcnow()
    log.append([{"ts": t0, "job_id": "j1", "kind": "train", "status": "running"}])
    log.append([{"ts": t0, "job_id": "j2", "kind": "train", "status": "running"}])
    log.append(
        [{"ts": t0 + timedelta(seconds=1), "job_id": "j1", "kind": "train", "status": "failed"}]
    )
    db = Db(tmp_path)
    got = {r["job_id"]: r["status"] for r in db.rows("SELECT job_id, status FROM jobs")}
    assert got == {"j1": "failed", "j2": "running"}
    assert _count(db, "jobs_events") == 3
