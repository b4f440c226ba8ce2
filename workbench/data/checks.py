"""The findings of a validation (`Check`, `ValidationReport`), the plan that gathers every
statistic into one polars `select`, and how numbers read in their sentences."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import polars as pl

Status = Literal["pass", "warn", "fail"]

SEVERITY: dict[str, int] = {"fail": 0, "warn": 1, "pass": 2}
STYLES: dict[str, str] = {"pass": "green", "warn": "yellow", "fail": "bold red"}
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Check:
    """One finding. `check` is the rule: config, schema, type, missing, nonfinite, range,
    allowed, outliers, rows or target."""

    check: str
    column: str | None
    status: Status
    detail: str
    value: float | None = None


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    columns: int
    checks: tuple[Check, ...]
    fail_on_warning: bool = False

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    @property
    def passed(self) -> bool:
        """No failures, and no warnings either when `fail_on_warning` is set."""
        if self.failures:
            return False
        return not (self.fail_on_warning and self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": self.columns,
            "passed": self.passed,
            "fail_on_warning": self.fail_on_warning,
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "checks": [asdict(c) for c in self.checks],
        }


# ---------------------------------------------------------------- formatting helpers


def num(x: float) -> str:
    """A bound or statistic for a sentence: 0, 23, 0.5, 1,234."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def pct(fraction: float) -> str:
    if 0 < fraction < 0.00005:
        return "<0.01%"
    return f"{fraction:.2%}"


def of(count: int, total: int) -> str:
    """'3 of 50,000 values (0.01%)'."""
    fraction = count / total if total else 0.0
    return f"{count:,} of {total:,} values ({pct(fraction)})"


def finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# A finisher turns the row of statistics (name -> value) into checks, after the one select.
Finisher = Callable[[dict[str, Any]], list[Check]]


class Plan:
    """Collects named expressions and the finishers that read their results."""

    def __init__(self) -> None:
        self.exprs: list[pl.Expr] = []
        self.finishers: list[Finisher] = []
        self._n = 0

    def add(self, expr: pl.Expr) -> str:
        name = f"__stat_{self._n}"
        self._n += 1
        self.exprs.append(expr.alias(name))
        return name
