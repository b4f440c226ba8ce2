"""The prediction log's typed feature lists (workbench.drift.log_layout): the writer lays out
the answered records of a version with a profile; drift and skew read those lists instead of
the JSON, fall back to the JSON for rows (and logs) without them, and count the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.drift.counter import Counter
from workbench.drift.evaluate import check_frame, evaluate
from workbench.drift.log_layout import Layout
from workbench.drift.profile import ReferenceProfile, build_profile
from workbench.monitoring import checks, skew_sources
from workbench.monitoring.skew import feature_skew
from workbench.project import Project
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.predictors import model_dir_for
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog

NUMERIC = ["a", "b", "c"]
CATEGORICAL = ["k", "m"]


def _frame(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {name: rng.normal(i, 1.0, n) for i, name in enumerate(NUMERIC)}
    for name in CATEGORICAL:
        cols[name] = rng.choice(["x", "y", "z"], n).tolist()
    return pl.DataFrame(cols)


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return build_profile(_frame(1, 2000), NUMERIC + CATEGORICAL, set(CATEGORICAL))


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def _read(root: Path) -> pl.DataFrame:
    with Db(root) as db:
        table = db.arrow("SELECT * FROM predictions ORDER BY request_id")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def test_the_writer_lays_out_answered_records_of_a_version_with_a_layout(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    layout = Layout.of(profile)
    # The profile's order, whatever the record's: numeric first as profiled, then categorical.
    assert layout.numeric == ("a", "b", "c") and layout.categorical == ("k", "m")
    records = [
        {"m": "y", "c": 3, "a": 1.5, "k": "x", "b": float("nan")},
        {"a": "2.5", "k": 7, "b": None},  # text digits, a number as a category, c absent
    ]
    with PredictionLogger(tmp_path, interval_s=60) as log:
        log.layouts[1] = layout
        log.log_many(["r1", "r2"], "m", 1, "primary", records, [0.1, 0.2], 1.0)
        log.log_many(["r3"], "m", 2, "primary", [records[0]], [0.3], 1.0)  # no layout
        log.log_many(["r4"], "m", 1, "primary", ['{"a": 1}'], [None], 1.0, 422, "bad")
    rows = _read(tmp_path)
    assert rows["request_id"].to_list() == ["r1", "r2", "r3", "r4"]
    assert rows["numeric"].to_list() == [[1.5, None, 3.0], [2.5, None, None], None, None]
    assert rows["categorical"].to_list() == [["x", "y"], ["7", None], None, None]
    assert rows["laid_out"].to_list() == [True, True, None, None]  # never false
    # The JSON is still the record of what was sent.
    assert json.loads(rows["features"][1]) == records[1]


def test_use_version_reads_the_layout_beside_the_model(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    assert Layout.load(model_dir) is None  # no profile: nothing laid out
    profile.save(model_dir / "drift_profile.json")
    assert Layout.load(model_dir) == Layout.of(profile)


def _typed_and_json_log(root: Path, frame: pl.DataFrame, layout: Layout) -> np.ndarray:
    """Half of `frame` logged with the lists, half without (a writer with no profile)."""
    outputs = np.random.default_rng(2).uniform(0, 1, frame.height)
    half = frame.height // 2
    records = _records(frame)
    ids = [f"r{i:05d}" for i in range(frame.height)]
    with PredictionLogger(root, interval_s=60) as log:
        log.layouts[1] = layout
        log.log_many(ids[:half], "m", 1, "p", records[:half], list(outputs[:half]), 1.0)
    with PredictionLogger(root, interval_s=60) as log:
        log.log_many(ids[half:], "m", 1, "p", records[half:], list(outputs[half:]), 1.0)
    return outputs


def test_drift_counts_the_same_from_the_lists_and_from_the_json(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    frame = _frame(7, 1200)
    outputs = _typed_and_json_log(tmp_path, frame, Layout.of(profile))
    rows = _read(tmp_path)
    assert rows["numeric"].null_count() == 600  # half typed, half not
    reference = check_frame(profile, frame, predictions=outputs)
    counter = Counter(profile)
    seen = 0
    with Db(tmp_path) as db:
        for batch, out in checks.prediction_batches(db, "m", 1, profile, None, None):
            counter.update(batch, predictions=out)
            seen += batch.num_rows
        assert (
            sum(b.num_rows for b, _ in checks.prediction_batches(db, "m", 1, profile, None, 50))
            == 50
        )
    got = evaluate(profile, counter)
    assert seen == 1200 and got.n_rows == reference.n_rows
    by = {f.feature: f for f in reference.features}
    for f in got.features:
        assert f.cur_hist == by[f.feature].cur_hist, f.feature
        assert (f.n_cur, f.missing) == (by[f.feature].n_cur, by[f.feature].missing)


def test_drift_reads_the_lists_not_the_json(profile: ReferenceProfile, tmp_path: Path) -> None:
    """A row whose lists and JSON disagree (never written so; made by hand here) is read
    from its lists: the typed path is the one taken."""
    layout = Layout.of(profile)
    with PredictionLogger(tmp_path, interval_s=60) as log:
        log.layouts[1] = layout
        log.log_many(["r1"], "m", 1, "p", [{"a": 1.0, "b": 2.0, "c": 3.0, "k": "x", "m": "y"}],
                     [0.5], 1.0)  # fmt: skip
    (path,) = ParquetLog(tmp_path, "predictions").files()
    table = pq.read_table(path)
    table = table.set_column(
        table.schema.get_field_index("features"), "features", pa.array(['{"a": 99.0}'])
    )
    pq.write_table(table, path)
    with Db(tmp_path) as db:
        ((batch, _),) = list(checks.prediction_batches(db, "m", 1, profile, None, None))
    assert batch.to_pylist() == [{"a": 1.0, "b": 2.0, "c": 3.0, "k": "x", "m": "y"}]


def test_a_log_whose_files_predate_the_lists_is_read_from_the_json(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    with PredictionLogger(tmp_path, interval_s=60) as log:
        log.log_many(["r1"], "m", 1, "p", [{"a": 4.0, "k": "z"}], [0.5], 1.0)
    (path,) = ParquetLog(tmp_path, "predictions").files()
    table = pq.read_table(path).drop_columns(["numeric", "categorical", "laid_out"])
    pq.write_table(table, path)  # as a file written before the columns existed
    with Db(tmp_path) as db:
        assert not checks.has_columns(db, "predictions", ("numeric", "categorical", "laid_out"))
        ((batch, _),) = list(checks.prediction_batches(db, "m", 1, profile, None, None))
    assert batch.to_pylist() == [{"a": 4.0, "b": None, "c": None, "k": "z", "m": None}]


def test_feature_skew_from_the_lists_equals_skew_from_the_json(
    trained_project: Project, tmp_path: Path
) -> None:
    """The served version's rows are compared from their lists, others from the JSON; an
    injected unit change (amount in cents) is caught the same way on both."""
    project = trained_project
    base = pl.read_parquet(project.data_path).head(200)
    records = base.select(project.config.features).to_dicts()
    for rec in records[:50]:
        rec["amount"] = rec["amount"] * 100
    carried = [{"transaction_id": t} for t in base["transaction_id"]]
    offline = tmp_path / "offline.parquet"
    base.write_parquet(offline)

    def serve(typed: bool) -> dict[str, Any]:
        plog = ParquetLog(project.logs_root, "predictions")
        for f in plog.files():  # a fresh log each time
            f.unlink()
        plog.manifest_path.unlink(missing_ok=True)
        with PredictionLogger(project.logs_root, interval_s=60) as log:
            if typed:
                log.use_version(project, 1, model_dir_for(project, 1))
                assert 1 in log.layouts
            ids = [f"r{i}" for i in range(len(records))]
            log.log_many(ids, project.config.model_name, 1, "production", records,
                         [0.5] * len(records), 1.0, passthrough=carried)  # fmt: skip
        if typed:
            assert _read(project.logs_root)["numeric"].null_count() == 0
            with Db(project.logs_root) as db:  # the served version's rows: from the lists
                layout, version = skew_sources.layout_of(project, 1, db)
            assert layout is not None and version == 1
            sql = skew_sources.served_sql("transaction_id", None, layout, version, False)
            assert "version = 1" in sql and "THEN numeric END" in sql
        return feature_skew(project, offline, "transaction_id", window="1h", version=1)

    typed, plain = serve(True), serve(False)
    by_typed = {f["feature"]: f for f in typed["features"]}
    by_plain = {f["feature"]: f for f in plain["features"]}
    assert by_typed["amount"]["mismatches"] == by_plain["amount"]["mismatches"] == 50
    assert by_typed["amount"]["alert"] is True
    for name, f in by_plain.items():
        assert by_typed[name]["mismatches"] == f["mismatches"], name
    assert [a for a in typed["alerts"] if a.startswith("amount:")] == [
        a for a in plain["alerts"] if a.startswith("amount:")
    ]
