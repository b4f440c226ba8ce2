"""Reading a data snapshot, its digest, and the deterministic train/validation/holdout split."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from workbench.config import ColumnSpec, Config
from workbench.data.csv_read import TextFrame, parse_columns, read_text
from workbench.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def snapshot_files(path: Path) -> list[Path]:
    if any(ch in str(path) for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(path)))
    else:
        files = [path] if path.is_file() else []
    if not files:
        raise DataError(f"data file not found: {path} (set [data].path in workbench.toml)")
    return files


def digest(path: Path) -> str:
    """sha256 over the snapshot's file bytes (and names, for globs): the dataset's identity."""
    h = hashlib.sha256()
    for f in snapshot_files(path):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def load_frame(path: Path, schema: Mapping[str, ColumnSpec] | None = None) -> pl.DataFrame:
    """The snapshot as a frame. A CSV's columns are parsed to the types `schema` declares
    (inferred for the rest); a column whose values do not fit stays text, for validation to
    report. Parquet text columns declared numeric, bool or datetime are parsed the same way."""
    return read_data(path, schema).frame


def read_data(path: Path, schema: Mapping[str, ColumnSpec] | None = None) -> TextFrame:
    """`load_frame`, with a note per column that reads oddly (mostly numbers, but not all)."""
    files = snapshot_files(path)
    suffix = files[0].suffix.lower()
    declared = {name: spec.type for name, spec in (schema or {}).items()}
    try:
        if suffix == ".parquet":
            return parse_columns(pl.read_parquet([str(f) for f in files]), declared, infer=False)
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            return parse_columns(read_text(files, sep), declared)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{files[0]}: cannot read: {first}") from None
    raise DataError(f"{files[0]}: unsupported file type {suffix!r} (use .parquet or .csv)")


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    valid: pl.DataFrame
    holdout: pl.DataFrame


def split(df: pl.DataFrame, config: Config) -> Split:
    """Holdout = the newest rows (time split) or a seeded random share; validation likewise
    from what is left. The same data and config always give the same split."""
    d = config.data
    if d.split == "time":
        assert d.timestamp is not None
        ordered = df.sort(d.timestamp, maintain_order=True)
    else:
        ordered = df.sample(fraction=1.0, shuffle=True, seed=d.seed)
    n = ordered.height
    n_hold = max(1, int(n * d.holdout_fraction))
    rest, holdout = ordered.head(n - n_hold), ordered.tail(n_hold)
    n_valid = max(1, int(rest.height * d.validation_fraction))
    train, valid = rest.head(rest.height - n_valid), rest.tail(n_valid)
    if train.height == 0:
        raise DataError(f"too few rows ({n}) to split into train, validation and holdout")
    return Split(train=train, valid=valid, holdout=holdout)


def categorical_features(config: Config) -> list[str]:
    return [c for c in config.features if config.schema_[c].type in ("category", "str")]


def to_model_frame(df: pl.DataFrame, config: Config) -> pd.DataFrame:
    """The model's input: feature columns only, as pandas (categoricals as plain strings)."""
    missing = [c for c in config.features if c not in df.columns]
    if missing:
        raise DataError(f"data is missing feature column(s): {', '.join(missing)}")
    return df.select(config.features).to_pandas()
