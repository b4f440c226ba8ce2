"""Feature skew's join (workbench.monitoring.skew) on a real prediction log and real files,
no model: the ASOF join on the timestamp (the passthrough's, else the log's), the plain join
without one, CSV files, tolerance, categorical examples."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workbench.errors import DataError, UsageError
from workbench.monitoring.skew import feature_skew
from workbench.project import Project
from workbench.serving.prediction_log import PredictionLogger


def _serve(project: Project, records: list[dict[str, Any]], carried: list[dict[str, Any]]) -> None:
    ids = [f"r{i}" for i in range(len(records))]
    outputs = [0.5] * len(records)
    with PredictionLogger(project.logs_root, interval_s=60) as log:
        log.log_many(
            ids, project.config.model_name, 1, "production", records, outputs, 1.0,
            passthrough=carried,
        )  # fmt: skip


def _rows(project: Project, n: int) -> pl.DataFrame:
    return pl.read_parquet(project.data_path).head(n)


def _by_feature(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["feature"]: f for f in report["features"]}


def test_asof_takes_the_newest_offline_row_at_or_before_serving(
    sample_project: Project, tmp_path: Path
) -> None:
    base = _rows(sample_project, 2)
    features = sample_project.config.features
    served = base.select(features).to_dicts()
    served[0]["amount"] = 2.0
    served[1]["amount"] = 2.0
    # key 0: served now (the log's time); key 1: its request carried an event time in March
    carried = [
        {"transaction_id": base["transaction_id"][0]},
        {"transaction_id": base["transaction_id"][1], "ts": "2026-03-01T01:00:00+01:00"},
    ]
    _serve(sample_project, served, carried)
    versions = []
    for amount, when in [(1.0, datetime(2026, 1, 1)), (2.0, datetime(2026, 6, 1))]:
        versions.append(base.with_columns(pl.lit(amount).alias("amount"), pl.lit(when).alias("ts")))
    future = base.with_columns(
        pl.lit(3.0).alias("amount"), pl.lit(datetime(2099, 1, 1)).alias("ts")
    )
    offline = tmp_path / "offline.parquet"
    pl.concat([*versions, future]).write_parquet(offline)
    report = feature_skew(sample_project, offline, "transaction_id", window="1h")
    assert report["asof"] == "ts" and report["joined"] == 2
    amount = _by_feature(report)["amount"]
    # key 0 joins June's row (2.0, equal); key 1 joins January's (1.0): one mismatch
    assert amount["mismatches"] == 1
    assert amount["examples"] == [
        {"key": base["transaction_id"][1], "served": "2.0", "offline": "1.0"}
    ]
    assert sum(f["mismatches"] for f in report["features"]) == 1


def test_a_csv_without_timestamp_joins_on_the_key(sample_project: Project, tmp_path: Path) -> None:
    base = _rows(sample_project, 20)
    features = sample_project.config.features
    served = base.select(features).to_dicts()
    served[0]["amount"] = served[0]["amount"] * (1 + 1e-9)  # within the tolerance
    served[1]["merchant_category"] = (
        "travel" if served[1]["merchant_category"] != "travel" else "fuel"
    )
    _serve(sample_project, served, [{"transaction_id": t} for t in base["transaction_id"]])
    offline = tmp_path / "offline.csv"
    base.drop("ts").write_csv(offline)
    report = feature_skew(sample_project, offline, "transaction_id", window="1h", max_mismatch=0.1)
    assert report["asof"] is None and report["joined"] == 20
    skews = _by_feature(report)
    assert skews["amount"]["mismatches"] == 0
    category = skews["merchant_category"]
    assert category["kind"] == "categorical" and category["mismatches"] == 1
    assert category["share"] == 0.05 and category["alert"] is False
    assert category["examples"][0]["offline"] == base["merchant_category"][1]
    strict = feature_skew(sample_project, offline, "transaction_id", window="1h", tolerance=0)
    assert _by_feature(strict)["amount"]["mismatches"] == 1
    assert _by_feature(strict)["merchant_category"]["alert"] is True  # 5% > 1%


def test_keys_missing_or_unmatched_are_one_line(sample_project: Project, tmp_path: Path) -> None:
    base = _rows(sample_project, 5)
    records = base.select(sample_project.config.features).to_dicts()
    _serve(sample_project, records, [{"transaction_id": f"x{i}"} for i in range(5)])
    offline = tmp_path / "offline.parquet"
    base.write_parquet(offline)
    with pytest.raises(UsageError, match=r"^--key nope: no such column in "):
        feature_skew(sample_project, offline, "nope", window="1h")
    with pytest.raises(UsageError, match=r"^--key hour: no prediction of the last 1h carried"):
        feature_skew(sample_project, offline, "hour", window="1h")
    with pytest.raises(DataError) as exc:
        feature_skew(sample_project, offline, "transaction_id", window="1h")
    assert str(exc.value) == (
        "--key transaction_id: no served row joined an offline row (5 served rows in the "
        f"last 1h, 5 rows in {offline})"
    )


def test_many_spilled_buckets_give_what_one_bucket_gives(
    sample_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The join is partitioned by a hash of the key into buckets spilled to disk (so memory
    does not grow with the rows): cut into dozens, the counts and the examples (those of the
    smallest keys) are those of one bucket, and the spill files are gone afterwards."""
    import tempfile

    from workbench.monitoring import skew_join

    base = _rows(sample_project, 300)
    served = base.select(sample_project.config.features).to_dicts()
    for i in range(0, 300, 7):  # a unit change in one row of seven
        served[i]["amount"] = served[i]["amount"] * 100
    served[3]["merchant_category"] = None  # null on one side only: differs
    _serve(sample_project, served, [{"transaction_id": t} for t in base["transaction_id"]])
    offline = tmp_path / "offline.parquet"
    # the file repeats its first 10 keys with other amounts: the first row of a key counts
    repeat = base.head(10).with_columns(pl.col("amount") + 1)
    pl.concat([base.drop("ts"), repeat.drop("ts")]).write_parquet(offline)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    one = feature_skew(sample_project, offline, "transaction_id", window="1h")
    monkeypatch.setattr(skew_join, "BUCKET_BYTES", 512)
    many = feature_skew(sample_project, offline, "transaction_id", window="1h")
    assert one["joined"] == many["joined"] == 300
    assert one["features"] == many["features"]
    amount = _by_feature(many)["amount"]
    assert amount["mismatches"] == len(range(0, 300, 7))
    keys = sorted(base["transaction_id"][i] for i in range(0, 300, 7))[:3]
    assert [e["key"] for e in amount["examples"]] == keys
    assert _by_feature(many)["merchant_category"]["mismatches"] == 1
    assert list(spill.iterdir()) == []
