"""Drift on wide data, streamed: Parquet (dictionary-encoded text), CSV and the prediction
log's JSON read in batches give exactly the counts of the all-rows path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.drift import counter as drift_counter
from workbench.drift import sources
from workbench.drift.counter import Counter
from workbench.drift.evaluate import DriftReport, check_csv, check_frame, check_parquet
from workbench.drift.profile import ReferenceProfile, _arrow_value_counts, build_profile
from workbench.monitoring import checks
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow

N_NUM, N_CAT = 24, 8
NUMERIC = [f"x{i:02d}" for i in range(N_NUM)]
CATEGORICAL = [f"c{i:02d}" for i in range(N_CAT)]
FEATURES = NUMERIC + CATEGORICAL
WORDS = [f"w{k}" for k in range(12)]


def _frame(seed: int, n: int, shift: float = 0.0) -> pl.DataFrame:
    """Mixed wide-ish data: nulls, NaN and inf in numeric columns, nulls and categories the
    reference never saw in the categorical ones."""
    rng = np.random.default_rng(seed)
    cols: dict[str, pl.Series] = {}
    for i, name in enumerate(NUMERIC):
        x = rng.normal(shift * (i % 3), 1.0 + i % 4, n)
        if i % 5 == 0:
            x[rng.integers(0, n, n // 20)] = np.nan
            x[rng.integers(0, n, 3)] = np.inf
        s = pl.Series(name, x)
        if i % 4 == 1:
            s = s.scatter(rng.integers(0, n, n // 30), None)
        if i % 6 == 2:  # a discrete feature: values sit on the edges
            s = s.round(0)
        cols[name] = s
    vocab = WORDS + (["new1", "new2"] if shift else [])
    for i, name in enumerate(CATEGORICAL):
        values = rng.choice(vocab[: 4 + i % 9 + (2 if shift else 0)], n).astype(object)
        values[rng.integers(0, n, n // 25)] = None
        cols[name] = pl.Series(name, values.tolist(), dtype=pl.String)
    return pl.DataFrame(cols)


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    preds = np.random.default_rng(3).beta(2, 5, 3000)
    return build_profile(_frame(1, 3000), FEATURES, set(CATEGORICAL), predictions=preds)


@pytest.fixture(scope="module")
def current() -> pl.DataFrame:
    return _frame(2, 2500, shift=0.3)


def assert_same(a: DriftReport, b: DriftReport) -> None:
    """Exactly the same counts; every statistic within 1e-9."""
    assert a.n_rows == b.n_rows
    by_a = {f.feature: f for f in a.features}
    by_b = {f.feature: f for f in b.features}
    assert by_a.keys() == by_b.keys()
    for name, fa in by_a.items():
        fb = by_b[name]
        assert (fa.n_cur, fa.missing, fa.nonfinite, fa.unseen) == (
            fb.n_cur,
            fb.missing,
            fb.nonfinite,
            fb.unseen,
        ), name
        assert fa.cur_hist == fb.cur_hist, name
        assert fa.status == fb.status, name
        assert fa.stats.keys() == fb.stats.keys()
        for key, va in fa.stats.items():
            vb = fb.stats[key]
            if va is None or vb is None:
                assert va is vb, (name, key)
            else:
                assert math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12), (name, key, va, vb)
        if fa.cur_mean is not None:
            assert fb.cur_mean is not None
            assert math.isclose(fa.cur_mean, fb.cur_mean, rel_tol=1e-9)


def test_batch_rows_shrink_with_width() -> None:
    assert sources.batch_rows_for(20, 500_000) == 500_000
    assert sources.batch_rows_for(1000, 500_000) == sources.BATCH_CELLS // 1000
    assert sources.batch_rows_for(10**7, 500_000) == sources.MIN_BATCH_ROWS
    assert sources.batch_rows_for(1000, 100) == 100  # asked for fewer: fewer


def test_parquet_in_many_batches_equals_all_rows(
    profile: ReferenceProfile, current: pl.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "cur.parquet"
    # Text columns dictionary-encoded in the file (read back as dictionaries) and row
    # groups smaller than the file: batches straddle them.
    current.write_parquet(path, row_group_size=700)
    whole = check_frame(profile, current)
    assert whole.alerts > 0  # the data set drifts: the statistics compared are not all zero
    many = check_parquet(profile, path, batch_rows=333)
    one = check_parquet(profile, path, batch_rows=100_000)
    assert_same(whole, many)
    assert_same(one, many)
    unseen = {f.feature: f.unseen for f in many.features if f.kind == "categorical"}
    assert any("new1" in u for u in unseen.values())


def test_dictionary_columns_count_as_strings(current: pl.DataFrame) -> None:
    col = pa.array(current["c03"].to_list(), pa.string())
    encoded = col.dictionary_encode()
    assert pa.types.is_dictionary(encoded.type)
    names, counts, nulls = _arrow_value_counts(encoded)
    names2, counts2, nulls2 = _arrow_value_counts(col)
    assert nulls == nulls2 == col.null_count > 0
    assert dict(zip(names, counts.tolist(), strict=True)) == dict(
        zip(names2, counts2.tolist(), strict=True)
    )
    chunked = pa.chunked_array([encoded[:1000], encoded[1000:]])
    names3, counts3, _ = _arrow_value_counts(chunked)
    assert dict(zip(names3, counts3.tolist(), strict=True)) == dict(
        zip(names2, counts2.tolist(), strict=True)
    )


def test_csv_streamed_equals_read_csv(
    profile: ReferenceProfile, current: pl.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "cur.csv"
    # CSV has no NaN/inf of its own: polars writes them as text it reads back.
    current.write_csv(path)
    whole = check_frame(profile, pl.read_csv(path, infer_schema_length=10_000).select(FEATURES))
    assert_same(whole, check_csv(profile, path, batch_rows=400))
    assert_same(whole, check_csv(profile, path))


def test_parallel_groups_equal_serial(
    profile: ReferenceProfile, current: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short wide batch is binned in parallel feature groups: same counts as serially."""
    short = current.head(200)
    assert short.height * len(FEATURES) >= drift_counter.PARALLEL_MIN_ROWS // 10
    monkeypatch.setattr(drift_counter, "PARALLEL_MIN_ROWS", 1)
    par = Counter(profile)
    par.update(short)
    monkeypatch.setattr(drift_counter, "PARALLEL_MIN_ROWS", 10**12)
    ser = Counter(profile)
    ser.update(short)
    for name in FEATURES:
        a, b = par.states[name], ser.states[name]
        if isinstance(a, drift_counter.NumericCounts):
            assert isinstance(b, drift_counter.NumericCounts)
            assert np.array_equal(a.fine_counts, b.fine_counts)
            assert np.array_equal(a.hist_counts, b.hist_counts)
        else:
            assert isinstance(b, drift_counter.CategoricalCounts)
            assert np.array_equal(a.counts, b.counts) and a.unseen == b.unseen


def _records(frame: pl.DataFrame) -> list[str]:
    """The rows as the server logs them: JSON, non-finite numbers as null."""

    def clean(v: object) -> object:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return [json.dumps({k: clean(v) for k, v in r.items()}) for r in frame.to_dicts()]


def _log(root: Path, frame: pl.DataFrame) -> np.ndarray:
    """`frame`'s rows as served predictions of model m v1 (features as JSON); the outputs."""
    rng = np.random.default_rng(5)
    outputs = rng.uniform(0, 1, frame.height)
    now = utcnow()
    rows = [
        {
            "ts": now,
            "request_id": f"r{i}",
            "model": "m",
            "version": 1,
            "variant": "primary",
            "features": rec,
            "output": float(outputs[i]),
            "latency_ms": 1.0,
            "status": 200,
            "error": None,
        }
        for i, rec in enumerate(_records(frame))
    ]
    log = ParquetLog(root, "predictions")
    half = len(rows) // 2
    log.append(rows[:half])  # two files: the stream crosses them
    log.append(rows[half:])
    return outputs


def test_prediction_log_streamed_equals_all_rows(
    profile: ReferenceProfile,
    current: pl.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = current.head(1500)
    outputs = _log(tmp_path, frame)
    # The all-rows path: every record decoded at once.
    texts = pa.array(_records(frame))
    whole = sources.json_frame(texts, sources.json_struct(profile))
    reference = check_frame(profile, whole, predictions=outputs)

    def streamed(batch_rows: int) -> DriftReport:
        monkeypatch.setattr(checks, "LOG_BATCH_ROWS", batch_rows)
        counter = Counter(profile)
        with Db(tmp_path) as db:
            for f, out in checks.prediction_batches(db, "m", 1, profile, None, None):
                assert f.num_rows <= batch_rows
                counter.update(f, predictions=out)
        from workbench.drift.evaluate import evaluate

        return evaluate(profile, counter)

    many, one = streamed(256), streamed(100_000)
    assert_same(reference, many)
    assert_same(one, many)
    assert many.prediction is not None and reference.prediction is not None
    assert many.prediction.cur_hist == reference.prediction.cur_hist
    with Db(tmp_path) as db:  # the last N: N rows, in batches too
        got = sum(f.num_rows for f, _ in checks.prediction_batches(db, "m", 1, profile, None, 700))
        assert got == 700
        # All at once (for callers that need the rows): the same rows.
        frame_all, out_all = checks._predictions(db, "m", 1, profile, None, None)
        assert frame_all.height == out_all.size == 1500
        assert_same(reference, check_frame(profile, frame_all, predictions=out_all))
        none, no_out = checks._predictions(db, "m", 2, profile, None, None)
        assert none.height == no_out.size == 0 and none.columns == FEATURES


def test_parquet_missing_column_is_one_line(profile: ReferenceProfile, tmp_path: Path) -> None:
    path = tmp_path / "narrow.parquet"
    pq.write_table(pa.table({"x00": [1.0, 2.0]}), path)
    from workbench.errors import DataError

    with pytest.raises(DataError, match="lacks column"):
        check_parquet(profile, path)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_union_bins_equal_searchsorted_on_each_edge_set(seed: int) -> None:
    """Values binned once, on the union of the decile, fine and histogram edges, give the
    counts a `searchsorted` on each set gives: discrete values on the edges, values out of
    the reference range, and a profile whose deciles are not among its fine edges."""
    from workbench.drift.profile import FeatureProfile

    rng = np.random.default_rng(seed)
    ref = np.round(rng.normal(0, 2, 4000), seed)  # seed 0: integers, all on edges
    fp = build_profile(pl.DataFrame({"v": ref}), ["v"], set()).features["v"]
    odd = FeatureProfile(name="v", kind="numeric", n=10)
    odd.decile_edges = [-0.33, 0.07, 1.5]
    odd.fine_edges = [-1.0, 0.0, 0.5, 2.0]
    odd.hist_edges = [-3.0, -1.25, 0.0, 1.25, 3.0]
    odd.fine_centers = [-2.0, -0.5, 0.25, 1.0, 3.0]
    cur = np.concatenate([np.round(rng.normal(0.3, 3, 5000), seed), [-1e9, 1e9, 0.0, 0.5]])
    for prof in (fp, odd):
        st = drift_counter.NumericCounts(prof)
        st.update(cur, 0)

        def direct(edges: list[float], size: int) -> np.ndarray:
            idx = np.searchsorted(np.asarray(edges, dtype=np.float64), cur, side="right")
            return np.bincount(idx, minlength=size)

        assert np.array_equal(st.fine_counts, direct(prof.fine_edges, st.fine_counts.size))
        assert np.array_equal(st.decile_counts, direct(prof.decile_edges, st.decile_counts.size))
        assert np.array_equal(st.hist_counts, direct(prof.hist_edges[1:-1], st.hist_counts.size))
        fine = np.searchsorted(np.asarray(prof.fine_edges), cur, side="right")
        sums = np.bincount(fine, weights=cur, minlength=st.fine_sums.size)
        assert np.allclose(st.fine_sums, sums, rtol=1e-12, atol=1e-6)
