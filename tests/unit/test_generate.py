"""The fraud-detection sample generator: shape, determinism, realism and drift."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from workbench_samples.fraud_detection.generate import CATEGORIES, generate, main

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
