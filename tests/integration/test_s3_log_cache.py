"""The S3 logs' listing cache (`[logs] refresh_s`) against the real S3 server: a process sees
its own appends at once and another process's within refresh_s (not before); a query whose
objects another process deleted since the listing answers right after one re-listing; the
bound refresh_s << the retired files' grace period is enforced."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import ValidationError

import workbench.store.db as db_module
from tests.integration.test_shared_logs import COUNT, _rows
from workbench.config import LogsSection
from workbench.errors import ConfigError
from workbench.project import LogsRoot
from workbench.store import s3_cache, s3_log
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog

pytestmark = pytest.mark.integration


def _root(s3_bucket: str, tmp_path: Path, refresh_s: float) -> LogsRoot:
    return LogsRoot(tmp_path / "logs", f"{s3_bucket}/cache", refresh_s=refresh_s)


def _count(db: Db) -> int:
    row = db.rows(COUNT)[0]
    assert row["n"] == row["d"], "a row counted twice"
    return int(row["n"])


def _appender(root: LogsRoot, ready: Any, go: Any, done: Any) -> None:
    ParquetLog(root, "labels").uris()  # imports and clients paid before `go`
    ready.set()
    go.wait()
    ParquetLog(root, "predictions").append(_rows("other", 7))
    done.set()


def _deleter(root: LogsRoot) -> None:
    """Another process compacts, then deletes what it retired as if the grace were over."""
    s3_log.RETIRE_GRACE_S = 0.0
    assert ParquetLog(root, "predictions").compact() == 3
    time.sleep(0.01)
    ParquetLog(root, "predictions").compact()  # deletes the expired parts


@pytest.fixture(autouse=True)
def _fresh_listings() -> None:
    s3_log.forget_listings()


def test_own_appends_are_seen_at_once(s3_bucket: str, tmp_path: Path) -> None:
    root = _root(s3_bucket, tmp_path, refresh_s=12)
    with Db(root) as db:
        assert _count(db) == 0
        ParquetLog(root, "predictions").append(_rows("a", 10))
        assert _count(db) == 10  # well inside the 12 s window
        ParquetLog(root, "predictions").append(_rows("b", 5))
        with Db(root) as other:  # a second Db of this process too
            assert _count(other) == 15
        assert ParquetLog(root, "predictions").compact() == 2
        assert _count(db) == 15
        assert len(ParquetLog(root, "predictions").uris()) == 1


def test_another_process_is_seen_within_refresh_s(s3_bucket: str, tmp_path: Path) -> None:
    refresh = 4.0
    root = _root(s3_bucket, tmp_path, refresh_s=refresh)
    ParquetLog(root, "predictions").append(_rows("mine", 3))
    ctx = mp.get_context("spawn")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_appender, args=(root, ready, go, done))
    proc.start()
    try:
        assert ready.wait(60)
        s3_log.forget_listings()
        listed = time.monotonic()  # the listing is taken at or after this moment
        with Db(root) as db:
            assert _count(db) == 3
            go.set()
            assert done.wait(30)
            written = time.monotonic()
            if written - listed < refresh - 0.5:  # surely inside the window: the old listing
                assert _count(db) == 3
            while (n := _count(db)) == 3 and time.monotonic() < written + refresh + 5:
                time.sleep(0.1)
            seen = time.monotonic()
    finally:
        proc.join(30)
    assert proc.exitcode == 0
    assert n == 10
    assert seen - listed <= refresh + 2.0  # one window after the listing (and a query's time)


def test_a_file_vanished_under_the_listing(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_cache, "FILE_BYTES", 0)  # scanned from S3 (held ones cannot vanish)
    root = _root(s3_bucket, tmp_path, refresh_s=12)
    for tag in ("a", "b", "c"):
        ParquetLog(root, "predictions").append(_rows(tag, 10))
    forgotten: list[int] = []
    real_forget = db_module.forget_listings
    monkeypatch.setattr(db_module, "forget_listings", lambda: forgotten.append(1) or real_forget())
    with Db(root) as db:
        assert _count(db) == 30
        proc = mp.get_context("spawn").Process(target=_deleter, args=(root,))
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
        # The listing (well inside its window) names the deleted parts: what the scan raises
        stale = db.con.cursor()
        stale.register("_src_predictions", db._remote["predictions"])
        with pytest.raises(duckdb.InvalidInputException) as info:
            stale.execute(COUNT).fetchall()
        assert s3_log.vanished(info.value) and "GetObject" in str(info.value)
        assert not forgotten
        # ...and what Db makes of it: one re-listing, the right answer
        assert _count(db) == 30
        assert forgotten == [1]
        assert db.query(COUNT).fetchone() == (30, 30)
        assert forgotten == [1]  # the new listing holds


def test_refresh_s_is_far_below_the_grace_period(tmp_path: Path) -> None:
    assert s3_log.MAX_REFRESH_S * 10 <= s3_log.RETIRE_GRACE_S
    bound = next(m.le for m in LogsSection.model_fields["refresh_s"].metadata if hasattr(m, "le"))
    assert bound == s3_log.MAX_REFRESH_S
    assert LogsSection(refresh_s=0).refresh_s == 0
    with pytest.raises(ValidationError):
        LogsSection(refresh_s=bound + 1)
    with pytest.raises(ConfigError, match=r"^\[logs\] refresh_s"):
        s3_log.S3Log(LogsRoot(tmp_path, "s3://b/p", refresh_s=60), "predictions")


def test_quarantine_goes_beside_the_shared_log(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from tests.services import S3_KEYS, service
    from workbench.errors import DataError
    from workbench.serving.prediction_log import PredictionLogger

    root = _root(s3_bucket, tmp_path, refresh_s=2)
    logger = PredictionLogger(root, max_rows=10_000, interval_s=60)
    try:
        feats = [{"amount": 1.0}]
        logger.log_many(["good-1"], "fraud", 1, "production", feats, [0.5], 1.0)
        logger.log_many(["bad-\ud800"], "fraud", 1, "production", feats, [0.5], 1.0)
        assert logger.flush() == 1 and logger.quarantined == 1
        bucket = s3_bucket.removeprefix("s3://")
        s3 = boto3.client(
            "s3",
            endpoint_url=service("S3"),
            region_name="us-east-1",
            aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        )
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="cache/predictions/_quarantine/")
        (obj,) = listed["Contents"]
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("ascii")
        assert '"request_id": "bad-\\ud800"' in text and "Arrow cannot hold" in text
        assert not (root.local / "predictions" / "_quarantine").exists()
        with Db(root) as db:  # the log's readers do not take it for data
            assert _count(db) == 1

        def refused(name: str, body: bytes) -> str:
            raise DataError("logs s3://...: cannot write the quarantine: unreachable")

        assert logger._log.remote is not None
        monkeypatch.setattr(logger._log.remote, "put_aside", refused)
        logger.log_many(["bad-\udfff"], "fraud", 1, "production", feats, [0.5], 1.0)
        logger.flush()
        assert logger.quarantined == 2 and logger.dropped == 0
        (local,) = (root.local / "predictions" / "_quarantine").glob("*.jsonl")
        assert "bad-\\udfff" in local.read_text(encoding="ascii")
    finally:
        logger.close()
