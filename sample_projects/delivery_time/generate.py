"""Seeded, synthetic food-delivery orders for the delivery-time sample project (regression).

Nothing is downloaded: every column is drawn with numpy and assembled with polars, fully
vectorised (50,000 rows in a few tens of milliseconds). The same arguments always give the
same frame.

The target, `delivery_minutes`, is built the way a delivery is: the wait for a free courier
(`couriers_available` in the zone), the kitchen's preparation (the restaurant's estimate, the
basket size and the rush at lunch and dinner), the ride (the distance at a speed set by the
vehicle, the region's traffic, rush hours, the weather, black ice below -1 °C and the
courier's experience) and the hand-over, times multiplicative noise, plus an occasional long
delay (a lost courier, a wrong address). A gradient-boosted model predicts it well, never
exactly.

`drift=True` gives a later batch, winter, in the same world with its features moved where
autumn barely went: snow and fog are common and it freezes (black ice), the service now
reaches farther (distances about 1.25x longer), baskets are bigger for the holidays, and a
courier shortage leaves few couriers free. A model trained on the autumn data has hardly
seen frost or an empty zone and errs far more; one retrained on winter data learns them.

    python -m workbench_samples.delivery_time.generate --rows 50000 --out data/deliveries.parquet
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
    with_nulls,
)

DEFAULT_START = datetime(2025, 10, 1)
DEFAULT_DAYS = 60

REGIONS: tuple[str, ...] = (
    "downtown",
    "midtown",
    "riverside",
    "university",
    "suburbs",
    "industrial",
)
WEATHER: tuple[str, ...] = ("clear", "cloudy", "rain", "fog", "snow")
VEHICLES: tuple[str, ...] = ("bike", "scooter", "car")

#: For the demo: how the drift batch's world moved on.
DRIFT_STORY = "winter: snow and frost, longer distances, a courier shortage"

_REGION_P = np.array([0.26, 0.22, 0.14, 0.12, 0.18, 0.08])
# median distance (km) per region, and how much the region's traffic slows a ride
_REGION_KM = np.array([1.6, 2.4, 3.0, 2.1, 5.2, 4.0])
_REGION_SPEED = np.array([0.70, 0.80, 0.92, 0.90, 1.10, 1.00])
_REGION_HANDOFF = np.array([2.0, 1.2, 0.6, 1.5, 0.3, 0.8])  # stairs, lifts, front desks
# vehicle mix per region (bike, scooter, car): bikes downtown, cars in the suburbs
_REGION_VEHICLE = np.array(
    [
        [0.55, 0.35, 0.10],
        [0.40, 0.40, 0.20],
        [0.30, 0.45, 0.25],
        [0.55, 0.35, 0.10],
        [0.05, 0.35, 0.60],
        [0.10, 0.35, 0.55],
    ]
)
_VEHICLE_KMH = np.array([15.0, 22.0, 27.0])
_WEATHER_P = np.array([0.45, 0.30, 0.18, 0.05, 0.02])
_WEATHER_P_WINTER = np.array([0.20, 0.25, 0.14, 0.11, 0.30])
_WEATHER_SPEED = np.array([1.00, 0.98, 0.82, 0.85, 0.62])
_WEATHER_TEMP = np.array([2.0, 0.0, -1.5, -1.0, -7.0])
# orders per hour of day: lunch and dinner peaks, a quiet night
_HOUR_WEIGHTS = np.array(
    [
        *(0.6, 0.4, 0.2, 0.1, 0.1, 0.1),  # 00-05
        *(0.3, 0.8, 1.2, 1.0, 1.2, 3.5),  # 06-11
        *(5.0, 4.2, 2.0, 1.5, 1.8, 3.5),  # 12-17
        *(6.0, 6.5, 5.0, 3.0, 1.8, 1.0),  # 18-23
    ]
)
_NULL_RATE = 0.003


def generate(
    n_rows: int = 50_000,
    seed: int = 7,
    start: datetime | None = None,
    days: int = DEFAULT_DAYS,
    drift: bool = False,
) -> pl.DataFrame:
    """Return `n_rows` synthetic deliveries, sorted by `ts` (when the order was placed).

    `start` defaults to 2025-10-01 (naive, read as UTC); for a drift batch it defaults to
    `days` days later, so a clean batch and a drift batch with the same `days` follow on."""
    rng, ts_us = begin(
        n_rows, seed, start, days, drift, default_start=DEFAULT_START, hour_weights=_HOUR_WEIGHTS
    )
    n = n_rows
    hour, weekday = hour_and_weekday(ts_us)
    region = rng.choice(len(REGIONS), n, p=_REGION_P)
    weather = rng.choice(len(WEATHER), n, p=_WEATHER_P_WINTER if drift else _WEATHER_P)
    season_temp = -1.0 if drift else 11.0
    temperature = season_temp + _WEATHER_TEMP[weather] + rng.normal(0.0, 4.0, n)

    distance = _REGION_KM[region] * np.exp(rng.normal(0.0, 0.45, n))
    if drift:
        distance *= 1.25
    peak = ((hour >= 11) & (hour <= 13)) | ((hour >= 18) & (hour <= 20))
    # free couriers in the zone when the order comes in: fewer at peak hours, and in winter
    # (the shortage) far fewer
    free = np.where(peak, 3.0, 6.0) if drift else np.where(peak, 9.0, 14.0)
    cumulative = _REGION_VEHICLE[region].cumsum(axis=1)
    cols = {
        "hour": hour,
        "weekday": weekday,
        "peak": peak,
        "region": region,
        "weather": weather,
        "temperature": temperature,
        "distance": np.round(np.clip(distance, 0.2, None), 2),
        "items": 1 + rng.poisson(1.9 if drift else 1.4, n),
        "prep_estimate": np.round(np.clip(rng.gamma(6.0, 2.0, n), 4.0, None), 1),
        "vehicle": (rng.random(n)[:, None] > cumulative[:, :-1]).sum(axis=1),
        "experience": np.floor(rng.gamma(1.5, 10.0, n)).astype(np.int64),
        "couriers": rng.poisson(free, n).astype(np.int64),
    }
    minutes = _minutes(rng, cols)

    prefix = f"ord-{seed}-{'d' if drift else ''}"
    return pl.DataFrame(
        [
            *leading_columns("order_id", prefix, ts_us, hour, weekday),
            pl.Series("region", REGIONS, dtype=pl.Utf8).gather(region),
            pl.Series("weather", WEATHER, dtype=pl.Utf8).gather(weather),
            with_nulls(np.round(temperature, 1), rng, "temperature_c", _NULL_RATE),
            pl.Series("distance_km", cols["distance"], dtype=pl.Float64),
            pl.Series("items", cols["items"], dtype=pl.Int64),
            pl.Series("prep_estimate_min", cols["prep_estimate"], dtype=pl.Float64),
            pl.Series("vehicle", VEHICLES, dtype=pl.Utf8).gather(cols["vehicle"]),
            pl.Series("courier_experience_months", cols["experience"], dtype=pl.Int64),
            pl.Series("couriers_available", cols["couriers"], dtype=pl.Int64),
            pl.Series("delivery_minutes", minutes, dtype=pl.Float64),
        ]
    )


def _minutes(rng: np.random.Generator, c: dict[str, np.ndarray]) -> np.ndarray:
    """Minutes from order to door: waiting for a courier, the kitchen, the ride and the
    hand-over, noisy, sometimes late. One world for both batches: winter only moves the
    features into ranges autumn barely saw (frost, few free couriers, longer rides)."""
    hour, weekday, region, weather, vehicle = (
        c["hour"], c["weekday"], c["region"], c["weather"], c["vehicle"],
    )  # fmt: skip
    n = hour.shape[0]
    weekend_evening = (weekday >= 4) & (hour >= 18) & (hour <= 21)
    kitchen = (
        c["prep_estimate"] * np.exp(rng.normal(0.0, 0.18, n))
        + 0.7 * (c["items"] - 1)
        + 4.0 * c["peak"]
        + 3.0 * weekend_evening
    )
    courier_wait = 14.0 * np.exp(-c["couriers"] / 3.5)
    rush = (weekday < 5) & (((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 18)))
    exposed = (vehicle == 0) & ((weather == 2) | (weather == 4))  # bikes in rain or snow
    speed = (
        _VEHICLE_KMH[vehicle]
        * _REGION_SPEED[region]
        * np.where(rush, 0.8, 1.0)
        * _WEATHER_SPEED[weather]
        * np.where(exposed, 0.85, 1.0)
        * np.where(c["temperature"] < -1.0, 0.75, 1.0)  # black ice
        * (1.0 - 0.3 * np.exp(-c["experience"] / 8.0))
    )
    ride = c["distance"] / speed * 60.0 + 2.0
    handoff = _REGION_HANDOFF[region] + rng.exponential(1.5, n)
    minutes = (courier_wait + kitchen + ride + handoff) * np.exp(rng.normal(0.0, 0.08, n))
    late = rng.random(n) < 0.04
    minutes += np.where(late, rng.exponential(12.0, n), 0.0)
    rounded: np.ndarray = np.round(minutes, 1)
    return rounded


def _describe(df: pl.DataFrame) -> str:
    mean = df["delivery_minutes"].cast(pl.Float64).mean() if df.height else 0.0
    mean = mean if isinstance(mean, float) else 0.0
    return f"mean delivery {mean:.1f} min"


def main(argv: list[str] | None = None) -> int:
    return _common.main(
        argv,
        prog="python -m workbench_samples.delivery_time.generate",
        description="Write synthetic food deliveries for the delivery-time sample.",
        generate=generate,
        describe=_describe,
        default_days=DEFAULT_DAYS,
        default_start="2025-10-01",
    )


if __name__ == "__main__":
    sys.exit(main())
