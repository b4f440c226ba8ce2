"""Data for the screens, read from the core. Called from thread workers only.

This module is imported lazily (inside workers) so that the first paint does not wait for
polars, DuckDB or the registry reader to import. It never imports mlflow.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench_tui.overview_cache import AliasCard, OverviewData

from workbench.registry import audit as audit_log
from workbench.registry import versions as registry
from workbench.store import runs_index

if TYPE_CHECKING:
    import polars as pl

    from workbench.project import Project
    from workbench.registry.versions import VersionInfo
    from workbench.store.db import Db

#: Columns every runs table shows before the metrics.
BASE_COLUMNS = ("run_id", "run_name", "status", "start_time")


def key_metrics(columns: list[str], metric: str) -> list[str]:
    """Metric columns (`m.*`), most telling first: the gate's holdout metric, its validation
    twin, then the other holdout metrics, then everything else; MLflow's system metrics
    (`system/...`) are the run detail's, not columns."""
    present = [c for c in columns if c.startswith("m.") and not c.startswith("m.system/")]
    preferred = [
        f"m.holdout_{metric}",
        f"m.valid_{metric}",
        "m.holdout_logloss",
        "m.holdout_average_precision",
        "m.holdout_f1",
        "m.holdout_precision",
        "m.holdout_recall",
        "m.holdout_accuracy",
    ]
    head = [c for c in dict.fromkeys(preferred) if c in present]
    rest = [c for c in present if c not in head]
    holdout = [c for c in rest if c.startswith("m.holdout_")]
    valid = [c for c in rest if c.startswith("m.valid_")]
    other = [c for c in rest if c not in holdout and c not in valid]
    return head + holdout + valid + other


def load_overview(project: Project, db: Db, limit: int = 10) -> OverviewData:
    cfg = project.config
    metric = f"holdout_{cfg.metric}"
    versions = registry.list_versions(project)
    by_alias = {alias: v for v in versions for alias in v.aliases}
    cards = []
    for alias in (cfg.registry.production_alias, cfg.registry.candidate_alias):
        v = by_alias.get(alias)
        cards.append(
            AliasCard(
                alias=alias,
                version=v.version if v else None,
                run_id=v.run_id if v else None,
                metric=v.metrics.get(metric) if v else None,
                champion=v.champion(metric) if v else None,
            )
        )
    # A light query (plain rows, no polars): this feeds the first paint.
    names = [f"m.{k}" for k in runs_index.metric_keys(db)]
    shown = key_metrics(names, cfg.metric)[:2]
    runs, total = runs_index.latest_runs(db, limit, [c.removeprefix("m.") for c in shown])
    audit = audit_log.recent(db, 5)
    return OverviewData(
        model=cfg.model_name,
        metric=metric,
        cards=cards,
        versions=len(versions),
        runs=runs,
        run_metrics=shown,
        total_runs=total,
        audit=audit,
    )


def load_runs(db: Db) -> pl.DataFrame:
    return runs_index.runs_frame(db)


def view_runs(
    df: pl.DataFrame, sort_by: str | None, descending: bool, text: str, keep: str | None
) -> tuple[pl.DataFrame, int]:
    """The filtered, sorted view and the row to put the cursor on (the run `keep` if shown)."""
    view = runs_index.sort_filter(df, sort_by, descending, text)
    cursor = 0
    if keep is not None and view.height:
        ids = view.get_column("run_id")
        hits = ids.eq(keep).arg_true()
        if hits.len():
            cursor = int(hits[0])
    return view, cursor


@dataclass
class Curve:
    run_id: str
    key: str | None
    values: list[float] = field(default_factory=list)


def load_curve(db: Db, run_id: str, metric: str) -> Curve:
    """The per-step history of the run's most telling metric (valid_<metric> when logged)."""
    hist = runs_index.metric_history(db, run_id)
    if not hist.height:
        return Curve(run_id, None)
    counts = {k: n for k, n in hist.group_by("key").len().iter_rows()}
    stepped = [k for k, n in counts.items() if n > 1]
    for key in (f"valid_{metric}", f"train_{metric}", *sorted(stepped)):
        if counts.get(key, 0) > 1:
            values = hist.filter(hist["key"] == key).sort("step")["value"].to_list()
            return Curve(run_id, key, [float(v) for v in values])
    return Curve(run_id, None)


@dataclass
class ModelsData:
    model: str
    metric: str
    versions: list[VersionInfo]
    aliases: dict[str, int]
    history: list[dict[str, Any]]


def load_models(project: Project, db: Db) -> ModelsData:
    cfg = project.config
    versions = registry.list_versions(project)
    history = registry.alias_history(project, db=db)
    return ModelsData(
        model=cfg.model_name,
        metric=f"holdout_{cfg.metric}",
        versions=versions,
        aliases=registry.aliases(project),
        history=list(reversed(history)),
    )


@dataclass
class GpuUse:
    index: int
    utilisation: float | None = None  # percent
    memory_mb: float | None = None
    memory_percent: float | None = None


@dataclass
class SystemUsage:
    """A run's latest system metrics (MLflow's `system/...` samples) and its GPU-seconds."""

    run_id: str
    cpu_percent: float | None = None
    memory_mb: float | None = None
    memory_percent: float | None = None
    gpus: list[GpuUse] = field(default_factory=list)
    gpu_seconds: float | None = None

    def describe(self) -> str:
        """One line: "cpu 45% · mem 1.6 GB (6%) · gpu0 80% 12.3 GB · 12.5 GPU-s"."""
        parts = []
        if self.cpu_percent is not None:
            parts.append(f"cpu {self.cpu_percent:.0f}%")
        if self.memory_mb is not None:
            pct = f" ({self.memory_percent:.0f}%)" if self.memory_percent is not None else ""
            parts.append(f"mem {_size(self.memory_mb)}{pct}")
        for gpu in self.gpus:
            util = f" {gpu.utilisation:.0f}%" if gpu.utilisation is not None else ""
            mem = f" {_size(gpu.memory_mb)}" if gpu.memory_mb is not None else ""
            parts.append(f"gpu{gpu.index}{util}{mem}")
        if self.gpu_seconds is not None:
            parts.append(f"{self.gpu_seconds:,.1f} GPU-s")
        return " · ".join(parts)


def _size(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"


_GPU_KEY = re.compile(r"^gpu_(\d+)_(utilization_percentage|memory_usage_megabytes|"
                      r"memory_usage_percentage)$")  # fmt: skip
_GPU_FIELDS = {
    "utilization_percentage": "utilisation",
    "memory_usage_megabytes": "memory_mb",
    "memory_usage_percentage": "memory_percent",
}


def system_usage(run_id: str, metrics: dict[str, Any]) -> SystemUsage | None:
    """The usage in a run's latest metrics (`system/<name>` or `system/<node>/<name>`, and
    `gpu_seconds`); None when the run logged none. Pure: cheap enough for the UI thread."""
    usage = SystemUsage(run_id)
    gpus: dict[int, GpuUse] = {}
    found = False
    for key, value in metrics.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            continue
        if key == "gpu_seconds":
            usage.gpu_seconds, found = float(value), True
            continue
        if not key.startswith("system/"):
            continue
        name = key.rsplit("/", 1)[-1]
        found = True
        if name == "cpu_utilization_percentage":
            usage.cpu_percent = float(value)
        elif name == "system_memory_usage_megabytes":
            usage.memory_mb = float(value)
        elif name == "system_memory_usage_percentage":
            usage.memory_percent = float(value)
        elif match := _GPU_KEY.match(name):
            gpu = gpus.setdefault(int(match[1]), GpuUse(int(match[1])))
            setattr(gpu, _GPU_FIELDS[match[2]], float(value))
    usage.gpus = [gpus[i] for i in sorted(gpus)]
    return usage if found else None


def load_system_usage(project: Project, run_id: str) -> SystemUsage | None:
    """A run's latest system metrics, live from MLflow's store (read-only, no mlflow import:
    a running job's samples show before any sync)."""
    from workbench.store.backends import reader_for

    latest = reader_for(project).read_latest_metrics([run_id]).get(run_id, {})
    return system_usage(run_id, latest)
