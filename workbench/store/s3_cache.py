"""An in-process cache of the contents of small S3 log files, so a repeated query reads only
the files it has not seen.

S3 log objects are immutable (unique names, never rewritten: see s3_log.py), so a file's
rows, once read, stay right for as long as the file is live. `S3Log.dataset` asks `split`
which live files it holds as Arrow tables (reading the missing small ones now, in parallel)
and scans only the others lazily. An entry is keyed by (endpoint, bucket/key, size from the
listing); it leaves the cache when its file leaves the live set (retired by a compaction),
or, least recently used first, when the cache holds more than `CACHE_BYTES` of Arrow data.

Bounds: a file is cached only if the listing shows at most `FILE_BYTES` (compressed Parquet)
and its table takes at most `TABLE_BYTES` (16 MiB) in memory; the cache keeps at most
`CACHE_BYTES` (64 MiB) of tables in all. Larger files are scanned from S3 as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

#: The most Arrow bytes the cache holds, all logs together.
CACHE_BYTES = 64 * 2**20
#: The largest object (as listed, compressed) whose contents are cached...
FILE_BYTES = 4 * 2**20
#: ...and the largest table it may make in memory (a quarter of the cache).
TABLE_BYTES = CACHE_BYTES // 4
#: Small files read at once when a query meets new ones (each read is a round trip).
READERS = 16

Key = tuple[str | None, str, int]  # endpoint, bucket/key path, size in bytes


class TableCache:
    """LRU of Arrow tables under a byte budget; thread-safe."""

    def __init__(self) -> None:
        self._tables: OrderedDict[Key, pa.Table] = OrderedDict()
        self._too_big: set[Key] = set()  # read once, over the per-table bound: scanned lazily
        self._lock = threading.Lock()
        self.bytes = 0
        #: Objects this process read into the cache (each one GET of a whole small file).
        self.loads = 0

    def get(self, key: Key) -> pa.Table | None:
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    def too_big(self, key: Key) -> bool:
        with self._lock:
            return key in self._too_big

    def put(self, key: Key, table: pa.Table) -> bool:
        """Keep `table` (evicting the least recently used); False if it is over the bound."""
        size = table.nbytes
        with self._lock:
            self.loads += 1
            if size > TABLE_BYTES:
                self._too_big.add(key)
                return False
            old = self._tables.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            self._tables[key] = table
            self.bytes += size
            while self.bytes > CACHE_BYTES and self._tables:
                _, gone = self._tables.popitem(last=False)
                self.bytes -= gone.nbytes
            return key in self._tables

    def retain(self, endpoint: str | None, base: str, live: Iterable[str]) -> None:
        """Drop the entries of the log under `base` whose file is no longer live."""
        keep = set(live)
        prefix = base + "/"
        with self._lock:
            for key in [k for k in self._tables if _stale(k, endpoint, prefix, keep)]:
                self.bytes -= self._tables.pop(key).nbytes
            self._too_big = {k for k in self._too_big if not _stale(k, endpoint, prefix, keep)}

    def entries(self) -> list[Key]:
        with self._lock:
            return list(self._tables)

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()
            self._too_big.clear()
            self.bytes = 0
            self.loads = 0


def _stale(key: Key, endpoint: str | None, prefix: str, keep: set[str]) -> bool:
    return key[0] == endpoint and key[1].startswith(prefix) and key[1] not in keep


#: This process's cache (shared by every Db and S3Log, as the listings are).
cache = TableCache()


def split(
    endpoint: str | None,
    base: str,
    live: Iterable[str],
    sizes: dict[str, int],
    load: Callable[[str], pa.Table],
) -> tuple[list[pa.Table], list[str]]:
    """The live files of the log under `base` as (tables held in memory, paths to scan
    lazily). Small files not cached yet are read now with `load`; one that fails to load
    (gone since the listing, say) is left to the lazy scan, whose failure `Db` retries."""
    live = list(live)
    cache.retain(endpoint, base, live)
    tables: dict[str, pa.Table] = {}
    missing: list[str] = []
    lazy: list[str] = []
    for path in live:
        size = sizes.get(path)
        key = (endpoint, path, size or 0)
        if size is None or size > FILE_BYTES or cache.too_big(key):
            lazy.append(path)
        elif (table := cache.get(key)) is not None:
            tables[path] = table
        else:
            missing.append(path)
    if missing:
        with ThreadPoolExecutor(min(READERS, len(missing))) as pool:
            loaded = list(pool.map(lambda p: _try(load, p), missing))
        for path, table in zip(missing, loaded, strict=True):
            if table is not None and cache.put((endpoint, path, sizes[path]), table):
                tables[path] = table
            else:
                lazy.append(path)
    return [tables[p] for p in live if p in tables], sorted(lazy)


def _try(load: Callable[[str], pa.Table], path: str) -> pa.Table | None:
    try:
        return load(path)
    except Exception:  # pyarrow's OSError on a vanished object: the lazy scan reports it
        return None
