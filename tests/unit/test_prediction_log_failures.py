"""The prediction log when things go wrong: a batch Arrow cannot hold is quarantined with its
reason and the writer goes on; a file that cannot be written is retried; a full queue and a
dead writer refuse rows (LogRefused) and show in the server's /ready and /metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from workbench.project import Project
from workbench.serving.prediction_log import LogRefused, PredictionLogger
from workbench.serving.server import InferenceServer, Routes, Variant
from workbench.store.db import Db


def _log(logger: PredictionLogger, rid: str, **features: Any) -> None:
    logger.log(rid, "fraud", 1, "production", {"amount": 1.0, **features}, 0.5, 1.0)


def _ids(root: Path) -> list[str]:
    db = Db(root)
    try:
        return [r["request_id"] for r in db.rows("SELECT request_id FROM predictions ORDER BY 1")]
    finally:
        db.close()


def test_a_batch_arrow_cannot_hold_is_quarantined_and_the_rest_written(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path, max_rows=10_000, interval_s=60)
    _log(logger, "good-1")
    _log(logger, "bad-\ud800")  # a lone surrogate: not UTF-8, so not Parquet
    logger.log_many(["good-2", "good-3"], "fraud", 1, "canary", [{}, {}], [0.1, 0.2], 1.0)
    _log(logger, "good-4", note="a lone \udfff in a value is escaped in the JSON text")
    assert logger.flush() == 4
    assert logger.quarantined == 1 and logger.dropped == 0
    files = list((tmp_path / "predictions" / "_quarantine").glob("*.jsonl"))
    assert len(files) == 1
    text = files[0].read_text(encoding="ascii")  # pure ASCII, whatever the strings held
    (line,) = text.splitlines()
    row = json.loads(line)
    assert row["request_id"] == "bad-\ud800" and row["features"] == {"amount": 1.0}
    assert row["reason"].startswith("Arrow cannot hold the row: UnicodeEncodeError")
    # the writer goes on: later batches are written, and close() flushes the rest
    _log(logger, "good-5")
    assert logger.flush() == 1
    _log(logger, "good-6")
    logger.close()
    assert _ids(tmp_path) == [f"good-{i}" for i in range(1, 7)]
    assert logger.written == 6 and logger.writer_up


def test_a_file_that_cannot_be_written_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = PredictionLogger(tmp_path, max_rows=10_000, interval_s=60, max_queued=3)
    real = logger._log.append
    calls = []

    def failing(table: Any) -> None:
        calls.append(table.num_rows)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logger._log, "append", failing)
    _log(logger, "r-1")
    _log(logger, "r-2")
    assert logger.flush() == 0 and calls == [2]
    assert logger.write_errors == 1 and "No space left on device" in str(logger.last_error)
    _log(logger, "r-3")
    with pytest.raises(LogRefused, match=r"full \(3 rows wait .*No space left"):
        _log(logger, "r-4")  # bounded: refused, not queued without limit
    assert logger.refusal() is not None
    monkeypatch.setattr(logger._log, "append", real)
    assert logger.flush() == 3  # kept in order, written once the disk is back
    assert logger.last_error is None and logger.refusal() is None
    logger.close()
    assert _ids(tmp_path) == ["r-1", "r-2", "r-3"]


class _Boom(BaseException):
    """Something no `except Exception` catches."""


def _dead_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PredictionLogger:
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    logger = PredictionLogger(tmp_path, max_rows=1, interval_s=0.01)

    def boom(final: bool = False) -> int:
        raise _Boom("the writer was shot")

    monkeypatch.setattr(logger, "_flush_one", boom)  # what the writer thread calls
    deadline = time.monotonic() + 10
    while logger.writer_up and time.monotonic() < deadline:
        time.sleep(0.01)
    return logger


def test_a_dead_writer_refuses_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = _dead_writer(tmp_path, monkeypatch)
    assert not logger.writer_up
    assert logger.stopped == "_Boom: the writer was shot"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: the prediction log writer stopped (_Boom: the writer was shot); "
        "predictions are refused (503) until the server restarts"
    ]
    with pytest.raises(LogRefused, match="writer stopped"):
        _log(logger, "x")


def _call(app: InferenceServer, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    data = b"".join(m.get("body", b"") for m in sent[1:])
    ctype = dict(sent[0]["headers"]).get(b"content-type", b"")
    return status, json.loads(data) if b"json" in ctype else data.decode()


class _Predictor:
    def predict(self, records: list[dict[str, Any]]) -> list[float]:
        return [0.5] * len(records)


def test_a_dead_writer_shows_in_ready_and_metrics(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = _dead_writer(sample_project.logs, monkeypatch)
    app = InferenceServer(sample_project, logger)
    app.routes = Routes(Variant("production", 1, _Predictor()))
    status, ready = _call(app, "GET", "/ready")
    assert status == 503 and ready["ready"] is False
    assert ready["reason"] == "the prediction log writer stopped (_Boom: the writer was shot)"
    status, text = _call(app, "GET", "/metrics")
    assert status == 200
    assert "workbench_prediction_log_writer_up 0" in text
    assert "workbench_prediction_log_accepting 0" in text
    assert "# TYPE workbench_prediction_log_rows_quarantined_total counter" in text


def test_an_exception_in_a_handler_is_a_one_line_500(
    sample_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = PredictionLogger(sample_project.logs, interval_s=60)
    app = InferenceServer(sample_project, logger)

    class Broken:
        @property
        def signature(self) -> Any:
            raise KeyError("no\nsignature")

    app.routes = Routes(Variant("production", 1, Broken()))
    status, body = _call(app, "POST", "/predict", b"{}")
    assert status == 500
    assert body == {"error": "POST /predict: internal error: KeyError: 'no\\nsignature'"}
    assert capsys.readouterr().err == f"error: {body['error']}\n"
    logger.close()


def test_label_files_follow_the_request_id_rule(sample_project: Project, tmp_path: Path) -> None:
    import polars as pl

    from workbench.errors import DataError
    from workbench.serving import labels

    good = tmp_path / "good.parquet"
    pl.DataFrame({"request_id": ["a-1", "é-2"], "label": [1, 0]}).write_parquet(good)
    assert labels.ingest(sample_project, good) == 2
    for rid in ["a\nb", "x" * 129, "", "nul\x00", "c1\x85"]:
        bad = tmp_path / "bad.parquet"
        pl.DataFrame({"request_id": ["ok", rid], "label": [1, 0]}).write_parquet(bad)
        with pytest.raises(DataError, match="1 row"):
            labels.ingest(sample_project, bad)
