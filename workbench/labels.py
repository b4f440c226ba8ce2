"""Delayed ground truth: labels joined to predictions by request id."""

from __future__ import annotations

from pathlib import Path

from workbench.data import load_frame
from workbench.errors import DataError
from workbench.parquet_log import ParquetLog, utcnow
from workbench.project import Project

REQUIRED = ("request_id", "label")


def ingest(project: Project, path: Path) -> int:
    """Append the labels in a CSV or Parquet file (columns request_id, label; a later label
    for the same request wins). Returns how many were ingested."""
    import polars as pl

    frame = load_frame(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (need request_id, label)")
    frame = frame.select(
        pl.col("request_id").cast(pl.Utf8),
        pl.col("label").cast(pl.Float64, strict=False).alias("label"),
        pl.col("label").alias("raw"),
    )
    bad = frame.filter(pl.col("request_id").is_null() | pl.col("label").is_null())
    if bad.height:
        first = bad.row(0, named=True)
        raise DataError(
            f"{path}: {bad.height} row(s) with no request_id or a non-numeric label "
            f"(first: request_id={first['request_id']!r}, label={first['raw']!r}); nothing ingested"
        )
    now = utcnow()
    ParquetLog(project.logs, "labels").append(
        {"ts": now, "request_id": r, "label": v, "source": path.name}
        for r, v in frame.select("request_id", "label").iter_rows()
    )
    return frame.height
