"""Data validation against the fraud sample's schema, on real polars frames."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console
from rich.table import Table
from workbench_samples.fraud_detection.generate import generate

from workbench.config import Config, load_config, parse_config
from workbench.data.validation import Check, ValidationReport, render_report, validate_frame
from workbench.errors import ConfigError

SAMPLE = Path(__file__).resolve().parents[2] / "sample_projects" / "fraud_detection"
CONFIG_TEXT = (SAMPLE / "workbench.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(SAMPLE / "workbench.toml")


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    return generate(5_000, seed=7)


def _config(old: str, new: str) -> Config:
    """The sample config with one line changed."""
    assert old in CONFIG_TEXT
    return parse_config(CONFIG_TEXT.replace(old, new, 1))


def _only(report: ValidationReport, check: str, column: str | None) -> Check:
    found = [c for c in report.checks if c.check == check and c.column == column]
    assert len(found) == 1, found
    return found[0]


def _failed(report: ValidationReport) -> set[tuple[str, str | None]]:
    return {(c.check, c.column) for c in report.failures}


# ---------------------------------------------------------------- the clean case


def test_clean_generated_frame_passes(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean, config)
    assert report.failures == []
    assert report.warnings == []
    assert report.passed
    assert report.rows == 5_000
    assert report.columns == 12


def test_clean_frame_with_nulls_within_allowance(config: Config, clean: pl.DataFrame) -> None:
    check = _only(validate_frame(clean, config), "missing", "device_score")
    assert check.status == "pass"
    assert check.value is not None and 0 < check.value <= 0.01


def test_every_column_gets_type_and_missing_checks(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean, config)
    for name in config.schema_:
        assert _only(report, "type", name).status == "pass"
        assert _only(report, "missing", name).status == "pass"
    assert _only(report, "target", "is_fraud").value == 2
    assert _only(report, "rows", None).value == 5_000


# ---------------------------------------------------------------- schema and types


def test_missing_column_fails(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean.drop("card_age_days"), config)
    assert not report.passed
    assert _failed(report) == {("schema", "card_age_days")}


def test_missing_target_fails_schema_and_target(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean.drop("is_fraud"), config)
    assert _failed(report) == {("schema", "is_fraud"), ("target", "is_fraud")}


def test_extra_column_is_allowed_by_default(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean.with_columns(pl.lit(1).alias("extra")), config)
    assert report.passed and not report.warnings
    assert "1 extra column allowed" in _only(report, "schema", None).detail


def test_extra_column_warns_when_not_allowed(clean: pl.DataFrame) -> None:
    strict = _config("allow_extra_columns = true", "allow_extra_columns = false")
    report = validate_frame(clean.with_columns(pl.lit(1).alias("extra")), strict)
    assert [(c.check, c.column) for c in report.warnings] == [("schema", "extra")]
    assert report.passed  # a warning is not a failure ...
    both = parse_config(
        CONFIG_TEXT.replace("allow_extra_columns = true", "allow_extra_columns = false").replace(
            "fail_on_warning = false", "fail_on_warning = true"
        )
    )
    report = validate_frame(clean.with_columns(pl.lit(1).alias("extra")), both)
    assert not report.passed  # ... unless fail_on_warning


@pytest.mark.parametrize(
    ("column", "dtype"),
    [
        ("amount", pl.String),  # float declared
        ("card_age_days", pl.Float64),  # int declared
        ("merchant_category", None),  # category declared; replaced by ints below
        ("ts", pl.String),  # datetime declared
    ],
)
def test_wrong_dtype_fails(
    config: Config, clean: pl.DataFrame, column: str, dtype: pl.DataType | None
) -> None:
    if dtype is None:
        broken = clean.with_columns(pl.col(column).rank("dense").cast(pl.Int64))
    else:
        broken = clean.with_columns(pl.col(column).cast(dtype))
    report = validate_frame(broken, config)
    assert _failed(report) == {("type", column)}
    assert "declared" in _only(report, "type", column).detail


def test_categorical_and_enum_count_as_category(config: Config, clean: pl.DataFrame) -> None:
    as_cat = clean.with_columns(pl.col("merchant_category").cast(pl.Categorical))
    assert validate_frame(as_cat, config).passed
    levels = sorted(clean["merchant_category"].unique())
    as_enum = clean.with_columns(pl.col("merchant_category").cast(pl.Enum(levels)))
    assert validate_frame(as_enum, config).passed


def test_date_counts_as_datetime_and_int32_as_float(config: Config, clean: pl.DataFrame) -> None:
    other = clean.with_columns(pl.col("ts").dt.date(), pl.col("amount").round().cast(pl.Int32))
    assert validate_frame(other, config).passed


def test_bool_type(clean: pl.DataFrame) -> None:
    cfg = _config('[schema.is_foreign]\ntype = "int"', '[schema.is_foreign]\ntype = "bool"')
    assert validate_frame(clean, cfg).passed
    as_bool = clean.with_columns(pl.col("is_foreign").cast(pl.Boolean))
    assert validate_frame(as_bool, cfg).passed
    broken = clean.with_columns(
        pl.when(pl.int_range(pl.len()) < 2)
        .then(2)
        .otherwise(pl.col("is_foreign"))
        .alias("is_foreign")
    )
    report = validate_frame(broken, cfg)
    # The 2s are caught by the bool rule (type) and by the config's max = 1 (range).
    assert ("type", "is_foreign") in _failed(report)
    assert _only(report, "type", "is_foreign").value == 2


# ---------------------------------------------------------------- values


def test_out_of_range_fails_with_count(config: Config, clean: pl.DataFrame) -> None:
    broken = clean.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(24).otherwise(pl.col("hour")).alias("hour"),
        pl.when(pl.int_range(pl.len()) == 10)
        .then(-5.0)
        .otherwise(pl.col("amount"))
        .alias("amount"),
    )
    report = validate_frame(broken, config)
    assert _failed(report) == {("range", "hour"), ("range", "amount")}
    hour = _only(report, "range", "hour")
    assert hour.value == 3
    assert hour.detail == "3 of 5,000 values (0.06%) are above max 23"
    assert "below min 0" in _only(report, "range", "amount").detail


def test_unseen_category_fails_naming_values(config: Config) -> None:
    drifted = generate(5_000, seed=7, drift=True)
    report = validate_frame(drifted, config)
    assert _failed(report) == {("allowed", "merchant_category")}
    check = _only(report, "allowed", "merchant_category")
    assert "'crypto_exchange'" in check.detail
    assert check.value == (drifted["merchant_category"] == "crypto_exchange").sum()


def test_unseen_categories_show_at_most_three(config: Config, clean: pl.DataFrame) -> None:
    novel = pl.Series(["a", "b", "c", "d", "e"] * 2)
    broken = clean.with_columns(
        pl.concat([novel, clean["merchant_category"].slice(10)]).alias("merchant_category")
    )
    detail = _only(validate_frame(broken, config), "allowed", "merchant_category").detail
    assert "'a', 'b', 'c' and 2 more" in detail


def test_too_many_nulls_fail(config: Config, clean: pl.DataFrame) -> None:
    nulls = clean.with_columns(
        pl.when(pl.int_range(pl.len()) % 20 == 0)
        .then(None)
        .otherwise(pl.col("device_score"))
        .alias("device_score")
    )
    report = validate_frame(nulls, config)
    assert _failed(report) == {("missing", "device_score")}
    assert _only(report, "missing", "device_score").value == pytest.approx(0.05, abs=0.003)


def test_any_null_fails_where_none_allowed(config: Config, clean: pl.DataFrame) -> None:
    one = clean.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(None)
        .otherwise(pl.col("card_age_days"))
        .alias("card_age_days")
    )
    assert _failed(validate_frame(one, config)) == {("missing", "card_age_days")}


def test_nan_counts_as_missing(config: Config, clean: pl.DataFrame) -> None:
    nan = clean.with_columns(
        pl.when(pl.int_range(pl.len()) < 2)
        .then(float("nan"))
        .otherwise(pl.col("amount"))
        .alias("amount")
    )
    report = validate_frame(nan, config)
    assert _failed(report) == {("missing", "amount")}
    # NaN is not counted again as out of range or as an outlier.
    assert _only(report, "range", "amount").status == "pass"


def test_outliers_warn_never_fail(config: Config, clean: pl.DataFrame) -> None:
    spiky = clean.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(1_000_000.0)
        .otherwise(pl.col("avg_amount_30d"))
        .alias("avg_amount_30d")
    )
    report = validate_frame(spiky, config)
    assert report.failures == []
    assert [(c.check, c.column) for c in report.warnings] == [("outliers", "avg_amount_30d")]
    warning = report.warnings[0]
    assert warning.value is not None and warning.value >= 0.1
    assert "3 × IQR" in warning.detail
    assert report.passed


def test_zscore_outliers(clean: pl.DataFrame) -> None:
    cfg = _config('outlier_method = "iqr"', 'outlier_method = "zscore"')
    assert validate_frame(clean, cfg).passed
    spiky = clean.with_columns(
        pl.when(pl.int_range(pl.len()) % 16 == 0)  # 6.25% of rows, above the 5% allowed
        .then(pl.col("card_age_days") + 1_000_000)
        .otherwise(pl.col("card_age_days"))
        .alias("card_age_days")
    )
    report = validate_frame(spiky, cfg)
    assert [(c.check, c.column) for c in report.warnings] == [("outliers", "card_age_days")]
    assert "|z| > 3" in report.warnings[0].detail


def test_constant_column_is_not_all_outliers(config: Config, clean: pl.DataFrame) -> None:
    flat = clean.with_columns(pl.lit(3, dtype=pl.Int64).alias("num_tx_last_24h"))
    check = _only(validate_frame(flat, config), "outliers", "num_tx_last_24h")
    assert check.status == "pass"


# ---------------------------------------------------------------- rows and target


def test_too_few_rows_fail(config: Config, clean: pl.DataFrame) -> None:
    labelled = clean.drop_nulls()
    small = pl.concat(
        [
            labelled.filter(pl.col("is_fraud") == 1).head(5),
            labelled.filter(pl.col("is_fraud") == 0).head(45),
        ]
    )
    report = validate_frame(small, config)
    assert _failed(report) == {("rows", None)}
    assert _only(report, "rows", None).detail == "50 rows; at least 100 needed"


def test_empty_frame_fails_without_crashing(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean.head(0), config)
    assert ("rows", None) in _failed(report)
    assert ("target", "is_fraud") in _failed(report)


def test_single_class_target_fails(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean.filter(pl.col("is_fraud") == 0), config)
    assert _failed(report) == {("target", "is_fraud")}
    check = _only(report, "target", "is_fraud")
    assert check.value == 1
    assert "only 1 class" in check.detail


def test_null_target_fails(clean: pl.DataFrame) -> None:
    # Let the schema tolerate the null so only the target rule reports it.
    cfg = _config(
        '[schema.is_fraud]\ntype = "int"', '[schema.is_fraud]\ntype = "int"\nmax_missing = 0.5'
    )
    broken = clean.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(None)
        .otherwise(pl.col("is_fraud"))
        .alias("is_fraud")
    )
    report = validate_frame(broken, cfg)
    assert _failed(report) == {("target", "is_fraud")}
    assert "1 missing label" in _only(report, "target", "is_fraud").detail


def test_target_checked_even_without_schema(clean: pl.DataFrame) -> None:
    """Without [schema] there are no features: that fails (it never trains a model on zero
    columns), and the target is still checked."""
    cfg = parse_config(
        '[project]\nname = "p"\n[data]\npath = "x.csv"\ntarget = "is_fraud"\nsplit = "random"\n'
    )
    report = validate_frame(clean, cfg)
    assert _failed(report) == {("config", None)}
    assert "no features" in report.failures[0].detail
    assert "[schema" in report.failures[0].detail
    report = validate_frame(clean.with_columns(pl.lit(0).alias("is_fraud")), cfg)
    assert _failed(report) == {("config", None), ("target", "is_fraud")}


# ---------------------------------------------------------------- output


def test_to_dict_is_json(config: Config, clean: pl.DataFrame) -> None:
    broken = clean.drop("hour").with_columns(pl.lit(float("nan")).alias("amount"))
    report = validate_frame(broken, config)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["rows"] == 5_000
    assert data["passed"] is False
    assert data["failures"] == len(report.failures) >= 2
    assert {"check", "column", "status", "detail", "value"} <= set(data["checks"][0])


def test_render_report(config: Config, clean: pl.DataFrame) -> None:
    report = validate_frame(clean.drop("hour"), config)
    table = render_report(report)
    assert isinstance(table, Table)
    assert table.row_count == len(report.checks)
    console = Console(record=True, width=160, color_system=None)
    console.print(table)
    text = console.export_text()
    assert "FAIL" in text and "hour" in text and "FAILED" in text
    # Failures come first.
    assert text.index("FAIL ") < text.index("PASS")
    assert render_report(report, show_passed=False).row_count == len(report.failures)


# ---------------------------------------------------------------- infinities (issue 9)


def _with_inf(
    frame: pl.DataFrame, column: str, every: int, value: float = float("inf")
) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) % every == 0)
        .then(value)
        .otherwise(pl.col(column))
        .alias(column)
    )


@pytest.mark.parametrize(
    ("every", "expected"),
    [
        pytest.param(50, "100 of 5,000 values (2.00%) are infinite (100 +inf)", id="2-percent"),
        pytest.param(
            1, "5,000 of 5,000 values (100.00%) are infinite (5,000 +inf)", id="every-row"
        ),
    ],
)
def test_infinite_values_fail_by_default_naming_the_column(
    config: Config, clean: pl.DataFrame, every: int, expected: str
) -> None:
    report = validate_frame(_with_inf(clean, "avg_amount_30d", every), config)
    assert ("nonfinite", "avg_amount_30d") in _failed(report)
    assert not report.passed
    detail = _only(report, "nonfinite", "avg_amount_30d").detail
    assert detail.startswith(expected), detail
    assert detail.endswith("at most 0.00% allowed")


def test_negative_infinity_counts_and_is_reported_by_sign(
    config: Config, clean: pl.DataFrame
) -> None:
    frame = _with_inf(_with_inf(clean, "amount", 100), "amount", 250, float("-inf"))
    check = _only(validate_frame(frame, config), "nonfinite", "amount")
    assert check.status == "fail"
    assert check.detail.startswith("60 of 5,000 values (1.20%) are infinite (40 +inf, 20 -inf)")


def test_infinities_do_not_poison_range_or_outliers(config: Config, clean: pl.DataFrame) -> None:
    """±inf is judged by its own check only: it is not out of range, not an outlier, and does
    not turn the z-score mean or the IQR fences infinite."""
    frame = _with_inf(_with_inf(clean, "amount", 100), "amount", 250, float("-inf"))
    for cfg in (config, _config('outlier_method = "iqr"', 'outlier_method = "zscore"')):
        report = validate_frame(frame, cfg)
        assert _failed(report) == {("nonfinite", "amount")}
        assert _only(report, "range", "amount").status == "pass"  # -inf is not "below min 0"
        outliers = _only(report, "outliers", "amount")
        assert "inf" not in outliers.detail and "nan" not in outliers.detail, outliers.detail


def test_nonfinite_allowance_per_column_and_project_wide(clean: pl.DataFrame) -> None:
    frame = _with_inf(clean, "avg_amount_30d", 50)
    per_column = _config(
        '[schema.avg_amount_30d]\ntype = "float"',
        '[schema.avg_amount_30d]\ntype = "float"\nmax_nonfinite = 0.05',
    )
    check = _only(validate_frame(frame, per_column), "nonfinite", "avg_amount_30d")
    assert check.status == "pass" and "within 5.00%" in check.detail
    project_wide = _config("max_missing = 0.0\n", "max_missing = 0.0\nmax_nonfinite = 0.05\n")
    assert validate_frame(frame, project_wide).passed


def test_clean_float_columns_report_no_infinities(config: Config, clean: pl.DataFrame) -> None:
    check = _only(validate_frame(clean, config), "nonfinite", "amount")
    assert (check.status, check.detail) == ("pass", "no infinite values")
    # Integer columns cannot hold infinities: no check for them.
    assert not [
        c
        for c in validate_frame(clean, config).checks
        if c.column == "hour" and c.check == "nonfinite"
    ]


# ---------------------------------------------------------------- [data] roles and features


@pytest.mark.parametrize(
    ("old", "new", "column", "key"),
    [
        ('timestamp = "ts"', 'timestamp = "event_time"', "event_time", "[data].timestamp"),
        (
            'id_column = "transaction_id"',
            'id_column = "txn"',
            "txn",
            "[data].id_column",
        ),
        (
            'id_column = "transaction_id"',
            'id_column = "transaction_id"\ndrop = ["hour", "nope"]',
            "nope",
            "[data].drop[1]",
        ),
    ],
)
def test_data_roles_must_be_columns(
    clean: pl.DataFrame, old: str, new: str, column: str, key: str
) -> None:
    report = validate_frame(clean, _config(old, new))
    assert ("config", column) in _failed(report)
    detail = _only(report, "config", column).detail
    assert detail.startswith(f"{key}: {column!r} is not a column of the data (columns: ")
    assert "amount" in detail


def test_target_not_a_column_names_the_key(clean: pl.DataFrame) -> None:
    cfg = _config('target = "is_fraud"', 'target = "label"')
    report = validate_frame(clean, cfg)
    detail = _only(report, "target", "label").detail
    assert detail.startswith("[data].target: 'label' is not a column of the data (columns: ")


# ---------------------------------------------------------------- trainer plugin and params


def _trainer(params: str = "", plugin: str = "lightgbm") -> Config:
    text = CONFIG_TEXT.replace('plugin = "lightgbm"', f'plugin = "{plugin}"', 1)
    if params:
        text = text.replace("[trainer.params]\n", f"[trainer.params]\n{params}\n", 1)
    return parse_config(text)


BAD_PARAMS = [
    pytest.param(
        "n_estimators = 0", "[trainer.params].n_estimators: must be > 0", id="n_estimators"
    ),
    pytest.param("shrinkage_rate = -0.1", "[trainer.params].shrinkage_rate: must be > 0", id="lr"),
    pytest.param("eta = 0.0", "[trainer.params].eta: must be > 0", id="lr-alias"),
    pytest.param("max_leaves = 1", "[trainer.params].max_leaves: must be > 1", id="leaves"),
    pytest.param("lambda_l1 = -1", "[trainer.params].lambda_l1: must be ≥ 0", id="l1"),
    pytest.param("reg_lambda = -0.5", "[trainer.params].reg_lambda: must be ≥ 0", id="l2-alias"),
    pytest.param(
        "bagging_fraction = 0", "[trainer.params].bagging_fraction: must be > 0", id="bag"
    ),
    pytest.param("colsample_bytree = 1.5", "colsample_bytree: must be > 0 and ≤ 1", id="ff"),
    pytest.param("bagging_seed = -3", "[trainer.params].bagging_seed: must be ≥ 0", id="seed<0"),
    pytest.param(
        "random_state = 12345678901234567890",
        "random_state: must be ≥ 0 and ≤ 4294967295",
        id="seed-big",
    ),
    pytest.param('max_bin = "lots"', "[trainer.params].max_bin: must be an integer", id="type"),
    pytest.param(
        "min_child_samples = 1.5", "min_child_samples: must be an integer", id="int-float"
    ),
    pytest.param("eta = inf", "eta: must be a finite number", id="inf"),
    pytest.param("odd = {a = 1}", "[trainer.params].odd: must be a number, string", id="table"),
]


@pytest.mark.parametrize(("params", "expected"), BAD_PARAMS)
def test_bad_trainer_params_are_one_config_line(
    clean: pl.DataFrame, params: str, expected: str
) -> None:
    # num_iterations is the sample's own line; replace it to test it too
    with pytest.raises(ConfigError) as info:
        validate_frame(clean, _trainer(params))
    msg = str(info.value)
    assert "\n" not in msg and info.value.exit_code == 2
    assert msg.startswith("workbench.toml: [trainer.params].")
    assert expected in msg, msg


def test_negative_num_iterations(clean: pl.DataFrame) -> None:
    cfg = parse_config(CONFIG_TEXT.replace("num_iterations = 150", "num_iterations = -5"))
    with pytest.raises(
        ConfigError, match=r"\[trainer.params\].num_iterations: must be > 0 \(got -5\)"
    ):
        validate_frame(clean, cfg)


def test_several_bad_params_count_the_rest(clean: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"\(and 2 more problems\)"):
        validate_frame(clean, _trainer("eta = 0\nlambda_l1 = -1\nbagging_freq = -1"))


def test_valid_and_unknown_params_pass(clean: pl.DataFrame) -> None:
    cfg = _trainer(
        'early_stopping_rounds = 20\nmetric = ["auc"]\nmax_leaves = 63.0\nsomething_new = 1'
    )
    assert validate_frame(clean, cfg).passed


def test_unknown_trainer_plugin_lists_the_installed_ones(clean: pl.DataFrame) -> None:
    with pytest.raises(ConfigError) as info:
        validate_frame(clean, _trainer(plugin="catboost_rf"))
    msg = str(info.value)
    assert msg.startswith("workbench.toml: [trainer].plugin: no trainer plugin named 'catboost_rf'")
    assert "(installed: " in msg and "lightgbm" in msg.split("(installed: ")[1]
    assert info.value.exit_code == 2


def test_a_runner_is_not_a_trainer(clean: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="no trainer plugin named 'local'"):
        validate_frame(clean, _trainer(plugin="local"))


# ---------------------------------------------------------------- per-task targets


def _task_config(task: str, extra: str = "", y_type: str = "float") -> Config:
    return parse_config(
        '[project]\nname = "p"\n[data]\npath = "x.csv"\ntarget = "y"\nsplit = "random"\n'
        f'[task]\ntype = "{task}"\n{extra}\n[validation]\nmin_rows = 10\n'
        f'[schema.x]\ntype = "float"\n[schema.y]\ntype = "{y_type}"\n'
    )


def _xy(y: list[object]) -> pl.DataFrame:
    return pl.DataFrame({"x": [float(i) for i in range(len(y))], "y": y})


def test_continuous_target_under_binary_fails_suggesting_regression() -> None:
    report = validate_frame(_xy([i * 0.37 for i in range(214)]), _task_config("binary"))
    assert _failed(report) == {("target", "y")}
    assert _only(report, "target", "y").detail == (
        "target 'y' has 214 distinct values; a binary task needs 2 — "
        'set [task].type = "regression"'
    )


def test_multiclass_has_a_cap_on_classes() -> None:
    report = validate_frame(_xy([float(i % 150) for i in range(300)]), _task_config("multiclass"))
    detail = _only(report, "target", "y").detail
    assert "150 distinct values" in detail and "at most 100" in detail
    assert 'set [task].type = "regression"' in detail
    ok = validate_frame(_xy([float(i % 3) for i in range(300)]), _task_config("multiclass"))
    assert ok.passed and "3 classes" in _only(ok, "target", "y").detail


def test_regression_needs_a_numeric_target() -> None:
    cfg = _task_config("regression", y_type="category")
    report = validate_frame(_xy(["a", "b", "c"] * 10), cfg)
    detail = _only(report, "target", "y").detail
    assert "a regression task needs numbers" in detail and '"multiclass"' in detail


def test_configured_classes_name_the_values_outside_them() -> None:
    cfg = _task_config("multiclass", 'classes = ["a", "b", "c"]', y_type="category")
    report = validate_frame(_xy(["a", "b", "c", "zz"] * 10), cfg)
    assert "'zz'" in _only(report, "target", "y").detail


def test_bool_target_passes_binary() -> None:
    report = validate_frame(_xy([True, False] * 20), _task_config("binary", y_type="bool"))
    assert report.passed, report.failures


def test_no_schema_suggests_schema_infer(clean: pl.DataFrame) -> None:
    cfg = parse_config(
        '[project]\nname = "p"\n[data]\npath = "d.csv"\ntarget = "is_fraud"\nsplit = "random"\n'
    )
    detail = _only(validate_frame(clean, cfg), "config", None).detail
    assert "workbench schema infer d.csv --target is_fraud" in detail


def test_a_datetime_feature_is_refused_naming_the_fixes() -> None:
    from datetime import datetime, timedelta

    cfg = _task_config("binary", '[schema.signup]\ntype = "datetime"', y_type="int")
    frame = _xy([0, 1] * 20).with_columns(
        pl.Series("signup", [datetime(2024, 1, 1) + timedelta(days=i) for i in range(40)])
    )
    report = validate_frame(frame, cfg)
    detail = _only(report, "config", "signup").detail
    assert "datetime feature" in detail and "[data].timestamp = 'signup'" in detail
    assert "[data].drop" in detail


def test_text_in_a_declared_float_column_names_the_bad_values() -> None:
    frame = _xy([0, 1] * 20).with_columns(
        pl.Series("x", ["1.5", "abc", "2", "??x"] * 10), pl.col("y").cast(pl.Float64)
    )
    report = validate_frame(frame, _task_config("binary"))
    check = _only(report, "type", "x")
    assert check.status == "fail"
    assert check.detail == (
        "declared float but 20 of 40 values (50.00%) are not numbers: '??x', 'abc'"
    )


def test_missing_values_in_an_int_column_are_reported_as_missing(tmp_path: Path) -> None:
    from workbench.data.snapshot import load_frame

    cfg = parse_config(
        '[project]\nname = "p"\n[data]\npath = "x.csv"\ntarget = "is_fraud"\n'
        'split = "random"\n[schema.n]\ntype = "int"\n[schema.is_fraud]\ntype = "int"\n'
    )
    path = tmp_path / "x.csv"
    path.write_text(
        "n,is_fraud,ts,transaction_id\n"
        + "".join(
            f"{'NA' if i % 4 == 0 else i},{i % 2},2024-01-{i % 28 + 1:02d},t{i}\n"
            for i in range(200)
        )
    )
    frame = load_frame(path, cfg.schema_)
    assert frame.schema["n"] == pl.Int64
    check = _only(validate_frame(frame, cfg), "missing", "n")
    assert check.status == "fail" and "50 of 200 values (25.00%) are missing" in check.detail
