"""The runs index: a Parquet copy of MLflow's runs, queried through DuckDB.

`sync()` reads MLflow's store through its reader (store/backends.py, no mlflow import) and
appends a row for every run that is new or changed since the last sync (status, end time,
metrics, params or tags), so runs logged by plain MLflow scripts into the same store show up
too. The first sync reads every run; later ones ask the reader only for runs that may have
changed since the last sync (minus a margin for clocks that disagree), which keeps a sync
against a team's tracking server cheap. Per-step metric
history is kept per run (one file a run, replaced atomically when the run changes).
The `runs` view picks the newest row per run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.project import Project
from workbench.store.backends import reader_for, redact
from workbench.store.db import Db
from workbench.store.mlflow_tables import StoreRun
from workbench.store.parquet_log import ParquetLog, utcnow

if TYPE_CHECKING:
    import polars as pl

#: Columns every runs frame has before the flattened metric and param columns.
BASE_COLUMNS = ["run_id", "run_name", "experiment", "status", "start_time", "end_time", "user"]


#: In the store folder: when the last sync read the store (and which store it was).
SYNC_STATE = "runs.sync.json"
#: Later syncs ask for runs changed since the last one less this (the server's clock may lag).
SYNC_MARGIN_MS = 10 * 60 * 1000
#: A shared store is read in full at least this often: an incremental read cannot see a tag
#: edited, or a metric logged, on a run that ended before the last sync.
FULL_SYNC_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class SyncResult:
    total: int
    changed: int


def _fingerprint(run: StoreRun) -> str:
    h = hashlib.blake2b(digest_size=12)
    parts: list[Any] = [
        run.status,
        run.end_time,
        run.lifecycle_stage,
        run.run_name,
        run.metrics_stamp,
    ]
    parts += sorted(run.metrics.items()) + sorted(run.params.items()) + sorted(run.tags.items())
    h.update(repr(parts).encode())
    return h.hexdigest()


def _ms(value: int | None) -> Any:
    from datetime import UTC, datetime

    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


def sync(project: Project, db: Db | None = None) -> SyncResult:
    """Bring the Parquet runs index up to date with the MLflow store."""
    with Db.borrow(db, project.logs) as use:
        known = {
            r["run_id"]: r["fingerprint"]
            for r in use.rows(
                "SELECT run_id, fingerprint FROM runs_versions "
                "QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY synced_at DESC) = 1"
            )
        }
    reader = reader_for(project)
    state_path = project.store / SYNC_STATE
    started_ms = int(time.time() * 1000)
    # The embedded store is read whole every time (10,000 runs in a few ms, and nothing can be
    # missed); a shared one incrementally, and in full every FULL_SYNC_MS.
    last = _last_sync(state_path, redact(project.tracking_uri))
    since: int | None = None
    shared = known and not project.is_embedded_store
    if shared and last is not None and started_ms - last[1] <= FULL_SYNC_MS:
        since = last[0]
    full = since is None
    runs = reader.read_runs(None if since is None else since - SYNC_MARGIN_MS)
    now = utcnow()
    changed: list[dict[str, Any]] = []
    for run in runs:
        fp = _fingerprint(run)
        if known.get(run.run_id) == fp:
            continue
        changed.append(
            {
                "synced_at": now,
                "run_id": run.run_id,
                "experiment_id": run.experiment_id,
                "experiment": run.experiment,
                "run_name": run.run_name,
                "status": run.status,
                "lifecycle_stage": run.lifecycle_stage,
                "user": run.user,
                "source": run.source,
                "start_time": _ms(run.start_time),
                "end_time": _ms(run.end_time),
                "metrics": run.metrics,
                "params": run.params,
                "tags": run.tags,
                "fingerprint": fp,
            }
        )
    if changed:
        ParquetLog(project.logs, "runs").append(changed)
        history = reader.read_metric_history([r["run_id"] for r in changed])
        ParquetLog(project.logs, "metrics").append(
            {
                "synced_at": now,
                "run_id": run_id,
                "key": k,
                "step": s,
                "value": v,
                "timestamp": _ms(ts),
            }
            for run_id, points in history.items()
            for k, s, v, ts in points
        )
    full_ms = started_ms if full or last is None else last[1]  # last is set when not full
    _save_sync(state_path, redact(project.tracking_uri), started_ms, full_ms)
    total = len(runs) if since is None else len(set(known) | {r.run_id for r in runs})
    return SyncResult(total=total, changed=len(changed))


def _last_sync(path: os.PathLike[str], store: str) -> tuple[int, int] | None:
    """When the last sync of `store` read it and when it last read it whole (ms), or None:
    read every run."""
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("store") != store:
        return None
    since, full = state.get("read_ms"), state.get("full_ms")
    if not isinstance(since, int) or not isinstance(full, int):
        return None
    return since, full


def _save_sync(path: os.PathLike[str], store: str, read_ms: int, full_ms: int) -> None:
    tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"store": store, "read_ms": read_ms, "full_ms": full_ms}, fh)
        os.replace(tmp, path)
    except OSError:  # best effort: without it the next sync reads every run again
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def metric_keys(db: Db) -> list[str]:
    """Every metric name in the runs index."""
    return [
        r["k"]
        for r in db.rows("SELECT DISTINCT unnest(map_keys(metrics)) AS k FROM runs ORDER BY k")
    ]


def latest_runs(db: Db, limit: int, metrics: list[str]) -> tuple[list[dict[str, Any]], int]:
    """The newest `limit` runs with `m.<key>` for the given metrics, and how many runs there
    are. Plain DuckDB rows: no polars, no pyarrow (the TUI's first paint uses this)."""
    cols = ", ".join(
        ["run_id", "run_name", "status", "start_time"]
        + [f"metrics[{_literal(k)}] AS {_quote('m.' + k)}" for k in metrics]
    )
    rows = db.rows(f"SELECT {cols} FROM runs ORDER BY start_time DESC NULLS LAST LIMIT ?", [limit])
    total = db.rows("SELECT count(*) AS n FROM runs")[0]["n"]
    return rows, int(total)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def runs_frame(db: Db, experiment: str | None = None) -> pl.DataFrame:
    """All active runs, newest first, with one `m.<key>` column per metric and `p.<key>` per param.

    The MAP columns are flattened in DuckDB, which is both faster and independent of how a
    given polars version maps DuckDB MAPs."""
    import polars as pl

    where = "WHERE experiment = ?" if experiment else ""
    args = [experiment] if experiment else None
    distinct = "SELECT DISTINCT unnest(map_keys({col})) AS k FROM runs " + where
    keys = db.rows(
        f"SELECT 'm' AS kind, k FROM ({distinct.format(col='metrics')}) UNION ALL "
        f"SELECT 'p' AS kind, k FROM ({distinct.format(col='params')}) ORDER BY kind, k",
        (args or []) * 2,
    )
    flat = []
    for r in keys:
        col = "metrics" if r["kind"] == "m" else "params"
        flat.append(f"{col}[{_literal(r['k'])}] AS {_quote(r['kind'] + '.' + r['k'])}")
    cols = ", ".join([*BASE_COLUMNS, *flat])
    df = pl.from_arrow(
        db.arrow(f"SELECT {cols} FROM runs {where} ORDER BY start_time DESC NULLS LAST", args)
    )
    assert isinstance(df, pl.DataFrame)
    return df


def sort_filter(
    df: pl.DataFrame, sort_by: str | None = None, descending: bool = True, text: str = ""
) -> pl.DataFrame:
    """Filter runs by a case-insensitive substring over name, id, status and params
    (`key=value` terms filter on one column, `key>0.9` / `key<0.9` on numbers), then sort."""
    out = df
    for term in text.split():
        out = out.filter(_term_expr(out, term))
    if sort_by and sort_by in out.columns:
        out = out.sort(sort_by, descending=descending, nulls_last=True)
    return out


def _term_expr(df: pl.DataFrame, term: str) -> pl.Expr:
    import polars as pl

    for op in (">=", "<=", ">", "<", "="):
        if op in term:
            key, _, value = term.partition(op)
            col = _resolve_column(df, key)
            if col is None:
                break
            if op == "=":
                return pl.col(col).cast(pl.Utf8).str.to_lowercase() == value.lower()
            try:
                num = float(value)
            except ValueError:
                break
            x = pl.col(col).cast(pl.Float64, strict=False)
            return {">": x > num, "<": x < num, ">=": x >= num, "<=": x <= num}[op]
    needle = term.lower()
    text_cols: list[str] = [
        c for c in ("run_name", "run_id", "status", "experiment", "user") if c in df.columns
    ]
    text_cols += [c for c in df.columns if c.startswith("p.")]
    expr = pl.lit(False)
    for c in text_cols:
        expr = expr | pl.col(c).cast(pl.Utf8).str.to_lowercase().str.contains(
            needle, literal=True
        ).fill_null(False)
    return expr


def _resolve_column(df: pl.DataFrame, key: str) -> str | None:
    for candidate in (key, f"m.holdout_{key}", f"m.{key}", f"p.{key}"):
        if candidate in df.columns:
            return candidate
    return None


def metric_history(db: Db, run_id: str, key: str | None = None) -> pl.DataFrame:
    import polars as pl

    sql = "SELECT key, step, value FROM metrics WHERE run_id = ?"
    args: list[Any] = [run_id]
    if key:
        sql += " AND key = ?"
        args.append(key)
    df = pl.from_arrow(db.arrow(sql + " ORDER BY key, step", args))
    assert isinstance(df, pl.DataFrame)
    return df


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=0)
    return bool(a == b)


def same(a: Any, b: Any) -> bool:
    """Whether two field values of runs are the same (NaN is NaN; floats to 1e-12)."""
    return _same(a, b)


def compare_runs(
    df: pl.DataFrame, run_ids: list[str], only_diff: bool = False
) -> list[dict[str, Any]]:
    """Side-by-side rows {field, <run_id>: value, ...}; with only_diff, fields that differ."""
    import polars as pl

    picked = df.filter(pl.col("run_id").is_in(run_ids))
    by_id = {row["run_id"]: row for row in picked.iter_rows(named=True)}
    missing = [r for r in run_ids if r not in by_id]
    if missing:
        from workbench.errors import UsageError

        raise UsageError(f"unknown run id(s): {', '.join(missing)}")
    fields = [c for c in df.columns if c != "run_id"]
    rows = []
    for name in fields:
        values = [by_id[r][name] for r in run_ids]
        if all(v is None for v in values):
            continue
        differs = not all(_same(values[0], v) for v in values[1:])
        if only_diff and not differs:
            continue
        rows.append({"field": name, "differs": differs, **dict(zip(run_ids, values, strict=True))})
    return rows
