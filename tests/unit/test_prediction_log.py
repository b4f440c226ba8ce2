"""The prediction log: batching by size and time, no row lost on close, readable after kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from workbench.serving.prediction_log import PredictionLogger
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog


def _log_one(logger: PredictionLogger, i: int, variant: str = "production") -> None:
    logger.log(f"req-{i}", "fraud", 1, variant, {"amount": i, "category": "x"}, 0.5, 1.25)


def test_concurrent_logging_loses_no_row(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path, max_rows=500, interval_s=0.05)
    threads = [
        threading.Thread(target=lambda k=k: [_log_one(logger, k * 2000 + i) for i in range(2000)])
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.close()
    db = Db(tmp_path)
    got = db.rows("SELECT count(*) AS n, count(DISTINCT request_id) AS ids FROM predictions")[0]
    assert got == {"n": 16000, "ids": 16000}
    assert logger.written == 16000
    assert len(ParquetLog(tmp_path, "predictions").files()) > 1  # batched, not one file a row
    row = db.rows("SELECT * FROM predictions WHERE request_id = 'req-7'")[0]
    assert row["features"] == '{"amount":7,"category":"x"}' and row["latency_ms"] == 1.25


def test_rows_are_written_by_time_without_close(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path, max_rows=10_000, interval_s=0.1)
    for i in range(3):
        _log_one(logger, i, "canary")
    db = Db(tmp_path)
    deadline = time.time() + 5
    while time.time() < deadline and db.rows("SELECT count(*) AS n FROM predictions")[0]["n"] < 3:
        time.sleep(0.05)
    assert db.rows("SELECT variant, count(*) AS n FROM predictions GROUP BY 1") == [
        {"variant": "canary", "n": 3}
    ]
    logger.close()
    with pytest.raises(RuntimeError, match="closed"):
        _log_one(logger, 99)


CHILD = r"""
import sys, time
from pathlib import Path
from workbench.serving.prediction_log import PredictionLogger
logger = PredictionLogger(Path(sys.argv[1]), max_rows=200, interval_s=0.02)
i = 0
while True:
    logger.log(f"req-{i}", "fraud", 1, "production", {"amount": i}, 0.1, 0.5)
    i += 1
    if i % 1000 == 0:
        print(i, flush=True)
"""


def test_kill_9_mid_stream_leaves_readable_logs(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    log = ParquetLog(tmp_path, "predictions")
    deadline = time.time() + 30
    while time.time() < deadline and not log.files():  # kill it mid-stream, once writing
        proc.stdout.readline()
    for _ in range(5):
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = ParquetLog(tmp_path, "predictions").files()
    assert files, "nothing was flushed before the kill"
    in_files = sum(pq.read_table(f, partitioning=None).num_rows for f in files)
    n = Db(tmp_path).rows("SELECT count(*) AS n FROM predictions")[0]["n"]
    assert n == in_files > 0
    ids = Db(tmp_path).rows("SELECT count(DISTINCT request_id) AS n FROM predictions")[0]["n"]
    assert ids == n  # no row twice


def test_a_backlog_is_written_as_capped_files(tmp_path: Path) -> None:
    """A writer that fell behind writes files of at most `file_rows` rows, in order, not
    one file that grows with the backlog (the first file a kill cannot take back)."""
    logger = PredictionLogger(tmp_path, max_rows=300, interval_s=60)
    for i in range(5_000):
        logger.log_many([f"req-{i}"], "fraud", 1, "production", [{"amount": i}], [0.1], 0.5)
    logger.flush()
    logger.close()
    written = logger.written
    files = ParquetLog(tmp_path, "predictions").files()
    sizes = [pq.read_table(f, partitioning=None).num_rows for f in files]
    assert written == sum(sizes) == 5_000
    assert len(files) >= 5_000 // logger.file_rows and max(sizes) <= logger.file_rows
    ids = Db(tmp_path).rows("SELECT count(DISTINCT request_id) AS n FROM predictions")[0]["n"]
    assert ids == 5_000
