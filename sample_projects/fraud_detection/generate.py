"""Seeded, synthetic card-transaction data for the fraud-detection sample project.

Nothing is downloaded: every column is drawn with numpy and assembled with polars, fully
vectorised, so a million rows take a second or two. The same arguments always give the
same frame.

Fraud is drawn from a latent logistic score of several features (amount far above the
card's 30-day average, night hours, foreign use, distance from home, new cards, a poor
device score, velocity and the merchant category) so a gradient-boosted model can learn
it well but not perfectly.

`drift=True` gives a later batch whose world has moved on: amounts are about 1.6x larger,
a new merchant category ``crypto_exchange`` takes ~8% of the traffic and fraud has moved
there and into daytime hours, relying far less on night-time use.

    python -m workbench_samples.fraud_detection.generate --rows 50000 --out data/tx.parquet
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

DEFAULT_START = datetime(2026, 1, 1)

CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurants",
    "fuel",
    "online_retail",
    "electronics",
    "travel",
    "entertainment",
    "health",
)
DRIFT_CATEGORY = "crypto_exchange"

# Share of transactions per category (clean world), in CATEGORIES order.
_CATEGORY_P = np.array([0.24, 0.16, 0.12, 0.16, 0.07, 0.06, 0.10, 0.09])
# log(amount / avg_amount_30d) offset per category: electronics and travel are big tickets.
_CATEGORY_AMOUNT = np.array([-0.1, -0.4, 0.0, 0.1, 1.0, 1.3, -0.3, 0.1, 0.9])
# Chance a transaction is made abroad, per category (last entry: crypto_exchange).
_CATEGORY_FOREIGN = np.array([0.005, 0.02, 0.01, 0.05, 0.03, 0.25, 0.02, 0.005, 0.10])
# Fraud log-odds added per category, clean world and drifted world.
_CATEGORY_RISK = np.array([-0.5, -0.3, -0.2, 0.6, 0.9, 0.4, 0.0, -0.6, 0.0])
_CATEGORY_RISK_DRIFT = np.array([-0.5, -0.3, -0.2, 0.3, 0.5, 0.2, 0.0, -0.6, 2.6])

# Relative traffic per hour of day: quiet nights, busy afternoons and evenings.
_HOUR_WEIGHTS = np.array(
    [
        *(0.9, 0.6, 0.4, 0.3, 0.3, 0.5),  # 00-05
        *(1.2, 2.5, 3.5, 4.2, 4.6, 5.2),  # 06-11
        *(6.0, 5.6, 5.0, 4.9, 5.2, 5.8),  # 12-17
        *(6.2, 5.8, 4.8, 3.6, 2.4, 1.5),  # 18-23
    ]
)

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_NULL_RATE = 0.002
_DRIFT_AMOUNT = 1.6


def _epoch_us(moment: datetime) -> int:
    """Microseconds since 1970-01-01 of a naive (or UTC-converted aware) datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _with_nulls(values: np.ndarray, rng: np.random.Generator, name: str) -> pl.Series:
    """A Float64 series with ~0.2% of its values made null (not NaN)."""
    values = values.copy()
    values[rng.random(values.shape[0]) < _NULL_RATE] = np.nan
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None)


def generate(
    n_rows: int = 50_000,
    seed: int = 7,
    start: datetime | None = None,
    days: int = 30,
    drift: bool = False,
) -> pl.DataFrame:
    """Return `n_rows` synthetic card transactions, sorted by `ts`.

    `start` defaults to 2026-01-01 (naive, read as UTC); for a drift batch it defaults to
    `days` days later, so a clean batch and a drift batch with the same `days` follow on.
    """
    if n_rows < 0:
        raise ValueError("n_rows must not be negative")
    if days < 1:
        raise ValueError("days must be at least 1")
    if start is None:
        start = DEFAULT_START + timedelta(days=days) if drift else DEFAULT_START
    # A separate stream for the drift batch, so it is not a rescaled copy of the clean one.
    rng = np.random.default_rng([seed, 1 if drift else 0])
    n = n_rows

    # Time: a day, an hour from the daily traffic curve, then a moment within that hour.
    hour_p = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
    offset = (
        rng.integers(0, days, n, dtype=np.int64) * _US_PER_DAY
        + rng.choice(24, n, p=hour_p).astype(np.int64) * _US_PER_HOUR
        + rng.integers(0, _US_PER_HOUR, n, dtype=np.int64)
    )
    offset.sort()
    ts_us = offset + _epoch_us(start)
    hour = (ts_us // _US_PER_HOUR) % 24

    # Merchant category; the drift batch adds crypto_exchange at ~8% of traffic.
    if drift:
        cat_p = np.append(_CATEGORY_P * 0.92, 0.08)
        names = [*CATEGORIES, DRIFT_CATEGORY]
    else:
        cat_p = _CATEGORY_P
        names = list(CATEGORIES)
    cat = rng.choice(len(names), n, p=cat_p / cat_p.sum())

    # Card history: age, typical spend, recent velocity.
    card_age = np.floor(rng.gamma(1.2, 500.0, n)).astype(np.int64)
    avg_amount = np.exp(rng.normal(3.9, 0.5, n))
    num_tx = rng.poisson(2.5, n).astype(np.int64)

    # This transaction: amount relative to the card's usual spend, place, device.
    log_ratio = _CATEGORY_AMOUNT[cat] + rng.normal(0.0, 0.7, n)
    amount = avg_amount * np.exp(log_ratio)
    is_foreign = (rng.random(n) < _CATEGORY_FOREIGN[cat]).astype(np.int64)
    distance = np.where(
        is_foreign == 1,
        np.exp(rng.normal(7.0, 0.6, n)),
        np.exp(rng.normal(1.6, 1.0, n)),
    )
    device = rng.beta(6.0, 2.0, n)

    if drift:
        amount *= _DRIFT_AMOUNT
        avg_amount *= 1.15

    # Latent fraud score -> probability -> label.
    night = (hour < 6).astype(np.float64)
    daytime = ((hour >= 9) & (hour < 18)).astype(np.float64)
    new_card = (card_age < 30).astype(np.float64)
    velocity = np.minimum(num_tx, 10) - 2.5
    far = np.log1p(distance) - 2.0
    rel_amount = np.log(amount / avg_amount)
    if drift:
        logit = (
            -5.9
            + 0.6 * rel_amount
            + 0.2 * night
            + 1.2 * daytime
            + 0.6 * is_foreign
            + 0.15 * far
            + 0.8 * new_card
            - 2.5 * (device - 0.75)
            + 0.2 * velocity
            + _CATEGORY_RISK_DRIFT[cat]
        )
    else:
        logit = (
            -5.9
            + 1.4 * rel_amount
            + 1.9 * night
            + 1.2 * is_foreign
            + 0.25 * far
            + 1.7 * new_card
            - 7.0 * (device - 0.75)
            + 0.35 * velocity
            + _CATEGORY_RISK[cat]
        )
    is_fraud = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    width = max(len(str(max(n - 1, 0))), 6)
    prefix = f"tx-{seed}-{'d' if drift else ''}"
    return pl.DataFrame(
        [
            pl.Series("ts", ts_us, dtype=pl.Int64).cast(pl.Datetime("us")),
            pl.Series("amount", np.round(amount, 2), dtype=pl.Float64),
            pl.Series("merchant_category", names, dtype=pl.Utf8).gather(cat),
            pl.Series("card_age_days", card_age, dtype=pl.Int64),
            pl.Series("hour", hour, dtype=pl.Int64),
            _with_nulls(np.round(distance, 2), rng, "distance_from_home_km"),
            pl.Series("num_tx_last_24h", num_tx, dtype=pl.Int64),
            pl.Series("avg_amount_30d", np.round(avg_amount, 2), dtype=pl.Float64),
            pl.Series("is_foreign", is_foreign, dtype=pl.Int64),
            _with_nulls(np.round(device, 4), rng, "device_score"),
            pl.Series("is_fraud", is_fraud, dtype=pl.Int64),
        ]
    ).select(
        pl.concat_str(
            pl.lit(prefix), pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.Utf8).str.zfill(width)
        ).alias("transaction_id"),
        pl.all(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench_samples.fraud_detection.generate",
        description="Write synthetic card transactions for the fraud-detection sample.",
    )
    parser.add_argument("--rows", type=int, default=50_000, help="number of rows (default 50000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--days", type=int, default=30, help="days the data spans (default 30)")
    parser.add_argument("--drift", action="store_true", help="generate a later, drifted batch")
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=None,
        help="first day, ISO format (default 2026-01-01; drift: DAYS later)",
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
    rate = float(df["is_fraud"].mean() or 0.0)
    kind = "drifted " if args.drift else ""
    print(f"wrote {df.height:,} {kind}transactions ({rate:.2%} fraud) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
