"""Segments and fairness: the segmenter's labels, the per-group statistics and their
bootstrap intervals, and the live report over real Parquet logs (written by the real
PredictionLogger) read through DuckDB."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from workbench.cli.monitoring_segments import table_lines
from workbench.config_monitoring import MonitoringSection
from workbench.monitoring import segments
from workbench.serving.prediction_log import PredictionLogger
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow
from workbench.tasks import ModelTask
from workbench.training import fairness_stats as fs
from workbench.training.fairness import MISSING, Segmenter, SegmentSpec, spec_of_values

BINARY = ModelTask("binary", [0, 1], 0.5, "y")


def test_segmenter_labels_match_the_vectorised_holdout_labels() -> None:
    spec = spec_of_values(np.arange(100, dtype=float), 4)
    assert spec.kind == "numeric" and spec.edges == (24.75, 49.5, 74.25)
    assert spec.names() == ["< 24.75", "[24.75, 49.5)", "[49.5, 74.25)", ">= 74.25"]
    assert spec_of_values(np.array([0.0, 1.0, 1.0]), 4).kind == "discrete"
    seg = Segmenter(
        {"amount": spec, "flag": SegmentSpec("discrete"), "cat": SegmentSpec("categorical")}
    )
    records: list[dict[str, Any]] = [
        {"amount": 10.0, "flag": 1, "cat": "online"},
        {"amount": 49.5, "flag": 0, "cat": True},
        {"amount": None, "flag": None, "cat": None},
        {"amount": 99, "flag": 1.0, "cat": "x"},
    ]
    got = seg.labels([*records, "raw body"])
    assert got[0] == {"amount": "< 24.75", "flag": "1", "cat": "online"}
    assert got[1] == {"amount": "[49.5, 74.25)", "flag": "0", "cat": "true"}
    assert got[2] == {"amount": MISSING, "flag": MISSING, "cat": MISSING}
    assert got[3]["amount"] == ">= 74.25" and got[3]["flag"] == "1"
    assert got[4] is None
    frame = pl.DataFrame(
        {"amount": [10.0, 49.5, None, 99.0], "flag": [1, 0, None, 1]}, strict=False
    )
    for name in ("amount", "flag"):
        column = seg.column(name, frame[name]).tolist()
        assert column == [g[name] for g in got[:4] if g is not None]


def _binary_cells(n: int, seed: int = 0, shift: float = 0.0) -> tuple[fs.Cells, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.3).astype(float)
    p = np.clip(0.35 * y + 0.6 * rng.random(n) + shift * (group == 1), 0, 1)
    return fs.cells_from_arrays("binary", 0.5, 2, group, 2, p, y), p


def test_binned_auc_matches_sklearn_and_intervals_hold_the_point_and_shrink() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.3).astype(float)
    p = np.clip(0.3 * y + 0.7 * rng.random(5000), 0, 1)
    cells = fs.cells_from_arrays("binary", 0.5, 2, np.zeros(5000, int), 1, p, y)
    assert fs.statistics(cells, "auc")["metric"][0, 0] == pytest.approx(
        roc_auc_score(y, p), abs=0.002
    )
    widths = []
    for n in (1_000, 20_000):
        cells, _ = _binary_cells(n)
        point = fs.statistics(cells, "auc")
        boot = fs.resampled(cells, "auc", 200)
        assert boot is not None
        for name in ("metric", "rate"):
            band = fs.interval(boot[name], 0.95)
            assert band is not None
            assert (band[:, 0] <= point[name][0]).all() and (point[name][0] <= band[:, 1]).all()
        band = fs.interval(boot["metric"], 0.95)
        assert band is not None
        widths.append(float(band[0, 1] - band[0, 0]))
    assert widths[1] < widths[0] / 2  # 20x the rows: about a 4.5x narrower interval


def _mon(**kw: Any) -> MonitoringSection:
    return MonitoringSection(segments=["g"], sensitive=["g"], min_count=50, **kw)


def test_fairness_alerts_on_a_planted_gap_only_and_small_groups_are_suppressed() -> None:
    names = [("g", "a"), ("g", "b")]
    fair, _ = _binary_cells(4000)
    biased, _ = _binary_cells(4000, shift=0.3)
    calm = fs.summarize(fair, names, "auc", _mon(), "live")
    loud = fs.summarize(biased, names, "auc", _mon(), "live")
    assert calm["alerts"] == [] and not any(f["alert"] for f in calm["fairness"])
    dp = next(f for f in loud["fairness"] if f["measure"] == "demographic_parity_difference")
    assert dp["alert"] and dp["value"] > 0.2 and dp["ci"][0] > 0.1
    assert loud["alerts"][0].startswith("g: demographic parity difference 0.")
    assert {f["measure"] for f in loud["fairness"]} == set(fs.MEASURES)
    rng = np.random.default_rng(1)
    group = np.where(np.arange(1000) < 30, 2, rng.integers(0, 2, 1000))
    p = rng.random(1000)
    y = (rng.random(1000) < 0.5).astype(float)
    cells = fs.cells_from_arrays("binary", 0.5, 2, group, 3, p, y)
    small = fs.summarize(cells, [*names, ("g", "c")], "auc", _mon(), "live")
    assert small["suppressed"] == 1 and [g["group"] for g in small["groups"]] == ["a", "b"]


def test_measures_agree_with_fairlearn() -> None:
    metrics = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(7)
    n = 3000
    group = rng.integers(0, 3, n)
    y = (rng.random(n) < 0.4).astype(float)
    p = np.clip(0.3 * y + 0.6 * rng.random(n) + 0.1 * group, 0, 1)
    cells = fs.cells_from_arrays("binary", 0.5, 2, group, 3, p, y)
    names = [("g", str(i)) for i in range(3)]
    got = {
        f["measure"]: f["value"]
        for f in fs.summarize(cells, names, "auc", _mon(), "live")["fairness"]
    }
    pred = (p >= 0.5).astype(int)
    dp = metrics.demographic_parity_difference(y, pred, sensitive_features=group)
    eo = metrics.true_positive_rate_difference(y, pred, sensitive_features=group)
    ratio = metrics.demographic_parity_ratio(y, pred, sensitive_features=group)
    assert got["demographic_parity_difference"] == pytest.approx(dp)
    assert got["equal_opportunity_difference"] == pytest.approx(eo)
    assert got["demographic_parity_ratio"] == pytest.approx(ratio)


def _log(logs: Path, biased: bool) -> None:
    """2,400 predictions of v1 in three groups of `cat` (one of 30 rows), a third labelled."""
    rng = np.random.default_rng(5)
    seg = Segmenter({"cat": SegmentSpec("categorical"), "amount": spec_of_values(
        np.arange(100.0), 2
    )})  # fmt: skip
    with PredictionLogger(logs, interval_s=60) as logger:
        logger.segmenters[1] = seg
        cats = ["a", "b"] * 1185 + ["c"] * 30
        records = [{"cat": c, "amount": float(i % 100)} for i, c in enumerate(cats)]
        y = (rng.random(len(cats)) < 0.3).astype(float)
        shift = np.array([0.35 if biased and c == "b" else 0.0 for c in cats])
        p = np.clip(0.3 * y + 0.55 * rng.random(len(cats)) + shift, 0, 1)
        ids = [f"r{i}" for i in range(len(cats))]
        for lo in range(0, len(cats), 100):
            hi = lo + 100
            logger.log_many(ids[lo:hi], "m", 1, "production", records[lo:hi], list(p[lo:hi]), 1.0)
        logger.log("bad", "m", 1, "production", '"not json"', None, 1.0, 422, "bad body")
    labelled = [{"ts": utcnow(), "request_id": ids[i], "label": y[i]} for i in range(0, 2400, 3)]
    ParquetLog(logs, "labels").append(labelled)


@pytest.mark.parametrize("biased", [False, True])
def test_live_report_from_the_logs(tmp_path: Path, biased: bool) -> None:
    _log(tmp_path, biased)
    with Db(tmp_path) as db:
        raw = db.rows("SELECT segments FROM predictions WHERE request_id = 'r0'")[0]
        assert dict(raw["segments"]) == {"cat": "a", "amount": "< 49.5"}
        assert db.rows("SELECT segments FROM predictions WHERE status = 422")[0]["segments"] is None
        mon = MonitoringSection(segments=["cat", "amount"], sensitive=["cat"], min_count=100)
        rep = segments.compute(db, "m", 1, BINARY, "auc", mon, "1h", utcnow() + timedelta(1e-9))
    data = rep.to_dict()
    assert data["suppressed"] == 1 and data["rows"] == 2400  # group "c": 30 rows
    assert {(g["feature"], g["group"]) for g in data["groups"]} == {
        ("cat", "a"), ("cat", "b"), ("amount", "< 49.5"), ("amount", ">= 49.5"),
    }  # fmt: skip
    a = next(g for g in data["groups"] if g["group"] == "a")
    assert a["count"] == 1185 and a["labelled"] == 395  # i % 6 == 0 below 2,370
    assert 0.6 < a["metric"] < 0.95 and a["metric_ci"][0] <= a["metric"] <= a["metric_ci"][1]
    assert len(a["series"]) == segments.SERIES_BUCKETS
    assert sum(s["count"] for s in a["series"]) == a["count"]
    alerted = [f["measure"] for f in data["fairness"] if f["alert"]]
    if biased:
        assert "demographic_parity_difference" in alerted and data["alerts"]
        assert all(a.endswith("(live)") for a in data["alerts"])
    else:
        assert alerted == [] and data["alerts"] == []
    lines = table_lines(data)
    assert len(lines) == 5 and max(len(line) for line in lines) <= 80
