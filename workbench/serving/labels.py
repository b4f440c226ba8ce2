"""Delayed ground truth: labels joined to predictions by request id."""

from __future__ import annotations

from pathlib import Path

from workbench.config import ColumnSpec
from workbench.data.snapshot import load_frame
from workbench.errors import DataError
from workbench.project import Project
from workbench.serving.client_strings import REQUEST_ID_MAX, REQUEST_ID_MIN
from workbench.store.parquet_log import ParquetLog, utcnow

REQUIRED = ("request_id", "label")
#: How a labels CSV is read: ids as text (leading zeros kept), labels as numbers.
_LABEL_TYPES = {"request_id": ColumnSpec(type="str"), "label": ColumnSpec(type="float")}
#: The request id rule of workbench.serving.client_strings, as a polars (Rust) regex.
_BAD_ID_CHARS = r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"


def ingest(project: Project, path: Path) -> int:
    """Append the labels in a CSV or Parquet file (columns request_id, label; a later label
    for the same request wins). Returns how many were ingested."""
    import polars as pl

    frame = load_frame(path, _LABEL_TYPES)  # a CSV's 'yes' stays text: not a label
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (need request_id, label)")
    frame = frame.select(
        pl.col("request_id").cast(pl.Utf8),
        pl.col("label").cast(pl.Float64, strict=False).alias("label"),
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
            f"{REQUEST_ID_MAX} printable characters, or a non-numeric label (first: "
            f"request_id={first['request_id']!r}, label={first['raw']!r}); nothing ingested"
        )
    now = utcnow()
    ParquetLog(project.logs, "labels").append(
        {"ts": now, "request_id": r, "label": v, "source": path.name}
        for r, v in frame.select("request_id", "label").iter_rows()
    )
    return frame.height
