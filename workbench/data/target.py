"""The training target per task: the classes of a classification target and its encoding as
class indices (what trainers and metrics receive), or a regression target as floats."""

from __future__ import annotations

from typing import Any

import polars as pl

from workbench.config import Config
from workbench.data.target_checks import class_text, shown
from workbench.errors import DataError


def classes_of(frame: pl.DataFrame, config: Config) -> list[Any]:
    """The classes in index order: `[task].classes`, or the target's sorted distinct values
    (a binary task's `positive_class` last). [] for regression."""
    task, target = config.task, config.data.target
    if task.type == "regression":
        return []
    if task.classes is not None:
        return list(task.classes)
    if target not in frame.columns:
        raise DataError(f"the data has no target column {target!r} ([data].target)")
    values = frame[target].drop_nulls().unique().sort().to_list()
    if task.type == "binary":
        if task.positive_class is not None:
            positive = _match(values, task.positive_class)
            if positive is None:
                raise DataError(
                    f"[task].positive_class {task.positive_class!r} is not a value of "
                    f"{target!r} (values: {shown(values)})"
                )
            values = [v for v in values if v != positive] + [positive]
        if len(values) != 2:
            raise DataError(
                f"target {target!r} has {len(values)} distinct value(s), a binary task needs 2 "
                f"({shown(values)}); set [task].type to multiclass or regression"
            )
    elif len(values) < 2:
        raise DataError(f"target {target!r} has {len(values)} distinct value(s); need 2 or more")
    return values


def encode(frame: pl.DataFrame, config: Config, classes: list[Any]) -> pl.DataFrame:
    """`frame` with its target as class indices (Int64) or floats (regression); rows whose
    target is missing or not one of the classes are an error naming the first of them."""
    target = config.data.target
    col = frame[target]
    if config.task.type == "regression":
        if not col.dtype.is_numeric():
            raise DataError(f"target {target!r} of a regression task must be numeric ({col.dtype})")
        return frame.with_columns(col.cast(pl.Float64))
    texts = col.cast(pl.String)
    codes = texts.replace_strict(
        {class_text(c): i for i, c in enumerate(classes)}, default=None, return_dtype=pl.Int64
    )
    bad = codes.is_null()
    if bad.any():
        row = int(bad.arg_max() or 0)
        raise DataError(
            f"target {target!r} row {row}: {col[row]!r} is not one of the classes {shown(classes)}"
        )
    return frame.with_columns(codes.alias(target))


def _match(values: list[Any], wanted: Any) -> Any:
    for v in values:
        if v == wanted or str(v) == str(wanted):
            return v
    return None
