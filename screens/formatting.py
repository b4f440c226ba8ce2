"""Small, dependency-free formatters shared by the screens."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any


def short_id(run_id: str | None, n: int = 8) -> str:
    return (run_id or "-")[:n]


def fmt_value(value: Any, digits: int = 4) -> str:
    """One table cell: floats to `digits` places, datetimes to minutes, None to '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value.is_integer() and abs(value) < 1e9:
            return str(int(value))
        return f"{value:.{digits}f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def fmt_time(value: Any, seconds: bool = False) -> str:
    if not isinstance(value, datetime):
        return "-" if value is None else str(value)
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def fmt_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def fmt_version(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def ellipsize(text: str, width: int) -> str:
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"
