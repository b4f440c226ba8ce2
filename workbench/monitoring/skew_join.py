"""Feature skew's join: the served rows against the offline rows of the same entity, in
memory that does not grow with either side.

A join of two wide inputs in random key order has to move one of them: DuckDB's hash join
over 1,000 features (one statement, a `CASE` per feature) ran out of a 2 GB limit, and 64
features a statement (16 statements, each re-reading the served lists) took 236 s for 200,000
rows here. So this is a partitioned hash join (Grace) of our own, in numpy:

1. Both sides are streamed once, as Arrow batches out of DuckDB (the log; the offline
   Parquet files, which DuckDB reads itself), and each batch is cut by a hash of its key into
   `buckets` spill files in a temporary directory: the served rows as they are (Arrow IPC:
   key, time, the typed lists, the JSON where needed), the offline rows as their keys (IPC),
   their numbers as one feature-major float64 block and their categories as one
   feature-major string array per batch.
2. Each bucket (both sides of it: about `BUCKET_BYTES` a side) is read back, its keys joined
   in polars (ASOF on the time column when both sides have one, else one offline row per
   key), and its features compared feature-major, all features at once: numbers in numpy,
   a block of rows at a time, categories as dictionary codes.
3. The two sides spill in two threads, and two buckets compare at once (`THREADS`).

Per feature: the mismatches (numeric: relative difference over `tolerance`; otherwise not
equal; a null on one side only differs) and the `EXAMPLES` mismatches of the smallest keys.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from workbench.drift.log_layout import Layout
    from workbench.monitoring.skew_values import Codes
    from workbench.store.db import Db

EXAMPLES = 3
BUCKET_BYTES = 64 << 20  # a side of a bucket, as spilled
READ_BYTES = 48 << 20  # a streamed batch
BLOCK_ROWS = 4096  # rows compared at once
THREADS = 2  # the sides spilled at once; buckets compared at once
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # numeric | categorical
    is_bool: bool = False  # an offline bool, compared as "true" / "false"


@dataclass
class Tally:
    """What the join found: rows served (carrying the key), joined, and per feature (in the
    order asked) mismatches and examples ({key, served, offline}, smallest keys first)."""

    served: int = 0
    joined: int = 0
    mismatches: list[int] = field(default_factory=list)
    examples: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class Sources:
    """The two sides as SQL over `db`: `served` yields _key, _t, _n, _c, _j (the typed lists,
    or null, and the JSON record, or null); `offline` yields _key, (_t,) and the features."""

    served: str
    params: list[Any]
    offline: str
    offline_rows: int
    layout: Layout | None
    tables: dict[str, Any] = field(default_factory=dict)  # Arrow tables the SQL reads


def run(
    db: Db,
    src: Sources,
    features: Sequence[Feature],
    asof: bool,
    tolerance: float,
    on_progress: Progress | None = None,
    workdir: Path | None = None,
) -> Tally:
    """Join and compare; the spill directory is removed whatever happens."""
    served_rows = _count(db, src)
    width = 16 + 8 * len(features)
    buckets = max(1, math.ceil(max(served_rows, src.offline_rows) * width / BUCKET_BYTES))
    tmp = Path(tempfile.mkdtemp(prefix="wb-skew-", dir=workdir))
    say = on_progress or (lambda _w, _f: None)
    try:
        # The two sides spill at once, and two buckets compare at once: the work is in
        # DuckDB, Arrow, polars and numpy, which let go of the GIL, so both cores are used.
        with ThreadPoolExecutor(THREADS, thread_name_prefix="wb-skew") as pool:
            say("spilling both sides", 0.0)
            served = _batches(db, src.served, src.params, width, {})
            offline = _batches(db, src.offline, [], width, src.tables)
            spills = [
                pool.submit(_spill, served, tmp / "s", buckets, None),
                pool.submit(_spill, offline, tmp / "o", buckets, features),
            ]
            for job in spills:
                job.result()
            tally = Tally(served_rows, 0, [0] * len(features), [[] for _ in features])
            parts = [
                pool.submit(_bucket, db, tmp, b, src.layout, features, asof, tolerance)
                for b in range(buckets)
            ]
            for done, part in enumerate(as_completed(parts)):
                say(f"compared bucket {done + 1} of {buckets}", 0.5 + 0.5 * done / buckets)
                _merge(tally, part.result())
        return tally
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge(into: Tally, part: Tally) -> None:
    into.joined += part.joined
    for k, n in enumerate(part.mismatches):
        into.mismatches[k] += n
        if part.examples[k]:
            found = into.examples[k] + part.examples[k]
            into.examples[k] = sorted(found, key=lambda e: e["key"])[:EXAMPLES]


def _count(db: Db, src: Sources) -> int:
    cur = db.cursor()
    try:
        (n,) = cur.execute(f"SELECT count(*) FROM ({src.served})", src.params).fetchone() or (0,)
    finally:
        cur.close()
    return int(n)


# -- 1. spilling ----------------------------------------------------------------------------


def _batches(
    db: Db, sql: str, params: list[Any], width: int, tables: dict[str, Any]
) -> Iterator[pa.RecordBatch]:
    from workbench.drift.sources import prefetched

    cur = db.cursor()
    try:
        for name, table in tables.items():
            cur.register(name, table)
        reader = cur.sql(sql, params=params).to_arrow_reader(max(1024, READ_BYTES // width))
        yield from prefetched(reader)
    finally:
        cur.close()


def floats(column: Any) -> np.ndarray:
    """A column as float64, null and non-finite as NaN (the log never holds those)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_boolean(column.type) or not pa.types.is_floating(column.type):
        column = pc.cast(column, pa.float64(), safe=False)
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


def texts(column: Any, is_bool: bool = False) -> pa.Array:
    """A column as strings (a bool as "true" / "false")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, pa.string())
    text = pc.cast(column, pa.string())
    return pc.utf8_lower(text) if is_bool else text


class _Spill:
    """The spill files of one side's buckets, opened as they are first written."""

    def __init__(self, where: Path) -> None:
        where.mkdir()
        self.where = where
        self.writers: dict[tuple[int, str], Any] = {}
        self.numbers: dict[int, Any] = {}

    def write(self, b: int, name: str, batch: pa.RecordBatch) -> None:
        import pyarrow as pa

        w = self.writers.get((b, name))
        if w is None:
            w = pa.ipc.new_file(str(self.where / f"{b}.{name}"), batch.schema)
            self.writers[b, name] = w
        w.write_batch(batch)

    def write_numbers(self, b: int, block: np.ndarray) -> None:
        f = self.numbers.get(b)
        if f is None:
            f = self.numbers[b] = open(self.where / f"{b}.num", "wb")  # noqa: SIM115
        f.write(block.tobytes())

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        for f in self.numbers.values():
            f.close()


def _spill(
    batches: Iterator[pa.RecordBatch],
    where: Path,
    buckets: int,
    features: Sequence[Feature] | None,
) -> None:
    """Cut each batch by a hash of its key (column 0) into the buckets' files. `features`:
    the offline side's, whose numbers and categories are spilled feature-major."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    numeric = [f for f in features or () if f.kind == "numeric"]
    categorical = [f for f in features or () if f.kind != "numeric"]
    spill = _Spill(where)
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            keys = pl.from_arrow(batch.column(0))
            assert isinstance(keys, pl.Series)
            if buckets > 1:
                hashed = (keys.hash(seed=7) % buckets).to_numpy()
                order = np.argsort(hashed, kind="stable")
                bounds = np.searchsorted(hashed[order], np.arange(buckets + 1))
            else:
                order, bounds = np.arange(batch.num_rows), np.array([0, batch.num_rows])
            take = pa.array(order)
            if features is None:
                rows = batch.take(take)
            else:
                kept = [n for n in ("_key", "_t") if n in batch.schema.names]
                rows = batch.select(kept).take(take)
                nums = np.stack([floats(batch.column(f.name)) for f in numeric])[:, order]
                cats = [texts(batch.column(f.name), f.is_bool).take(take) for f in categorical]
            for b in range(buckets):
                lo, hi = int(bounds[b]), int(bounds[b + 1])
                if hi == lo:
                    continue
                spill.write(b, "rows", rows.slice(lo, hi - lo))
                if features is None:
                    continue
                if numeric:
                    spill.write_numbers(b, nums[:, lo:hi])
                if categorical:  # feature-major: feature k's rows at k * rows ...
                    block = pa.concat_arrays([c.slice(lo, hi - lo) for c in cats])
                    spill.write(b, "cat", pa.record_batch([block], names=["v"]))
    finally:
        spill.close()


# -- 2. one bucket ----------------------------------------------------------------------------


def _read(path: Path) -> pa.Table | None:
    import pyarrow as pa

    if not path.exists():
        return None
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _pairs(served: pa.Table, offline: pa.Table, asof: bool) -> tuple[Any, Any, Any]:
    """The joined rows: served and offline positions, sorted by key; and the keys."""
    import numpy as np
    import polars as pl

    s = pl.DataFrame({"_key": served.column("_key"), "_t": served.column("_t")})
    s = s.with_row_index("_si")
    o = pl.DataFrame({"_key": offline.column("_key")}).with_row_index("_oi")
    if asof:
        o = o.with_columns(_t=pl.Series(offline.column("_t")).cast(pl.Datetime("us")))
        o = o.drop_nulls("_t").sort("_t")
        s = s.with_columns(pl.col("_t").cast(pl.Datetime("us"))).sort("_t")
        j = s.join_asof(o, on="_t", by="_key", strategy="backward").drop_nulls("_oi")
    else:  # one offline row per key (the first the file holds)
        j = s.join(o.unique("_key", keep="first", maintain_order=True), on="_key")
    j = j.sort(["_key", "_si"])
    return (
        np.asarray(j["_si"].to_numpy(), dtype=np.int64),
        np.asarray(j["_oi"].to_numpy(), dtype=np.int64),
        j["_key"].to_list(),
    )


def _offline_numbers(path: Path, parts: list[int], width: int) -> np.ndarray:
    """The bucket's offline numbers, feature-major (features x rows)."""
    import numpy as np

    flat = np.fromfile(path, dtype=np.float64)
    blocks, at = [], 0
    for rows in parts:
        blocks.append(flat[at : at + width * rows].reshape(width, rows))
        at += width * rows
    return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]


def _offline_texts(path: Path, parts: list[int], width: int, oi: np.ndarray) -> pa.Array:
    """The bucket's offline categories of rows `oi`, feature-major (feature k's at k * J)."""
    import numpy as np
    import pyarrow as pa

    table = _read(path)
    assert table is not None
    sizes = np.asarray(parts, dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # each part's first row
    base = np.concatenate([[0], np.cumsum(sizes * width)[:-1]])  # its first value
    part = np.searchsorted(first, oi, side="right") - 1
    local = oi - first[part]
    index = base[part][None, :] + np.arange(width)[:, None] * sizes[part][None, :] + local
    return table.column("v").combine_chunks().take(pa.array(index.ravel()))


def _bucket(
    db: Db,
    tmp: Path,
    b: int,
    layout: Layout | None,
    features: Sequence[Feature],
    asof: bool,
    tolerance: float,
) -> Tally:
    """Bucket `b` joined and compared: its own tally (merged by the caller)."""
    from workbench.monitoring.skew_values import served_values

    tally = Tally(0, 0, [0] * len(features), [[] for _ in features])
    served, offline = _read(tmp / "s" / f"{b}.rows"), _read(tmp / "o" / f"{b}.rows")
    if served is None or offline is None:
        return tally
    si, oi, keys = _pairs(served, offline, asof)
    if not len(si):
        return tally
    tally.joined += len(si)
    parts = [batch.num_rows for batch in offline.to_batches()]
    num = [k for k, f in enumerate(features) if f.kind == "numeric"]
    cat = [k for k, f in enumerate(features) if f.kind != "numeric"]
    snum, scat = served_values(db, served.take(si), layout, features)
    if num:
        onum = _offline_numbers(tmp / "o" / f"{b}.num", parts, len(num))
        _numbers(snum, onum, oi, num, keys, tolerance, tally)
    if cat:
        ocat = _offline_texts(tmp / "o" / f"{b}.cat", parts, len(cat), oi)
        _texts(scat, ocat, cat, keys, tally)
    return tally


def _numbers(
    served: np.ndarray,
    offline: np.ndarray,
    oi: np.ndarray,
    positions: list[int],
    keys: list[Any],
    tolerance: float,
    tally: Tally,
) -> None:
    """Mismatches of the numeric features (feature-major), `BLOCK_ROWS` joined rows at a
    time."""
    import numpy as np

    counts = np.zeros(len(positions), dtype=np.int64)
    for start in range(0, len(oi), BLOCK_ROWS):
        s = served[:, start : start + BLOCK_ROWS]
        o = offline[:, oi[start : start + BLOCK_ROWS]]
        with np.errstate(invalid="ignore"):
            differ = np.abs(s - o) > tolerance * np.maximum(np.abs(s), np.abs(o))
        differ |= np.isnan(s) != np.isnan(o)
        hits = differ.sum(axis=1)
        counts += hits
        for hit in np.flatnonzero(hits):
            k = positions[hit]
            if _wanted(tally, k, keys[start]):
                rows = np.flatnonzero(differ[hit])[:EXAMPLES]
                _examples(tally, k, [(keys[start + r], s[hit, r], o[hit, r]) for r in rows])
    for c, k in enumerate(positions):
        tally.mismatches[k] += int(counts[c])


def _texts(
    served: Codes, offline: pa.Array, positions: list[int], keys: list[Any], tally: Tally
) -> None:
    """Mismatches of the categorical features: the served codes (features x J) against the
    offline strings (feature-major), mapped into the served dictionary."""
    import numpy as np
    import pyarrow.compute as pc

    from workbench.monitoring.skew_values import encode

    codes, words = served
    raw, owords = encode(offline)
    raw = raw.reshape(codes.shape)
    into = pc.index_in(owords, value_set=words).fill_null(-2)  # -2: no served value is it
    mapped = np.asarray(into.to_numpy(zero_copy_only=False), dtype=np.int64)
    differ = codes != np.where(raw >= 0, mapped[np.maximum(raw, 0)], -1)
    hits = differ.sum(axis=1)
    for hit in np.flatnonzero(hits):
        k = positions[hit]
        tally.mismatches[k] += int(hits[hit])
        rows = np.flatnonzero(differ[hit])[:EXAMPLES]
        if _wanted(tally, k, keys[rows[0]]):
            found = [
                (keys[r], _word(words, codes[hit, r]), _word(owords, raw[hit, r])) for r in rows
            ]
            _examples(tally, k, found)


def _word(words: pa.Array, code: Any) -> Any:
    return None if code < 0 else words[int(code)].as_py()


def _wanted(tally: Tally, k: int, smallest: Any) -> bool:
    have = tally.examples[k]
    return len(have) < EXAMPLES or smallest < have[-1]["key"]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _examples(tally: Tally, k: int, found: list[tuple[Any, Any, Any]]) -> None:
    new = [{"key": key, "served": _text(s), "offline": _text(o)} for key, s, o in found]
    tally.examples[k] = sorted(tally.examples[k] + new, key=lambda e: e["key"])[:EXAMPLES]
