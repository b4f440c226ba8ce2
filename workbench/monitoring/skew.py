"""Training-serving skew: what the server received against what training saw.

- Distribution skew (`distribution`): the features logged in a window of the prediction log,
  binned on the served version's reference profile (`drift_profile.json`, the training rows),
  compared per feature as TFDV does: the L-infinity distance of the category frequencies for
  a categorical feature (the largest difference of one category's share), the Jensen-Shannon
  divergence (base 2, in [0, 1]) of the decile bins for a numeric one. It alerts past
  `[monitoring] skew_linf` (0.1) / `skew_js` (0.05). TFDV's examples use 0.01, which a window
  of a few hundred rows crosses on sampling noise alone (a category's share moves by ~0.03 at
  400 rows; JS of 10 bins averages ~0.004 at 400 rows, ~0.016 at `[drift] min_rows` 100);
  half the rows of a feature in another unit give ~0.18, all of them ~0.76.
- Feature skew (`feature_skew`): the features logged at serving joined, on an entity key the
  request carried (its `passthrough` JSON: `[data] id_column` or `[serving] passthrough`), with
  the offline features of the same entity (a data file, e.g. the next training's), and when
  both sides have `[data] timestamp`, with the newest offline row at or before the serving
  time (DuckDB's ASOF JOIN). Per feature: the share of joined rows whose values differ
  (numeric: relative difference over `tolerance`; otherwise: not equal; a null on one side
  only differs) and up to 3 examples. One DuckDB statement joins and counts; no Python loop
  runs over rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.drift.log_layout import CATEGORICAL, LAID_OUT, NUMERIC, Layout
from workbench.errors import DataError, UsageError
from workbench.project import Project
from workbench.store.parquet_log import utcnow

if TYPE_CHECKING:
    import polars as pl

    from workbench.drift.counter import Counter
    from workbench.drift.profile import ReferenceProfile
    from workbench.store.db import Db

EXAMPLES = 3
GROUP = 64  # features per skew statement
OFFLINE = "_skew_offline"


@dataclass
class FeatureSkew:
    feature: str
    kind: str  # numeric | categorical
    joined: int
    mismatches: int
    share: float
    alert: bool
    examples: list[dict[str, Any]] = field(default_factory=list)


def _window(project: Project, window: str | None) -> tuple[str, Any]:
    from workbench.monitoring.checks import parse_window

    text = window or project.config.monitoring.window
    return text, utcnow() - parse_window(text)


def _version(project: Project, version: int | None) -> int:
    from workbench.serving import deployments

    if version is None:
        version = deployments.production_version(project)
        if version is None:
            name = project.config.model_name
            raise UsageError(f"model {name!r} has no production version to compare with")
    return version


# -- distribution skew -----------------------------------------------------------------------


def distribution(
    project: Project, version: int | None = None, window: str | None = None, db: Db | None = None
) -> dict[str, Any]:
    """The served features of `window` (default `[monitoring] window`) against the training
    profile of `version` (default: production's): per feature its measure, value, alert."""
    from workbench.drift.counter import Counter
    from workbench.monitoring.checks import load_profile, prediction_batches
    from workbench.store.db import Db as DbClass

    cfg = project.config
    version = _version(project, version)
    text, since = _window(project, window)
    profile = load_profile(project, version)
    counter = Counter(profile)
    with DbClass.borrow(db, project.logs_root) as use:  # streamed: memory is one batch
        for batch, _ in prediction_batches(use, cfg.model_name, version, profile, since, None):
            counter.update(batch)
    enough = counter.rows >= cfg.drift.min_rows
    rows = measures(profile, counter, enough, cfg.monitoring.skew_js, cfg.monitoring.skew_linf)
    return {"version": version, "window": text, "rows": counter.rows, "features": rows}


def measures(
    profile: ReferenceProfile, counter: Counter, enough: bool, skew_js: float, skew_linf: float
) -> list[dict[str, Any]]:
    """Per feature of `counter` (the served rows, counted on `profile`'s bins): its measure
    (js | linf), value (None without `enough` rows), threshold and alert."""
    import numpy as np

    from workbench.drift.counter import NumericCounts
    from workbench.drift.profile import OTHER
    from workbench.drift.stats import js_distance

    rows: list[dict[str, Any]] = []
    for name, state in counter.states.items():
        fp = profile.features[name]
        if isinstance(state, NumericCounts):
            measure, threshold = "js", skew_js
            value = js_distance(fp.decile_counts, state.decile_counts) ** 2 if enough else None
        else:
            measure, threshold = "linf", skew_linf
            ref_of = dict(zip(fp.categories, fp.category_counts, strict=False))
            ref = np.array([ref_of.get(c, 0) for c in state.listed] + [ref_of.get(OTHER, 0)])
            cur = state.counts
            value = None
            if enough and ref.sum() > 0 and cur.sum() > 0:
                value = float(np.abs(ref / ref.sum() - cur / cur.sum()).max())
        if value is not None and value != value:  # NaN: nothing valid on one side
            value = None
        rows.append(
            {
                "feature": name,
                "kind": fp.kind,
                "measure": measure,
                "value": value,
                "threshold": threshold,
                "alert": value is not None and value > threshold,
                "n_ref": fp.valid,
                "n_cur": state.valid,
            }
        )
    return rows


# -- feature skew ----------------------------------------------------------------------------


def _offline(project: Project, data: Path | str, key: str) -> pl.DataFrame:
    """The offline file, read as training reads it (the project's `[schema]` types)."""
    from workbench.data.snapshot import load_frame

    path = Path(data)
    if not path.is_absolute():
        path = project.root / path
    if not path.exists():
        raise UsageError(f"--data {data}: no such file")
    frame = load_frame(path, project.config.schema_)
    if key not in frame.columns:
        raise UsageError(f"--key {key}: no such column in {data}")
    return frame


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _path(name: str) -> str:
    """The JSON path of a top-level key, as a SQL literal."""
    return _literal("$." + '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _plan(
    frame: pl.DataFrame, features: list[str], layout: Layout | None
) -> list[tuple[str, str, str, str]]:
    """Per feature compared: (name, kind, served SQL, offline SQL). A served value comes from
    the row's typed lists (`_n`, `_c`: null unless the row holds `layout`) when the feature is
    laid out with the same kind, else from its JSON (`_v`, parsed once for every feature)."""
    import polars as pl

    plan = []
    for i, name in enumerate(features):
        dtype = frame.schema[name]
        text = f"s._v[{i + 1}]"
        at = layout.where(name) if layout is not None else None
        if dtype.is_numeric() and dtype != pl.Boolean:
            served = f"TRY_CAST({text} AS DOUBLE)"
            if at is not None and at[0] == NUMERIC:
                served = f"COALESCE(s._n[{at[1]}], {served})"
            offline = f"CAST(o.{_ident(name)} AS DOUBLE)"
            offline = f"CASE WHEN isnan({offline}) THEN NULL ELSE {offline} END"
            plan.append((name, "numeric", served, offline))
        else:
            served = text
            if at is not None and at[0] == CATEGORICAL:
                served = f"COALESCE(s._c[{at[1]}], {served})"
            if dtype == pl.Boolean:
                offline = f"lower(CAST(o.{_ident(name)} AS VARCHAR))"
            else:
                offline = f"CAST(o.{_ident(name)} AS VARCHAR)"
            plan.append((name, "categorical", served, offline))
    return plan


def _time_column(project: Project, frame: pl.DataFrame) -> pl.DataFrame | None:
    """The offline frame with its `[data] timestamp` as naive UTC, or None (no ASOF join)."""
    import polars as pl

    ts = project.config.data.timestamp
    if not ts or ts not in frame.columns:
        return None
    dtype = frame.schema[ts]
    if dtype == pl.Date:
        return frame.with_columns(pl.col(ts).cast(pl.Datetime("us")))
    if not isinstance(dtype, pl.Datetime):
        return None
    if dtype.time_zone is not None:
        col = pl.col(ts).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return frame.with_columns(col)
    return frame


def _served_time(ts: str | None) -> str:
    """The serving time of a logged row: the timestamp its passthrough carried (an offset
    honoured; naive is UTC), else when it was logged; naive UTC either way."""
    logged = "timezone('UTC', ts)"
    if not ts:
        return logged
    text = f"json_extract_string(passthrough, {_path(ts)})"
    carried = (
        f"CASE WHEN regexp_matches({text}, '([+-][0-9][0-9]:?[0-9][0-9]|Z)$') "
        f"THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE TRY_CAST({text} AS TIMESTAMP) END"
    )
    return f"COALESCE({carried}, {logged})"


def _statement(
    key: str,
    plan: list[tuple[str, str, str, str]],
    asof: str | None,
    tolerance: float,
    typed: str | None = None,
) -> str:
    """One statement: the window's served rows carrying `key`, joined with the offline rows
    (ASOF on `asof`, the timestamp column, when given), and per feature the mismatches.
    `typed`: SQL true for a row whose typed lists to use (its JSON is then not parsed)."""
    kpath = _path(key)
    values = f"json_extract_string(features, [{', '.join(_path(name) for name, *_ in plan)}])"
    if typed:
        values = (
            f"CASE WHEN NOT {typed} THEN {values} END AS _v, "
            f"CASE WHEN {typed} THEN numeric END AS _n, "
            f"CASE WHEN {typed} THEN categorical END AS _c"
        )
    else:
        values += " AS _v"
    okey = f"CAST(o0.{_ident(key)} AS VARCHAR)"
    where = f"FROM {OFFLINE} o0 WHERE o0.{_ident(key)} IS NOT NULL"
    if asof:
        offline = f"SELECT {okey} AS _key, o0.{_ident(asof)} AS _t, o0.* {where}"
        join = "s ASOF JOIN o ON s._key = o._key AND s._t >= o._t"
    else:  # one offline row per key (any one, when the file repeats a key)
        offline = (
            f"SELECT {okey} AS _key, o0.* {where} "
            f"QUALIFY row_number() OVER (PARTITION BY {okey}) = 1"
        )
        join = "s JOIN o ON s._key = o._key"
    pairs = ", ".join(f"{sv} AS s{i}, {ov} AS o{i}" for i, (_, _, sv, ov) in enumerate(plan))
    checks = []
    for i, (_, kind, _, _) in enumerate(plan):
        differ = (
            f"abs(s{i} - o{i}) > {float(tolerance)!r} * greatest(abs(s{i}), abs(o{i}))"
            if kind == "numeric"
            else f"s{i} <> o{i}"
        )
        checks.append(
            f"CASE WHEN s{i} IS NULL AND o{i} IS NULL THEN false "
            f"WHEN s{i} IS NULL OR o{i} IS NULL THEN true ELSE {differ} END AS m{i}"
        )
    counts = ", ".join(
        f"count_if(m{i}) AS n{i}, min_by({{'key': _key, 'served': CAST(s{i} AS VARCHAR), "
        f"'offline': CAST(o{i} AS VARCHAR)}}, _key, {EXAMPLES}) FILTER (WHERE m{i}) AS e{i}"
        for i in range(len(plan))
    )
    return (
        f"WITH s AS (SELECT json_extract_string(passthrough, {kpath}) AS _key, "
        f"{values}, {_served_time(asof)} AS _t FROM predictions "
        f"WHERE model = ? AND status = 200 AND ts >= ? AND passthrough IS NOT NULL "
        f"AND json_extract_string(passthrough, {kpath}) IS NOT NULL), "
        f"o AS ({offline}), "
        f"j AS (SELECT s._key AS _key, {pairs} FROM {join}), "
        f"m AS (SELECT _key, {', '.join(f's{i}, o{i}' for i in range(len(plan)))}, "
        f"{', '.join(checks)} FROM j) "
        f"SELECT (SELECT count(*) FROM s) AS served, count(*) AS joined, {counts} FROM m"
    )


def join(
    db: Db,
    frame: pl.DataFrame,
    key: str,
    features: list[str],
    model: str,
    since: Any,
    asof: str | None,
    tolerance: float,
    layout: Layout | None = None,
    typed: str | None = None,
) -> tuple[list[tuple[str, str, str, str]], tuple[Any, ...]]:
    """The plan and the one row of the skew statement: the served rows of `model` since
    `since` joined on `key` with the offline `frame` (`asof`: its time column): served,
    joined, then per feature its mismatches and examples. Run `GROUP` features at a time:
    one statement over 1,000 features held 3,000 columns of every joined row at once."""
    plan = _plan(frame, features, layout)
    merged: list[Any] = []
    cur = db.cursor()
    try:
        for start in range(0, len(plan), GROUP):
            part = plan[start : start + GROUP]
            names = [name for name, *_ in part]
            keep = list(dict.fromkeys([key, *([asof] if asof else []), *names]))
            sql = _statement(key, part, asof, tolerance, typed)
            cur.register(OFFLINE, frame.select(keep).to_arrow())
            (row,) = cur.execute(sql, [model, since]).fetchall()  # an aggregate: one row
            cur.unregister(OFFLINE)
            merged = list(row) if not merged else merged + list(row[2:])
    finally:
        cur.close()
    return plan, tuple(merged)


def _typed(project: Project, version: int | None, db: Db) -> tuple[Layout | None, str | None]:
    """The layout of the served version's typed lists and the SQL that picks its rows; (None,
    None) when the log has no such columns or the version has no profile (JSON only)."""
    from workbench.errors import WorkbenchError
    from workbench.monitoring.checks import has_columns, load_profile

    if not has_columns(db, "predictions", (NUMERIC, CATEGORICAL, LAID_OUT)):
        return None, None
    try:
        version = _version(project, version)
        layout = Layout.of(load_profile(project, version))
    except WorkbenchError:
        return None, None
    return layout, f"coalesce(version = {int(version)} AND {layout.typed()}, false)"


def feature_skew(
    project: Project,
    data: Path | str,
    key: str,
    window: str | None = None,
    tolerance: float = 1e-6,
    max_mismatch: float = 0.01,
    version: int | None = None,
    db: Db | None = None,
) -> dict[str, Any]:
    """The report of `workbench skew`: feature skew on `key` against the file `data`, and
    the distribution skew of the same window. Raises UsageError when `key` is not in the file
    or no served row carried it, DataError when no served row joined an offline row."""
    from workbench.errors import WorkbenchError
    from workbench.store.db import Db as DbClass

    cfg = project.config
    text, since = _window(project, window)
    frame = _offline(project, data, key)
    features = [f for f in cfg.features if f in frame.columns and f != key]
    missing = [f for f in cfg.features if f not in frame.columns]
    if not features:
        raise UsageError(f"--data {data}: holds none of the model's features")
    timed = _time_column(project, frame)
    asof = cfg.data.timestamp if timed is not None else None
    frame = timed if timed is not None else frame
    with DbClass.borrow(db, project.logs_root) as use:
        layout, typed = _typed(project, version, use)
        plan, row = join(use, frame, key, features, cfg.model_name, since, asof, tolerance,
                         layout, typed)  # fmt: skip
        try:
            dist: dict[str, Any] | None = distribution(project, version, text, use)
        except WorkbenchError as exc:  # no production version, no profile: said, not fatal
            dist = {"error": str(exc), "features": []}
    served, joined = int(row[0]), int(row[1])
    if not served:
        raise UsageError(
            f"--key {key}: no prediction of the last {text} carried it (send it with the "
            "request: [data] id_column or [serving] passthrough)"
        )
    if not joined:
        raise DataError(
            f"--key {key}: no served row joined an offline row ({served:,} served rows in the "
            f"last {text}, {frame.height:,} rows in {data})"
        )
    skews = []
    for i, (name, kind, _, _) in enumerate(plan):
        n = int(row[2 + 2 * i] or 0)
        examples = [dict(e) for e in (row[3 + 2 * i] or [])]
        share = n / joined
        skews.append(FeatureSkew(name, kind, joined, n, share, share > max_mismatch, examples))
    alerts = [
        f"{f.feature}: {f.share:.1%} of {f.joined:,} joined rows differ (> {max_mismatch:.1%})"
        for f in skews
        if f.alert
    ]
    for d in dist["features"] if dist else []:
        if d["alert"]:
            alerts.append(
                f"{d['feature']}: distribution skew {d['measure']} {d['value']:.3f} "
                f"> {d['threshold']:g}"
            )
    return {
        "model": cfg.model_name,
        "data": str(data),
        "key": key,
        "window": text,
        "asof": asof,
        "tolerance": tolerance,
        "max_mismatch": max_mismatch,
        "served": served,
        "offline": frame.height,
        "joined": joined,
        "features": [f.__dict__ for f in skews],
        "not_in_data": missing,
        "distribution": dist,
        "alerts": alerts,
    }
