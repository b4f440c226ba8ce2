"""The prediction log: every prediction, written to Parquet in batches.

Rows are buffered and written as one atomic file when the buffer holds `max_rows` or every
`interval_s`, whichever comes first, by a background thread, so a request never waits on
disk. `close()` flushes everything. A crash loses at most the rows of the current interval,
and never leaves a file a reader cannot open (writes are temp file + rename, see parquet_log).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.parquet_log import COLUMNS, SCHEMAS, ParquetLog, utcnow


class PredictionLogger:
    def __init__(self, logs_root: Path, max_rows: int = 5_000, interval_s: float = 1.0) -> None:
        # Pay pyarrow's imports now, on the starting thread: its first conversion of Python
        # lists imports pandas (~0.2 s), which under a busy request loop crawls for seconds
        # on the writer thread (every file read waits for the GIL).
        import pyarrow as pa
        import pyarrow.parquet

        pa.array([0])
        self._log = ParquetLog(logs_root, "predictions")
        self.max_rows = max_rows
        self.interval_s = interval_s
        # deque.append and popleft are atomic: producers never take a lock a busy request
        # loop could keep from the writer (plain locks are not fair).
        self._rows: deque[tuple[Any, ...]] = deque()
        self._write_lock = threading.Lock()  # one writer at a time keeps batches in order
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def log(
        self,
        request_id: str,
        model: str,
        version: int,
        variant: str,
        features: Mapping[str, Any] | str,
        output: float | None,
        latency_ms: float,
        status: int = 200,
        error: str | None = None,
    ) -> None:
        """Queue one prediction (cheap: no I/O on the caller's thread). `features` is the
        record, or its JSON text already made."""
        if self._closed.is_set():
            raise RuntimeError("the prediction log is closed")
        values = (
            utcnow(),
            request_id,
            model,
            version,
            variant,
            features
            if isinstance(features, str)
            else json.dumps(features, default=str, separators=(",", ":")),
            None if output is None else float(output),
            float(latency_ms),
            status,
            error,
        )
        self._rows.append(values)
        if len(self._rows) >= self.max_rows:
            self._wake.set()

    def flush(self) -> int:
        """Write what is buffered now; returns the rows written."""
        with self._write_lock:
            batch = [self._rows.popleft() for _ in range(len(self._rows))]
            if batch:
                import pyarrow as pa

                names = [name for name, _ in COLUMNS["predictions"]]
                columns = dict(zip(names, map(list, zip(*batch, strict=True)), strict=True))
                self._log.append(pa.table(columns, schema=SCHEMAS["predictions"]))
                self.written += len(batch)
            return len(batch)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the background writer and flush every buffered row."""
        self._closed.set()
        self._wake.set()
        self._thread.join()
        self.flush()

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
