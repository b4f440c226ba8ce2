"""Which polars dtypes can hold a column declared in [schema] as int, float, str, category,
bool or datetime, and their short names for sentences."""

from __future__ import annotations

import polars as pl


def dtype_name(dtype: pl.DataType) -> str:
    """Short dtype names for sentences: Int64, String, Datetime[us]."""
    if isinstance(dtype, pl.Datetime):
        tz = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"Datetime[{dtype.time_unit}{tz}]"
    if isinstance(dtype, pl.Enum):
        return "Enum"
    return str(dtype)


def is_text(dtype: pl.DataType) -> bool:
    return dtype.base_type() in (pl.String, pl.Categorical, pl.Enum)


def type_ok(kind: str, dtype: pl.DataType) -> bool:
    """Whether a polars dtype can hold a column declared as `kind` (bool ints checked later)."""
    if dtype == pl.Null:  # an all-null column: the missing check reports it
        return True
    if kind == "int":
        return dtype.is_integer()
    if kind == "float":
        return dtype.is_numeric()
    if kind in ("category", "str"):
        return is_text(dtype)
    if kind == "bool":
        return dtype == pl.Boolean or dtype.is_integer()
    if kind == "datetime":
        return dtype.base_type() in (pl.Datetime, pl.Date)
    return False


EXPECTED = {
    "int": "an integer dtype",
    "float": "a numeric dtype",
    "category": "String, Categorical or Enum",
    "str": "String, Categorical or Enum",
    "bool": "Boolean or 0/1 integers",
    "datetime": "Datetime or Date",
}
