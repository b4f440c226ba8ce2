"""The prediction log: every prediction, written to Parquet in batches.

Rows are buffered and written as one atomic file when the buffer holds `max_rows` or every
`interval_s`, whichever comes first, by a background thread, so a request never waits on
disk. `close()` flushes everything. A crash loses at most the rows of the current interval,
and never leaves a file a reader cannot open (writes are temp file + rename, see parquet_log).

The request path only appends one tuple per request (a batch of 1,000 records included).
The writer converts 256 rows at a time (log_rows): every step is C code that holds the GIL,
and one step over a whole interval's rows stalled the requests in flight for tens of ms. The
JSON of a record is orjson's (~0.3 us), a columnar batch's rows and typed lists are made
from its columns, timestamps go to Arrow as integers (pyarrow takes 12 us per aware
datetime). When rows pile up anyway, `behind()` tells the server to let the writer catch up.

The writer never dies of a row: a batch Arrow cannot hold is split by request, the requests
it can hold are written and the others are quarantined, as JSON lines in pure ASCII (every
bad string escaped) with the reason, to `<logs>/predictions/_quarantine/<ts>.jsonl` (beside
the log in S3 when it is shared, `[logs] uri`; locally if S3 refuses it too). A file
that cannot be written (disk full, permissions) is retried with backoff while new rows queue
up; the queue is bounded (`max_queued` rows), and when it is full, or if the writer thread
stops anyway, `log_many` raises `LogRefused` naming why: the server answers 503 instead of
losing predictions silently, and `/ready` and `/metrics` say so.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.project import LogsRoot
from workbench.serving.columnar import Columns
from workbench.serving.log_rows import (
    ColumnsLayout,
    Entry,
    chunks,
    json_rows,
    one_line,
    passthrough_column,
    rows_of,
    safe_json,
    to_json,
)
from workbench.store.parquet_log import COLUMNS, SCHEMAS, ParquetLog, utcnow

Features = Mapping[str, Any] | str

#: The most seconds between two attempts at a file that could not be written.
MAX_BACKOFF_S = 5.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
#: Rows converted per step of a flush (each step holds the GIL: ~0.5 ms at this size).
CHUNK_ROWS = 256
#: A file holds at most this many times `max_rows`: a writer that fell behind writes its
#: backlog as files as it goes (a file a kill cannot take back), instead of one ever larger.
FILE_ROWS_FACTOR = 4
#: The most seconds a `log()` call waits for a writer that lags (then it queues anyway).
WAIT_MAX_S = 0.5


class LogRefused(Exception):
    """The prediction log takes no rows now: its writer stopped, or too many rows wait."""


def _data_errors() -> tuple[type[BaseException], ...]:
    """What converting rows can raise: any Exception, and a Rust panic inside polars (a
    pyo3 PanicException derives from BaseException)."""
    try:
        from polars.exceptions import PanicException
    except ImportError:  # pragma: no cover - an older polars
        return (Exception,)
    return (Exception, PanicException)


class PredictionLogger:
    def __init__(
        self,
        logs_root: Path | LogsRoot,
        max_rows: int = 5_000,
        interval_s: float = 1.0,
        max_queued: int | None = None,
    ) -> None:
        # Pay pyarrow's and polars' imports now, on the starting thread: pyarrow's first
        # conversion of Python lists imports pandas (~0.2 s), which under a busy request
        # loop crawls for seconds on the writer thread (every file read waits for the GIL).
        import polars
        import pyarrow as pa
        import pyarrow.parquet

        pa.array([0])
        self._pl = polars
        self._data_errors = _data_errors()
        self._log = ParquetLog(logs_root, "predictions")
        self.quarantine_dir = self._log.folder / "_quarantine"
        self.max_rows = max_rows
        self.interval_s = interval_s
        #: Rows that may wait for the writer before log_many refuses more (~1 KiB a row).
        self.max_queued = max_queued if max_queued is not None else max(200_000, 20 * max_rows)
        #: Rows waiting above which `behind()` says the server should pace its requests.
        self.pace_rows = min(self.max_queued // 4, max(20_000, 3 * max_rows))
        # One entry per request. deque.append and popleft are atomic: producers never take a
        # lock a busy request loop could keep from the writer (plain locks are not fair).
        self._entries: deque[Entry] = deque()
        self._pending = 0  # rows in _entries (approximate under races; only a wake-up hint)
        self._added = 0  # rows ever queued (producers; approximate with several threads)
        self._taken = 0  # rows ever taken off the queue for good (the writer)
        self._write_lock = threading.Lock()  # one writer at a time keeps batches in order
        self._converting = False  # the writer turns rows into Arrow now (it needs the GIL)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.written = 0
        self.quarantined = 0  # rows put aside in _quarantine/ (Arrow could not hold them)
        self.dropped = 0  # rows neither written nor quarantined (both writes failed)
        self.write_errors = 0  # failed attempts at writing a file
        self.last_error: str | None = None  # the last write error, until a write succeeds
        self.stopped: str | None = None  # why the writer thread stopped, if it did
        #: version -> its Segmenter (training.fairness): the `segments` column's labels
        self.segmenters: dict[int, Any] = {}
        #: version -> its Layout (drift.log_layout): the `numeric`/`categorical` columns
        self.layouts: dict[int, Any] = {}
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:12]
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def new_ids(self, n: int) -> list[str]:
        """Request ids unique across servers and restarts (a random prefix and a counter),
        ~15x cheaper than uuid4 per record."""
        prefix, ids = self._id_prefix, self._ids
        return [f"{prefix}-{next(ids):x}" for _ in range(n)]

    def log(
        self,
        request_id: str,
        model: str,
        version: int,
        variant: str,
        features: Features,
        output: float | None,
        latency_ms: float,
        status: int = 200,
        error: str | None = None,
    ) -> None:
        """Queue one prediction (cheap: no I/O on the caller's thread). `features` is the
        record, or its JSON text already made. When the writer lags (`behind()`) it first
        waits for it, at most WAIT_MAX_S: a caller logging in a tight loop on another thread
        would otherwise keep the GIL from the writer until the queue is full and refuses
        (the server paces on its event loop instead, see Server._pace)."""
        if self.behind():
            deadline = time.monotonic() + WAIT_MAX_S
            while self.behind() and time.monotonic() < deadline:
                time.sleep(0.001)
        self.log_many(
            [request_id], model, version, variant, [features], [output], latency_ms, status, error
        )

    def log_many(
        self,
        request_ids: Sequence[str],
        model: str,
        version: int,
        variant: str,
        features: Sequence[Features],
        outputs: Sequence[float | None],
        latency_ms: float,
        status: int = 200,
        error: str | None = None,
        passthrough: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Queue the records of one request (they share its time, latency and status);
        `passthrough`: per record, the passthrough fields it carried (None: none did).
        Raises LogRefused when the writer stopped or `max_queued` rows wait already."""
        if self._closed.is_set():
            raise RuntimeError("the prediction log is closed")
        if self.stopped is not None or self._added - self._taken >= self.max_queued:
            raise LogRefused(self.refusal() or "the prediction log is full")
        n = len(request_ids)
        if not n == len(features) == len(outputs):
            raise ValueError("request_ids, features and outputs differ in length")
        if passthrough is not None and len(passthrough) != n:
            raise ValueError("request_ids and passthrough differ in length")
        entry = (
            utcnow(), request_ids, model, version, variant, features, outputs,
            float(latency_ms), status, error, passthrough,
        )  # fmt: skip
        self._entries.append(entry)
        self._added += n
        self._pending += n
        if self._pending >= self.max_rows:
            self._wake.set()

    def behind(self) -> bool:
        """Whether more than `pace_rows` rows wait while the writer converts rows (which
        needs the GIL): the server then lets it have the GIL before it takes the next
        request (a request loop that never waits keeps the GIL from the writer until the
        queue is full and refuses). While it writes to disk only once the queue is half
        full; never while writes fail (a full disk: the queue's bound answers then)."""
        waiting = self._added - self._taken
        if waiting <= self.pace_rows or self.stopped is not None or self.last_error is not None:
            return False
        # While it writes to disk the GIL is not what it lacks, unless the queue is half full.
        return self._converting or self.congested()

    def congested(self) -> bool:
        """Whether the queue is more than half full."""
        return self._added - self._taken > self.max_queued // 2

    def refusal(self) -> str | None:
        """Why log_many refuses rows now (one line), or None when it takes them."""
        if self.stopped is not None:
            return f"the prediction log writer stopped ({self.stopped})"
        if not self._thread.is_alive() and not self._closed.is_set():
            return "the prediction log writer stopped"
        waiting = self._added - self._taken
        if waiting >= self.max_queued:
            why = f": {self.last_error}" if self.last_error else ""
            return f"the prediction log is full ({waiting} rows wait for the writer{why})"
        return None

    @property
    def writer_up(self) -> bool:
        return self.stopped is None and (self._thread.is_alive() or self._closed.is_set())

    @property
    def queued(self) -> int:
        """Rows waiting for the writer."""
        return sum(len(entry[1]) for entry in list(self._entries))

    def flush(self, final: bool = False) -> int:
        """Write what is buffered now, as files of at most `file_rows` rows; returns the
        rows written. Stops at the first file that cannot be written (unless `final`: its
        rows are quarantined and the rest still written)."""
        total = 0
        while self._entries:
            total += self._flush_one(final)
            if self.last_error is not None and not final:
                break
        return total

    @property
    def file_rows(self) -> int:
        """The most rows one file takes (whole requests: a bigger request is one file)."""
        return max(self.max_rows, CHUNK_ROWS) * FILE_ROWS_FACTOR

    def _take(self) -> list[Entry]:
        """Whole requests off the head of the queue, up to `file_rows` rows."""
        entries: list[Entry] = []
        rows, cap = 0, self.file_rows
        while self._entries and rows < cap:
            entry = self._entries.popleft()
            entries.append(entry)
            rows += len(entry[1])
        self._pending = max(0, self._pending - rows)
        return entries

    def _flush_one(self, final: bool = False) -> int:
        """Write one file of at most `file_rows` rows from the head of the queue; returns
        the rows written. Rows Arrow cannot hold are quarantined. A file that cannot be
        written puts its rows back at the head of the queue for the next attempt (or, when
        `final`, into the quarantine)."""
        with self._write_lock:
            entries = self._take()
            if not entries:
                return 0
            self._converting = True  # the part of a flush that needs the GIL
            try:
                table, good = self._tables(entries)
            finally:
                self._converting = False
            rows = sum(len(entry[1]) for entry in good)
            if table is None or not rows:
                return 0
            try:
                self._log.append(table)
            except self._data_errors as exc:
                self.write_errors += 1
                reason = f"cannot write {self._log.folder}: {type(exc).__name__}: {exc}"
                if self.last_error is None:
                    self._say(f"error: prediction log: {one_line(reason)} (retrying)")
                self.last_error = one_line(reason)
                if final:
                    self._quarantine([(entry, self.last_error) for entry in good])
                else:  # back to the head of the queue, in order, for the next attempt
                    self._entries.extendleft(reversed(good))
                    self._pending += rows
                return 0
            if self.last_error is not None:
                self._say("prediction log: writing again")
                self.last_error = None
            self.written += rows
            self._taken += rows
            return rows

    def _tables(self, entries: list[Entry]) -> tuple[Any, list[Entry]]:
        """One table of `entries`, converted CHUNK_ROWS rows at a time (a request's records
        split where needed): each conversion step is C code that holds the GIL throughout, so
        one step over a whole interval's rows (tens of ms) stalled every request in flight;
        between chunks the request loop takes the GIL when it waits for it (the server's
        switch interval). Chunks Arrow cannot hold are salvaged."""
        import pyarrow as pa

        tables: list[Any] = []
        good: list[Entry] = []
        for chunk in chunks(entries, CHUNK_ROWS):
            try:
                table, ok = self._table(chunk), chunk
            except self._data_errors as exc:
                table, ok = self._salvage(chunk, exc)
            if table is not None:
                tables.append(table)
                good += ok
        if not tables:
            return None, []
        return (tables[0] if len(tables) == 1 else pa.concat_tables(tables)), good

    def _table(self, entries: list[Entry]) -> Any:
        import pyarrow as pa

        cols: dict[str, list[Any]] = {name: [] for name, _ in COLUMNS["predictions"]}
        records: list[Mapping[str, Any]] = []
        where: list[int] = []
        texts = cols["features"]
        for ts, ids, model, version, variant, feats, outputs, latency, status, error, *_ in entries:
            n = len(ids)
            cols["ts"] += [(ts - EPOCH) // MICROSECOND] * n  # pyarrow: 12 us per datetime
            cols["request_id"] += ids
            cols["model"] += [model] * n
            cols["version"] += [version] * n
            cols["variant"] += [variant] * n
            cols["output"] += outputs
            cols["latency_ms"] += [latency] * n
            cols["status"] += [status] * n
            cols["error"] += [error] * n
            if type(feats) is Columns:  # a columnar batch: every record a mapping
                texts += json_rows(feats)
                continue
            for feat in feats:
                if isinstance(feat, str):
                    texts.append(feat)
                else:
                    where.append(len(texts))
                    records.append(feat)
                    texts.append(None)
        for pos, text in zip(where, to_json(records), strict=True):
            texts[pos] = text
        cols["segments"] = self._segments(entries)
        cols["passthrough"] = passthrough_column(entries)
        cols["numeric"], cols["categorical"], cols["laid_out"] = self._typed(entries, len(texts))
        schema = SCHEMAS["predictions"]
        ts_type = schema.field("ts").type
        table_cols: dict[str, Any] = dict(cols)
        table_cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(ts_type)
        return pa.table(table_cols, schema=schema)

    def use_version(self, project: Any, version: int, model_dir: Path) -> None:
        """Log `version`'s predictions with their segments (`[monitoring] segments`, the
        edges of its fairness.json) and their typed features (the layout of its reference
        profile); what cannot be worked out logs null."""
        from workbench.drift.log_layout import Layout
        from workbench.training.fairness import segmenter_for

        try:
            segmenter = segmenter_for(project, model_dir)
        except Exception as exc:  # never a reason not to serve
            self._say(f"prediction log: segments of v{version} not logged: {one_line(exc)}")
        else:
            if segmenter is not None:
                self.segmenters[version] = segmenter
        try:
            layout = Layout.load(model_dir)
        except Exception as exc:
            self._say(f"prediction log: typed features of v{version} not logged: {one_line(exc)}")
        else:
            if layout is not None:
                self.layouts[version] = layout

    def _typed(self, entries: list[Entry], total: int) -> tuple[Any, Any, Any]:
        """The `numeric`, `categorical` and `laid_out` columns: each answered record of a
        version with a layout, typed in that layout; null for the others."""
        from workbench.drift.log_layout import columns

        groups: dict[int, tuple[list[int], list[Any]]] = {}
        pos = 0
        for entry in entries:
            feats = entry[5]
            if entry[8] == 200 and entry[3] in self.layouts:
                where, parts = groups.setdefault(entry[3], ([], []))
                if type(feats) is Columns:  # laid out from its columns (log_rows)
                    where += range(pos, pos + len(feats))
                    parts.append(feats)
                else:
                    for i, feat in enumerate(feats):
                        if not isinstance(feat, str):
                            where.append(pos + i)
                            parts.append(feat)
            pos += len(feats)
        laid: list[Any] = [
            (ColumnsLayout(self.layouts[v]), where, parts) for v, (where, parts) in groups.items()
        ]
        return columns(laid, total, self._data_errors)

    def _segments(self, entries: list[Entry]) -> list[Any]:
        """The `segments` column: each record's groups by its version's segmenter (null
        without one, or for a failed request's raw body)."""
        out: list[Any] = []
        for entry in entries:
            segmenter = self.segmenters.get(entry[3]) if entry[8] == 200 else None
            if segmenter is None:
                out += [None] * len(entry[1])
            else:
                out += segmenter.labels(entry[5])
        return out

    def _salvage(self, entries: list[Entry], exc: BaseException) -> tuple[Any, list[Entry]]:
        """The batch failed to convert: find the requests that do, quarantine the others."""
        good: list[Entry] = []
        bad: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                self._table([entry])
            except self._data_errors as err:
                bad.append((entry, one_line(f"{type(err).__name__}: {err}")))
            else:
                good.append(entry)
        if not bad:  # only the whole batch fails: put it all aside
            bad = [(entry, one_line(f"{type(exc).__name__}: {exc}")) for entry in good]
            good = []
        self._quarantine([(entry, f"Arrow cannot hold the row: {why}") for entry, why in bad])
        if not good:
            return None, []
        try:
            return self._table(good), good
        except self._data_errors as err:
            why = one_line(f"{type(err).__name__}: {err}")
            self._quarantine([(entry, why) for entry in good])
            return None, []

    def _quarantine(self, items: list[tuple[Entry, str]]) -> None:
        """Put rows aside as JSON lines, each with its reason, in one new file; never
        raises. One line on stderr says where they went (or that they are lost)."""
        rows = sum(len(entry[1]) for entry, _ in items)
        self._taken += rows
        first = items[0][1] if items else ""
        name = f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.jsonl"
        try:  # beside the log: in S3 for a shared log (one PUT), else under quarantine_dir
            lines = [
                safe_json({"reason": why, **row}) for entry, why in items for row in rows_of(entry)
            ]
            path = self._log.put_aside(name, "".join(line + "\n" for line in lines))
        except Exception as exc:  # the disk is full too: count the loss and say so
            self.dropped += rows
            self._say(
                f"error: prediction log: {rows} row(s) lost ({first}); "
                f"the quarantine file failed too: {one_line(exc)}"
            )
            return
        self.quarantined += rows
        self._say(f"prediction log: {rows} row(s) quarantined to {path}: {first}")

    def _run(self) -> None:
        reason = "it returned"
        try:
            backoff = 0.0
            while not self._closed.is_set():
                if backoff:  # a write failed: wait, whatever the producers say
                    self._closed.wait(backoff)
                else:
                    self._wake.wait(self.interval_s)
                self._wake.clear()
                try:  # one file, then around again: close() is seen between files
                    self._flush_one()
                    if self._added - self._taken >= self.max_rows:
                        self._wake.set()  # a backlog: the next file at once
                except self._data_errors as exc:  # a bug here must not stop the writer
                    self.last_error = one_line(f"{type(exc).__name__}: {exc}")
                    self._say(f"error: prediction log: {self.last_error}")
                failing = self.last_error is not None
                backoff = min(MAX_BACKOFF_S, max(self.interval_s, backoff * 2)) if failing else 0
        except BaseException as exc:
            reason = one_line(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if not self._closed.is_set():
                self.stopped = reason
                self._say(
                    f"error: the prediction log writer stopped ({reason}); "
                    "predictions are refused (503) until the server restarts"
                )

    @staticmethod
    def _say(line: str) -> None:
        with contextlib.suppress(Exception):  # stderr closed: nothing more to do
            print(one_line(line, 2000), file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop the background writer and flush every buffered row (quarantining what
        cannot be written)."""
        self._closed.set()
        self._wake.set()
        self._thread.join()
        self.flush(final=True)

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
