"""The sample generators (fraud_detection, delivery_time, ticket_routing): shape,
determinism, realism and drift."""

from __future__ import annotations

import importlib
import io
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from workbench_samples.fraud_detection.generate import CATEGORIES, generate, main

from workbench.config import Config, load_config
from workbench.data.validation import validate_frame
from workbench.demo.samples import new_values

EXPECTED_SCHEMA = {
    "transaction_id": pl.String,
    "ts": pl.Datetime("us"),
    "amount": pl.Float64,
    "merchant_category": pl.String,
    "card_age_days": pl.Int64,
    "hour": pl.Int64,
    "distance_from_home_km": pl.Float64,
    "num_tx_last_24h": pl.Int64,
    "avg_amount_30d": pl.Float64,
    "is_foreign": pl.Int64,
    "device_score": pl.Float64,
    "is_fraud": pl.Int64,
}


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    return generate(50_000, seed=7)


@pytest.fixture(scope="module")
def drifted() -> pl.DataFrame:
    return generate(50_000, seed=7, drift=True)


def test_columns_and_dtypes(clean: pl.DataFrame) -> None:
    assert dict(clean.schema) == EXPECTED_SCHEMA
    assert clean.height == 50_000


def test_same_seed_same_frame() -> None:
    a = generate(5_000, seed=11)
    b = generate(5_000, seed=11)
    assert a.equals(b)
    assert generate(2_000, seed=3, drift=True).equals(generate(2_000, seed=3, drift=True))


def test_different_seed_different_frame() -> None:
    a = generate(5_000, seed=11)
    b = generate(5_000, seed=12)
    assert not a.equals(b)
    assert a["transaction_id"][0] == "tx-11-000000"
    assert b["transaction_id"][0] == "tx-12-000000"


def test_ids_unique_and_time_sorted(clean: pl.DataFrame) -> None:
    assert clean["transaction_id"].n_unique() == clean.height
    assert clean["ts"].is_sorted()
    assert clean["hour"].equals(clean["ts"].dt.hour().cast(pl.Int64).alias("hour"))


def test_time_span_follows_start_and_days() -> None:
    start = datetime(2025, 6, 1, 0, 0)
    df = generate(10_000, seed=1, start=start, days=7)
    assert df["ts"].min() >= start
    assert df["ts"].max() < start + timedelta(days=7)
    # Spread over the whole span, not bunched at the start.
    assert df["ts"].dt.date().n_unique() == 7


def test_value_ranges(clean: pl.DataFrame) -> None:
    assert clean["amount"].min() > 0
    assert clean["avg_amount_30d"].min() > 0
    assert clean["card_age_days"].min() >= 0
    assert clean["num_tx_last_24h"].min() >= 0
    assert clean["distance_from_home_km"].min() >= 0
    assert 0 <= clean["device_score"].min() <= clean["device_score"].max() <= 1
    assert clean["hour"].min() >= 0 and clean["hour"].max() <= 23
    assert set(clean["is_foreign"].unique()) == {0, 1}
    assert set(clean["is_fraud"].unique()) == {0, 1}
    assert set(clean["merchant_category"].unique()) == set(CATEGORIES)


def test_amount_is_heavy_tailed(clean: pl.DataFrame) -> None:
    amount = clean["amount"]
    assert amount.mean() > amount.median()
    assert amount.quantile(0.99) > 5 * amount.median()


def test_fraud_rate_is_realistic(clean: pl.DataFrame) -> None:
    assert 0.015 <= clean["is_fraud"].mean() <= 0.03
    for seed in (1, 2, 3):
        assert 0.015 <= generate(20_000, seed=seed)["is_fraud"].mean() <= 0.03


def test_a_few_nulls_never_nan(clean: pl.DataFrame) -> None:
    for name in ("distance_from_home_km", "device_score"):
        col = clean[name]
        assert 0.0005 <= col.null_count() / clean.height <= 0.005
        assert col.is_nan().sum() == 0
    others = clean.drop("distance_from_home_km", "device_score")
    assert sum(others.null_count().row(0)) == 0


def test_fraud_follows_the_risk_factors(clean: pl.DataFrame) -> None:
    def rate(mask: pl.Expr) -> float:
        return float(clean.filter(mask)["is_fraud"].mean())

    assert rate(pl.col("hour") < 6) > 2 * rate(pl.col("hour") >= 9)
    assert rate(pl.col("is_foreign") == 1) > 2 * rate(pl.col("is_foreign") == 0)
    assert rate(pl.col("card_age_days") < 30) > 2 * rate(pl.col("card_age_days") >= 30)
    assert rate(pl.col("device_score") < 0.5) > 2 * rate(pl.col("device_score") >= 0.5)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    ranks = pl.Series(scores).rank("average").to_numpy()
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_learnable_but_not_trivially() -> None:
    lgb = pytest.importorskip("lightgbm")
    train, test = generate(30_000, seed=21), generate(20_000, seed=22)
    features = [c for c in train.columns if c not in ("transaction_id", "ts", "is_fraud")]

    def matrix(df: pl.DataFrame) -> np.ndarray:
        codes = pl.col("merchant_category").cast(pl.Enum(list(CATEGORIES))).to_physical()
        return df.select(features).with_columns(codes).to_numpy().astype(np.float64)

    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.9,
        "seed": 42,
        "verbose": -1,
    }
    data = lgb.Dataset(matrix(train), train["is_fraud"].to_numpy(), categorical_feature=[1])
    model = lgb.train(params, data, num_boost_round=150)
    auc = _auc(test["is_fraud"].to_numpy(), model.predict(matrix(test)))
    assert 0.85 < auc < 0.99


def test_drift_batch(clean: pl.DataFrame, drifted: pl.DataFrame) -> None:
    assert dict(drifted.schema) == EXPECTED_SCHEMA
    share = (drifted["merchant_category"] == "crypto_exchange").mean()
    assert 0.06 <= share <= 0.10
    assert "crypto_exchange" not in set(clean["merchant_category"])
    assert drifted["amount"].mean() > 1.4 * clean["amount"].mean()
    # A later batch by default, with ids that do not collide with the clean batch.
    assert drifted["ts"].min() >= clean["ts"].max() - timedelta(days=1)
    assert not set(drifted["transaction_id"]) & set(clean["transaction_id"])
    # Fraud moved into crypto_exchange.
    crypto = drifted.filter(pl.col("merchant_category") == "crypto_exchange")["is_fraud"].mean()
    assert crypto > 3 * drifted["is_fraud"].mean()


def test_drift_fraud_less_tied_to_night(clean: pl.DataFrame, drifted: pl.DataFrame) -> None:
    def night_lift(df: pl.DataFrame) -> float:
        night = df.filter(pl.col("hour") < 6)["is_fraud"].mean()
        return float(night / df["is_fraud"].mean())

    assert night_lift(drifted) < night_lift(clean) / 2


def test_zero_rows() -> None:
    df = generate(0)
    assert df.height == 0
    assert dict(df.schema) == EXPECTED_SCHEMA


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate(-1)
    with pytest.raises(ValueError):
        generate(10, days=0)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_writes_file(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data" / f"tx{suffix}"
    code = main(["--rows", "2000", "--seed", "5", "--days", "3", "--out", str(out)])
    assert code == 0
    assert "2,000" in capsys.readouterr().out
    expected = generate(2_000, seed=5, days=3)
    if suffix == ".parquet":
        assert pl.read_parquet(out).equals(expected)
    else:
        back = pl.read_csv(out, try_parse_dates=True)
        assert back.height == 2_000
        assert back["transaction_id"].equals(expected["transaction_id"])


def test_cli_drift_and_start(tmp_path: Path) -> None:
    out = tmp_path / "drift.parquet"
    assert main(["--rows", "1000", "--drift", "--start", "2026-03-01", "--out", str(out)]) == 0
    df = pl.read_parquet(out)
    assert df.equals(generate(1_000, drift=True, start=datetime(2026, 3, 1)))
    assert df["ts"].min() >= datetime(2026, 3, 1)


def test_cli_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--rows", "10", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2


# ============================================================================================
# delivery_time (regression) and ticket_routing (multiclass): the same contract per sample,
# then what each one's target and drift batch must look like.

SAMPLES = ("delivery_time", "ticket_routing")


def _module(sample: str) -> Any:
    return importlib.import_module(f"workbench_samples.{sample}.generate")


def _config(sample: str) -> Config:
    return load_config(Path(_module(sample).__file__).with_name("workbench.toml"))


def _bytes(df: pl.DataFrame, kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == "parquet":
        df.write_parquet(buf)
    else:
        df.write_csv(buf)
    return buf.getvalue()


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_same_seed_byte_identical(sample: str) -> None:
    gen = _module(sample).generate
    for drift in (False, True):
        a, b = gen(3_000, seed=5, drift=drift), gen(3_000, seed=5, drift=drift)
        assert _bytes(a, "parquet") == _bytes(b, "parquet")
        assert _bytes(a, "csv") == _bytes(b, "csv")
    other = gen(3_000, seed=6)
    assert _bytes(other, "csv") != _bytes(gen(3_000, seed=5), "csv")
    # the drift batch is its own draw, not a rescaled copy of the clean batch
    ids = gen(3_000, seed=5).columns[0]
    assert not set(gen(3_000, seed=5)[ids]) & set(gen(3_000, seed=5, drift=True)[ids])


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_is_fast(sample: str) -> None:
    gen = _module(sample).generate
    gen(1_000)  # warm up imports
    started = time.perf_counter()
    df = gen(50_000)
    assert time.perf_counter() - started < 1.0
    assert df.height == 50_000


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_matches_its_schema_and_validates(sample: str) -> None:
    cfg = _config(sample)
    df = _module(sample).generate(10_000, seed=3)
    assert list(cfg.schema_) == df.columns  # every column declared, in the data's order
    report = validate_frame(df, cfg)
    assert report.passed and not report.warnings, [c for c in report.checks if c.status != "pass"]
    assert cfg.data.target in df.columns and cfg.data.timestamp == "ts"
    id_col = cfg.data.id_column or ""
    assert df[id_col].n_unique() == df.height
    assert df["ts"].is_sorted()
    assert df["hour"].equals(df["ts"].dt.hour().cast(pl.Int64).alias("hour"))
    assert df["weekday"].equals((df["ts"].dt.weekday() - 1).cast(pl.Int64).alias("weekday"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_time_span_and_drift_start(sample: str) -> None:
    gen = _module(sample).generate
    start = datetime(2025, 6, 1)
    df = gen(5_000, seed=1, start=start, days=7)
    assert df["ts"].min() >= start and df["ts"].max() < start + timedelta(days=7)
    assert df["ts"].dt.date().n_unique() == 7
    clean, drifted = gen(5_000, days=10), gen(5_000, days=10, drift=True)
    assert drifted["ts"].min() >= clean["ts"].max() - timedelta(days=1)  # a later batch


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_zero_rows_and_bad_arguments(sample: str) -> None:
    gen = _module(sample).generate
    empty = gen(0)
    assert empty.height == 0 and empty.schema == gen(10).schema
    with pytest.raises(ValueError):
        gen(-1)
    with pytest.raises(ValueError):
        gen(10, days=0)


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_cli_writes_the_same_frame(
    sample: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mod = _module(sample)
    out = tmp_path / "data" / "batch.parquet"
    assert mod.main(["--rows", "1500", "--seed", "4", "--drift", "--out", str(out)]) == 0
    assert "1,500 drifted rows" in capsys.readouterr().out
    assert pl.read_parquet(out).equals(mod.generate(1_500, seed=4, drift=True))
    with pytest.raises(SystemExit) as exc:
        mod.main(["--rows", "10", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2


def test_drift_batches_bring_the_new_values_the_demo_allows() -> None:
    from workbench_samples.delivery_time import generate as delivery
    from workbench_samples.ticket_routing import generate as tickets

    batch = tickets.generate(5_000, drift=True)
    assert new_values(_config("ticket_routing"), batch) == {"product": ["smart_lock"]}
    report = validate_frame(batch, _config("ticket_routing"))
    assert [c.column for c in report.failures] == ["product"]
    assert new_values(_config("delivery_time"), delivery.generate(5_000, drift=True)) == {}
    assert new_values(_config("ticket_routing"), tickets.generate(5_000)) == {}


# --- delivery_time: a continuous target; winter makes the model err more --------------------


def _lgb_matrix(df: pl.DataFrame, features: list[str], cats: dict[str, tuple[str, ...]]) -> Any:
    codes = [
        pl.col(c).replace_strict(list(v), list(range(len(v))), default=None, return_dtype=pl.Int64)
        for c, v in cats.items()
    ]
    return df.select(features).with_columns(codes).to_numpy().astype(np.float64)


def test_delivery_minutes_are_continuous_and_plausible() -> None:
    from workbench_samples.delivery_time.generate import generate

    df = generate(20_000, seed=2)
    y = df["delivery_minutes"]
    assert y.dtype == pl.Float64 and y.null_count() == 0
    assert y.n_unique() > 300  # minutes to a tenth, not a handful of classes
    assert float(y.min()) >= 5 and float(y.max()) < 400
    assert 25 < float(y.mean()) < 45
    assert float(y.mean()) > float(y.median())  # right-skewed: some deliveries run late

    def mean(mask: pl.Expr) -> float:
        return float(df.filter(mask)["delivery_minutes"].mean())

    assert mean(pl.col("weather") == "snow") > mean(pl.col("weather") == "clear") + 4
    assert mean(pl.col("distance_km") > 5) > mean(pl.col("distance_km") < 2) + 10
    assert mean(pl.col("courier_experience_months") < 2) > mean(
        pl.col("courier_experience_months") > 24
    )
    assert 0.001 <= df["temperature_c"].null_count() / df.height <= 0.01


def test_delivery_winter_batch_shifts_and_hurts_the_model() -> None:
    lgb = pytest.importorskip("lightgbm")
    from workbench_samples.delivery_time.generate import REGIONS, VEHICLES, WEATHER, generate

    train, test = generate(10_000, seed=21), generate(5_000, seed=22)
    winter = generate(5_000, seed=22, drift=True)
    snow = float((winter["weather"] == "snow").mean())
    assert snow > 0.2 and float((test["weather"] == "snow").mean()) < 0.05
    assert float(winter["distance_km"].mean()) > 1.15 * float(test["distance_km"].mean())
    assert float(winter["temperature_c"].mean()) < float(test["temperature_c"].mean()) - 8
    assert float(winter["couriers_available"].mean()) < 0.5 * float(
        test["couriers_available"].mean()
    )

    target = "delivery_minutes"
    features = [c for c in train.columns if c not in ("order_id", "ts", target)]
    cats = {"region": REGIONS, "weather": WEATHER, "vehicle": VEHICLES}
    params = {"objective": "regression", "learning_rate": 0.1, "num_leaves": 31, "verbose": -1,
              "seed": 42, "num_threads": 1}  # fmt: skip

    def fit(df: pl.DataFrame) -> Any:
        data = lgb.Dataset(
            _lgb_matrix(df, features, cats),
            df[target].to_numpy(),
            categorical_feature=[features.index(c) for c in cats],
        )
        return lgb.train(params, data, num_boost_round=60)

    def rmse(model: Any, df: pl.DataFrame) -> float:
        err = df[target].to_numpy() - model.predict(_lgb_matrix(df, features, cats))
        return float(np.sqrt(np.mean(err**2)))

    autumn = fit(train)
    base, drifted = rmse(autumn, test), rmse(autumn, winter)
    assert base < 0.7 * float(test[target].std())  # it learns the clean world well
    assert drifted > 1.5 * base, (base, drifted)
    # the shift is in the features, so retraining with some winter data helps
    retrained = fit(pl.concat([train, generate(2_000, seed=23, drift=True)]))
    assert rmse(retrained, winter) < 0.85 * drifted


# --- ticket_routing: five string classes; a launch moves the mix ---------------------------


def test_ticket_queues_are_five_classes_with_a_plausible_mix() -> None:
    from workbench_samples.ticket_routing.generate import QUEUES, generate

    cfg = _config("ticket_routing")
    assert cfg.task.type == "multiclass" and cfg.task.classes == list(QUEUES)
    assert cfg.metric == "macro_f1"
    for seed in (1, 2):
        df = generate(20_000, seed=seed)
        assert df["queue"].dtype == pl.String
        shares = dict(df["queue"].value_counts(normalize=True).iter_rows())
        assert set(shares) == set(QUEUES)
        assert all(0.05 < s < 0.45 for s in shares.values()), shares
        assert max(shares, key=lambda q: shares[q]) == "technical"

    df = generate(20_000, seed=3)

    def share(mask: pl.Expr, queue: str) -> float:
        return float((df.filter(mask)["queue"] == queue).mean())

    assert share(pl.col("amount_due") > 0, "billing") > 3 * share(
        pl.col("amount_due") == 0, "billing"
    )
    assert share(pl.col("failed_logins_24h") > 2, "account") > 2 * share(
        pl.col("failed_logins_24h") == 0, "account"
    )
    assert share(pl.col("days_since_order") < 14, "shipping") > 4 * share(
        pl.col("days_since_order").is_null(), "shipping"
    )


def test_ticket_launch_batch_shifts_the_class_mix_and_a_feature() -> None:
    from workbench_samples.ticket_routing.generate import QUEUES, generate

    clean, launch = generate(20_000, seed=9), generate(20_000, seed=9, drift=True)
    assert "smart_lock" not in set(clean["product"])
    assert 0.25 < float((launch["product"] == "smart_lock").mean()) < 0.35

    def mix(df: pl.DataFrame) -> dict[str, float]:
        return {q: float((df["queue"] == q).mean()) for q in QUEUES}

    before, after = mix(clean), mix(launch)
    assert after["shipping"] > before["shipping"] + 0.05, (before, after)
    total_variation = sum(abs(after[q] - before[q]) for q in QUEUES) / 2
    assert total_variation > 0.07, (before, after)
    median_days = float(launch["days_since_order"].median())
    assert median_days < 0.7 * float(clean["days_since_order"].median())
    # new customers, in the app's chat
    assert float(launch["customer_tenure_days"].median()) < 0.7 * float(
        clean["customer_tenure_days"].median()
    )
    lock = launch.filter(pl.col("product") == "smart_lock")
    assert float((lock["channel"] == "chat").mean()) > 0.5
