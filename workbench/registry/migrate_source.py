"""What `workbench store migrate` copies, read from the project's embedded store (MLflow's
SQLite tables, read-only, without importing mlflow) and its audit log.

Everything a run holds is read: status, times, name, user, every metric point (each step and
timestamp, NaN kept), params, tags, dataset inputs with their tags, the logged models it
took as input or produced, and its artifacts' location. The registry: registered models with
their tags and descriptions, every version (tags, description, source, run), the aliases, and
the audit rows that name the model. Only active runs and logged models are copied.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import DataError
from workbench.project import Project
from workbench.store.db import Db
from workbench.store.mlflow_tables import connect_ro

#: (key, value, timestamp ms, step); NaN as float("nan").
Point = tuple[str, float, int, int]


@dataclass
class DatasetIn:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceRun:
    run_id: str
    experiment: str
    name: str | None
    status: str
    start_time: int | None
    end_time: int | None
    user: str | None
    artifact_uri: str | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[Point] = field(default_factory=list)
    datasets: list[DatasetIn] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)  # logged model ids
    model_outputs: list[tuple[str, int]] = field(default_factory=list)  # (model id, step)
    #: (key, timestamp, step, value) of a metric point -> the logged model it was logged for
    metric_models: dict[tuple[str, int, int, float], str] = field(default_factory=dict)


@dataclass
class SourceLoggedModel:
    model_id: str
    experiment: str
    name: str
    artifact_location: str
    status: int
    model_type: str | None
    source_run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceVersion:
    version: int
    source: str
    run_id: str | None
    description: str | None
    status: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceModel:
    name: str
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    versions: list[SourceVersion] = field(default_factory=list)  # by number
    aliases: dict[str, int] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)  # oldest first


@dataclass
class Source:
    runs: list[SourceRun]  # parents before their children
    logged_models: list[SourceLoggedModel]
    models: list[SourceModel]


_NEEDS = ("runs", "metrics", "params", "tags", "experiments", "registered_models")


def read(project: Project) -> Source:
    """The whole embedded store; a store that does not exist is an error (nothing to copy)."""
    db = project.mlflow_db
    with connect_ro(db, _NEEDS) as con:
        if con is None:
            raise DataError(f"{db}: no MLflow store to migrate (train or register a model first)")
        try:
            runs = _runs(con)
            logged = _logged_models(con)
            models = _models(con)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{db}: cannot read the MLflow store: {exc}") from None
    _audit(project, models)
    return Source(runs=_parents_first(runs), logged_models=logged, models=models)


def _runs(con: sqlite3.Connection) -> list[SourceRun]:
    rows = con.execute(
        "SELECT r.run_uuid, e.name, r.name, r.status, r.start_time, r.end_time, r.user_id, "
        "r.artifact_uri FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
        "WHERE r.lifecycle_stage = 'active' ORDER BY r.start_time, r.run_uuid"
    ).fetchall()
    runs = {
        r[0]: SourceRun(
            run_id=r[0],
            experiment=r[1],
            name=r[2],
            status=r[3] or "FINISHED",
            start_time=r[4],
            end_time=r[5],
            user=r[6],
            artifact_uri=r[7],
        )
        for r in rows
    }
    for run_id, key, value in con.execute("SELECT run_uuid, key, value FROM params"):
        if run_id in runs:
            runs[run_id].params[key] = value
    for run_id, key, value in con.execute("SELECT run_uuid, key, value FROM tags"):
        if run_id in runs:
            runs[run_id].tags[key] = value
    for key, value, ts, run_id, step, is_nan in con.execute(
        "SELECT key, value, timestamp, run_uuid, step, is_nan FROM metrics "
        "ORDER BY run_uuid, key, step, timestamp"
    ):
        if run_id in runs:
            runs[run_id].metrics.append((key, float("nan") if is_nan else value, ts, step))
    _inputs(con, runs)
    if _has(con, "logged_model_metrics"):
        for model_id, key, ts, step, value, run_id in con.execute(
            "SELECT model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, "
            "run_id FROM logged_model_metrics WHERE run_id IS NOT NULL"
        ):
            if run_id in runs:
                runs[run_id].metric_models[(key, ts, step, value)] = model_id
    return list(runs.values())


def _inputs(con: sqlite3.Connection, runs: dict[str, SourceRun]) -> None:
    if not _has(con, "inputs"):
        return
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for uuid, key, value in con.execute("SELECT input_uuid, name, value FROM input_tags"):
        tags[uuid][key] = value
    for uuid, run_id, name, digest, kind, where, schema, profile in con.execute(
        "SELECT i.input_uuid, i.destination_id, d.name, d.digest, d.dataset_source_type, "
        "d.dataset_source, d.dataset_schema, d.dataset_profile FROM inputs i "
        "JOIN datasets d ON d.dataset_uuid = i.source_id "
        "WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' "
        "ORDER BY i.rowid"
    ):
        if run_id in runs:
            found = DatasetIn(name, digest, kind, where, schema, profile, tags.get(uuid, {}))
            runs[run_id].datasets.append(found)
    for run_id, model_id in con.execute(
        "SELECT source_id, destination_id FROM inputs WHERE source_type = 'RUN_INPUT' "
        "AND destination_type = 'MODEL_INPUT' ORDER BY rowid"
    ):
        if run_id in runs:
            runs[run_id].model_inputs.append(model_id)
    for run_id, model_id, step in con.execute(
        "SELECT source_id, destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' "
        "AND destination_type = 'MODEL_OUTPUT' ORDER BY rowid"
    ):
        if run_id in runs:
            runs[run_id].model_outputs.append((model_id, int(step or 0)))


def _logged_models(con: sqlite3.Connection) -> list[SourceLoggedModel]:
    if not _has(con, "logged_models"):
        return []
    found = {
        r[0]: SourceLoggedModel(*r)
        for r in con.execute(
            "SELECT m.model_id, e.name, m.name, m.artifact_location, m.status, m.model_type, "
            "m.source_run_id FROM logged_models m "
            "JOIN experiments e ON e.experiment_id = m.experiment_id "
            "WHERE m.lifecycle_stage = 'active' ORDER BY m.creation_timestamp_ms, m.model_id"
        )
    }
    for model_id, key, value in con.execute(
        "SELECT model_id, tag_key, tag_value FROM logged_model_tags"
    ):
        if model_id in found:
            found[model_id].tags[key] = value
    for model_id, key, value in con.execute(
        "SELECT model_id, param_key, param_value FROM logged_model_params"
    ):
        if model_id in found:
            found[model_id].params[key] = value
    return list(found.values())


def _models(con: sqlite3.Connection) -> list[SourceModel]:
    models = {
        name: SourceModel(name, description)
        for name, description in con.execute(
            "SELECT name, description FROM registered_models ORDER BY creation_time, name"
        )
    }
    for name, key, value in con.execute(
        "SELECT name, key, value FROM registered_model_tags ORDER BY key"
    ):
        if name in models:
            models[name].tags[key] = value
    versions: dict[tuple[str, int], SourceVersion] = {}
    for name, number, source, run_id, description, status in con.execute(
        "SELECT name, version, source, run_id, description, status FROM model_versions "
        "WHERE current_stage != 'Deleted_Internal' ORDER BY name, version"
    ):
        if name in models:
            v = SourceVersion(int(number), source or "", run_id, description, status or "READY")
            models[name].versions.append(v)
            versions[(name, int(number))] = v
    for name, number, key, value in con.execute(
        "SELECT name, version, key, value FROM model_version_tags ORDER BY key"
    ):
        if (name, int(number)) in versions:
            versions[(name, int(number))].tags[key] = value
    for alias, number, name in con.execute(
        "SELECT alias, version, name FROM registered_model_aliases ORDER BY alias"
    ):
        if name in models:
            models[name].aliases[alias] = int(number)
    return list(models.values())


def _audit(project: Project, models: list[SourceModel]) -> None:
    shared = project.logs_root.uri is not None  # the audit log is in S3 ([logs] uri)
    if not models or not (shared or (project.logs / "audit").exists()):
        return
    by_name = {m.name: m for m in models}
    db = Db(project.logs_root)
    try:
        rows = db.rows("SELECT * FROM audit ORDER BY ts")
    finally:
        db.close()
    for row in rows:
        if row.get("model") in by_name:
            by_name[row["model"]].audit.append(row)


def _has(con: sqlite3.Connection, table: str) -> bool:
    row = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", [table])
    return row.fetchone() is not None


def _parents_first(runs: list[SourceRun]) -> list[SourceRun]:
    """Runs ordered so that a nested run's parent is copied before it (its tag maps)."""
    ids = {r.run_id: r for r in runs}

    def depth(run: SourceRun) -> int:
        seen: set[str] = set()
        n, parent = 0, run.tags.get("mlflow.parentRunId")
        while parent in ids and parent not in seen:
            seen.add(parent)
            n += 1
            parent = ids[parent].tags.get("mlflow.parentRunId")
        return n

    return sorted(runs, key=lambda r: (depth(r), r.start_time or 0, r.run_id))


def audit_json(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row as plain JSON (its timestamp in ISO 8601)."""
    out = dict(row)
    ts = out.get("ts")
    if ts is not None and hasattr(ts, "isoformat"):
        out["ts"] = ts.isoformat()
    details = out.get("details")
    if isinstance(details, str):
        with contextlib.suppress(ValueError):
            out["details"] = json.loads(details)
    return out


def local_dir(uri: str | None) -> Path | None:
    """The local folder behind a `file:` URI (or a bare path), None for anything else."""
    if not uri:
        return None
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    if "://" not in uri and ":" not in uri.split("/", 1)[0]:
        return Path(uri)
    return None
