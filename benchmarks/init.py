"""Schema inference speed (`workbench init --data`, `workbench schema infer`).

Prints the time to read and infer the [schema] and task of a generated Parquet file of 1M rows
x 50 columns (30 floats, some with missing values, 10 ints, 5 low-cardinality strings, 2 bools,
an id, a timestamp and a binary target), beside the 5 s goal.

Then, per trainer, the training time on the same 50,000-row sample (benchmarks/trainers.py).

    python benchmarks/init.py [--rows 1000000] [--keep DIR] [--no-trainers] [--rounds 200]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.data.infer import infer
from workbench.data.snapshot import read_data
from workbench.data.toml_text import schema_block

GOAL_S = 5.0


def generate(rows: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {
        "row_id": np.arange(rows, dtype=np.int64),
        "ts": pl.datetime_range(
            pl.datetime(2024, 1, 1),
            pl.datetime(2024, 1, 1) + pl.duration(seconds=rows - 1),
            "1s",
            eager=True,
        ),
    }
    for i in range(30):
        values = rng.gamma(2.0, 10.0 + i, rows) if i % 2 else rng.normal(i, 1 + i, rows)
        series = pl.Series(f"f{i}", values)
        if i % 5 == 0:  # 2% missing
            series = (
                pl.select(pl.when(pl.lit(rng.random(rows) < 0.02)).then(None).otherwise(series))
                .to_series()
                .alias(f"f{i}")
            )
        cols[f"f{i}"] = series
    for i in range(10):
        cols[f"n{i}"] = rng.integers(0, 10 ** (1 + i % 4), rows)
    for i in range(5):
        levels = np.array([f"level_{j}" for j in range(3 + 4 * i)])
        cols[f"c{i}"] = levels[rng.integers(0, len(levels), rows)]
    cols["flag_a"] = rng.random(rows) < 0.3
    cols["flag_b"] = rng.random(rows) < 0.7
    cols["label"] = (rng.random(rows) < 0.1).astype(np.int64)
    frame = pl.DataFrame({k: v for k, v in cols.items()})
    assert frame.width == 50, frame.width
    return frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None, help="write the Parquet file here")
    ap.add_argument("--no-trainers", action="store_true", help="skip the per-trainer timings")
    ap.add_argument("--rounds", type=int, default=200, help="boosting rounds per trainer")
    args = ap.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="wb-init-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        path = tmp / "data.parquet"
        t0 = time.perf_counter()
        generate(args.rows).write_parquet(path)
        size_mb = path.stat().st_size / 1e6
        print(
            f"  (wrote {args.rows / 1e6:g}M rows x 50 columns in "
            f"{time.perf_counter() - t0:.1f} s; {size_mb:.0f} MB)"
        )
        t0 = time.perf_counter()
        read = read_data(path)
        t_read = time.perf_counter() - t0
        result = infer(read.frame, target="label", notes=read.notes)
        block = schema_block(result)
        total = time.perf_counter() - t0
        ok = "ok" if total < GOAL_S else "MISSED"
        print(
            f"schema inference, {args.rows / 1e6:g}M rows x 50 columns from Parquet: "
            f"{total:.2f} s (read {t_read:.2f} s, infer {total - t_read:.2f} s; goal < "
            f"{GOAL_S:g} s: {total / GOAL_S:.2f}x of budget, {ok})"
        )
        print(
            f"  task: {result.task} ({result.task_reason}); {len(result.columns)} columns "
            f"declared, {len(result.left_out)} left out, {block.count(chr(10))} TOML lines"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_trainers:  # per trainer, training time on the same 50,000-row sample
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import trainers

        trainers.report(50_000, args.rounds)


if __name__ == "__main__":
    main()
