"""Drift checks of a project: the served version's reference profile against recent
predictions (a time window or the last N) or any data file, plus performance decay once
labels arrive (the task's metric, monitoring.performance); every check is appended to the
drift log (view `drift`).

What is compared follows the model's task (`workbench_task.json` beside it): prediction drift
is the probability's (binary) or the value's (regression) histogram, or the predicted class
frequencies (multiclass, named with the model's classes); performance is `config.metric` with
its direction.

The engine (workbench.drift.evaluate) does the statistics on binned counts; this module finds the
profile (saved beside the model at training: `drift_profile.json` in the model's folder),
gathers the current rows, and records the result.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.drift import PROFILE_FILE
from workbench.errors import DataError, UsageError
from workbench.project import Project
from workbench.store.parquet_log import ParquetLog, utcnow
from workbench.tasks import ModelTask

if TYPE_CHECKING:
    from workbench.drift.evaluate import DriftReport, FeatureDrift, FeatureRule
    from workbench.drift.profile import ReferenceProfile
    from workbench.store.db import Db

PREDICTION_FEATURE = "__prediction__"
METRIC_FEATURE = "__metric__"
Progress = Callable[[int, int], None]
# Rows per batch read from the prediction log (fewer on wide data: drift.sources).
LOG_BATCH_ROWS = 200_000


def parse_window(text: str) -> timedelta:
    """ "30m", "24h", "7d", "90s" -> timedelta; one-line error otherwise."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhd])", text.strip())
    if not match:
        raise UsageError(f"--window {text!r}: expected a number and a unit, e.g. 30m, 24h, 7d")
    value, unit = float(match[1]), match[2]
    return timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def load_profile(project: Project, version: int) -> ReferenceProfile:
    from workbench.drift.profile import ReferenceProfile
    from workbench.serving.predictors import model_dir_for
    from workbench.training.reference import complete

    model_dir = model_dir_for(project, version)
    complete(project, model_dir, version)  # a version registered by plain MLflow: made now
    path = model_dir / PROFILE_FILE
    if not path.exists():
        raise UsageError(
            f"version {version} has no reference profile ({path.name} beside the model): it "
            "was trained before drift profiles existed; retrain it (workbench pipeline run)"
        )
    return ReferenceProfile.load(path)


def load_task(project: Project, version: int) -> ModelTask:
    """What `version` predicts (`workbench_task.json` beside the model; none: binary)."""
    from workbench.serving.predictors import model_dir_for
    from workbench.training.reference import complete

    try:
        return complete(project, model_dir_for(project, version), version)
    except ValueError as exc:
        raise UsageError(f"version {version}: {exc}") from None


def name_classes(fd: FeatureDrift, task: ModelTask) -> None:
    """Prediction drift over class indices ("0", "1"...) named with the model's classes."""

    def name(key: str) -> str:
        return str(task.label_of(int(key))) if key.isdigit() else key

    fd.hist_labels = [name(k) for k in fd.hist_labels]
    fd.unseen = {name(k): v for k, v in fd.unseen.items()}


def rules(project: Project) -> dict[str, FeatureRule]:
    """Per-feature rules from `[drift.features.*]`, with the section's psi and p-value
    thresholds applied to the tests they name."""
    from workbench.drift.evaluate import DEFAULT_THRESHOLDS, FeatureRule

    cfg = project.config.drift
    out: dict[str, FeatureRule] = {}
    from workbench.data.snapshot import categorical_features

    cat = set(categorical_features(project.config))
    for name in project.config.features:
        rule = cfg.features.get(name)
        test = (rule.test if rule else None) or (
            cfg.categorical_test if name in cat else cfg.numeric_test
        )
        warn, alert = DEFAULT_THRESHOLDS[test]
        if test == "psi":
            warn, alert = cfg.psi_warn, cfg.psi_alert
        elif test in ("ks", "chi2"):
            warn = max(warn, cfg.p_value)
        if rule and rule.warn is not None:
            warn = rule.warn
        if rule and rule.alert is not None:
            alert = rule.alert
        out[name] = FeatureRule(test=test, warn=warn, alert=alert)
    return out


@dataclass
class CheckResult:
    check_id: str
    model: str
    version: int
    source: str  # "predictions" or a file
    window: str
    report: DriftReport
    metric: dict[str, Any] = field(default_factory=dict)  # performance decay, when labels exist
    task: ModelTask = field(default_factory=ModelTask)
    note: str | None = None  # e.g. which version was checked when none serves production

    @property
    def alerts(self) -> list[str]:
        return [f.feature for f in self.report.features if f.status == "alert"]

    def to_dict(self) -> dict[str, Any]:
        report = self.report.to_dict()
        pred = self.report.prediction
        if report["prediction"] is not None and pred is not None and pred.kind == "categorical":
            # class frequencies, by class name (the bins are the predicted classes)
            report["prediction"]["classes"] = [
                {"class": label, "reference": r, "current": c}
                for label, r, c in zip(pred.hist_labels, pred.ref_hist, pred.cur_hist, strict=False)
            ]
        return {
            "check_id": self.check_id,
            "model": self.model,
            "version": self.version,
            "source": self.source,
            "window": self.window,
            "task": self.task.type,
            "metric": self.metric,
            **({"note": self.note} if self.note else {}),
            **report,
        }


def prediction_batches(
    db: Db, model: str, version: int, profile: ReferenceProfile, since: Any, last_n: int | None
) -> Iterator[tuple[Any, Any]]:
    """The window's logged records (Arrow batches of the profile's features, typed by it)
    and outputs, streamed from DuckDB (`to_arrow_reader`): memory is one batch of JSON text
    and its decoded columns, whatever the window holds.

    Rows logged with their typed lists (drift/log_layout.py) are cut out of those; the others
    (older files, a writer that had no profile) are decoded from the JSON: DuckDB's
    `json_transform` to the profile's types, in its own threads, which at 1,000 features was
    5x faster than polars' `str.json_decode` and 2x faster than pyarrow's JSON reader, and
    still 10x slower than the lists (benchmarks/drift.py). A categorical feature logged as a
    number reads as its JSON text ("1", "1.0"), as polars casts training data to text."""
    import json

    from workbench.drift import sources
    from workbench.drift.log_layout import Layout

    spec = json.dumps(
        {
            n: "VARCHAR" if fp.kind == "categorical" else "DOUBLE"
            for n, fp in profile.features.items()
        }
    ).replace("'", "''")
    where = "model = ? AND version = ? AND status = 200 AND output IS NOT NULL"
    params: list[Any] = [model, version]
    if since is not None:
        where += " AND ts >= ?"
        params.append(since)
    src = f"(SELECT * FROM predictions WHERE {where}"
    if last_n:  # the order matters only to pick the last N
        src += f" ORDER BY ts DESC LIMIT {int(last_n)}"
    src += ")"
    rows = sources.batch_rows_for(len(profile.features), LOG_BATCH_ROWS)
    names = list(profile.features)
    layout = Layout.of(profile)
    from_json = f"SELECT json_transform(features, '{spec}') AS f, output FROM {src}"
    queries = [(from_json, _json_batch(names))]
    if has_columns(db, "predictions", ("numeric", "categorical", "laid_out")):
        # `laid_out` is true or null: both filters reach the Parquet scan, whose statistics
        # skip a row group none of whose rows qualify (the JSON is not even read)
        queries = [
            (f"SELECT numeric, categorical, output FROM {src} WHERE laid_out",
             _typed_batch(layout, names)),
            (f"{from_json} WHERE laid_out IS NULL", _json_batch(names)),
        ]  # fmt: skip
    for sql, decode in queries:
        yield from _stream(db, sql, params, rows, decode)


def has_columns(db: Db, view: str, columns: tuple[str, ...]) -> bool:
    """Whether `view` has these columns now (a log whose files all predate them has not)."""
    cur = db.retrying(lambda: db.cursor())
    try:
        have = {d[0] for d in cur.execute(f"SELECT * FROM {view} LIMIT 0").description or ()}
    finally:
        cur.close()
    return all(c in have for c in columns)


def _typed_batch(layout: Any, names: list[str]) -> Any:
    def decode(batch: Any) -> tuple[Any, Any]:
        return layout.decode(batch.column(0), batch.column(1), names), batch.column(2)

    return decode


def _json_batch(names: list[str]) -> Any:
    import pyarrow as pa

    def decode(batch: Any) -> tuple[Any, Any]:
        # A null record (no features) is null in every field: flatten() says so.
        columns = batch.column(0).flatten() if names else []
        return pa.RecordBatch.from_arrays(columns, names=names), batch.column(1)

    return decode


def _stream(
    db: Db, sql: str, params: list[Any], rows: int, decode: Any
) -> Iterator[tuple[Any, Any]]:
    import numpy as np

    from workbench.drift.sources import prefetched

    def start() -> tuple[Any, Any]:
        cur = db.cursor()
        return cur, cur.sql(sql, params=params).to_arrow_reader(rows)

    cur, reader = db.retrying(start)
    try:
        for batch in prefetched(reader):
            if batch.num_rows:
                frame, outputs = decode(batch)
                yield frame, np.asarray(outputs.to_numpy(zero_copy_only=False))
    finally:
        cur.close()


def _predictions(
    db: Db, model: str, version: int, profile: ReferenceProfile, since: Any, last_n: int | None
) -> tuple[Any, Any]:
    """The window's records (one polars frame) and outputs, all at once: memory grows with
    the rows. For callers that need the rows themselves; to count, stream
    `prediction_batches` into a `Counter` instead."""
    import numpy as np
    import polars as pl

    from workbench.drift import sources

    frames, outputs = [], []
    for batch, out in prediction_batches(db, model, version, profile, since, last_n):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(pl.col(pl.Categorical).cast(pl.Utf8))  # typed rows' codes
        frames.append(frame)
        outputs.append(out)
    if not frames:
        empty = sources.json_frame(
            pl.Series([], dtype=pl.Utf8).to_arrow(), sources.json_struct(profile)
        )
        return empty, np.zeros(0, dtype=np.float64)
    return pl.concat(frames, how="vertical", rechunk=False), np.concatenate(outputs)


def _check_file(
    project: Project,
    data: Path | str,
    profile: ReferenceProfile,
    feature_rules: dict[str, FeatureRule],
    on_progress: Progress | None,
) -> DriftReport:
    """The drift of a Parquet (streamed) or CSV file against `profile`."""
    from workbench.drift.evaluate import check_csv, check_parquet

    min_rows = project.config.drift.min_rows
    path = Path(data)
    if not path.is_absolute():
        path = project.root / path
    if not path.exists():
        raise UsageError(f"--data {data}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        columns = list(profile.features)
        return check_parquet(
            profile, path, rules=feature_rules, min_rows=min_rows, on_progress=on_progress,
            columns=columns,
        )  # fmt: skip
    try:  # streamed too: polars' batched CSV reader
        return check_csv(
            profile, path, rules=feature_rules, min_rows=min_rows, on_progress=on_progress
        )
    except DataError as exc:  # a CSV it cannot read is a usage error, as it always was
        text = str(exc)
        if not text.startswith(f"{path}: "):
            raise
        raise UsageError(f"--data {data}: {text[len(str(path)) + 2 :]}") from None


def check(
    project: Project,
    version: int | None = None,
    window: str | None = None,
    last_n: int | None = None,
    data: Path | str | None = None,
    db: Db | None = None,
    on_progress: Progress | None = None,
    record: bool = True,
) -> CheckResult:
    """Check drift for `version` (default: what production serves) against the predictions
    in the window (default `[drift].window`, or `[drift].last_n`), or against a data file."""
    from workbench.drift.counter import Counter
    from workbench.drift.evaluate import evaluate
    from workbench.serving import deployments
    from workbench.store.db import Db as DbClass

    cfg = project.config
    note = None
    if version is None:
        version = deployments.production_version(project)
        if version is None and data is not None:  # a file needs only a reference: the newest
            version = _newest(project)
            note = f"no production version: checked against the newest, v{version}"
        if version is None:
            raise UsageError(
                f"model {cfg.model_name!r} has no production version to check (its "
                "predictions are production's; use --version N, or --data FILE)"
            )
    profile = load_profile(project, version)
    task = load_task(project, version)
    feature_rules = rules(project)
    started = time.monotonic()
    metric: dict[str, Any] = {}
    if data is not None:
        report = _check_file(project, data, profile, feature_rules, on_progress)
        source, window_text = str(data), "whole file"
    else:
        last_n = last_n or (None if window else cfg.drift.last_n)
        window = window or cfg.drift.window
        since = None if last_n else utcnow() - parse_window(window)
        counter = Counter(profile)
        with DbClass.borrow(db, project.logs_root) as use:
            batches = prediction_batches(use, cfg.model_name, version, profile, since, last_n)
            for frame, outputs in batches:
                counter.update(frame, predictions=outputs)
            metric = _metric(use, project, task, version, since, last_n)
        if on_progress:
            on_progress(counter.rows, counter.rows)
        report = evaluate(profile, counter, feature_rules, min_rows=cfg.drift.min_rows)
        source, window_text = "predictions", f"last {last_n}" if last_n else window
    report.seconds = time.monotonic() - started
    if report.prediction is not None and report.prediction.kind == "categorical":
        name_classes(report.prediction, task)
    result = CheckResult(
        uuid.uuid4().hex[:12], cfg.model_name, version, source, window_text, report, metric, task,
        note,
    )  # fmt: skip
    if record:
        append(project, result)
    return result


def _newest(project: Project) -> int:
    """The newest registered version of the project's model; UsageError when there is none."""
    from workbench.registry import versions as registry

    found = [v.version for v in registry.list_versions(project)]
    if not found:
        raise UsageError(
            f"model {project.config.model_name!r} has no registered version to check against "
            "(train one: workbench pipeline run)"
        )
    return max(found)


def _metric(
    db: Db,
    project: Project,
    task: ModelTask,
    version: int,
    since: Any,
    last_n: int | None,
) -> dict[str, Any]:
    """The task's metric (`config.metric`) on the window's labelled predictions against the
    version's holdout value (monitoring.performance)."""
    import numpy as np
    import pyarrow as pa

    from workbench.monitoring import performance
    from workbench.registry import versions as registry

    sql = (
        "SELECT p.ts AS ts, p.output AS output, l.label AS label FROM predictions p "
        "JOIN labels l USING (request_id) WHERE p.model = ? AND p.version = ? "
        "AND p.status = 200 AND p.output IS NOT NULL AND l.label IS NOT NULL"
    )
    params: list[Any] = [project.config.model_name, version]
    if since is not None:
        sql += " AND p.ts >= ?"
        params.append(since)
    if last_n:
        sql += f" ORDER BY p.ts DESC LIMIT {int(last_n)}"
    rows = db.arrow(sql, params)
    found = next((v for v in registry.list_versions(project) if v.version == version), None)
    reference = dict(found.metrics) if found is not None else {}

    def column(name: str) -> Any:
        return np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    ts = rows.column("ts").cast(pa.timestamp("us")).cast(pa.int64())
    return performance.assess(
        task,
        project.config.metric,
        reference,
        column("label"),
        column("output"),
        np.asarray(ts.to_numpy(zero_copy_only=False), dtype=np.int64),
        project.config.monitor,
    )


def _metric_row(result: CheckResult) -> dict[str, Any]:
    """The drift log's row of the metric: test `<metric>_drop` (a metric maximised) or
    `<metric>_rise` (minimised), score = how much worse than the holdout (its units)."""
    metric = result.metric
    drop = metric.get("drop")
    limit = float(metric.get("limit") or 0.0)
    way = "drop" if metric.get("higher_is_better", True) else "rise"
    return {
        "feature": METRIC_FEATURE,
        "kind": "metric",
        "test": f"{metric.get('name', 'metric')}_{way}",
        "score": drop,
        "warn": limit / 2,
        "alert": limit,
        "status": "alert" if metric.get("decayed") else "ok" if drop is not None else "no_data",
        "n_cur": metric.get("labeled"),
    }


def append(project: Project, result: CheckResult) -> None:
    """One drift-log row per feature, one for prediction drift, one for the metric."""
    now = utcnow()
    base = {
        "ts": now,
        "check_id": result.check_id,
        "model": result.model,
        "version": result.version,
        "source": result.source,
        "window": result.window,
    }
    rows = []
    drifts = list(result.report.features)
    if result.report.prediction is not None:
        drifts.append(result.report.prediction)
    for fd in drifts:
        stats = fd.stats
        kind = "prediction" if fd is result.report.prediction else fd.kind
        rows.append(
            {
                **base,
                "feature": PREDICTION_FEATURE if kind == "prediction" else fd.feature,
                "kind": kind,
                "test": fd.test,
                "score": fd.score,
                "warn": fd.warn,
                "alert": fd.alert,
                "status": fd.status,
                **{
                    k: stats.get(k)
                    for k in ("psi", "kl", "js", "wasserstein", "ks", "ks_p", "chi2", "chi2_p")
                },
                "n_ref": fd.n_ref,
                "n_cur": fd.n_cur,
                "missing": fd.missing,
                "nonfinite": fd.nonfinite,
            }
        )
    if "current" in result.metric:
        rows.append({**base, **_metric_row(result)})
    if rows:
        ParquetLog(project.logs_root, "drift").append(rows)
