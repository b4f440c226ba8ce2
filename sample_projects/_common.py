"""What the delivery_time and ticket_routing generators share: timestamps drawn over a span
on a daily traffic curve, ids, nulls, and the command line that writes a batch to a file.

A sample's `generate.py` provides `generate(n_rows, seed, start, days, drift)` returning a
polars frame (same arguments, same frame) and, for the demo, `DRIFT_STORY`: a few words on
how the drift batch's world moved on.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR


def epoch_us(moment: datetime) -> int:
    """Microseconds since 1970-01-01 of a naive (or UTC-converted aware) datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def check_args(n_rows: int, days: int) -> None:
    if n_rows < 0:
        raise ValueError("n_rows must not be negative")
    if days < 1:
        raise ValueError("days must be at least 1")


def begin(
    n_rows: int,
    seed: int,
    start: datetime | None,
    days: int,
    drift: bool,
    *,
    default_start: datetime,
    hour_weights: np.ndarray,
) -> tuple[np.random.Generator, np.ndarray]:
    """A batch's random stream and its `n_rows` sorted timestamps (`timestamps`), after
    checking the arguments. `start` defaults to `default_start`, for a drift batch `days`
    days later, so a clean batch and a drift batch with the same `days` follow on."""
    check_args(n_rows, days)
    if start is None:
        start = default_start + timedelta(days=days) if drift else default_start
    # A separate stream for the drift batch, so it is not a rescaled copy of the clean one.
    rng = np.random.default_rng([seed, 1 if drift else 0])
    return rng, timestamps(rng, n_rows, start, days, hour_weights)


def timestamps(
    rng: np.random.Generator, n: int, start: datetime, days: int, hour_weights: np.ndarray
) -> np.ndarray:
    """`n` sorted moments (epoch microseconds) over `days` days from `start`: a day, an hour
    from the daily curve `hour_weights` (24 relative weights), a moment within the hour."""
    hour_p = hour_weights / hour_weights.sum()
    offset = (
        rng.integers(0, days, n, dtype=np.int64) * US_PER_DAY
        + rng.choice(24, n, p=hour_p).astype(np.int64) * US_PER_HOUR
        + rng.integers(0, US_PER_HOUR, n, dtype=np.int64)
    )
    offset.sort()
    return offset + epoch_us(start)


def hour_and_weekday(ts_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (0-23) and weekday (0 = Monday) of epoch-microsecond moments."""
    days = ts_us // US_PER_DAY
    # 1970-01-01 was a Thursday (weekday 3)
    return (ts_us // US_PER_HOUR) % 24, (days + 3) % 7


def with_nulls(values: np.ndarray, rng: np.random.Generator, name: str, rate: float) -> pl.Series:
    """A Float64 series with about `rate` of its values made null (not NaN)."""
    values = values.astype(np.float64, copy=True)
    values[rng.random(values.shape[0]) < rate] = np.nan
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None)


def leading_columns(
    id_column: str, prefix: str, ts_us: np.ndarray, hour: np.ndarray, weekday: np.ndarray
) -> list[pl.Series]:
    """A frame's first columns: its ids (`ids`) named `id_column`, `ts`, `hour`, `weekday`."""
    return [
        ids(prefix, ts_us.shape[0]).alias(id_column),
        pl.Series("ts", ts_us, dtype=pl.Int64).cast(pl.Datetime("us")),
        pl.Series("hour", hour, dtype=pl.Int64),
        pl.Series("weekday", weekday, dtype=pl.Int64),
    ]


def ids(prefix: str, n: int) -> pl.Series:
    """`<prefix>000000`, `<prefix>000001`, ...: zero-padded to six digits or more."""
    width = max(len(str(max(n - 1, 0))), 6)
    numbers = pl.Series(np.arange(n, dtype=np.int64)).cast(pl.Utf8).str.zfill(width)
    return (prefix + numbers).alias("id") if n else pl.Series("id", [], dtype=pl.Utf8)


def main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    generate: Callable[..., pl.DataFrame],
    describe: Callable[[pl.DataFrame], str],
    default_days: int,
    default_start: str,
) -> int:
    """The generator's command line: --rows --seed --days --drift --start --out."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rows", type=int, default=50_000, help="number of rows (default 50000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    days_help = f"days the data spans (default {default_days})"
    parser.add_argument("--days", type=int, default=default_days, help=days_help)
    parser.add_argument("--drift", action="store_true", help="generate a later, drifted batch")
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=None,
        help=f"first day, ISO format (default {default_start}; drift: DAYS later)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output .parquet or .csv file")
    args = parser.parse_args(argv)

    suffix = args.out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        parser.error(f"--out must end in .parquet or .csv (got {args.out.name!r})")
    if args.rows < 0:
        parser.error("--rows must not be negative")
    if args.days < 1:
        parser.error("--days must be at least 1")

    df = generate(args.rows, seed=args.seed, start=args.start, days=args.days, drift=args.drift)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        df.write_parquet(args.out)
    else:
        df.write_csv(args.out)
    kind = "drifted " if args.drift else ""
    print(f"wrote {df.height:,} {kind}rows ({describe(df)}) to {args.out}")
    return 0
