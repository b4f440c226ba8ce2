"""The cache of small S3 log files' contents (workbench/store/s3_cache.py) against the real S3
server: a repeated query reads no object twice, answers stay the same (as read straight from
S3) through appends and a compaction, retired files leave the cache, the byte cap evicts, and
a file gone before its first read is still retried by Db."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest

from tests.integration.test_s3_log_cache import _deleter
from tests.integration.test_shared_logs import COUNT, _rows
from workbench.project import LogsRoot
from workbench.store import s3_cache, s3_log
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog

pytestmark = pytest.mark.integration

ROWS = "SELECT request_id, status, ts FROM predictions ORDER BY request_id"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    s3_log.forget_listings()
    s3_cache.cache.clear()


def _root(s3_bucket: str, tmp_path: Path, refresh_s: float = 2.0) -> LogsRoot:
    return LogsRoot(tmp_path / "logs", f"{s3_bucket}/tcache", refresh_s=refresh_s)


def _cached_paths() -> set[str]:
    return {key[1] for key in s3_cache.cache.entries()}


def _uncached(root: LogsRoot, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The rows as a scan straight from S3 reads them (the cache bypassed)."""
    with monkeypatch.context() as m:
        m.setattr(s3_cache, "FILE_BYTES", 0)
        with Db(root) as db:
            assert not isinstance(db._remote["predictions"], pads.InMemoryDataset)
            return db.rows(ROWS)


def test_a_repeated_query_reads_no_object_twice(s3_bucket: str, tmp_path: Path) -> None:
    root = _root(s3_bucket, tmp_path)
    for tag in ("a", "b", "c", "d"):
        ParquetLog(root, "predictions").append(_rows(tag, 10))
    with Db(root) as db:
        assert db.rows(COUNT) == [{"n": 40, "d": 40}]
        assert s3_cache.cache.loads == 4  # each live file read once
        assert isinstance(db._remote["predictions"], pads.InMemoryDataset)
        for _ in range(3):
            assert db.rows(COUNT) == [{"n": 40, "d": 40}]
    with Db(root) as again:  # a new Db of this process: the same tables
        assert again.rows(COUNT) == [{"n": 40, "d": 40}]
    s3_log.forget_listings()  # listed anew: the same objects, still not read again
    with Db(root) as fresh:
        assert fresh.rows(COUNT) == [{"n": 40, "d": 40}]
    assert s3_cache.cache.loads == 4
    remote = ParquetLog(root, "predictions").remote
    assert remote is not None and _cached_paths() == set(remote.snapshot().live)


def test_answers_unchanged_through_appends_and_a_compaction(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _root(s3_bucket, tmp_path)
    plog = ParquetLog(root, "predictions")
    assert plog.remote is not None
    for tag in ("a", "b"):
        plog.append(_rows(tag, 5))
    with Db(root) as db:
        assert db.rows(ROWS) == _uncached(root, monkeypatch)
        loads = s3_cache.cache.loads
        plog.append(_rows("c", 5))
        rows = db.rows(ROWS)
        assert len(rows) == 15 and rows == _uncached(root, monkeypatch)
        assert s3_cache.cache.loads == loads + 1  # only the new file
        before = _cached_paths()
        assert plog.compact() == 3
        rows = db.rows(ROWS)
        assert len(rows) == 15 and rows == _uncached(root, monkeypatch)
        live = set(plog.remote.snapshot().live)
        assert len(live) == 1 and _cached_paths() == live  # the retired parts left
        assert not before & _cached_paths()
        plog.append(_rows("d", 5))
        assert db.rows(COUNT) == [{"n": 20, "d": 20}]
        assert db.rows(ROWS) == _uncached(root, monkeypatch)


def test_the_caps_evict_and_big_files_are_scanned(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _root(s3_bucket, tmp_path)
    plog = ParquetLog(root, "predictions")
    for tag in ("a", "b", "c", "d"):
        plog.append(_rows(tag, 20))
    with Db(root) as db:
        db.rows(COUNT)
        one = max(t.nbytes for t in _tables())
    s3_cache.cache.clear()
    monkeypatch.setattr(s3_cache, "CACHE_BYTES", one * 2 + one // 2)  # room for two tables
    monkeypatch.setattr(s3_cache, "TABLE_BYTES", one)
    with Db(root) as db:
        assert db.rows(COUNT) == [{"n": 80, "d": 80}]
        assert len(s3_cache.cache.entries()) == 2
        assert s3_cache.cache.bytes <= s3_cache.CACHE_BYTES
    with Db(root) as db:  # the two evicted files are read again, two others pushed out
        assert db.rows(COUNT) == [{"n": 80, "d": 80}]
        assert s3_cache.cache.loads == 4 + 2  # c and d held, a and b read (again)
        assert len(s3_cache.cache.entries()) == 2
    # A file over FILE_BYTES (as listed) is scanned from S3, beside the held ones
    assert plog.remote is not None
    snap = plog.remote.snapshot()
    big = max(snap.live, key=lambda p: (snap.sizes[p], p))
    monkeypatch.setattr(s3_cache, "CACHE_BYTES", 64 * 2**20)
    monkeypatch.setattr(s3_cache, "FILE_BYTES", snap.sizes[big] - 1)
    plog.append(_rows("e", 1))  # smaller than the others: held
    with Db(root) as db:
        assert isinstance(db._remote["predictions"], pads.UnionDataset)
        assert db.rows(COUNT) == [{"n": 81, "d": 81}]
        assert big not in _cached_paths()
        assert db.rows(ROWS) == _uncached(root, monkeypatch)


def _tables() -> list[Any]:
    return [t for k in s3_cache.cache.entries() if (t := s3_cache.cache.get(k)) is not None]


def test_a_file_gone_before_its_first_read_is_retried(s3_bucket: str, tmp_path: Path) -> None:
    root = _root(s3_bucket, tmp_path, refresh_s=12)
    for tag in ("a", "b", "c"):
        ParquetLog(root, "predictions").append(_rows(tag, 10))
    assert len(ParquetLog(root, "predictions").uris()) == 3  # listed, inside its window
    proc = mp.get_context("spawn").Process(target=_deleter, args=(root,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    with Db(root) as db:  # the listing names the deleted parts: loads fail, the scan retries
        assert db.rows(COUNT) == [{"n": 30, "d": 30}]
        assert len(_cached_paths()) == 1  # the merged file, after the new listing
