"""The two sides of feature skew's join, as SQL for skew_join.py to stream.

- Served: the window's answered predictions whose request carried the key (its
  `passthrough` JSON: `[data] id_column` or `[serving] passthrough`): the key, the serving
  time (the timestamp the request carried, an offset honoured, else when it was logged), the
  typed lists of the served version's layout and the JSON record where a feature needs it.
- Offline: the data file. Parquet is read by DuckDB itself, streamed (the columns typed as
  the file types them; a text column that `[schema]` declares numeric is parsed, as training
  parses it). A CSV is read as training reads it (`load_frame`, the `[schema]` types) and
  held in memory: CSV has no cheap typed stream, and files that wide come as Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.drift.log_layout import CATEGORICAL, LAID_OUT, NUMERIC, Layout
from workbench.errors import UsageError
from workbench.monitoring.skew_join import Feature, Sources
from workbench.project import Project

if TYPE_CHECKING:
    from workbench.store.db import Db

OFFLINE = "_skew_offline"
_NUMBERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


@dataclass(frozen=True)
class Offline:
    """The offline side: its SQL relation, columns and types (DuckDB's names), rows."""

    relation: str
    types: dict[str, str]
    rows: int
    table: Any = None  # an Arrow table to register as OFFLINE (a CSV), or None


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_path(name: str) -> str:
    """The JSON path of a top-level key, as a SQL literal."""
    return literal("$." + '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"')


def offline(project: Project, data: Path | str, key: str, db: Db) -> Offline:
    """The offline file: Parquet (a file or a glob) read by DuckDB, else read as training
    reads it. Raises UsageError when it is missing or lacks `key`."""
    import duckdb

    from workbench.data.snapshot import load_frame, snapshot_files
    from workbench.errors import DataError

    path = Path(data)
    if not path.is_absolute():
        path = project.root / path
    try:
        files = snapshot_files(path)
    except DataError:
        raise UsageError(f"--data {data}: no such file") from None
    if files[0].suffix.lower() in (".parquet", ".pq"):
        listed = ", ".join(literal(str(f)) for f in files)
        relation = f"read_parquet([{listed}], union_by_name=true)"
        cur = db.cursor()
        try:
            described = cur.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
            (rows,) = cur.execute(f"SELECT count(*) FROM {relation}").fetchone() or (0,)
        except duckdb.Error as exc:  # a broken or unreadable file
            first = str(exc).strip().splitlines()[0]
            raise DataError(f"--data {data}: cannot read: {first}") from None
        finally:
            cur.close()
        got = Offline(relation, {str(r[0]): str(r[1]) for r in described}, int(rows))
    else:
        frame = _timed(project, load_frame(path, project.config.schema_))
        arrow = frame.to_arrow()
        types = {n: _duck_type(arrow.schema.field(n).type) for n in frame.columns}
        got = Offline(OFFLINE, types, frame.height, arrow)
    if key not in got.types:
        raise UsageError(f"--key {key}: no such column in {data}")
    return got


def _duck_type(kind: Any) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "DOUBLE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP" if kind.tz is None else "TIMESTAMP WITH TIME ZONE"
    if pa.types.is_date(kind):
        return "DATE"
    return "VARCHAR"


def _timed(project: Project, frame: Any) -> Any:
    """A CSV's `[data] timestamp` as naive UTC (polars parsed it, with `[schema]`)."""
    import polars as pl

    ts = project.config.data.timestamp
    if not ts or ts not in frame.columns:
        return frame
    dtype = frame.schema[ts]
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        col = pl.col(ts).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return frame.with_columns(col)
    return frame


def features(project: Project, off: Offline, key: str) -> list[Feature]:
    """The model's features the offline side holds, each with the kind it is compared as."""
    declared = {n: spec.type for n, spec in project.config.schema_.items()}
    out = []
    for name in project.config.features:
        kind = off.types.get(name)
        if kind is None or name == key:
            continue
        number = kind.startswith(_NUMBERS) or (
            kind == "VARCHAR" and declared.get(name) in ("int", "float")
        )
        out.append(Feature(name, "numeric" if number else "categorical", kind == "BOOLEAN"))
    return out


def time_sql(off: Offline, ts: str | None) -> str | None:
    """The offline time as naive UTC SQL, or None (no ASOF join)."""
    kind = off.types.get(ts or "")
    if not ts or kind is None:
        return None
    col = ident(ts)
    if kind == "TIMESTAMP WITH TIME ZONE":
        return f"timezone('UTC', {col})"
    if kind == "DATE" or kind.startswith("TIMESTAMP"):
        return f"CAST({col} AS TIMESTAMP)"
    return None


def offline_sql(off: Offline, key: str, feats: list[Feature], asof: str | None) -> str:
    cols = [f"CAST({ident(key)} AS VARCHAR) AS _key"]
    if asof:
        cols.append(f"{asof} AS _t")
    for f in feats:
        col = ident(f.name)
        if f.kind == "numeric" and off.types[f.name] == "VARCHAR":
            col = f"TRY_CAST({col} AS DOUBLE) AS {col}"
        cols.append(col)
    return f"SELECT {', '.join(cols)} FROM {off.relation} WHERE {ident(key)} IS NOT NULL"


def served_time(ts: str | None) -> str:
    """The serving time of a logged row: the timestamp its passthrough carried (an offset
    honoured; naive is UTC), else when it was logged; naive UTC either way."""
    logged = "timezone('UTC', ts)"
    if not ts:
        return logged
    text = f"json_extract_string(passthrough, {json_path(ts)})"
    carried = (
        f"CASE WHEN regexp_matches({text}, '([+-][0-9][0-9]:?[0-9][0-9]|Z)$') "
        f"THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE TRY_CAST({text} AS TIMESTAMP) END"
    )
    return f"COALESCE({carried}, {logged})"


def layout_of(project: Project, version: int | None, db: Db) -> tuple[Layout | None, int | None]:
    """The layout of the served version's typed lists, and that version; (None, None) when
    the log has no such columns or the version has no profile (the JSON, then)."""
    from workbench.errors import WorkbenchError
    from workbench.monitoring.checks import has_columns, load_profile
    from workbench.serving import deployments

    if not has_columns(db, "predictions", (NUMERIC, CATEGORICAL, LAID_OUT)):
        return None, None
    try:
        if version is None:
            version = deployments.production_version(project)
        if version is None:
            return None, None
        return Layout.of(load_profile(project, version)), version
    except WorkbenchError:
        return None, None


def served_sql(
    key: str, ts: str | None, layout: Layout | None, version: int | None, json_all: bool
) -> str:
    """The served side: _key, _t, _n, _c (the typed lists of rows of `version` laid out by
    `layout`, else null), _j (the JSON record of the other rows; of every row `json_all`)."""
    kpath = json_path(key)
    if layout is not None and version is not None:
        typed = f"coalesce(version = {int(version)} AND {layout.typed()}, false)"
        lists = (
            f"CASE WHEN {typed} THEN numeric END AS _n, "
            f"CASE WHEN {typed} THEN categorical END AS _c"
        )
        record = "features" if json_all else f"CASE WHEN NOT {typed} THEN features END"
    else:
        lists = "CAST(NULL AS DOUBLE[]) AS _n, CAST(NULL AS VARCHAR[]) AS _c"
        record = "features"
    return (
        f"SELECT json_extract_string(passthrough, {kpath}) AS _key, {served_time(ts)} AS _t, "
        f"{lists}, {record} AS _j FROM predictions "
        f"WHERE model = ? AND status = 200 AND ts >= ? AND passthrough IS NOT NULL "
        f"AND json_extract_string(passthrough, {kpath}) IS NOT NULL"
    )


def sources(
    project: Project, off: Offline, key: str, feats: list[Feature], since: Any,
    version: int | None, db: Db,
) -> tuple[Sources, bool]:  # fmt: skip
    """Both sides, and whether they are joined ASOF on the time."""
    from workbench.monitoring.skew_values import listed

    ts = project.config.data.timestamp
    asof = time_sql(off, ts)
    layout, served_version = layout_of(project, version, db)
    json_all = any(listed(layout, f) is None for f in feats)
    src = Sources(
        served=served_sql(key, ts if asof else None, layout, served_version, json_all),
        params=[project.config.model_name, since],
        offline=offline_sql(off, key, feats, asof),
        offline_rows=off.rows,
        layout=layout,
        tables={OFFLINE: off.table} if off.table is not None else {},
    )
    return src, asof is not None
