"""Current data for a drift check, read in bounded batches: Parquet files (pyarrow, text
columns dictionary-encoded as stored), CSV files (polars' batched reader), and JSON records
(the prediction log's `features` column) decoded batch by batch.

A batch holds at most about `BATCH_CELLS` values (rows x columns), so on wide data (1,000
features) batches get fewer rows: memory is O(batch x features), never O(rows).
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.drift.profile import CATEGORICAL, ReferenceProfile
from workbench.errors import DataError

T = TypeVar("T")

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

# Values per batch: 32M (256 MB of float64). 1,000 features: 32,768 rows a batch.
BATCH_CELLS = 1 << 25
MIN_BATCH_ROWS = 4096


def batch_rows_for(columns: int, batch_rows: int) -> int:
    """Rows per batch: `batch_rows`, fewer when `columns` is wide (at most ~BATCH_CELLS
    values a batch), never fewer than MIN_BATCH_ROWS (or `batch_rows` when it is smaller)."""
    wide = max(MIN_BATCH_ROWS, BATCH_CELLS // max(columns, 1))
    return max(1, min(batch_rows, wide))


def parquet_files(path: Path | str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.rglob("*.parquet"))
    elif p.exists():
        files = [p]
    else:
        files = [Path(f) for f in sorted(glob.glob(str(path), recursive=True))]
    if not files:
        raise DataError(f"{path}: no Parquet files there")
    return files


class ParquetBatches:
    """The columns `read` of Parquet files, in batches; `total` rows in all."""

    def __init__(self, path: Path | str, read: list[str], batch_rows: int) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.read = read
        self.batch_rows = batch_rows_for(len(read), batch_rows)
        self.files = parquet_files(path)
        self.handles: list[Any] = []
        try:
            for f in self.files:
                schema = pq.read_schema(f)
                lacking = [c for c in read if c not in schema.names]
                if lacking:
                    raise DataError(f"{f}: lacks column(s) {', '.join(lacking)}")
                # Text columns as stored (dictionary pages): counted by their codes.
                texts = [c for c in read if _is_text(schema.field(c).type)]
                # pre_buffer=False: with pre-buffering pyarrow keeps every row group it read.
                self.handles.append(pq.ParquetFile(f, pre_buffer=False, read_dictionary=texts))
        except (OSError, ValueError) as e:
            self.close()
            raise DataError(f"{path}: cannot read Parquet ({e})") from None
        self.total = sum(h.metadata.num_rows for h in self.handles)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for f, h in zip(self.files, self.handles, strict=True):
                try:
                    yield from h.iter_batches(
                        batch_size=self.batch_rows, columns=self.read, use_threads=True
                    )
                except OSError as e:
                    raise DataError(f"{f}: cannot read Parquet ({e})") from None
        finally:
            self.close()

    def close(self) -> None:
        for h in self.handles:
            h.close()


def _is_text(dtype: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype))


def csv_batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[pl.DataFrame]:
    """`columns` of a CSV file in batches (types inferred from the first 10,000 rows, as
    `pl.read_csv(infer_schema_length=10_000)` does). Errors: `DataError`, one line."""
    import polars as pl

    try:
        lazy = pl.scan_csv(path, infer_schema_length=10_000)
        names = lazy.collect_schema().names()
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError(f"{path}: missing column(s): {', '.join(missing)}")
        rows = batch_rows_for(len(columns), batch_rows)
        yield from lazy.select(columns).collect_batches(chunk_size=rows)
    except DataError:
        raise
    except Exception as exc:  # polars raises many kinds
        raise DataError(f"{path}: cannot read it: {exc}".splitlines()[0]) from None


def json_struct(profile: ReferenceProfile) -> pl.Struct:
    """The polars type the JSON records decode to: text for categorical features, float64
    for numeric ones (as the check of logged predictions always typed them)."""
    import polars as pl

    return pl.Struct(
        [
            pl.Field(name, pl.Utf8 if fp.kind == CATEGORICAL else pl.Float64)
            for name, fp in profile.features.items()
        ]
    )


def json_frame(texts: pa.Array | pa.ChunkedArray, dtype: pl.Struct) -> pl.DataFrame:
    """JSON records (one object a row; null: every feature missing) as a frame of the
    struct's fields, decoded by polars in one vectorised pass over the batch."""
    import polars as pl

    series = pl.from_arrow(texts) if len(texts) else pl.Series([], dtype=pl.Utf8)
    assert isinstance(series, pl.Series)
    return pl.DataFrame({"f": series}).select(pl.col("f").str.json_decode(dtype)).unnest("f")


def prefetched(batches: Iterable[T]) -> Iterator[T]:
    """`batches`, each read by a background thread while the caller works on the one before
    (at most one waits): DuckDB decodes Parquet outside the GIL while numpy bins the last
    batch, so reading costs little more than the slower of the two. Closing the generator
    early stops the thread."""
    import queue
    import threading

    box: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)
            return
        put(done)

    thread = threading.Thread(target=run, name="batch-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
