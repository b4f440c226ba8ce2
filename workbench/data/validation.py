"""Data validation: check a snapshot against the config's [schema] and [validation] sections.

Structural checks (columns present, dtypes, the [data] roles naming real columns) read only
the frame's schema; every statistic (missing and infinite counts, range violations, unseen
categories, outliers, target classes) is computed in a single polars `select`, so a million
rows validate in a fraction of a second. Settings only a plugin can judge (is the trainer
installed, are its params valid) are checked first and raise one ConfigError line.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.table import Table
from rich.text import Text

from workbench import plugins
from workbench.config import CONFIG_FILE, ColumnSpec, Config
from workbench.data.checks import (
    MAX_EXAMPLES,
    SEVERITY,
    STYLES,
    Check,
    Plan,
    ValidationReport,
    finite,
    num,
    of,
    pct,
)
from workbench.data.csv_read import KIND_WORDS, unparsed
from workbench.data.dtypes import EXPECTED, dtype_name, is_text, type_ok
from workbench.data.target_checks import datetime_feature_checks, target_check
from workbench.errors import ConfigError, UsageError

__all__ = ["Check", "ValidationReport", "check_config", "render_report", "validate_frame"]


def _missing_check(plan: Plan, name: str, dtype: pl.DataType, rows: int, limit: float) -> None:
    col = pl.col(name)
    nulls = plan.add(col.null_count())
    nans = plan.add(col.is_nan().sum()) if dtype.is_float() else None

    def finish(stats: dict[str, Any]) -> list[Check]:
        count = int(stats[nulls] or 0) + (int(stats[nans] or 0) if nans else 0)
        fraction = count / rows if rows else 0.0
        if fraction > limit:
            detail = f"{of(count, rows)} are missing; at most {pct(limit)} allowed"
            return [Check("missing", name, "fail", detail, fraction)]
        if count == 0:
            return [Check("missing", name, "pass", "no missing values", 0.0)]
        detail = f"{of(count, rows)} are missing, within {pct(limit)}"
        return [Check("missing", name, "pass", detail, fraction)]

    plan.finishers.append(finish)


def _nonfinite_check(plan: Plan, name: str, rows: int, limit: float) -> None:
    """+inf/-inf in a float column, judged like missing values: a share per column."""
    col = pl.col(name)
    pos = plan.add((col == float("inf")).sum())
    neg = plan.add((col == float("-inf")).sum())

    def finish(stats: dict[str, Any]) -> list[Check]:
        n_pos, n_neg = int(stats[pos] or 0), int(stats[neg] or 0)
        count = n_pos + n_neg
        fraction = count / rows if rows else 0.0
        if count == 0:
            return [Check("nonfinite", name, "pass", "no infinite values", 0.0)]
        signs = ", ".join(f"{n:,} {s}" for n, s in ((n_pos, "+inf"), (n_neg, "-inf")) if n)
        if fraction > limit:
            detail = f"{of(count, rows)} are infinite ({signs}); at most {pct(limit)} allowed"
            return [Check("nonfinite", name, "fail", detail, fraction)]
        detail = f"{of(count, rows)} are infinite ({signs}), within {pct(limit)}"
        return [Check("nonfinite", name, "pass", detail, fraction)]

    plan.finishers.append(finish)


def _range_check(plan: Plan, name: str, values: pl.Expr, spec: ColumnSpec, rows: int) -> None:
    below = plan.add((values < spec.min).sum()) if spec.min is not None else None
    above = plan.add((values > spec.max).sum()) if spec.max is not None else None

    def finish(stats: dict[str, Any]) -> list[Check]:
        n_below = int(stats[below] or 0) if below else 0
        n_above = int(stats[above] or 0) if above else 0
        lo, hi = spec.min, spec.max
        problems = []
        if n_below and lo is not None:
            problems.append(f"{of(n_below, rows)} are below min {num(lo)}")
        if n_above and hi is not None:
            problems.append(f"{of(n_above, rows)} are above max {num(hi)}")
        if problems:
            return [Check("range", name, "fail", "; ".join(problems), float(n_below + n_above))]
        if lo is not None and hi is not None:
            detail = f"all values within [{num(lo)}, {num(hi)}]"
        elif lo is not None:
            detail = f"all values ≥ {num(lo)}"
        else:
            detail = f"all values ≤ {num(hi or 0)}"
        return [Check("range", name, "pass", detail, 0.0)]

    plan.finishers.append(finish)


def _allowed_check(plan: Plan, name: str, allowed: list[str], rows: int) -> None:
    text = pl.col(name).cast(pl.String)
    unseen = text.is_not_null() & ~text.is_in(allowed)
    count = plan.add(unseen.sum())
    distinct = plan.add(text.filter(unseen).n_unique())
    examples = plan.add(text.filter(unseen).unique().sort().head(MAX_EXAMPLES).implode())

    def finish(stats: dict[str, Any]) -> list[Check]:
        n = int(stats[count] or 0)
        if not n:
            detail = f"all values in the {len(allowed)} allowed"
            return [Check("allowed", name, "pass", detail, 0.0)]
        shown = ", ".join(repr(v) for v in (stats[examples] or []))
        more = int(stats[distinct] or 0) - MAX_EXAMPLES
        if more > 0:
            shown += f" and {more:,} more"
        detail = f"{of(n, rows)} are not in the allowed list: {shown}"
        return [Check("allowed", name, "fail", detail, float(n))]

    plan.finishers.append(finish)


def _outlier_check(plan: Plan, name: str, values: pl.Expr, config: Config) -> None:
    v = config.validation
    k = v.outlier_threshold
    present = plan.add(values.count())
    if v.outlier_method == "iqr":
        q1, q3 = values.quantile(0.25, "linear"), values.quantile(0.75, "linear")
        iqr = q3 - q1
        lo_e, hi_e = q1 - k * iqr, q3 + k * iqr
        method = f"{num(k)} × IQR"
    else:
        mean, std = values.mean(), values.std()
        lo_e, hi_e = mean - k * std, mean + k * std
        method = f"|z| > {num(k)}"
    lo, hi = plan.add(lo_e), plan.add(hi_e)
    outside = plan.add(((values < lo_e) | (values > hi_e)).sum())

    def finish(stats: dict[str, Any]) -> list[Check]:
        n = int(stats[present] or 0)
        low, high = finite(stats[lo]), finite(stats[hi])
        if n == 0 or low is None or high is None:
            return [Check("outliers", name, "pass", "no values to check", 0.0)]
        if low == high:
            detail = "values are (nearly) constant; outlier check skipped"
            return [Check("outliers", name, "pass", detail, 0.0)]
        count = int(stats[outside] or 0)
        fraction = count / n
        detail = f"{of(count, n)} lie outside [{num(low)}, {num(high)}] ({method})"
        if fraction > v.max_outlier_fraction:
            detail += f"; more than {pct(v.max_outlier_fraction)} expected"
            return [Check("outliers", name, "warn", detail, fraction)]
        return [Check("outliers", name, "pass", detail, fraction)]

    plan.finishers.append(finish)


def _bool_values_check(plan: Plan, name: str, rows: int) -> None:
    col = pl.col(name)
    bad = plan.add((col.is_not_null() & (col != 0) & (col != 1)).sum())

    def finish(stats: dict[str, Any]) -> list[Check]:
        n = int(stats[bad] or 0)
        if n:
            detail = f"declared bool but {of(n, rows)} are not 0 or 1"
            return [Check("type", name, "fail", detail, float(n))]
        return [Check("type", name, "pass", "0/1 integers match bool")]

    plan.finishers.append(finish)


def config_problems(config: Config, overrides: dict[str, Any] | None = None) -> list[str]:
    """What is wrong with settings only an installed plugin can judge: "[key]: problem" each.
    Entry-point lookup is cheap but not free (~8 ms), so it runs here (validate, the pipeline's
    first step), not when every command loads the config. `overrides`: a run's own params."""
    try:
        trainer = plugins.load("trainer", config.trainer.plugin)
    except UsageError as exc:
        return [f"[trainer].plugin: {exc}"]
    params = {**config.trainer.params, **(overrides or {})}
    found = [f"[trainer.params].{p}" for p in plugins.param_problems(trainer, params)]
    return found + plugins.setting_problems(trainer, config)


def check_config(
    config: Config, source: str = CONFIG_FILE, overrides: dict[str, Any] | None = None
) -> None:
    """ConfigError (exit 2) with the first of `config_problems`, in one line, if any;
    `source` names where the settings came from (the file, or `--param` for overrides)."""
    problems = config_problems(config, overrides)
    if problems:
        more = len(problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {problems[0]}{suffix}")


def _columns_shown(schema: pl.Schema) -> str:
    names = list(schema)
    shown = ", ".join(names[:12])
    return shown + (f" and {len(names) - 12} more" if len(names) > 12 else "")


def _role_checks(config: Config, schema: pl.Schema) -> list[Check]:
    """[data] timestamp, id_column and drop must name columns of the data; a model needs at
    least one feature."""
    d = config.data
    checks = []
    roles = [("timestamp", d.timestamp), ("id_column", d.id_column)]
    roles += [(f"drop[{i}]", name) for i, name in enumerate(d.drop)]
    for key, column in roles:
        if column is not None and column not in schema:
            detail = f"[data].{key}: {column!r} is not a column of the data (columns: "
            checks.append(Check("config", column, "fail", detail + _columns_shown(schema) + ")"))
    if not config.schema_:
        detail = (
            f"no features: there is no [schema] in the config; `workbench schema infer "
            f"{d.path} --target {d.target}` prints one from the data (paste it in)"
        )
        checks.append(Check("config", None, "fail", detail))
    elif not config.features:
        detail = (
            "no features: [schema] declares no column besides the target, timestamp, id and "
            "dropped ones (declare the model's inputs as [schema.<column>] tables)"
        )
        checks.append(Check("config", None, "fail", detail))
    return checks + datetime_feature_checks(config)


def _structure_checks(config: Config, schema: pl.Schema) -> list[Check]:
    """Which declared columns exist, which are extra."""
    v = config.validation
    declared = config.schema_
    missing = [name for name in declared if name not in schema]
    extra = [name for name in schema if name not in declared] if declared else []
    checks = [
        Check("schema", name, "fail", "column is in [schema] but not in the data")
        for name in missing
    ]
    if declared and not missing:
        detail = f"all {len(declared)} schema columns are present"
        if extra and v.allow_extra_columns:
            detail += f" ({len(extra)} extra column{'s' if len(extra) != 1 else ''} allowed)"
        checks.append(Check("schema", None, "pass", detail))
    if not v.allow_extra_columns:
        for name in extra:
            detail = "column is in the data but not in [schema]"
            checks.append(Check("schema", name, "warn", detail))
    return checks


def _limit(spec: ColumnSpec, config: Config) -> float:
    return spec.max_missing if spec.max_missing is not None else config.validation.max_missing


def _unparsed_check(plan: Plan, name: str, kind: str, rows: int) -> None:
    """A text column declared int, float, bool or datetime: the values that are not."""
    bad = unparsed(name, kind)
    text = pl.col(name).cast(pl.String)
    count = plan.add(bad.sum())
    distinct = plan.add(text.filter(bad).n_unique())
    examples = plan.add(text.filter(bad).unique().sort().head(MAX_EXAMPLES).implode())

    def finish(stats: dict[str, Any]) -> list[Check]:
        n = int(stats[count] or 0)
        shown = ", ".join(repr(v) for v in (stats[examples] or []))
        more = int(stats[distinct] or 0) - MAX_EXAMPLES
        if more > 0:
            shown += f" and {more:,} more"
        detail = f"declared {kind} but {of(n, rows)} are not {KIND_WORDS[kind]}: {shown}"
        if not n:  # every value parses, but the column came as text (e.g. Parquet strings)
            detail = f"declared {kind} but stored as text (every value reads as {kind})"
        return [Check("type", name, "fail", detail, float(n))]

    plan.finishers.append(finish)


def _column_checks(
    plan: Plan, name: str, spec: ColumnSpec, dtype: pl.DataType, rows: int, config: Config
) -> list[Check]:
    """The type check now; missing, non-finite, range, allowed and outlier checks as
    expressions added to `plan` (their checks come from its finishers)."""
    v = config.validation
    shown = dtype_name(dtype)
    if not type_ok(spec.type, dtype):
        if is_text(dtype) and spec.type in KIND_WORDS:  # text that did not parse: which values
            _unparsed_check(plan, name, spec.type, rows)
            _missing_check(plan, name, dtype, rows, _limit(spec, config))
            return []
        detail = f"dtype {shown} is not {EXPECTED[spec.type]} (declared {spec.type})"
        return [Check("type", name, "fail", detail)]
    checks = []
    if spec.type == "bool" and dtype.is_integer():
        _bool_values_check(plan, name, rows)
    else:
        checks.append(Check("type", name, "pass", f"dtype {shown} matches {spec.type}"))
    _missing_check(plan, name, dtype, rows, _limit(spec, config))
    if dtype == pl.Null:
        return checks
    if dtype.is_float():
        nonfinite = spec.max_nonfinite if spec.max_nonfinite is not None else v.max_nonfinite
        _nonfinite_check(plan, name, rows, nonfinite)
    numeric = spec.type in ("int", "float") and dtype.is_numeric()
    # Range and outlier statistics see finite values only: NaN is counted as missing and
    # ±inf by the nonfinite check, and neither may poison a quantile, mean or bound.
    col = pl.col(name)
    values = pl.when(col.is_finite()).then(col) if dtype.is_float() else col
    if numeric and (spec.min is not None or spec.max is not None):
        _range_check(plan, name, values, spec, rows)
    if spec.allowed is not None:
        _allowed_check(plan, name, spec.allowed, rows)
    if numeric and spec.outliers:
        _outlier_check(plan, name, values, config)
    return checks


def validate_frame(df: pl.DataFrame, config: Config) -> ValidationReport:
    """Check `df` against the config's schema and validation rules. Raises ConfigError first
    when the trainer plugin is unknown or its params are invalid."""
    check_config(config)
    v = config.validation
    rows = df.height
    schema = df.schema
    plan = Plan()
    checks = _structure_checks(config, schema)
    checks.extend(_role_checks(config, schema))
    if rows < v.min_rows:
        detail = f"{rows:,} rows; at least {v.min_rows:,} needed"
        checks.append(Check("rows", None, "fail", detail, float(rows)))
    else:
        checks.append(Check("rows", None, "pass", f"{rows:,} rows", float(rows)))
    # Per column: type from the schema; the rest as expressions for the single select.
    for name, spec in config.schema_.items():
        if name in schema:
            checks.extend(_column_checks(plan, name, spec, schema[name], rows, config))

    # Target.
    target = config.data.target
    if target in schema:
        target_check(plan, config, schema[target])
    else:
        detail = f"[data].target: {target!r} is not a column of the data (columns: "
        checks.append(Check("target", target, "fail", detail + _columns_shown(schema) + ")"))

    stats = df.select(plan.exprs).row(0, named=True) if plan.exprs else {}
    for finish in plan.finishers:
        checks.extend(finish(stats))

    return ValidationReport(
        rows=rows,
        columns=df.width,
        checks=tuple(checks),
        fail_on_warning=v.fail_on_warning,
    )


def render_report(report: ValidationReport, *, show_passed: bool = True) -> Table:
    """A rich table of the checks, failures first, status coloured."""
    n_fail, n_warn = len(report.failures), len(report.warnings)
    verdict = "PASSED" if report.passed else "FAILED"
    table = Table(
        title=f"Validation: {report.rows:,} rows × {report.columns:,} columns",
        caption=Text(
            f"{verdict}: {n_fail} failure{'s' if n_fail != 1 else ''}, "
            f"{n_warn} warning{'s' if n_warn != 1 else ''}",
            style="bold green" if report.passed else "bold red",
        ),
        expand=False,
    )
    table.add_column("Status", no_wrap=True)
    table.add_column("Column", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Detail")
    ordered = sorted(report.checks, key=lambda c: SEVERITY[c.status])
    for check in ordered:
        if check.status == "pass" and not show_passed:
            continue
        table.add_row(
            Text(check.status.upper(), style=STYLES[check.status]),
            Text(check.column or "—"),  # Text: a "[data].timestamp" is not rich markup
            check.check,
            Text(check.detail),
        )
    return table
