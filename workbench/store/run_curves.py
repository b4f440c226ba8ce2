"""Per-step metrics of runs, for the Experiments screen's curves and its min/max/last columns.

Finished runs are read from the runs index's metrics log (DuckDB over Parquet, one statement
for every run asked about); a running run's points are read live from MLflow's store through
its reader (no mlflow import), so its curve grows before the next sync.

Everything here reads files or a store: call it from a worker thread, never from a UI's event
loop.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workbench.store.db import Db

if TYPE_CHECKING:
    from workbench.project import Project

#: The three summaries of a metric's history a runs table can show.
STATS = ("min", "max", "last")
#: Prefix of a stat column in the runs frame: `s.<key>.<stat>`.
STAT_PREFIX = "s."
#: "value is not NaN", in a form DuckDB 2.0 keeps: it folds `NOT isnan(value)` (and
#: `value <> 'NaN'`, and a CASE over isnan) to true when the Parquet file's statistics, which
#: pyarrow writes without NaN, say the column holds none, so NaN points came through.
_NOT_NAN = "CAST(value AS VARCHAR) NOT IN ('nan', '-nan')"


@dataclass
class Series:
    """One metric of one run: its points by step (NaN points left out)."""

    run_id: str
    key: str
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def best(self, lower_is_better: bool) -> float | None:
        if not self.values:
            return None
        return min(self.values) if lower_is_better else max(self.values)


def lower_is_better(key: str) -> bool:
    """Whether smaller values of metric `key` are better (losses and errors)."""
    name = key.rsplit("/", 1)[-1].lower()
    return any(word in name for word in ("loss", "error", "rmse", "mae", "mse", "mape"))


def stat_column(key: str, stat: str) -> str:
    """The runs frame's column for `stat` (min, max, last) of metric `key`."""
    return f"{STAT_PREFIX}{key}.{stat}"


def parse_stat_column(column: str) -> tuple[str, str] | None:
    """(key, stat) of a stat column; None for any other column."""
    if not column.startswith(STAT_PREFIX):
        return None
    key, _, stat = column[len(STAT_PREFIX) :].rpartition(".")
    return (key, stat) if key and stat in STATS else None


def stepped_keys(db: Db, run_ids: list[str] | None = None) -> list[str]:
    """Metrics logged at more than one step by some run (of `run_ids`, or any run), with
    MLflow's system samples (`system/...`) last."""
    where, args = "", []
    if run_ids is not None:
        if not run_ids:
            return []
        where = f"WHERE run_id IN ({', '.join('?' * len(run_ids))})"
        args = list(run_ids)
    rows = db.rows(
        f"SELECT key FROM metrics {where} GROUP BY key "
        "HAVING count(*) > count(DISTINCT run_id) ORDER BY key",
        args,
    )
    keys = [str(r["key"]) for r in rows]
    return [k for k in keys if not k.startswith("system/")] + [
        k for k in keys if k.startswith("system/")
    ]


def curve_key(keys: list[str], metric: str) -> str | None:
    """The most telling metric to draw: valid_<metric>, train_<metric>, else the first one."""
    for preferred in (f"valid_{metric}", f"train_{metric}"):
        if preferred in keys:
            return preferred
    plain = [k for k in keys if not k.startswith("system/")] or keys
    return plain[0] if plain else None


def histories(db: Db, run_ids: list[str], key: str) -> dict[str, Series]:
    """Metric `key` of each run in `run_ids`, by step, from the runs index."""
    if not run_ids:
        return {}
    marks = ", ".join("?" * len(run_ids))
    rows = db.rows(
        f"SELECT run_id, step, value FROM metrics WHERE key = ? AND run_id IN ({marks}) "
        f"AND {_NOT_NAN} ORDER BY run_id, step, timestamp",
        [key, *run_ids],
    )
    out: dict[str, Series] = {}
    for r in rows:
        series = out.setdefault(r["run_id"], Series(r["run_id"], key))
        series.steps.append(int(r["step"]))
        series.values.append(float(r["value"]))
    return out


def live_histories(project: Project, run_ids: list[str]) -> dict[str, dict[str, Series]]:
    """Every metric of each run in `run_ids`, by step, read now from MLflow's store (for runs
    still running: the index has what the last sync saw)."""
    from workbench.store.backends import reader_for

    if not run_ids:
        return {}
    points = reader_for(project).read_metric_history(list(run_ids))
    out: dict[str, dict[str, Series]] = defaultdict(dict)
    for run_id, rows in points.items():
        for key, step, value, _ts in rows:
            if value is None or math.isnan(value):
                continue
            series = out[run_id].setdefault(key, Series(run_id, key))
            series.steps.append(int(step))
            series.values.append(float(value))
    return dict(out)


def live_keys(live: dict[str, dict[str, Series]]) -> set[str]:
    """The metrics with more than one point in live histories."""
    return {k for by_key in live.values() for k, s in by_key.items() if len(s) > 1}


def metric_stats(db: Db, keys: list[str]) -> dict[str, dict[str, float]]:
    """run_id -> {`s.<key>.<stat>`: value} with the min, max and last (highest step) value of
    each metric in `keys` over every point the runs index holds (NaN points left out)."""
    if not keys:
        return {}
    marks = ", ".join("?" * len(keys))
    rows = db.rows(
        "SELECT run_id, key, min(value) AS min, max(value) AS max, "
        "last(value ORDER BY step, timestamp) AS last "
        f"FROM metrics WHERE key IN ({marks}) AND {_NOT_NAN} GROUP BY run_id, key",
        list(keys),
    )
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        for stat in STATS:
            out[r["run_id"]][stat_column(r["key"], stat)] = float(r[stat])
    return dict(out)
