"""Checks of `[trainer.params]` values that the LightGBM and XGBoost trainers share: a value's
shape, a number against its kind and bounds, and how a bad value is quoted in the message."""

from __future__ import annotations

import math
from typing import Any

#: (kind: "int" or "float", lower bound, lower bound inclusive, upper bound or None)
Rule = tuple[str, float, bool, float | None]
SCALARS = (str, int, float, bool)


def got(value: Any) -> str:
    """`value` as a message quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def shape_problem(key: str, value: Any) -> str | None:
    """Why `value` is not a number, string, boolean or a list of them (None when it is)."""
    if isinstance(value, SCALARS) or (
        isinstance(value, list) and all(isinstance(v, SCALARS) for v in value)
    ):
        return None
    return f"{key}: must be a number, string, boolean or a list of them"


def _bounds(low: float, inclusive: bool, high: float | None) -> str:
    def shown(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    lower = f"{'≥' if inclusive else '>'} {shown(low)}"
    return f"{lower} and ≤ {shown(high)}" if high is not None else lower


def number_problem(key: str, value: Any, rule: Rule) -> str | None:
    """Why `value` breaks `rule` (None when it does not): not finite, not an integer (150.0
    is 150; a huge TOML integer is compared as an int, never a float), not a number, or out
    of bounds."""
    kind, low, inclusive, high = rule
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and isinstance(value, float) and not math.isfinite(value):
        return f"{key}: must be a finite number (got {got(value)})"
    integral = number and (isinstance(value, int) or float(value).is_integer())
    if kind == "int" and not integral:
        return f"{key}: must be an integer (got {got(value)})"
    if kind == "float" and not number:
        return f"{key}: must be a number (got {got(value)})"
    ok = (value >= low if inclusive else value > low) and (high is None or value <= high)
    return None if ok else f"{key}: must be {_bounds(low, inclusive, high)} (got {got(value)})"
