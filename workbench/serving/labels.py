"""Delayed ground truth: labels joined to predictions by request id.

A label file names each request's true class as the client knows it (a string class, a
number, a boolean for classes 0/1) or a regression value; the labels log keeps one float64
per label: the class index for a classification model (`ModelTask.index_of`), the value for
regression. The model whose classes count is the one production serves (else the newest
version; with none registered, the project's `[task]`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.config import ColumnSpec
from workbench.data.snapshot import load_frame
from workbench.errors import DataError, WorkbenchError
from workbench.project import Project
from workbench.serving.client_strings import REQUEST_ID_MAX, REQUEST_ID_MIN
from workbench.store.parquet_log import ParquetLog, utcnow
from workbench.tasks import ModelTask

REQUIRED = ("request_id", "label")
#: How a labels CSV is read: ids as text (leading zeros kept), labels as numbers.
_REQUEST_ID = ColumnSpec(type="str")
#: The request id rule of workbench.serving.client_strings, as a polars (Rust) regex.
_BAD_ID_CHARS = r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"


def labels_task(project: Project) -> ModelTask:
    """The task labels are read for: production's model, else the newest version's, else
    the project's `[task]` (classes as configured, or the training data's) when no model
    folder can be read."""
    from workbench.serving import deployments
    from workbench.serving.predictors import task_of
    from workbench.store import backends

    version = deployments.production_version(project)
    if version is None:
        versions = backends.reader_for(project, registry=True).read_model_versions(
            project.config.model_name
        )
        version = max((v.version for v in versions), default=None)
    if version is not None:
        try:
            return task_of(project, version)
        except WorkbenchError:  # its folder is gone or unreadable: the project's [task]
            pass
    cfg = project.config
    if cfg.task.type == "regression":
        return ModelTask("regression", [])
    if cfg.task.classes is not None:
        return ModelTask(cfg.task.type, list(cfg.task.classes))
    from workbench.data.target import classes_of

    try:
        return ModelTask(cfg.task.type, classes_of(load_frame(project.data_path), cfg))
    except (DataError, OSError):
        return ModelTask(cfg.task.type)


def ingest(project: Project, path: Path, task: ModelTask | None = None) -> int:
    """Append the labels in a CSV or Parquet file (columns request_id, label; a later label
    for the same request wins). Returns how many were ingested."""
    import polars as pl

    task = task or labels_task(project)
    # read as text (a CSV's 'yes' stays 'yes'), then mapped to the model's classes
    label = ColumnSpec(type="float" if task.type == "regression" else "str")
    frame = load_frame(path, {"request_id": _REQUEST_ID, "label": label})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (need request_id, label)")
    raw = frame["label"]
    frame = frame.select(
        pl.col("request_id").cast(pl.Utf8),
        _as_number(raw, task).alias("label"),
        pl.col("label").alias("raw"),
    )
    rid = pl.col("request_id")
    bad_id = rid.str.len_chars().is_between(
        REQUEST_ID_MIN, REQUEST_ID_MAX
    ).not_() | rid.str.contains(_BAD_ID_CHARS)
    bad = frame.filter(rid.is_null() | pl.col("label").is_null() | bad_id)
    if bad.height:
        first = bad.row(0, named=True)
        raise DataError(
            f"{path}: {bad.height} row(s) with no request_id, one that is not 1 to "
            f"{REQUEST_ID_MAX} printable characters, or {_what_label(task)} (first: "
            f"request_id={first['request_id']!r}, label={first['raw']!r}); nothing ingested"
        )
    now = utcnow()
    ParquetLog(project.logs_root, "labels").append(
        {"ts": now, "request_id": r, "label": v, "source": path.name}
        for r, v in frame.select("request_id", "label").iter_rows()
    )
    return frame.height


def _as_number(raw: Any, task: ModelTask) -> Any:
    """The label column as the labels log keeps it (null where it is not a label)."""
    import polars as pl

    if task.type == "regression":
        if raw.dtype == pl.Boolean:
            return pl.lit(None, dtype=pl.Float64)  # a truth is not a value
        return pl.col("label").cast(pl.Float64, strict=False)
    index = {v: task.index_of(v) for v in raw.drop_nulls().unique().to_list()}
    known = {v: float(i) for v, i in index.items() if i is not None}
    return pl.col("label").replace_strict(known, default=None, return_dtype=pl.Float64)


def _what_label(task: ModelTask) -> str:
    if task.type == "regression":
        return "a non-numeric label"
    shown = ", ".join(repr(c) for c in task.classes[:10])
    return f"a label that is not a class of the model ({shown})"
