"""Seeded, synthetic support tickets for the ticket-routing sample project (multiclass).

Nothing is downloaded: every column is drawn with numpy and assembled with polars, fully
vectorised (50,000 rows in a few tens of milliseconds). The same arguments always give the
same frame.

Each ticket goes to one of five queues (`queue`: billing, technical, account, shipping,
other), drawn from a softmax over per-queue scores of the ticket's features: an unpaid
invoice points to billing, failed logins to account, a recent hardware order to shipping,
a long message with an attachment about a device to technical, a short note from a new
customer to other. The queue is a random draw from those scores, so a model routes most
tickets right and some wrong, as a human triager would.

`drift=True` gives a later batch after a product launch: a new product, `smart_lock`, takes
about 30% of the tickets (it is not in the schema's `allowed` list, so `workbench validate`
flags it). Its buyers are new customers who write from the lock's app chat, about late
deliveries and pairing the lock (short messages that are technical, not account trouble);
a launch sale on everything means more, and more recent, orders; so the queue mix moves
towards shipping.

    python -m workbench_samples.ticket_routing.generate --rows 50000 --out data/tickets.parquet
"""

from __future__ import annotations

import sys
from datetime import datetime

import numpy as np
import polars as pl
from workbench_samples import _common
from workbench_samples._common import (
    begin,
    hour_and_weekday,
    leading_columns,
)

DEFAULT_START = datetime(2026, 2, 1)
DEFAULT_DAYS = 30

QUEUES: tuple[str, ...] = ("billing", "technical", "account", "shipping", "other")
PRODUCTS: tuple[str, ...] = ("router", "camera", "thermostat", "mobile_app", "cloud_backup")
DRIFT_PRODUCT = "smart_lock"
PLANS: tuple[str, ...] = ("free", "basic", "pro", "business")
CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web_form")

#: For the demo: how the drift batch's world moved on.
DRIFT_STORY = "a product launch: smart_lock tickets from new customers, a sale, more shipping"

_PRODUCT_P = np.array([0.28, 0.20, 0.14, 0.22, 0.16])
_HARDWARE = np.array([1, 1, 1, 0, 0, 1])  # per product, smart_lock last
_HAS_ORDER = np.array([0.85, 0.80, 0.80, 0.25, 0.20, 0.97])
_ORDER_DAYS = np.array([45.0, 45.0, 60.0, 90.0, 90.0, 7.0])  # mean days since the order
_PLAN_P = np.array([0.35, 0.30, 0.25, 0.10])
_CHANNEL_P = np.array([0.40, 0.30, 0.12, 0.18])
_CHANNEL_P_LOCK = np.array([0.15, 0.65, 0.10, 0.10])
# tickets per hour of day: office hours, a long evening tail
_HOUR_WEIGHTS = np.array(
    [
        *(0.4, 0.3, 0.2, 0.2, 0.2, 0.3),  # 00-05
        *(0.8, 1.6, 3.0, 4.2, 4.6, 4.4),  # 06-11
        *(3.8, 4.2, 4.4, 4.0, 3.6, 3.0),  # 12-17
        *(2.6, 2.4, 2.0, 1.6, 1.0, 0.6),  # 18-23
    ]
)


def generate(
    n_rows: int = 50_000,
    seed: int = 7,
    start: datetime | None = None,
    days: int = DEFAULT_DAYS,
    drift: bool = False,
) -> pl.DataFrame:
    """Return `n_rows` synthetic support tickets, sorted by `ts` (when it was opened).

    `start` defaults to 2026-02-01 (naive, read as UTC); for a drift batch it defaults to
    `days` days later, so a clean batch and a drift batch with the same `days` follow on."""
    rng, ts_us = begin(
        n_rows, seed, start, days, drift, default_start=DEFAULT_START, hour_weights=_HOUR_WEIGHTS
    )
    n = n_rows
    hour, weekday = hour_and_weekday(ts_us)
    if drift:
        product_p = np.append(_PRODUCT_P * 0.7, 0.3)
        products = [*PRODUCTS, DRIFT_PRODUCT]
    else:
        product_p, products = _PRODUCT_P, list(PRODUCTS)
    product = rng.choice(len(products), n, p=product_p / product_p.sum())
    plan = rng.choice(len(PLANS), n, p=_PLAN_P)
    # the lock's buyers are new customers who write from the lock's app (its chat)
    lock = product == len(PRODUCTS)
    channel = np.where(
        lock,
        rng.choice(len(CHANNELS), n, p=_CHANNEL_P_LOCK),
        rng.choice(len(CHANNELS), n, p=_CHANNEL_P),
    )

    tenure = np.floor(np.where(lock, rng.gamma(1.0, 25.0, n), rng.gamma(1.1, 420.0, n)))
    tenure = tenure.astype(np.int64)
    past = rng.poisson(0.4 + 0.6 * (tenure > 365), n).astype(np.int64)
    # the launch came with a sale on everything: more customers ordered, and lately
    has_order = rng.random(n) < _HAS_ORDER[product] + (0.2 if drift else 0.0)
    order_days = np.floor(rng.exponential(_ORDER_DAYS[product] * (0.5 if drift else 1.0), n))
    days_since_order = np.where(has_order, np.minimum(order_days, 365.0), np.nan)
    owes = rng.random(n) < np.where(plan == 0, 0.02, 0.14)
    amount_due = np.where(owes, np.round(np.exp(rng.normal(3.6, 0.7, n)), 2), 0.0)
    failed_logins = np.where(rng.random(n) < 0.15, rng.poisson(3.0, n) + 1, 0).astype(np.int64)
    attachment = (rng.random(n) < np.where(_HARDWARE[product] == 1, 0.35, 0.2)).astype(np.int64)
    body_words = np.maximum(5, np.round(np.exp(rng.normal(4.0, 0.7, n)))).astype(np.int64)
    subject_words = 1 + rng.poisson(5.0, n).astype(np.int64)

    logits = _queue_scores(product, plan, channel, tenure, past, days_since_order, amount_due,
                           failed_logins, attachment, body_words, drift)  # fmt: skip
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    queue = (rng.random(n)[:, None] > p.cumsum(axis=1)[:, :-1]).sum(axis=1)

    prefix = f"tk-{seed}-{'d' if drift else ''}"
    return pl.DataFrame(
        [
            *leading_columns("ticket_id", prefix, ts_us, hour, weekday),
            pl.Series("product", products, dtype=pl.Utf8).gather(product),
            pl.Series("plan", PLANS, dtype=pl.Utf8).gather(plan),
            pl.Series("channel", CHANNELS, dtype=pl.Utf8).gather(channel),
            pl.Series("subject_words", subject_words, dtype=pl.Int64),
            pl.Series("body_words", body_words, dtype=pl.Int64),
            pl.Series("has_attachment", attachment, dtype=pl.Int64),
            pl.Series("customer_tenure_days", tenure, dtype=pl.Int64),
            pl.Series("past_tickets_90d", past, dtype=pl.Int64),
            pl.Series("days_since_order", days_since_order, dtype=pl.Float64).fill_nan(None),
            pl.Series("amount_due", amount_due, dtype=pl.Float64),
            pl.Series("failed_logins_24h", failed_logins, dtype=pl.Int64),
            pl.Series("queue", QUEUES, dtype=pl.Utf8).gather(queue),
        ]
    )


def _queue_scores(
    product: np.ndarray,
    plan: np.ndarray,
    channel: np.ndarray,
    tenure: np.ndarray,
    past: np.ndarray,
    days_since_order: np.ndarray,
    amount_due: np.ndarray,
    failed_logins: np.ndarray,
    attachment: np.ndarray,
    body_words: np.ndarray,
    drift: bool,
) -> np.ndarray:
    """(n, 5) unnormalised log-odds of each queue, in QUEUES order."""
    hardware = _HARDWARE[product].astype(np.float64)
    software = 1.0 - hardware
    recent = np.nan_to_num(days_since_order, nan=999.0) < 21
    length = np.log(body_words / 55.0)
    paid = (plan > 0).astype(np.float64)
    billing = -0.6 + 3.4 * (amount_due > 0) + 0.6 * paid - 1.0 * (plan == 0) + 0.5 * (channel == 0)
    technical = (
        -0.45
        + 1.0 * hardware
        + 1.4 * attachment
        + 0.9 * length
        + 0.7 * (plan == 3)
        + 0.3 * (channel == 1)
    )
    account = (
        -1.3
        + 1.2 * np.minimum(failed_logins, 5)
        + 0.6 * ((channel == 1) | (channel == 2))
        - 0.5 * length
        + 1.0 * software
        + 0.8 * (tenure < 30)
    )
    shipping = -2.3 + 4.0 * recent + 0.8 * hardware - 0.8 * attachment
    other = -0.5 - 1.0 * length + 0.7 * (channel == 3) + 0.6 * (past == 0) - 0.4 * paid
    if drift:  # the launch: deliveries run late, and pairing the lock with its app fails
        # (short messages, no attachment: they look like account trouble, but are technical)
        is_lock = (product == len(PRODUCTS)).astype(np.float64)
        shipping = shipping + 1.0 * is_lock
        technical = technical + is_lock * (1.8 - 1.4 * length - 1.2 * attachment)
    return np.column_stack([billing, technical, account, shipping, other])


def _describe(df: pl.DataFrame) -> str:
    if not df.height:
        return "no tickets"
    shares = df["queue"].value_counts(normalize=True, sort=True)
    return ", ".join(f"{q} {s:.0%}" for q, s in shares.iter_rows())


def main(argv: list[str] | None = None) -> int:
    return _common.main(
        argv,
        prog="python -m workbench_samples.ticket_routing.generate",
        description="Write synthetic support tickets for the ticket-routing sample.",
        generate=generate,
        describe=_describe,
        default_days=DEFAULT_DAYS,
        default_start="2026-02-01",
    )


if __name__ == "__main__":
    sys.exit(main())
