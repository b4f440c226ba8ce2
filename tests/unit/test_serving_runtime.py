"""What keeps the server's tail short: the reconciler re-reads files only when they change,
the heap is frozen once the model is loaded, the log writer works in short steps, and a
lagging writer gets the GIL instead of filling its queue."""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from workbench.serving import state_watch
from workbench.serving.endpoints import dumps, dumps_answer
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.runtime import settle_heap
from workbench.serving.state_watch import StateWatch, registry_files


class _Project:
    def __init__(self, root: Path, uri: str) -> None:
        self.root = root
        self.registry_uri = uri


def test_the_reconciler_rereads_only_on_a_change(tmp_path: Path, monkeypatch: Any) -> None:
    state = tmp_path / "model.json"
    db = tmp_path / "mlflow.db"
    db.write_text("x")
    files = registry_files(_Project(tmp_path, f"sqlite:///{db}"))  # type: ignore[arg-type]
    assert files == [db, tmp_path / "mlflow.db-wal"]
    watch = StateWatch(state, files)
    assert watch.due()  # never read
    watch.read()
    assert not watch.due()
    state.write_text(json.dumps({"generation": 1}))  # a deploy writes the state
    assert watch.due()
    watch.read()
    assert not watch.due()
    (tmp_path / "mlflow.db-wal").write_text("alias moved")  # a promote writes the registry
    assert watch.due()
    watch.read()
    monkeypatch.setattr(state_watch, "REREAD_S", 0.0)  # and in any case every REREAD_S
    assert watch.due()


def test_a_relative_or_remote_registry(tmp_path: Path) -> None:
    files = registry_files(_Project(tmp_path, "sqlite:///.workbench/mlflow.db"))  # type: ignore[arg-type]
    assert files is not None and files[0] == tmp_path / ".workbench" / "mlflow.db"
    assert registry_files(_Project(tmp_path, "postgresql://db/mlflow")) is None  # type: ignore[arg-type]
    watch = StateWatch(tmp_path / "model.json", None)
    watch.read()
    assert watch.due()  # a registry that cannot be stat'ed is read at every poll


def test_the_heap_is_frozen_once_the_model_is_loaded() -> None:
    gc.unfreeze()
    try:
        settle_heap(first=True)
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the interpreter's modules, at least
        settle_heap(first=False)
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()


def test_answers_go_out_as_json_would_write_them() -> None:
    plain = {"request_ids": ["a-1", "a-2"], "predictions": [0.5, 1e-7], "labels": [0, 1]}
    assert json.loads(dumps_answer(plain)) == json.loads(dumps(plain))
    other = {"request_id": "é-\ud800", "passthrough": {"note": "\x00"}}  # not ASCII, a surrogate
    assert dumps_answer(other) == dumps(other)
    assert dumps_answer(other).isascii()


def test_the_writer_converts_a_big_batch_in_steps(tmp_path: Path) -> None:
    ids = [f"r{i}" for i in range(1000)]
    records = [{"x": float(i), "k": "a" if i % 2 else None} for i in range(1000)]
    with PredictionLogger(tmp_path, max_rows=100_000, interval_s=60) as logger:
        logger.log_many(ids, "m", 1, "production", records, [0.5] * 1000, 2.0)
        table, good = logger._tables(list(logger._entries))
    assert table.num_rows == 1000 and sum(len(e[1]) for e in good) == 1000
    files = list(tmp_path.rglob("*.parquet"))
    assert len(files) == 1  # one file per flush, whatever the steps
    logged = pq.read_table(files[0], partitioning=None)
    assert logged.column("request_id").to_pylist() == ids
    assert json.loads(logged.column("features")[999].as_py()) == records[999]
    ts = logged.column("ts").to_pylist()
    assert len(set(ts)) == 1 and ts[0].tzinfo is not None  # the request's time, in UTC


def test_a_lagging_writer_makes_the_server_pace(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path, max_rows=10, interval_s=0.05, max_queued=100)
    entered, release = threading.Event(), threading.Event()
    convert = logger._tables

    def slow(entries: list[Any]) -> Any:  # the writer converting rows, starved of the GIL
        entered.set()
        release.wait(30)
        return convert(entries)

    logger._tables = slow  # type: ignore[method-assign]
    try:
        assert logger.pace_rows == 25
        for i in range(60):
            logger.log(f"r{i}", "m", 1, "production", {"x": 1.0}, 0.5, 1.0)
        assert entered.wait(30)
        assert logger.behind()
        assert logger.refusal() is None  # behind, but still taking rows
        release.set()
        done = threading.Event()

        def wait() -> None:
            while logger.behind():
                time.sleep(0.01)
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        assert done.wait(30)  # caught up
    finally:
        release.set()
        logger.close()
    assert logger.written == 60
    assert os.listdir(tmp_path)


def test_a_writer_waiting_on_the_disk_does_not_pace(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path, max_rows=10, interval_s=0.05, max_queued=100)
    try:
        with logger._write_lock:  # the writer waits for a slow disk, not for the GIL
            for i in range(40):
                logger.log(f"r{i}", "m", 1, "production", {"x": 1.0}, 0.5, 1.0)
            assert not logger.behind()
            for i in range(40, 60):  # until the queue is half full
                logger.log(f"r{i}", "m", 1, "production", {"x": 1.0}, 0.5, 1.0)
            assert logger.behind()
    finally:
        logger.close()
    assert logger.written == 60
