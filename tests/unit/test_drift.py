"""Reference profiles, streaming counts and drift reports."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.drift import stats as drift_stats
from workbench.drift.binning import Binner
from workbench.drift.counter import Counter
from workbench.drift.evaluate import (
    DEFAULT_THRESHOLDS,
    FeatureRule,
    check_frame,
    check_parquet,
    evaluate,
)
from workbench.drift.profile import (
    OTHER,
    FeatureProfile,
    ProfileError,
    ReferenceProfile,
    build_profile,
)
from workbench.errors import DataError, UsageError, WorkbenchError

N = 20_000
FEATURES = ["age", "income", "score", "city", "count"]
CATEGORICAL = {"city"}
CITIES = ["paris", "lyon", "nice", "lille", "brest"]
CITY_P = [0.4, 0.25, 0.15, 0.12, 0.08]


def _frame(seed: int, n: int = N, **shift: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + shift.get("age", 0.0), 10, n)
    income = rng.lognormal(10 + shift.get("income", 0.0), 0.5, n)
    score = rng.uniform(0, 1, n)
    age[:50] = np.nan
    age[50:60] = np.inf
    age[60:65] = -np.inf
    city = rng.choice(CITIES, n, p=CITY_P).astype(object)
    city[:30] = None
    count = rng.poisson(3, n).astype(float)
    frame = pl.DataFrame(
        {
            "age": age,
            "income": income,
            "score": score,
            "city": pl.Series(city.tolist(), dtype=pl.String),
            "count": pl.Series(count.astype(np.int64)),
        }
    )
    # nulls (missing) in a numeric column, distinct from NaN
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 100 == 7)
        .then(None)
        .otherwise(pl.col("score"))
        .alias("score")
    )


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    return _frame(1)


@pytest.fixture(scope="module")
def profile(reference) -> ReferenceProfile:
    preds = np.random.default_rng(3).normal(0.3, 0.1, N)
    return build_profile(reference, FEATURES, CATEGORICAL, preds, source="test data")


# ---------------------------------------------------------------------------- profile


def test_build_profile_numeric(profile, reference):
    age = profile.features["age"]
    assert age.kind == "numeric"
    assert age.n == N
    assert age.missing == 0
    assert age.nonfinite == 65  # NaN, +inf and -inf counted, not dropped
    finite = reference["age"].to_numpy()
    finite = finite[np.isfinite(finite)]
    assert sum(age.decile_counts) == sum(age.fine_counts) == sum(age.hist_counts) == N - 65
    assert len(age.decile_edges) == 9 and len(age.decile_counts) == 10
    assert len(age.fine_edges) == 99 and len(age.fine_counts) == 100
    assert len(age.hist_edges) == 21 and len(age.hist_counts) == 20
    assert set(age.decile_edges) <= set(age.fine_edges)
    np.testing.assert_allclose(age.decile_edges, np.quantile(finite, np.arange(1, 10) / 10))
    assert all(abs(c - len(finite) / 10) <= 1 for c in age.decile_counts)
    assert age.mean == pytest.approx(finite.mean())
    assert age.std == pytest.approx(finite.std())
    assert (age.min, age.max) == (finite.min(), finite.max())
    assert all(a <= b for a, b in zip(age.fine_centers, age.fine_centers[1:], strict=False))
    score = profile.features["score"]
    assert score.missing == N // 100  # nulls are missing, not non-finite
    assert score.nonfinite == 0


def test_build_profile_categorical_and_discrete(profile):
    city = profile.features["city"]
    assert city.kind == "categorical"
    assert city.missing == 30
    assert city.categories[0] == "paris"
    assert set(city.categories) == set(CITIES)
    assert sum(city.category_counts) == N - 30
    # a discrete numeric feature: tied quantiles collapse into fewer bins
    count = profile.features["count"]
    assert count.kind == "numeric"
    assert len(count.decile_edges) < 9
    assert sum(count.decile_counts) == N
    assert profile.prediction is not None and profile.prediction.n == N
    assert profile.n_rows == N
    assert profile.source == "test data"
    assert profile.created_at.endswith("Z")


def test_categories_beyond_limit_pool_as_other():
    values = [f"c{i:03d}" for i in range(250) for _ in range(250 - i)]
    frame = pl.DataFrame({"c": values})
    fp = build_profile(frame, ["c"], {"c"}).features["c"]
    assert len(fp.categories) == 201
    assert fp.categories[-1] == OTHER
    assert fp.category_counts[-1] == sum(250 - i for i in range(200, 250))
    assert sum(fp.category_counts) == len(values)


def test_constant_and_empty_features():
    frame = pl.DataFrame(
        {"k": [5.0] * 100, "e": [None] * 100}, schema={"k": pl.Float64, "e": pl.Float64}
    )
    prof = build_profile(frame, ["k", "e"], set())
    k, e = prof.features["k"], prof.features["e"]
    assert k.decile_edges == [5.0] and k.decile_counts == [0, 100]
    assert len(k.hist_counts) == 1
    assert e.missing == 100 and e.decile_edges == []
    report = check_frame(prof, frame)
    by = {f.feature: f for f in report.features}
    assert by["k"].status == "ok" and by["k"].stats["psi"] == pytest.approx(0.0)
    assert by["e"].status == "no_data"
    assert report.status == "ok"


def test_profile_json_round_trip(profile, tmp_path):
    again = ReferenceProfile.from_json(profile.to_json())
    assert again == profile
    path = tmp_path / "models" / "drift_profile.json"
    profile.save(path)
    assert ReferenceProfile.load(path) == profile
    assert FeatureProfile.from_dict(profile.features["age"].to_dict()) == profile.features["age"]


@pytest.mark.parametrize(
    "text,match",
    [
        ("{not json", "invalid JSON"),
        ('{"a": 1}', "not a drift profile"),
        ('{"format": "workbench-drift-profile", "version": 99}', "version 99"),
        ('{"format": "workbench-drift-profile", "version": 1, "features": [{}]}', "malformed"),
    ],
)
def test_bad_profile_file_is_one_line_error(tmp_path, text, match):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ProfileError, match=match) as err:
        ReferenceProfile.load(path)
    assert isinstance(err.value, WorkbenchError)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)
    with pytest.raises(ProfileError, match="no drift profile"):
        ReferenceProfile.load(tmp_path / "missing.json")


# ---------------------------------------------------------------------------- checks


def test_same_distribution_is_ok(profile):
    report = check_frame(profile, _frame(2))
    assert report.status == "ok", [(f.feature, f.status, f.score) for f in report.features]
    assert report.alerts == report.warnings == 0
    assert report.n_rows == N


def test_shifted_feature_alerts_alone(profile):
    report = check_frame(profile, _frame(2, age=8.0))
    by = {f.feature: f for f in report.features}
    assert by["age"].status == "alert"
    assert by["age"].test == "psi" and by["age"].score > 0.25
    assert report.features[0].feature == "age"  # alerts first
    assert [f.feature for f in report.features if f.status != "ok"] == ["age"]
    assert report.status == "alert" and report.alerts == 1
    age = by["age"]
    assert age.stats["ks_p"] < 0.01 and age.stats["wasserstein"] > 0.5
    assert age.cur_mean == pytest.approx(48, abs=0.5)
    assert age.ref_mean == pytest.approx(40, abs=0.5)
    # the counts behind the statistics are the profile's bins: recompute one by hand
    counter = Counter(profile, ["age"])
    counter.update(_frame(2, age=8.0))
    state = counter.states["age"]
    assert age.stats["psi"] == pytest.approx(
        drift_stats.psi(profile.features["age"].decile_counts, state.decile_counts)
    )


def test_missing_and_nonfinite_are_reported(profile):
    cur = _frame(2).with_columns(
        pl.when(pl.int_range(pl.len()) < 500).then(None).otherwise(pl.col("age")).alias("age")
    )
    by = {f.feature: f for f in check_frame(profile, cur).features}
    assert by["age"].missing == 500
    assert by["age"].nonfinite == 0  # the NaN/inf rows (first 65) are now null
    assert by["age"].missing_ref == 0 and by["age"].nonfinite_ref == 65
    assert by["age"].n_cur == N
    assert by["score"].missing == N // 100
    assert by["city"].missing == 30


def test_unseen_categories_counted_and_in_psi(profile):
    cur = _frame(2).with_columns(
        pl.when(pl.int_range(pl.len()) % 4 == 0)
        .then(pl.lit("tokyo"))
        .when(pl.int_range(pl.len()) % 4 == 1)
        .then(pl.lit("oslo"))
        .otherwise(pl.col("city"))
        .alias("city")
    )
    by = {f.feature: f for f in check_frame(profile, cur).features}
    city = by["city"]
    assert city.unseen == {"tokyo": N // 4, "oslo": N // 4}
    assert city.status == "alert"
    assert math.isfinite(city.stats["psi"]) and city.stats["psi"] > 1
    assert city.stats["chi2_p"] < 1e-6
    assert city.hist_labels[-1] == "__unseen__"
    assert city.ref_hist[-1] == 0.0 and city.cur_hist[-1] == pytest.approx(0.5, abs=0.01)
    # other features unaffected
    assert by["age"].status == "ok"


def test_categorical_shift_without_unseen(profile):
    rng = np.random.default_rng(5)
    cur = _frame(2).with_columns(pl.Series("city", rng.choice(CITIES, N, p=CITY_P[::-1]).tolist()))
    city = {f.feature: f for f in check_frame(profile, cur).features}["city"]
    assert city.unseen == {}
    assert city.status == "alert"
    assert city.hist_labels == profile.features["city"].categories


def test_prediction_drift(profile):
    same = np.random.default_rng(4).normal(0.3, 0.1, N)
    shifted = np.random.default_rng(4).normal(0.5, 0.1, N)
    ok = check_frame(profile, _frame(2), predictions=same)
    assert ok.prediction is not None and ok.prediction.status == "ok"
    assert ok.status == "ok"
    bad = check_frame(profile, _frame(2), predictions=shifted)
    assert bad.prediction.status == "alert"
    assert bad.prediction.feature == "prediction"
    assert bad.status == "alert" and bad.alerts == 1
    assert check_frame(profile, _frame(2)).prediction is None


def test_rules_change_test_and_thresholds(profile):
    cur = _frame(2, age=1.0)  # a small shift: PSI ~0.01
    default = {f.feature: f for f in check_frame(profile, cur).features}["age"]
    assert default.test == "psi" and default.status == "ok"
    assert (default.warn, default.alert) == DEFAULT_THRESHOLDS["psi"]
    rules = {
        "age": FeatureRule(test="ks"),
        "income": FeatureRule(warn=0.0, alert=10.0),
        "city": FeatureRule(test="chi2", warn=0.5, alert=0.4),
        "prediction": FeatureRule(test="wasserstein"),
    }
    report = check_frame(profile, cur, rules=rules)
    by = {f.feature: f for f in report.features}
    assert by["age"].test == "ks" and by["age"].score == by["age"].stats["ks_p"]
    assert by["age"].status == "alert"  # p < 0.01 on 20k rows
    assert by["income"].status == "warn"  # any PSI >= 0
    assert by["city"].test == "chi2" and by["city"].alert == 0.4
    # defaults by kind
    report = check_frame(profile, cur, default_numeric="wasserstein")
    assert {f.test for f in report.features if f.kind == "numeric"} == {"wasserstein"}
    with pytest.raises(UsageError, match=r"'city'.*'ks'"):
        check_frame(profile, cur, rules={"city": FeatureRule(test="ks")})


def test_report_is_json_safe(profile):
    report = check_frame(profile, _frame(2, age=5.0), predictions=np.zeros(N))
    d = report.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["status"] == "alert"
    assert d["features"][0]["feature"] == "age"
    assert set(d["features"][0]["stats"]) == {"psi", "kl", "js", "wasserstein", "ks", "ks_p"}
    city = next(f for f in d["features"] if f["feature"] == "city")
    assert set(city["stats"]) == {"psi", "chi2", "chi2_p", "js"}


def test_missing_column_raises(profile):
    with pytest.raises(DataError, match="age"):
        check_frame(profile, _frame(2).drop("age"))


def test_all_missing_current_is_no_data(profile):
    cur = _frame(2).with_columns(pl.lit(None, dtype=pl.Float64).alias("income"))
    income = {f.feature: f for f in check_frame(profile, cur).features}["income"]
    assert income.status == "no_data"
    assert income.missing == N
    assert math.isnan(income.score)


# ---------------------------------------------------------------------------- streaming


def _compare(a, b):
    """Equal, floats to 1e-12 (streamed float sums may differ in the last bits)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _compare(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _compare(x, y)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
    else:
        assert a == b


def test_check_parquet_equals_check_frame(profile, tmp_path):
    cur = _frame(9, age=3.0)
    path = tmp_path / "current.parquet"
    pq.write_table(cur.to_arrow(), path, row_group_size=3_000)
    assert pq.ParquetFile(path).metadata.num_row_groups > 5
    progress: list[tuple[int, int]] = []
    streamed = check_parquet(
        profile, path, batch_rows=2_500, on_progress=lambda d, t: progress.append((d, t))
    )
    whole = check_frame(profile, cur)
    a, b = streamed.to_dict(), whole.to_dict()
    a.pop("seconds"), b.pop("seconds")
    _compare(a, b)
    # the bins' counts (hence every statistic but Wasserstein and the mean) match exactly
    for fa, fb in zip(streamed.features, whole.features, strict=True):
        for key in ("psi", "kl", "js", "ks", "ks_p", "chi2", "chi2_p"):
            assert fa.stats.get(key) == fb.stats.get(key)
        assert (fa.status, fa.n_cur, fa.missing, fa.nonfinite) == (
            fb.status,
            fb.n_cur,
            fb.missing,
            fb.nonfinite,
        )
    assert progress[-1] == (N, N)
    assert len(progress) == math.ceil(N / 2_500) or len(progress) > 5
    # a column subset
    only = check_parquet(profile, path, columns=["age"])
    assert [f.feature for f in only.features] == ["age"]


def test_check_parquet_folder_and_errors(profile, tmp_path):
    cur = _frame(9)
    (tmp_path / "d").mkdir()
    pq.write_table(cur.slice(0, 5_000).to_arrow(), tmp_path / "d" / "a.parquet")
    pq.write_table(cur.slice(5_000).to_arrow(), tmp_path / "d" / "b.parquet")
    folder = check_parquet(profile, tmp_path / "d")
    assert folder.n_rows == N
    assert folder.status == check_frame(profile, cur).status
    with pytest.raises(DataError, match="no Parquet files"):
        check_parquet(profile, tmp_path / "nothing")
    pq.write_table(cur.drop("age").to_arrow(), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="age"):
        check_parquet(profile, tmp_path / "x.parquet")


def test_check_parquet_prediction_column(profile, tmp_path):
    cur = _frame(9).with_columns(pl.Series("pred", np.full(N, 0.9)))
    pq.write_table(cur.to_arrow(), tmp_path / "p.parquet")
    report = check_parquet(profile, tmp_path / "p.parquet", prediction_column="pred")
    assert report.prediction is not None and report.prediction.status == "alert"


def test_counter_accepts_arrow_batches(profile):
    cur = _frame(9)
    counter = Counter(profile)
    for batch in cur.to_arrow().to_batches(max_chunksize=4_000):
        counter.update(batch)
    assert counter.rows == N
    a = evaluate(profile, counter).to_dict()
    b = check_frame(profile, cur).to_dict()
    a.pop("seconds"), b.pop("seconds")
    _compare(a, b)
    table_counter = Counter(profile)
    table_counter.update(pa.Table.from_batches(cur.to_arrow().to_batches()))
    assert table_counter.rows == N


def test_counter_memory_does_not_grow_with_rows(profile):
    small, big = Counter(profile), Counter(profile)
    small.update(_frame(2, n=1_000))
    for seed in range(5):
        big.update(_frame(seed, n=N))
    assert big.rows == 5 * N
    assert small.nbytes() == big.nbytes() > 0
    for name in FEATURES:
        s, b = small.states[name], big.states[name]
        if hasattr(s, "fine_counts"):
            assert s.fine_counts.shape == b.fine_counts.shape
            assert s.hist_counts.shape == b.hist_counts.shape
        else:
            assert s.counts.shape == b.counts.shape


def test_counter_unseen_names_are_bounded(profile, monkeypatch):
    import workbench.drift.counter as dp

    monkeypatch.setattr(dp, "UNSEEN_MAX", 100)
    monkeypatch.setattr(dp, "UNSEEN_PRUNE_TO", 10)
    counter = Counter(profile, ["city"])
    for i in range(5):
        frame = pl.DataFrame({"city": [f"new{i}-{j}" for j in range(90)] + ["paris"] * 10})
        counter.update(frame)
    state = counter.states["city"]
    assert len(state.unseen) <= 100
    assert int(state.counts[-1]) == 5 * 90  # the bin keeps every unseen row
    assert len(state.top_unseen(20)) == 20


# ---------------------------------------------------------------------------- binning


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).normal(size=200_000),
        np.random.default_rng(1).lognormal(size=200_000),
        np.random.default_rng(2).pareto(1.0, size=200_000),
        np.random.default_rng(3).integers(0, 5, 200_000).astype(float),
        np.random.default_rng(4).normal(1e9, 1e-3, size=200_000),
    ],
)
def test_binner_equals_searchsorted(values):
    edges = np.unique(np.quantile(values, np.arange(1, 100) / 100))
    probes = [
        values,
        edges,
        np.nextafter(edges, np.inf),
        np.nextafter(edges, -np.inf),
        np.nextafter(values, np.inf),
        values * (1 + 1e-12),
        np.array([-1e308, 1e308, edges[0] - 1, edges[-1] + 1]),
    ]
    for probe in probes:
        binner = Binner(edges)
        np.testing.assert_array_equal(
            binner.index(probe), np.searchsorted(edges, probe, side="right")
        )
