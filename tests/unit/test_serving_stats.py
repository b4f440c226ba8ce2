"""Serving statistics per variant, from real prediction and label logs through real DuckDB.

Run as a script (`python tests/unit/test_serving_stats.py`) to time `variant_stats` over a
log of 1,000,000 predictions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.stats import HIST_BINS, VariantStats, compare, top_errors, variant_stats
from workbench.store.db import Db
from workbench.store.parquet_log import COLUMNS, SCHEMAS, ParquetLog, utcnow
from workbench.tasks import ModelTask

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)


def _write_predictions(root: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows with chosen timestamps, one file per date partition, as the logger would."""
    names = [name for name, _ in COLUMNS["predictions"]]
    defaults: dict[str, Any] = {
        "model": "fraud",
        "version": 1,
        "variant": "production",
        "features": '{"amount":1}',
        "output": 0.5,
        "latency_ms": 5.0,
        "status": 200,
        "error": None,
    }
    by_date: dict[str, list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        full = {**defaults, "request_id": f"req-{i}", **row}
        by_date.setdefault(full["ts"].strftime("%Y-%m-%d"), []).append(full)
    log = ParquetLog(root, "predictions")
    for date, part in sorted(by_date.items()):
        cols = {name: [r.get(name) for r in part] for name in names}  # new columns: null
        log.append(pa.table(cols, schema=SCHEMAS["predictions"]), partition={"date": date})


def _write_labels(root: Path, labels: Iterable[tuple[str, float]], ts: datetime) -> None:
    ParquetLog(root, "labels").append(
        {"ts": ts, "request_id": rid, "label": label, "source": "test.csv"} for rid, label in labels
    )


def _stats(root: Path, **kwargs: Any) -> dict[str, VariantStats]:
    return variant_stats(Db(root), **{"now": NOW, **kwargs})


def test_empty_log_gives_nothing(tmp_path: Path) -> None:
    db = Db(tmp_path / "no-logs-yet")
    assert variant_stats(db) == {}
    assert top_errors(db) == []


def test_counts_quantiles_errors_and_histogram_from_the_logger(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    expected: dict[str, dict[str, list[Any]]] = {}
    with PredictionLogger(tmp_path, max_rows=300, interval_s=0.05) as logger:
        for i in range(1_000):
            variant = "canary" if i % 4 == 0 else "production"
            status = 500 if i % 19 == 0 else 422 if i % 31 == 0 else 200
            latency = float(rng.gamma(2.0, 4.0 if variant == "canary" else 3.0))
            output = float(rng.beta(2, 5)) if status == 200 else None
            error = None if status == 200 else f"boom {status}"
            version = 2 if variant == "canary" else 1
            logger.log(f"r{i}", "fraud", version, variant, {"i": i}, output, latency, status, error)
            seen = expected.setdefault(variant, {"status": [], "latency": [], "output": []})
            seen["status"].append(status)
            seen["latency"].append(latency)
            seen["output"].append(output)
    db = Db(tmp_path)
    now = utcnow()
    first = db.rows("SELECT epoch_us(min(ts)) AS us FROM predictions")[0]["us"] / 1e6
    stats = variant_stats(db, now=now)
    assert set(stats) == {"production", "canary"}
    assert stats["production"].versions == [1] and stats["canary"].versions == [2]
    for variant, seen in expected.items():
        s = stats[variant]
        status = np.array(seen["status"])
        ok = status < 400
        latency = np.array(seen["latency"])[ok]
        outputs = np.array([o for o in seen["output"] if o is not None])
        assert s.requests == len(status)
        assert s.errors == int((status >= 500).sum()) > 0
        assert s.client_errors == int(((status >= 400) & (status < 500)).sum()) > 0
        assert s.error_rate == pytest.approx(s.errors / s.requests, abs=1e-12)
        for got, q in ((s.p50_ms, 50), (s.p95_ms, 95), (s.p99_ms, 99)):
            assert got == pytest.approx(np.percentile(latency, q, method="linear"), abs=1e-9)
        assert s.prediction_mean == pytest.approx(outputs.mean(), abs=1e-12)
        # Outputs are probabilities: ten bins over [0, 1], holding every successful request.
        assert s.hist_edges == pytest.approx(np.linspace(0, 1, HIST_BINS + 1).tolist())
        assert sum(s.prediction_hist) == int(ok.sum())
        assert s.prediction_hist == np.histogram(outputs, bins=s.hist_edges)[0].tolist()
        # A fresh server (first request under a second ago) is measured over 1 s, not 60.
        span = max(1.0, min(60.0, now.timestamp() - first))
        assert s.rps == pytest.approx(s.requests / span, rel=1e-9)
        assert sum(s.rate_series) * 60 / 30 == pytest.approx(s.requests)
        assert s.labeled == 0 and s.metric_name is None and s.metric is None
    assert json.loads(json.dumps(stats["canary"].to_dict()))["requests"] == 250


def test_window_excludes_old_and_future_rows(tmp_path: Path) -> None:
    rows = [{"ts": NOW - timedelta(seconds=300 + i), "latency_ms": 1000.0} for i in range(50)]
    rows += [{"ts": NOW - timedelta(seconds=60)}]  # the window is (now - 60 s, now]
    rows += [{"ts": NOW + timedelta(seconds=1 + i)} for i in range(5)]  # after `now`
    # 120 requests in the window: 4 per 2-second bucket, the last bucket includes `now`.
    inside = [NOW - timedelta(seconds=59.9) + timedelta(seconds=0.5 * i) for i in range(120)]
    rows += [{"ts": ts, "latency_ms": float(i)} for i, ts in enumerate(inside)]
    _write_predictions(tmp_path, rows)
    s = _stats(tmp_path)["production"]
    assert s.requests == 120
    assert s.rps == pytest.approx(120 / 60)  # older rows exist: the whole window counts
    assert s.p99_ms == pytest.approx(np.percentile(np.arange(120.0), 99), abs=1e-9)
    assert len(s.rate_series) == 30
    assert s.rate_series == pytest.approx([2.0] * 30)  # 4 requests / 2 s in every bucket
    assert sum(s.rate_series) * (60 / 30) == pytest.approx(s.requests)
    # A wider window takes the old rows in; finer buckets still add up.
    wide = _stats(tmp_path, window_s=600, buckets=7)["production"]
    assert wide.requests == 171
    assert sum(wide.rate_series) * (600 / 7) == pytest.approx(171)
    assert wide.rate_series[-1] > 0 and wide.rate_series[0] == 0


def test_fresh_server_rps_uses_the_time_since_the_first_request(tmp_path: Path) -> None:
    _write_predictions(
        tmp_path,
        [{"ts": NOW - timedelta(seconds=10) + timedelta(seconds=i / 10)} for i in range(100)]
        + [{"ts": NOW - timedelta(seconds=5), "variant": "canary"}],
    )
    stats = _stats(tmp_path)
    assert stats["production"].rps == pytest.approx(100 / 10)
    assert stats["canary"].rps == pytest.approx(1 / 10)  # the span is the server's, not its own
    assert sum(stats["production"].rate_series) * 2 == pytest.approx(100)
    # Under one second of history still divides by one second.
    assert _stats(tmp_path, now=NOW - timedelta(seconds=9.5))["production"].rps == 6


def test_naive_and_aware_now_agree(tmp_path: Path) -> None:
    _write_predictions(tmp_path, [{"ts": NOW - timedelta(seconds=i)} for i in range(30)])
    aware = _stats(tmp_path, now=NOW)
    naive = _stats(tmp_path, now=NOW.replace(tzinfo=None))
    other_zone = NOW.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert aware == naive == _stats(tmp_path, now=other_zone)
    assert aware["production"].requests == 30


def test_auc_matches_sklearn_with_ties_late_and_superseded_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    rows: list[dict[str, Any]] = []
    for i in range(2_000):
        variant = "canary" if i % 3 == 0 else "production"
        y = int(rng.random() < 0.3)
        score = np.clip(
            rng.normal(0.35 + (0.3 if variant == "production" else 0.15) * y, 0.2), 0, 1
        )
        rows.append(
            {
                "request_id": f"q{i}",
                "ts": NOW - timedelta(seconds=3_000 - i * 1.5),  # an hour of traffic
                "variant": variant,
                "output": round(float(score), 2),  # ties in the scores
                "y": y,
            }
        )
    failed = {"request_id": "failed", "variant": "production", "status": 500, "output": None}
    rows.append({**failed, "ts": NOW, "y": 1})
    _write_predictions(tmp_path, [{k: v for k, v in r.items() if k != "y"} for r in rows])
    labeled = [r for i, r in enumerate(rows) if i % 2 == 0 or r["request_id"] == "failed"]
    # A first, wrong label for every request, then the correction: the newest label wins.
    _write_labels(tmp_path, [(r["request_id"], 1 - r["y"]) for r in labeled], NOW)
    _write_labels(
        tmp_path, [(r["request_id"], r["y"]) for r in labeled], NOW + timedelta(seconds=1)
    )
    since = NOW - timedelta(seconds=2_000)
    stats = _stats(tmp_path, window_s=60, metric_since=since)
    for variant, s in stats.items():
        mine = [
            r
            for r in labeled
            if r["variant"] == variant and r["ts"] >= since and r["output"] is not None
        ]
        y = [r["y"] for r in mine]
        scores = [r["output"] for r in mine]
        assert s.labeled == len(mine) > 100
        assert s.metric_name == "auc"
        assert s.metric == pytest.approx(roc_auc_score(y, scores), abs=1e-9)
    assert stats["production"].metric > stats["canary"].metric  # type: ignore[operator]
    delta = compare(stats["production"], stats["canary"])["metric_delta"]
    assert delta == pytest.approx(stats["canary"].metric - stats["production"].metric)  # type: ignore[operator]
    # Without metric_since only the window's predictions are scored.
    windowed = _stats(tmp_path, window_s=60)["production"]
    assert (
        0
        < windowed.labeled
        == sum(
            1
            for r in labeled
            if r["variant"] == "production"
            and r["ts"] > NOW - timedelta(seconds=60)
            and r["output"] is not None
        )
    )


def test_mae_and_shared_histogram_edges_for_a_regression(tmp_path: Path) -> None:
    prod = [10.0, 12.5, 20.0, 31.0, 40.0]
    canary = [5.0, 50.0, 22.0]
    rows = [
        {"request_id": f"p{i}", "ts": NOW - timedelta(seconds=i + 1), "output": o}
        for i, o in enumerate(prod)
    ] + [
        {
            "request_id": f"c{i}",
            "ts": NOW - timedelta(seconds=i + 1),
            "output": o,
            "variant": "canary",
        }
        for i, o in enumerate(canary)
    ]
    _write_predictions(tmp_path, rows)
    truth = {"p0": 11.0, "p1": 12.5, "p2": 18.0, "c0": 4.0, "c1": 0.0}
    _write_labels(tmp_path, truth.items(), NOW)
    stats = _stats(tmp_path)
    edges = np.linspace(5.0, 50.0, HIST_BINS + 1).tolist()
    for s, outputs in ((stats["production"], prod), (stats["canary"], canary)):
        assert s.hist_edges == pytest.approx(edges)  # min and max over both variants
        assert s.prediction_hist == np.histogram(outputs, bins=edges)[0].tolist()
        assert s.metric_name == "mae"
    assert stats["production"].labeled == 3 and stats["canary"].labeled == 2
    assert stats["production"].metric == pytest.approx((1.0 + 0.0 + 2.0) / 3)
    assert stats["canary"].metric == pytest.approx((1.0 + 50.0) / 2)


def test_binary_labels_of_one_class_fall_back_to_mae(tmp_path: Path) -> None:
    _write_predictions(
        tmp_path,
        [
            {"request_id": f"r{i}", "ts": NOW - timedelta(seconds=i), "output": 0.2}
            for i in range(4)
        ],
    )
    _write_labels(tmp_path, [(f"r{i}", 1.0) for i in range(4)], NOW)
    s = _stats(tmp_path)["production"]
    assert (s.metric_name, s.labeled) == ("mae", 4)
    assert s.metric == pytest.approx(0.8)


# --- per task: the served model's task picks the metric and the histogram ---------------------


def test_multiclass_accuracy_and_class_frequencies(tmp_path: Path) -> None:
    """Outputs are logged class indices; labels too: accuracy, one named bin per class."""
    task = ModelTask("multiclass", ["setosa", "versicolor", "virginica"])
    prod, canary = [0, 1, 2, 2, 1, 0, 2], [2, 2, 2]
    rows = [
        {"request_id": f"p{i}", "ts": NOW - timedelta(seconds=i + 1), "output": float(o)}
        for i, o in enumerate(prod)
    ] + [
        {"request_id": f"c{i}", "ts": NOW - timedelta(seconds=1), "output": float(o),
         "variant": "canary"}
        for i, o in enumerate(canary)
    ]  # fmt: skip
    _write_predictions(tmp_path, rows)
    truth = {"p0": 0, "p1": 1, "p2": 1, "p3": 2, "p4": 0, "c0": 2, "c1": 0}
    _write_labels(tmp_path, [(k, float(v)) for k, v in truth.items()], NOW)
    stats = _stats(tmp_path, task=task)
    p, c = stats["production"], stats["canary"]
    assert (p.metric_name, p.labeled, p.task) == ("accuracy", 5, "multiclass")
    assert p.metric == pytest.approx(3 / 5) and p.metrics == {"accuracy": pytest.approx(0.6)}
    assert c.metric == pytest.approx(1 / 2)
    assert p.prediction_hist == [2, 2, 3] and c.prediction_hist == [0, 0, 3]
    assert p.hist_labels == task.classes and p.hist_edges == [0.0, 1.0, 2.0, 3.0]
    assert p.prediction_mean is None  # a mean class index means nothing
    assert compare(p, c)["metric_delta"] == pytest.approx(1 / 2 - 3 / 5)


def test_regression_rmse_and_mae_over_the_value_range(tmp_path: Path) -> None:
    outputs = [0.2, 0.4, 0.9, 0.5]  # all in [0, 1]: still a value histogram over their range
    rows = [
        {"request_id": f"r{i}", "ts": NOW - timedelta(seconds=i + 1), "output": o}
        for i, o in enumerate(outputs)
    ]
    _write_predictions(tmp_path, rows)
    truth = [0.0, 1.0, 1.0]
    _write_labels(tmp_path, [(f"r{i}", y) for i, y in enumerate(truth)], NOW)
    s = _stats(tmp_path, task=ModelTask("regression", []))["production"]
    errors = np.array(outputs[:3]) - np.array(truth)
    assert s.metric_name == "rmse" and list(s.metrics) == ["rmse", "mae"]
    assert s.metric == pytest.approx(math.sqrt(float(np.mean(errors**2))))
    assert s.metrics["mae"] == pytest.approx(float(np.mean(np.abs(errors))))
    assert s.hist_edges[0] == pytest.approx(0.2) and s.hist_edges[-1] == pytest.approx(0.9)
    assert s.prediction_mean == pytest.approx(np.mean(outputs)) and s.hist_labels == []


def test_a_binary_task_reports_auc_or_nothing(tmp_path: Path) -> None:
    """Labels of one class give no AUC (not an MAE in its place); no labels: the name only."""
    _write_predictions(
        tmp_path,
        [
            {"request_id": f"r{i}", "ts": NOW - timedelta(seconds=i), "output": 0.2}
            for i in range(4)
        ],
    )
    task = ModelTask()
    s = _stats(tmp_path, task=task)["production"]
    assert (s.metric_name, s.metric, s.metrics) == ("auc", None, {"auc": None})
    _write_labels(tmp_path, [(f"r{i}", 1.0) for i in range(4)], NOW)
    s = _stats(tmp_path, task=task)["production"]
    assert (s.metric_name, s.metric, s.labeled) == ("auc", None, 4)
    assert s.hist_edges[0] == 0.0 and s.hist_edges[-1] == 1.0 and sum(s.prediction_hist) == 4


def test_compare_deltas(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = []
    for i in range(100):
        ts = NOW - timedelta(seconds=0.5 * i)
        rows.append({"ts": ts, "latency_ms": 10.0, "output": 0.2, "status": 500 if i < 2 else 200})
        rows.append(
            {
                "ts": ts,
                "variant": "canary",
                "version": 2,
                "latency_ms": 15.0,
                "output": 0.3,
                "status": 500 if i < 10 else 200,
            }
        )
    _write_predictions(tmp_path, rows)
    stats = _stats(tmp_path)
    prod, canary = stats["production"], stats["canary"]
    assert (prod.error_rate, canary.error_rate) == (0.02, 0.10)
    delta = compare(prod, canary)
    assert delta["error_rate_delta"] == pytest.approx(0.08)
    assert delta["p99_delta_ms"] == pytest.approx(5.0)
    assert delta["p50_delta_ms"] == pytest.approx(5.0)
    assert delta["prediction_mean_delta"] == pytest.approx(0.1)
    assert delta["metric_delta"] is None  # no labels yet


def test_model_filter(tmp_path: Path) -> None:
    _write_predictions(
        tmp_path,
        [{"ts": NOW - timedelta(seconds=i), "model": "fraud"} for i in range(7)]
        + [{"ts": NOW - timedelta(seconds=i), "model": "churn", "version": 4} for i in range(3)]
        + [{"ts": NOW - timedelta(seconds=500), "model": "churn"}],
    )
    assert _stats(tmp_path)["production"].requests == 10
    assert _stats(tmp_path)["production"].versions == [1, 4]
    assert _stats(tmp_path, model="fraud")["production"].requests == 7
    churn = _stats(tmp_path, model="churn")["production"]
    assert (churn.requests, churn.versions, churn.rps) == (3, [4], 3 / 60)
    # fraud has no history before the window: its span is its own first request (6 s ago).
    assert _stats(tmp_path, model="fraud")["production"].rps == pytest.approx(7 / 6)
    assert _stats(tmp_path, model="nope") == {}


def test_a_variant_with_only_failures(tmp_path: Path) -> None:
    _write_predictions(
        tmp_path,
        [{"ts": NOW - timedelta(seconds=1), "status": 503, "output": None, "error": "down"}],
    )
    s = _stats(tmp_path)["production"]
    assert (s.requests, s.errors, s.error_rate) == (1, 1, 1.0)
    assert (s.p50_ms, s.p99_ms, s.prediction_mean) == (None, None, None)
    assert s.prediction_hist == [0] * HIST_BINS and len(s.hist_edges) == HIST_BINS + 1


def test_top_errors(tmp_path: Path) -> None:
    rows = (
        [{"ts": NOW - timedelta(seconds=10 + i), "status": 500, "error": "oom"} for i in range(3)]
        + [
            {"ts": NOW - timedelta(seconds=5), "status": 422, "error": "bad field", "variant": v}
            for v in ("canary", "canary", "canary", "canary", "production")
        ]
        + [
            {
                "ts": NOW - timedelta(seconds=2),
                "status": 503,
                "error": "timeout",
                "variant": "canary",
            }
        ]
        + [{"ts": NOW - timedelta(seconds=1_000), "status": 500, "error": "old"}]
        + [{"ts": NOW - timedelta(seconds=1)}]  # a success
    )
    _write_predictions(tmp_path, rows)
    db = Db(tmp_path)
    got = top_errors(db, now=NOW)
    assert [(e["error"], e["status"], e["count"]) for e in got] == [
        ("bad field", 422, 5),
        ("oom", 500, 3),
        ("timeout", 503, 1),
    ]
    assert got[1]["last_seen"] == NOW - timedelta(seconds=10)
    canary = top_errors(db, variant="canary", limit=1, now=NOW)
    assert [(e["error"], e["count"]) for e in canary] == [("bad field", 4)]
    assert [e["error"] for e in top_errors(db, window_s=3, now=NOW)] == ["timeout"]


# ---------------------------------------------------------------------------------------------
# Speed over 1,000,000 logged predictions: `python tests/unit/test_serving_stats.py`


def _benchmark(rows: int = 1_000_000) -> None:
    import tempfile
    import time

    rng = np.random.default_rng(0)
    root = Path(tempfile.mkdtemp(prefix="serving-stats-"))
    now = utcnow()
    # A day of traffic (~11.6 requests/s), written in time order in 5,000-row files, like
    # the logger; the log compacts each date partition as files pile up.
    offsets = np.sort(rng.uniform(0, 86_400, rows))[::-1]
    ts = [now - timedelta(seconds=float(s)) for s in offsets]
    variant = np.where(rng.random(rows) < 0.1, "canary", "production")
    status = np.where(rng.random(rows) < 0.01, 500, 200)
    output = np.where(status == 200, rng.random(rows), np.nan)
    features = [f'{{"amount":{a:.2f},"category":"c{a % 7:.0f}"}}' for a in rng.random(rows) * 900]
    cols: dict[str, Any] = {
        "ts": ts,
        "request_id": [f"req-{i}" for i in range(rows)],
        "model": ["fraud"] * rows,
        "version": np.where(variant == "canary", 2, 1),
        "variant": variant,
        "features": features,
        "output": [None if math.isnan(o) else o for o in output],
        "latency_ms": rng.gamma(2.0, 3.0, rows),
        "status": status,
        "error": [None if s == 200 else "boom" for s in status],
        "segments": [None] * rows,
        "passthrough": [None] * rows,
    }
    table = pa.table(cols, schema=SCHEMAS["predictions"])
    log = ParquetLog(root, "predictions")
    started = time.perf_counter()
    for at in range(0, rows, 5_000):
        chunk = table.slice(at, 5_000)
        date = chunk.column("ts")[0].as_py().strftime("%Y-%m-%d")
        log.append(chunk, partition={"date": date})
    # Labels for 20% of the last hour's requests.
    recent = [i for i in range(rows) if offsets[i] < 3_600 and i % 5 == 0]
    _write_labels(root, [(f"req-{i}", float(rng.random() < 0.3)) for i in recent], now)
    print(
        f"wrote {rows:,} predictions in {len(log.files())} files "
        f"({time.perf_counter() - started:.1f} s)"
    )
    db = Db(root)
    since = now - timedelta(hours=1)
    for label, kwargs in (
        ("60 s window", {}),
        ("60 s window, metric over the last hour", {"metric_since": since}),
    ):
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            stats = variant_stats(db, 60, now=now, **kwargs)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t0)
        reqs = {k: v.requests for k, v in stats.items()}
        print(
            f"variant_stats, {label}: first {times[0] * 1e3:.0f} ms, "
            f"median {sorted(times)[3] * 1e3:.0f} ms; requests {reqs}, "
            f"labeled {[v.labeled for v in stats.values()]}"
        )
    t0 = time.perf_counter()
    top_errors(db, now=now)
    print(f"top_errors, 300 s window: {(time.perf_counter() - t0) * 1e3:.0f} ms")


if __name__ == "__main__":
    _benchmark()
