"""Segment report speed: 10M logged predictions x 50 segment groups, labels for a share.

Writes the predictions (2 segment features of 25 groups each, in the window) and labels
for 30 % of them as Parquet in the logs' layout (DuckDB writes them: the data is not what
is timed), then times the live segment report over them: the DuckDB join and GROUP BY into
cells, every group's metric and positive rate, the 200-resample bootstrap and the fairness
measures (`monitoring.segments.compute`, everything `report()` does but read the registry).
Also prints what labelling the segments costs the serving side per record.

    python benchmarks/segments.py [--rows 10000000] [--keep DIR]

The wall time depends on what else the machine runs: the CPU time of the process (all of
DuckDB's threads) is printed beside it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb
import numpy as np

from workbench.config_monitoring import MonitoringSection
from workbench.monitoring import segments
from workbench.store.db import Db
from workbench.store.parquet_log import utcnow
from workbench.tasks import ModelTask
from workbench.training.fairness import Segmenter, SegmentSpec, spec_of_values

GOAL_S = 10.0
GROUPS_PER_FEATURE = 25

_PREDICTIONS = """
COPY (
    SELECT TIMESTAMPTZ '{now}' - to_microseconds(CAST(i % 3_000_000_000 AS BIGINT)) AS ts,
           'r' || i AS request_id, 'bench' AS model, CAST(1 AS BIGINT) AS version,
           'production' AS variant, '{{"amount": 1.0}}' AS features,
           least(1.0, 0.3 * CAST(hash(i) % 100 < 20 AS DOUBLE) + 0.7 * random()
                 + CASE WHEN i % 25 = 3 THEN 0.2 ELSE 0 END) AS output,
           1.0 AS latency_ms, CAST(200 AS BIGINT) AS status, CAST(NULL AS VARCHAR) AS error,
           MAP {{'region': 'r' || (i % 25), 'channel': 'c' || ((i // 25) % 25)}} AS segments
    FROM range({rows}) t(i)
) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 500000)
"""
_LABELS = """
COPY (
    SELECT TIMESTAMPTZ '{now}' AS ts, 'r' || i AS request_id,
           CAST(hash(i) % 100 < 20 AS DOUBLE) AS label, 'bench' AS source
    FROM range({rows}) t(i) WHERE i % 10 < 3
) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
"""


def write_logs(root: Path, rows: int) -> None:
    now = utcnow().isoformat()
    day = utcnow().strftime("%Y-%m-%d")
    for log, sql in (("predictions", _PREDICTIONS), ("labels", _LABELS)):
        folder = root / log / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect()
        con.execute(sql.format(now=now, rows=rows, path=folder / "part-0.parquet"))
        con.close()


def serving_overhead(n: int = 100_000) -> float:
    """Microseconds per record to label 2 segment features (a lookup and a bisect)."""
    amount = spec_of_values(np.arange(1000.0), 4)
    seg = Segmenter({"region": SegmentSpec("categorical"), "amount": amount})
    records = [{"region": f"r{i % 25}", "amount": float(i % 1000)} for i in range(n)]
    start = time.perf_counter()
    seg.labels(records)
    return (time.perf_counter() - start) / n * 1e6


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    import os

    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keep", help="write the logs here and keep them")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="wb-segments-"))
    try:
        started = time.perf_counter()
        if not (root / "predictions").exists():  # --keep DIR from an earlier run: reused
            write_logs(root, args.rows)
            print(f"(wrote {args.rows:,} predictions in {time.perf_counter() - started:.1f} s)")
        mon = MonitoringSection(segments=["region", "channel"], sensitive=["region"])
        task = ModelTask("binary", [0, 1], 0.5, "y")
        with Db(root) as db:
            start, cpu0 = time.perf_counter(), _cpu()
            rep = segments.compute(db, "bench", 1, task, "auc", mon, "1h")
            seconds, cpu = time.perf_counter() - start, _cpu() - cpu0
        groups = len(rep.groups) + rep.suppressed
        print(
            f"segments: {rep.rows:,} predictions x {groups} groups in {seconds:.1f} s "
            f"(goal {GOAL_S:.0f} s: {seconds / GOAL_S:.2f}x)"
        )
        print(f"  ({cpu:.1f} s of CPU in this process, all threads; load average {_load()})")
        print(f"  alerts: {rep.alerts}")
        print(f"serving: labelling 2 segment features costs {serving_overhead():.2f} us a record")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
