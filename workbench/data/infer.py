"""Inferring a project from a data file: each column's [schema] entry (type, bounds with
headroom, allowed categories when few, max_missing with headroom, outliers off for ids, flags
and clocks), the target's task, and the id and timestamp columns when they are obvious.

Every statistic comes from one polars `select` over the frame (a second, small one lists the
values of the few low-cardinality text columns), never a Python loop over rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workbench.data.dtypes import dtype_name, is_text
from workbench.data.target_checks import FEW_CLASSES, suggest_task, task_problem
from workbench.errors import UsageError
from workbench.tasks import TaskType

#: Text columns with at most this many values get an `allowed` list.
MAX_ALLOWED = 50
#: More distinct strings than this (or than half the rows): free text or codes, left out.
MAX_CATEGORIES = 200
#: Up to this many rows every distinct count is exact; above, HyperLogLog's estimate.
_EXACT_ROWS = 200_000

_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key)$|^id[_\s.-]|[a-z]Id$|ID$", re.IGNORECASE)
_TIME_NAME = re.compile(r"(^|_)(ts|time|timestamp|date|datetime|created|created_at|event_time)$")
# A clock's canonical range by its name: hour 0..23, minute 0..59, ...
_CLOCKS: list[tuple[re.Pattern[str], tuple[int, int]]] = [
    (re.compile(r"(^|_)(hour|hr)s?($|_)", re.IGNORECASE), (0, 23)),
    (re.compile(r"(^|_)(minute|second|min|sec)s?($|_)", re.IGNORECASE), (0, 59)),
    (re.compile(r"(^|_)month($|_)", re.IGNORECASE), (1, 12)),
    (re.compile(r"(^|_)(weekday|dow|day_?of_?week)($|_)", re.IGNORECASE), (0, 6)),
    (re.compile(r"(^|_)(day|day_?of_?month|dom)$", re.IGNORECASE), (1, 31)),
]


@dataclass
class ColumnGuess:
    """One [schema.<name>] table: its keys in order, and what was seen, for a comment."""

    name: str
    spec: dict[str, Any]
    seen: str
    why: dict[str, str] = field(default_factory=dict)  # key -> reason, written as a comment


@dataclass
class Inference:
    rows: int
    columns: list[ColumnGuess]
    left_out: list[tuple[str, str]]  # (column, why it is not in [schema])
    target: str | None = None
    task: TaskType | None = None
    task_reason: str = ""
    timestamp: str | None = None
    id_column: str | None = None
    notes: list[str] = field(default_factory=list)  # one line each, printed as warnings

    @property
    def schema(self) -> dict[str, dict[str, Any]]:
        return {c.name: c.spec for c in self.columns}


# ---------------------------------------------------------------- statistics (one select)


def _stats_exprs(frame: pl.DataFrame, exact: str | None) -> list[pl.Expr]:
    """Per column: nulls, distinct values (over _EXACT_ROWS rows, HyperLogLog's estimate but
    for `exact`, the target: an exact count of a million floats costs ten times more), and
    by dtype its range, NaN and inf counts, whether every value is whole, or its mean text
    length."""
    exprs: list[pl.Expr] = []
    for i, (name, dtype) in enumerate(frame.schema.items()):
        col = pl.col(name)
        exprs.append(col.null_count().alias(f"null{i}"))
        exactly = name == exact or frame.height <= _EXACT_ROWS
        distinct = col.n_unique() if exactly else col.approx_n_unique()
        exprs.append(distinct.alias(f"uniq{i}"))
        if dtype.is_float():
            finite = col.filter(col.is_finite())
            exprs += [
                col.is_nan().sum().alias(f"nan{i}"),
                col.is_infinite().sum().alias(f"inf{i}"),
                finite.min().alias(f"min{i}"),
                finite.max().alias(f"max{i}"),
                (finite == finite.round(0)).all().alias(f"whole{i}"),
            ]
        elif dtype.is_numeric() or dtype.base_type() in (pl.Datetime, pl.Date):
            exprs += [col.min().alias(f"min{i}"), col.max().alias(f"max{i}")]
        elif is_text(dtype):
            exprs.append(col.cast(pl.String).str.len_chars().mean().alias(f"len{i}"))
    return exprs


def _column_stats(frame: pl.DataFrame, target: str | None) -> list[dict[str, Any]]:
    """The statistics of every column: one select over them all, then one over the few that
    need exact values (low-cardinality ones: their values; would-be ids: exact counts)."""
    row = frame.select(_stats_exprs(frame, target)).row(0, named=True) if frame.width else {}
    rows = frame.height
    out = []
    for i, (name, dtype) in enumerate(frame.schema.items()):
        nulls = int(row[f"null{i}"])
        distinct = max(0, int(row[f"uniq{i}"]) - (1 if nulls else 0))
        s: dict[str, Any] = {"name": name, "dtype": dtype, "nulls": nulls, "distinct": distinct}
        s["approx"] = name != target and rows > _EXACT_ROWS
        for key in ("nan", "inf", "min", "max", "whole", "len"):
            if f"{key}{i}" in row:
                s[key] = row[f"{key}{i}"]
        s["missing"] = nulls + int(s.get("nan") or 0)
        out.append(s)
    exprs: list[pl.Expr] = []
    for s in out:
        col, dtype, many = pl.col(s["name"]), s["dtype"], s["distinct"]
        limit = MAX_CATEGORIES * 1.2 if is_text(dtype) else 12  # HLL errs by a few percent
        if many <= limit and (is_text(dtype) or dtype.is_numeric() or dtype == pl.Boolean):
            exprs.append(col.drop_nulls().unique().sort().implode().alias(f"v:{s['name']}"))
        elif many >= 0.9 * rows and not s["nulls"] and (dtype.is_integer() or is_text(dtype)):
            exprs.append(col.n_unique().alias(f"n:{s['name']}"))
    exact = frame.select(exprs).row(0, named=True) if exprs else {}
    for s in out:
        if f"v:{s['name']}" in exact:
            values = list(exact[f"v:{s['name']}"])
            s["distinct"], s["approx"] = len(values), False
            s["values"] = values[: MAX_ALLOWED + 1]
        elif f"n:{s['name']}" in exact:
            s["distinct"], s["approx"] = int(exact[f"n:{s['name']}"]), False
    return out


# ---------------------------------------------------------------- rounding with headroom


def _step(span: float) -> float:
    return 10.0 ** math.floor(math.log10(span)) if span > 0 else 1.0


def _bounds(lo: float, hi: float, integer: bool) -> tuple[float, float, str]:
    """(min, max, why): 0 when nothing negative was seen, else 10% of the range beyond what
    was seen, rounded outward."""
    pad = 0.1 * (hi - lo) or 0.1 * abs(hi) or 1.0
    step = _step(pad)
    top = math.ceil((hi + pad) / step) * step
    if lo >= 0:
        bottom, why = 0.0, "no negative values seen"
    else:
        bottom, why = math.floor((lo - pad) / step) * step, "10% headroom below the smallest"
    if integer:
        bottom, top = float(math.floor(bottom)), float(math.ceil(top))
    return _tidy(bottom), _tidy(top), why


def _tidy(x: float) -> float:
    return float(f"{x:.6g}")


def _headroom(fraction: float) -> float:
    """max_missing for a column seen with `fraction` missing: half as much again plus 1%."""
    return min(1.0, math.ceil((fraction * 1.5 + 0.01) * 100) / 100)


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


# ---------------------------------------------------------------- per column


def _clock(name: str, lo: float, hi: float) -> tuple[int, int] | None:
    """A clock's range (hour 0..23, month 1..12, ...) when the name and the values say so."""
    for pattern, (a, b) in _CLOCKS:
        if pattern.search(name) and lo >= 0 and hi <= b + 1:
            return min(a, int(lo)), max(b, int(hi))
    return None


def kind_word(dtype: pl.DataType) -> str:
    """'float', 'int', 'bool', 'text', 'datetime' or the dtype's name, for sentences."""
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype.is_integer():
        return "int"
    if is_text(dtype):
        return "text"
    if dtype.base_type() in (pl.Datetime, pl.Date):
        return "datetime"
    return dtype_name(dtype)


def looks_like_id(s: dict[str, Any], rows: int) -> bool:
    """Obvious ids only: unique, never missing, integers or text, and named like an id (or
    integers numbering the rows)."""
    dtype = s["dtype"]
    if s["nulls"] or s["distinct"] != rows or rows < 2:
        return False
    if not (dtype.is_integer() or is_text(dtype)):
        return False
    if _ID_NAME.search(s["name"]):
        return True
    return bool(dtype.is_integer() and s["max"] - s["min"] + 1 == rows)


def _guess(s: dict[str, Any], rows: int) -> ColumnGuess | str:
    """The column's [schema] entry, or why it is left out."""
    name, dtype, distinct = s["name"], s["dtype"], s["distinct"]
    missing = s["missing"]
    if missing == rows:
        return "every value is missing"
    spec: dict[str, Any] = {}
    why: dict[str, str] = {}
    about = "about " if s.get("approx") else ""
    seen = f"{about}{distinct:,} distinct value{'s' if distinct != 1 else ''}"
    if dtype == pl.Boolean:
        spec["type"] = "bool"
    elif dtype.base_type() in (pl.Datetime, pl.Date):
        spec["type"] = "datetime"
        seen = f"{s['min']} .. {s['max']}"
    elif dtype.is_numeric():
        _numeric(s, rows, spec, why)
        seen = f"{_fmt(s['min'])} .. {_fmt(s['max'])}, {seen}"
    elif is_text(dtype):
        values = s.get("values") or []
        if looks_like_id(s, rows):
            spec["type"] = "str"
        elif distinct > MAX_CATEGORIES or (distinct > MAX_ALLOWED and distinct > rows / 2):
            mean = float(s.get("len") or 0)
            return f"text with {about}{distinct:,} distinct values (mean length {mean:.0f})"
        else:
            spec["type"] = "category"
            if values and len(values) <= MAX_ALLOWED:
                spec["allowed"] = [str(v) for v in values]
            else:
                why["type"] = f"{distinct:,} categories, too many to list in allowed"
    else:
        return f"dtype {dtype_name(dtype)} is not a type [schema] knows"
    if distinct == 1:
        only = (s.get("values") or [s.get("min")])[0]
        return f"one value only ({_fmt(only)}): nothing to learn"
    if missing:
        spec["max_missing"] = _headroom(missing / rows)
        why["max_missing"] = f"{missing / rows:.1%} missing in this data"
    if s.get("inf"):
        spec["max_nonfinite"] = _headroom(int(s["inf"]) / rows)
        why["max_nonfinite"] = f"{int(s['inf']):,} infinite values in this data"
    return ColumnGuess(name, spec, seen, why)


def _numeric(s: dict[str, Any], rows: int, spec: dict[str, Any], why: dict[str, str]) -> None:
    name, dtype = s["name"], s["dtype"]
    integer = dtype.is_integer()
    spec["type"] = "int" if integer else "float"
    lo, hi = s.get("min"), s.get("max")
    if lo is None or hi is None:  # only NaN / inf: nothing to bound
        return
    lo, hi = float(lo), float(hi)
    values = s.get("values") or []
    if integer and looks_like_id(s, rows):
        spec["outliers"] = False
        why["outliers"] = "an id: no value is an outlier"
        return
    if integer and sorted(values) == [0, 1]:
        spec.update(min=0, max=1, outliers=False)
        why["outliers"] = "a 0/1 flag"
        return
    clock = _clock(name, lo, hi) if integer else None
    if clock:
        spec.update(min=clock[0], max=clock[1], outliers=False)
        why["outliers"] = "a clock, not a measurement"
        return
    bottom, top, reason = _bounds(lo, hi, integer)
    spec["min"] = int(bottom) if integer else bottom
    spec["max"] = int(top) if integer else top
    why["min"] = reason
    why["max"] = "10% headroom above the largest"
    if s["distinct"] <= 7 and integer:
        spec["outliers"] = False
        why["outliers"] = f"only {s['distinct']} distinct values: levels, not a measurement"


# ---------------------------------------------------------------- the whole frame


def infer(
    frame: pl.DataFrame,
    *,
    target: str | None = None,
    task: TaskType | None = None,
    timestamp: str | None = None,
    id_column: str | None = None,
    notes: list[str] | None = None,
) -> Inference:
    """The schema of `frame`, and (given a target) its task; timestamp and id are guessed
    when not given, only where obvious (the notes say so)."""
    rows = frame.height
    for role, col in (("--target", target), ("--timestamp", timestamp), ("--id", id_column)):
        if col is not None and col not in frame.columns:
            shown = ", ".join(frame.columns[:12]) + (" ..." if frame.width > 12 else "")
            raise UsageError(f"{role} {col!r}: not a column of the data (columns: {shown})")
    if rows == 0:
        raise UsageError("the data has no rows: nothing to infer a schema from")
    stats = _column_stats(frame, target)
    result = Inference(rows=rows, columns=[], left_out=[], target=target, notes=list(notes or []))
    by_name = {s["name"]: s for s in stats}
    result.id_column = id_column or _guess_id(stats, rows, target, result.notes)
    result.timestamp = timestamp or _guess_timestamp(stats, target, result.notes)
    if target is not None:
        result.task, result.task_reason = _task(by_name[target], task)
    for s in stats:
        name = s["name"]
        if name == target:
            result.columns.append(_target_guess(s, result.task or "binary"))
            if s["missing"]:
                result.notes.append(
                    f"target {name!r} has {s['missing']:,} missing labels: validate fails "
                    "until those rows are labelled or removed"
                )
            continue
        guess = _guess(s, rows)
        if isinstance(guess, str):
            result.left_out.append((name, guess))
            continue
        if name != result.id_column and looks_like_id(s, rows):
            result.left_out.append((name, "an id-like column besides [data].id_column"))
            continue
        if guess.spec["type"] == "datetime" and name != result.timestamp:
            result.left_out.append(
                (name, "a datetime that is not [data].timestamp; models take no dates")
            )
            continue
        if name in (result.id_column, result.timestamp):
            guess.spec.pop("min", None)
            guess.spec.pop("max", None)
            guess.why = {k: v for k, v in guess.why.items() if k not in ("min", "max")}
        result.columns.append(guess)
    for name, why in result.left_out:
        result.notes.append(f"column {name!r} left out of [schema]: {why}")
    return result


def _guess_id(
    stats: list[dict[str, Any]], rows: int, target: str | None, notes: list[str]
) -> str | None:
    ids: list[str] = [s["name"] for s in stats if s["name"] != target and looks_like_id(s, rows)]
    if len(ids) == 1:
        notes.append(f"id column: {ids[0]!r} (unique per row; pass --id to choose another)")
        return ids[0]
    if ids:
        notes.append(f"several id-like columns ({', '.join(ids)}): pass --id to name one")
    return None


def _guess_timestamp(
    stats: list[dict[str, Any]], target: str | None, notes: list[str]
) -> str | None:
    times = [
        s["name"]
        for s in stats
        if s["name"] != target
        and s["dtype"].base_type() in (pl.Datetime, pl.Date)
        and s["nulls"] == 0
    ]
    named = [t for t in times if _TIME_NAME.search(t.lower())]
    pick = times[0] if len(times) == 1 else (named[0] if len(named) == 1 else None)
    if pick:
        notes.append(f"timestamp: {pick!r} (the only date column without gaps; --timestamp)")
    elif times:
        notes.append(f"several date columns ({', '.join(times)}): pass --timestamp to name one")
    return pick


def _task(s: dict[str, Any], given: TaskType | None) -> tuple[TaskType, str]:
    name, dtype, distinct = s["name"], s["dtype"], s["distinct"]
    whole = bool(s.get("whole"))
    if distinct == 0:
        raise UsageError(f"--target {name!r}: every value is missing; nothing to predict")
    kind = kind_word(dtype)
    if dtype.is_float() and whole:
        kind += " (whole numbers)"
    plural = "s" if distinct != 1 else ""
    reason = f"target {name!r} is {kind} with {distinct:,} distinct value{plural}"
    if given is not None:
        problem = task_problem(given, name, dtype, distinct, whole)
        if problem:
            problem = re.sub(r'set \[task\]\.type = "(\w+)"', r"use --task \1", problem)
            raise UsageError(f"--task {given}: {problem}")
        return given, reason + " (--task)"
    task = suggest_task(dtype, distinct, whole)
    if task is None or distinct < 2:
        problem = task_problem("multiclass", name, dtype, distinct, whole)
        raise UsageError(f"cannot infer a task: {problem or reason}; pass --task")
    if task == "multiclass" and dtype.is_numeric():
        reason += f" (at most {FEW_CLASSES} whole numbers: classes)"
    return task, reason


def _target_guess(s: dict[str, Any], task: TaskType) -> ColumnGuess:
    dtype, values = s["dtype"], s.get("values") or []
    seen = f"{s['distinct']:,} distinct values"
    why = {"outliers": "the label"} if task != "regression" else {}
    if task == "regression":
        spec: dict[str, Any] = {"type": "float"}
        lo, hi = s.get("min"), s.get("max")
        if lo is not None and hi is not None:
            bottom, top, reason = _bounds(float(lo), float(hi), False)
            spec.update(min=bottom, max=top)
            why = {"min": reason, "max": "10% headroom above the largest"}
            seen = f"{_fmt(float(lo))} .. {_fmt(float(hi))}, {seen}"
        return ColumnGuess(s["name"], spec, seen, why)
    if dtype == pl.Boolean:
        return ColumnGuess(s["name"], {"type": "bool"}, seen, {})
    if dtype.is_integer():
        spec = {"type": "int", "min": int(s["min"]), "max": int(s["max"]), "outliers": False}
    elif dtype.is_numeric():
        spec = {"type": "float", "min": float(s["min"]), "max": float(s["max"]), "outliers": False}
    else:
        spec = {"type": "category", "allowed": [str(v) for v in values]}
        why = {}
    return ColumnGuess(s["name"], spec, f"classes {', '.join(map(_fmt, values))}", why)
