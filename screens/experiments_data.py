"""Data for the Experiments screen, read from the core. Called from thread workers only.

The runs frame with the min/max/last columns the user chose, the curves of the runs shown
(the index for finished runs, MLflow's store for running ones), a running run's system
metrics and its console tail. Imported lazily, inside workers, like loaders.py."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench_tui.loaders import SystemUsage, key_metrics, load_runs, system_usage

from workbench.errors import WorkbenchError
from workbench.store import run_curves

if TYPE_CHECKING:
    import polars as pl

    from workbench.jobs.telemetry import ConsoleTail
    from workbench.project import Project
    from workbench.store.db import Db


#: What reading the MLflow store live may raise (a server down, a locked file).
_STORE_ERRORS = (WorkbenchError, OSError, sqlite3.Error)


@dataclass
class RunsData:
    frame: pl.DataFrame
    #: Metrics with a per-step history in the index: the ones min/max/last can be asked of.
    stepped: list[str]


def load_runs_data(db: Db, columns: list[str] | None) -> RunsData:
    """Every run, with `s.<key>.<stat>` columns for the stat columns among `columns`."""
    import polars as pl

    frame = load_runs(db)
    stepped = run_curves.stepped_keys(db)
    wanted = [p for c in columns or [] if (p := run_curves.parse_stat_column(c))]
    keys = sorted({key for key, _ in wanted})
    if keys and frame.height:
        stats = run_curves.metric_stats(db, keys)
        names = [run_curves.stat_column(key, stat) for key, stat in wanted]
        ids = frame.get_column("run_id").to_list()
        frame = frame.with_columns(
            pl.Series(name, [stats.get(r, {}).get(name) for r in ids], dtype=pl.Float64)
            for name in names
        )
    return RunsData(frame, stepped)


def column_options(frame: pl.DataFrame, stepped: list[str], metric: str) -> list[tuple[str, str]]:
    """(column key, label) of every column the chooser lists: metrics (the gate's first),
    min/max/last of each per-step metric, then params."""
    metrics = key_metrics(list(frame.columns), metric)
    options = [(c, f"metric  {c[2:]}") for c in metrics]
    for key in stepped:
        for stat in run_curves.STATS:
            options.append((run_curves.stat_column(key, stat), f"{stat:<7} {key}"))
    options += [(c, f"param   {c[2:]}") for c in frame.columns if c.startswith("p.")]
    return options


@dataclass
class CurvesData:
    """The curves of `run_ids` for metric `key`, and what else the screen shows live."""

    seq: int
    key: str | None
    keys: list[str]
    series: dict[str, run_curves.Series] = field(default_factory=dict)
    usage: SystemUsage | None = None  # of the cursor's run, when it is running
    usage_run: str | None = None
    console: ConsoleTail | None = None


def load_curves(
    project: Project,
    db: Db,
    seq: int,
    run_ids: list[str],
    running: list[str],
    key: str | None,
    metric: str,
    cursor: str | None = None,
    console: bool = False,
) -> CurvesData:
    """Metric `key` (None: the most telling one) of each run in `run_ids`: from MLflow's
    store for those in `running` (whose index copy is as old as the last sync), else from the
    index; the cursor's run's live system metrics when it runs, and its console tail when
    `console`."""
    keys = run_curves.stepped_keys(db, run_ids)
    live = _live(project, [r for r in running if r in run_ids])
    keys = sorted(set(keys) | run_curves.live_keys(live), key=_key_order)
    if key is None or key not in keys:
        key = run_curves.curve_key(keys, metric)
    data = CurvesData(seq, key, keys)
    if key is not None:
        data.series = run_curves.histories(db, run_ids, key)
        for run_id, by_key in live.items():
            if key in by_key:
                data.series[run_id] = by_key[key]
    if cursor is not None and cursor in running:
        from workbench.store.backends import reader_for

        try:
            latest: dict[str, Any] = reader_for(project).read_latest_metrics([cursor])
        except _STORE_ERRORS:
            latest = {}
        data.usage, data.usage_run = system_usage(cursor, latest.get(cursor, {})), cursor
    if console and cursor is not None:
        from workbench.jobs import telemetry

        data.console = telemetry.console_tail(project, db, cursor)
    return data


def _live(project: Project, run_ids: list[str]) -> dict[str, dict[str, run_curves.Series]]:
    """Live points, or none when the store cannot be read now (the index's copy is drawn; the
    next read, a second later, tries again, so an unreachable store does not notify every
    second)."""
    try:
        return run_curves.live_histories(project, run_ids)
    except _STORE_ERRORS:
        return {}


def _key_order(key: str) -> tuple[bool, str]:
    return key.startswith("system/"), key
