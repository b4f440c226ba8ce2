"""Shared logs on S3: the hand-written generations log (workbench/store/s3_log.py) against
Delta Lake (deltalake's write_deltalake / optimize), with the local-disk log as the anchor.

    WORKBENCH_TEST_S3=http://127.0.0.1:18333 .venv/bin/python benchmarks/shared_logs.py

Measures, for each of local / s3-manifest / delta: one append of a small batch (100 rows) and
of a full server flush (5000 rows), 8 writer processes x 50 appends of 100 rows (every row
present exactly once? appends/s), a count + filtered aggregate over the predictions after 500
small files, the compaction of those 500 files, and the same read after it.

    ... benchmarks/shared_logs.py reads       only the read-path figures (s3 and local):
      open_count_ms    `Db` open + one `SELECT count(*) FROM predictions`, 10 times (median;
                       `open_count_first_ms` is the first, in a fresh process)
      tui_loop_ms      one Db, 5 rounds of a query on each of 3 views (predictions, drift,
                       audit): the whole loop, and `tui_query_ms` per query
    ... benchmarks/shared_logs.py reads 20    the same through a proxy that adds 20 ms round
                       trips to the S3 server (loopback S3 answers in ~1 ms; a bucket in a
                       cloud region is ~10-30 ms away: that is where the listing costs)
    ... benchmarks/shared_logs.py compact_at  (s3 only) the read over N files of 100 rows and
                       the compaction of N files beside a day's merged file, for N = 1..128
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

WRITERS, APPENDS, SMALL, FLUSH, FILES = 8, 50, 100, 5000, 500
KEYS = {"AWS_ACCESS_KEY_ID": "workbench", "AWS_SECRET_ACCESS_KEY": "workbench"}
READ = (
    "SELECT count(*) AS n, count(DISTINCT request_id) AS d, "
    "avg(latency_ms) FILTER (WHERE status = 200) AS lat FROM predictions"
)


def rows(tag: str, n: int) -> Any:
    import pyarrow as pa

    from workbench.store.parquet_log import SCHEMAS, utcnow

    now = utcnow()
    return pa.table(
        {
            "ts": [now] * n,
            "request_id": [f"{tag}-{i}" for i in range(n)],
            "model": ["fraud"] * n,
            "version": [1] * n,
            "variant": ["stable"] * n,
            "features": ['{"amount": 12.5, "country": "DE"}'] * n,
            "output": [0.25] * n,
            "latency_ms": [1.5] * n,
            "status": [200] * n,
            "error": [None] * n,
            "segments": [None] * n,
            "passthrough": [None] * n,
        },
        schema=SCHEMAS["predictions"],
    )


def _relay(delay_s: float, reader: Any, writer: Any) -> Any:
    import asyncio

    async def pump() -> None:
        loop = asyncio.get_running_loop()
        try:
            while chunk := await reader.read(1 << 16):  # each chunk arrives delay_s later,
                loop.call_at(loop.time() + delay_s, writer.write, chunk)  # pipelined
        finally:
            loop.call_at(loop.time() + delay_s, writer.close)

    return pump()


def _proxy(target: str, rtt_ms: float, port: Any) -> None:
    """A TCP relay to `target` (host:port) adding `rtt_ms` to every round trip."""
    import asyncio

    host, _, tport = target.rpartition(":")
    half = rtt_ms / 2000

    async def serve(cr: Any, cw: Any) -> None:
        sr, sw = await asyncio.open_connection(host, int(tport))
        await asyncio.gather(_relay(half, cr, sw), _relay(half, sr, cw), return_exceptions=True)

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port.value = server.sockets[0].getsockname()[1]
        await server.serve_forever()

    asyncio.run(main())


# The three contenders: append(where, table), read(where) -> (n, distinct), compact(where) ---
def wb_append(where: Any, table: Any) -> None:
    from workbench.store.parquet_log import ParquetLog

    ParquetLog(where, "predictions").append(table)


def wb_read(where: Any) -> tuple[int, int]:
    from workbench.store.db import Db

    with Db(where) as db:
        row = db.rows(READ)[0]
    return int(row["n"]), int(row["d"])


def wb_compact(where: Any) -> None:
    from workbench.store.parquet_log import ParquetLog

    ParquetLog(where, "predictions").compact()


def _delta_opts() -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        **KEYS,
    }


def delta_append(where: str, table: Any) -> None:
    from deltalake import write_deltalake

    write_deltalake(where, table, mode="append", storage_options=_delta_opts())


def delta_read(where: str) -> tuple[int, int]:
    import duckdb
    from deltalake import DeltaTable

    con = duckdb.connect(":memory:")
    table = DeltaTable(where, storage_options=_delta_opts())
    con.register("predictions", table.to_pyarrow_dataset())
    n, d, _ = con.execute(READ).fetchone() or (0, 0, 0)
    return int(n), int(d)


def delta_compact(where: str) -> None:
    from deltalake import DeltaTable

    table = DeltaTable(where, storage_options=_delta_opts())
    table.optimize.compact()
    table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)


# Measurements -----------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _writer(kind: str, where: Any, w: int, compact: bool, ready: Any, go: Any) -> None:
    import workbench.store.s3_log as s3_log

    if not compact:
        s3_log.COMPACT_CHANCE = 0.0
    append = delta_append if kind == "delta" else wb_append
    rows("warm", 1)  # imports paid before the clock starts
    if kind == "s3":
        s3_log.client(where), s3_log.filesystem(where)
    ready.release()
    go.wait()
    for i in range(APPENDS):
        append(where, rows(f"w{w}-{i}", SMALL))


def concurrent(kind: str, where: Any, compact: bool = True) -> tuple[float, tuple[int, int]]:
    """8 writer processes (started and warm before the clock starts) x 50 appends."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [
        ctx.Process(target=_writer, args=(kind, where, w, compact, ready, go))
        for w in range(WRITERS)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    took = time.perf_counter() - start
    read = delta_read if kind == "delta" else wb_read
    return took, read(where)


def measure(kind: str, make: Callable[[str], Any]) -> dict[str, float]:
    import workbench.store.s3_log as s3_log

    append = delta_append if kind == "delta" else wb_append
    read = delta_read if kind == "delta" else wb_read
    compact = delta_compact if kind == "delta" else wb_compact
    out: dict[str, float] = {}
    where = make("lat")
    append(where, rows("warm", SMALL))
    for n, label in ((SMALL, "append_100_ms"), (FLUSH, "append_5000_ms")):
        times = [timed(lambda n=n: append(where, rows(uuid.uuid4().hex, n)))[0] for _ in range(10)]
        out[label] = statistics.median(times) * 1000
    expected = WRITERS * APPENDS * SMALL
    for compacting in (False, True):
        where = make(f"conc{compacting}")
        if kind == "delta":  # the table exists before the writers start (else they race
            append(where, rows("init", 0))  # to create it and all but one fail)
        took, (n, d) = concurrent(kind, where, compacting)
        tag = "8x50_compacting" if compacting else "8x50"
        out[f"{tag}_s"] = took
        out[f"{tag}_appends_per_s"] = WRITERS * APPENDS / took
        out[f"{tag}_exactly_once"] = float(n == d == expected)
    where = make("read")
    s3_log.COMPACT_CHANCE = 0.0
    for i in range(FILES):
        append(where, rows(f"f{i}", 20))
    out["read_500_files_ms"], (n, _) = timed(lambda: read(where))
    out["read_500_files_ms"] *= 1000
    out["compact_s"], _ = timed(lambda: compact(where))
    out["read_compacted_ms"], (n2, _) = timed(lambda: read(where))
    out["read_compacted_ms"] *= 1000
    out["rows_kept_by_compaction"] = float(n == n2 == FILES * 20)
    return out


def _fill(root: Any, log: str, files: int, n: int) -> None:
    import pyarrow as pa

    from workbench.store.parquet_log import SCHEMAS, ParquetLog, utcnow

    plog = ParquetLog(root, log)
    for i in range(files):
        if log == "predictions":
            plog.append(rows(f"{log}{i}", n))
            continue
        cols = {name: [None] * n for name in SCHEMAS[log].names}
        cols["ts"] = [utcnow()] * n
        plog.append(pa.table(cols, schema=SCHEMAS[log]))


def reads(root: Any) -> dict[str, float]:
    """The read path as the TUI, the monitor and `workbench sql` use it."""
    import workbench.store.s3_log as s3_log
    from workbench.store.db import Db

    s3_log.COMPACT_CHANCE = 0.0
    for log, files in (("predictions", 20), ("drift", 5), ("audit", 5)):
        _fill(root, log, files, 50)
    out: dict[str, float] = {}
    times = []
    for _ in range(10):
        took, _ = timed(lambda: _open_count(root))
        times.append(took * 1000)
    out["open_count_first_ms"], out["open_count_ms"] = times[0], statistics.median(times)
    queries = [
        "SELECT count(*) FROM predictions WHERE status = 200",
        "SELECT feature, max(score) FROM drift GROUP BY ALL",
        "SELECT action, count(*) FROM audit GROUP BY ALL",
    ]
    with Db(root) as db:
        start = time.perf_counter()
        for _ in range(5):
            for sql in queries:
                db.rows(sql)
        out["tui_loop_ms"] = (time.perf_counter() - start) * 1000
    out["tui_query_ms"] = out["tui_loop_ms"] / 15
    return out


def _open_count(root: Any) -> int:
    from workbench.store.db import Db

    with Db(root) as db:
        return int(db.rows("SELECT count(*) AS n FROM predictions")[0]["n"])


def compact_at(make: Callable[[str], Any]) -> None:
    """COMPACT_AT for S3: what N live files cost each read, against what merging them costs."""
    import workbench.store.s3_log as s3_log
    from workbench.store.parquet_log import ParquetLog

    s3_log.COMPACT_CHANCE = 0.0
    print(f"{'files':>6}{'read_ms':>10}{'compact_s':>11}{'compact_day_s':>15}")
    for n in (1, 4, 8, 16, 32, 64, 128):
        root = make(f"n{n}")
        _fill(root, "predictions", n, 100)
        _open_count(root)  # warm: the listing is what open_count_ms measures
        took = statistics.median(timed(lambda r=root: wb_read(r))[0] for _ in range(5))
        compact_s, _ = timed(lambda r=root: ParquetLog(r, "predictions").compact())
        # The steady state: a day's merged file (200k rows) plus N new parts is rewritten.
        day = make(f"d{n}")
        ParquetLog(day, "predictions").append(rows("day", 200_000))
        _fill(day, "predictions", n, 100)
        day_s, _ = timed(lambda r=day: ParquetLog(r, "predictions").compact())
        print(f"{n:>6}{took * 1000:>10.1f}{compact_s:>11.2f}{day_s:>15.2f}", flush=True)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    endpoint = os.environ.get("WORKBENCH_TEST_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("set WORKBENCH_TEST_S3 (or AWS_ENDPOINT_URL) to an S3 server")
    os.environ.update(KEYS, AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1")
    proxy = None
    if len(sys.argv) > 2:  # a round-trip time to add, in ms
        ctx = mp.get_context("spawn")
        port = ctx.Value("i", 0)
        target = endpoint.split("://", 1)[1]
        proxy = ctx.Process(target=_proxy, args=(target, float(sys.argv[2]), port), daemon=True)
        proxy.start()
        while not port.value:
            time.sleep(0.01)
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port.value}"
    import boto3

    from workbench.project import LogsRoot

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"wb-bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    results: dict[str, dict[str, float]] = {}
    makers: dict[str, Callable[[str], Any]] = {
        "local": lambda tag: tmp / tag,
        "s3": lambda tag: LogsRoot(tmp / f"s3{tag}", f"s3://{bucket}/wb-{tag}"),
        "delta": lambda tag: f"s3://{bucket}/delta-{tag}/predictions",
    }
    try:
        if mode == "compact_at":
            return compact_at(makers["s3"])
        for kind, make in makers.items():
            if mode == "reads" and kind != "delta":
                results[kind] = reads(make("reads"))
            elif mode == "all":
                results[kind] = measure(kind, make)
            else:
                continue
            print(kind, results[kind], file=sys.stderr, flush=True)
    finally:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
        if proxy is not None:
            proxy.terminate()
    print(f"{'figure':<30}" + "".join(f"{k:>12}" for k in results) + "    s3/local    s3/delta")
    for figure in results["local"]:
        vals = [results[k][figure] for k in results]
        ratios = [vals[1] / v if v else float("nan") for v in (vals[0], *vals[2:])]
        print(f"{figure:<30}" + "".join(f"{v:>12.2f}" for v in [*vals, *ratios]))


if __name__ == "__main__":
    main()
